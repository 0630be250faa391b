"""
Tests for replication's first parts: the Directory's change feed
(L{ldapd.directory.Directory.subscribe}), the changelog kept by the memory
and sql backends, the C{changelog} plugin (CSNs, contextCSN, records) and
the retro changelog C{cn=changelog}.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from ldaptor.protocols import pureber, pureldap
from ldaptor.protocols.ldap import ldaperrors
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool
from twisted.internet import defer, task
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from ldapd.backends import sqlschema
from ldapd.backends.changelog import appendSQL, readSQL
from ldapd.backends.memory import MemoryBackend
from ldapd.changes import ADD, DELETE, MODIFY, RENAME, Change
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.operation import Connection, Identity, Operation
from ldapd.plugins.acl import AccessControl
from ldapd.plugins.changelog import Changelog, ChangelogFactory, changeRecord
from ldapd.registry import ConfigContext, ConfigError
from ldapd.requests import DeleteRequest
from ldapd.schema import Schema
from ldapd.testing import (
    EXAMPLE_LDIF,
    SOURCE_ROOT,
    BackendTestsMixin,
    ServerProcess,
    ServerTestsMixin,
    SlapdProcess,
    executeRequest,
    privatePostgreSQLSchema,
    wireFilter,
)

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
        responses, done = executeRequest(self.directory, self.connection, request, self.nextId)
        self.nextId += 1
        self.successResultOf(done)
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
        self.assertEqual(self.changes[-1].op.request.__class__, DeleteRequest)

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
        After unsubscribing, nothing more is announced.
        """
        self.unsubscribe()
        self.unsubscribe()
        self.execute(pureldap.LDAPDelRequest(entry=f"uid=bob,{PEOPLE}"))
        self.assertEqual(self.changes, [])


class _Refuse:
    """
    A plugin whose C{txn_modify} refuses, after the changelog's has run.
    """

    name = "refuse"

    def txn_modify(self, op: Operation, txn: Any, old: Entry, new: Entry) -> None:
        raise ldaperrors.LDAPUnwillingToPerform("refused by test")


class ChangelogTestsBase(DirectoryMixin):
    """
    The changelog plugin in a directory with a memory backend. (The sql
    backend's changelog runs the conformance suite of L{ldapd.testing}, and
    the plugin on it is tested over the wire below.)
    """

    sid = 5
    maxEntries = 100000

    def makePlugins(self) -> list[Any]:
        self.changelog = Changelog(timedelta(days=1), self.maxEntries, sid=self.sid)
        return [self.changelog] + list(self.plugins)

    def records(self) -> list[Any]:
        return self.successResultOf(self.backend.changes(0, 1000))

    def search(self, base: str = "cn=changelog", filterText: str = "(objectClass=*)",
               scope: int = 1, attributes: list[str] | None = None) -> list[Any]:
        return self.execute(pureldap.LDAPSearchRequest(
            baseObject=base, scope=scope, filter=wireFilter(filterText),
            attributes=attributes or []))

    @staticmethod
    def entries(responses: list[Any]) -> dict[str, dict[str, list[bytes]]]:
        return {
            r.value.objectName.decode(): {
                k.decode() if isinstance(k, bytes) else str(k): [bytes(v) for v in vs]
                for k, vs in r.value.attributes
            }
            for r in responses if isinstance(r.value, pureldap.LDAPSearchResultEntry)
        }

    def suffixEntry(self) -> Entry:
        return self.successResultOf(self.backend.get(None, self.ndn(SUFFIX)))

    def bindAs(self, dn: str | None) -> None:
        if dn is None:
            self.connection.identity = Identity()
        else:
            self.connection.identity = Identity(DN.parse(dn), self.ndn(dn))

    def modifyMail(self, uid: str = "alice", mail: bytes = b"new@example.com") -> int:
        """
        @return: the result code of a Modify replacing a user's mail.
        """
        return self.execute(pureldap.LDAPModifyRequest(
            object=f"uid={uid},{PEOPLE}",
            modification=[pureber.BERSequence([pureber.BEREnumerated(2), pureber.BERSequence([
                pureldap.LDAPAttributeDescription("mail"),
                pureber.BERSet([pureldap.LDAPAttributeValue(mail)])])])],
        ))[-1].value.resultCode


