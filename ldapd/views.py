"""
The root DSE and the subschema subentry as read-only views.

Each is a backend serving one entry that the server computes, registered
with L{Directory.addView<ldapd.directory.Directory.addView>} as C{cn=Monitor}
is with C{addPrivateDatabase}: the Directory routes a request that names the
entry to it, and the search module sends what it finds. Unlike the private
views they are public (anyone reads them, as in slapd: the entries a client
reads to learn how to talk to the server), so no plugin filters them, and
they answer only at their own name, never for a name below it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from zope.interface import implementer

from ldapd import _version
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.extensions import Extensions
from ldapd.gentime import formatTime
from ldapd.interfaces import IBackend
from ldapd.operation import Connection, Operation, Scope
from ldapd.requests import START_TLS
from ldapd.results import NoSuchObject
from ldapd.schema import RULES, Schema

if TYPE_CHECKING:
    from ldapd.directory import Directory

__all__ = ["SUBSCHEMA_DN", "RootDSE", "Subschema", "advertised"]

#: The name of the subschema subentry, as every entry's C{subschemaSubentry} gives it.
SUBSCHEMA_DN = "cn=Subschema"

def advertised(extensions: Extensions) -> list[tuple[str, list[bytes]]]:
    """
    What the root DSE says the server supports: exactly what is registered.

    @param extensions: the directory's registrations, plugins' included.
    @return: C{supportedControl}, C{supportedExtension} and
        C{supportedFeatures}, with their values.
    """
    return [
        ("supportedControl", [oid.encode() for oid in extensions.supportedControls]),
        ("supportedExtension", [oid.encode() for oid in extensions.supportedExtensions]),
        ("supportedFeatures", [oid.encode() for oid in extensions.supportedFeatures]),
    ]


@implementer(IBackend)
class _EntryView:
    """
    A read-only backend serving one entry at its own name (its C{suffix}).

    @ivar suffix: the entry's normalised DN.
    @ivar entry: the entry as built.
    """

    suffix: DN
    entry: Entry

    def entryFor(self, op: Operation) -> defer.Deferred[Entry]:
        """
        @param op: the operation that reads the entry.
        @return: the entry as C{op} sees it.
        """
        return defer.succeed(self.entry)

    def checkScope(self, scope: Scope) -> None:
        """
        Refuse a search of the entry with a scope it does not answer.

        @raise NoSuchObject: if it does not.
        """

    def open(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def close(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def get(self, op: Operation, ndn: DN) -> defer.Deferred[Entry]:
        if ndn != self.suffix:
            return defer.fail(NoSuchObject("no such object"))
        return self.entryFor(op)

    def search(self, op: Operation, emit: Callable[[Entry], Any]) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._search(op, emit))

    async def _search(self, op: Operation, emit: Callable[[Entry], Any]) -> None:
        params = op.search
        assert params is not None
        if params.base != self.suffix:
            raise NoSuchObject("no such object")
        self.checkScope(params.scope)
        entry = await self.entryFor(op)
        if params.filter.match(entry) is True:
            sending = emit(entry)
            if sending is not None:
                await sending

    def authenticate(self, op: Operation, ndn: DN, password: bytes) -> defer.Deferred[Entry]:
        return defer.fail(ldaperrors.LDAPInvalidCredentials())

    def _readOnly(self, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        return defer.fail(
            ldaperrors.LDAPUnwillingToPerform("the root DSE and subschema are read-only"))

    add = delete = modify = rename = _readOnly


class RootDSE(_EntryView):
    """
    The root DSE (RFC 4512 §5.1), at the empty DN, read with a base search
    only. Part of it is the reading connection's (L{forConnection}), part is
    computed when it is read (L{Directory.rootDSEProviders
    <ldapd.directory.Directory.rootDSEProviders>}).

    @ivar entry: what every connection sees, built once the plugins are
        attached.
    """

    def __init__(self, directory: Directory) -> None:
        """
        @param directory: the directory, with its plugins attached.
        """
        self._directory = directory
        self._schema = directory.schema
        self.suffix = DN()
        self.entry = Entry(
            DN(),
            [
                ("objectClass", [b"top"]),
                # As configured: a plugin's own view (cn=changelog) is no
                # naming context of the server's.
                ("namingContexts",
                 [str(db.suffix).encode() for db in directory.configuredDatabases]),
                ("supportedLDAPVersion", [b"3"]),
                *advertised(directory.extensions),
                ("subschemaSubentry", [SUBSCHEMA_DN.encode()]),
                ("vendorName", [b"ldapd"]),
                ("vendorVersion", [f"ldapd {_version.__version__}".encode()]),
            ],
            self._schema,
        )

    def forConnection(self, connection: Connection) -> Entry:
        """
        The root DSE as one connection sees it: StartTLS is listed where the
        connection can use it, and C{supportedSASLMechanisms} names the
        mechanisms it can use now.
        """
        mechanisms = self._directory.authentication.mechanisms(connection, self._schema)
        if connection.startTLS is not None and not mechanisms:
            return self.entry
        attributes = []
        for attr in self.entry:
            values = attr.values
            if attr.type.name == "supportedExtension" and connection.startTLS is None:
                values = tuple(v for v in values if v != START_TLS.encode())
            attributes.append((attr.description, list(values)))
        if mechanisms:
            attributes.append(("supportedSASLMechanisms", [m.encode() for m in mechanisms]))
        return Entry(self.entry.dn, attributes, self._schema, self.entry.ndn)

    def entryFor(self, op: Operation) -> defer.Deferred[Entry]:
        """
        @return: the root DSE as C{op}'s connection sees it, with the
            attributes of the directory's C{rootDSEProviders}.
        """
        entry = self.forConnection(op.connection)
        if not self._directory.rootDSEProviders:
            return defer.succeed(entry)
        return defer.Deferred.fromCoroutine(self._withProvided(entry))

    async def _withProvided(self, entry: Entry) -> Entry:
        attributes: list[tuple[str, Sequence[bytes]]] = [(a.description, a.values) for a in entry]
        for provider in self._directory.rootDSEProviders:
            attributes.extend(await provider())
        return Entry(entry.dn, attributes, self._schema, entry.ndn)

    def checkScope(self, scope: Scope) -> None:
        """
        The root DSE answers only a base search: a one-level or subtree
        search of the empty DN is noSuchObject, as in slapd.
        """
        if scope != Scope.BASE:
            raise NoSuchObject("no such object")


class Subschema(_EntryView):
    """
    The subschema subentry (RFC 4512 §4.2): every syntax, matching rule,
    attribute type and object class, with the time the schema was loaded as
    its creation and modification time. A search of it with any scope
    finds it alone.

    @ivar entry: the subentry.
    """

    def __init__(self, schema: Schema) -> None:
        """
        @param schema: the schema it publishes.
        """
        rules = {id(r): r for r in RULES.values()}.values()
        loaded = formatTime(datetime.now(timezone.utc))
        self.entry = Entry(
            DN.parse(SUBSCHEMA_DN),
            [
                ("objectClass", [b"top", b"subentry", b"subschema", b"extensibleObject"]),
                ("cn", [b"Subschema"]),
                ("structuralObjectClass", [b"subentry"]),
                ("createTimestamp", [loaded]),
                ("modifyTimestamp", [loaded]),
                ("ldapSyntaxes", [syntax.describe().encode() for syntax in schema.syntaxes]),
                ("matchingRules", [r.describe().encode() for r in rules]),
                ("matchingRuleUse", [use.encode() for use in schema.matchingRuleUses()]),
                ("attributeTypes", [at.definition.encode() for at in schema.attributeTypes]),
                ("objectClasses", [oc.definition.encode() for oc in schema.objectClasses]),
            ],
            schema,
        )
        self.suffix = self.entry.ndn
