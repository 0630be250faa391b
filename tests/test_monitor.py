"""
Tests for L{ldapd.plugins.monitor}: the C{cn=Monitor} tree, its counters,
access to it, and the same tree and counters as OpenLDAP's back-monitor.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from ldaptor.protocols import pureber, pureldap
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.operation import Identity
from ldapd.plugins.acl import AccessControl
from ldapd.plugins.monitor import Monitor, MonitorFactory, listenerAddresses
from ldapd.protocol import LDAPServerFactory, LDAPServerProtocol
from ldapd.registry import PLUGINS, ConfigContext, ConfigError, lookup
from ldapd.schema import Schema
from ldapd.testing import (
    EXAMPLE_LDIF,
    SLAPD,
    ServerProcess,
    SlapdProcess,
    decodeResponses,
    exampleConfig,
    wireFilter,
)

SUFFIX = "dc=example,dc=com"
ROOT = "cn=admin,dc=example,dc=com"
ALICE = "uid=alice,ou=people,dc=example,dc=com"

#: The entries both servers have, with their structural object class.
FIXED = {
    "cn=Monitor": "monitorServer",
    "cn=Connections,cn=Monitor": "monitorContainer",
    "cn=Total,cn=Connections,cn=Monitor": "monitorCounterObject",
    "cn=Current,cn=Connections,cn=Monitor": "monitorCounterObject",
    "cn=Operations,cn=Monitor": "monitorContainer",
    **{f"cn={name},cn=Operations,cn=Monitor": "monitorOperation"
       for name in ("Bind", "Unbind", "Search", "Compare", "Modify", "Modrdn", "Add", "Delete",
                    "Abandon", "Extended")},
    "cn=Statistics,cn=Monitor": "monitorContainer",
    **{f"cn={name},cn=Statistics,cn=Monitor": "monitorCounterObject"
       for name in ("Bytes", "PDU", "Entries", "Referrals")},
    "cn=Time,cn=Monitor": "monitorContainer",
    **{f"cn={name},cn=Time,cn=Monitor": "monitoredObject"
       for name in ("Start", "Current", "Uptime")},
}

Entries = dict[str, dict[str, list[bytes]]]


class _Client:
    """
    One connection to the in-process server, on a L{StringTransport}.
    """

    def __init__(self, factory: LDAPServerFactory, port: int) -> None:
        self.protocol: LDAPServerProtocol = factory.buildProtocol(
            IPv4Address("TCP", "127.0.0.1", port))
        self.transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 10389),
            peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self.protocol.makeConnection(self.transport)
        self.nextId = 1

    @property
    def id(self) -> int:
        assert self.protocol.connection is not None
        return self.protocol.connection.id

    def bindAs(self, dn: str | None, schema: Schema, isRoot: bool = False) -> None:
        """
        Take an identity, as a Bind would.
        """
        assert self.protocol.connection is not None
        self.protocol.connection.identity = (
            Identity() if dn is None else
            Identity(DN.parse(dn), schema.normalizeDN(DN.parse(dn)), isRoot=isRoot))

    def send(self, request: Any) -> list[Any]:
        """
        @return: the responses to a request.
        """
        self.transport.clear()
        self.protocol.dataReceived(pureldap.LDAPMessage(request, id=self.nextId).toWire())
        self.nextId += 1
        return decodeResponses(self.transport.value())

    def search(self, base: str = "cn=Monitor", filterText: str = "(objectClass=*)",
               scope: int = 2, attributes: tuple[str, ...] = ("*", "+")) -> Entries:
        """
        @return: the entries found, by DN, with their attributes.
        """
        responses = self.send(pureldap.LDAPSearchRequest(
            baseObject=base, scope=scope, filter=wireFilter(filterText),
            attributes=list(attributes)))
        return {
            r.value.objectName.decode(): {
                (k.decode() if isinstance(k, bytes) else str(k)): [bytes(v) for v in vs]
                for k, vs in r.value.attributes
            }
            for r in responses if isinstance(r.value, pureldap.LDAPSearchResultEntry)
        }


class MonitorTestsBase(unittest.TestCase):
    """
    A directory with the example organisation and the monitor plugin, on a
    L{task.Clock}, served by a protocol factory; the first client is bound
    as the root DN.
    """

    def makePlugins(self) -> list[Any]:
        return [Monitor()]

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        self.directory = Directory(
            [Database(suffix, MemoryBackend(self.schema.normalizeDN(suffix), self.schema,
                                            self.clock), DN.parse(ROOT), b"secret",
                      EXAMPLE_LDIF)],
            self.makePlugins(), schema=self.schema, reactor=self.clock)
        self.successResultOf(self.directory.open())
        self.directory.statistics.listeners[:] = ["tcp:10389:interface=127.0.0.1"]
        self.factory = LDAPServerFactory(self.directory, reactor=self.clock)
        self.ports = iter(range(40000, 41000))
        self.root = self.client()
        self.root.bindAs(ROOT, self.schema, isRoot=True)

    def client(self) -> _Client:
        return _Client(self.factory, next(self.ports))

    def counter(self, dn: str, attribute: str = "monitorCounter") -> int:
        """
        @return: a counter of cn=Monitor, read by the root DN.
        """
        return int(self.root.search(dn, scope=0)[dn][attribute][0])


class TreeTests(MonitorTestsBase):
    """
    The tree has slapd's entries and object classes; it is read-only.
    """

    def test_tree(self) -> None:
        """
        The root DN reads slapd's fixed entries with their structural
        classes, the connection, database and listener entries, and the
        operational attributes when asked for them.
        """
        found = self.root.search()
        for dn, structural in FIXED.items():
            self.assertEqual(found[dn]["structuralObjectClass"], [structural.encode()], dn)
            self.assertEqual(found[dn]["objectClass"], [structural.encode()], dn)
        self.assertEqual(found["cn=Monitor"]["monitoredInfo"][0][:6], b"ldapd ")
        database = found["cn=Database 0,cn=Databases,cn=Monitor"]
        self.assertEqual((database["namingContexts"], database["monitoredInfo"]),
                         ([SUFFIX.encode()], [b"memory"]))
        self.assertEqual(found["cn=Listener 0,cn=Listeners,cn=Monitor"]["labeledURI"],
                         [b"ldap://127.0.0.1:10389/"])
        self.assertIn("cn=Max File Descriptors,cn=Connections,cn=Monitor", found)
        connection = found[f"cn=Connection {self.root.id},cn=Connections,cn=Monitor"]
        self.assertEqual(connection["monitorConnectionAuthzDN"], [ROOT.encode()])
        self.assertEqual(connection["monitorConnectionPeerAddress"], [b"IP=127.0.0.1:40000"])
        self.assertEqual(connection["monitorConnectionLocalAddress"], [b"IP=127.0.0.1:10389"])
        self.assertEqual(connection["monitorConnectionListener"], [b"ldap://127.0.0.1:10389/"])
        self.assertEqual(connection["monitorConnectionOpsExecuting"], [b"1"])
        self.assertEqual(found["cn=Start,cn=Time,cn=Monitor"]["monitorTimestamp"],
                         [b"20231114221320Z"])
        self.clock.advance(90)
        uptime = self.root.search("cn=Uptime,cn=Time,cn=Monitor", scope=0)
        self.assertEqual(uptime["cn=Uptime,cn=Time,cn=Monitor"]["monitoredInfo"], [b"90"])
        plain = self.root.search("cn=Total,cn=Connections,cn=Monitor", scope=0, attributes=())
        self.assertNotIn("monitorCounter", plain["cn=Total,cn=Connections,cn=Monitor"])

    def test_rootDSE(self) -> None:
        """
        The root DSE names cn=Monitor in monitorContext, as slapd's; it is
        no naming context.
        """
        found = self.root.search("", scope=0)[""]
        self.assertEqual(found["monitorContext"], [b"cn=Monitor"])
        self.assertEqual(found["namingContexts"], [SUFFIX.encode()])

    def test_scopes(self) -> None:
        """
        Base, one-level and subtree scopes select as in any database; a
        missing entry is noSuchObject with the closest entry as matched DN.
        """
        self.assertEqual(list(self.root.search("cn=Time,cn=Monitor", scope=0)),
                         ["cn=Time,cn=Monitor"])
        self.assertEqual(sorted(self.root.search("cn=Time,cn=Monitor", scope=1)),
                         sorted(dn for dn in FIXED if dn.endswith(",cn=Time,cn=Monitor")))
        self.assertEqual(len(self.root.search("cn=Operations,cn=Monitor")), 11)
        done = self.root.send(pureldap.LDAPSearchRequest(
            baseObject="cn=Nothing,cn=Time,cn=Monitor", scope=0,
            filter=wireFilter("(objectClass=*)")))[-1].value
        self.assertEqual((done.resultCode, done.matchedDN), (32, b"cn=Time,cn=Monitor"))

    def test_filters(self) -> None:
        """
        Filters use the schema's matching rules: the counters are integers
        with ordering, so C{(monitorOpCompleted>=1)} finds the operations
        done at least once.
        """
        other = self.client()
        other.search(SUFFIX, scope=0)
        other.send(pureldap.LDAPCompareRequest(
            entry=SUFFIX, ava=pureldap.LDAPAttributeValueAssertion(
                pureber.BEROctetString("dc"), pureber.BEROctetString("example"))))
        found = self.root.search("cn=Operations,cn=Monitor", "(monitorOpCompleted>=1)", scope=1)
        self.assertEqual(sorted(found), ["cn=Compare,cn=Operations,cn=Monitor",
                                         "cn=Search,cn=Operations,cn=Monitor"])
        found = self.root.search(filterText="(&(objectClass=monitorCounterObject)(cn=Total))")
        self.assertEqual(list(found), ["cn=Total,cn=Connections,cn=Monitor"])
        found = self.root.search(filterText="(monitorConnectionNumber=*)")
        self.assertEqual(len(found), 2)

    def test_readOnly(self) -> None:
        """
        Every write under cn=Monitor is unwillingToPerform, even for the root DN.
        """
        for request in (
            pureldap.LDAPDelRequest(entry="cn=Total,cn=Connections,cn=Monitor"),
            pureldap.LDAPModifyDNRequest(entry="cn=Time,cn=Monitor", newrdn="cn=Clock",
                                         deleteoldrdn=True),
            pureldap.LDAPModifyRequest(object="cn=Monitor", modification=[
                pureber.BERSequence([pureber.BEREnumerated(2), pureber.BERSequence([
                    pureldap.LDAPAttributeDescription("description"),
                    pureber.BERSet([pureldap.LDAPAttributeValue(b"x")])])])]),
            pureldap.LDAPAddRequest(entry="cn=Other,cn=Monitor", attributes=[
                (pureldap.LDAPAttributeDescription(name),
                 pureber.BERSet([pureldap.LDAPAttributeValue(value)]))
                for name, value in [("objectClass", "monitoredObject"), ("cn", "Other")]]),
        ):
            self.assertEqual(self.root.send(request)[-1].value.resultCode, 53,
                             type(request).__name__)


class CounterTests(MonitorTestsBase):
    """
    The counters move as clients make requests and connections.
    """

    def test_search(self) -> None:
        """
        A search on another connection counts as one Search initiated and
        completed, one entry, and two PDUs (the entry and the result) of
        the bytes written.
        """
        search = "cn=Search,cn=Operations,cn=Monitor"
        before = {
            "initiated": self.counter(search, "monitorOpInitiated"),
            "completed": self.counter(search, "monitorOpCompleted"),
            "total": self.counter("cn=Operations,cn=Monitor", "monitorOpCompleted"),
            "entries": self.counter("cn=Entries,cn=Statistics,cn=Monitor"),
            "pdus": self.counter("cn=PDU,cn=Statistics,cn=Monitor"),
            "bytes": self.counter("cn=Bytes,cn=Statistics,cn=Monitor"),
        }
        other = self.client()
        other.search(SUFFIX, scope=0)
        sent = len(other.transport.value())
        # Each read of a counter is a search of its own: one entry, two PDUs.
        self.assertEqual(self.counter(search, "monitorOpInitiated"), before["initiated"] + 7)
        self.assertEqual(self.counter(search, "monitorOpCompleted"), before["completed"] + 7)
        self.assertEqual(self.counter("cn=Operations,cn=Monitor", "monitorOpCompleted"),
                         before["total"] + 7)
        self.assertEqual(self.counter("cn=Entries,cn=Statistics,cn=Monitor"),
                         before["entries"] + 7)
        self.assertEqual(self.counter("cn=PDU,cn=Statistics,cn=Monitor"), before["pdus"] + 14)
        self.assertGreater(self.counter("cn=Bytes,cn=Statistics,cn=Monitor"),
                           before["bytes"] + sent)

    def test_unbindAndAbandon(self) -> None:
        """
        Unbind and Abandon, which get no response, count as initiated and
        completed.
        """
        other = self.client()
        other.send(pureldap.LDAPAbandonRequest(id=99))
        other.send(pureldap.LDAPUnbindRequest())
        for name in ("Abandon", "Unbind"):
            dn = f"cn={name},cn=Operations,cn=Monitor"
            self.assertEqual((self.counter(dn, "monitorOpInitiated"),
                              self.counter(dn, "monitorOpCompleted")), (1, 1))

    def test_connections(self) -> None:
        """
        A connection has its entry while it is open, with its operations
        and identity; Current counts the open ones and Total every one.
        """
        total = self.counter("cn=Total,cn=Connections,cn=Monitor")
        other = self.client()
        other.bindAs(ALICE, self.schema)
        other.search(SUFFIX, scope=0)
        dn = f"cn=Connection {other.id},cn=Connections,cn=Monitor"
        entry = self.root.search(dn, scope=0)[dn]
        self.assertEqual(entry["objectClass"], [b"monitorConnection"])
        self.assertEqual(entry["monitorConnectionNumber"], [str(other.id).encode()])
        self.assertEqual(entry["monitorConnectionAuthzDN"], [ALICE.encode()])
        self.assertEqual(entry["monitorConnectionProtocol"], [b"3"])
        self.assertEqual((entry["monitorConnectionOpsReceived"],
                          entry["monitorConnectionOpsCompleted"],
                          entry["monitorConnectionOpsExecuting"]), ([b"1"], [b"1"], [b"0"]))
        self.assertEqual(entry["monitorConnectionStartTime"], [b"20231114221320Z"])
        self.assertEqual(self.counter("cn=Total,cn=Connections,cn=Monitor"), total + 1)
        self.assertEqual(self.counter("cn=Current,cn=Connections,cn=Monitor"), 2)
        anonymous = self.client()
        dn2 = f"cn=Connection {anonymous.id},cn=Connections,cn=Monitor"
        self.assertNotIn("monitorConnectionAuthzDN", self.root.search(dn2, scope=0)[dn2])
        anonymous.protocol.connectionLost()
        other.protocol.connectionLost()
        self.assertNotIn(dn, self.root.search("cn=Connections,cn=Monitor", scope=1))
        self.assertEqual(self.counter("cn=Current,cn=Connections,cn=Monitor"), 1)
        self.assertEqual(self.counter("cn=Total,cn=Connections,cn=Monitor"), total + 2)


class DefaultAccessTests(MonitorTestsBase):
    """
    Under the default access policy only the root DN reads cn=Monitor.
    """

    def test_rootOnly(self) -> None:
        """
        Anonymous clients and users find nothing, and compare gets
        noSuchObject; they still read the directory.
        """
        for who in (None, ALICE):
            other = self.client()
            other.bindAs(who, self.schema)
            self.assertEqual(other.search(), {})
            self.assertTrue(other.search(SUFFIX, scope=0))
            compare = other.send(pureldap.LDAPCompareRequest(
                entry="cn=Monitor", ava=pureldap.LDAPAttributeValueAssertion(
                    pureber.BEROctetString("cn"), pureber.BEROctetString("Monitor"))))
            self.assertEqual(compare[-1].value.resultCode, 32)
        self.assertEqual(len(self.root.search("cn=Monitor", scope=0)), 1)


class AccessRulesTests(MonitorTestsBase):
    """
    With the acl plugin's default rules only the root DN reads cn=Monitor;
    configured rules decide otherwise.
    """

    def makePlugins(self) -> list[Any]:
        return [Monitor(), AccessControl(self.schema)]

    def test_rules(self) -> None:
        """
        Users and anonymous clients find nothing; the root DN finds the tree.
        """
        self.assertIn("cn=Monitor", self.root.search())
        for who in (None, ALICE):
            other = self.client()
            other.bindAs(who, self.schema)
            self.assertEqual(other.search(), {})
            self.assertTrue(other.search(SUFFIX, scope=0))


class ConfiguredRulesTests(MonitorTestsBase):
    """
    A configured rule may open cn=Monitor to a user.
    """

    def makePlugins(self) -> list[Any]:
        return [Monitor(), AccessControl(self.schema, [
            f'to dn.subtree="cn=Monitor" by dn.exact="{ALICE}" read by * none',
            "to * by * read"])]

    def test_rules(self) -> None:
        """
        The user the rule names reads the tree; others do not.
        """
        alice, anonymous = self.client(), self.client()
        alice.bindAs(ALICE, self.schema)
        self.assertIn("cn=Statistics,cn=Monitor", alice.search())
        self.assertEqual(anonymous.search(), {})


class GenericRulesTests(MonitorTestsBase):
    """
    cn=Monitor is a private view: rules that do not name it do not reach it.
    """

    def makePlugins(self) -> list[Any]:
        return [Monitor(), AccessControl(self.schema, [
            "to * by users read by anonymous read"])]

    def test_rules(self) -> None:
        """
        With C{to * by users read by anonymous read}, anonymous clients and
        users find nothing under cn=Monitor (its connections name bound DNs
        and peers), while they read the rest; the root DN reads the tree.
        """
        self.assertIn("cn=Connections,cn=Monitor", self.root.search())
        for who in (None, ALICE):
            other = self.client()
            other.bindAs(who, self.schema)
            self.assertEqual(other.search(), {})
            self.assertTrue(other.search(SUFFIX, scope=0))


class ConfigTests(unittest.TestCase):
    """
    The plugin is found by name and takes no keys.
    """

    def context(self) -> ConfigContext:
        return ConfigContext(None, "plugin[0]", Schema.standard(), task.Clock())

    def test_lookup(self) -> None:
        """
        C{name = "monitor"} names L{MonitorFactory}, which builds a L{Monitor}.
        """
        self.assertIs(lookup(PLUGINS, "monitor", self.context(), "name"), MonitorFactory)
        self.assertIsInstance(MonitorFactory.fromConfig({}, self.context()), Monitor)

    def test_unknownKey(self) -> None:
        """
        Any key is an error naming it.
        """
        error = self.assertRaises(ConfigError, MonitorFactory.fromConfig, {"depth": 1},
                                  self.context())
        self.assertIn("plugin[0].depth", str(error))

    def test_listeners(self) -> None:
        """
        Listeners are shown with the URL and address slapd would give them.
        """
        self.assertEqual(listenerAddresses("tcp:10389:interface=127.0.0.1"),
                         ("ldap://127.0.0.1:10389/", "IP=127.0.0.1:10389"))
        self.assertEqual(listenerAddresses("ssl:port=636"),
                         ("ldaps://0.0.0.0:636/", "IP=0.0.0.0:636"))
        self.assertEqual(listenerAddresses("tcp6:389:interface=\\:\\:1")[1][:3], "IP=")
        self.assertEqual(listenerAddresses("unix:/run/ldapd.sock"),
                         ("ldapi://%2Frun%2Fldapd.sock/", "PATH=/run/ldapd.sock"))


_ROOT = (ROOT, "secret")


def _ldapsearch(url: str, *args: str) -> str:
    """
    @return: the LDIF ldapsearch prints, bound as the root DN.
    """
    completed = subprocess.run(
        ["ldapsearch", "-LLL", "-x", "-o", "ldif-wrap=no", "-H", url, "-D", ROOT, "-w", "secret",
         *args], capture_output=True, text=True, timeout=30, check=False)
    if completed.returncode != 0:
        raise AssertionError(f"ldapsearch failed ({completed.returncode}): {completed.stderr}")
    return completed.stdout


def _ldap3(url: str) -> Any:
    from ldap3 import Connection, Server

    return Connection(Server(url), ROOT, "secret", auto_bind=True, receive_timeout=30)


def _read(connection: Any) -> dict[str, dict[str, list[str]]]:
    """
    @return: the tree under cn=Monitor, with the operational attributes.
    """
    connection.search("cn=Monitor", "(objectClass=*)", attributes=["*", "+"])
    return {str(e.entry_dn): {k: [str(v) for v in vs] for k, vs in
                              e.entry_attributes_as_dict.items()}
            for e in connection.entries}


_SERVER = exampleConfig() + '\n[[plugin]]\nname = "monitor"\n'


@pytest.mark.integration
class ServerTests(unittest.SynchronousTestCase):
    """
    A real C{twist ldapd} with the plugin, read with ldapsearch and ldap3;
    and side by side with a private slapd's C{database monitor}.
    """

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess(_SERVER)
        cls.server.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def test_ldapsearch(self) -> None:
        """
        ldapsearch as the root DN reads the tree, the listener the server
        was started with, and the root DSE's monitorContext.
        """
        out = _ldapsearch(self.server.url, "-b", "cn=Monitor", "(objectClass=*)", "*", "+")
        for dn in FIXED:
            self.assertIn(f"dn: {dn}\n", out)
        self.assertIn(f"labeledURI: ldap://127.0.0.1:{self.server.port}/", out)
        self.assertIn(f"monitorConnectionLocalAddress: IP=127.0.0.1:{self.server.port}", out)
        self.assertIn(f"monitorConnectionAuthzDN: {ROOT}", out)
        rootDSE = _ldapsearch(self.server.url, "-b", "", "-s", "base", "monitorContext")
        self.assertIn("monitorContext: cn=Monitor", rootDSE)
        anonymous = subprocess.run(
            ["ldapsearch", "-LLL", "-x", "-H", self.server.url, "-b", "cn=Monitor"],
            capture_output=True, text=True, timeout=30, check=False)
        self.assertEqual((anonymous.returncode, anonymous.stdout), (32, ""))

    def test_ldap3(self) -> None:
        """
        ldap3 reads its own connection's entry: every operation it sent is
        over but the search reading it.
        """
        connection = _ldap3(self.server.url)
        self.addCleanup(connection.unbind)
        connection.search(ROOT.split(",", 1)[1], "(objectClass=*)", "BASE")
        tree = _read(connection)
        mine = [e for dn, e in tree.items() if dn.startswith("cn=Connection ")
                and e["monitorConnectionAuthzDN"] == [ROOT]]
        self.assertEqual(len(mine), 1)
        received = int(mine[0]["monitorConnectionOpsReceived"][0])
        self.assertGreaterEqual(received, 3)
        self.assertEqual(mine[0]["monitorConnectionOpsCompleted"], [str(received - 1)])
        self.assertEqual(mine[0]["monitorConnectionOpsExecuting"], ["1"])
        self.assertGreaterEqual(int(tree["cn=Search,cn=Operations,cn=Monitor"]
                                    ["monitorOpCompleted"][0]), 1)

    def test_sameAsSlapd(self) -> None:
        """
        slapd's back-monitor and ldapd have the same fixed entries, with the
        same structural classes, and their counters move the same way for
        the same client actions: N searches and a connection.
        """
        if not SLAPD.exists():
            raise unittest.SkipTest(f"{SLAPD} is not installed")
        slapd = SlapdProcess(databaseConfig=f'database monitor\nrootdn "{ROOT}"\n')
        self.addCleanup(slapd.stop)
        slapd.start()
        searches = 5
        for url in (self.server.url, slapd.url):
            watcher = _ldap3(url)
            self.addCleanup(watcher.unbind)
            before = _read(watcher)
            for dn, structural in FIXED.items():
                self.assertEqual(before[dn]["structuralObjectClass"], [structural], (url, dn))
            client = _ldap3(url)
            for _ in range(searches):
                client.search("", "(objectClass=*)", "BASE")
            client.unbind()
            after = _read(watcher)

            def grew(dn: str, attribute: str = "monitorCounter", before: Any = before,
                     after: Any = after) -> int:
                return int(after[dn][attribute][0]) - int(before[dn][attribute][0])

            search = "cn=Search,cn=Operations,cn=Monitor"
            self.assertGreaterEqual(grew(search, "monitorOpCompleted"), searches, url)
            self.assertGreaterEqual(grew(search, "monitorOpInitiated"), searches, url)
            self.assertGreaterEqual(grew("cn=Bind,cn=Operations,cn=Monitor",
                                         "monitorOpCompleted"), 1, url)
            self.assertGreaterEqual(grew("cn=Entries,cn=Statistics,cn=Monitor"), searches, url)
            self.assertGreaterEqual(grew("cn=PDU,cn=Statistics,cn=Monitor"), 2 * searches, url)
            self.assertGreater(grew("cn=Bytes,cn=Statistics,cn=Monitor"), 0, url)
            self.assertEqual(grew("cn=Total,cn=Connections,cn=Monitor"), 1, url)