class ChangelogRecordTests(ChangelogTestsBase, unittest.TestCase):
    """
    What the plugin writes in the write's transaction.
    """

    def test_seeded(self) -> None:
        """
        Every entry added (the seed data too) has a record with its
        attributes as LDIF, its CSN and entryUUID; numbers start at 1.
        """
        records = self.records()
        self.assertEqual([r.number for r in records], list(range(1, len(records) + 1)))
        first = records[0]
        self.assertEqual((first.kind, first.targetDN), (ADD, SUFFIX))
        self.assertIn(b"objectClass: dcObject\n", first.changes)
        self.assertIn(b"dc: example\n", first.changes)
        suffix = self.suffixEntry()
        self.assertEqual(first.entryUUID, suffix.get("entryUUID")[0])
        self.assertEqual(first.csn, suffix.get("entryCSN")[0])

    def test_modify(self) -> None:
        """
        A modify's record holds C{replace} blocks for the changed
        attributes, the operational ones the server set included.
        """
        self.assertEqual(self.modifyMail(), 0)
        record = self.records()[-1]
        self.assertEqual((record.kind, record.targetDN), (MODIFY, f"uid=alice,{PEOPLE}"))
        self.assertTrue(record.changes.startswith(b"replace: mail\nmail: new@example.com\n-\n"))
        self.assertIn(b"replace: entryCSN\nentryCSN: " + record.csn + b"\n-\n", record.changes)

    def test_rename(self) -> None:
        """
        A rename with a new superior records the old DN, the new RDN,
        whether the old RDN's value went, and the new superior.
        """
        self.execute(pureldap.LDAPModifyDNRequest(
            entry=f"uid=bob,{PEOPLE}", newrdn="uid=robert", deleteoldrdn=False,
            newSuperior="ou=groups,dc=example,dc=com"))
        record = self.records()[-1]
        self.assertEqual(
            (record.kind, record.targetDN, record.newRDN, record.deleteOldRDN, record.newSuperior),
            (RENAME, f"uid=bob,{PEOPLE}", "uid=robert", False, "ou=groups,dc=example,dc=com"))
        self.assertNotIn(b"replace: uid", record.changes)
        self.execute(pureldap.LDAPModifyDNRequest(
            entry="uid=robert,ou=groups,dc=example,dc=com", newrdn="uid=rob", deleteoldrdn=True))
        record = self.records()[-1]
        self.assertEqual((record.newRDN, record.deleteOldRDN, record.newSuperior),
                         ("uid=rob", True, None))

    def test_delete(self) -> None:
        """
        A delete gets a CSN of its own, greater than every earlier one.
        """
        before = self.records()[-1]
        self.execute(pureldap.LDAPDelRequest(entry=f"uid=bob,{PEOPLE}"))
        record = self.records()[-1]
        self.assertEqual((record.kind, record.targetDN, record.changes),
                         (DELETE, f"uid=bob,{PEOPLE}", b""))
        self.assertGreater(record.csn, before.csn)
        self.assertEqual(self.suffixEntry().get("contextCSN"), (record.csn,))

    def test_sid(self) -> None:
        """
        The configured server ID is in every CSN the directory makes.
        """
        self.assertEqual(self.directory.csn.sid, 5)
        self.modifyMail()
        entry = self.successResultOf(self.backend.get(None, self.ndn(f"uid=alice,{PEOPLE}")))
        self.assertRegex(entry.get("entryCSN")[0].decode(),
                         r"^\d{14}\.\d{6}Z#[0-9a-f]{6}#005#000000$")

    def test_contextCSN(self) -> None:
        """
        The suffix's contextCSN holds this server's greatest CSN and keeps
        the values of other server IDs.
        """
        self.assertEqual(self.suffixEntry().get("contextCSN"), (self.records()[-1].csn,))
        other = b"29990101000000.000000Z#000000#007#000000"
        op = self.directory.internalOperation()
        self.successResultOf(defer.Deferred.fromCoroutine(self.directory.modify(
            op, self.ndn(SUFFIX), [Modification("add", "contextCSN", (other,))])))
        self.modifyMail()
        latest = self.records()[-1].csn
        self.assertEqual(sorted(self.suffixEntry().get("contextCSN")), sorted([other, latest]))

    def test_foreignCSN(self) -> None:
        """
        A change that carries another server's CSN (an entry a syncrepl
        consumer adds as its provider sent it) updates that server's
        contextCSN value, not this server's.
        """
        mine = self.suffixEntry().get("contextCSN")
        foreign = b"29990101000000.000000Z#000000#009#000000"
        entry = Entry(DN.parse(f"uid=replicated,{PEOPLE}"), [
            ("objectClass", [b"inetOrgPerson"]), ("uid", [b"replicated"]), ("cn", [b"R"]),
            ("sn", [b"R"]), ("entryCSN", [foreign]),
        ], self.schema)
        op = self.directory.internalOperation()
        self.successResultOf(defer.Deferred.fromCoroutine(self.directory.add(op, entry)))
        self.assertEqual(self.records()[-1].csn, foreign)
        self.assertEqual(sorted(self.suffixEntry().get("contextCSN")), sorted(mine + (foreign,)))

    def test_replicatedLeavesContextCSN(self) -> None:
        """
        A change a syncrepl consumer applies is recorded, but contextCSN is
        left to the consumer, which keeps its provider's cookie there: a
        replicated delete's CSN is made locally and would move it ahead of
        what has been applied.
        """
        mine = self.suffixEntry().get("contextCSN")
        ndn = self.ndn(f"uid=alice,{PEOPLE}")
        op = self.directory.internalOperation()
        self.successResultOf(defer.Deferred.fromCoroutine(self.directory.writeReplicated(
            op, DELETE, ndn, lambda backend, hooks: backend.delete(op, ndn, hooks))))
        self.assertEqual((self.records()[-1].kind, self.records()[-1].targetDN),
                         (DELETE, f"uid=alice,{PEOPLE}"))
        self.assertEqual(self.suffixEntry().get("contextCSN"), mine)

    def test_csnWithoutMicroseconds(self) -> None:
        """
        An entry loaded with an entryCSN in OpenLDAP 2.3's form (whole
        seconds) is recorded with that time.
        """
        record = changeRecord(ADD, None, self.person("old"), b"20080102030405Z#000001#000#000000")
        self.assertEqual(record.time, datetime(2008, 1, 2, 3, 4, 5, tzinfo=timezone.utc))

    def test_olderCSN(self) -> None:
        """
        A change whose CSN is older than this server's contextCSN value
        (one made by another process, say) leaves the value as it is.
        """
        newest = b"29990101000000.000000Z#000000#005#000000"
        op = self.directory.internalOperation()
        self.successResultOf(defer.Deferred.fromCoroutine(self.directory.modify(
            op, self.ndn(SUFFIX), [Modification("replace", "contextCSN", (newest,))])))
        self.modifyMail()
        self.assertEqual(self.suffixEntry().get("contextCSN"), (newest,))

    def test_rollback(self) -> None:
        """
        When a later txn hook fails, neither the record nor the contextCSN
        change is kept.
        """
        self.plugins = [_Refuse()]
        self.setUp()
        records = self.records()
        context = self.suffixEntry().get("contextCSN")
        self.assertEqual(self.modifyMail(), 53)
        self.assertEqual(self.records(), records)
        self.assertEqual(self.suffixEntry().get("contextCSN"), context)


