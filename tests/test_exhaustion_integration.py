"""
Integration tests of what a client may make the server hold before and after
it binds: the real C{twist ldapd} driven over raw sockets, with ldap3 as the
bystander whose searches must keep working, and a private slapd for the
wire-level comparison.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from twisted.trial import unittest

from ldapd._codec import encodeSequence, integer, octetString, tlv
from ldapd.testing import SLAPD, ServerTestsMixin, SlapdProcess, decodeResponses

try:
    import ldap3
except ImportError:
    ldap3 = None

pytestmark = pytest.mark.integration

SUFFIX = "dc=example,dc=com"
ALICE = f"uid=alice,ou=people,{SUFFIX}"

#: The budget of the test server: a bound client's 1 MiB PDU fits, eight
#: anonymous clients' 200 kB halves of PDUs do not.
BUDGET = 1536 * 1024


def _config(server: str = "", rest: str = "") -> str:
    """
    @param server: more C{[server]} keys.
    @param rest: more tables after the database.
    @return: a L{ldapd.testing.ServerProcess} configuration serving the
        example data from memory, with C{secret} as the root DN's password.
    """
    return f"""
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]
{server}

[[database]]
suffix = "{SUFFIX}"
backend = "memory"
root_dn = "cn=admin,{SUFFIX}"
root_password = "secret"
seed_ldif = "{{example_ldif}}"

