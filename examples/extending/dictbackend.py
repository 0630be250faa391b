"""
A backend: a read-only naming context whose entries come from a Python dict.

It implements L{IBackend} with what a backend must do and nothing more:
find entries (by scope and filter), check a simple bind's password, and
refuse every write. Configure it by its factory's import path::

    [[database]]
    suffix = "dc=example,dc=org"
    backend = "examples.extending.dictbackend:DictBackendFactory"

    [database.entries."dc=example,dc=org"]
    objectClass = ["top", "dcObject", "organization"]
    dc = "example"
    o = "Example"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from zope.interface import implementer

from ldapd import passwords
from ldapd.backends.base import noSuchObject
from ldapd.dn import DN, InvalidDN
from ldapd.entry import Entry, Modification
from ldapd.interfaces import IBackend, ITransactionHooks
from ldapd.operation import Operation, Scope
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.schema import Schema

__all__ = ["DictBackend", "DictBackendFactory"]

#: The entries of a L{DictBackend}: DN to attribute descriptions to values.
Entries = Mapping[str, Mapping[str, Sequence[str | bytes]]]


@implementer(IBackend)
class DictBackend:
    """
    The entries of one naming context, given once and never changed.

    @ivar suffix: the normalised suffix.
    """

    def __init__(self, suffix: DN, schema: Schema, entries: Entries, reactor: Any = None) -> None:
        """
        @param suffix: the normalised suffix of the naming context.
        @param schema: the directory's schema.
        @param entries: the entries; each one's superior must be one of
            them, up to the suffix.
        @param reactor: the reactor, whose password verifier checks binds
            off the reactor thread when a hash is slow.
        @raise ValueError: for an entry outside the suffix, or without its
            superior.
        @raise ldapd.dn.InvalidDN: for a DN that is not one.
        @raise ldaptor.protocols.ldap.ldaperrors.LDAPUndefinedAttributeType:
            for an attribute the schema does not define.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.suffix = suffix
        self._reactor = reactor
        built = [
            Entry(DN.parse(dn), [(name, [_bytes(v) for v in values])
                                 for name, values in attributes.items()], schema)
            for dn, attributes in entries.items()
        ]
        # Parents before children: the order IBackend.search promises.
        built.sort(key=lambda e: len(e.ndn))
        self._entries: dict[DN, Entry] = {}
        for entry in built:
            if not entry.ndn.isWithin(suffix):
                raise ValueError(f"{entry.dn} is not within {suffix}")
            if entry.ndn != suffix and entry.ndn.parent() not in self._entries:
                raise ValueError(f"{entry.dn} has no superior among the entries")
            self._entries[entry.ndn] = entry

    def open(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def close(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def get(self, op: Operation, ndn: DN) -> defer.Deferred[Entry]:
        entry = self._entries.get(ndn)
        if entry is None:
            return defer.fail(noSuchObject(ndn, self.suffix, self._entries.get))
        return defer.succeed(entry)

    def search(self, op: Operation, emit: Callable[[Entry], Any]) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._search(op, emit))

    async def _search(self, op: Operation, emit: Callable[[Entry], Any]) -> None:
        """
        Emit the entries in scope that match, parents first. The size limit
        is the Directory's: C{emit} raises once it is reached (it alone
        knows how many entries the plugins let through), and the exception
        ends the search here. C{op.check()} ends it when the client
        abandons it or its time is up.
        """
        params = op.search
        assert params is not None
        base = params.base
        if base not in self._entries:
            raise noSuchObject(base, self.suffix, self._entries.get)
        for ndn, entry in list(self._entries.items()):
            op.check()
            if _inScope(ndn, base, params.scope) and params.filter.match(entry) is True:
                waiting = emit(entry)
                if waiting is not None:
                    # Paged results suspend the search between pages.
                    await waiting

    def authenticate(self, op: Operation, ndn: DN, password: bytes) -> defer.Deferred[Entry]:
        return defer.Deferred.fromCoroutine(self._authenticate(ndn, password))

    async def _authenticate(self, ndn: DN, password: bytes) -> Entry:
        """
        Check the password against the entry's C{userPassword} values
        through the reactor's password verifier, which runs slow schemes
        (argon2, bcrypt) in the thread pool within the server's limits.
        A missing entry gets the same answer as a wrong password.
        """
        entry = self._entries.get(ndn)
        stored = entry.get("userPassword") if entry is not None else ()
        if not await passwords.verifierFor(self._reactor).verify(stored, password, ndn):
            raise ldaperrors.LDAPInvalidCredentials()
        assert entry is not None
        return entry

    def add(self, op: Operation, entry: Entry, hooks: ITransactionHooks) -> defer.Deferred[None]:
        return _readOnly()

    def delete(self, op: Operation, ndn: DN, hooks: ITransactionHooks) -> defer.Deferred[None]:
        return _readOnly()

    def modify(self, op: Operation, ndn: DN, modifications: list[Modification],
               hooks: ITransactionHooks) -> defer.Deferred[Entry]:
        return _readOnly()

    def rename(self, op: Operation, ndn: DN, newDN: DN, deleteOldRDN: bool,
               hooks: ITransactionHooks,
               modifications: Sequence[Modification] = ()) -> defer.Deferred[Entry]:
        return _readOnly()


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _inScope(ndn: DN, base: DN, scope: Scope) -> bool:
    """
    @return: whether the entry C{ndn} is in the scope of a search from C{base}.
    """
    if scope == Scope.BASE:
        return ndn == base
    if scope == Scope.ONE:
        return bool(ndn) and ndn.parent() == base
    return ndn.isWithin(base)


def _readOnly() -> defer.Deferred[Any]:
    """
    @return: the failure of every write: unwillingToPerform (53), as slapd
        answers a write to a read-only database.
    """
    return defer.fail(ldaperrors.LDAPUnwillingToPerform("this naming context is read-only"))


class DictBackendFactory:
    """
    Builds a L{DictBackend} from a C{[[database]]} table: its C{entries}
    key is a table of DNs, each a table of attribute descriptions to a
    string or a list of strings.
    """

    name = "dict"
    description = "A read-only naming context of entries given in the configuration."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> DictBackend:
        """
        @param table: the backend's keys (the database's own are taken out).
        @param context: the database's context; its C{suffix} is set.
        @raise ldapd.registry.ConfigError: naming C{entries} when it is
            missing or wrong.
        """
        config = ConfigTable(table, context, {"entries"})
        entries = config.required("entries", dict, "a table of DNs to tables of attributes")
        for dn, attributes in entries.items():
            if not isinstance(attributes, dict) or not all(
                    isinstance(v, str) or isinstance(v, list) and all(isinstance(s, str) for s in v)
                    for v in attributes.values()):
                raise config.error("entries", f"{dn!r}: each attribute must be a string or a "
                                              "list of strings")
        assert context.suffix is not None
        try:
            return DictBackend(
                context.suffix, context.schema,
                {dn: {name: [v] if isinstance(v, str) else v for name, v in attributes.items()}
                 for dn, attributes in entries.items()},
                context.reactor)
        except (ValueError, InvalidDN, ldaperrors.LDAPException) as e:
            raise config.error("entries", str(e)) from None
