"""
The C{refint} plugin: referential integrity, as slapd's refint overlay and
389's Referential Integrity plugin keep it.

When a client deletes an entry, every value naming it in the configured
attributes (C{member} and C{uniqueMember} by default) is removed, from
every entry of every database the directory serves; when a client renames
or moves an entry, the values naming it or an entry below it are replaced
by the new names.

As in slapd, this happens after the delete or rename has succeeded (its
C{post_*} hooks; the client's response waits for it), as internal
operations of the server that no access rule applies to, each one holder
at a time: a holder that cannot be updated is logged and left as it was,
and the client's result stays what it was. Those modifies are the
server's own, so they never set this plugin off again; their
C{modifiersName} is C{cn=Referential Integrity Overlay}, as slapd's. The
writes of a syncrepl consumer are left alone (the provider's refint makes
the changes, which come back by replication), and so are the databases of
replicas.

Holders are found with an equality search, C{(member=<DN>)}; values of the
Name and Optional UID syntax (C{uniqueMember}: C{<DN>#'0101'B}) are
compared by their DN part only, and found with a presence search, since
their equality rule compares the optional UID too.

When removing a value would leave an attribute that the holder's object
classes require without values (the last C{member} of a
C{groupOfNames}), the value C{nothing} is put in its place when
configured (slapd's C{refint_nothing}); without it the modify is refused
by the schema, logged, and the holder is left as it was.

Configuration::

    [[plugin]]
    name = "refint"
    attributes = ["member", "uniqueMember"]   # attribute types of DN syntax
    nothing = "cn=nobody"                     # optional
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any
from weakref import WeakKeyDictionary

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from ldapd.dn import DN, InvalidDN
from ldapd.entry import Entry, Modification
from ldapd.escaping import buildFilter
from ldapd.filters import compileFilter, everything
from ldapd.host import PluginHost
from ldapd.interfaces import IOperationPlugin, ITransaction
from ldapd.operation import Identity, Operation, Scope, SearchParameters
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.requests import parseFilter
from ldapd.results import NoSuchObject
from ldapd.schema import AttributeType, Schema

__all__ = [
    "DN_SYNTAX",
    "MODIFIERS_NAME",
    "NAME_AND_OPTIONAL_UID",
    "InvalidSetting",
    "ReferentialIntegrity",
    "ReferentialIntegrityFactory",
    "dnAttributeType",
    "dnValues",
]

#: The Distinguished Name syntax.
DN_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.12"
#: The Name and Optional UID syntax (C{uniqueMember}).
NAME_AND_OPTIONAL_UID = "1.3.6.1.4.1.1466.115.121.1.34"

#: The C{modifiersName} of the plugin's modifies, as slapd's default.
MODIFIERS_NAME = "cn=Referential Integrity Overlay"

#: How many names one search for holders asks for.
_NAMES_PER_SEARCH = 64

_UID = re.compile(rb"'[01]*'B")

_log = Logger()


class InvalidSetting(ValueError):
    """
    A plugin setting is wrong.

    @ivar key: the configuration key.
    @ivar problem: what is wrong with it.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def dnAttributeType(schema: Schema, key: str, name: str,
                    syntaxes: Sequence[str]) -> AttributeType:
    """
    @param schema: the schema.
    @param key: the setting naming the type, for the error.
    @param name: the attribute type's name or OID.
    @param syntaxes: the syntaxes it may have.
    @return: the attribute type.
    @raise InvalidSetting: if it is undefined or of another syntax.
    """
    at = schema.attributeType(name)
    if at is None:
        raise InvalidSetting(key, f"undefined attribute type {name!r}")
    if at.syntax not in syntaxes or at.equality is None:
        raise InvalidSetting(key, f"{at.name} is not of DN syntax with an equality rule")
    return at


def dnValues(entry: Entry, at: AttributeType) -> Iterator[tuple[str, bytes, DN, bytes]]:
    """
    The DN values an entry holds under an attribute type (or a subtype).

    @return: for each value: the attribute's description, the value as
        stored, its DN (the DN part of a Name and Optional UID) normalised,
        and what follows the DN (C{#'0101'B}, or nothing). Values that are
        no DN are skipped.
    """
    schema = entry.schema
    for attr in entry.matching(at):
        withUID = attr.type.syntax == NAME_AND_OPTIONAL_UID
        for raw in attr.values:
            name, uid = raw, b""
            if withUID:
                head, sep, tail = raw.rpartition(b"#")
                if sep and _UID.fullmatch(tail):
                    name, uid = head, sep + tail
            try:
                ndn = schema.normalizeDN(DN.parse(name))
            except InvalidDN:
                continue
            yield attr.description, raw, ndn, uid


