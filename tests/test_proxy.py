"""
Tests for L{ldapd.backends.proxy}: the backend conformance suite in front of
two real upstreams (a second ldapd process and a private slapd), with the
documented behaviour where a proxy cannot roll back; DN rewriting; upstream
paging; forwarded compares; referrals and continuation references;
pass-through binds and their cache; timeouts, failover and configuration.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import ldap
from ldap.controls.simple import ManageDSAITControl
from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer, protocol, reactor, task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from ldapd.backends._proxypool import UpstreamPool, parseUpstream
from ldapd.backends._proxyrewrite import SuffixRewriter
from ldapd.backends.proxy import ProxyBackend, ProxyBackendFactory
from ldapd.config import loadConfig
from ldapd.controls import MANAGE_DSA_IT, ManageDsaIT
from ldapd.dn import DN
from ldapd.entry import Entry, Modification, SearchReference
from ldapd.filters import compileFilter, withoutAssertionsOn
from ldapd.interfaces import IBackendCompare
from ldapd.operation import Connection, Identity, Operation, Scope, SearchParameters
from ldapd.registry import ConfigContext, ConfigError
from ldapd.requests import SearchRequest
from ldapd.results import NoSuchObject, Referral
from ldapd.schema import Schema
from ldapd.testing import (
    SOURCE_ROOT,
    BackendTestsMixin,
    RecordingHooks,
    ServerProcess,
    SlapdProcess,
    decodedRequest,
    freePort,
    parseFilter,
    wireFilter,
)

REMOTE_SUFFIX = "dc=corp,dc=internal"
SERVICE_DN = "cn=admin,dc=corp,dc=internal"
SERVICE_PASSWORD = "secret"

#: An upstream ldapd: an empty memory database for the remote suffix.
UPSTREAM_CONFIG = f"""
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]