class RetroChangelogTests(ChangelogTestsBase, unittest.TestCase):
    """
    C{cn=changelog}: the records as entries, read-only, for the root DN only
    under the default access policy; the root DSE names it.
    """

    def test_entries(self) -> None:
        """
        Each record is a C{changeNumber=N,cn=changelog} entry with the
        draft's attributes, 389's changeType names, changeTime and
        targetEntryUUID.
        """
        self.modifyMail()
        self.execute(pureldap.LDAPModifyDNRequest(
            entry=f"uid=bob,{PEOPLE}", newrdn="uid=robert", deleteoldrdn=True,
            newSuperior="ou=groups,dc=example,dc=com"))
        records = self.records()
        found = self.entries(self.search())
        self.assertEqual(len(found), len(records))
        modify = found[f"changeNumber={records[-2].number},cn=changelog"]
        self.assertEqual(modify["objectClass"], [b"top", b"changeLogEntry"])
        self.assertEqual(modify["targetDN"], [f"uid=alice,{PEOPLE}".encode()])
        self.assertEqual(modify["changeType"], [b"modify"])
        self.assertEqual(modify["changes"], [records[-2].changes])
        self.assertEqual(modify["changeTime"], [records[-2].time.strftime("%Y%m%d%H%M%SZ").encode()])
        self.assertEqual(modify["targetEntryUUID"], [records[-2].entryUUID])
        rename = found[f"changeNumber={records[-1].number},cn=changelog"]
        self.assertEqual(
            (rename["changeType"], rename["newRDN"], rename["deleteOldRDN"], rename["newSuperior"]),
            ([b"modrdn"], [b"uid=robert"], [b"TRUE"], [b"ou=groups,dc=example,dc=com"]))
        add = found["changeNumber=1,cn=changelog"]
        self.assertEqual(add["changeType"], [b"add"])

    def test_filters(self) -> None:
        """
        Filters select records as in any database: by change number range,
        by type, by target.
        """
        last = self.records()[-1].number
        self.modifyMail()
        self.modifyMail("bob")
        found = self.entries(self.search(filterText=f"(changeNumber>={last + 1})"))
        self.assertEqual(sorted(found), [f"changeNumber={last + 1},cn=changelog",
                                         f"changeNumber={last + 2},cn=changelog"])
        found = self.entries(self.search(
            filterText=f"(&(changeType=modify)(targetDN=uid=BOB,{PEOPLE}))"))
        self.assertEqual(list(found), [f"changeNumber={last + 2},cn=changelog"])
        found = self.entries(self.search(filterText="(&(changeNumber>=2)(changeNumber<=3))"))
        self.assertEqual(sorted(found), ["changeNumber=2,cn=changelog",
                                         "changeNumber=3,cn=changelog"])

    def test_foreignAttributes(self) -> None:
        """
        A search for an attribute no record has (the acl plugin's search for
        stored rules in every database) does not read the changelog.
        """
        reads: list[int] = []
        changes = self.backend.changes
        self.patch(self.backend, "changes", lambda after, limit: (reads.append(after),
                                                                  changes(after, limit))[1])
        for text in ("(ldapdACI=*)", "(&(changeType=add)(uid=alice))", "(|(mail=x)(sn=y))"):
            self.assertEqual(self.entries(self.search(filterText=text, scope=2)), {}, text)
        self.assertEqual(reads, [])
        found = self.entries(self.search(filterText="(|(uid=alice)(changeNumber=2))"))
        self.assertEqual(list(found), ["changeNumber=2,cn=changelog"])

    def test_scopes(self) -> None:
        """
        The container and one record can be read by base; a missing record
        is noSuchObject with cn=changelog as matched DN.
        """
        found = self.entries(self.search(scope=0))
        self.assertEqual(list(found), ["cn=changelog"])
        found = self.entries(self.search("changeNumber=3,cn=changelog", scope=0))
        self.assertEqual(list(found), ["changeNumber=3,cn=changelog"])
        self.assertEqual(len(self.entries(self.search(scope=2))), len(self.records()) + 1)
        done = self.search("changeNumber=999,cn=changelog", scope=0)[-1].value
        self.assertEqual((done.resultCode, done.matchedDN), (32, b"cn=changelog"))

    def test_access(self) -> None:
        """
        Under the default access policy anonymous clients and ordinary
        users read nothing of cn=changelog: a search based there is
        noSuchObject (32), as a compare is; the root DN reads it all.
        """
        for identity in (None, f"uid=alice,{PEOPLE}"):
            self.bindAs(identity)
            responses = self.search(scope=2)
            self.assertEqual(self.entries(responses), {})
            self.assertEqual(responses[-1].value.resultCode, 32)
            compare = self.execute(pureldap.LDAPCompareRequest(
                entry="changeNumber=1,cn=changelog",
                ava=pureldap.LDAPAttributeValueAssertion(
                    pureber.BEROctetString("changeType"), pureber.BEROctetString("add"))))
            self.assertEqual(compare[-1].value.resultCode, 32)

    def test_readOnly(self) -> None:
        """
        Writes to cn=changelog are unwillingToPerform, even for the root DN.
        """
        for request in (
            pureldap.LDAPDelRequest(entry="changeNumber=1,cn=changelog"),
            pureldap.LDAPModifyDNRequest(entry="changeNumber=1,cn=changelog",
                                         newrdn="changeNumber=0", deleteoldrdn=True),
            pureldap.LDAPAddRequest(entry="changeNumber=0,cn=changelog", attributes=[
                (pureldap.LDAPAttributeDescription(name), pureber.BERSet([
                    pureldap.LDAPAttributeValue(value)]))
                for name, value in [("objectClass", "changeLogEntry"), ("changeNumber", "0"),
                                    ("targetDN", SUFFIX), ("changeType", "delete")]]),
        ):
            self.assertEqual(self.execute(request)[-1].value.resultCode, 53, type(request).__name__)
        self.bindAs(f"uid=alice,{PEOPLE}")
        response = self.execute(pureldap.LDAPDelRequest(entry="changeNumber=1,cn=changelog"))
        self.assertEqual(response[-1].value.resultCode, 50)

    def test_rootDSE(self) -> None:
        """
        The root DSE names cn=changelog and its first and last change
        numbers, which follow the writes; cn=changelog is not a naming context.
        """
        def rootDSE() -> dict[str, list[bytes]]:
            return self.entries(self.search("", scope=0, attributes=["*", "+"]))[""]

        found = rootDSE()
        self.assertEqual(found["changelog"], [b"cn=changelog"])
        self.assertEqual(found["firstChangeNumber"], [b"1"])
        last = self.records()[-1].number
        self.assertEqual(found["lastChangeNumber"], [str(last).encode()])
        self.assertEqual(found["namingContexts"], [SUFFIX.encode()])
        self.modifyMail()
        self.assertEqual(rootDSE()["lastChangeNumber"], [str(last + 1).encode()])