def _requires(entry: Entry, at: AttributeType) -> bool:
    """
    @return: whether the object classes of C{entry} require C{at}.
    """
    schema = entry.schema
    for value in entry.get("objectClass"):
        oc = schema.objectClass(value.decode("utf-8", "replace"))
        if oc is None:
            continue
        for oid in schema.superclasses(oc.oid):
            superclass = schema.objectClass(oid)
            if superclass is not None and at in superclass.must:
                return True
    return False


@implementer(IOperationPlugin)
class ReferentialIntegrity:
    """
    Keeps DN values pointing at the entries they name, after deletes and renames.

    @ivar types: the attribute types kept.
    @ivar nothing: the value put in place of a required attribute's last
        one, or C{None}.
    """

    name = "refint"

    def __init__(self, schema: Schema, attributes: Sequence[str] = ("member", "uniqueMember"),
                 nothing: DN | None = None) -> None:
        """
        @param schema: the directory's schema, which must define the types.
        @param attributes: the names of the attribute types kept, each of
            DN or Name and Optional UID syntax.
        @param nothing: the value for a required attribute's last one.
        @raise InvalidSetting: naming the setting that is wrong.
        """
        self.types: list[AttributeType] = []
        for name in attributes:
            at = dnAttributeType(schema, "attributes", name, (DN_SYNTAX, NAME_AND_OPTIONAL_UID))
            if at not in self.types:
                self.types.append(at)
        if not self.types:
            raise InvalidSetting("attributes", "names no attribute type")
        self.nothing = nothing
        self._schema = schema
        self._modifiers = DN.parse(MODIFIERS_NAME)
        self.directory: Any = None
        # What a client's delete or rename did, from its transaction (the
        # last run of it, for a backend that runs it again) to its post hook.
        self._done: WeakKeyDictionary[Operation, tuple[DN, Entry | None]] = WeakKeyDictionary()

    def attach(self, host: PluginHost) -> None:
        """
        Remember the host's directory, whose databases are searched and updated.
        """
        self.directory = host.directory

    # Inside the write's transaction: what to do once it has succeeded.

    def txn_delete(self, op: Operation, txn: ITransaction, entry: Entry) -> None:
        """
        Note a client's delete, for L{post_delete}.
        """
        if not (op.internal or op.replicated):
            self._done[op] = (entry.ndn, None)

    def txn_rename(self, op: Operation, txn: ITransaction, old: Entry, new: Entry) -> None:
        """
        Note a client's rename, for L{post_rename}.
        """
        if not (op.internal or op.replicated):
            self._done[op] = (old.ndn, new)

    # After it

    def post_delete(self, op: Operation, resultCode: int) -> defer.Deferred[None] | None:
        """
        Remove the values naming a deleted entry.
        """
        return self._after(op, resultCode)

    def post_rename(self, op: Operation, resultCode: int) -> defer.Deferred[None] | None:
        """
        Replace the values naming a renamed entry or an entry below it.
        """
        return self._after(op, resultCode)

    def _after(self, op: Operation, resultCode: int) -> defer.Deferred[None] | None:
        done = self._done.pop(op, None)
        if done is None or resultCode != 0:
            return None
        old, new = done
        return defer.Deferred.fromCoroutine(self.update(old, new))

    async def update(self, old: DN, new: Entry | None) -> None:
        """
        Update every holder of a value naming C{old} or an entry below it.

        @param old: the normalised DN of the entry deleted or renamed.
        @param new: the renamed entry, or C{None} for a delete.
        """
        names = {old: new.dn if new is not None else None}
        if new is not None:
            names.update(await self._renamedBelow(old, new))
        holders: dict[DN, Entry] = {}
        targets = sorted(names, key=str)
        for start in range(0, len(targets), _NAMES_PER_SEARCH):
            for holder in await self._holders(targets[start:start + _NAMES_PER_SEARCH]):
                holders[holder.ndn] = holder
        for holder in holders.values():
            modifications = self._modifications(holder, old, new, names)
            if modifications:
                await self._modify(holder, modifications)

    async def _renamedBelow(self, old: DN, new: Entry) -> dict[DN, DN]:
        """
        @return: the former normalised DN of each entry below a renamed
            one, with its new DN.
        """
        db = self.directory.databaseFor(new.ndn)
        op = self._internal()
        op.search = SearchParameters(new.ndn, Scope.SUB, everything(self._schema))
        names: dict[DN, DN] = {}

        def emit(entry: Any) -> None:
            if isinstance(entry, Entry) and entry.ndn != new.ndn:
                names[entry.ndn.moved(new.ndn, old)] = entry.dn

        await db.backend.search(op, emit)
        return names

    def _filter(self, targets: Sequence[DN]) -> str:
        """
        @return: the filter finding the holders of values naming C{targets}.
        """
        parts = []
        for at in self.types:
            if at.syntax == NAME_AND_OPTIONAL_UID:
                parts.append(f"({at.name}=*)")
            else:
                parts.extend(buildFilter(f"({at.name}={{}})", str(t)) for t in targets)
        return "(|" + "".join(parts) + ")"

    async def _holders(self, targets: Sequence[DN]) -> list[Entry]:
        """
        @return: the entries, in every database but replicas', that may
            hold a value naming one of C{targets}.
        """
        compiled = compileFilter(parseFilter(self._filter(targets)), self._schema)
        found: list[Entry] = []
        for db in self.directory.configuredDatabases:
            if db.replica is not None:
                continue
            op = self._internal()
            op.search = SearchParameters(db.normalizedSuffix, Scope.SUB, compiled)

            def emit(entry: Any) -> None:
                if isinstance(entry, Entry):
                    found.append(entry)

            try:
                await db.backend.search(op, emit)
            except NoSuchObject:
                continue
        return found

    def _modifications(self, holder: Entry, old: DN, new: Entry | None,
                       names: dict[DN, DN | None]) -> list[Modification]:
        """
        @param names: the normalised DNs gone, with the names they have
            now (C{None} for a delete).
        @return: the changes that make C{holder}'s values name what exists.
        """
        modifications = []
        for at in self.types:
            held = list(dnValues(holder, at))
            kept = {(ndn, uid) for _, _, ndn, uid in held}
            for description in dict.fromkeys(d for d, _, _, _ in held):
                values = [(raw, ndn, uid) for d, raw, ndn, uid in held if d == description]
                removed, added = [], []
                for raw, ndn, uid in values:
                    if not ndn.isWithin(old):
                        continue
                    removed.append(raw)
                    kept.discard((ndn, uid))
                    if new is None:
                        continue
                    renamed = names.get(ndn) or ndn.moved(old, new.dn)
                    key = (self._schema.normalizeDN(renamed), uid)
                    if key not in kept:
                        kept.add(key)
                        added.append(str(renamed).encode("utf-8") + uid)
                if not removed:
                    continue
                modifications.append(Modification("delete", description, tuple(removed)))
                if added:
                    modifications.append(Modification("add", description, tuple(added)))
                elif (len(removed) == len(values) and self.nothing is not None
                      and _requires(holder, at)):
                    modifications.append(Modification(
                        "add", description, (str(self.nothing).encode("utf-8"),)))
        return modifications

    async def _modify(self, holder: Entry, modifications: list[Modification]) -> None:
        """
        Change one holder; a failure is logged, and the holder left as it was.
        """
        op = self._internal()
        try:
            await self.directory.modify(op, holder.ndn, modifications)
        except ldaperrors.LDAPException as e:
            _log.warn("refint: {dn} left as it was: {error}", dn=str(holder.dn), error=e)
        except Exception:  # noqa: BLE001 - one holder's failure must not stop the others
            _log.failure("refint: updating {dn} failed", dn=str(holder.dn))

    def _internal(self) -> Operation:
        """
        @return: an internal operation of the plugin, named as slapd's refint.
        """
        op: Operation = self.directory.internalOperation()
        op.identity = Identity(self._modifiers, self._schema.normalizeDN(self._modifiers),
                               isRoot=True)
        return op


class ReferentialIntegrityFactory:
    """
    Builds L{ReferentialIntegrity} from C{[[plugin]] name = "refint"} with
    C{attributes} (names of attribute types of DN syntax, default
    C{["member", "uniqueMember"]}) and C{nothing} (a DN).
    """

    name = "refint"
    description = "Values naming deleted or renamed entries removed or renamed with them."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> ReferentialIntegrity:
        """
        @param table: the plugin's configuration.
        @param context: the L{ConfigContext}.
        @raise ldapd.registry.ConfigError: naming the key that is wrong.
        """
        config = ConfigTable(table, context, {"attributes", "nothing"})
        attributes = config.strings("attributes", ["member", "uniqueMember"],
                                    "a list of attribute type names")
        nothing = config.dn("nothing")
        try:
            return ReferentialIntegrity(context.schema, attributes, nothing)
        except InvalidSetting as e:
            raise context.error(e.key, e.problem) from None
