"""
Tests of C{[server] workers = N}: the real C{twist ldapd} running two worker
processes on one SQLite file and on one PostgreSQL schema, with real
clients (ldapsearch, ldap3), a worker killed by PID, a clean stop, and the
configurations that are refused.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from ldap3 import BASE, MODIFY_REPLACE, Connection, Server
from twisted.internet import protocol, reactor
from twisted.trial import unittest

from ldapd.config import loadConfig
from ldapd.registry import ConfigError
from ldapd.testing import ServerProcess, privatePostgreSQLSchema
from ldapd.workers import AdoptedEndpoint, cpuFor

pytestmark = pytest.mark.integration

ROOT_DN = "cn=admin,dc=example,dc=com"
ALICE = "uid=alice,dc=example,dc=com"

CONFIG = """
[server]
listen = ["tcp:{port}:interface=127.0.0.1"]
workers = 2
cpu_affinity = true

[[database]]
suffix = "dc=example,dc=com"
backend = "sql"
url = "%s"
root_dn = "cn=admin,dc=example,dc=com"
root_password = "secret"
"""

#: How long a test waits for a worker to come back.
DEADLINE = 30.0


def connect(server: ServerProcess) -> Connection:
    """
    @return: a new ldap3 connection to C{server}, bound as the root DN.
    """
    return Connection(Server(server.url, connect_timeout=5), ROOT_DN, "secret",
                      auto_bind=True, receive_timeout=10, raise_exceptions=True)


def workerPIDs(server: ServerProcess) -> dict[int, int]:
    """
    @return: the PID of each worker, by number, as the supervisor last
        logged starting it.
    """
    found = {}
    for number, pid in re.findall(r"started worker (\d+) \(pid (\d+)\)", server.log()):
        found[int(number)] = int(pid)
    return found


def serving(server: ServerProcess) -> set[str]:
    """
    @return: the numbers of the workers that have logged that they serve.
    """
    return set(re.findall(r"\[ldapd\.tap\.LDAPService#info worker=(\d+)\] ldapd serving",
                          server.log()))


def alive(pid: int) -> bool:
    """
    @return: whether a process C{pid} exists (and is not a zombie).
    """
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


class WorkersTestsMixin:
    """
    A two-worker server on the database C{databaseURL()} names.

    @ivar databaseURL: given by each test case: makes the database the
        workers share (cleaned up with the test) and returns its URL.
    """

    databaseURL: Callable[[], str]

    def setUp(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-workers-"))
        self.addCleanup(shutil.rmtree, folder, True)  # type: ignore[attr-defined]
        self.server = ServerProcess(CONFIG % self.databaseURL(), folder)
        self.server.start()
        self.addCleanup(self.server.stop)  # type: ignore[attr-defined]
        deadline = time.monotonic() + DEADLINE
        while len(serving(self.server)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        with connect(self.server) as conn:
            conn.add("dc=example,dc=com", ["dcObject", "organization"],
                     {"dc": "example", "o": "Example"})
            conn.add(ALICE, ["inetOrgPerson"], {"uid": "alice", "cn": "Alice", "sn": "A"})

    def test_writeSeenEverywhere(self) -> None:
        """
        A write acknowledged on one connection is seen by every connection
        opened after it, whichever worker accepted it, by ldap3 and by
        ldapsearch; the access log lines name the worker that wrote them.
        """
        with connect(self.server) as conn:
            conn.modify(ALICE, {"description": [(MODIFY_REPLACE, ["written once"])]})
        for _ in range(8):
            with connect(self.server) as conn:
                conn.search(ALICE, "(objectClass=*)", BASE, attributes=["description"])
                self.assertEqual(conn.entries[0].description.value, "written once")  # type: ignore[attr-defined]
        if shutil.which("ldapsearch"):
            out = subprocess.run(
                ["ldapsearch", "-x", "-LLL", "-H", self.server.url, "-b", ALICE, "-s", "base",
                 "description"], capture_output=True, text=True, check=True, timeout=30).stdout
            self.assertIn("description: written once", out)
        self.assertRegex(self.server.log(), r"\[ldapd\.access#info worker=[12]\] conn=\d+ op=")

    def test_killedWorkerRestarted(self) -> None:
        """
        When a worker is killed, the other one goes on serving and the
        supervisor starts a new one in its place.
        """
        pids = workerPIDs(self.server)
        self.assertEqual(sorted(pids), [1, 2])
        os.kill(pids[1], signal.SIGKILL)
        for _ in range(4):
            with connect(self.server) as conn:
                conn.search(ALICE, "(objectClass=*)", BASE)
                self.assertEqual(len(conn.entries), 1)
        deadline = time.monotonic() + DEADLINE
        while workerPIDs(self.server).get(1) == pids[1] and time.monotonic() < deadline:
            time.sleep(0.1)
        restarted = workerPIDs(self.server)[1]
        self.assertNotEqual(restarted, pids[1])
        self.assertTrue(alive(restarted))
        self.assertIn(f"worker 1 (pid {pids[1]}) ended", self.server.log())

    def test_cpuAffinity(self) -> None:
        """
        With C{cpu_affinity}, each worker runs on one CPU, the workers taking
        the CPUs this server may use in turn; the supervisor is not pinned.
        """
        allowed = sorted(os.sched_getaffinity(0))
        pids = workerPIDs(self.server)
        for number, pid in pids.items():
            self.assertEqual(os.sched_getaffinity(pid), {cpuFor(number, allowed)})
        assert self.server.process is not None
        self.assertEqual(sorted(os.sched_getaffinity(self.server.process.pid)), allowed)
        self.assertRegex(self.server.log(), r"worker=1\] running on CPU \d+")

    def test_cleanStop(self) -> None:
        """
        SIGTERM to the supervisor stops every worker and then itself, each
        ending its reactor's main loop (twist then exits by the signal that
        stopped it, as with one process).
        """
        pids = workerPIDs(self.server)
        self.server.stop()
        assert self.server.process is not None
        self.assertEqual(self.server.process.returncode, -signal.SIGTERM, self.server.log())
        log = self.server.log()
        for tag in ("worker=1", "worker=2", ""):
            self.assertIn(f"[twisted.internet.base#info{' ' if tag else ''}{tag}] "
                          "Main loop terminated.", log)
        deadline = time.monotonic() + DEADLINE
        while any(alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse([pid for pid in pids.values() if alive(pid)])


class SQLiteWorkersTests(WorkersTestsMixin, unittest.SynchronousTestCase):
    """
    Two workers on one SQLite file.
    """

    def databaseURL(self) -> str:
        folder = tempfile.mkdtemp(prefix="ldapd-workers-db-")
        self.addCleanup(shutil.rmtree, folder, True)
        return f"sqlite:///{folder}/workers.db"


class PostgreSQLWorkersTests(WorkersTestsMixin, unittest.SynchronousTestCase):
    """
    Two workers on one PostgreSQL schema.
    """

    def databaseURL(self) -> str:
        return privatePostgreSQLSchema(self)


class SeededWorkersTests(unittest.SynchronousTestCase):
    """
    Workers on an empty database with C{seed_ldif}.
    """

    def test_seededOnce(self) -> None:
        """
        The supervisor loads the seed data once, before it starts the
        workers: no worker seeds it (or fails to, having lost the race),
        and each one finds it there.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-workers-"))
        self.addCleanup(shutil.rmtree, folder, True)
        config = CONFIG % f"sqlite:///{folder}/seeded.db" + 'seed_ldif = "{example_ldif}"\n'
        server = ServerProcess(config, folder)
        server.start()
        self.addCleanup(server.stop)
        deadline = time.monotonic() + DEADLINE
        while len(serving(server)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(serving(server), {"1", "2"})
        loaded = re.findall(r"\[([^\]]*)\] loaded \d+ entries into dc=example,dc=com", server.log())
        self.assertEqual(len(loaded), 1, server.log())
        self.assertNotIn("worker=", loaded[0])
        self.assertNotIn(") ended", server.log())
        for _ in range(4):
            with connect(server) as conn:
                conn.search("dc=example,dc=com", "(uid=alice)", attributes=["uid"])
                self.assertEqual(len(conn.entries), 1)


class WorkersConfigTests(unittest.SynchronousTestCase):
    """
    C{[server] workers} in the configuration.
    """

    def load(self, workers: str, backend: str) -> None:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-workers-config-"))
        self.addCleanup(shutil.rmtree, folder, True)
        url = f'url = "sqlite:///{folder}/x.db"\n' if backend == "sql" else ""
        path = folder / "ldapd.toml"
        path.write_text(
            f'[server]\nlisten = ["tcp:0"]\nworkers = {workers}\n[[database]]\n'
            f'suffix = "dc=example,dc=com"\nbackend = "{backend}"\n{url}')
        loadConfig(path)

    def test_memoryRefused(self) -> None:
        """
        More than one worker over a memory database is refused: each process
        would hold a copy of its own.
        """
        e = self.assertRaises(ConfigError, self.load, "2", "memory")
        self.assertIn("server.workers", str(e))
        self.assertIn("database[0]", str(e))
        self.assertIn("memory", str(e))

    def test_notPositive(self) -> None:
        """
        C{workers} must be a positive integer.
        """
        for value in ("0", "-1", '"two"'):
            e = self.assertRaises(ConfigError, self.load, value, "sql")
            self.assertIn("server.workers", str(e))

    def test_cpuAffinityBoolean(self) -> None:
        """
        C{cpu_affinity} is true or false.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-workers-config-"))
        self.addCleanup(shutil.rmtree, folder, True)
        path = folder / "ldapd.toml"
        path.write_text('[server]\nlisten = ["tcp:0"]\ncpu_affinity = 1\n[[database]]\n'
                        'suffix = "dc=example,dc=com"\nbackend = "memory"\n')
        e = self.assertRaises(ConfigError, loadConfig, path)
        self.assertIn("server.cpu_affinity", str(e))

    def test_accepted(self) -> None:
        """
        One worker over memory, and several over sql, are accepted.
        """
        self.load("1", "memory")
        self.load("3", "sql")


class CPUForTests(unittest.SynchronousTestCase):
    """
    L{cpuFor} gives the workers the allowed CPUs in turn.
    """

    def test_inTurn(self) -> None:
        """
        Worker N takes the Nth allowed CPU in order, starting again when
        there are more workers than CPUs.
        """
        self.assertEqual([cpuFor(n, {5, 2, 9}) for n in range(1, 6)], [2, 5, 9, 2, 5])
        self.assertEqual(cpuFor(1, [0]), 0)


class AcceptOneAtATimeTests(unittest.TestCase):
    """
    A worker's adopted listener takes one waiting connection each time the
    reactor wakes it, leaving the others to the other workers.
    """

    def test_onePerRead(self) -> Any:
        """
        Three connections waiting are taken by three wake-ups, not by one.
        """
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        clients = []
        for _ in range(3):
            client = socket.create_connection(listener.getsockname())
            self.addCleanup(client.close)
            clients.append(client)
        built: list[protocol.Protocol] = []

        class Recording(protocol.Factory):
            def buildProtocol(self, addr: Any) -> protocol.Protocol:
                built.append(protocol.Protocol())
                return built[-1]

        listener.setblocking(False)  # as the supervisor's listeners are
        endpoint = AdoptedEndpoint(reactor, os.dup(listener.fileno()), socket.AF_INET)
        listener.close()
        d = endpoint.listen(Recording())

        def _cbListening(port: Any) -> Any:
            port.stopReading()
            counts = []
            for _ in range(3):
                port.doRead()
                counts.append(len(built))
            for accepted in built:
                accepted.transport.abortConnection()  # type: ignore[union-attr]
            stopped = port.stopListening()
            return stopped.addCallback(lambda _: self.assertEqual(counts, [1, 2, 3]))

        return d.addCallback(_cbListening)