class AccessRulesTests(ChangelogTestsBase, unittest.TestCase):
    """
    With the acl plugin, its rules decide who reads cn=changelog.
    """

    rules = ['to dn.subtree="cn=changelog" by dn.exact="uid=bob,ou=people,dc=example,dc=com" '
             'read by * none', 'to * by users read by * none']

    def makePlugins(self) -> list[Any]:
        return super().makePlugins() + [AccessControl(self.schema, self.rules)]

    def test_rules(self) -> None:
        """
        The documented rule keeps cn=changelog from users but the one it
        names; the root DN reads it as ever.
        """
        self.assertTrue(self.entries(self.search()))
        self.bindAs(f"uid=alice,{PEOPLE}")
        self.assertEqual(self.entries(self.search()), {})
        self.bindAs(f"uid=bob,{PEOPLE}")
        self.assertEqual(len(self.entries(self.search())), len(self.records()))


class DefaultAccessRulesTests(ChangelogTestsBase, unittest.TestCase):
    """
    The acl plugin's default rules keep cn=changelog, whose records hold the
    password hashes written, to the root DN, and let users read the rest.
    """

    def makePlugins(self) -> list[Any]:
        return super().makePlugins() + [AccessControl(self.schema)]

    def test_rootOnly(self) -> None:
        """
        Anonymous clients and users find no record; the root DN finds them
        all, and users still read the people.
        """
        self.assertEqual(len(self.entries(self.search())), len(self.records()))
        for who in (None, f"uid=alice,{PEOPLE}"):
            self.bindAs(who)
            self.assertEqual(self.entries(self.search()), {})
            self.assertTrue(self.entries(self.search(PEOPLE)))


