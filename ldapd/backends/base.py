"""
What every backend shares: password checking for simple binds, the matched
DN of a name that does not exist, the index configuration and what a
substring index holds of a value, and the writes and lookups of a write
batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, Sequence

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer

from ldapd import passwords
from ldapd.dn import DN
from ldapd.entry import Attribute, Entry, Modification
from ldapd.results import NoSuchObject
from ldapd.schema import AttributeType, InvalidValue, Schema

__all__ = [
    "ALL_KINDS", "BatchWrites", "IndexConfig", "OrphanEntries", "WriteSkipped", "checkPassword",
    "holdingAny", "noSuchObject", "substringTexts",
]

#: The index kinds of the C{indexes} setting.
ALL_KINDS = ("eq", "pres", "sub")


def checkPassword(reactor: Any, entry: Entry | None, password: bytes) -> defer.Deferred[Entry]:
    """
    Verify a simple bind's password against an entry's C{userPassword} values,
    through the reactor's L{passwords.PasswordVerifier}: deliberately slow
    schemes (argon2, bcrypt, PBKDF2) are verified in the reactor's thread
    pool so that a bind never stalls other clients, a bounded number at a
    time, and values whose cost is over the limits are not verified at all.

    @param reactor: the reactor, for its thread pool.
    @param entry: the entry bound to, or C{None} if it does not exist.
    @param password: the password given.
    @return: a Deferred firing with C{entry}, or failing with
        C{LDAPInvalidCredentials} (the same for a missing entry, so that the
        answer does not disclose which names exist).
    """
    if entry is None:
        return defer.fail(ldaperrors.LDAPInvalidCredentials())

    def _cbChecked(ok: bool) -> Entry:
        if not ok:
            raise ldaperrors.LDAPInvalidCredentials()
        return entry  # type: ignore[return-value]

    return (
        passwords.verifierFor(reactor)
        .verify(entry.get("userPassword"), password, entry.ndn)
        .addCallback(_cbChecked)
    )


class OrphanEntries:
    """
    The entries of an import read before their parent, held until it is
    loaded: slapcat writes entries in the order of their ids, so an entry
    moved under a newer one comes out before its new parent (slapadd takes
    them in any order). Only the entries waiting are held, so that a file
    in parents-first order costs no memory.
    """

    def __init__(self) -> None:
        self._waiting: dict[DN, list[Entry]] = {}

    def hold(self, entry: Entry) -> None:
        """
        Keep an entry until its parent is loaded.
        """
        self._waiting.setdefault(entry.ndn.parent(), []).append(entry)

    def released(self, ndn: DN) -> list[Entry]:
        """
        @param ndn: the normalised DN of an entry just loaded.
        @return: the entries held for it, which can be loaded now.
        """
        return self._waiting.pop(ndn, [])

    def remaining(self) -> list[Entry]:
        """
        @return: the entries still held, whose parent never came.
        """
        return [entry for entries in self._waiting.values() for entry in entries]

    def check(self) -> None:
        """
        Say that the import is over.

        @raise NoSuchObject: naming an entry still held: its parent is
            neither in the input nor in the database.
        """
        for entries in self._waiting.values():
            raise NoSuchObject(f"{entries[0].dn}: the parent entry does not exist")


class WriteSkipped(Exception):
    """
    A write of a batch was not made: it was called before the failure of
    an earlier write of the batch reached the caller (L{IWriteBatch}).
    """


def holdingAny(entries: Iterable[Entry], at: AttributeType, keys: Collection[Any]) -> list[Entry]:
    """
    @return: those of C{entries} that hold a value of C{at} (or of a
        subtype) whose equality key is one of C{keys}, as
        C{IWriteBatch.findEqual} answers: what an index gave, checked.
    """
    found = []
    for entry in entries:
        schema = entry.schema
        if any(key in keys for attr in entry.matching(at, ()) for key in attr.keys(schema)):
            found.append(entry)
    return found


class BatchWrites:
    """
    The writes of an L{ldapd.interfaces.IWriteBatch}: the backend's own
    work for each (its C{_adding}, C{_deleting}, C{_modifying} and
    C{_renaming}, which build what its C{_write} runs), run by the batch.
    """

    def __init__(self, backend: Any, write: Callable[[Callable[[Any], Any]], defer.Deferred[Any]]
                 ) -> None:
        """
        @param backend: the backend.
        @param write: runs one write's work in the batch's transaction.
        """
        self._backend = backend
        self._writeWork = write

    def add(self, op: Any, entry: Entry, hooks: Any) -> defer.Deferred[None]:
        return self._writeWork(self._backend._adding(op, entry, hooks))

    def delete(self, op: Any, ndn: DN, hooks: Any) -> defer.Deferred[None]:
        return self._writeWork(self._backend._deleting(op, ndn, hooks))

    def modify(self, op: Any, ndn: DN, modifications: list[Modification],
               hooks: Any) -> defer.Deferred[Entry]:
        return self._writeWork(self._backend._modifying(op, ndn, modifications, hooks))

    def rename(self, op: Any, ndn: DN, newDN: DN, deleteOldRDN: bool, hooks: Any,
               modifications: Sequence[Modification] = ()) -> defer.Deferred[Entry]:
        return self._writeWork(self._backend._renaming(op, ndn, newDN, deleteOldRDN, hooks,
                                                       modifications))


def substringTexts(schema: Schema, attr: Attribute) -> list[str]:
    """
    What a substring index holds of an attribute: each value as its type's
    substrings rule normalises it, the text in which a substrings
    assertion's pieces are looked for (L{ldapd.filters.Substrings}). A
    value the rule refuses is left out: no substrings assertion is true of
    it.

    @param schema: the schema the type belongs to.
    @param attr: an attribute of an entry.
    @return: the normalised values (none if the type has no substrings rule).
    """
    rule = attr.type.substr
    if rule is None:
        return []
    texts = []
    for v in attr.values:
        try:
            texts.append(schema.applyRule(rule, v))
        except InvalidValue:
            continue
    return texts


def noSuchObject(ndn: DN, suffix: DN, lookup: Callable[[DN], Entry | None]) -> NoSuchObject:
    """
    The noSuchObject error for a name, with the deepest existing superior as
    matched DN (RFC 4511 §4.1.9).

    @param ndn: the normalised name that does not exist.
    @param suffix: the normalised suffix of the backend.
    @param lookup: finds an entry by normalised name.
    @return: the error to raise.
    """
    parent = ndn.parent()
    while len(parent) >= len(suffix) and parent.isWithin(suffix):
        found = lookup(parent)
        if found is not None:
            return NoSuchObject("no such object", found.dn)
        if not parent:
            break
        parent = parent.parent()
    return NoSuchObject("no such object")


@dataclass(frozen=True)
class IndexConfig:
    """
    Which attribute types have which kinds of index, from the C{indexes}
    setting: a list of C{"<types> <kinds>"} strings, the types separated by
    commas (C{*} for every type), the kinds by commas from C{eq}, C{pres} and
    C{sub}, as slapd's C{index} directive.

    @ivar byOID: the kinds of each attribute type, by OID.
    @ivar everything: the kinds every type has (from C{*}).
    """

    byOID: dict[str, frozenset[str]]
    everything: frozenset[str]

    @classmethod
    def parse(cls, lines: Iterable[str], schema: Schema) -> IndexConfig:
        """
        @param lines: the setting's strings.
        @param schema: the schema the types are looked up in.
        @return: the configuration.
        @raise ValueError: naming the type or kind that is wrong.
        """
        byOID: dict[str, set[str]] = {}
        everything: set[str] = set()
        for line in lines:
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(f"{line!r}: expected '<types> <kinds>', e.g. 'uid,cn eq,sub'")
            kinds = {k.strip() for k in parts[1].split(",") if k.strip()}
            for kind in kinds:
                if kind not in ALL_KINDS:
                    raise ValueError(f"{line!r}: unknown index kind {kind!r} (known: eq, pres, sub)")
            for name in (n.strip() for n in parts[0].split(",") if n.strip()):
                if name == "*":
                    if "sub" in kinds:
                        raise ValueError(f"{line!r}: substring indexes are set per type, not '*'")
                    everything |= kinds
                    continue
                at = schema.attributeType(name)
                if at is None:
                    raise ValueError(f"{line!r}: undefined attribute type {name!r}")
                if "sub" in kinds and at.substr is None:
                    raise ValueError(f"{line!r}: {name} has no substrings matching rule")
                if "eq" in kinds and at.equality is None:
                    raise ValueError(f"{line!r}: {name} has no equality matching rule")
                byOID.setdefault(at.oid, set()).update(kinds)
        return cls({k: frozenset(v) for k, v in byOID.items()}, frozenset(everything))

    def kinds(self, oid: str) -> frozenset[str]:
        """
        @param oid: an attribute type's OID.
        @return: the kinds of index it has.
        """
        own = self.byOID.get(oid)
        return self.everything | own if own is not None else self.everything

    def canonical(self) -> str:
        """
        @return: a stable text form, stored in the database so that a change
            of configuration is noticed (and the index rebuilt).
        """
        items = [f"* {','.join(sorted(self.everything))}"] if self.everything else []
        items += [f"{oid} {','.join(sorted(k))}" for oid, k in sorted(self.byOID.items())]
        return "\n".join(items)
