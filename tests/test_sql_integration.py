"""
Integration tests of the C{sql} backend with the real C{twist ldapd}:
crash safety on SQLite (SIGKILL in the middle of a stream of writes), and
scale-out on PostgreSQL (two server processes on one database).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import pytest
from ldap3 import BASE, MODIFY_REPLACE, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException
from twisted.trial import unittest

from ldapd.testing import ServerProcess, privatePostgreSQLSchema

pytestmark = pytest.mark.integration

ROOT_DN = "cn=admin,dc=example,dc=com"
PEOPLE = "ou=people,dc=example,dc=com"

CONFIG = """
[server]
listen = ["tcp:{port}:interface=127.0.0.1"]

[[database]]
suffix = "dc=example,dc=com"
backend = "sql"
url = "%s"
root_dn = "cn=admin,dc=example,dc=com"
root_password = "secret"
seed_ldif = "{example_ldif}"
"""

#: The most writes the crash test streams before it gives up waiting.
MAX_WRITES = 2000


def connect(server: ServerProcess) -> Connection:
    """
    @return: an ldap3 connection to C{server}, bound as the root DN.
    """
    return Connection(Server(server.url, connect_timeout=5), ROOT_DN, "secret",
                      auto_bind=True, receive_timeout=10, raise_exceptions=False)


def attributes(n: int) -> dict[str, object]:
    """
    @return: the attributes of the C{n}th entry the crash test writes.
    """
    return {"uid": f"crash{n}", "cn": f"Crash {n}", "sn": "Crash",
            "mail": f"crash{n}@example.com", "description": f"marker-{n}",
            "telephoneNumber": [f"+1 555 {n:04d}", f"+1 556 {n:04d}"]}


def server(testCase: unittest.SynchronousTestCase, url: str, folder: Path) -> ServerProcess:
    """
    @return: a started server on database C{url}, stopped after the test.
    """
    folder.mkdir(parents=True, exist_ok=True)
    process = ServerProcess(CONFIG % url, folder)
    process.start()
    testCase.addCleanup(process.stop)
    return process


class CrashSafetyTests(unittest.SynchronousTestCase):
    """
    Acknowledged writes survive SIGKILL, and no write is half there.
    """

    def test_killDuringWrites(self) -> None:
        """
        A client adds entries one after another and records which were
        acknowledged; the server is killed with SIGKILL in the middle of the
        stream and started again on the same SQLite file. Every acknowledged
        entry is there with all its attributes and in the index; an entry
        whose add was not acknowledged is either there whole or absent.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-crash-"))
        first = server(self, "sqlite:///crash.db", folder)
        acknowledged: list[int] = []
        attempted: list[int] = []
        stop = threading.Event()

        def write() -> None:
            conn = connect(first)
            for n in range(MAX_WRITES):
                if stop.is_set():
                    return
                attempted.append(n)
                try:
                    ok = conn.add(f"uid=crash{n},{PEOPLE}", "inetOrgPerson", attributes(n))
                except LDAPException:
                    return
                if not ok:
                    return
                acknowledged.append(n)

        writer = threading.Thread(target=write)
        writer.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 25 and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first.process is not None
        first.process.kill()
        first.process.wait()
        stop.set()
        writer.join(15)
        self.assertGreaterEqual(len(acknowledged), 25, first.log())
        self.assertLess(len(acknowledged), MAX_WRITES)

        second = server(self, "sqlite:///crash.db", folder)
        conn = connect(second)
        conn.search(PEOPLE, "(uid=crash*)", SUBTREE, attributes=["*"])
        found = {e.entry_dn: e for e in conn.entries}
        for n in attempted:
            dn = f"uid=crash{n},{PEOPLE}"
            if n in acknowledged:
                self.assertIn(dn, found)
            if dn in found:
                entry = found[dn]
                for name, value in attributes(n).items():
                    expected = sorted(value) if isinstance(value, list) else [value]
                    self.assertEqual(sorted(entry[name].values), expected, dn)
                conn.search(PEOPLE, f"(description=marker-{n})", SUBTREE, attributes=["1.1"])
                self.assertEqual([e.entry_dn for e in conn.entries], [dn])
        self.assertLessEqual(set(found), {f"uid=crash{n},{PEOPLE}" for n in attempted})
        conn.unbind()


class ScaleOutTests(unittest.SynchronousTestCase):
    """
    Two ldapd processes on one PostgreSQL database.
    """

    def test_twoServers(self) -> None:
        """
        What one server commits, the other returns at once: adds, modifies,
        renames and deletes, in both directions.
        """
        url = privatePostgreSQLSchema(self)
        folder = Path(tempfile.mkdtemp(prefix="ldapd-scale-"))
        a = server(self, url, folder / "a")
        b = server(self, url, folder / "b")
        left, right = connect(a), connect(b)
        self.addCleanup(left.unbind)
        self.addCleanup(right.unbind)

        def read(conn: Connection, dn: str) -> list[str] | None:
            conn.search(dn, "(objectClass=*)", BASE, attributes=["description"])
            if conn.result["result"] == 32:
                return None
            return [str(v) for v in conn.entries[0]["description"].values]

        for writer, reader, uid in [(left, right, "west"), (right, left, "east")]:
            dn = f"uid={uid},{PEOPLE}"
            self.assertTrue(writer.add(dn, "inetOrgPerson", {
                "uid": uid, "cn": uid, "sn": uid, "description": "one"}), writer.result)
            self.assertEqual(read(reader, dn), ["one"])
            self.assertTrue(writer.modify(dn, {"description": [(MODIFY_REPLACE, ["two"])]}))
            self.assertEqual(read(reader, dn), ["two"])
            reader.search(PEOPLE, "(description=two)", SUBTREE, attributes=["1.1"])
            self.assertEqual([e.entry_dn for e in reader.entries], [dn])
            self.assertTrue(writer.modify_dn(dn, f"uid={uid}2"), writer.result)
            self.assertIsNone(read(reader, dn))
            self.assertEqual(read(reader, f"uid={uid}2,{PEOPLE}"), ["two"])
            self.assertTrue(writer.delete(f"uid={uid}2,{PEOPLE}"), writer.result)
            self.assertIsNone(read(reader, f"uid={uid}2,{PEOPLE}"))
        self.assertTrue(left.add(f"uid=both,{PEOPLE}", "inetOrgPerson",
                                 {"uid": "both", "cn": "b", "sn": "b"}))
        self.assertFalse(right.add(f"uid=both,{PEOPLE}", "inetOrgPerson",
                                   {"uid": "both", "cn": "b", "sn": "b"}))
        self.assertEqual(right.result["result"], 68)
