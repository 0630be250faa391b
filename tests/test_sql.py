"""
Tests for L{ldapd.backends.sql}: the backend conformance suite on a real
SQLite file and on the real PostgreSQL server named by the environment
variable C{LDAPD_TEST_POSTGRESQL_URL}, and what is particular to the SQL
backend: index planning, batched reads, schema versions, persistence.

Each PostgreSQL test works in a schema of its own (created for it, dropped
after it), chosen through the connection's C{search_path}, so that runs in
parallel do not meet.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ldaptor.protocols.ldap import ldaperrors
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import make_url
from twisted.internet import defer
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from ldapd.backends import sqlschema
from ldapd.backends.sql import SQLBackend, SQLBackendFactory, decodeAttributes, encodeAttributes
from ldapd.backends.sqlschema import IndexConfig, SchemaVersionError, encodeId
from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.filters import compileFilter
from ldapd.operation import Scope, SearchParameters
from ldapd.registry import ConfigContext, ConfigError
from ldapd.results import NoSuchObject
from ldapd.schema import Schema
from ldapd.testing import (
    BackendTestsMixin,
    RecordingHooks,
    _op,
    parseFilter,
    privatePostgreSQLSchema,
)


class SQLiteMixin:
    """
    Backends on a SQLite file in a fresh temporary folder.
    """

    def databaseURL(self) -> str:
        folder = tempfile.mkdtemp(prefix="ldapd-sql-")
        self.addCleanup(shutil.rmtree, folder, True)  # type: ignore[attr-defined]
        return f"sqlite:///{folder}/test.db"


class PostgreSQLMixin:
    """
    Backends in a private schema of the PostgreSQL test database.
    """

    def databaseURL(self) -> str:
        return privatePostgreSQLSchema(self)


class SQLBackendTestsMixin(BackendTestsMixin):
    """
    The conformance suite and the SQL backend's own behaviour, on whatever
    database C{databaseURL} gives.
    """

    async def _test_batchIsolated(self) -> None:
        batch = self.backend.batch()
        carol = self.person("carol")
        await batch.add(_op(), carol, self.hooks)
        try:
            await self.backend.get(_op(), carol.ndn)
        except NoSuchObject:
            pass
        else:
            self.fail("the batch's write was seen before it committed")
        await batch.commit()
        self.assertEqual((await self.backend.get(_op(), carol.ndn)).dn, carol.dn)

    def test_batchIsolated(self) -> Any:
        """
        The backend's readers do not see what a batch wrote until it commits.
        """
        return defer.Deferred.fromCoroutine(self._test_batchIsolated())

    batchSize = 500

    def databaseURL(self) -> str:
        raise NotImplementedError

    def makeBackend(self, suffix: DN, schema: Schema, url: str | None = None) -> SQLBackend:
        if url is None:
            self.url = url = self.databaseURL()
        return SQLBackend(suffix, schema, url, batchSize=self.batchSize)

    def compiled(self, text: str) -> Any:
        return compileFilter(parseFilter(text), self.schema)

    def reopen(self) -> Any:
        """
        Close the backend and open a new one on the same database.
        """
        d = self.backend.close()

        def _cbClosed(_: Any) -> Any:
            self.backend = self.makeBackend(self.suffix, self.schema, self.url)
            return self.backend.open().addCallback(
                lambda _: self.addCleanup(self.backend.close))

        return d.addCallback(_cbClosed)

    async def loaded(self, entries: list[Entry], bulk: bool, perEntry: bool = False,
                     ) -> dict[str, Any]:
        """
        Import C{entries} into a new database in chunks of 3: all of them
        into the empty database, or the first added as a write and the rest
        into a database that is no longer empty; or add each as a write.

        @param bulk: whether all of them are loaded into the empty database.
        @param perEntry: whether each is added as a write (the normal path).
        @return: what the database holds: every row of its tables, the
            definitions of its indexes, and the connections' settings.
        """
        backend = self.makeBackend(self.suffix, self.schema)
        await backend.open()
        try:
            if perEntry:
                for entry in entries:
                    await backend.add(_op(), entry, RecordingHooks())
            else:
                if not bulk:
                    await backend.add(_op(), entries[0], RecordingHooks())
                await backend._call(backend.importEntries, entries[0 if bulk else 1:], None, 3)
            assert backend.engine is not None
            with backend.engine.connect() as conn:
                tables = [sqlschema.meta.name, sqlschema.entries.name, sqlschema.values.name]
                if backend._grams:
                    tables.append(sqlschema.GRAMS)
                found: dict[str, Any] = {
                    table: sorted(tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table}"))
                    for table in tables}
                if backend._postgres:
                    found["indexes"] = sorted(tuple(r) for r in conn.exec_driver_sql(
                        "SELECT indexname, replace(indexdef, current_schema() || '.', '') "
                        "FROM pg_indexes WHERE schemaname = current_schema()"))
                    found["constraints"] = sorted(tuple(r) for r in conn.exec_driver_sql(
                        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE connamespace = current_schema()::regnamespace"))
                else:
                    found["indexes"] = sorted(tuple(r) for r in conn.exec_driver_sql(
                        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"))
                    found["sequence"] = conn.exec_driver_sql(
                        "SELECT * FROM sqlite_sequence").all()
                    found["pragmas"] = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in
                                        ("synchronous", "foreign_keys")]
        finally:
            await backend.close()
        return found

    async def _test_importIntoEmpty(self) -> None:
        entries = [*self.suiteEntries(),
                   *(self.person(f"user{i}", mail=f"u{i}@example.com") for i in range(7))]
        loaded = await self.loaded(entries, bulk=True)
        self.assertEqual(loaded, await self.loaded(entries, bulk=False))
        self.assertEqual(len(loaded[sqlschema.entries.name]), len(entries))
        self.assertNotIn(sqlschema.IMPORT_UNDER_WAY, dict(loaded[sqlschema.meta.name]))

    def test_importIntoEmpty(self) -> Any:
        """
        A bulk load into an empty database, whose indexes are built at its
        end, leaves exactly the database a load into a database that is
        not empty leaves: the same rows in every table, the same index and
        constraint definitions, the connection's settings put back.
        """
        return defer.Deferred.fromCoroutine(self._test_importIntoEmpty())

    async def _test_importAsWrites(self) -> None:
        long = "x" * 300
        entries = [
            *self.suiteEntries(),
            *(self.person(f"user{i}", mail=f"u{i}@example.com", telephoneNumber=f"+1 555 {i:04d}",
                          employeeNumber=str(i)) for i in range(5)),
            self.entry("uid=zoe,ou=people,dc=example,dc=com",
                       objectClass=["top", "person", "organizationalPerson", "inetOrgPerson"],
                       uid="zoe", cn=["Zoë Ünïcode", "  Zoe   Spaced  "], sn="Example",
                       description=long, displayName=long),
            self.entry("cn=all,ou=groups,dc=example,dc=com", objectClass=["top", "groupOfNames"],
                       cn="all", member=[f"uid=user{i},ou=people,dc=example,dc=com"
                                         for i in range(5)]),
        ]
        self.assertEqual(await self.loaded(entries, bulk=True),
                         await self.loaded(entries, bulk=False, perEntry=True))

    def test_importAsWrites(self) -> Any:
        """
        A bulk load into an empty database leaves exactly the database that
        adding each entry as a write leaves: the same rows in every table
        (ids, paths, stored attributes, every index key, long ones hashed or
        marked, the trigram rows), the same index and constraint
        definitions, the same settings.
        """
        return defer.Deferred.fromCoroutine(self._test_importAsWrites())

    async def _test_importStopped(self) -> None:
        backend = self.makeBackend(self.suffix, self.schema)
        await backend.open()
        # As if the process were killed before the load's end.
        backend._endLoad = lambda conn: None  # type: ignore[method-assign]
        try:
            await backend._call(backend.importEntries, list(self.suiteEntries()))
        finally:
            await backend.close()
        again = self.makeBackend(self.suffix, self.schema, self.url)
        with self.assertRaises(SchemaVersionError) as caught:
            await again.open()
        self.assertIn("import that did not finish", str(caught.exception))

    def test_importStopped(self) -> Any:
        """
        A bulk load into an empty database that never reaches its end (the
        process killed) leaves a database that is refused when opened,
        saying that it is incomplete.
        """
        return defer.Deferred.fromCoroutine(self._test_importStopped())

    async def _test_importFailed(self) -> None:
        backend = self.makeBackend(self.suffix, self.schema)
        await backend.open()
        try:
            entries = list(self.suiteEntries())
            with self.assertRaises(NoSuchObject):
                await backend._call(backend.importEntries,
                                    [*entries, self.person("x", "ou=gone,dc=example,dc=com")])
        finally:
            await backend.close()
        self.backend = self.makeBackend(self.suffix, self.schema, self.url)
        await self.backend.open()
        self.addCleanup(self.backend.close)
        self.assertEqual(await self.search(self.suffixText, Scope.SUB, "(uid=alice)"),
                         ["uid=alice,ou=people,dc=example,dc=com"])

    def test_importFailed(self) -> Any:
        """
        A bulk load into an empty database that fails keeps what it loaded
        before the failure, indexed, in a database that opens.
        """
        return defer.Deferred.fromCoroutine(self._test_importFailed())

    def test_equalityIndexNarrows(self) -> Any:
        """
        Equality filters are answered from the index: the candidates are
        the matching entries (AND intersects, OR unites), whatever the case.
        """
        cases = [("(uid=ALICE)", 1), ("(&(objectClass=person)(uid=bob))", 1),
                 ("(|(uid=alice)(uid=bob))", 2), ("(objectClass=person)", 2),
                 ("(mail=*)", 2), ("(uid=nobody)", 0)]
        d = defer.succeed(None)
        for filterText, count in cases:
            d.addCallback(lambda _, t=filterText: self.backend.countCandidates(self.compiled(t)))
            d.addCallback(self.assertEqual, count, filterText)
        return d

    def test_substringIndexNarrows(self) -> Any:
        """
        An initial substring on an indexed type is a prefix range of the
        index; an unindexed type is not narrowed.
        """
        d = self.backend.countCandidates(self.compiled("(cn=ali*)"))
        d.addCallback(self.assertEqual, 1)
        d.addCallback(lambda _: self.backend.countCandidates(self.compiled("(o=exa*)")))
        d.addCallback(self.assertIsNone)
        return d

    def test_unindexable(self) -> None:
        """
        Negations and presence of objectClass leave the scope to be scanned.
        """
        for filterText in ("(!(uid=alice))", "(objectClass=*)", "(|(uid=alice)(!(uid=bob)))"):
            self.assertIsNone(self.backend.plan(self.compiled(filterText)), filterText)

    def test_longValues(self) -> Any:
        """
        Values too long for the index are still found by equality and
        substring filters, whose candidates then include them.
        """
        long = "x" * 300 + "needle" + "y" * 300
        d = self.backend.add(_op(), self.person("long", description=long, displayName=long),
                             self.hooks)
        d.addCallback(lambda _: self.search(self.suffixText, Scope.SUB, f"(description={long})"))
        d.addCallback(self.assertEqual, ["uid=long,ou=people,dc=example,dc=com"])
        d.addCallback(lambda _: self.search(self.suffixText, Scope.SUB, "(displayName=xxx*)"))
        d.addCallback(self.assertEqual, ["uid=long,ou=people,dc=example,dc=com"])
        return d

    def test_indexFollowsWrites(self) -> Any:
        """
        After a rename and a delete, the index no longer holds the old
        entries, and holds the renamed ones.
        """
        ndn = self.ndn("uid=bob,ou=people,dc=example,dc=com")
        d = self.backend.rename(_op(), ndn, DN.parse("uid=rob,ou=people,dc=example,dc=com"),
                                True, self.hooks)
        d.addCallback(lambda _: self.backend.countCandidates(self.compiled("(uid=bob)")))
        d.addCallback(self.assertEqual, 0)
        d.addCallback(lambda _: self.backend.countCandidates(self.compiled("(uid=rob)")))
        d.addCallback(self.assertEqual, 1)
        d.addCallback(lambda _: self.backend.delete(
            _op(), self.ndn("uid=rob,ou=people,dc=example,dc=com"), self.hooks))
        d.addCallback(lambda _: self.backend.countCandidates(self.compiled("(sn=example)")))
        d.addCallback(self.assertEqual, 1)
        return d

    async def _test_classNarrowsLast(self) -> None:
        counts = {
            # The uid's candidate, not the intersection with every person.
            "(&(objectClass=person)(uid=bob))": 1,
            "(&(uid=bob)(objectClass=organizationalUnit))": 1,
            # Nothing else narrows: the classes do.
            "(&(objectClass=person)(objectClass=inetOrgPerson))": 2,
            "(&(objectClass=organizationalUnit)(description=*x*))": 2,
        }
        for text, count in counts.items():
            self.assertEqual(await self.backend.countCandidates(self.compiled(text)), count, text)
        for text, found in {
            "(&(objectClass=person)(uid=bob))": ["uid=bob,ou=people,dc=example,dc=com"],
            "(&(uid=bob)(objectClass=organizationalUnit))": [],
        }.items():
            self.assertEqual(await self.search(self.suffixText, Scope.SUB, text), found, text)

    def test_classNarrowsLast(self) -> Any:
        """
        An object class narrows an And's candidates only when nothing else
        in it does; the filter still decides which candidates match.
        """
        return defer.Deferred.fromCoroutine(self._test_classNarrowsLast())

    def test_indexFollowsModify(self) -> Any:
        """
        A modify re-indexes the attributes it changes, and the keys another
        attribute of the same type still holds stay: removing C{cn;lang-fr}
        whose value C{cn} also has leaves the entry found by that C{cn}.
        """
        ndn = self.ndn("uid=bob,ou=people,dc=example,dc=com")

        def modify(*modifications: Modification) -> Any:
            return self.backend.modify(_op(), ndn, list(modifications), self.hooks)

        d = modify(Modification("add", "cn;lang-fr", (b"Robert",)),
                   Modification("add", "cn", (b"Robert",)))
        d.addCallback(lambda _: modify(Modification("delete", "cn;lang-fr", ())))
        d.addCallback(lambda _: self.backend.countCandidates(self.compiled("(cn=robert)")))
        d.addCallback(self.assertEqual, 1)
        d.addCallback(lambda _: modify(Modification("replace", "cn", (b"Bobby",))))
        d.addCallback(lambda _: self.backend.countCandidates(self.compiled("(cn=robert)")))
        d.addCallback(self.assertEqual, 0)
        d.addCallback(lambda _: self.backend.countCandidates(self.compiled("(cn=bobby)")))
        d.addCallback(self.assertEqual, 1)
        d.addCallback(lambda _: self.backend.countCandidates(self.compiled("(cn=bob*)")))
        d.addCallback(self.assertEqual, 1)
        return d

    def addPeople(self, count: int) -> Any:
        entries = [self.person(f"user{i:04d}") for i in range(count)]
        return self.callInThread(self.backend.importEntries, entries)

    def callInThread(self, f: Any, *args: Any) -> Any:
        return self.backend._call(f, *args)

    def test_batches(self) -> Any:
        """
        A search reads the database in batches of C{batchSize} rows and
        returns every entry, in the order they were added, both when it
        scans the scope and when the index gives many candidates.
        """
        self.backend.batchSize = 7
        reads: list[int] = []
        fetch = self.backend._fetchBatch

        def recording(cursor: Any, f: Any, reader: Any = None) -> Any:
            found = fetch(cursor, f, reader)
            reads.append(len(found))
            return found

        self.backend._fetchBatch = recording  # type: ignore[method-assign]
        expected = [f"uid=user{i:04d},ou=people,dc=example,dc=com" for i in range(40)]
        d = self.addPeople(40)
        d.addCallback(lambda _: self.search("ou=people,dc=example,dc=com", Scope.ONE,
                                            "(uid=user*)"))
        d.addCallback(self.assertEqual, expected)
        d.addCallback(lambda _: (self.assertEqual(max(reads), 7), self.assertGreater(len(reads), 5),
                                 reads.clear()))
        d.addCallback(lambda _: self.search(self.suffixText, Scope.SUB, "(sn=example)"))
        d.addCallback(lambda found: self.assertEqual(found[2:], expected))
        d.addCallback(lambda _: (self.assertEqual(max(reads), 7), reads.clear()))
        d.addCallback(lambda _: self.search("ou=people,dc=example,dc=com", Scope.ONE,
                                            "(!(uid=alice))"))
        d.addCallback(lambda found: self.assertEqual(found[1:], expected))
        d.addCallback(lambda _: self.assertEqual((max(reads), len(reads)), (7, 6)))
        return d

    def test_movedSubtreeOrder(self) -> Any:
        """
        A subtree moved under a newer entry is still returned parents first.
        """
        d = self.backend.add(_op(), self.entry("ou=new,dc=example,dc=com",
                                                objectClass="organizationalUnit", ou="new"),
                             self.hooks)
        d.addCallback(lambda _: self.backend.rename(
            _op(), self.ndn("ou=people,dc=example,dc=com"),
            DN.parse("ou=people,ou=new,dc=example,dc=com"), False, self.hooks))
        d.addCallback(lambda _: self.search("ou=new,dc=example,dc=com", Scope.SUB))
        d.addCallback(self.assertEqual, [
            "ou=new,dc=example,dc=com", "ou=people,ou=new,dc=example,dc=com",
            "uid=alice,ou=people,ou=new,dc=example,dc=com",
            "uid=bob,ou=people,ou=new,dc=example,dc=com",
        ])
        d.addCallback(lambda _: self.search(self.suffixText, Scope.SUB, "(uid=alice)"))
        d.addCallback(self.assertEqual, ["uid=alice,ou=people,ou=new,dc=example,dc=com"])
        return d

    def test_persistence(self) -> Any:
        """
        What was written is there after the backend is closed and opened
        again, and found through the index.
        """
        d = self.backend.modify(_op(), self.ndn("uid=alice,ou=people,dc=example,dc=com"),
                                [Modification("add", "description", (b"kept",))], self.hooks)
        d.addCallback(lambda _: self.reopen())
        d.addCallback(lambda _: self.search(self.suffixText, Scope.SUB, "(description=KEPT)"))
        d.addCallback(self.assertEqual, ["uid=alice,ou=people,dc=example,dc=com"])
        return d

    def test_reindexOnNewConfiguration(self) -> Any:
        """
        Opening a database with other indexes rebuilds the index, so that
        a newly indexed type finds existing entries.
        """
        d = self.backend.close()

        def _cbClosed(_: Any) -> Any:
            self.backend = SQLBackend(self.suffix, self.schema, self.url,
                                      indexes=["objectClass eq", "description eq,sub"])
            return self.backend.open()

        d.addCallback(_cbClosed)
        d.addCallback(lambda _: self.addCleanup(self.backend.close))
        d.addCallback(lambda _: self.backend.countCandidates(self.compiled("(o=example)")))
        d.addCallback(self.assertIsNone)
        d.addCallback(lambda _: self.backend.countCandidates(self.compiled("(objectClass=person)")))
        d.addCallback(self.assertEqual, 2)
        return d

    def test_importEntries(self) -> Any:
        """
        The bulk path loads entries with their index, refuses a missing
        parent and a duplicate, and later writes get fresh ids.
        """
        d = self.addPeople(3)
        d.addCallback(lambda _: self.search(self.suffixText, Scope.SUB, "(uid=user0002)"))
        d.addCallback(self.assertEqual, ["uid=user0002,ou=people,dc=example,dc=com"])
        d.addCallback(lambda _: self.callInThread(self.backend.importEntries,
                                                  [self.person("x", "ou=gone,dc=example,dc=com")]))
        d.addCallbacks(self.fail, lambda f: f.trap(Exception))
        d.addCallback(lambda _: self.addPeople(1))
        d.addCallbacks(self.fail, lambda f: self.assertIn("already exists", str(f.value)))
        d.addCallback(lambda _: self.backend.add(_op(), self.person("after"), self.hooks))
        d.addCallback(lambda _: self.search("ou=people,dc=example,dc=com", Scope.ONE))
        d.addCallback(lambda found: self.assertEqual(found[-1],
                                                     "uid=after,ou=people,dc=example,dc=com"))
        return d

    def test_importChildrenFirst(self) -> Any:
        """
        The bulk path loads entries that come before their parent, as in
        slapcat's output after a move, across chunks; an entry whose parent
        never comes fails with noSuchObject naming it once the rest is in.
        """
        new = "ou=new,ou=people,dc=example,dc=com"
        entries = [self.person("deep", f"ou=sub,{new}"), self.person("first", new),
                   self.entry(f"ou=sub,{new}", objectClass="organizationalUnit", ou="sub"),
                   self.person("other"),
                   self.entry(new, objectClass="organizationalUnit", ou="new")]
        d = self.callInThread(lambda: self.backend.importEntries(entries, chunk=2))
        d.addCallback(self.assertEqual, 5)
        d.addCallback(lambda _: self.search(new, Scope.SUB, "(uid=*)"))
        d.addCallback(lambda found: self.assertEqual(sorted(found), [
            f"uid=deep,ou=sub,{new}", f"uid=first,{new}"]))
        d.addCallback(lambda _: self.callInThread(self.backend.importEntries, [
            self.person("orphan", "ou=gone,dc=example,dc=com"), self.person("kept")]))

        def refused(failure: Any) -> None:
            failure.trap(NoSuchObject)
            self.assertIn("uid=orphan,ou=gone,dc=example,dc=com: the parent", str(failure.value))

        d.addCallbacks(self.fail, refused)
        d.addCallback(lambda _: self.search("ou=people,dc=example,dc=com", Scope.ONE, "(uid=kept)"))
        d.addCallback(self.assertEqual, ["uid=kept,ou=people,dc=example,dc=com"])
        return d

    async def _test_entryCache(self) -> None:
        alice = self.ndn("uid=alice,ou=people,dc=example,dc=com")
        first = await self.backend.get(_op(), alice)
        self.assertIs(await self.backend.get(_op(), alice), first)
        # Another process writes the row: the cached entry is not served.
        other = self.makeBackend(self.suffix, self.schema, self.url)
        await other.open()
        self.addCleanup(other.close)
        await other.modify(_op(), alice, [Modification("replace", "description", (b"new",))],
                           RecordingHooks())
        changed = await self.backend.get(_op(), alice)
        self.assertEqual(changed.get("description"), (b"new",))
        # A write that is rolled back leaves the entry the database holds.
        self.hooks.failOn.add(("txn", "modify"))
        with self.assertRaises(ldaperrors.LDAPUnwillingToPerform):
            await self.backend.modify(_op(), alice,
                                      [Modification("replace", "description", (b"lost",))],
                                      self.hooks)
        self.assertEqual((await self.backend.get(_op(), alice)).get("description"), (b"new",))
        found = await self.search(self.suffixText, Scope.SUB, "(description=new)")
        self.assertEqual(found, ["uid=alice,ou=people,dc=example,dc=com"])

    def test_entryCache(self) -> Any:
        """
        An unchanged row is read as the same entry object; a row another
        backend changed, or that a rolled-back write cached, is read as the
        database holds it.
        """
        return defer.Deferred.fromCoroutine(self._test_entryCache())

    def test_hooksRunInsideTransaction(self) -> Any:
        """
        A check hook sees, through the transaction, the database as the
        write's transaction does; what a txn hook removes is removed with
        the write.
        """
        seen = []

        def onTxn(operation: str, txn: Any, args: Any) -> None:
            seen.append(txn.get(args[0].ndn) is not None)
            txn.remove(self.ndn("uid=bob,ou=people,dc=example,dc=com"))

        self.hooks.onTxn = onTxn
        d = self.backend.add(_op(), self.person("carol"), self.hooks)
        d.addCallback(lambda _: self.assertEqual(seen, [True]))
        d.addCallback(lambda _: self.search("ou=people,dc=example,dc=com", Scope.ONE))
        d.addCallback(self.assertEqual, ["uid=alice,ou=people,dc=example,dc=com",
                                         "uid=carol,ou=people,dc=example,dc=com"])
        return d


class SQLiteBackendTests(SQLiteMixin, SQLBackendTestsMixin, unittest.TestCase):
    """
    The SQL backend on a SQLite file.
    """

    def test_smallReadsInline(self) -> None:
        """
        On SQLite, an entry read by its DN and a search that finds it
        through an index are done at once, in the caller's (the reactor's)
        thread: their Deferreds have fired when the calls return.
        """
        bob = self.ndn("uid=bob,ou=people,dc=example,dc=com")
        self.assertEqual(self.successResultOf(self.backend.get(_op(), bob)).ndn, bob)
        self.assertEqual(self.successResultOf(self.search(self.suffixText, Scope.SUB, "(uid=bob)")),
                         ["uid=bob,ou=people,dc=example,dc=com"])
        self.failureResultOf(self.backend.get(_op(), self.ndn("uid=nobody,dc=example,dc=com")),
                             NoSuchObject)

    async def _test_readsHandedOff(self) -> None:
        await self.addPeople(40)
        self.backend.batchSize = 7
        # Every statement in the reactor's thread now runs out of steps.
        assert self.backend._inline is not None
        self.backend._inline.set_progress_handler(lambda: 1, 1)
        bob = self.ndn("uid=bob,ou=people,dc=example,dc=com")
        d = self.backend.get(_op(), bob)
        self.assertNoResult(d)
        self.assertEqual((await d).ndn, bob)
        expected = [f"uid=user{i:04d},ou=people,dc=example,dc=com" for i in range(40)]
        for text in ("(uid=user*)", "(sn=example)", "(!(uid=alice))"):
            found = await self.search("ou=people,dc=example,dc=com", Scope.ONE, text)
            self.assertEqual([dn for dn in found if dn.startswith("uid=user")], expected, text)
        with self.assertRaises(NoSuchObject):
            await self.backend.get(_op(), self.ndn("uid=nobody,dc=example,dc=com"))

    def test_readsHandedOff(self) -> Any:
        """
        A read whose statement takes SQLite more steps than the reactor's
        thread allows is done again in a pool thread, from where it was:
        every batch of a search is read once, in order.
        """
        return defer.Deferred.fromCoroutine(self._test_readsHandedOff())

    async def _test_gramSubstrings(self) -> None:
        counts = {
            "(cn=*lic*)": 1, "(mail=*@example.com)": 2, "(cn=*zzz*)": 0,
            # "bob" is in Bob's uid: a candidate for his cn, whose filter
            # then decides.
            "(cn=*bob*)": 1, "(cn=*ali*ample)": 1,
        }
        for text, count in counts.items():
            self.assertEqual(await self.backend.countCandidates(self.compiled(text)), count, text)
        self.assertEqual(await self.search(self.suffixText, Scope.SUB, "(cn=*bob*)"),
                         ["uid=bob,ou=people,dc=example,dc=com"])
        self.assertEqual(await self.search(self.suffixText, Scope.SUB, "(cn=*ice*)"),
                         ["uid=alice,ou=people,dc=example,dc=com"])
        # Pieces of fewer than three characters are no trigram.
        self.assertIsNone(self.backend.plan(self.compiled("(cn=*li*)")))

    def test_gramSubstrings(self) -> Any:
        """
        On SQLite, middle and final substrings are narrowed by the trigram
        index of the entries' substring keys; the filter settles which
        attribute holds the piece.
        """
        return defer.Deferred.fromCoroutine(self._test_gramSubstrings())

    async def _test_gramsFollowWrites(self) -> None:
        bob = self.ndn("uid=bob,ou=people,dc=example,dc=com")
        await self.backend.modify(_op(), bob, [Modification("replace", "cn", (b"Robert Zed",))],
                                  self.hooks)
        self.assertEqual(await self.backend.countCandidates(self.compiled("(cn=*zed*)")), 1)
        await self.backend.modify(_op(), bob, [Modification("replace", "cn", (b"Bob Quux",))],
                                  self.hooks)
        self.assertEqual(await self.backend.countCandidates(self.compiled("(cn=*zed*)")), 0)
        await self.backend.rename(_op(), bob, DN.parse("uid=xyzzy,ou=people,dc=example,dc=com"),
                                  True, self.hooks)
        self.assertEqual(await self.backend.countCandidates(self.compiled("(uid=*yzz*)")), 1)
        await self.backend.delete(_op(), self.ndn("uid=alice,ou=people,dc=example,dc=com"),
                                  self.hooks)
        self.assertEqual(await self.backend.countCandidates(self.compiled("(cn=*lic*)")), 0)
        await self.addPeople(30)
        self.assertEqual(await self.backend.countCandidates(self.compiled("(cn=*r0017*)")), 1)
        self.assertEqual(await self.search(self.suffixText, Scope.SUB, "(cn=*r0017*)"),
                         ["uid=user0017,ou=people,dc=example,dc=com"])

    def test_gramsFollowWrites(self) -> Any:
        """
        The trigram index follows modifies, renames, deletes and imports.
        """
        return defer.Deferred.fromCoroutine(self._test_gramsFollowWrites())

    async def _test_batchWaitingWriter(self) -> None:
        backend = SQLBackend(self.suffix, self.schema, self.databaseURL(), poolSize=1)
        await backend.open()
        self.addCleanup(backend.close)
        await backend.add(_op(), self.entry(self.suffixText, objectClass=["organization"],
                                            o="Example"), self.hooks)
        batch = backend.batch()
        first = self.entry(f"o=first,{self.suffixText}", objectClass=["organization"], o="first")
        await batch.add(_op(), first, self.hooks)
        self.assertRaises(RuntimeError, backend.batch)
        second = self.entry(f"o=second,{self.suffixText}", objectClass=["organization"],
                            o="second")
        waiting = backend.add(_op(), second, self.hooks)
        # The backend's only pool thread waits for the batch's write turn;
        # the batch, in a thread of its own, goes on.
        self.assertEqual((await batch.get(_op(), first.ndn)).dn, first.dn)
        self.assertFalse(waiting.called)
        await batch.commit()
        await waiting
        self.assertEqual((await backend.get(_op(), second.ndn)).dn, second.dn)

    def test_batchWaitingWriter(self) -> Any:
        """
        While a batch is under way, the backend's other writes wait for it
        to commit (one batch at a time), without keeping it from going on,
        even with a pool of one thread.
        """
        return defer.Deferred.fromCoroutine(self._test_batchWaitingWriter())

    def test_pragmas(self) -> Any:
        """
        Connections use write-ahead logging and full synchronisation, so an
        acknowledged write survives a crash.
        """
        def check() -> tuple[str, int]:
            with self.backend.engine.connect() as conn:
                return (conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                        conn.exec_driver_sql("PRAGMA synchronous").scalar())

        return self.callInThread(check).addCallback(self.assertEqual, ("wal", 2))

    def description(self, uid: str) -> Any:
        """
        @return: a Deferred firing with the description values of a person.
        """
        d = self.backend.get(_op(), self.ndn(f"uid={uid},ou=people,dc=example,dc=com"))
        return d.addCallback(lambda e: list(e.get("description")) if e is not None else None)

    def countWriteCommits(self) -> list[str]:
        """
        @return: a list that gets C{"commit"} as each write transaction is
            about to commit.
        """
        events: list[str] = []

        def _cbCommit(conn: Any) -> None:
            if conn.get_execution_options().get("ldapd_write"):
                events.append("commit")

        event.listen(self.backend.engine, "commit", _cbCommit)
        self.addCleanup(event.remove, self.backend.engine, "commit", _cbCommit)
        return events

    def test_groupCommit(self) -> Any:
        """
        Writes that arrive while another is being committed are committed
        together, in one transaction, in their order: a hook sees what an
        earlier write of the group wrote; a write that fails gets its own
        error and leaves no trace (its changelog record neither), and the
        others are committed.
        """
        async def run() -> None:
            commits = self.countWriteCommits()
            pausing = _PausingHooks()
            first = self.backend.modify(_op(), self.ndn("uid=bob,ou=people,dc=example,dc=com"),
                                        [Modification("replace", "description", (b"zero",))],
                                        pausing)
            await pausing.whenReached()

            def appending(n: int, failOn: tuple[str, str] | None = None) -> RecordingHooks:
                hooks = RecordingHooks()
                hooks.onTxn = lambda operation, txn, args: txn.appendChange(self.changeRecord(n))
                if failOn is not None:
                    hooks.failOn.add(failOn)
                return hooks

            seen = []
            carolHooks = appending(4)
            carolHooks.onTxn = lambda operation, txn, args: (
                seen.append(list(txn.get(self.ndn("uid=alice,ou=people,dc=example,dc=com"))
                                 .get("description"))),
                txn.appendChange(self.changeRecord(4)))
            writes = [
                self.backend.modify(_op(), self.ndn("uid=alice,ou=people,dc=example,dc=com"),
                                    [Modification("replace", "description", (b"one",))],
                                    appending(1)),
                self.backend.modify(_op(), self.ndn("uid=bob,ou=people,dc=example,dc=com"),
                                    [Modification("replace", "description", (b"two",))],
                                    appending(2, ("txn", "modify"))),
                self.backend.add(_op(), self.person("bob"), appending(3)),
                self.backend.add(_op(), self.person("carol"), carolHooks),
            ]
            pausing.release.set()
            await first
            outcomes = await defer.DeferredList(writes, consumeErrors=True)
            self.assertEqual(commits, ["commit", "commit"])
            self.assertTrue(outcomes[0][0])
            self.assertEqual(list(outcomes[0][1].get("description")), [b"one"])
            self.assertFalse(outcomes[1][0])
            outcomes[1][1].trap(ldaperrors.LDAPUnwillingToPerform)
            self.assertFalse(outcomes[2][0])
            outcomes[2][1].trap(ldaperrors.LDAPEntryAlreadyExists)
            self.assertEqual(outcomes[3], (True, None))
            self.assertEqual(seen, [[b"one"]])
            self.assertEqual(await self.description("alice"), [b"one"])
            self.assertEqual(await self.description("bob"), [b"zero"])
            self.assertEqual(await self.description("carol"), [])
            records = await self.backend.changes(0, 10)
            self.assertEqual([r.targetDN for r in records],
                             ["uid=u1,dc=example,dc=com", "uid=u4,dc=example,dc=com"])
            self.assertLess(records[0].number, records[1].number)

        return defer.Deferred.fromCoroutine(run())

    def test_groupAcknowledgedAfterCommit(self) -> Any:
        """
        The writes of a group are acknowledged only after the group's commit
        returned: each one is on disk when its Deferred fires, as another
        connection to the file sees.
        """
        async def run() -> None:
            events = self.countWriteCommits()

            def _cbSlowCommit(conn: Any) -> None:
                # A reactor that were told of the group before the commit
                # ended would run its callbacks meanwhile.
                time.sleep(0.05)

            event.listen(self.backend.engine, "commit", _cbSlowCommit)
            self.addCleanup(event.remove, self.backend.engine, "commit", _cbSlowCommit)
            database = make_url(self.url).database
            assert database is not None

            def _cbAcknowledged(entry: Any, uid: str) -> None:
                check = sqlite3.connect(database)
                try:
                    stored = check.execute("SELECT attrs FROM ldapd_entries WHERE ndn = ?", (
                        str(self.ndn(f"uid={uid},ou=people,dc=example,dc=com")),)).fetchone()[0]
                finally:
                    check.close()
                events.append(f"{uid} {'stored' if uid in stored else 'missing'}")

            pausing = _PausingHooks()
            writes = [self.backend.add(_op(), self.person("carol"), pausing)]
            writes[0].addCallback(_cbAcknowledged, "carol")
            await pausing.whenReached()
            for uid in ("dave", "erin", "frank"):
                writes.append(self.backend.add(_op(), self.person(uid), RecordingHooks()))
                writes[-1].addCallback(_cbAcknowledged, uid)
            pausing.release.set()
            await defer.gatherResults(writes)
            # Carol's acknowledgement may come before or after the second
            # group starts its commit, but each comes after its own group's.
            commits = [i for i, e in enumerate(events) if e == "commit"]
            self.assertEqual(len(commits), 2)
            self.assertEqual(sorted(events), sorted(
                ["commit", "commit"] + [f"{uid} stored" for uid in ("carol", "dave", "erin", "frank")]))
            self.assertGreater(events.index("carol stored"), commits[0])
            for uid in ("dave", "erin", "frank"):
                self.assertGreater(events.index(f"{uid} stored"), commits[1])

        return defer.Deferred.fromCoroutine(run())


class PostgreSQLBackendTests(PostgreSQLMixin, SQLBackendTestsMixin, unittest.TestCase):
    """
    The SQL backend on PostgreSQL.
    """

    def test_trigramSubstrings(self) -> Any:
        """
        With pg_trgm, middle and final substrings are narrowed by the index.
        """
        if not self.backend._trigrams:
            raise unittest.SkipTest("pg_trgm is not available on this server")
        d = self.backend.countCandidates(self.compiled("(cn=*lic*)"))
        d.addCallback(self.assertEqual, 1)
        d.addCallback(lambda _: self.backend.countCandidates(self.compiled("(mail=*@example.com)")))
        d.addCallback(self.assertEqual, 2)
        return d


class _PausingHooks(RecordingHooks):
    """
    Hooks whose txn stage waits, in the backend's thread, until released:
    the write holds its locks meanwhile.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reached = threading.Event()
        self.release = threading.Event()

    def txn(self, operation: str, op: Any, txn: Any, *args: Any) -> None:
        self.reached.set()
        self.release.wait(30)

    async def whenReached(self) -> None:
        """
        Wait (in the reactor) until a write has reached the txn stage.
        """
        from twisted.internet import reactor, task

        while not self.reached.is_set():
            await task.deferLater(reactor, 0.01, lambda: None)


