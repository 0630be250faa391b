"""
Tests for LDAP transactions (RFC 5805, L{ldapd.transactions}): the same
checks against a private slapd (back-mdb) and the real C{twist ldapd} on the
sql backend, through OpenLDAP's C{ldapmodify -E txn=...} and python-ldap;
then on the memory backend with the memberof plugin, whose transaction hooks
run inside the transaction, through ldap3; and in process on the memory
and sql backends (SQLite, PostgreSQL), where what subscribers are told is
seen.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import ldap
import ldap3
import pytest
from ldap.controls import LDAPControl
from ldap.extop import ExtendedRequest
from ldaptor.protocols import pureber, pureldap
from twisted.internet import defer
from twisted.trial import unittest

from ldapd import transactions
from ldapd.plugins.memberof import MemberOf
from ldapd.schema import Schema
from ldapd.testing import (
    DirectoryTestsMixin,
    ServerProcess,
    ServerTestsMixin,
    SlapdTestsMixin,
    exampleConfig,
    executeRequest,
)
from ldapd.transactions import END_TRANSACTION, START_TRANSACTION, TRANSACTION_SPECIFICATION

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
ROOT_DN = f"cn=admin,{BASE}"
PASSWORD = "secret"
ALICE = f"uid=alice,{PEOPLE}"

#: slapd's result code for a transaction identifier not under way.
TXN_ID_INVALID = 0x4121

_names = itertools.count(1)


def _endValue(identifier: bytes, commit: bool = True) -> bytes:
    """
    @return: an End Transaction request value (RFC 5805 §2.3).
    """
    content = (b"" if commit else b"\x01\x01\x00") + b"\x04" + bytes([len(identifier)]) + identifier
    return b"\x30" + bytes([len(content)]) + content


class TransactionTestsMixin:
    """
    Transactions as slapd carries them out: mixed into a class whose
    C{url} is a server holding the example organisation.
    """

    url: str

    def ldapmodify(self, ldif: str, *options: str) -> subprocess.CompletedProcess[bytes]:
        """
        Run OpenLDAP's ldapmodify as the root DN with C{ldif} on its input.
        """
        return subprocess.run(
            ["ldapmodify", "-x", "-H", self.url, "-D", ROOT_DN, "-w", PASSWORD, *options],
            input=ldif.encode(), capture_output=True, check=False, timeout=60)

    def connect(self) -> Any:
        conn = ldap.initialize(self.url)
        conn.simple_bind_s(ROOT_DN, PASSWORD)
        self.addCleanup(conn.unbind_s)  # type: ignore[attr-defined]
        return conn

    def description(self, dn: str) -> list[bytes]:
        found = self.connect().search_s(dn, ldap.SCOPE_BASE, attrlist=["description"])
        return found[0][1].get("description", []) if found else []

    def exists(self, dn: str) -> bool:
        try:
            self.connect().search_s(dn, ldap.SCOPE_BASE, attrlist=["1.1"])
        except ldap.NO_SUCH_OBJECT:
            return False
        return True

    def twoUpdates(self, second: str) -> tuple[str, str]:
        """
        @return: an LDIF of a group's add and then C{second}, and the DN of
            the group.
        """
        group = f"cn=txn{next(_names)},{GROUPS}"
        return (f"dn: {group}\nchangetype: add\nobjectClass: groupOfNames\ncn: {group[3:].split(',')[0]}\n"
                f"member: {ALICE}\n\n{second}", group)

    def test_commit(self) -> None:
        """
        ldapmodify -E txn=commit: every update of the transaction is made.
        """
        value = f"committed {next(_names)}"
        ldif, group = self.twoUpdates(
            f"dn: {PEOPLE}\nchangetype: modify\nreplace: description\ndescription: {value}\n")
        done = self.ldapmodify(ldif, "-E", "txn=commit")
        self.assertEqual(done.returncode, 0, done.stderr)  # type: ignore[attr-defined]
        self.assertTrue(self.exists(group))  # type: ignore[attr-defined]
        self.assertEqual(self.description(PEOPLE), [value.encode()])  # type: ignore[attr-defined]

    def test_dependentUpdates(self) -> None:
        """
        Each update sees the transaction's earlier ones: an entry added,
        then a child of it, modified and renamed, all in one transaction.
        """
        unit = f"txn{next(_names)}"
        parent = f"ou={unit},{BASE}"
        child = f"cn=child,{parent}"
        done = self.ldapmodify(
            f"dn: {parent}\nchangetype: add\nobjectClass: organizationalUnit\nou: {unit}\n\n"
            f"dn: {child}\nchangetype: add\nobjectClass: groupOfNames\ncn: child\nmember: {ALICE}\n\n"
            f"dn: {child}\nchangetype: modify\nreplace: description\ndescription: in txn\n\n"
            f"dn: {child}\nchangetype: modrdn\nnewrdn: cn=child2\ndeleteoldrdn: 1\n",
            "-E", "txn=commit")
        self.assertEqual(done.returncode, 0, done.stderr)  # type: ignore[attr-defined]
        self.assertEqual(self.description(f"cn=child2,{parent}"), [b"in txn"])  # type: ignore[attr-defined]
        self.assertFalse(self.exists(child))  # type: ignore[attr-defined]

    def test_failedUpdateRollsBack(self) -> None:
        """
        When one update fails, End Transaction answers its result code and
        none of the transaction's updates is made, not even those before it.
        """
        ldif, group = self.twoUpdates(
            f"dn: cn=nobody,{PEOPLE}\nchangetype: modify\nreplace: description\ndescription: x\n")
        done = self.ldapmodify(ldif, "-E", "txn=commit")
        self.assertEqual(done.returncode, 32, done.stderr)  # type: ignore[attr-defined]
        self.assertIn(b"ldap_txn_end_s: No such object", done.stderr)  # type: ignore[attr-defined]
        self.assertFalse(self.exists(group))  # type: ignore[attr-defined]

    def test_abort(self) -> None:
        """
        ldapmodify -E txn=abort: nothing is made.
        """
        ldif, group = self.twoUpdates(
            f"dn: {PEOPLE}\nchangetype: modify\nreplace: description\ndescription: aborted\n")
        done = self.ldapmodify(ldif, "-E", "txn=abort")
        self.assertEqual(done.returncode, 0, done.stderr)  # type: ignore[attr-defined]
        self.assertFalse(self.exists(group))  # type: ignore[attr-defined]
        self.assertNotEqual(self.description(PEOPLE), [b"aborted"])  # type: ignore[attr-defined]

    def ldap3Connection(self) -> ldap3.Connection:
        conn = ldap3.Connection(self.url, ROOT_DN, PASSWORD, auto_bind=True)
        self.addCleanup(conn.unbind)  # type: ignore[attr-defined]
        return conn

    def queueGroup(self, conn: ldap3.Connection) -> tuple[str, bytes]:
        """
        Start a transaction and queue a group's add in it, through ldap3
        (whose controls may have an empty value: slapd's identifiers are).

        @return: the group's DN and the transaction's identifier.
        """
        conn.extended(START_TRANSACTION)
        identifier = conn.result["responseValue"]
        group = f"cn=txn{next(_names)},{GROUPS}"
        added = conn.add(group, ["groupOfNames"], {"member": [ALICE]},
                         controls=[(TRANSACTION_SPECIFICATION, True, identifier)])
        self.assertTrue(added, conn.result)  # type: ignore[attr-defined]
        return group, identifier

    def test_updateAnsweredBeforeCommit(self) -> None:
        """
        An update in a transaction is answered success at once, and made
        only when the transaction commits: until then another connection
        does not see it, and End Transaction makes it.
        """
        conn = self.ldap3Connection()
        group, identifier = self.queueGroup(conn)
        self.assertFalse(self.exists(group))  # type: ignore[attr-defined]
        conn.extended(END_TRANSACTION, _endValue(identifier))
        self.assertEqual(conn.result["result"], 0, conn.result)  # type: ignore[attr-defined]
        self.assertTrue(self.exists(group))  # type: ignore[attr-defined]

    def test_oneAtATime(self) -> None:
        """
        A second Start Transaction while one is under way is busy.
        """
        conn = self.connect()
        conn.extop_s(ExtendedRequest(START_TRANSACTION, None))
        self.assertRaises(ldap.BUSY, conn.extop_s,  # type: ignore[attr-defined]
                          ExtendedRequest(START_TRANSACTION, None))

    def test_noTransaction(self) -> None:
        """
        An update naming no transaction under way is refused with slapd's
        invalid transaction identifier, and not made.
        """
        conn = self.connect()
        control = LDAPControl(TRANSACTION_SPECIFICATION, True, encodedControlValue=b"77")
        with self.assertRaises(ldap.LDAPError) as caught:  # type: ignore[attr-defined]
            conn.modify_ext_s(PEOPLE, [(ldap.MOD_REPLACE, "description", [b"none"])],
                              serverctrls=[control])
        self.assertEqual(caught.exception.args[0]["result"], TXN_ID_INVALID)  # type: ignore[attr-defined]
        self.assertNotEqual(self.description(PEOPLE), [b"none"])  # type: ignore[attr-defined]

    def test_notCritical(self) -> None:
        """
        The transaction specification control must be critical: protocolError.
        """
        conn = self.connect()
        _, identifier = conn.extop_s(ExtendedRequest(START_TRANSACTION, None))
        control = LDAPControl(TRANSACTION_SPECIFICATION, False, encodedControlValue=identifier)
        self.assertRaises(ldap.PROTOCOL_ERROR, conn.modify_ext_s,  # type: ignore[attr-defined]
                          PEOPLE, [(ldap.MOD_REPLACE, "description", [b"x"])], serverctrls=[control])

    def test_commitNothing(self) -> None:
        """
        Committing a transaction with no update is operationsError.
        """
        conn = self.connect()
        _, identifier = conn.extop_s(ExtendedRequest(START_TRANSACTION, None))
        self.assertRaises(ldap.OPERATIONS_ERROR, conn.extop_s,  # type: ignore[attr-defined]
                          ExtendedRequest(END_TRANSACTION, _endValue(identifier)))

    def test_closedConnection(self) -> None:
        """
        A transaction whose connection closes is abandoned: its updates are
        never made.
        """
        conn = ldap3.Connection(self.url, ROOT_DN, PASSWORD, auto_bind=True)
        group, _ = self.queueGroup(conn)
        conn.unbind()
        self.assertFalse(self.exists(group))  # type: ignore[attr-defined]


class LdapdTransactionTests(TransactionTestsMixin, ServerTestsMixin, unittest.SynchronousTestCase):
    """
    Transactions in ldapd, on the sql backend (SQLite).
    """

    serverConfig = exampleConfig()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url  # type: ignore[no-any-return]


class SlapdTransactionTests(TransactionTestsMixin, SlapdTestsMixin, unittest.SynchronousTestCase):
    """
    The same checks against slapd.
    """


class MemoryTransactionTests(unittest.SynchronousTestCase):
    """
    Transactions on the memory backend with the memberof plugin, through
    ldap3: the plugin's transaction hooks run inside the transaction, so
    that members' C{memberOf} commits or rolls back with it.
    """

    def setUp(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-txn-"))
        self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        config = exampleConfig().replace('backend = "sql"', 'backend = "memory"')
        config = "\n".join(line for line in config.splitlines() if not line.startswith("url ="))
        server = ServerProcess(config + '\n[[plugin]]\nname = "memberof"\n', folder)
        server.start()
        self.addCleanup(server.stop)
        self.conn = ldap3.Connection(server.url, ROOT_DN, PASSWORD, auto_bind=True)
        self.addCleanup(self.conn.unbind)

    def transaction(self, *updates: tuple[str, Any]) -> Any:
        """
        Start a transaction, queue C{updates} (ldap3 method names and
        arguments), end it with commit.

        @return: the End Transaction result.
        """
        self.conn.extended(START_TRANSACTION)
        identifier = self.conn.result["responseValue"]
        control = [(TRANSACTION_SPECIFICATION, True, identifier)]
        for method, args in updates:
            self.assertTrue(getattr(self.conn, method)(*args, controls=control), self.conn.result)
        self.conn.extended(END_TRANSACTION, _endValue(identifier))
        return self.conn.result

    def memberOf(self, dn: str) -> list[str]:
        self.conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["memberOf"])
        return [str(v).lower() for v in self.conn.entries[0].memberOf.values]

    def test_pluginChangesCommit(self) -> None:
        """
        A group added in a committed transaction gives its member memberOf.
        """
        group = f"cn=txn,{GROUPS}"
        result = self.transaction(("add", (group, ["groupOfNames"], {"member": [ALICE]})),
                                  ("modify", (PEOPLE, {"description": [(ldap3.MODIFY_REPLACE, ["x"])]})))
        self.assertEqual(result["result"], 0, result)
        self.assertIn(group, self.memberOf(ALICE))

    def test_pluginChangesRollBack(self) -> None:
        """
        When a later update fails, the group is not added and its member's
        memberOf is unchanged; End Transaction answers the failure with the
        failed update's message id.
        """
        group = f"cn=txn,{GROUPS}"
        result = self.transaction(("add", (group, ["groupOfNames"], {"member": [ALICE]})),
                                  ("delete", (f"cn=nobody,{GROUPS}",)))
        self.assertEqual(result["result"], 32, result)
        self.assertNotIn(group, self.memberOf(ALICE))
        self.assertFalse(self.conn.search(group, "(objectClass=*)", ldap3.BASE))


class InProcessTransactionTestsMixin(DirectoryTestsMixin):
    """
    Transactions carried out by a directory in process, on each backend,
    with the memberof plugin: what subscribers are told, and when.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        return [MemberOf(schema)]

    async def extended(self, name: str, value: bytes | None = None) -> Any:
        [response] = await self.request(pureldap.LDAPExtendedRequest(requestName=name,
                                                                     requestValue=value))
        return response.value

    async def queue(self, identifier: bytes, dn: str, *members: str) -> int:
        responses, done = executeRequest(
            self.directory, self.connection,
            pureldap.LDAPAddRequest(entry=dn, attributes=[
                (pureldap.LDAPAttributeDescription("objectClass"),
                 pureber.BERSet([pureldap.LDAPAttributeValue(b"groupOfNames")])),
                (pureldap.LDAPAttributeDescription("member"),
                 pureber.BERSet([pureldap.LDAPAttributeValue(m.encode()) for m in members]))]),
            self._nextId, [(TRANSACTION_SPECIFICATION, True, identifier)])
        self._nextId += 1
        await done
        return responses[-1].value.resultCode  # type: ignore[no-any-return]

    async def _test_announcedOnCommit(self) -> None:
        told: list[Any] = []
        self.directory.subscribe(told.append)
        identifier = (await self.extended(START_TRANSACTION)).response
        self.assertEqual(await self.queue(identifier, f"cn=one,{GROUPS}", ALICE), 0)
        self.assertEqual(await self.queue(identifier, f"cn=two,{GROUPS}", ALICE), 0)
        self.assertEqual(told, [])
        self.assertIsNone(await self.read(f"cn=one,{GROUPS}"))
        end = await self.extended(END_TRANSACTION, _endValue(identifier))
        self.assertEqual(end.resultCode, 0)
        # Both groups, and alice's memberOf changed by each, in order.
        self.assertEqual([(c.kind, str(c.new.dn)) for c in told], [
            ("add", f"cn=one,{GROUPS}"), ("modify", ALICE),
            ("add", f"cn=two,{GROUPS}"), ("modify", ALICE)])
        self.assertTrue({self.ndn(f"cn=one,{GROUPS}"), self.ndn(f"cn=two,{GROUPS}")}
                        <= await self.values(ALICE, "memberOf"))

    def test_announcedOnCommit(self) -> Any:
        """
        Subscribers are told of a transaction's changes once it commits,
        the plugins' changes included.
        """
        return defer.Deferred.fromCoroutine(self._test_announcedOnCommit())

    async def _test_failedNamesUpdate(self) -> None:
        told: list[Any] = []
        self.directory.subscribe(told.append)
        identifier = (await self.extended(START_TRANSACTION)).response
        self.assertEqual(await self.queue(identifier, f"cn=one,{GROUPS}", ALICE), 0)
        failing = self._nextId
        self.assertEqual(await self.queue(identifier, f"cn=two,ou=nowhere,{BASE}", ALICE), 0)
        end = await self.extended(END_TRANSACTION, _endValue(identifier))
        self.assertEqual(end.resultCode, 32)
        self.assertEqual(end.response, b"\x30\x03\x02\x01" + bytes([failing]))
        self.assertEqual(told, [])
        self.assertIsNone(await self.read(f"cn=one,{GROUPS}"))
        self.assertNotIn(self.ndn(f"cn=one,{GROUPS}"), await self.values(ALICE, "memberOf"))

    def test_failedNamesUpdate(self) -> Any:
        """
        A failed transaction tells subscribers nothing, changes nothing, and
        End Transaction names the update that failed by its message id.
        """
        return defer.Deferred.fromCoroutine(self._test_failedNamesUpdate())


    async def _test_bounded(self) -> None:
        self.patch(transactions, "MAX_UPDATES", 2)
        identifier = (await self.extended(START_TRANSACTION)).response
        self.assertEqual(await self.queue(identifier, f"cn=one,{GROUPS}", ALICE), 0)
        self.assertEqual(await self.queue(identifier, f"cn=two,{GROUPS}", ALICE), 0)
        self.assertEqual(await self.queue(identifier, f"cn=three,{GROUPS}", ALICE), 11)
        end = await self.extended(END_TRANSACTION, _endValue(identifier))
        self.assertEqual(end.resultCode, 0)
        self.assertIsNotNone(await self.read(f"cn=two,{GROUPS}"))
        self.assertIsNone(await self.read(f"cn=three,{GROUPS}"))

    def test_bounded(self) -> Any:
        """
        An update past the most a transaction holds is adminLimitExceeded,
        and left out; the others commit.
        """
        return defer.Deferred.fromCoroutine(self._test_bounded())


class MemoryInProcessTransactionTests(InProcessTransactionTestsMixin, unittest.TestCase):
    backend = "memory"


class SQLiteInProcessTransactionTests(InProcessTransactionTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLInProcessTransactionTests(InProcessTransactionTestsMixin, unittest.TestCase):
    backend = "postgresql"
