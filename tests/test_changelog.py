"""
Tests for replication's first parts: the Directory's change feed
(L{ldapd.directory.Directory.subscribe}), the changelog kept by the memory
and sql backends, the C{changelog} plugin (CSNs, contextCSN, records) and
the retro changelog C{cn=changelog}.
"""

from __future__ import annotations

from typing import Any

from ldaptor.protocols import pureldap
from twisted.internet import defer, task
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from ldapd._codec import encodeMessage
from ldapd._framing import Framer
from ldapd.backends.memory import MemoryBackend
from ldapd.changes import ADD, DELETE, MODIFY, RENAME, Change
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.operation import Connection, Identity, Operation
from ldapd.schema import Schema
from ldapd.testing import EXAMPLE_LDIF, decodeResponse

SUFFIX = "dc=example,dc=com"
ROOT = "cn=admin,dc=example,dc=com"
PEOPLE = "ou=people,dc=example,dc=com"


class DirectoryMixin:
    """
    A directory with the example organisation in a memory backend, on a
    L{task.Clock}, and a connection bound as its root DN.
    """

    plugins: list[Any] = []

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        self.backend = self.makeBackend(self.schema.normalizeDN(suffix), self.schema)
        self.directory = Directory(
            [Database(suffix, self.backend, DN.parse(ROOT), b"secret", EXAMPLE_LDIF)],
            self.makePlugins(), schema=self.schema, reactor=self.clock,
        )
        self.successResultOf(self.directory.open())
        self.connection = Connection("test", self.clock)
        self.connection.identity = Identity(DN.parse(ROOT), self.schema.normalizeDN(
            DN.parse(ROOT)), isRoot=True)
        self.nextId = 1

    def makeBackend(self, suffix: DN, schema: Schema) -> Any:
        return MemoryBackend(suffix, schema, self.clock)

    def makePlugins(self) -> list[Any]:
        return list(self.plugins)

    def execute(self, request: Any) -> list[Any]:
        """
        Execute a request on the test connection, as it arrives from the wire.

        @return: the decoded responses.
        """
        responses: list[Any] = []
        framer = Framer()
        framer.feed(pureldap.LDAPMessage(request, id=self.nextId).toWire())
        message = framer.next()
        op = Operation(self.connection, message.id, message.value, message.controls)
        self.nextId += 1

        def reply(pdu: bytes, ctrls: Any = ()) -> None:
            responses.append(decodeResponse(encodeMessage(op.messageId, pdu, ctrls)))

        self.successResultOf(self.directory.execute(op, reply))
        return responses

    def ndn(self, text: str) -> DN:
        return self.schema.normalizeDN(DN.parse(text))

    def person(self, uid: str) -> Entry:
        return Entry(DN.parse(f"uid={uid},{PEOPLE}"), [
            ("objectClass", [b"inetOrgPerson"]), ("uid", [uid.encode()]),
            ("cn", [uid.title().encode()]), ("sn", [b"Example"]),
        ], self.schema)


class ChangeFeedTests(DirectoryMixin, unittest.TestCase):
    """
    L{Directory.subscribe}: every committed write, announced once.
    """

    def setUp(self) -> None:
        super().setUp()
        self.changes: list[Change] = []
        self.unsubscribe = self.directory.subscribe(self.changes.append)

    def test_writes(self) -> None:
        """
        Adds, modifies, renames and deletes made through the directory are
        announced with the entries before and after, the suffix and the
        operation.
        """
        op = self.directory.internalOperation()
        zoe = self.person("zoe")
        d = defer.Deferred.fromCoroutine(self.directory.add(op, zoe))
        self.successResultOf(d)
        self.successResultOf(defer.Deferred.fromCoroutine(self.directory.modify(
            op, zoe.ndn, [Modification("replace", "cn", (b"Zoey",))])))
        self.successResultOf(defer.Deferred.fromCoroutine(self.directory.rename(
            op, zoe.ndn, DN.parse(f"uid=zo,{PEOPLE}"), True)))
        self.successResultOf(defer.Deferred.fromCoroutine(self.directory.delete(
            op, self.ndn(f"uid=zo,{PEOPLE}"))))
        self.assertEqual([c.kind for c in self.changes], [ADD, MODIFY, RENAME, DELETE])
        self.assertTrue(all(c.op is op for c in self.changes))
        self.assertTrue(all(c.suffix == self.ndn(SUFFIX) for c in self.changes))
        add, modify, rename, delete = self.changes
        self.assertIsNone(add.old)
        self.assertEqual(add.new.get("cn"), (b"Zoe",))
        self.assertTrue(add.new.get("entryUUID"))
        self.assertEqual((modify.old.get("cn"), modify.new.get("cn")), ((b"Zoe",), (b"Zoey",)))
        self.assertEqual((str(rename.old.dn), str(rename.new.dn)),
                         (f"uid=zoe,{PEOPLE}", f"uid=zo,{PEOPLE}"))
        self.assertEqual(str(delete.old.dn), f"uid=zo,{PEOPLE}")
        self.assertIsNone(delete.new)

    def test_renameSubtree(self) -> None:
        """
        Renaming an entry with children announces one change: the renamed entry's.
        """
        self.execute(pureldap.LDAPModifyDNRequest(entry=PEOPLE, newrdn="ou=staff",
                                                  deleteoldrdn=True))
        self.assertEqual([(c.kind, str(c.new.dn)) for c in self.changes],
                         [(RENAME, "ou=staff,dc=example,dc=com")])

    def test_beforeResponse(self) -> None:
        """
        A client's write is announced before its response is sent.
        """
        seen: list[int] = []
        responses: list[Any] = []
        self.directory.subscribe(lambda change: seen.append(len(responses)))
        responses.extend(self.execute(pureldap.LDAPDelRequest(entry=f"uid=bob,{PEOPLE}")))
        self.assertEqual(seen, [0])
        self.assertEqual(responses[-1].value.resultCode, 0)
        self.assertEqual(self.changes[-1].op.request.__class__, pureldap.LDAPDelRequest)

    def test_failedWrite(self) -> None:
        """
        A write that fails is not announced.
        """
        response = self.execute(pureldap.LDAPDelRequest(entry=f"uid=nobody,{PEOPLE}"))
        self.assertEqual(response[-1].value.resultCode, 32)
        self.assertEqual(self.changes, [])

    def test_subscriberFails(self) -> None:
        """
        A subscriber that raises is logged; the write succeeds and later
        subscribers are still told.
        """
        logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        self.unsubscribe()

        def broken(change: Change) -> None:
            raise RuntimeError("subscriber bug")

        self.directory.subscribe(broken)
        self.directory.subscribe(self.changes.append)
        response = self.execute(pureldap.LDAPDelRequest(entry=f"uid=bob,{PEOPLE}"))
        self.assertEqual(response[-1].value.resultCode, 0)
        self.assertEqual(len(self.changes), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_unsubscribe(self) -> None:
        """
        After unsubscribing, nothing more is announced, and the backend is
        handed the plugin chain itself.
        """
        self.unsubscribe()
        self.unsubscribe()
        self.assertIs(self.directory._hooksFor(), self.directory.plugins)
        self.execute(pureldap.LDAPDelRequest(entry=f"uid=bob,{PEOPLE}"))
        self.assertEqual(self.changes, [])