class PostgreSQLConcurrencyTests(PostgreSQLMixin, unittest.TestCase):
    """
    Two backends (as two processes would) writing one PostgreSQL database
    keep the tree consistent.
    """

    suffixText = "dc=example,dc=com"

    def setUp(self) -> Any:
        self.schema = Schema.standard()
        self.suffix = self.schema.normalizeDN(DN.parse(self.suffixText))
        url = self.databaseURL()
        self.first = SQLBackend(self.suffix, self.schema, url)
        self.second = SQLBackend(self.suffix, self.schema, url)
        d = defer.gatherResults([self.first.open(), self.second.open()])
        d.addCallback(lambda _: (self.addCleanup(self.first.close),
                                 self.addCleanup(self.second.close)))
        d.addCallback(lambda _: self.first._call(self.first.importEntries, [
            Entry(DN.parse(dn), attrs, self.schema) for dn, attrs in [
                (self.suffixText, [("objectClass", [b"domain"]), ("dc", [b"example"])]),
                ("ou=people,dc=example,dc=com",
                 [("objectClass", [b"organizationalUnit"]), ("ou", [b"people"])]),
            ]]))
        return d

    def person(self, uid: str) -> Entry:
        return Entry(DN.parse(f"uid={uid},ou=people,dc=example,dc=com"), [
            ("objectClass", [b"inetOrgPerson"]), ("uid", [uid.encode()]), ("cn", [b"x"]),
            ("sn", [b"x"])], self.schema)

    async def whenBlocked(self) -> None:
        """
        Wait until a session of the test database waits for a lock (for
        a few seconds at most: a write that does not wait shows in the
        outcome).
        """
        from twisted.internet import reactor, task

        def waiting() -> int:
            with self.first.engine.connect() as conn:
                return conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()").scalar()

        for _ in range(300):
            if await self.first._call(waiting):
                return
            await task.deferLater(reactor, 0.01, lambda: None)

    def names(self, backend: SQLBackend, base: str) -> Any:
        found: list[str] = []
        params = SearchParameters(self.schema.normalizeDN(DN.parse(base)), Scope.SUB,
                                  compileFilter(parseFilter("(objectClass=*)"), self.schema))
        return backend.search(_op(params), lambda e: found.append(str(e.dn))).addCallback(
            lambda _: found)

    def test_moveWaitsForAdd(self) -> Any:
        """
        A subtree move that starts while another backend adds a child in
        it waits for that add, and moves the new child too.
        """
        async def run() -> None:
            hooks = _PausingHooks()
            adding = self.first.add(_op(), self.person("carol"), hooks)
            await hooks.whenReached()
            moving = self.second.rename(_op(), self.schema.normalizeDN(
                DN.parse("ou=people,dc=example,dc=com")), DN.parse("ou=staff,dc=example,dc=com"),
                True, RecordingHooks())
            await self.whenBlocked()
            hooks.release.set()
            await adding
            await moving
            self.assertEqual(await self.names(self.first, "ou=staff,dc=example,dc=com"),
                             ["ou=staff,dc=example,dc=com", "uid=carol,ou=staff,dc=example,dc=com"])
            self.assertEqual(await self.names(self.second, self.suffixText), [
                "dc=example,dc=com", "ou=staff,dc=example,dc=com",
                "uid=carol,ou=staff,dc=example,dc=com"])

        return defer.Deferred.fromCoroutine(run())

    def test_addWaitsForMove(self) -> Any:
        """
        An add below an entry that another backend is moving waits for the
        move, then finds its parent gone from the old name.
        """
        async def run() -> None:
            hooks = _PausingHooks()
            moving = self.first.rename(_op(), self.schema.normalizeDN(
                DN.parse("ou=people,dc=example,dc=com")), DN.parse("ou=staff,dc=example,dc=com"),
                True, hooks)
            await hooks.whenReached()
            adding = self.second.add(_op(), self.person("carol"), RecordingHooks())
            await self.whenBlocked()
            hooks.release.set()
            await moving
            try:
                await adding
            except NoSuchObject:
                pass
            else:
                self.fail("the add found its parent under the old name")
            self.assertEqual(await self.names(self.second, self.suffixText),
                             ["dc=example,dc=com", "ou=staff,dc=example,dc=com"])

        return defer.Deferred.fromCoroutine(run())


