"""
Tests of C{[server] workers = N}: the real C{twist ldapd} running two worker
processes on one SQLite file and on one PostgreSQL schema, with real
clients (ldapsearch, ldap3), a worker killed by PID, a clean stop, the
configurations that are refused, and the placement of connections on the
worker with the fewest (L{ldapd.balancing}).
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
from ldap3.core.exceptions import LDAPException
from twisted.internet import protocol
from twisted.trial import unittest

from ldapd.balancing import (
    ACCEPTING,
    CLOSED,
    PAUSED,
    ConnectionBalancer,
    WorkerChannel,
    channelPair,
)
from ldapd.config import loadConfig
from ldapd.registry import ConfigError
from ldapd.testing import ServerProcess, privatePostgreSQLSchema
from ldapd.workers import cpuFor

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


def currentConnections(conn: Connection) -> int:
    """
    @return: the connections open on the worker that serves C{conn}, as its
        C{cn=Monitor} counts them (C{conn} included).
    """
    conn.search("cn=Current,cn=Connections,cn=Monitor", "(objectClass=*)", BASE,
                attributes=["monitorCounter"])
    return int(conn.entries[0].monitorCounter.value)  # type: ignore[attr-defined]


class BalancingTests(unittest.SynchronousTestCase):
    """
    The real server with two workers hands each new connection to the
    worker that holds the fewest, also after one of them was killed and
    started again. Each connection reads, in C{cn=Monitor}, how many its
    own worker holds.
    """

    def setUp(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-balancing-"))
        self.addCleanup(shutil.rmtree, folder, True)
        config = CONFIG % f"sqlite:///{folder}/balanced.db" + '\n[[plugin]]\nname = "monitor"\n'
        self.server = ServerProcess(config, folder)
        self.server.start()
        self.addCleanup(self.server.stop)
        for number in (1, 2):
            self.server.log(f"[ldapd.tap.LDAPService#info worker={number}] ldapd serving",
                            timeout=DEADLINE)
        # start() connected once, to see the port accept. The worker that
        # was handed that connection reported its end before it logged it,
        # and the supervisor reads every report sent before it places a
        # connection: from this line on, it counts no connection open.
        self.server.log(" closed\n", timeout=DEADLINE)
        self.connections: list[Connection] = []
        self.addCleanup(self.closeAll)

    def closeAll(self) -> None:
        for conn in self.connections:
            try:
                conn.unbind()
            except LDAPException:
                pass

    def openConnections(self, count: int) -> list[Connection]:
        """
        @return: C{count} new connections, opened one after the other, each
            bound (so handed to its worker) before the next is opened.
        """
        opened = [connect(self.server) for _ in range(count)]
        self.connections.extend(opened)
        return opened

    def test_spreadEvenly(self) -> None:
        """
        Eight connections opened one after the other land four on each
        worker: on each of them, its worker counts four open.
        """
        opened = self.openConnections(8)
        self.assertEqual([currentConnections(conn) for conn in opened], [4] * 8)

    def test_restartedWorkerTakesNext(self) -> None:
        """
        When a worker holding four connections is killed, those four end
        and the other worker's four go on; the worker started in its place
        takes the next four, since it holds fewer: every connection that
        still works finds four on its worker.
        """
        self.openConnections(8)
        pid = workerPIDs(self.server)[1]
        os.kill(pid, signal.SIGKILL)
        self.server.log(f"worker 1 (pid {pid}) ended", timeout=DEADLINE)
        self.server.log("[ldapd.tap.LDAPService#info worker=1] ldapd serving", timeout=DEADLINE,
                        count=2)
        self.openConnections(4)
        counts = []
        ended = 0
        for conn in self.connections:
            try:
                counts.append(currentConnections(conn))
            except LDAPException:
                ended += 1
        self.assertEqual((ended, counts), (4, [4] * 8))


class _FakeFDReactor:
    """
    The readers a L{ConnectionBalancer} or a L{WorkerChannel} registers,
    read by the test, and the connections a channel adopts.
    """

    def __init__(self) -> None:
        self.readers: list[Any] = []
        self.adopted: list[tuple[int, Any]] = []

    def adoptStreamConnection(self, fileDescriptor: int, addressFamily: int,
                              factory: protocol.Factory) -> None:
        os.fstat(fileDescriptor)  # open while the reactor takes its copy
        self.adopted.append((addressFamily, factory))

    def addReader(self, reader: Any) -> None:
        self.readers.append(reader)

    def removeReader(self, reader: Any) -> None:
        if reader in self.readers:
            self.readers.remove(reader)


class _ListeningPort:
    """
    A listening port as the balancer uses it: its socket.
    """

    def __init__(self, testCase: unittest.SynchronousTestCase) -> None:
        self.socket = socket.socket()
        testCase.addCleanup(self.socket.close)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.socket.setblocking(False)


class ConnectionBalancerTests(unittest.SynchronousTestCase):
    """
    L{ConnectionBalancer} with real listening sockets, real connections and
    real channels, driven by hand in place of a reactor.
    """

    def setUp(self) -> None:
        self.reactor = _FakeFDReactor()
        self.balancer = ConnectionBalancer(self.reactor)
        self.ports = {"tcp:a": _ListeningPort(self), "tcp:b": _ListeningPort(self)}
        self.balancer.listen(self.ports.items())
        self.addCleanup(self.balancer.close)

    def worker(self, number: int, listen: tuple[str, ...] = ("tcp:a",)) -> socket.socket:
        """
        @return: the worker's end of the channel of a new worker, which
            has said it takes connections.
        """
        ours, theirs = channelPair()
        self.addCleanup(theirs.close)
        self.balancer.add(number, ours, listen)
        theirs.send(ACCEPTING)
        self.pump()
        return theirs

    def pump(self) -> None:
        """
        Read what the workers reported, as the reactor would.
        """
        for reader in list(self.reactor.readers):
            if hasattr(reader, "hand"):
                reader.doRead()

    def connect(self, description: str = "tcp:a") -> None:
        """
        Open a connection to a listener and let the balancer accept it.
        """
        port = self.ports[description]
        client = socket.create_connection(port.socket.getsockname())
        self.addCleanup(client.close)
        for reader in list(self.reactor.readers):
            if getattr(reader, "port", None) is port:
                reader.doRead()

    def received(self, channel: socket.socket) -> list[int]:
        """
        @return: the listener index of each connection handed over
            C{channel} so far.
        """
        channel.setblocking(False)
        indexes = []
        while True:
            try:
                header, fds, _, _ = socket.recv_fds(channel, 2, 1)
            except BlockingIOError:
                return indexes
            self.assertEqual(len(fds), 1)
            os.close(fds[0])
            indexes.append(int.from_bytes(header, "big"))

    def test_fewestFirst(self) -> None:
        """
        Each connection goes to the worker with the fewest open, the lower
        number among equals; closes reported before a connection arrives
        count for its placement.
        """
        one, two = self.worker(1), self.worker(2)
        for _ in range(5):
            self.connect()
        self.assertEqual(self.balancer.connections(), {1: 3, 2: 2})
        one.send(CLOSED)
        one.send(CLOSED)
        self.connect()
        self.connect()
        self.assertEqual(self.balancer.connections(), {1: 3, 2: 2})
        self.assertEqual((len(self.received(one)), len(self.received(two))), (5, 2))

    def test_acceptOnlyWhileAWorkerTakes(self) -> None:
        """
        A listener is read only while some worker that serves it takes
        connections: before, and while it pauses, they wait in the backlog.
        """

        def acceptors() -> list[str]:
            return sorted(r.description for r in self.reactor.readers if hasattr(r, "port"))

        self.assertEqual(acceptors(), [])
        one = self.worker(1)
        self.assertEqual(acceptors(), ["tcp:a"])
        one.send(PAUSED)
        self.pump()
        self.assertEqual(acceptors(), [])
        self.worker(2, ("tcp:b", "tcp:a"))
        self.assertEqual(acceptors(), ["tcp:a", "tcp:b"])

    def test_listenerIndexOfTheWorker(self) -> None:
        """
        A connection is handed with its listener's index in the receiving
        worker's own listeners, and only to workers that have it.
        """
        one, two = self.worker(1), self.worker(2, ("tcp:b", "tcp:a"))
        self.connect("tcp:b")
        self.connect("tcp:b")
        self.connect("tcp:a")
        self.assertEqual((self.received(one), self.received(two)), ([0], [0, 0]))

    def test_workerGone(self) -> None:
        """
        A worker whose channel closed (it ended) gets no more connections,
        and is no longer counted.
        """
        one, two = self.worker(1), self.worker(2)
        one.close()
        self.connect()
        self.connect()
        self.assertEqual(self.balancer.connections(), {2: 2})
        self.assertEqual(len(self.received(two)), 2)


class _Recording(protocol.Factory):
    """
    A listener's factory that builds plain protocols, or none when told to
    refuse.
    """

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse

    def buildProtocol(self, addr: Any) -> protocol.Protocol | None:
        return None if self.refuse else protocol.Protocol()


class WorkerChannelTests(unittest.SynchronousTestCase):
    """
    L{WorkerChannel}, the worker's end, with a real channel and real
    connections, driven by hand in place of a reactor.
    """

    def setUp(self) -> None:
        self.reactor = _FakeFDReactor()
        ours, theirs = channelPair()
        self.supervisor = ours
        self.addCleanup(ours.close)
        self.channel = WorkerChannel(self.reactor, theirs.detach())
        self.listener = _ListeningPort(self)

    def listen(self, index: int, factory: protocol.Factory) -> Any:
        """
        @return: the port of listener C{index}, listening with C{factory}.
        """
        return self.successResultOf(self.channel.endpoint(index).listen(factory))

    def hand(self, index: int) -> None:
        """
        Hand the channel a real connection from listener C{index}, as the
        supervisor does, and let it read.
        """
        client = socket.create_connection(self.listener.socket.getsockname())
        self.addCleanup(client.close)
        self.listener.socket.setblocking(True)
        accepted, _ = self.listener.socket.accept()
        with accepted:
            socket.send_fds(self.supervisor, [index.to_bytes(2, "big")], [accepted.fileno()])
        self.channel.doRead()

    def reports(self) -> bytes:
        """
        @return: what the worker reported to the supervisor so far.
        """
        received = b""
        while True:
            try:
                received += self.supervisor.recv(16)
            except BlockingIOError:
                return received

    def test_acceptingWhileReading(self) -> None:
        """
        The channel is read, and the supervisor told the worker takes
        connections, while one of its listeners reads; when none does, or
        the last stops listening, it says so, or closes the channel.
        """
        first, second = self.listen(0, _Recording()), self.listen(1, _Recording())
        self.assertEqual((self.reports(), self.reactor.readers), (b"", []))
        first.startReading()
        second.startReading()
        self.assertEqual((self.reports(), self.reactor.readers), (ACCEPTING, [self.channel]))
        first.stopReading()
        second.stopReading()
        self.assertEqual((self.reports(), self.reactor.readers), (PAUSED, []))
        first.stopListening()
        second.stopListening()
        self.assertEqual(self.supervisor.recv(16), b"")

    def test_servedAndReportedClosed(self) -> None:
        """
        A handed connection is served with its listener's factory; its end
        is reported to the supervisor.
        """
        self.listen(0, _Recording()).startReading()
        self.reports()
        self.hand(0)
        [(family, factory)] = self.reactor.adopted
        self.assertEqual(family, socket.AF_INET)
        built = factory.buildProtocol(None)
        self.assertEqual(self.reports(), b"")
        built.connectionLost(protocol.connectionDone)
        self.assertEqual(self.reports(), CLOSED)

    def test_notServedReportedClosed(self) -> None:
        """
        A connection for a listener that does not read, or that its factory
        refuses, is closed and reported closed at once.
        """
        self.listen(0, _Recording()).startReading()
        self.listen(1, _Recording())
        self.reports()
        self.hand(1)
        self.hand(7)
        self.assertEqual((self.reactor.adopted, self.reports()), ([], CLOSED * 2))
        self.listen(2, _Recording(refuse=True)).startReading()
        self.hand(2)
        [(_, factory)] = self.reactor.adopted
        self.assertIsNone(factory.buildProtocol(None))
        self.assertEqual(self.reports(), CLOSED)