class PrivateByDefaultTests(ChangelogTestsBase, unittest.TestCase):
    """
    cn=changelog is a private view: ordinary rules that give everyone
    everything (C{to * by users read by anonymous read}) do not reach it.
    """

    def makePlugins(self) -> list[Any]:
        return super().makePlugins() + [AccessControl(self.schema, [
            "to * by users read by anonymous read"])]

    def test_genericRulesDoNotReach(self) -> None:
        """
        Anonymous clients and users find no record and cannot read or
        compare one by name (noSuchObject); the root DN reads them all.
        """
        self.assertEqual(len(self.entries(self.search())), len(self.records()))
        for who in (None, f"uid=alice,{PEOPLE}"):
            self.bindAs(who)
            self.assertEqual(self.entries(self.search()), {})
            self.assertEqual(self.search("changeNumber=1,cn=changelog", scope=0)[-1]
                             .value.resultCode, 32)
            compare = self.execute(pureldap.LDAPCompareRequest(
                entry="changeNumber=1,cn=changelog", ava=pureldap.LDAPAttributeValueAssertion(
                    pureber.BEROctetString("changeType"), pureber.BEROctetString("add"))))
            self.assertEqual(compare[-1].value.resultCode, 32)
            self.assertTrue(self.entries(self.search(PEOPLE)))


class PasswordsTestsBase(ChangelogTestsBase):
    """
    The changelog plugin with a C{passwords} setting, and a change of
    password.
    """

    passwords = "omit"

    def makePlugins(self) -> list[Any]:
        self.changelog = Changelog(timedelta(days=1), self.maxEntries, sid=self.sid,
                                   passwords=self.passwords)
        return [self.changelog]

    def setPassword(self) -> Any:
        """
        Replace alice's password and history; return the record.
        """
        op = self.directory.internalOperation()
        self.successResultOf(defer.Deferred.fromCoroutine(self.directory.modify(
            op, self.ndn(f"uid=alice,{PEOPLE}"), [
                Modification("replace", "userPassword", (b"cleartext-secret",)),
                Modification("replace", "pwdHistory", (
                    b"20250101000000Z#1.3.6.1.4.1.1466.115.121.1.40#11#old-secret",)),
                Modification("replace", "mail", (b"alice@example.org",))])))
        return self.records()[-1]


class OmittedPasswordsTests(PasswordsTestsBase, unittest.TestCase):
    """
    By default, records' C{changes} leave out password values
    (C{userPassword} and its subtypes, C{pwdHistory}).
    """

    def test_omitted(self) -> None:
        """
        Neither the seeded entries' hashes nor a new cleartext password nor
        the password history appear in any record; the other changes do.
        """
        record = self.setPassword()
        self.assertIn(b"replace: mail\nmail: alice@example.org\n", record.changes)
        for r in self.records():
            self.assertNotIn(b"userpassword", r.changes.lower())
            self.assertNotIn(b"pwdhistory", r.changes.lower())
            self.assertNotIn(b"secret", r.changes)



class KeptPasswordsTests(PasswordsTestsBase, unittest.TestCase):
    """
    With C{passwords = "keep"}, records' C{changes} hold password values.
    """

    passwords = "keep"

    def test_kept(self) -> None:
        """
        The values are recorded as written.
        """
        record = self.setPassword()
        self.assertIn(b"replace: userPassword\nuserPassword: cleartext-secret\n", record.changes)
        self.assertIn(b"old-secret", record.changes)