class SchemaVersionTests(SQLiteMixin, unittest.TestCase):
    """
    The database schema is versioned and brought up to date when the
    backend opens.
    """

    def setUp(self) -> None:
        self.schema = Schema.standard()
        self.suffix = self.schema.normalizeDN(DN.parse("dc=example,dc=com"))
        self.url = self.databaseURL()

    def backend(self) -> SQLBackend:
        backend = SQLBackend(self.suffix, self.schema, self.url)
        self.addCleanup(backend.close)
        return backend

    def test_upgradeFromVersion1(self) -> Any:
        """
        A database at version 1 holding entries is upgraded to the current
        version, and its entries are kept.
        """
        engine = create_engine(self.url)
        with engine.begin() as conn:
            self.assertEqual(sqlschema.upgrade(conn, str(self.suffix), target=1), [1])
            conn.execute(sqlschema.entries.insert().values(
                id=1, parent_id=None, ndn=str(self.suffix), dn="dc=example,dc=com",
                path=f"/{encodeId(1)}/",
                attrs='[["objectClass",["top","domain"]],["dc",["example"]]]'))
        self.assertNotIn("ldapd_values_entry",
                         [i["name"] for i in inspect(engine).get_indexes("ldapd_values")])
        backend = self.backend()
        d = backend.open()
        d.addCallback(lambda _: backend.get(_op(), self.suffix))
        d.addCallback(lambda e: self.assertEqual(e.get("dc"), (b"example",)))

        def _cbCheck(_: Any) -> None:
            with engine.connect() as conn:
                self.assertEqual(sqlschema.readMeta(conn)["version"],
                                 str(sqlschema.SCHEMA_VERSION))
            self.assertIn("ldapd_values_entry",
                          [i["name"] for i in inspect(engine).get_indexes("ldapd_values")])
            engine.dispose()

        return d.addCallback(_cbCheck)

    def test_gramsFromVersion3(self) -> Any:
        """
        A database at version 3 gets the trigram index of the substring
        keys it holds.
        """
        engine = create_engine(self.url)
        with engine.begin() as conn:
            self.assertEqual(sqlschema.upgrade(conn, str(self.suffix), target=3), [1, 2, 3])
            conn.execute(sqlschema.entries.insert().values(
                id=1, parent_id=None, ndn=str(self.suffix), dn="dc=example,dc=com",
                path=f"/{encodeId(1)}/",
                attrs='[["objectClass",["top","organization","dcObject"]],["dc",["example"]],'
                      '["o",["Example Widgets"]]]'))
            conn.execute(sqlschema.values.insert().values(
                entry_id=1, attr="2.5.4.10", kind="s", key="example widgets"))
        engine.dispose()
        backend = SQLBackend(self.suffix, self.schema, self.url,
                             indexes=["objectClass eq", "o sub"])
        self.addCleanup(backend.close)
        d = backend.open()
        d.addCallback(lambda _: backend.countCandidates(
            compileFilter(parseFilter("(o=*widg*)"), self.schema)))
        return d.addCallback(self.assertEqual, 1)

    def test_newerVersion(self) -> Any:
        """
        A database written by a newer ldapd is refused with a clear error.
        """
        engine = create_engine(self.url)
        with engine.begin() as conn:
            sqlschema.upgrade(conn, str(self.suffix))
            sqlschema.writeMeta(conn, "version", str(sqlschema.SCHEMA_VERSION + 1))
        engine.dispose()
        d = self.backend().open()
        return d.addCallbacks(self.fail, lambda f: (
            f.trap(SchemaVersionError), self.assertIn("upgrade ldapd", str(f.value))))

    def test_otherSuffix(self) -> Any:
        """
        A database holding another suffix is refused.
        """
        engine = create_engine(self.url)
        with engine.begin() as conn:
            sqlschema.upgrade(conn, "dc=other")
        engine.dispose()
        d = self.backend().open()
        return d.addCallbacks(self.fail, lambda f: f.trap(SchemaVersionError))


