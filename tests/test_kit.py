"""
Tests for L{ldapd.backends.kit}: a read-write mapping over a dict passes
the backend conformance suite; what a read-only source does (scopes,
indexed lookups, cooperation, binds, refused writes); passwords kept in
a store's own format.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from ldapd import passwords
from ldapd.backends.kit import ReadOnlySource, ReadWriteMapping, cleartextPassword
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.filters import compileFilter
from ldapd.interfaces import IPasswordStorage
from ldapd.operation import Connection, Identity, Operation, Scope, SearchParameters
from ldapd.requests import PASSWORD_MODIFY, PasswordModifyRequest
from ldapd.schema import Schema
from ldapd.testing import BackendTestsMixin, RecordingHooks, parseFilter


class _DictStore:
    """
    Entries in a dict by normalised DN, written in place; a transaction is
    an undo log.
    """

    def __init__(self) -> None:
        self.entries: dict[DN, Entry] = {}
        self.undo: list[Callable[[], None]] | None = None

    def set(self, ndn: DN, entry: Entry | None) -> None:
        old = self.entries.get(ndn)
        assert self.undo is not None, "a write outside a transaction"
        self.undo.append(lambda: self._restore(ndn, old))
        self._restore(ndn, entry)

    def _restore(self, ndn: DN, entry: Entry | None) -> None:
        if entry is None:
            self.entries.pop(ndn, None)
        else:
            self.entries[ndn] = entry


class _StoreTransaction:
    def __init__(self, store: _DictStore) -> None:
        assert store.undo is None, "one transaction at a time"
        self._store = store
        store.undo = []

    def commit(self) -> None:
        self._store.undo = None

    def rollback(self) -> None:
        undo, self._store.undo = self._store.undo or [], None
        for step in reversed(undo):
            step()


class _DictSource(ReadOnlySource):
    """
    A read-only source over a L{_DictStore}, with an index of C{uid} that
    counts its lookups.
    """

    def __init__(self, suffix: DN, schema: Schema, store: _DictStore | None = None) -> None:
        super().__init__(suffix, schema)
        self.store = store or _DictStore()
        self.lookups: list[tuple[str, object]] = []

    def getEntry(self, ndn: DN) -> Entry | None:
        return self.store.entries.get(ndn)

    def listChildren(self, ndn: DN) -> Iterable[Entry]:
        return [e for n, e in sorted(self.store.entries.items(), key=lambda i: str(i[0]))
                if n != ndn and n.parent() == ndn]

    def lookup(self, attribute: str, key: object) -> Iterable[Entry] | None:
        if attribute != "uid":
            return None
        self.lookups.append((attribute, key))
        uid = self.schema.attributeType("uid")
        assert uid is not None
        return [e for e in self.store.entries.values()
                if (values := e.attribute(uid)) is not None and key in values.keys(self.schema)]


class _DictMapping(_DictSource, ReadWriteMapping):
    """
    A read-write mapping over a L{_DictStore}: the smallest one can write.
    """

    def begin(self) -> _StoreTransaction:
        return _StoreTransaction(self.store)

    def addEntry(self, txn: Any, op: Operation, entry: Entry) -> None:
        self.store.set(entry.ndn, entry)

    def replaceEntry(self, txn: Any, op: Operation, old: Entry, new: Entry) -> None:
        self.store.set(new.ndn, new)

    def deleteEntry(self, txn: Any, op: Operation, entry: Entry) -> None:
        self.store.set(entry.ndn, None)


class ReadWriteMappingTests(BackendTestsMixin, unittest.TestCase):
    """
    A L{ReadWriteMapping} over a dict passes the backend conformance suite
    (but for the changelog and write batches, which the kit does not
    offer: those tests skip).
    """

    def makeBackend(self, suffix: DN, schema: Schema) -> _DictMapping:
        return _DictMapping(suffix, schema)

    def test_indexedSearch(self) -> Any:
        """
        An equality assertion the source indexes is looked up, not walked
        to; the filter is still applied to what the lookup gives.
        """
        d = self.search(self.suffixText, Scope.SUB, "(&(uid=ALICE)(mail=alice@example.com))")
        d.addCallback(self.assertEqual, ["uid=alice,ou=people,dc=example,dc=com"])
        d.addCallback(lambda _: self.assertEqual(self.backend.lookups, [("uid", "alice")]))
        d.addCallback(lambda _: self.search("ou=groups,dc=example,dc=com", Scope.ONE, "(uid=alice)"))
        return d.addCallback(self.assertEqual, [])


def _op(search: SearchParameters | None = None, request: Any = None) -> Operation:
    from twisted.internet import reactor

    connection = Connection("test", reactor)
    connection.identity = Identity(isRoot=True)
    op = Operation(connection, 1, request)
    op.search = search
    return op


class _Fixture:
    """
    A few entries, two levels deep, for the read-only tests.
    """

    def setUp(self) -> None:
        self.schema = Schema.standard()
        self.suffix = self.ndn("dc=example,dc=com")
        self.store = _DictStore()
        self.store.undo = []
        for dn, attrs in [
            ("dc=example,dc=com", {"objectClass": [b"top", b"dcObject", b"organization"],
                                   "dc": [b"example"], "o": [b"Example"]}),
            ("ou=people,dc=example,dc=com", {"objectClass": [b"organizationalUnit"],
                                             "ou": [b"people"]}),
            ("uid=ada,ou=people,dc=example,dc=com", {
                "objectClass": [b"inetOrgPerson"], "uid": [b"ada"], "cn": [b"Ada"],
                "sn": [b"Lovelace"], "userPassword": [b"lovelace"]}),
            ("uid=off,ou=people,dc=example,dc=com", {
                "objectClass": [b"inetOrgPerson"], "uid": [b"off"], "cn": [b"Off"],
                "sn": [b"Off"], "userPassword": [b"off"]}),
        ]:
            entry = Entry(DN.parse(dn), list(attrs.items()), self.schema)
            self.store.set(entry.ndn, entry)
        self.store.undo = None

    def ndn(self, text: str) -> DN:
        return self.schema.normalizeDN(DN.parse(text))

    def search(self, backend: Any, base: str, scope: Scope, text: str,
               op: Operation | None = None) -> defer.Deferred[list[str]]:
        found: list[str] = []
        params = SearchParameters(self.ndn(base), scope,
                                  compileFilter(parseFilter(text), self.schema))
        if op is None:
            op = _op(params)
        else:
            op.search = params
        d = backend.search(op, lambda e: found.append(str(e.dn)))
        return d.addCallback(lambda _: found)


class _DisabledSource(_DictSource):
    def bindEntry(self, ndn: DN) -> Entry | None:
        return None if str(ndn.rdn) == "uid=off" else super().bindEntry(ndn)


class ReadOnlySourceTests(_Fixture, unittest.TestCase):
    """
    A L{ReadOnlySource} serves searches and binds from the author's
    C{getEntry}, C{listChildren} and C{lookup}, and refuses writes.

    The conformance suite does not apply to it as a whole: it fills the
    backend through C{add}, and half its tests are of writes and their
    transactions, which a read-only source refuses.
    """

    def setUp(self) -> None:
        super().setUp()
        self.source = _DisabledSource(self.suffix, self.schema, self.store)

    def test_scopes(self) -> Any:
        """
        Base, one-level and subtree searches, by walking the children,
        parents first; a missing base is noSuchObject with its matched DN.
        """
        s = self.source

        async def check() -> None:
            self.assertEqual(await self.search(s, "ou=people,dc=example,dc=com", Scope.BASE,
                                               "(objectClass=*)"), ["ou=people,dc=example,dc=com"])
            self.assertEqual(await self.search(s, "ou=people,dc=example,dc=com", Scope.ONE,
                                               "(objectClass=*)"), [
                "uid=ada,ou=people,dc=example,dc=com", "uid=off,ou=people,dc=example,dc=com"])
            self.assertEqual(await self.search(s, "dc=example,dc=com", Scope.SUB, "(sn=love*)"),
                             ["uid=ada,ou=people,dc=example,dc=com"])
            found = await self.search(s, "dc=example,dc=com", Scope.SUB, "(objectClass=*)")
            self.assertEqual(found[:2], ["dc=example,dc=com", "ou=people,dc=example,dc=com"])
            self.assertEqual(len(found), 4)
            try:
                await self.search(s, "uid=x,ou=people,dc=example,dc=com", Scope.SUB, "(cn=*)")
            except ldaperrors.LDAPNoSuchObject as e:
                self.assertEqual(str(e.matchedDN), "ou=people,dc=example,dc=com")  # type: ignore
            else:
                self.fail("no noSuchObject")
            self.assertEqual(s.lookups, [])

        return defer.Deferred.fromCoroutine(check())

    def test_lookupNarrows(self) -> Any:
        """
        An equality assertion on an indexed attribute, alone, in an And or
        in an Or of indexed ones, is answered by lookups; an Or with an
        unindexed part is walked.
        """
        s = self.source

        async def check() -> None:
            people = "ou=people,dc=example,dc=com"
            self.assertEqual(await self.search(s, people, Scope.ONE, "(|(uid=ada)(uid=OFF))"),
                             [f"uid=ada,{people}", f"uid=off,{people}"])
            self.assertEqual(s.lookups, [("uid", "ada"), ("uid", "off")])
            del s.lookups[:]
            self.assertEqual(await self.search(s, people, Scope.BASE, "(uid=ada)"), [])
            self.assertEqual(await self.search(s, people, Scope.SUB, "(&(cn=ada)(uid=ada))"),
                             [f"uid=ada,{people}"])
            self.assertEqual(await self.search(s, people, Scope.SUB, "(|(cn=off)(uid=ada))"),
                             [f"uid=ada,{people}", f"uid=off,{people}"])
            self.assertEqual(s.lookups, [("uid", "ada")])

        return defer.Deferred.fromCoroutine(check())

    def test_cooperates(self) -> Any:
        """
        A long search checks its operation (time limit, abandon) and yields
        to the reactor as it goes; a check that raises stops it.
        """
        self.store.undo = []
        for n in range(600):
            entry = Entry(DN.parse(f"cn=n{n},ou=people,dc=example,dc=com"),
                          [("objectClass", [b"device"]), ("cn", [f"n{n}".encode()])], self.schema)
            self.store.set(entry.ndn, entry)
        self.store.undo = None
        op = _op()
        checks: list[int] = []

        def check() -> None:
            checks.append(1)
            if len(checks) == 2:
                raise ldaperrors.LDAPTimeLimitExceeded()

        op.check = check  # type: ignore[method-assign]
        d = self.search(self.source, "dc=example,dc=com", Scope.SUB, "(cn=n599)", op)
        return d.addCallbacks(self.fail, lambda f: (
            f.trap(ldaperrors.LDAPTimeLimitExceeded), self.assertEqual(len(checks), 2)))

    def test_authenticate(self) -> Any:
        """
        A bind checks the entry's userPassword; an account C{bindEntry}
        refuses, a missing one and a wrong password are all invalidCredentials.
        """
        ada = self.ndn("uid=ada,ou=people,dc=example,dc=com")
        d = self.source.authenticate(_op(), ada, b"lovelace")
        d.addCallback(lambda e: self.assertEqual(e.ndn, ada))
        for name, password in [("uid=ada", b"wrong"), ("uid=off", b"off"), ("uid=zed", b"x")]:
            d.addCallback(lambda _, n=name, p=password: self.source.authenticate(
                _op(), self.ndn(f"{n},ou=people,dc=example,dc=com"), p))
            d.addCallbacks(self.fail, lambda f: f.trap(ldaperrors.LDAPInvalidCredentials))
        return d

    def test_writesRefused(self) -> Any:
        """
        Every write is unwillingToPerform, and changes nothing.
        """
        ada = self.ndn("uid=ada,ou=people,dc=example,dc=com")
        hooks = RecordingHooks()
        writes = [
            self.source.add(_op(), Entry(DN.parse("cn=x,dc=example,dc=com"),
                                         [("objectClass", [b"device"])], self.schema), hooks),
            self.source.delete(_op(), ada, hooks),
            self.source.modify(_op(), ada, [Modification("replace", "cn", (b"x",))], hooks),
            self.source.rename(_op(), ada, DN.parse("uid=b,ou=people,dc=example,dc=com"), True,
                               hooks),
        ]
        for d in writes:
            self.failureResultOf(d, ldaperrors.LDAPUnwillingToPerform)
        self.assertEqual((hooks.calls, len(self.store.entries)), ([], 4))


def _ownFormat(password: bytes) -> bytes:
    return b"own$" + password[::-1]


class _OwnFormatMapping(_DictMapping):
    """
    A mapping that keeps passwords in a format of its own.
    """

    def __init__(self, suffix: DN, schema: Schema, store: _DictStore) -> None:
        super().__init__(suffix, schema, store)
        self.hashPassword = _ownFormat


class OwnPasswordFormatTests(_Fixture, unittest.TestCase):
    """
    A mapping with C{hashPassword} receives the passwords written to it in
    its own format, whenever their cleartext is known.
    """

    def setUp(self) -> None:
        super().setUp()
        self.mapping = _OwnFormatMapping(self.suffix, self.schema, self.store)
        self.ada = self.ndn("uid=ada,ou=people,dc=example,dc=com")
        verifier = passwords.verifierFor(self.mapping.reactor)
        self.threaded: list[Any] = []

        def inThread(work: Any) -> Any:
            self.threaded.append(work)
            return defer.maybeDeferred(work)

        self.patch(verifier, "_runInThread", inThread)

    def passwordOf(self, ndn: DN) -> tuple[bytes, ...]:
        entry = self.store.entries[ndn]
        return entry.get("userPassword")

    def test_cleartextModify(self) -> None:
        """
        A cleartext value is hashed with C{hashPassword}, in the thread
        pool; a hashed value whose cleartext is unknown passes as it is.
        """
        self.successResultOf(self.mapping.modify(_op(), self.ada, [
            Modification("replace", "userPassword", (b"secret", b"{SSHA}abcd"))], RecordingHooks()))
        self.assertEqual(self.passwordOf(self.ada), (b"own$terces", b"{SSHA}abcd"))
        self.assertEqual(len(self.threaded), 1)

    def test_storedPassword(self) -> None:
        """
        A password the server sets (Password Modify, generated or given) is
        made in the store's format, in the thread pool, and stored as it
        is; a hashed value's cleartext is not known.
        """
        verifyObject(IPasswordStorage, self.mapping)
        op = _op(request=PasswordModifyRequest(PASSWORD_MODIFY, newPassword=b"newpass"))
        stored = self.successResultOf(self.mapping.storedPassword(op, self.ada, b"newpass"))
        self.assertEqual(stored, b"own$ssapwen")
        self.assertEqual(len(self.threaded), 1)
        self.assertIsNone(cleartextPassword(passwords.hashPassword(b"newpass", "{SSHA}")))
        self.successResultOf(self.mapping.modify(op, self.ada, [
            Modification("replace", "userPassword", (stored,))], RecordingHooks()))
        self.assertEqual(self.passwordOf(self.ada), (b"own$ssapwen",))

    def test_directoryStoredPassword(self) -> None:
        """
        The directory asks a mapping with its own format for the stored form
        of the passwords it sets, and hashes with its own scheme for others.
        """
        suffix = self.mapping.suffix
        directory = Directory([Database(suffix, self.mapping)], schema=self.mapping.schema,
                              reactor=self.mapping.reactor)
        op = directory.internalOperation()
        self.assertEqual(self.successResultOf(directory.storedPassword(op, self.ada, b"pw")),
                         b"own$wp")
        self.mapping.hashPassword = None
        stored = self.successResultOf(directory.storedPassword(op, self.ada, b"pw", scheme="{SSHA}"))
        self.assertTrue(passwords.verifyPassword(stored, b"pw"))

    def test_add(self) -> None:
        """
        An added entry's cleartext userPassword is stored in the store's format.
        """
        entry = Entry(DN.parse("uid=new,ou=people,dc=example,dc=com"), [
            ("objectClass", [b"inetOrgPerson"]), ("uid", [b"new"]), ("cn", [b"New"]),
            ("sn", [b"New"]), ("userPassword", [b"abc"])], self.schema)
        self.successResultOf(self.mapping.add(_op(), entry, RecordingHooks()))
        self.assertEqual(self.passwordOf(entry.ndn), (b"own$cba",))