class TrimmingTests(ChangelogTestsBase, unittest.TestCase):
    """
    Records are trimmed by count and age at start-up and every minute, on
    the directory's reactor, until it closes.
    """

    maxEntries = 5

    def setUp(self) -> None:
        super().setUp()

    def test_atOpen(self) -> None:
        """
        At start-up, only the C{max_entries} newest records are kept.
        """
        records = self.records()
        self.assertEqual(len(records), 5)
        self.assertEqual(records[-1].targetDN, "uid=sssd,ou=services,dc=example,dc=com")

    def test_everyMinute(self) -> None:
        """
        Records beyond C{max_entries} stay until the next minute's trimming.
        """
        for uid in ("alice", "bob", "carol"):
            self.modifyMail(uid)
        self.assertEqual(len(self.records()), 8)
        self.clock.advance(60)
        self.assertEqual([r.targetDN for r in self.records()][-3:],
                         [f"uid={uid},{PEOPLE}" for uid in ("alice", "bob", "carol")])
        self.assertEqual(len(self.records()), 5)

    def test_byAge(self) -> None:
        """
        Records older than C{max_age} are removed, but never the newest.
        """
        self.clock.advance(time.time() + 2 * 86400)
        self.assertEqual(len(self.records()), 1)

    def test_stopped(self) -> None:
        """
        Closing the directory stops the trimming.
        """
        self.assertTrue(self.clock.getDelayedCalls())
        self.successResultOf(self.directory.close())
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ConfigTests(unittest.TestCase):
    """
    L{ChangelogFactory.fromConfig} and the C{database} key.
    """

    def context(self) -> ConfigContext:
        return ConfigContext(None, "plugin[0]", Schema.standard(), task.Clock())

    def test_defaults(self) -> None:
        """
        Without keys: seven days, 100000 records, server ID 0, the first database.
        """
        plugin = ChangelogFactory.fromConfig({}, self.context())
        self.assertEqual((plugin.maxAge, plugin.maxEntries, plugin.sid, plugin.database,
                          plugin.passwords), (timedelta(days=7), 100000, 0, None, "omit"))
        keep = ChangelogFactory.fromConfig({"passwords": "keep"}, self.context())
        self.assertEqual(keep.passwords, "keep")

    def test_values(self) -> None:
        """
        Durations take a unit; the database is a DN.
        """
        plugin = ChangelogFactory.fromConfig(
            {"max_age": "2h", "max_entries": 10, "sid": 4095, "database": "o=Other"},
            self.context())
        self.assertEqual((plugin.maxAge, plugin.maxEntries, plugin.sid, str(plugin.database)),
                         (timedelta(hours=2), 10, 4095, "o=Other"))

    def test_errors(self) -> None:
        """
        Each wrong value is an error naming its key.
        """
        for table, key in [
            ({"max_age": "soon"}, "plugin[0].max_age"),
            ({"max_entries": 0}, "plugin[0].max_entries"),
            ({"max_entries": "many"}, "plugin[0].max_entries"),
            ({"sid": 4096}, "plugin[0].sid"),
            ({"sid": True}, "plugin[0].sid"),
            ({"database": "not a dn"}, "plugin[0].database"),
            ({"passwords": "hash"}, "plugin[0].passwords"),
            ({"bogus": 1}, "plugin[0].bogus"),
        ]:
            error = self.assertRaises(ConfigError, ChangelogFactory.fromConfig, table,
                                      self.context())
            self.assertIn(key, str(error))

    def test_database(self) -> None:
        """
        With several databases, cn=changelog shows the configured one's
        records (the first one's by default); naming one that does not
        exist is an error naming the key.
        """
        schema = Schema.standard()
        clock = task.Clock()

        def build(table: dict[str, Any]) -> Directory:
            databases = [
                Database(DN.parse(suffix), MemoryBackend(schema.normalizeDN(DN.parse(suffix)),
                                                         schema, clock))
                for suffix in ("o=First", "o=Second,o=First")
            ]
            plugin = ChangelogFactory.fromConfig(table, ConfigContext(
                None, "plugin[0]", schema, clock))
            directory = Directory(databases, [plugin], schema=schema, reactor=clock)
            return directory

        for table, shown in [({}, "o=First"), ({"database": "O=second, o=first"},
                                               "o=Second,o=First")]:
            directory = build(table)
            view = directory.databaseFor(schema.normalizeDN(DN.parse("cn=changelog")))
            source = directory.databaseFor(schema.normalizeDN(DN.parse(shown)))
            self.assertIs(view.backend.source, source.backend)
        error = self.assertRaises(ConfigError, build, {"database": "o=Third"})
        self.assertIn("plugin[0].database", str(error))


#: A server with the example organisation in an sql database and the changelog plugin.
_SERVER = """
[server]
listen = ["tcp:{port}:interface=127.0.0.1"]
size_limit = 5

[[database]]
suffix = "dc=example,dc=com"
backend = "sql"
url = "%(url)s"
root_dn = "cn=admin,dc=example,dc=com"
root_password = "secret"
seed_ldif = "{example_ldif}"

[[plugin]]
name = "changelog"
sid = 2
max_age = "1d"
"""

#: The CSN format of OpenLDAP (and ldapd), as a regular expression.
_CSN = rb"\d{14}\.\d{6}Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6}"


def _ldapsearch(url: str, *args: str, bind: tuple[str, str] | None = None) -> str:
    """
    Run OpenLDAP's ldapsearch.

    @return: its LDIF output.
    """
    auth = ["-D", bind[0], "-w", bind[1]] if bind else []
    completed = subprocess.run(["ldapsearch", "-LLL", "-x", "-o", "ldif-wrap=no", "-H", url,
                                *auth, *args], capture_output=True, text=True, timeout=30,
                               check=False)
    if completed.returncode != 0:
        raise AssertionError(f"ldapsearch failed ({completed.returncode}): {completed.stderr}")
    return completed.stdout