class IndexRowsTests(unittest.TestCase):
    """
    L{SQLBackend.indexRows}: the index rows of an entry.
    """

    def test_kinds(self) -> None:
        """
        Each indexed type gets its presence row, the equality key of each
        value (of each class and its superclasses for objectClass; the raw
        bytes of a value its rule refuses; a digest of a long key), and the
        substrings key of each value (a "too long" row for a long one);
        unindexed types get none.
        """
        schema = Schema.standard()
        backend = SQLBackend(
            schema.normalizeDN(DN.parse("dc=example,dc=com")), schema, "sqlite:///unused.db",
            indexes=["objectClass eq", "cn eq,sub", "description sub", "telephoneNumber eq,sub",
                     "createTimestamp pres,eq"])
        entry = Entry(DN.parse("cn=Ann,dc=example,dc=com"), [
            ("objectClass", [b"inetOrgPerson"]), ("cn", [b"Ann  Example", b"x" * 300]),
            ("description", [b"A B"]), ("telephoneNumber", [b"+1 555-0100"]),
            ("createTimestamp", [b"20240101120000Z", b"not a time"]), ("sn", [b"E"])], schema)
        when = repr(datetime(2024, 1, 1, 12, tzinfo=timezone.utc))
        longKey = hashlib.sha256(("s" + "x" * 300).encode()).hexdigest()
        self.assertEqual(backend.indexRows(entry), {
            ("2.5.4.0", "e", f"s{oc}") for oc in (
                "2.16.840.1.113730.3.2.2", "2.5.6.0", "2.5.6.6", "2.5.6.7")} | {
            ("2.5.4.3", "e", "sann example"), ("2.5.4.3", "s", "ann example"),
            ("2.5.4.3", "e", f"h{longKey}"), ("2.5.4.3", "l", ""),
            ("2.5.4.13", "s", "a b"),
            ("2.5.4.20", "e", "s+15550100"), ("2.5.4.20", "s", "+15550100"),
            ("2.5.18.1", "p", ""), ("2.5.18.1", "e", f"r{when}"),
            ("2.5.18.1", "e", "b" + b"not a time".hex()),
        })