{rest}
"""


def _header(length: int, messageId: int = 2) -> bytes:
    """
    @return: the start of an LDAPMessage announcing C{length} bytes.
    """
    return b"\x30\x84" + length.to_bytes(4, "big") + integer(messageId)


def _bind(dn: str, password: str, messageId: int = 1) -> bytes:
    """
    @return: a simple Bind request.
    """
    return encodeSequence([integer(messageId), tlv(0x60, integer(3) + octetString(dn.encode())
                                                   + tlv(0x80, password.encode()))])


def _search(encodedFilter: bytes, messageId: int = 2) -> bytes:
    """
    @return: a subtree search of the suffix with that filter, for C{cn}.
    """
    return encodeSequence([integer(messageId), tlv(0x63, b"".join([
        octetString(SUFFIX.encode()), integer(2, 0x0A), integer(0, 0x0A), integer(0),
        integer(0), tlv(0x01, b"\x00"), encodedFilter, encodeSequence([octetString(b"cn")]),
    ]))])


def _equality(attribute: bytes, value: bytes) -> bytes:
    """
    @return: an encoded equality filter.
    """
    return tlv(0xA3, octetString(attribute) + octetString(value))


class _Client:
    """
    A raw socket to a server, reading whole responses.
    """

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)

    def close(self) -> None:
        self.socket.close()

    def send(self, data: bytes) -> None:
        """
        Send, ignoring a reset: the server may close while bytes are on
        their way.
        """
        try:
            self.socket.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            pass

    def request(self, data: bytes) -> list[Any]:
        """
        Send a request and read responses until one that ends a request.
        """
        self.send(data)
        received = b""
        while True:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise AssertionError(f"closed after {received!r}")
            received += chunk
            try:
                messages = decodeResponses(received)
            except Exception:
                continue
            if messages and not hasattr(messages[-1].value, "objectName"):
                return messages

    def closedSilently(self, timeout: float = 10) -> bool:
        """
        @return: whether the server closes the connection without sending
            anything (C{False} if it sends something or keeps it open).
        """
        self.socket.settimeout(timeout)
        try:
            data = self.socket.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return data == b""

    def isOpen(self) -> bool:
        """
        @return: whether the server neither answered nor closed within a
            moment.
        """
        self.socket.settimeout(0.5)
        try:
            self.socket.recv(1)
        except socket.timeout:
            return True
        except ConnectionResetError:
            return False
        return False


class IncomingLimitsIntegrationTests(ServerTestsMixin, unittest.TestCase):
    """
    Pre-authentication exhaustion: an anonymous client may send 256 KiB
    PDUs and a bound one 4 MiB (slapd's defaults), all connections share a
    budget, and a filter's size is bounded before it is decoded. Each attack
    is shown failing while another client's search goes on.
    """

    serverConfig = _config(server=f"max_buffered_bytes = {BUDGET}")

    def setUp(self) -> None:
        if ldap3 is None:
            raise unittest.SkipTest("ldap3 is not installed")
        super().setUp()

    def client(self) -> _Client:
        """
        @return: a raw connection to the server, closed after the test.
        """
        assert self.server is not None
        client = _Client(self.server.port)
        self.addCleanup(client.close)
        return client

    def assertOthersServed(self) -> None:
        """
        Another client's search succeeds.
        """
        assert self.server is not None
        connection = ldap3.Connection(ldap3.Server(self.server.url), ALICE, "alice-secret",
                                      auto_bind=True, receive_timeout=10)
        self.addCleanup(connection.unbind)
        self.assertTrue(connection.search(SUFFIX, "(uid=alice)", attributes=["cn"]))
        self.assertEqual([e.entry_dn for e in connection.entries], [ALICE])

    def test_anonymousOversized(self) -> None:
        """
        An anonymous client announcing a 300 KiB PDU is disconnected as
        soon as the header arrives, without a Notice of Disconnection, as
        slapd does; another client's search succeeds.
        """
        client = self.client()
        client.send(_header(300 * 1024) + b"\x00" * 1000)
        self.assertTrue(client.closedSilently())
        self.assertOthersServed()

    def test_anonymousAtTheLimit(self) -> None:
        """
        An anonymous client may announce 262143 bytes: the server waits for
        the rest.
        """
        client = self.client()
        client.send(_header(262143))
        self.assertTrue(client.isOpen())

    def test_boundMiB(self) -> None:
        """
        A bound client may send a 1 MiB request; the same request from an
        anonymous client closes its connection.
        """
        request = _search(_equality(b"description", b"x" * 1024 * 1024))
        client = self.client()
        [bound] = client.request(_bind(ALICE, "alice-secret"))
        self.assertEqual(bound.value.resultCode, 0)
        [done] = client.request(request)
        self.assertEqual(done.value.resultCode, 0)
        anonymous = self.client()
        anonymous.send(request)
        self.assertTrue(anonymous.closedSilently())

    def test_budget(self) -> None:
        """
        Clients each holding part of a large PDU fill the shared budget: the
        one whose bytes would pass it is disconnected, those within it are
        kept, and another client's search succeeds meanwhile.
        """
        held = []
        for _ in range(7):
            client = self.client()
            client.send(_header(262143) + b"\x00" * 200000)
            held.append(client)
        self.assertTrue(all(client.isOpen() for client in held))
        last = self.client()
        last.send(_header(262143) + b"\x00" * 200000)
        self.assertTrue(last.closedSilently())
        self.assertTrue(all(client.isOpen() for client in held))
        self.assertOthersServed()

    def test_hugeFilter(self) -> None:
        """
        A bound client's 1 MB search with a half-million-way OR (within the
        test server's budget) is answered adminLimitExceeded from its first
        1001 components, and the connection goes on.
        """
        client = self.client()
        client.request(_bind(ALICE, "alice-secret"))
        huge = _search(tlv(0xA1, tlv(0x87, b"") * 500000), messageId=3)
        [done] = client.request(huge)
        self.assertEqual((done.id, done.value.resultCode), (3, 11))
        self.assertEqual(done.value.errorMessage, b"filter has more than 1000 components")
        entry, done = client.request(_search(_equality(b"uid", b"alice"), messageId=4))
        self.assertEqual((entry.value.objectName, done.value.resultCode), (ALICE.encode(), 0))
        self.assertOthersServed()


class SlapdIncomingLimitsTests(unittest.TestCase):
    """
    slapd answers the same attack the same way: the anonymous 300 KiB
    header closes the connection without a word, and 262143 bytes are
    awaited.
    """

    def setUp(self) -> None:
        if not SLAPD.exists():
            raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
        self.slapd = SlapdProcess()
        self.addCleanup(self.slapd.stop)
        self.slapd.start()

    def client(self) -> _Client:
        client = _Client(self.slapd.port)
        self.addCleanup(client.close)
        return client

    def test_sameAsLdapd(self) -> None:
        """
        slapd closes an anonymous connection announcing 300 KiB silently
        and waits for one announcing 262143 bytes.
        """
        client = self.client()
        client.send(_header(300 * 1024) + b"\x00" * 1000)
        self.assertTrue(client.closedSilently())
        client = self.client()
        client.send(_header(262143))
        self.assertTrue(client.isOpen())


class RegexIntegrationTests(ServerTestsMixin, unittest.TestCase):
    """
    ReDoS through a stored rule: an C{ldapdACI} C{dn.regex} that Python's
    C{re} would backtrack on exponentially for an entry named C{cn=aaa...}
    (n=22 took 7.7 s and blocked every client) is matched by RE2: anonymous
    searches get the right answer, and the rule still hides what it names.
    """

    serverConfig = _config(rest="[[plugin]]\nname = \"acl\"\nrules = ['to * by * read']")

    def setUp(self) -> None:
        if ldap3 is None:
            raise unittest.SkipTest("ldap3 is not installed")
        super().setUp()
        assert self.server is not None
        self.root = ldap3.Connection(ldap3.Server(self.server.url), f"cn=admin,{SUFFIX}",
                                     "secret", auto_bind=True, receive_timeout=30)
        self.addCleanup(self.root.unbind)

    def test_catastrophicPattern(self) -> None:
        """
        With the rule C{to dn.regex="^cn=(a|a)+x" by * none} stored on
        C{ou=people} and entries C{cn=aaax} and C{cn=a...a} (26 a's) below
        it, an anonymous search answers at once: the long one is visible,
        the one the rule names is not.
        """
        people = f"ou=people,{SUFFIX}"
        long = f"cn={'a' * 26},{people}"
        named = f"cn=aaax,{people}"
        for dn in (long, named):
            self.assertTrue(self.root.add(dn, ["person"], {"sn": "a"}), self.root.result)
            self.addCleanup(self.root.delete, dn)
        rule = 'to dn.regex="^cn=(a|a)+x" by * none'
        self.assertTrue(self.root.modify(people, {"ldapdACI": [(ldap3.MODIFY_ADD, [rule])]}),
                        self.root.result)
        self.addCleanup(self.root.modify, people, {"ldapdACI": [(ldap3.MODIFY_DELETE, [rule])]})
        assert self.server is not None
        anonymous = ldap3.Connection(ldap3.Server(self.server.url), auto_bind=True,
                                     receive_timeout=30)
        self.addCleanup(anonymous.unbind)
        self.assertTrue(anonymous.search(people, "(sn=a)", attributes=["cn"]))
        self.assertEqual({e.entry_dn for e in anonymous.entries}, {long})

    def test_refusedPattern(self) -> None:
        """
        A stored rule whose pattern RE2 does not accept (a backreference) is
        refused when written, naming the problem.
        """
        people = f"ou=people,{SUFFIX}"
        rule = 'to dn.regex="^cn=(a)\\1" by * none'
        self.assertFalse(self.root.modify(people, {"ldapdACI": [(ldap3.MODIFY_ADD, [rule])]}))
        self.assertEqual(self.root.result["result"], 21)
        self.assertIn("not a regular expression RE2 accepts", self.root.result["message"])
