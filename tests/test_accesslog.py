"""
Tests for L{ldapd.accesslog} (one structured line per operation result,
with no secret in it) and L{ldapd.plugins.audit} (successful writes as LDIF).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ldaptor.protocols import pureber, pureldap
from twisted.internet import task
from twisted.logger import LogLevel, eventAsJSON, formatEvent, globalLogPublisher
from twisted.trial import unittest

from ldapd import accesslog
from ldapd._codec import encodeMessage
from ldapd._framing import Framer
from ldapd.accesslog import describeRequest, filterText
from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.ldif import parseLDIF
from ldapd.operation import Connection, Identity, Operation
from ldapd.plugins.audit import AuditLog, AuditLogFactory
from ldapd.registry import ConfigContext, ConfigError
from ldapd.requests import ModifyRequest
from ldapd.schema import Schema
from ldapd.testing import EXAMPLE_LDIF, decodeResponse, parseFilter, wireFilter

SUFFIX = "dc=example,dc=com"
ALICE = "uid=alice,ou=people,dc=example,dc=com"


class RedactTests(unittest.SynchronousTestCase):
    """
    Filters are logged with password assertion values hidden.
    """

    def test_filterText(self) -> None:
        """
        Filters are logged in RFC 4515 form; every kind of assertion on
        userPassword or authPassword (with options, in any case) loses its value.
        """
        text = ("(&(uid=a*b*c)(!(cn=x\\2a))(|(mail>=m)(sn<=s)(cn~=c))(o=*)"
                "(USERPASSWORD;x>=pw1)(userPassword=pw2*)(authPassword:caseExactMatch:=pw3)"
                "(cn:dn:2.5.13.5:=v))")
        self.assertEqual(filterText(parseFilter(text)), text
                         .replace("pw1", "***").replace("pw2*", "****").replace("pw3", "***"))
        self.assertEqual(filterText(parseFilter("(cn=\\28\\00)")), "(cn=\\28\\00)")

    def test_modifyNamesOnly(self) -> None:
        """
        A Modify is described by its attribute names, not its values.
        """
        fields = describeRequest(ModifyRequest(
            ALICE.encode(), (("replace", "userPassword", (b"s3cret",)),)))
        self.assertEqual(fields, {"target": ALICE, "attributes": ["userPassword"]})


class DirectoryLogTests(unittest.TestCase):
    """
    The directory logs each operation's result once.
    """

    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        clock = task.Clock()
        schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        self.directory = Directory(
            [Database(suffix, MemoryBackend(schema.normalizeDN(suffix), schema),
                      DN.parse("cn=admin," + SUFFIX), b"secret", EXAMPLE_LDIF)],
            schema=schema, reactor=clock)
        self.successResultOf(self.directory.open())
        self.connection = Connection("127.0.0.1:4000", clock)

    def execute(self, request: Any, messageId: int = 1) -> None:
        framer = Framer()
        framer.feed(pureldap.LDAPMessage(request, id=messageId).toWire())
        message = framer.next()
        op = Operation(self.connection, message.messageId, message.request, message.controls)
        self.successResultOf(self.directory.execute(
            op, lambda pdu, controls=(): decodeResponse(encodeMessage(1, pdu, controls))))

    def results(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("log_namespace") == "ldapd.access"]

    def test_search(self) -> None:
        """
        A search's line names the base, scope, filter, entries sent and
        result, as slapd's does.
        """
        self.execute(pureldap.LDAPSearchRequest(
            baseObject="ou=people," + SUFFIX, scope=1, filter=wireFilter("(uid=a*)")), 7)
        [event] = self.results()
        self.assertEqual((event["conn"], event["msgid"], event["operation"], event["err"],
                          event["nentries"], event["tag"], event["target"], event["scope"]),
                         (self.connection.id, 7, "SRCH", 0, 1, 0x65, "ou=people," + SUFFIX, 1))
        line = formatEvent(event)
        self.assertIn(
            f'conn={self.connection.id} op=7 SRCH base="ou=people,{SUFFIX}" scope=1 '
            'filter="(uid=a*)" attrs=ALL RESULT err=0 tag=101 nentries=1 etime=', line)

    def test_lineAndFields(self) -> None:
        """
        The event's text is its C{accessLine} field, and as JSON (C{twist
        --log-format json}) it keeps every part as a field of its own.
        """
        self.execute(pureldap.LDAPDelRequest(entry="uid=nobody," + SUFFIX), 3)
        [event] = self.results()
        self.assertEqual(formatEvent(event), event["accessLine"])
        self.assertIn(f'conn={self.connection.id} op=3 DEL dn="uid=nobody,{SUFFIX}" RESULT err=8 '
                      f'tag=107 nentries=0 etime=', event["accessLine"])
        fields = json.loads(eventAsJSON(event))
        self.assertEqual(
            (fields["operation"], fields["err"], fields["target"], fields["accessLine"]),
            ("DEL", 8, "uid=nobody," + SUFFIX, event["accessLine"]))

    def test_eventAsLoggerMakesIt(self) -> None:
        """
        The event has what C{Logger.info} gives an event: the access
        logger, level info, its namespace and source, the format
        C{"{accessLine}"} and the time; the same C{log_} fields as an event
        of C{Logger.info}.
        """
        self.patch(accesslog, "time", SimpleNamespace(time=lambda: 1234.5))
        self.execute(pureldap.LDAPDelRequest(entry="uid=nobody," + SUFFIX), 3)
        [event] = self.results()
        self.assertIs(event["log_logger"], accesslog._log)
        self.assertEqual((event["log_level"], event["log_namespace"], event["log_source"],
                          event["log_format"]),
                         (LogLevel.info, "ldapd.access", None, "{accessLine}"))
        self.assertEqual(event["log_time"], 1234.5)
        accesslog._log.info("{accessLine}", accessLine="x")
        byLogger = self.results()[-1]
        self.assertEqual({k for k in event if k.startswith("log_")},
                         {k for k in byLogger if k.startswith("log_")})

    def test_lineIsTheFormat(self) -> None:
        """
        Every operation's line is L{accesslog.ACCESS_LOG_FORMAT} filled
        with its event's fields, its request's details and its quoted
        authorization DN.
        """
        self.execute(pureldap.LDAPBindRequest(dn=ALICE, auth="alice-secret"), 1)
        self.execute(pureldap.LDAPSearchRequest(
            baseObject=SUFFIX, scope=2, filter=wireFilter('(cn=a"b*)'), attributes=["cn"]), 2)
        self.execute(pureldap.LDAPDelRequest(entry="uid=nobody," + SUFFIX), 3)
        events = self.results()
        self.assertEqual([e["operation"] for e in events], ["BIND", "SRCH", "DEL"])
        for event in events:
            name = {"BIND": "bind", "SRCH": "search", "DEL": "delete"}[event["operation"]]
            fields = {k: v for k, v in event.items() if k not in ("accessLine",)
                      and not k.startswith("log_")}
            self.assertEqual(event["accessLine"], accesslog.ACCESS_LOG_FORMAT.format(
                details=accesslog._details(name, fields),
                authzQuoted=accesslog._quote(event["authzDN"]), **fields))

    def test_bindHasNoPassword(self) -> None:
        """
        A bind's line names the DN it bound as, and neither the password
        nor anything derived from it.
        """
        self.execute(pureldap.LDAPBindRequest(dn=ALICE, auth="alice-secret"))
        [event] = self.results()
        self.assertEqual((event["err"], event["authzDN"]), (0, ALICE))
        self.assertNotIn("alice-secret", repr(self.events))


class AuditLogTests(unittest.TestCase):
    """
    The C{audit} plugin appends successful writes to a file as LDIF change
    records that L{parseLDIF} reads back, without password values.
    """

    def setUp(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-audit-"))
        self.addCleanup(shutil.rmtree, folder)
        self.path = folder / "audit.ldif"
        clock = task.Clock()
        clock.advance(1763709420)
        schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        self.directory = Directory(
            [Database(suffix, MemoryBackend(schema.normalizeDN(suffix), schema),
                      DN.parse("cn=admin," + SUFFIX), b"secret", EXAMPLE_LDIF)],
            [AuditLog(self.path, clock)], schema=schema, reactor=clock)
        self.successResultOf(self.directory.open())
        self.connection = Connection("127.0.0.1:4000", clock)
        self.connection.identity = Identity(DN.parse("cn=admin," + SUFFIX),
                                            schema.normalizeDN(DN.parse("cn=admin," + SUFFIX)),
                                            isRoot=True)

    def execute(self, request: Any) -> int:
        framer = Framer()
        framer.feed(pureldap.LDAPMessage(request, id=1).toWire())
        message = framer.next()
        op = Operation(self.connection, message.messageId, message.request, message.controls)
        responses: list[Any] = []
        self.successResultOf(self.directory.execute(
            op, lambda pdu, c=(): responses.append(decodeResponse(encodeMessage(1, pdu, c)).value)))
        return responses[-1].resultCode

    def test_writes(self) -> None:
        """
        Add, modify, rename and delete are recorded in order, with who did
        them; a failed write and the seed data are not; passwords are not.
        """
        def attribute(name: str, *values: str) -> Any:
            return (pureber.BEROctetString(name),
                    pureber.BERSet([pureber.BEROctetString(v) for v in values]))

        dn = "uid=zoe,ou=people," + SUFFIX
        self.assertEqual(self.execute(pureldap.LDAPAddRequest(entry=dn, attributes=[
            attribute("objectClass", "inetOrgPerson"), attribute("cn", "Zoë"),
            attribute("sn", "Z"), attribute("userPassword", "zoe-secret")])), 0)
        change = pureber.BERSequence([pureber.BEREnumerated(2), pureber.BERSequence(
            [pureber.BEROctetString("userPassword"),
             pureber.BERSet([pureber.BEROctetString("zoe-new")])])])
        mail = pureber.BERSequence([pureber.BEREnumerated(0), pureber.BERSequence(
            [pureber.BEROctetString("mail"), pureber.BERSet([pureber.BEROctetString("z@x")])])])
        self.assertEqual(self.execute(pureldap.LDAPModifyRequest(object=dn, modification=[change, mail])), 0)
        self.assertEqual(self.execute(pureldap.LDAPModifyRequest(
            object="uid=nobody," + SUFFIX, modification=[mail])), 32)
        self.assertEqual(self.execute(pureldap.LDAPModifyDNRequest(
            entry=dn, newrdn="uid=zed", deleteoldrdn=True)), 0)
        self.assertEqual(self.execute(pureldap.LDAPDelRequest(entry="uid=zed,ou=people," + SUFFIX)), 0)
        text = self.path.read_bytes()
        self.assertNotIn(b"zoe-secret", text)
        self.assertNotIn(b"zoe-new", text)
        self.assertIn(b"# add 1763709420 cn=admin,dc=example,dc=com IP=127.0.0.1:4000 conn=", text)
        self.assertIn(b"# userPassword: 1 value(s) not logged\n", text)
        records = list(parseLDIF(text.splitlines(keepends=True)))
        self.assertEqual([(r.changetype, r.dn) for r in records], [
            ("add", dn), ("modify", dn), ("modrdn", dn), ("delete", "uid=zed,ou=people," + SUFFIX)])
        self.assertIn(("cn", "Zoë".encode()), records[0].attributes)

    def test_oneLineComments(self) -> None:
        """
        The comments around a record are one line each, whatever characters
        the writer's DN holds: no reader splitting lines, as Python's
        C{str.splitlines} does at NEL and LINE SEPARATOR, sees a forged
        line.
        """
        self.connection.identity = Identity(
            DN.parse("cn=x\x85dn: cn=evil\u2028changetype: delete\x1b[2J," + SUFFIX),
            isRoot=True)
        self.assertEqual(self.execute(pureldap.LDAPDelRequest(
            entry="uid=heidi,ou=people," + SUFFIX)), 0)
        text = self.path.read_bytes().decode("utf-8")
        lines = text.splitlines()
        self.assertEqual([line[:6] for line in lines if line.startswith("#")], ["# dele", "# end "])
        self.assertEqual(len(lines), 5)
        self.assertIn("cn=x\\x85dn: cn\\=evil\\u2028changetype: delete\\1B[2J", lines[0])

    def test_factory(self) -> None:
        """
        The factory needs a file in an existing folder.
        """
        context = ConfigContext(None, "plugin[0]", Schema.standard(), task.Clock())
        self.assertIsInstance(AuditLogFactory.fromConfig({"file": str(self.path)}, context), AuditLog)
        for table in ({}, {"file": "/nonexistent/folder/audit.ldif"}, {"file": "x", "other": 1}):
            self.assertRaises(ConfigError, AuditLogFactory.fromConfig, table, context)