class SerialisationTests(unittest.TestCase):
    """
    How entries and paths are stored.
    """

    def test_attributesRoundTrip(self) -> None:
        """
        Every byte of every value, UTF-8 or not, is read back as written.
        """
        schema = Schema.standard()
        entry = Entry(DN.parse("cn=x,dc=example,dc=com"), [
            ("objectClass", [b"person"]), ("cn", [b"x", "é".encode()]),
            ("userPassword", [bytes(range(256))]), ("sn;lang-en", [b"y"])], schema)
        descriptions, values = decodeAttributes(encodeAttributes(entry))
        self.assertEqual(descriptions, ("objectClass", "cn", "userPassword", "sn;lang-en"))
        self.assertEqual(values, (b"person", (b"x", "é".encode()), bytes(range(256)), b"y"))
        back = Entry.fromStored(entry.dn, entry.ndn, schema, descriptions, values)
        self.assertEqual([(a.description, a.values) for a in back],
                         [(a.description, a.values) for a in entry])

    def test_malformedDescriptionLeftOut(self) -> None:
        """
        An attribute whose description is malformed, as an earlier version
        stored one an attacker sent, is left out when the entry is read
        back, with a warning; the rest of the entry reads as stored.
        """
        schema = Schema.standard()
        entry = Entry(DN.parse("cn=x,dc=example,dc=com"),
                      [("objectClass", [b"person"]), ("cn", [b"x"]), ("sn", [b"y"])], schema)
        payload = "description;x-note\n\ndn: cn=admins,dc=example,dc=com\nchangetype: modify"
        text = json.dumps(json.loads(encodeAttributes(entry)) + [[payload, ["v"]]])
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        back = Entry.fromStored(entry.dn, entry.ndn, schema, *decodeAttributes(text))
        self.assertEqual([(a.description, a.values) for a in back],
                         [(a.description, a.values) for a in entry])
        [warning] = [e for e in events if "malformed" in e.get("log_format", "")]
        self.assertIn("x-note", warning["descriptions"])
        self.assertNotIn("\n", warning["descriptions"])

    def test_pathOrder(self) -> None:
        """
        Encoded ids compare as text in the order of the numbers.
        """
        ids = [1, 9, 15, 16, 255, 256, 4096, 10**9]
        self.assertEqual(sorted(ids, key=encodeId), ids)
        self.assertEqual(sorted(encodeId(i) for i in ids), [encodeId(i) for i in ids])


