"""
Tests for running ldapd under systemd: L{ldapd.systemd}'s notifications on a
real Unix datagram socket, the server's readiness and socket activation
through C{systemd:} listeners, and the units in C{contrib/}.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from twisted.trial import unittest

from ldapd.systemd import notify
from ldapd.testing import SOURCE_ROOT, ServerProcess, childEnvironment, exampleConfig, freePort

CONTRIB = SOURCE_ROOT / "contrib"


def systemdConfig() -> str:
    """
    @return: the example configuration as a L{ServerProcess} template, on
        the first socket systemd passes (as C{contrib/ldapd.service} runs).
    """
    return exampleConfig().replace('listen = ["tcp:{port}:interface=127.0.0.1"]',
                                   'listen = ["systemd:domain=INET:index=0"]')


class _Listener:
    """
    A Unix datagram socket standing for systemd's notification socket.
    """

    def __init__(self, address: str) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(address)
        self.socket.settimeout(60)

    def receive(self) -> bytes:
        return self.socket.recv(4096)

    def close(self) -> None:
        self.socket.close()


class NotifyTests(unittest.SynchronousTestCase):
    """
    L{notify} sends one datagram to C{$NOTIFY_SOCKET}.
    """

    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ldapd-notify-"))
        self.addCleanup(shutil.rmtree, self.folder)

    def test_path(self) -> None:
        """
        A socket named by its path gets the state as sent.
        """
        path = str(self.folder / "notify")
        listener = _Listener(path)
        self.addCleanup(listener.close)
        self.assertTrue(notify("READY=1\nSTATUS=serving", {"NOTIFY_SOCKET": path}))
        self.assertEqual(listener.receive(), b"READY=1\nSTATUS=serving")

    def test_abstract(self) -> None:
        """
        A name beginning with C{@} is in the abstract namespace.
        """
        name = f"ldapd-test-{os.getpid()}-{id(self)}"
        listener = _Listener("\0" + name)
        self.addCleanup(listener.close)
        self.assertTrue(notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name}))
        self.assertEqual(listener.receive(), b"STOPPING=1")

    def test_absent(self) -> None:
        """
        Without C{$NOTIFY_SOCKET} (not under systemd), or with an address of
        a kind it does not speak, nothing is sent.
        """
        self.assertFalse(notify("READY=1", {}))
        self.assertFalse(notify("READY=1", {"NOTIFY_SOCKET": "vsock:2:1234"}))

    def test_unreachable(self) -> None:
        """
        A socket that is not there is logged, not raised.
        """
        self.assertFalse(notify("READY=1", {"NOTIFY_SOCKET": str(self.folder / "missing")}))


@pytest.mark.integration
class ReadinessTests(unittest.SynchronousTestCase):
    """
    C{twist ldapd} says C{READY=1} once it serves and C{STOPPING=1} when it
    stops.
    """

    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ldapd-notify-"))
        self.addCleanup(shutil.rmtree, self.folder)
        self.listener = _Listener(str(self.folder / "notify"))
        self.addCleanup(self.listener.close)

    def ldapsearch(self, port: int) -> str:
        return subprocess.run(
            ["ldapsearch", "-x", "-LLL", "-H", f"ldap://127.0.0.1:{port}", "-b",
             "dc=example,dc=com", "-s", "base", "dn"],
            capture_output=True, text=True, timeout=60, check=True).stdout

    def test_socketActivation(self) -> None:
        """
        Started as systemd starts it from C{contrib/ldapd.socket} (by
        C{systemd-socket-activate}, which binds the socket and passes it in
        C{$LISTEN_FDS}, named in C{$LISTEN_FDNAMES} as systemd names a socket
        unit's), on the listener C{systemd:domain=INET:index=0}, the
        server says it is ready, answers on that socket, and says it is
        stopping on SIGTERM.
        """
        activate = shutil.which("systemd-socket-activate")
        if activate is None:
            raise unittest.SkipTest("systemd-socket-activate (Debian: systemd) is not installed")
        port = freePort()
        server = ServerProcess(systemdConfig(), self.folder)
        env = childEnvironment()
        env["NOTIFY_SOCKET"] = str(self.folder / "notify")
        with open(server.logPath, "wb") as log:
            process = subprocess.Popen(
                [activate, "-l", f"127.0.0.1:{port}", "--fdname=ldapd.socket",
                 "-E", "PYTHONPATH", "-E", "NOTIFY_SOCKET", sys.executable, "-m", "twisted",
                 "--log-format", "text", "ldapd", "--config", str(server.configPath)],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        self.addCleanup(self._stop, process)
        # systemd-socket-activate binds the socket soon after it starts; the
        # first connection then starts the server, and ldapsearch waits for it.
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        self.assertEqual(self.ldapsearch(port), "dn: dc=example,dc=com\n\n")
        self.assertEqual(self.listener.receive(), b"READY=1", server.log())
        process.send_signal(signal.SIGTERM)
        self.assertEqual(self.listener.receive(), b"STOPPING=1", server.log())
        # twist ends by the signal it was stopped with, once it has stopped,
        # which systemd counts as a clean stop.
        self.assertEqual(process.wait(60), -signal.SIGTERM, server.log())

    def startNotifying(self, server: ServerProcess) -> None:
        """
        Start C{server} with C{$NOTIFY_SOCKET} naming the test's socket.
        """
        self.patch(os, "environ", {**os.environ, "NOTIFY_SOCKET": str(self.folder / "notify")})
        server.start()
        self.addCleanup(server.stop)

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.kill()
            process.wait()

    def test_readyOnceServing(self) -> None:
        """
        On its own listeners, the server says C{READY=1} after it logged
        that it serves (its databases are open).
        """
        server = ServerProcess(exampleConfig(), self.folder)
        self.startNotifying(server)
        self.assertEqual(self.listener.receive(), b"READY=1")
        # The log is written once per reactor iteration: the line may reach
        # the file just after the notification.
        serving = "ldapd serving ['dc=example,dc=com']"
        self.assertIn(serving, server.log(containing=serving))
        self.ldapsearch(server.port)

    def test_workers(self) -> None:
        """
        With C{workers = 2}, the supervising process says C{READY=1} once,
        when it has started the workers, and C{STOPPING=1} when it stops;
        the workers say nothing (systemd listens to the main process only).
        """
        server = ServerProcess(
            '[server]\nlisten = ["tcp:{port}:interface=127.0.0.1"]\nworkers = 2\n\n'
            '[[database]]\nsuffix = "dc=example,dc=com"\nbackend = "sql"\n'
            'url = "sqlite:///shared.db"\nseed_ldif = "{example_ldif}"\n', self.folder)
        self.startNotifying(server)
        self.assertEqual(self.listener.receive(), b"READY=1")
        deadline = time.monotonic() + 30
        while server.log().count("] ldapd serving ") < 2:
            self.assertLess(time.monotonic(), deadline, server.log())
            time.sleep(0.1)
        # A worker notifies, if at all, as it logs that it serves.
        self.listener.socket.setblocking(False)
        self.assertRaises(BlockingIOError, self.listener.receive)
        server.stop()
        self.assertEqual(self.listener.receive(), b"STOPPING=1")
        self.assertRaises(BlockingIOError, self.listener.receive)


class NoSocketTests(unittest.SynchronousTestCase):
    """
    A C{systemd:} listener outside systemd.
    """

    def test_configuration(self) -> None:
        """
        The configuration is valid (so that C{ldapd-admin check-config}
        checks a socket-activated server's configuration anywhere).
        """
        from twisted.internet import task

        from ldapd.config import buildConfig

        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        self.patch(os, "environ", env)
        config = buildConfig({"server": {"listen": ["systemd:domain=INET:index=0"]},
                              "database": [{"suffix": "dc=example,dc=com"}]},
                             Path("ldapd.toml"), task.Clock())
        self.assertEqual(config.listen, ["systemd:domain=INET:index=0"])

    @pytest.mark.integration
    def test_server(self) -> None:
        """
        The server, not given the socket, stops at once with one line
        naming the listener, as for a port it cannot have.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-nosocket-"))
        self.addCleanup(shutil.rmtree, folder)
        server = ServerProcess(systemdConfig(), folder)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        self.patch(os, "environ", env)
        with self.assertRaises(RuntimeError) as caught:
            server.start()
        self.assertIn("exited with 1", str(caught.exception))
        self.assertIn("ldapd: cannot listen on systemd:domain=INET:index=0: systemd passed no "
                      "such socket (is the server started by its socket unit?)", server.log())


class UnitTests(unittest.SynchronousTestCase):
    """
    The units in C{contrib/} are valid for systemd.
    """

    def test_verify(self) -> None:
        """
        C{systemd-analyze verify} finds nothing to say about the service and
        socket units: no unknown key, no bad value. It checks that
        C{ExecStart}'s program exists, so they are verified as installed
        with C{/opt/ldapd} pointing at this environment's C{twist}.
        """
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            raise unittest.SkipTest("systemd-analyze (Debian: systemd) is not installed")
        twist = Path(sys.executable).parent / "twist"
        if not twist.exists():
            raise unittest.SkipTest(f"no {twist} to run the units with")
        folder = Path(tempfile.mkdtemp(prefix="ldapd-units-"))
        self.addCleanup(shutil.rmtree, folder)
        for name in ("ldapd.service", "ldapd.socket"):
            text = (CONTRIB / name).read_text()
            (folder / name).write_text(text.replace("/opt/ldapd/bin/twist", str(twist)))
        self.assertIn("/opt/ldapd/bin/twist", (CONTRIB / "ldapd.service").read_text())
        result = subprocess.run(
            [analyze, "verify", str(folder / "ldapd.service"), str(folder / "ldapd.socket")],
            capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))

    def test_hardening(self) -> None:
        """
        The service runs as its own user, notifies readiness, writes only
        its state directory and gains no privileges.
        """
        text = (CONTRIB / "ldapd.service").read_text()
        for line in ("Type=notify", "User=ldapd", "ProtectSystem=strict", "NoNewPrivileges=true",
                     "PrivateTmp=true", "StateDirectory=ldapd"):
            self.assertIn(f"\n{line}\n", text)
        self.assertIn("\nListenStream=", (CONTRIB / "ldapd.socket").read_text())
