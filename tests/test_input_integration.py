"""
Integration tests of what a client may put into the directory's input: the
real C{twist ldapd} attacked with OpenLDAP's clients, python-ldap and raw
sockets, and the same requests sent to a private slapd where slapd's answer
is the reference.

Attribute descriptions are checked by RFC 4512 on every path (a description
holding a line break, stored by a user with self-write, came out of an
administrator's C{ldapsearch -LLL} dump as a forged change record), and
malformed BER is refused while lengths in the long form are read.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from ldaptor.protocols import pureldap
from twisted.trial import unittest

from ldapd._codec import NOTICE_OF_DISCONNECTION, integer, octetString, tlv
from ldapd.testing import (
    SLAPD,
    ServerTestsMixin,
    SlapdProcess,
    decodeResponses,
    exampleConfig,
    longFormLengths,
)

try:
    import ldap
except ImportError:
    ldap = None

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
ADMINS = f"cn=admins,ou=groups,{BASE}"
ROOT = (f"cn=admin,{BASE}", "secret")
BOB = (f"uid=bob,{PEOPLE}", "bob-secret")
UNDEFINED_ATTRIBUTE_TYPE = 17

#: What a user with self-write stored, so that an administrator's dump of
#: the tree, restored with C{ldapmodify -a -c}, made him an administrator.
PAYLOAD = (f";x-note\n\ndn: {ADMINS}\nchangetype: modify\nadd: member\n"
           f"member: {BOB[0]}\n-\n\ndn: {BOB[0]}\nchangetype: modify\nadd: description;x-a")


def _tools() -> None:
    """
    @raise unittest.SkipTest: without ldap-utils or python-ldap.
    """
    for tool in ("ldapsearch", "ldapmodify"):
        if shutil.which(tool) is None:
            raise unittest.SkipTest(f"{tool} not installed (Debian/Ubuntu package ldap-utils)")
    if ldap is None:
        raise unittest.SkipTest("python-ldap is not installed")


def _run(url: str, tool: str, who: tuple[str, str], *args: str,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool, "-x", "-H", url, "-D", who[0], "-w", who[1], *args],
                          input=stdin, capture_output=True, text=True, timeout=30, check=False)


def _bind(url: str, who: tuple[str, str]) -> Any:
    connection = ldap.initialize(url)
    connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 10)
    connection.simple_bind_s(*who)
    return connection


def _outcome(call: Callable[[], Any]) -> tuple[int, int]:
    """
    @return: the result code of a python-ldap call, and the number of
        entries it returned.
    """
    try:
        found = call()
    except ldap.LDAPError as e:
        return e.args[0]["result"], 0
    return 0, len(found) if isinstance(found, list) else 0


class _DescriptionAttack:
    """
    A user allowed to write his own entry tries to store a description
    whose option carries a line break and a change record after it.

    @cvar attribute: the type he may write.
    """

    attribute: ClassVar[str]
    server: Any

    def test_refused(self) -> None:
        """
        The modify is undefinedAttributeType (17) with slapd's message, and
        the administrator's dump of the entry holds no other record.
        """
        connection = _bind(self.server.url, BOB)
        self.addCleanup(connection.unbind_s)
        with self.assertRaises(ldap.UNDEFINED_TYPE) as caught:
            connection.modify_s(BOB[0], [(ldap.MOD_ADD, self.attribute + PAYLOAD, [b"v"])])
        self.assertIn("AttributeDescription contains inappropriate characters",
                      caught.exception.args[0]["info"])
        self.assertNotIn("\n", caught.exception.args[0]["info"])
        dump = _run(self.server.url, "ldapsearch", ROOT, "-LLL", "-b", BOB[0], "-s", "base",
                    "*", "+")
        self.assertEqual(dump.returncode, 0, dump.stderr)
        self.assertEqual([line for line in dump.stdout.splitlines() if line.startswith("dn")],
                         [f"dn: {BOB[0]}"])
        self.assertNotIn("changetype", dump.stdout)
        members = _run(self.server.url, "ldapsearch", ROOT, "-LLL", "-b", ADMINS, "-s", "base",
                       "member")
        self.assertNotIn(BOB[0], members.stdout)

    def test_ldapmodify(self) -> None:
        """
        An option with a space or an underscore, sent with ldapmodify, is
        refused as slapd refuses it.
        """
        for option in ("x y", "x_y"):
            description = f"{self.attribute};{option}"
            out = _run(self.server.url, "ldapmodify", BOB, stdin=(
                f"dn: {BOB[0]}\nchangetype: modify\nadd: {description}\n{description}: v\n-\n"))
            self.assertEqual(out.returncode, UNDEFINED_ATTRIBUTE_TYPE, out.stderr)
            self.assertIn(f"{description}: AttributeDescription contains inappropriate characters",
                          out.stderr)


class DefaultPolicyAttackTests(_DescriptionAttack, ServerTestsMixin,
                               unittest.SynchronousTestCase):
    """
    Under the default policy a user may write his own C{userPassword}.
    """

    attribute = "userPassword"

    @classmethod
    def setUpClass(cls) -> None:
        _tools()
        super().setUpClass()


class SelfWriteAttackTests(_DescriptionAttack, ServerTestsMixin, unittest.SynchronousTestCase):
    """
    With the acl plugin giving users write access to their own entry, and
    the audit plugin logging writes.
    """

    attribute = "description"
    serverConfig = (exampleConfig()
                    + '\n[[plugin]]\nname = "acl"\nrules = [\n'
                    + "    'to attrs=userPassword by self write by anonymous auth by * none',\n"
                    + "    'to * by self write by users read by * none',\n]\n"
                    + '\n[[plugin]]\nname = "audit"\nfile = "audit.ldif"\n')

    @classmethod
    def setUpClass(cls) -> None:
        _tools()
        super().setUpClass()

    def test_auditLog(self) -> None:
        """
        After the refused attack and a value holding the same payload,
        which is stored, the audit log reads back as exactly the one
        change record of that value, base64-encoded.
        """
        connection = _bind(self.server.url, BOB)
        self.addCleanup(connection.unbind_s)
        with self.assertRaises(ldap.UNDEFINED_TYPE):
            connection.modify_s(BOB[0], [(ldap.MOD_ADD, "description" + PAYLOAD, [b"v"])])
        connection.modify_s(BOB[0], [(ldap.MOD_REPLACE, "description", [PAYLOAD.encode()])])
        from ldapd.ldif import parseLDIF

        audit = (self.server.configPath.parent / "audit.ldif").read_bytes()
        records = list(parseLDIF(audit.splitlines(keepends=True)))
        self.assertEqual([(r.changetype, r.dn) for r in records], [("modify", BOB[0])])
        self.assertEqual(records[0].modifications,
                         (("replace", "description", (PAYLOAD.encode(),)),))


#: The requests of the slapd comparison, each sent as the root DN: the
#: description, in every place a client can put one.
_BAD = ["description;x y", "description;x_y", "description;x-note\n", "description;",
        "descr iption", "-description", "description;x.y"]


def _battery(url: str) -> list[tuple[str, tuple[int, int]]]:
    """
    Send the comparison's requests.

    @return: each request's name and outcome.
    """
    connection = _bind(url, ROOT)
    try:
        entry = f"cn=probe,{BASE}"
        connection.add_s(entry, [("objectClass", [b"organizationalRole"]), ("cn", [b"probe"]),
                                 ("description", [b"v"])])
        outcomes = []
        for bad in _BAD:
            outcomes += [
                (f"modify {bad!r}", _outcome(lambda bad=bad: connection.modify_s(
                    entry, [(ldap.MOD_ADD, bad, [b"w"])]))),
                (f"add {bad!r}", _outcome(lambda bad=bad: connection.add_s(
                    f"cn=other,{BASE}", [("objectClass", [b"organizationalRole"]),
                                         ("cn", [b"other"]), (bad, [b"w"])]))),
                (f"compare {bad!r}",
                 _outcome(lambda bad=bad: connection.compare_s(entry, bad, b"v"))),
                (f"attributes {bad!r}", _outcome(lambda bad=bad: connection.search_s(
                    entry, ldap.SCOPE_BASE, "(objectClass=*)", [bad]))),
            ]
        for rdn in ["description;x y=v", "descr iption=v"]:
            outcomes.append((f"modrdn {rdn!r}",
                             _outcome(lambda rdn=rdn: connection.rename_s(entry, rdn))))
        connection.delete_s(entry)
        return outcomes
    finally:
        connection.unbind_s()


def _filters(url: str) -> list[tuple[str, tuple[int, int]]]:
    """
    Search with filters whose descriptions are malformed; python-ldap
    refuses to encode them, so ldap3, which does not check names, sends
    them.

    @return: each filter and its outcome.
    """
    import ldap3

    connection = ldap3.Connection(url, *ROOT, auto_bind=True, check_names=False)
    try:
        outcomes = []
        for f in ["(description;x y=*)", "(description;x y=a)", "(description;x y=a*)",
                  "(description;x y>=a)", "(|(description;x y=*)(dc=example))",
                  "(!(description;x y=*))", "(description;=*)", "(descr iption=*)",
                  "(description;x\ny=*)"]:
            connection.search(BASE, f, ldap3.BASE, attributes=["dc"])
            outcomes.append((f, (connection.result["result"], len(connection.entries))))
        return outcomes
    finally:
        connection.unbind()


class SlapdDescriptionTests(ServerTestsMixin, unittest.SynchronousTestCase):
    """
    Malformed descriptions get from ldapd what slapd answers: 17 for a
    write or a Compare, nothing for a requested attribute, Undefined for a
    filter item, invalidDNSyntax for an RDN.
    """

    @classmethod
    def setUpClass(cls) -> None:
        _tools()
        if not SLAPD.is_file():
            raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
        slapd = SlapdProcess(BASE, ROOT[0], ROOT[1])
        slapd.start()
        try:
            connection = _bind(slapd.url, ROOT)
            connection.add_s(BASE, [("objectClass", [b"dcObject", b"organization"]),
                                    ("dc", [b"example"]), ("o", [b"Example"])])
            connection.unbind_s()
            cls.slapdOutcomes = _battery(slapd.url) + _filters(slapd.url)
        finally:
            slapd.stop()
        super().setUpClass()

    def test_sameAsSlapd(self) -> None:
        """
        Every request has slapd's outcome.
        """
        self.assertEqual(_battery(self.server.url) + _filters(self.server.url),
                         self.slapdOutcomes)


def _searchPDU(messageId: int, scope: bytes = integer(0, 0x0A), timeLimit: bytes = integer(0),
               typesOnly: bytes = b"\x01\x01\x00", searchFilter: bytes = tlv(0x87, b"dc"),
               attributes: bytes = tlv(0x30, octetString(b"dc"))) -> bytes:
    """
    @return: a base search of the suffix, with the fields given encoded
        as they are.
    """
    return tlv(0x30, integer(messageId) + tlv(0x63, (
        octetString(BASE.encode()) + scope + integer(0, 0x0A) + integer(0) + timeLimit
        + typesOnly + searchFilter + attributes)))


#: Searches that BER or RFC 4511 do not allow, which ldapd once accepted.
MALFORMED = {
    "primitive SEQUENCE": _searchPDU(2, attributes=tlv(0x10, octetString(b"dc"))),
    "scope as INTEGER": _searchPDU(2, scope=integer(0)),
    "timeLimit 2**40": _searchPDU(2, timeLimit=integer(2**40)),
    "BOOLEAN of two octets": _searchPDU(2, typesOnly=b"\x01\x02\x00\x00"),
    "empty substrings": _searchPDU(2, searchFilter=tlv(0xA4, octetString(b"dc") + tlv(0x30, b""))),
}


def _exchange(url: str, pdu: bytes) -> list[tuple[int, str, int, bytes]]:
    """
    Send C{pdu} on a new connection, then a good search (message id 9)
    unless the server has closed the connection.

    @return: each response's message id, type name, result code (or -1)
        and diagnostic message or name, up to the good search's
        SearchResultDone or the end of the connection.
    """
    host, port = url.removeprefix("ldap://").split(":")
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(pdu)
        sentGood = False
        while True:
            try:
                messages = decodeResponses(received)
            except Exception:  # noqa: BLE001 (a partial message: read more)
                messages = None
            if messages is not None:
                if any(m.id == 9 and isinstance(m.value, pureldap.LDAPSearchResultDone)
                       for m in messages):
                    break
                if not sentGood and any(isinstance(m.value, (
                        pureldap.LDAPSearchResultDone, pureldap.LDAPExtendedResponse))
                        for m in messages):
                    sentGood = True
                    try:
                        connection.sendall(_searchPDU(9))
                    except OSError:
                        break
            try:
                chunk = connection.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            received += chunk
    outcomes = []
    for m in decodeResponses(received):
        value = m.value
        if isinstance(value, pureldap.LDAPExtendedResponse):
            outcomes.append((m.id, "notice", value.resultCode, value.responseName))
        elif isinstance(value, pureldap.LDAPSearchResultDone):
            outcomes.append((m.id, "done", value.resultCode, value.errorMessage))
        else:
            outcomes.append((m.id, type(value).__name__, -1, b""))
    return outcomes


class BERTests(ServerTestsMixin, unittest.SynchronousTestCase):
    """
    Malformed searches sent on a raw socket get protocolError and the
    connection goes on; a search whose lengths are all in the four-octet
    long form is answered as its minimal encoding is. slapd, on the same
    bytes, accepts four of the five malformed searches and disconnects on
    the fifth (see docs/compatibility.md).
    """

    def test_malformed(self) -> None:
        """
        Each malformed search gets protocolError (2) in a SearchResultDone
        with "decoding error", and the next search on the connection is
        answered.
        """
        for what, pdu in MALFORMED.items():
            self.assertEqual(_exchange(self.server.url, pdu), [
                (2, "done", 2, b"decoding error"),
                (9, "LDAPSearchResultEntry", -1, b""), (9, "done", 0, b""),
            ], what)

    def test_longForm(self) -> None:
        """
        Every length in four octets, the message id's included: the same
        answer as for the minimal encoding.
        """
        expected = [(2, "LDAPSearchResultEntry", -1, b""), (2, "done", 0, b""),
                    (9, "LDAPSearchResultEntry", -1, b""), (9, "done", 0, b"")]
        self.assertEqual(_exchange(self.server.url, _searchPDU(2)), expected)
        self.assertEqual(_exchange(self.server.url, longFormLengths(_searchPDU(2))), expected)

    def test_slapd(self) -> None:
        """
        slapd reads the long form too; of the malformed searches it refuses
        only the timeLimit above maxInt, with a Notice of Disconnection, and
        answers the others (the differences docs/compatibility.md lists).
        """
        if not SLAPD.is_file():
            raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
        slapd = SlapdProcess(BASE, ROOT[0], ROOT[1])
        slapd.start()
        self.addCleanup(slapd.stop)
        _tools()
        connection = _bind(slapd.url, ROOT)
        connection.add_s(BASE, [("objectClass", [b"dcObject", b"organization"]),
                                ("dc", [b"example"]), ("o", [b"Example"])])
        connection.unbind_s()
        found = [(2, "LDAPSearchResultEntry", -1, b""), (2, "done", 0, b""),
                 (9, "LDAPSearchResultEntry", -1, b""), (9, "done", 0, b"")]
        self.assertEqual(_exchange(slapd.url, longFormLengths(_searchPDU(2))), found)
        outcomes = {what: _exchange(slapd.url, pdu) for what, pdu in MALFORMED.items()}
        self.assertEqual(outcomes.pop("timeLimit 2**40"),
                         [(0, "notice", 2, NOTICE_OF_DISCONNECTION)])
        self.assertEqual(outcomes.pop("empty substrings"), found[1:])
        for what, outcome in outcomes.items():
            self.assertEqual(outcome, found, what)