class SQLBackendFactoryTests(unittest.TestCase):
    """
    The factory builds the backend from its configuration table.
    """

    def context(self, path: Path | None = None) -> ConfigContext:
        schema = Schema.standard()
        return ConfigContext(path, "database[0]", schema, None,
                             schema.normalizeDN(DN.parse("dc=example,dc=com")))

    def test_relativePath(self) -> None:
        """
        A relative SQLite path is taken from the configuration file's folder.
        """
        backend = SQLBackendFactory.fromConfig(
            {"url": "sqlite:///data/x.db", "pool_size": 2, "entry_cache": 0},
            self.context(Path("/etc/ldapd/l.toml")))
        self.assertEqual(backend.url.database, "/etc/ldapd/data/x.db")
        self.assertEqual(backend.poolSize, 2)
        self.assertEqual(backend._cache.size, 0)

    def test_errors(self) -> None:
        """
        A missing URL, an unknown key, a bad index line, an in-memory
        database and a bad pool size are errors naming their key.
        """
        for table, key in [
            ({}, "url"),
            ({"url": "sqlite:///x.db", "cache": 1}, "cache"),
            ({"url": "sqlite:///x.db", "indexes": ["uid eq,fast"]}, "indexes"),
            ({"url": "sqlite:///x.db", "indexes": ["nosuchtype eq"]}, "indexes"),
            ({"url": "sqlite:///x.db", "indexes": ["userPassword sub"]}, "indexes"),
            ({"url": "sqlite://"}, "url"),
            ({"url": "mysql://x/y"}, "url"),
            ({"url": "sqlite:///x.db", "pool_size": 0}, "pool_size"),
            ({"url": "sqlite:///x.db", "entry_cache": -1}, "entry_cache"),
            ({"url": "sqlite:///x.db", "entry_cache": "big"}, "entry_cache"),
        ]:
            e = self.assertRaises(ConfigError, SQLBackendFactory.fromConfig, table, self.context())
            self.assertIn(f"database[0].{key}:", str(e))

    def test_indexConfig(self) -> None:
        """
        The C{indexes} lines give each type its kinds; C{*} gives every type some.
        """
        schema = Schema.standard()
        config = IndexConfig.parse(["* pres", "uid,cn eq,sub", "mail eq"], schema)
        uid = schema.attributeType("uid")
        mail = schema.attributeType("mail")
        o = schema.attributeType("o")
        self.assertEqual(config.kinds(uid.oid), {"pres", "eq", "sub"})
        self.assertEqual(config.kinds(mail.oid), {"pres", "eq"})
        self.assertEqual(config.kinds(o.oid), {"pres"})