class WireTestsMixin:
    """
    cn=changelog and contextCSN over the wire, read by real clients, from a
    real server. Test cases say which database.
    """

    server: ServerProcess

    root = ("cn=admin,dc=example,dc=com", "secret")

    def ldap3(self, who: tuple[str, str] | None = None) -> Any:
        from ldap3 import Connection, Server

        user, password = who if who is not None else self.root
        return Connection(Server(self.server.url), user, password, auto_bind=True)

    def test_ldapsearch(self) -> None:
        """
        The root DN reads every seeded add in cn=changelog with ldapsearch,
        beyond the size limit that binds everyone else.
        """
        out = _ldapsearch(self.server.url, "-b", "cn=changelog", "-s", "one",
                          "(changeType=add)", "changeNumber", "targetDN", bind=self.root)
        numbers = [int(n) for n in re.findall(r"^changeNumber: (\d+)$", out, re.MULTILINE)]
        self.assertGreaterEqual(len(numbers), 20)
        self.assertIn("targetDN: dc=example,dc=com", out)

    def test_anonymous(self) -> None:
        """
        Anonymous clients and ordinary users find nothing in cn=changelog:
        it is noSuchObject to them.
        """
        alice = ("uid=alice,ou=people,dc=example,dc=com", "alice-secret")
        for auth in ([], ["-D", alice[0], "-w", alice[1]]):
            found = subprocess.run(
                ["ldapsearch", "-LLL", "-x", "-H", self.server.url, *auth, "-b", "cn=changelog"],
                capture_output=True, text=True, timeout=30, check=False)
            self.assertEqual((found.returncode, found.stdout), (32, ""))

    def test_pagedAfterModify(self) -> None:
        """
        A modify made with ldap3 shows as the last record, read with paged
        results; the root DSE's lastChangeNumber names it, and the suffix's
        contextCSN is its CSN, with the configured server ID.
        """
        from ldap3 import BASE, LEVEL, MODIFY_REPLACE

        conn = self.ldap3()
        self.addCleanup(conn.unbind)
        self.assertTrue(conn.modify("uid=bob,ou=people,dc=example,dc=com",
                                    {"description": [(MODIFY_REPLACE, ["paged"])]}))
        entries = conn.extend.standard.paged_search(
            "cn=changelog", "(objectClass=changeLogEntry)", LEVEL,
            attributes=["changeNumber", "changeType", "targetDN", "changes", "changeTime"],
            paged_size=4, generator=False)
        byNumber = {e["attributes"]["changeNumber"]: e["attributes"] for e in entries}
        numbers = sorted(byNumber)
        self.assertEqual(numbers, list(range(1, len(entries) + 1)))
        last = byNumber[numbers[-1]]
        self.assertEqual((last["changeType"], last["targetDN"]),
                         ("modify", "uid=bob,ou=people,dc=example,dc=com"))
        self.assertIn(b"replace: description\ndescription: paged\n-\n", last["changes"][0])
        conn.search("", "(objectClass=*)", BASE, attributes=["changelog", "lastChangeNumber"])
        root = conn.entries[0]
        self.assertEqual(str(root.changelog), "cn=changelog")
        self.assertEqual(int(str(root.lastChangeNumber)), numbers[-1])
        conn.search("dc=example,dc=com", "(objectClass=*)", BASE, attributes=["contextCSN"])
        context = conn.response[0]["raw_attributes"]["contextCSN"]
        conn.search("uid=bob,ou=people,dc=example,dc=com", "(objectClass=*)", BASE,
                    attributes=["entryCSN"])
        csn = conn.response[0]["raw_attributes"]["entryCSN"]
        self.assertEqual(context, csn)
        self.assertRegex(csn[0], _CSN)
        self.assertEqual(csn[0].split(b"#")[2], b"002")

    def test_entryCSNOrdering(self) -> None:
        """
        entryCSN has an ordering rule: C{(entryCSN>=X)} finds the entries
        changed at or after X, as the syncrepl provider asks.
        """
        conn = self.ldap3()
        self.addCleanup(conn.unbind)
        conn.search("dc=example,dc=com", "(objectClass=*)", attributes=["contextCSN"],
                    search_scope="BASE")
        context = conn.response[0]["raw_attributes"]["contextCSN"][0].decode()
        conn.search("dc=example,dc=com", f"(entryCSN>={context})", attributes=["entryCSN"])
        self.assertEqual([e["raw_attributes"]["entryCSN"][0].decode() for e in conn.response
                          if e["type"] == "searchResEntry"], [context])