[[database]]
suffix = "{REMOTE_SUFFIX}"
backend = "memory"
root_dn = "{SERVICE_DN}"
root_password = "{SERVICE_PASSWORD}"
"""


def clearUpstream(url: str) -> None:
    """
    Delete every entry of the remote suffix, referral objects included,
    deepest first, as its root DN.
    """
    conn = ldap.initialize(url)
    manage = [ManageDSAITControl()]
    try:
        conn.simple_bind_s(SERVICE_DN, SERVICE_PASSWORD)
        try:
            found = conn.search_ext_s(REMOTE_SUFFIX, ldap.SCOPE_SUBTREE, "(objectClass=*)",
                                      ["1.1"], serverctrls=manage)
        except ldap.NO_SUCH_OBJECT:
            return
        for dn, _ in sorted(found, key=lambda r: -len(ldap.dn.str2dn(r[0]))):
            conn.delete_ext_s(dn, serverctrls=manage)
    finally:
        conn.unbind_s()


def upstreamEntry(url: str, dn: str) -> dict[str, list[bytes]]:
    """
    @return: an entry as the upstream itself stores it.
    """
    conn = ldap.initialize(url)
    try:
        conn.simple_bind_s(SERVICE_DN, SERVICE_PASSWORD)
        return conn.search_s(dn, ldap.SCOPE_BASE)[0][1]  # type: ignore[no-any-return]
    finally:
        conn.unbind_s()


def operation(identity: Identity | None = None, connection: Connection | None = None,
              search: SearchParameters | None = None) -> Operation:
    """
    @return: an operation on C{connection} (a new one by default) as C{identity}.
    """
    if connection is None:
        connection = Connection("test", reactor)
    connection.identity = identity or Identity(isRoot=True)
    op = Operation(connection, 1, None)
    op.search = search
    return op


class _ProxyConformanceMixin(BackendTestsMixin):
    """
    The conformance suite run through a proxy to a real upstream that holds
    the remote suffix; the upstream is emptied before each test.

    A proxy cannot roll back what its upstream has committed: the three
    tests of a txn hook failing after the write are replaced by tests of
    what the proxy does instead (see L{ldapd.backends.proxy}).
    """

    upstream: Any = None
    pageSize = 500

    @classmethod
    def startUpstream(cls) -> Any:
        raise NotImplementedError

    @classmethod
    def setUpClass(cls) -> None:
        cls.upstream = cls.startUpstream()

    @classmethod
    def tearDownClass(cls) -> None:
        upstream = cls.__dict__.get("upstream")
        if upstream is not None:
            upstream.stop()
            cls.upstream = None

    def setUp(self) -> Any:
        cls = type(self)
        if cls.__dict__.get("upstream") is None:
            cls.setUpClass()
            atexit.register(cls.tearDownClass)
        clearUpstream(self.upstream.url)
        return super().setUp()

    def makeBackend(self, suffix: DN, schema: Schema) -> ProxyBackend:
        pool = UpstreamPool([parseUpstream(self.upstream.url)], reactor, SERVICE_DN,
                            SERVICE_PASSWORD.encode(), timeout=10)
        return ProxyBackend(suffix, schema, pool, DN.parse(REMOTE_SUFFIX), self.pageSize)

    def assertAppliedAnyway(self, failure: Any) -> None:
        """
        The failure is the hook's unwillingToPerform, saying the write was applied.
        """
        failure.trap(ldaperrors.LDAPUnwillingToPerform)
        self.assertIn("upstream write was applied", failure.value.message)

    def test_addRollback(self) -> Any:
        """
        A txn hook that fails after the upstream added the entry cannot undo
        the add: the entry stays, the error reaches the caller saying so, and
        what the hook wrote through the transaction is not forwarded.
        """
        extra = self.person("extra")
        self.hooks.onTxn = lambda op, txn, args: txn.put(extra)
        self.hooks.failOn.add(("txn", "add"))
        d = self.backend.add(operation(), self.person("carol"), self.hooks)
        d.addCallbacks(self.fail, self.assertAppliedAnyway)
        d.addCallback(lambda _: self.search("ou=people,dc=example,dc=com", Scope.ONE))
        return d.addCallback(lambda found: self.assertEqual(sorted(found), [
            "uid=alice,ou=people,dc=example,dc=com", "uid=bob,ou=people,dc=example,dc=com",
            "uid=carol,ou=people,dc=example,dc=com"]))

    def test_deleteRollback(self) -> Any:
        """
        A txn hook that fails after the upstream deleted the entry cannot
        bring it back; the error reaches the caller saying so.
        """
        self.hooks.failOn.add(("txn", "delete"))
        d = self.backend.delete(operation(), self.ndn("uid=bob,ou=people,dc=example,dc=com"),
                                self.hooks)
        d.addCallbacks(self.fail, self.assertAppliedAnyway)
        d.addCallback(lambda _: self.search("dc=example,dc=com", Scope.SUB, "(uid=bob)"))
        return d.addCallback(self.assertEqual, [])

    def test_renameRollback(self) -> Any:
        """
        A txn hook that fails after the upstream renamed a subtree leaves it
        under its new name; the error reaches the caller saying so.
        """
        self.hooks.failOn.add(("txn", "rename"))
        d = self.backend.rename(operation(), self.ndn("ou=people,dc=example,dc=com"),
                                DN.parse("ou=staff,dc=example,dc=com"), True, self.hooks)
        d.addCallbacks(self.fail, self.assertAppliedAnyway)
        d.addCallback(lambda _: self.search(self.suffixText, Scope.SUB, "(uid=*)"))
        return d.addCallback(lambda found: self.assertEqual(sorted(found), [
            "uid=alice,ou=staff,dc=example,dc=com", "uid=bob,ou=staff,dc=example,dc=com"]))

    def test_checkFailureWritesNothing(self) -> Any:
        """
        A check hook runs before anything is sent upstream: when it fails,
        nothing is written.
        """
        self.hooks.failOn.add(("check", "add"))
        d = self.backend.add(operation(), self.person("carol"), self.hooks)
        d.addCallbacks(self.fail, lambda f: f.trap(ldaperrors.LDAPUnwillingToPerform))
        d.addCallback(lambda _: self.search("dc=example,dc=com", Scope.SUB, "(uid=carol)"))
        return d.addCallback(self.assertEqual, [])

    def test_compare(self) -> Any:
        """
        Compare is forwarded upstream, its DN and DN-valued assertion
        rewritten: compareTrue and compareFalse come back as C{True} and
        C{False}, errors as the upstream's (the matched DN rewritten).
        """
        backend = self.backend
        verifyObject(IBackendCompare, backend)
        alice = self.ndn("uid=alice,ou=people,dc=example,dc=com")
        cn = self.schema.attributeType("cn")

        async def run() -> None:
            self.assertIs(await backend.compare(operation(), alice, cn, (), b"ALICE example"), True)
            self.assertIs(await backend.compare(operation(), alice, cn, (), b"Bob"), False)
            self.assertIs(await backend.compare(
                operation(), self.ndn("cn=staff,ou=groups,dc=example,dc=com"),
                self.schema.attributeType("member"), (), str(alice).encode()), True)
            with self.assertRaises(ldaperrors.LDAPNoSuchAttribute):
                await backend.compare(operation(), alice, self.schema.attributeType("roomNumber"),
                                      (), b"1")
            with self.assertRaises(NoSuchObject) as missing:
                await backend.compare(operation(), self.ndn("uid=zed,ou=people,dc=example,dc=com"),
                                      cn, (), b"x")
            self.assertEqual(str(missing.exception.matchedDN), "ou=people,dc=example,dc=com")

        return defer.Deferred.fromCoroutine(run())

    def test_namesRewrittenUpstream(self) -> Any:
        """
        The upstream stores the entries under the remote suffix, DN-valued
        attributes included; the proxy shows them under the local one.
        """
        stored = upstreamEntry(self.upstream.url, "cn=staff,ou=groups," + REMOTE_SUFFIX)
        self.assertEqual(stored["member"], [b"uid=alice,ou=people,dc=corp,dc=internal"])
        d = self.backend.get(operation(), self.ndn("cn=staff,ou=groups,dc=example,dc=com"))
        return d.addCallback(lambda e: self.assertEqual(
            e.get("member"), (b"uid=alice,ou=people,dc=example,dc=com",)))


    def suspendedSearch(self) -> tuple[list[str], defer.Deferred[None], defer.Deferred[None], Any]:
        """
        Start a subtree search whose emit suspends it at the second entry.

        @return: the DNs emitted so far, a Deferred that fires when the
            search reaches its gate, the gate that resumes it, and the
            search's Deferred.
        """
        seen: list[str] = []
        reached: defer.Deferred[None] = defer.Deferred()
        gate: defer.Deferred[None] = defer.Deferred()

        def emit(entry: Entry) -> Any:
            seen.append(str(entry.dn))
            if len(seen) != 2:
                return None
            reached.callback(None)
            return gate

        params = SearchParameters(self.suffix, Scope.SUB,
                                  compileFilter(parseFilter("(objectClass=*)"), self.schema))
        return seen, reached, gate, self.backend.search(operation(search=params), emit)

    def test_concurrentSearches(self) -> Any:
        """
        Two searches suspended at once, each paging the upstream, do not
        disturb each other (each has a connection of its own), and only the
        pooled connection is left when they are done.
        """
        self.backend.pageSize = 1
        self.backend.pool.size = 1
        first, firstReached, firstGate, firstDone = self.suspendedSearch()
        second, secondReached, secondGate, secondDone = self.suspendedSearch()

        def resume(_: Any) -> Any:
            self.assertEqual((len(first), len(second)), (2, 2))
            firstGate.callback(None)
            secondGate.callback(None)
            return defer.gatherResults([firstDone, secondDone])

        # Both searches wait at their gates at once, however slowly the
        # upstream answers on a loaded machine.
        d = defer.gatherResults([firstReached, secondReached])
        d.addCallback(lambda _: task.deferLater(reactor, 0, resume, None))
        d.addCallback(lambda _: self.assertEqual((len(set(first)), len(set(second))), (6, 6)))
        return d.addCallback(lambda _: self.assertEqual(
            [c.searching for c in self.backend.pool._connections], [False]))

    def test_cancelledSearch(self) -> Any:
        """
        Cancelling a suspended search (abandon, time limit) abandons it
        upstream and gives its connection back.
        """
        _, reached, _, done = self.suspendedSearch()

        def cancel(_: Any) -> None:
            done.cancel()
            self.failureResultOf(done, defer.CancelledError)
            self.assertEqual([c.searching for c in self.backend.pool._connections], [False])

        # Cancelled once its emit has returned, as an abandon would be.
        d = reached.addCallback(lambda _: task.deferLater(reactor, 0, cancel, None))
        d.addCallback(lambda _: self.search(self.suffixText, Scope.SUB, "(uid=*)"))
        return d.addCallback(lambda found: self.assertEqual(len(found), 2))


class ProxyToLdapdTests(_ProxyConformanceMixin, unittest.TestCase):
    """
    The proxy in front of a second ldapd process passes the conformance suite.
    """

    @classmethod
    def startUpstream(cls) -> ServerProcess:
        server = ServerProcess(UPSTREAM_CONFIG)
        server.start()
        return server

    def test_clientWritesAsClient(self) -> Any:
        """
        A write by a client that bound through the proxy goes upstream as
        that client, so the upstream's access rules apply: the upstream
        ldapd lets only its root DN write.
        """
        connection = Connection("test", reactor)
        bob = self.ndn("uid=bob,ou=people,dc=example,dc=com")
        d = self.backend.authenticate(operation(connection=connection), bob, b"bob-secret")
        d.addCallback(lambda _: self.backend.modify(
            operation(Identity(DN.parse(str(bob)), bob), connection), bob,
            [Modification("replace", "description", (b"mine",))], self.hooks))
        return d.addCallbacks(
            self.fail, lambda f: f.trap(ldaperrors.LDAPInsufficientAccessRights))

    def test_serviceWritesForOthers(self) -> Any:
        """
        A write by an identity that did not bind through the proxy (a root
        DN) goes upstream as the service account.
        """
        bob = self.ndn("uid=bob,ou=people,dc=example,dc=com")
        d = self.backend.modify(operation(), bob,
                                [Modification("replace", "description", (b"set",))], self.hooks)
        return d.addCallback(lambda e: self.assertEqual(e.get("description"), (b"set",)))

    def test_bindCache(self) -> Any:
        """
        With a bind cache, a bind that succeeded is not sent upstream again
        until the cache time has passed: a password changed upstream meanwhile
        is noticed only then.
        """
        clock = task.Clock()
        pool = UpstreamPool([parseUpstream(self.upstream.url)], reactor, SERVICE_DN,
                            SERVICE_PASSWORD.encode(), clock=clock)
        backend = ProxyBackend(self.suffix, self.schema, pool, DN.parse(REMOTE_SUFFIX),
                               bindCacheSeconds=60)
        self.addCleanup(backend.close)
        bob = self.ndn("uid=bob,ou=people,dc=example,dc=com")

        async def run() -> None:
            await backend.authenticate(operation(), bob, b"bob-secret")
            await self.backend.modify(operation(), bob, [
                Modification("replace", "userPassword", (b"new-secret",))], RecordingHooks())
            cached = await backend.authenticate(operation(), bob, b"bob-secret")
            self.assertEqual(cached.ndn, bob)
            clock.advance(61)
            with self.assertRaises(ldaperrors.LDAPInvalidCredentials):
                await backend.authenticate(operation(), bob, b"bob-secret")
            await backend.authenticate(operation(), bob, b"new-secret")

        return defer.Deferred.fromCoroutine(run())

    def test_pagedUpstream(self) -> Any:
        """
        A search reads the upstream in pages, asking for the next page only
        when the entries of this one are emitted: with pages of two entries,
        a paused emit holds the search and every entry arrives once.
        """
        self.backend.pageSize = 2
        seen: list[str] = []
        gate: defer.Deferred[None] = defer.Deferred()

        def emit(entry: Entry) -> Any:
            seen.append(str(entry.dn))
            return gate if len(seen) == 3 else None

        params = SearchParameters(self.suffix, Scope.SUB,
                                  compileFilter(parseFilter("(objectClass=*)"), self.schema))
        d = self.backend.search(operation(search=params), emit)

        def paused(_: Any) -> Any:
            self.assertEqual(len(seen), 3)
            self.assertFalse(d.called)
            gate.callback(None)
            return d

        d2 = task.deferLater(reactor, 0.05, lambda: None).addCallback(paused)
        return d2.addCallback(lambda _: self.assertEqual(len(set(seen)), 6))

    def test_clientFilterForwarded(self) -> Any:
        """
        A client's search filter is forwarded with its DN assertion values
        rewritten, and entries are confirmed against the compiled filter, so
        an assertion the access rules made Undefined matches nothing.
        """
        request = decodedRequest(pureldap.LDAPSearchRequest(
            baseObject="dc=example,dc=com",
            filter=wireFilter("(member=uid=alice,ou=people,dc=example,dc=com)"))).request
        assert isinstance(request, SearchRequest)
        params = SearchParameters(self.suffix, Scope.SUB, compileFilter(request.filter, self.schema))
        op = operation(search=params)
        op.request = request
        found: list[str] = []
        d = self.backend.search(op, lambda e: found.append(str(e.dn)))
        d.addCallback(lambda _: self.assertEqual(found, ["cn=staff,ou=groups,dc=example,dc=com"]))
        hidden = decodedRequest(pureldap.LDAPSearchRequest(
            baseObject="dc=example,dc=com", filter=wireFilter("(userPassword=bob-secret)"))).request
        assert isinstance(hidden, SearchRequest)

        def searchHidden(_: Any) -> Any:
            op.request = hidden
            private = frozenset({self.schema.attributeType("userPassword")})
            op.search = SearchParameters(self.suffix, Scope.SUB, withoutAssertionsOn(
                compileFilter(hidden.filter, self.schema), private))
            del found[:]
            return self.backend.search(op, lambda e: found.append(str(e.dn)))

        d.addCallback(searchHidden)
        return d.addCallback(lambda _: self.assertEqual(found, []))


class ProxyToSlapdTests(_ProxyConformanceMixin, unittest.TestCase):
    """
    The proxy in front of a private OpenLDAP slapd (back-mdb) passes the
    conformance suite.
    """

    @classmethod
    def startUpstream(cls) -> SlapdProcess:
        server = SlapdProcess(REMOTE_SUFFIX, SERVICE_DN, SERVICE_PASSWORD)
        server.start()
        return server

    def addReferral(self) -> None:
        """
        Add C{ou=remote} to slapd: a referral object pointing at another server.
        """
        conn = ldap.initialize(self.upstream.url)
        try:
            conn.simple_bind_s(SERVICE_DN, SERVICE_PASSWORD)
            conn.add_ext_s(f"ou=remote,{REMOTE_SUFFIX}", [
                ("objectClass", [b"referral", b"extensibleObject"]), ("ou", [b"remote"]),
                ("ref", [f"ldap://dir3.internal/ou=remote,{REMOTE_SUFFIX}".encode()]),
            ], serverctrls=[ManageDSAITControl()])
        finally:
            conn.unbind_s()

    def clientOperation(self, manageDsaIT: bool, search: SearchParameters | None = None
                        ) -> Operation:
        """
        @return: a client's operation, with or without the ManageDsaIT control.
        """
        op = operation(search=search)
        if manageDsaIT:
            op.controls = {MANAGE_DSA_IT: ManageDsaIT()}
        return op

    def test_searchReference(self) -> Any:
        """
        Without ManageDsaIT, a referral object in a search's scope is
        emitted as a continuation reference, its URL rewritten; with
        ManageDsaIT, and for the server's own searches, it is an entry.
        """
        self.addReferral()
        params = SearchParameters(self.suffix, Scope.SUB,
                                  compileFilter(parseFilter("(ou=*)"), self.schema))

        def found(op: Operation) -> Any:
            names: list[str] = []
            references: list[SearchReference] = []
            d = self.backend.search(op, lambda e: references.append(e) if isinstance(
                e, SearchReference) else names.append(str(e.dn)))
            return d.addCallback(lambda _: (sorted(names), references))

        async def run() -> None:
            self.assertEqual(await found(self.clientOperation(False, params)), (
                ["ou=groups,dc=example,dc=com", "ou=people,dc=example,dc=com"],
                [SearchReference(("ldap://dir3.internal/ou=remote,dc=example,dc=com??sub",))]))
            withEntry = (["ou=groups,dc=example,dc=com", "ou=people,dc=example,dc=com",
                          "ou=remote,dc=example,dc=com"], [])
            self.assertEqual(await found(self.clientOperation(True, params)), withEntry)
            internal = Operation(Connection("internal", reactor), 0, None, internal=True)
            internal.search = params
            self.assertEqual(await found(internal), withEntry)

        return defer.Deferred.fromCoroutine(run())

    def test_referral(self) -> Any:
        """
        Without ManageDsaIT, a write to a referral object and a read below
        it are referrals, their URLs (without the scope of the proxy's own
        base search) and matched DN rewritten, and no hook runs for the
        write; with ManageDsaIT, the referral object reads as an entry.
        """
        self.addReferral()
        remote = self.ndn("ou=remote,dc=example,dc=com")
        below = self.ndn("uid=x,ou=remote,dc=example,dc=com")

        async def run() -> None:
            with self.assertRaises(Referral) as written:
                await self.backend.modify(self.clientOperation(False), remote, [
                    Modification("replace", "description", (b"x",))], self.hooks)
            self.assertEqual((written.exception.uris, written.exception.matchedDN),
                             (("ldap://dir3.internal/ou=remote,dc=example,dc=com",), remote))
            with self.assertRaises(Referral) as read:
                await self.backend.get(self.clientOperation(False), below)
            self.assertEqual(read.exception.uris,
                             ("ldap://dir3.internal/uid=x,ou=remote,dc=example,dc=com",))
            self.assertEqual(self.hooks.calls, [])
            entry = await self.backend.get(self.clientOperation(True), remote)
            self.assertEqual(entry.get("ou"), (b"remote",))

        return defer.Deferred.fromCoroutine(run())


class _Silent(protocol.Protocol):
    """
    A server that reads requests and never answers.
    """

    def dataReceived(self, data: bytes) -> None:
        received = self.factory.received  # type: ignore[attr-defined]
        if not received.called:
            received.callback(None)

    def connectionLost(self, reason: Any = None) -> None:
        self.factory.lost.callback(None)  # type: ignore[attr-defined]


class UpstreamProtocolTests(unittest.SynchronousTestCase):
    """
    The upstream client's framing of the responses it receives.
    """

    def test_responses(self) -> None:
        """
        Responses arriving together, or split anywhere, are each handled
        once, in order, without encoding them again to test them (BER
        objects' C{__len__}, which ldaptor's client calls on each).
        """
        from ldapd._codec import encodeMessage, encodeResult, encodeSearchEntry
        from ldapd.backends._proxypool import _UpstreamProtocol

        handled: list[Any] = []
        client = _UpstreamProtocol()
        client.handle = handled.append  # type: ignore[method-assign]
        self.patch(pureldap.LDAPMessage, "__len__", lambda message: self.fail("encoded again"))
        data = b"".join([
            encodeMessage(1, encodeSearchEntry(b"cn=a", [(b"cn", [b"a"])])),
            encodeMessage(1, encodeSearchEntry(b"cn=b", [(b"cn", [b"b"])])),
            encodeMessage(1, encodeResult(0x65, 0)),
        ])
        client.dataReceived(data[:-5])
        self.assertEqual([m.value.objectName for m in handled], [b"cn=a", b"cn=b"])
        client.dataReceived(data[-5:])
        self.assertEqual(len(handled), 3)
        self.assertEqual(handled[2].value.resultCode, 0)


class PoolTests(unittest.TestCase):
    """
    Timeouts and failover of the upstream pool.
    """

    def test_timeout(self) -> Any:
        """
        An upstream that accepts the connection and never answers fails the
        request with unavailable when the timeout passes on the pool's
        clock, and the connection is dropped.
        """
        factory = protocol.ServerFactory.forProtocol(_Silent)
        factory.received = defer.Deferred()  # type: ignore[attr-defined]
        factory.lost = defer.Deferred()  # type: ignore[attr-defined]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        clock = task.Clock()
        pool = UpstreamPool([parseUpstream(f"ldap://127.0.0.1:{port.getHost().port}")], reactor,
                            SERVICE_DN, b"secret", timeout=5, clock=clock)
        acquired = defer.Deferred.fromCoroutine(pool.acquire())

        def stalled(_: Any) -> Any:
            self.assertNoResult(acquired)
            clock.advance(5)
            failure = self.failureResultOf(acquired, ldaperrors.LDAPUnavailable)
            self.assertIn("did not answer within 5 s", failure.value.message)
            return factory.lost

        return factory.received.addCallback(stalled)

    def test_allDown(self) -> None:
        """
        When no upstream accepts a connection, the request fails with
        unavailable naming every upstream tried.
        """
        uris = [f"ldap://127.0.0.1:{freePort()}", f"ldap://127.0.0.1:{freePort()}"]
        pool = UpstreamPool([parseUpstream(u) for u in uris], reactor, timeout=5)
        d = defer.Deferred.fromCoroutine(pool.acquire())

        def failed(f: Any) -> None:
            f.trap(ldaperrors.LDAPUnavailable)
            for uri in uris:
                self.assertIn(uri, f.value.message)

        return d.addCallbacks(self.fail, failed)

    def test_failoverAndBack(self) -> Any:
        """
        A connection goes to the next upstream when the first refuses; once
        the first's retry interval has passed, the pool retires that
        connection and tries the first again.
        """
        server = ServerProcess(UPSTREAM_CONFIG)
        server.start()
        self.addCleanup(server.stop)
        clock = task.Clock()
        down = f"ldap://127.0.0.1:{freePort()}"
        pool = UpstreamPool([parseUpstream(down), parseUpstream(server.url)], reactor,
                            SERVICE_DN, SERVICE_PASSWORD.encode(), retryInterval=30,
                            timeout=5, clock=clock)
        self.addCleanup(pool.close)

        async def run() -> None:
            first = await pool.acquire()
            self.assertEqual(first.upstream.uri, server.url)
            pool.release(first)
            again = await pool.acquire()
            self.assertIs(again, first)
            pool.release(again)
            clock.advance(31)
            try:
                await pool.acquire()
            except ldaperrors.LDAPUnavailable:
                self.fail("the second upstream should still answer")
            self.assertTrue(first.retired)

        return defer.Deferred.fromCoroutine(run())


def makeCertificate(folder: Path) -> tuple[Path, Path]:
    """
    @param folder: where to write them.
    @return: a new self-signed certificate for C{localhost} and its key (PEM files).
    """
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(certificate), "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )
    return certificate, key


class TLSTests(unittest.TestCase):
    """
    TLS to the upstream: ldaps:// (an upstream ldapd on an ssl: listener)
    and StartTLS (a slapd), the certificate checked against a CA file and,
    by default, the host name.
    """

    certificate: Path
    folder: ClassVar[Path | None] = None
    servers: ClassVar[list[Any]] = []

    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = Path(tempfile.mkdtemp(prefix="ldapd-tls-"))
        cls.certificate, key = makeCertificate(cls.folder)
        ldaps = ServerProcess(UPSTREAM_CONFIG.replace(
            'listen = ["tcp:{port}:interface=127.0.0.1"]',
            'listen = ["ssl:{port}:interface=127.0.0.1"]\n'
            f'tls = {{ certificate = "{cls.certificate}", private_key = "{key}" }}'))
        slapd = SlapdProcess(REMOTE_SUFFIX, SERVICE_DN, SERVICE_PASSWORD, globalConfig=(
            f"TLSCertificateFile {cls.certificate}\nTLSCertificateKeyFile {key}\n"))
        cls.servers = []
        for server in (ldaps, slapd):
            server.start()
            cls.servers.append(server)

    @classmethod
    def tearDownClass(cls) -> None:
        for server in cls.servers:
            server.stop()
        cls.servers = []
        if cls.folder is not None:
            shutil.rmtree(cls.folder, ignore_errors=True)
            cls.folder = None

    def setUp(self) -> None:
        if not type(self).servers:
            type(self).setUpClass()
            atexit.register(type(self).tearDownClass)

    def bindRoot(self, uri: str, **settings: Any) -> Any:
        """
        Bind through a proxy to C{uri} as the upstream's root DN (rewritten
        from the local name).

        @return: the Deferred of the bind.
        """
        schema = Schema.standard()
        suffix = schema.normalizeDN(DN.parse("dc=example,dc=com"))
        context = ConfigContext(None, "database[0]", schema, reactor, suffix)
        backend = ProxyBackendFactory.fromConfig(dict({
            "upstreams": [uri], "remote_suffix": REMOTE_SUFFIX, "bind_dn": SERVICE_DN,
            "bind_password": SERVICE_PASSWORD, "ca_file": str(self.certificate),
        }, **settings), context)
        self.addCleanup(backend.close)
        return backend.authenticate(operation(), schema.normalizeDN(
            DN.parse("cn=admin,dc=example,dc=com")), SERVICE_PASSWORD.encode())

    def test_ldaps(self) -> Any:
        """
        An ldaps:// upstream whose certificate the CA file trusts and which
        names the URI's host is used.
        """
        return self.bindRoot(f"ldaps://localhost:{self.servers[0].port}")

    def test_hostnameChecked(self) -> Any:
        """
        A certificate that does not name the URI's host is refused, and the
        upstream counts as unavailable, unless host names are not verified.
        """
        uri = f"ldaps://127.0.0.1:{self.servers[0].port}"
        d = self.bindRoot(uri)
        d.addCallbacks(self.fail, lambda f: f.trap(ldaperrors.LDAPUnavailable))
        return d.addCallback(lambda _: self.bindRoot(uri, verify_hostname=False))

    def test_startTLS(self) -> Any:
        """
        With C{starttls}, an ldap:// upstream is sent StartTLS first, and
        its certificate is checked.
        """
        return self.bindRoot(f"ldap://localhost:{self.servers[1].port}", starttls=True)


class RewriterTests(unittest.SynchronousTestCase):
    """
    DN rewriting between the local and the remote suffix.
    """

    def setUp(self) -> None:
        self.schema = Schema.standard()
        self.rewriter = SuffixRewriter(self.schema.normalizeDN(DN.parse("dc=example,dc=com")),
                                       DN.parse("DC=Corp,DC=Internal"), self.schema)

    def test_names(self) -> None:
        """
        Names within a suffix move to the other, keeping their own RDNs as
        written; names outside pass unchanged (or are not local at all).
        """
        self.assertEqual(str(self.rewriter.toRemote(DN.parse("uid=A,ou=People,dc=Example,dc=com"))),
                         "uid=A,ou=People,DC=Corp,DC=Internal")
        self.assertEqual(str(self.rewriter.toLocal(DN.parse("uid=a,dc=corp,dc=internal"))),
                         "uid=a,dc=example,dc=com")
        self.assertEqual(str(self.rewriter.toRemote(DN.parse("cn=Subschema"))), "cn=Subschema")
        self.assertIsNone(self.rewriter.toLocal(DN.parse("dc=other")))

    def test_values(self) -> None:
        """
        Values of DN syntax and Name and Optional UID syntax are rewritten,
        the optional UID kept; other attributes are left alone.
        """
        member = self.schema.attributeType("member")
        unique = self.schema.attributeType("uniqueMember")
        cn = self.schema.attributeType("cn")
        self.assertEqual(self.rewriter.attributeValues(member, [b"uid=a,dc=example,dc=com"], True),
                         [b"uid=a,DC=Corp,DC=Internal"])
        self.assertEqual(self.rewriter.value(unique, b"uid=a,dc=corp,dc=internal#'0101'B", False),
                         b"uid=a,dc=example,dc=com#'0101'B")
        self.assertEqual(self.rewriter.attributeValues(cn, [b"dc=example,dc=com"], True),
                         [b"dc=example,dc=com"])

    def test_url(self) -> None:
        """
        The DN of an LDAP URL (a referral) is rewritten; its host and query kept.
        """
        self.assertEqual(
            self.rewriter.url(b"ldap://dir2:389/ou=x,dc=corp,dc=internal??sub", False),
            b"ldap://dir2:389/ou=x,dc=example,dc=com??sub")

    def test_urlUnchangedWithoutRemoteSuffix(self) -> None:
        """
        Without a remote suffix of its own, a referral's URL passes exactly
        as the upstream wrote it.
        """
        local = self.schema.normalizeDN(DN.parse("dc=example,dc=com"))
        url = b"ldap://dir2/ou=a%20b,DC=Example,dc=com??sub"
        self.assertEqual(SuffixRewriter(local, local, self.schema).url(url, False), url)

    def test_filter(self) -> None:
        """
        DN assertion values of a client filter are rewritten in a new filter;
        the client's filter is unchanged.
        """
        text = "(&(member=uid=a,dc=example,dc=com)(cn=dc=example,dc=com))"
        original = parseFilter(text)
        rewritten = self.rewriter.filterToRemote(original)
        self.assertEqual(
            rewritten, parseFilter("(&(member=uid=a,DC=Corp,DC=Internal)(cn=dc=example,dc=com))"))
        self.assertEqual(original, parseFilter(text))


class ProxyBackendFactoryTests(unittest.SynchronousTestCase):
    """
    Building the proxy backend from configuration.
    """

    def build(self, **table: Any) -> ProxyBackend:
        schema = Schema.standard()
        context = ConfigContext(None, "database[0]", schema, reactor,
                                schema.normalizeDN(DN.parse("dc=example,dc=com")))
        return ProxyBackendFactory.fromConfig(table, context)

    def assertConfigError(self, key: str, **table: Any) -> None:
        error = self.assertRaises(ConfigError, self.build, **table)
        self.assertIn(f"database[0].{key}:", str(error))

    def test_settings(self) -> None:
        """
        Every setting reaches the backend and its pool.
        """
        backend = self.build(
            upstreams=["ldap://dir1.internal", "ldaps://dir2.internal:1636"],
            remote_suffix="dc=corp,dc=internal", bind_dn=SERVICE_DN, bind_password="pw",
            pool_size=2, timeout=3, retry_interval=5, page_size=100, bind_cache_seconds=30,
        )
        pool = backend.pool
        self.assertEqual([(u.host, u.port, u.tls) for u in pool.upstreams],
                         [("dir1.internal", 389, False), ("dir2.internal", 1636, True)])
        self.assertEqual((pool.bindDN, pool.bindPassword, pool.size, pool.timeout,
                          pool.retryInterval), (SERVICE_DN, b"pw", 2, 3.0, 5.0))
        self.assertEqual((str(backend.rewriter.remote), backend.pageSize,
                          backend.bindCacheSeconds), ("dc=corp,dc=internal", 100, 30))

    def test_example(self) -> None:
        """
        The example configuration, C{examples/proxy.toml}, builds a proxy.
        """
        config = loadConfig(SOURCE_ROOT / "examples" / "proxy.toml", reactor)
        backend = config.directory.databases[0].backend
        self.assertIsInstance(backend, ProxyBackend)
        self.assertEqual([u.uri for u in backend.pool.upstreams],
                         ["ldap://dir1.internal:389", "ldaps://dir2.internal:636"])

    def test_errors(self) -> None:
        """
        A wrong setting is a configuration error naming its key.
        """
        self.assertConfigError("upstreams")
        self.assertConfigError("upstreams", upstreams=[])
        self.assertConfigError("upstreams[0]", upstreams=["http://dir1"])
        self.assertConfigError("upstreams[1]", upstreams=["ldap://d", "ldap://d:x"])
        self.assertConfigError("bind_password", upstreams=["ldap://d"], bind_dn=SERVICE_DN)
        self.assertConfigError("remote_suffix", upstreams=["ldap://d"], remote_suffix="nope")
        self.assertConfigError("timeout", upstreams=["ldap://d"], timeout=0)
        self.assertConfigError("pool_size", upstreams=["ldap://d"], pool_size="2")
        self.assertConfigError("ca_file", upstreams=["ldaps://d"], ca_file="/nonexistent.pem")
        self.assertConfigError("colour", upstreams=["ldap://d"], colour="red")
