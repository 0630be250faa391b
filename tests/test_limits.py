"""
Tests for L{ldapd.limits}: per-identity size and time limits, filter size,
outstanding requests, connections per address and the idle timeout, with
in-memory transports and a L{task.Clock}.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ldaptor.protocols import pureldap
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from ldapd._codec import encodeMessage
from ldapd._framing import Framer
from ldapd.backends.memory import MemoryBackend
from ldapd.config import loadConfig
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.limits import ConnectionLimits, IdentityLimit, Limits, checkFilterSize
from ldapd.operation import Connection, Operation
from ldapd.protocol import LDAPServerFactory
from ldapd.registry import ConfigError
from ldapd.schema import Schema
from ldapd.statistics import ServerStatistics
from ldapd.testing import EXAMPLE_LDIF, decodeResponse, parseFilter, wireFilter

SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"
_SCHEMA = Schema.standard()


def _group(cn: str) -> DN:
    return _SCHEMA.normalizeDN(DN.parse(f"cn={cn},ou=groups,{SUFFIX}"))


class FilterSizeTests(unittest.SynchronousTestCase):
    """
    L{checkFilterSize} counts every component of a filter.
    """

    def test_limit(self) -> None:
        """
        A filter of exactly the limit passes; one more component is
        adminLimitExceeded (11).
        """
        f = parseFilter("(|(uid=a)(uid=b)(uid=c))")
        checkFilterSize(f, 4)
        with self.assertRaises(Exception) as caught:
            checkFilterSize(f, 3)
        self.assertEqual(caught.exception.resultCode, 11)
        checkFilterSize(f, 0)


class IdentityLimitTests(unittest.TestCase):
    """
    Per-identity size limits replace the global one for the identities
    they select, first match winning; the root DN has none.
    """

    def setUp(self) -> None:
        clock = task.Clock()
        suffix = DN.parse(SUFFIX)
        limits = Limits(
            sizeLimit=5,
            timeLimit=60,
            identities=(
                IdentityLimit("group", _group("admins"), sizeLimit=0),
                IdentityLimit("dn.base", _SCHEMA.normalizeDN(DN.parse(f"uid=bob,{PEOPLE}")),
                              sizeLimit=3),
                IdentityLimit("users", sizeLimit=2),
            ),
            maxFilterComponents=3,
        )
        self.directory = Directory(
            [Database(suffix, MemoryBackend(_SCHEMA.normalizeDN(suffix), _SCHEMA),
                      DN.parse(f"cn=admin,{SUFFIX}"), b"secret", EXAMPLE_LDIF)],
            schema=_SCHEMA, limits=limits, reactor=clock,
        )
        self.successResultOf(self.directory.open())
        self.connection = Connection("127.0.0.1:4000", clock)

    def execute(self, request: Any) -> list[Any]:
        framer = Framer()
        framer.feed(pureldap.LDAPMessage(request, id=1).toWire())
        message = framer.next()
        op = Operation(self.connection, message.messageId, message.request, message.controls)
        responses: list[Any] = []
        self.successResultOf(self.directory.execute(
            op, lambda pdu, c=(): responses.append(decodeResponse(encodeMessage(1, pdu, c)).value)))
        return responses

    def searchAs(self, dn: str | None, password: str = "", filterText: str = "(uid=*)") -> tuple[int, int]:
        """
        @return: the entries sent and the result code of a subtree search
            of the people.
        """
        if dn is not None:
            bound = self.execute(pureldap.LDAPBindRequest(dn=dn, auth=password))[-1]
            self.assertEqual(bound.resultCode, 0)
        responses = self.execute(pureldap.LDAPSearchRequest(
            baseObject=PEOPLE, scope=2, filter=wireFilter(filterText)))
        return len(responses) - 1, responses[-1].resultCode

    def test_anonymous(self) -> None:
        """
        Anonymous gets the global limit.
        """
        self.assertEqual(self.searchAs(None), (5, 4))

    def test_users(self) -> None:
        """
        A user gets the C{users} limit; bob, named by DN before it, his own.
        """
        self.assertEqual(self.searchAs(f"uid=carol,{PEOPLE}", "carol-secret"), (2, 4))
        self.assertEqual(self.searchAs(f"uid=bob,{PEOPLE}", "bob-secret"), (3, 4))

    def test_group(self) -> None:
        """
        A member of the admins group has no limit.
        """
        self.assertEqual(self.searchAs(f"uid=alice,{PEOPLE}", "alice-secret"), (8, 0))

    def test_filterComponents(self) -> None:
        """
        A filter with more components than allowed is adminLimitExceeded,
        except for the root DN.
        """
        self.assertEqual(self.searchAs(None, filterText="(|(uid=a)(uid=b)(uid=c))"), (0, 11))
        self.assertEqual(self.searchAs(f"cn=admin,{SUFFIX}", "secret",
                                       "(|(uid=alice)(uid=b)(uid=c))"), (1, 0))


class _Hanging:
    """
    A directory whose operations never end.
    """

    statistics = ServerStatistics(0)
    limits = Limits()

    def execute(self, op: Operation, reply: Any) -> defer.Deferred[None]:
        return defer.Deferred()


class _Quick:
    """
    A directory whose operations end at once, without a response.
    """

    statistics = ServerStatistics(0)
    limits = Limits()

    def execute(self, op: Operation, reply: Any) -> defer.Deferred[None]:
        return defer.succeed(None)


def _search(messageId: int) -> bytes:
    return pureldap.LDAPMessage(pureldap.LDAPSearchRequest(
        baseObject=SUFFIX, filter=wireFilter("(objectClass=*)")), id=messageId).toWire()


class ConnectionLimitTests(unittest.SynchronousTestCase):
    """
    The protocol and factory enforce L{ConnectionLimits}.
    """

    def connect(self, factory: LDAPServerFactory, host: str = "192.0.2.7") -> Any:
        address = IPv4Address("TCP", host, 40000)
        protocol = factory.buildProtocol(address)
        if protocol is None:
            return None
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        return protocol, transport

    def test_maxOutstanding(self) -> None:
        """
        The server stops reading from a connection with the configured
        number of requests outstanding.
        """
        factory = LDAPServerFactory(_Hanging(), task.Clock(), limits=ConnectionLimits(maxOutstanding=2))
        protocol, transport = self.connect(factory)
        protocol.dataReceived(_search(1))
        self.assertEqual(transport.producerState, "producing")
        protocol.dataReceived(_search(2))
        self.assertEqual(transport.producerState, "paused")

    def test_perAddress(self) -> None:
        """
        A client address may hold only so many connections; a closed one
        frees its place; other addresses are not affected.
        """
        factory = LDAPServerFactory(_Quick(), task.Clock(),
                                    limits=ConnectionLimits(maxConnectionsPerAddress=2))
        first, _ = self.connect(factory)
        self.connect(factory)
        self.assertIsNone(self.connect(factory))
        self.assertIsNotNone(self.connect(factory, "192.0.2.8"))
        first.connectionLost()
        self.assertIsNotNone(self.connect(factory))

    def test_idleTimeout(self) -> None:
        """
        A connection silent for the idle timeout is closed; data and
        finished requests restart the count.
        """
        clock = task.Clock()
        factory = LDAPServerFactory(_Quick(), clock, limits=ConnectionLimits(idleTimeout=30))
        protocol, transport = self.connect(factory)
        clock.advance(20)
        protocol.dataReceived(_search(1))
        clock.advance(20)
        self.assertFalse(transport.disconnecting)
        clock.advance(10)
        self.assertTrue(transport.disconnecting)

    def test_idleNotWhileBusy(self) -> None:
        """
        A connection with a request outstanding is not idle.
        """
        clock = task.Clock()
        factory = LDAPServerFactory(_Hanging(), clock, limits=ConnectionLimits(idleTimeout=30))
        protocol, transport = self.connect(factory)
        protocol.dataReceived(_search(1))
        clock.advance(100)
        self.assertFalse(transport.disconnecting)

    def test_noIdleTimeout(self) -> None:
        """
        Without an idle timeout, no timer is left behind.
        """
        clock = task.Clock()
        factory = LDAPServerFactory(_Quick(), clock)
        self.connect(factory)
        self.assertEqual(clock.getDelayedCalls(), [])


class ConfigTests(unittest.SynchronousTestCase):
    """
    The limits' configuration keys.
    """

    def load(self, extra: str) -> Any:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-limits-"))
        self.addCleanup(shutil.rmtree, folder)
        path = folder / "ldapd.toml"
        path.write_text(f'[server]\nlisten = ["tcp:10389"]\n{extra}\n'
                        f'[[database]]\nsuffix = "{SUFFIX}"\n')
        return loadConfig(path)

    def test_keys(self) -> None:
        """
        Identity limits, filter size, outstanding requests, connections per
        address and idle timeout are read from C{[server]}.
        """
        config = self.load(
            'limits = [{ who = "users", size = 5 }, '
            f'{{ who = "group=cn=admins,ou=groups,{SUFFIX}", size = "unlimited", time = 0 }}]\n'
            "max_filter_components = 50\nmax_outstanding = 4\n"
            "max_connections_per_address = 2\nidle_timeout = 30"
        )
        self.assertEqual(config.directory.limits.identities, (
            IdentityLimit("users", None, 5, None), IdentityLimit("group", _group("admins"), 0, 0)))
        self.assertEqual(config.directory.limits.maxFilterComponents, 50)
        self.assertEqual(config.connectionLimits, ConnectionLimits(4, 2, 30))

    def test_errors(self) -> None:
        """
        Wrong values stop start-up naming the key.
        """
        for extra, key in [
            ('limits = [{ who = "bogus" }]', "server.limits[0].who"),
            ('limits = [{ who = "users", size = -1 }]', "server.limits[0].size"),
            ('limits = [{ who = "users", colour = 1 }]', "server.limits[0]"),
            ("max_outstanding = 0", "server.max_outstanding"),
            ("idle_timeout = -1", "server.idle_timeout"),
            ("max_pdu_size = 0", "server.max_pdu_size"),
            ("max_anonymous_pdu_size = 0", "server.max_anonymous_pdu_size"),
            ("max_buffered_bytes = -1", "server.max_buffered_bytes"),
        ]:
            with self.assertRaises(ConfigError) as caught:
                self.load(extra)
            self.assertIn(key, str(caught.exception))

    def test_maxSortedEntries(self) -> None:
        """
        The most entries one server-side sort holds: 100000 by default, read
        from C{[server]}; a negative number stops start-up naming the key.
        """
        self.assertEqual(self.load("").directory.limits.maxSortedEntries, 100_000)
        self.assertEqual(self.load("max_sorted_entries = 7").directory.limits.maxSortedEntries, 7)
        with self.assertRaises(ConfigError) as caught:
            self.load("max_sorted_entries = -1")
        self.assertIn("server.max_sorted_entries", str(caught.exception))

    def test_incomingSizes(self) -> None:
        """
        The PDU limits default to slapd's (262143 bytes anonymous, 4194303
        bound) and the buffer budget to 64 MiB; all three are read from
        C{[server]}.
        """
        config = self.load("")
        self.assertEqual((config.maxAnonymousPDUSize, config.maxPDUSize, config.maxBufferedBytes),
                         (262143, 4194303, 64 * 1024 * 1024))
        config = self.load("max_anonymous_pdu_size = 1000\nmax_pdu_size = 2000\n"
                           "max_buffered_bytes = 0")
        self.assertEqual((config.maxAnonymousPDUSize, config.maxPDUSize, config.maxBufferedBytes),
                         (1000, 2000, 0))