class SQLiteWireTests(WireTestsMixin, ServerTestsMixin, unittest.SynchronousTestCase):
    """
    The changelog plugin on an sql database in SQLite.
    """

    serverConfig = _SERVER % {"url": "sqlite:///changelog.db"}


class PostgreSQLWireTests(WireTestsMixin, unittest.SynchronousTestCase):
    """
    The changelog plugin on an sql database in PostgreSQL (when
    C{LDAPD_TEST_POSTGRESQL_URL} names one): a server for each test, on a
    schema of its own.
    """

    def setUp(self) -> None:
        self.server = ServerProcess(_SERVER % {"url": privatePostgreSQLSchema(self)})
        self.server.start()
        self.addCleanup(self.server.stop)


class StartUpTests(unittest.SynchronousTestCase):
    """
    The plugin's configuration problems stop C{twist ldapd} with one line.
    """

    def test_badKey(self) -> None:
        """
        A wrong value is reported as one line naming the file and the key,
        and the process exits with EX_CONFIG (78).
        """
        server = ServerProcess(_SERVER.replace("sid = 2", "sid = 5000") % {
            "url": "sqlite:///changelog.db"})
        env = dict(os.environ, PYTHONPATH=str(SOURCE_ROOT))
        completed = subprocess.run(
            [sys.executable, "-m", "twisted", "ldapd", "--config", str(server.configPath)],
            check=False, capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(completed.returncode, 78, completed.stderr)
        lines = completed.stderr.splitlines()
        self.assertEqual(len(lines), 1, completed.stderr)
        self.assertIn(f"{server.configPath}: plugin[0].sid: must be a server ID", lines[0])


class SlapdFormatTests(unittest.SynchronousTestCase):
    """
    ldapd's CSNs and contextCSN have the form slapd's syncprov overlay gives them.
    """

    def test_contextCSN(self) -> None:
        """
        slapd with syncprov keeps one contextCSN value on the suffix in the
        same format as ldapd's entryCSN and contextCSN, its server ID in
        the third field.
        """
        slapd = SlapdProcess(modules=["syncprov"], globalConfig="serverID 3\n",
                             databaseConfig="overlay syncprov\n")
        self.addCleanup(slapd.stop)
        slapd.start()
        ldif = SOURCE_ROOT / "examples" / "data" / "example.ldif"
        subprocess.run(["ldapadd", "-x", "-H", slapd.url, "-D", slapd.rootDN, "-w", "secret",
                        "-f", str(ldif)], capture_output=True, check=True, timeout=60)
        out = _ldapsearch(slapd.url, "-b", "dc=example,dc=com", "-s", "base", "contextCSN",
                          bind=(slapd.rootDN, "secret"))
        values = re.findall(r"^contextCSN: (.*)$", out, re.MULTILINE)
        self.assertEqual(len(values), 1, out)
        self.assertRegex(values[0].encode(), b"^" + _CSN + b"$")
        self.assertEqual(values[0].split("#")[2], "003")
        ours = Changelog(sid=3)
        self.assertRegex(self.ldapdCSN(ours), b"^" + _CSN + b"$")

    def ldapdCSN(self, plugin: Changelog) -> bytes:
        schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        directory = Directory([Database(suffix, MemoryBackend(schema.normalizeDN(suffix), schema))],
                              [plugin], schema=schema, reactor=task.Clock())
        csn: bytes = directory.csn(datetime.now(timezone.utc))
        self.assertEqual(csn.split(b"#")[2], b"003")
        return csn


class PostgreSQLOrderTests(unittest.SynchronousTestCase):
    """
    On PostgreSQL, change numbers are committed in their order: a second
    writer's append waits until the first writer's transaction ends.
    """

    def test_appendWaits(self) -> None:
        """
        While one transaction holds an appended record uncommitted, another
        transaction's append waits; it gets the greater number, and the
        first commits before it.
        """
        engine = create_engine(privatePostgreSQLSchema(self), poolclass=NullPool)
        self.addCleanup(engine.dispose)
        with engine.begin() as conn:
            sqlschema.upgrade(conn, SUFFIX)
        mixin = BackendTestsMixin()
        mixin.suffixText = SUFFIX
        first, second = mixin.changeRecord(1), mixin.changeRecord(2)
        numbers: dict[str, int] = {}
        with engine.connect() as conn1:
            conn1.begin()
            numbers["first"] = appendSQL(conn1, first)

            def append() -> None:
                with engine.begin() as conn2:
                    numbers["second"] = appendSQL(conn2, second)

            waiting = threading.Thread(target=append)
            waiting.start()
            waiting.join(1.0)
            self.assertTrue(waiting.is_alive(), "the second append did not wait")
            conn1.commit()
        waiting.join(30)
        self.assertFalse(waiting.is_alive())
        self.assertGreater(numbers["second"], numbers["first"])
        with engine.connect() as conn:
            self.assertEqual([r.targetDN for r in readSQL(conn, 0, 10)],
                             [first.targetDN, second.targetDN])
