"""
Tests of reloading the configuration of the real C{twist ldapd}: the TOML
file edited, the server sent SIGHUP (or C{ldapd-admin reload}), and what
clients see checked with ldapsearch and ldap3; with one process, and with
C{[server] workers = 2}.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ldap3 import Connection, Server
from twisted.trial import unittest

from ldapd.testing import EXAMPLE_LDIF, ServerProcess, childEnvironment, freePort

pytestmark = pytest.mark.integration

SUFFIX = "dc=example,dc=com"
ROOT_DN = "cn=admin,dc=example,dc=com"

#: The server's configuration; the C{@...@} parts are filled in by L{render}.
TEMPLATE = """
[server]
listen = @listen@
size_limit = @size_limit@
pid_file = "ldapd.pid"
@server@

[[database]]
suffix = "@suffix@"
@backend@
root_dn = "cn=admin,@suffix@"
root_password = "secret"
seed_ldif = "%s"

[[plugin]]
name = "acl"
rules = @rules@
""" % EXAMPLE_LDIF

#: Every entry of the example organisation, read by anyone.
OPEN = "['to * by * read']"

#: Only bound users read.
CLOSED = "['to * by users read']"

#: Seconds a test waits for the server to log the outcome of a reload.
DEADLINE = 30.0


def render(port: int | str, listen: tuple[str, ...] = (), size_limit: int = 500, rules: str = OPEN,
           suffix: str = SUFFIX, backend: str = 'backend = "memory"', server: str = "") -> str:
    """
    @param port: the port of the first listener (C{"{port}"} for the one
        L{ServerProcess} chooses).
    @param listen: further listeners.
    @return: the configuration with these settings.
    """
    listeners = [f"tcp:{port}:interface=127.0.0.1", *listen]
    values = {"listen": repr(listeners).replace("'", '"'), "size_limit": str(size_limit),
              "rules": rules, "suffix": suffix, "backend": backend, "server": server}
    text = TEMPLATE
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def ldapsearch(url: str, *args: str) -> tuple[int, list[str]]:
    """
    Search the whole organisation anonymously, or as C{args} say.

    @return: ldapsearch's exit status (the result code, or 255 when it
        cannot connect) and the DNs it printed.
    """
    done = subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-o", "nettimeout=10", "-H", url, "-b", SUFFIX, *args,
         "(objectClass=*)", "1.1"],
        capture_output=True, text=True, timeout=60)
    return done.returncode, [line[4:] for line in done.stdout.splitlines()
                             if line.startswith("dn: ")]


class ReloadServerMixin:
    """
    A server per test, started from L{render}'s configuration, and the
    means to edit it, signal it and wait for what it logs.
    """

    backend = 'backend = "memory"'
    server = ""

    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ldapd-reload-"))
        self.addCleanup(shutil.rmtree, self.folder, True)  # type: ignore[attr-defined]
        self.process = ServerProcess(self.render(), self.folder)
        self.process.start()
        self.addCleanup(self.process.stop)  # type: ignore[attr-defined]
        self.started()

    def started(self) -> None:
        """
        Wait until the server serves, once started.
        """

    def render(self, **settings: object) -> str:
        """
        @return: the configuration with C{settings} (see L{render}); the
            first listener on the server's port.
        """
        process = getattr(self, "process", None)
        port = process.port if process is not None else "{port}"
        settings.setdefault("backend", self.backend)
        settings.setdefault("server", self.server)
        text = render(port, **settings)  # type: ignore[arg-type]
        return text

    def edit(self, **settings: object) -> None:
        """
        Write the configuration file with C{settings}.
        """
        self.process.configPath.write_text(self.render(**settings))

    def reloadLines(self) -> list[str]:
        """
        @return: the lines the server has logged about reloads.
        """
        return [line for line in self.process.log().splitlines() if "] reload: " in line]

    def hangUp(self, lines: int = 1) -> list[str]:
        """
        Send the server SIGHUP and wait until it has logged C{lines} more
        lines about reloading.

        @return: the new lines.
        """
        before = len(self.reloadLines())
        assert self.process.process is not None
        self.process.process.send_signal(signal.SIGHUP)
        return self.waitForReloadLines(before + lines)[before:]

    def waitForReloadLines(self, count: int) -> list[str]:
        """
        @return: the reload lines, once there are C{count}.
        """
        deadline = time.monotonic() + DEADLINE
        while len(self.reloadLines()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not log {count} reload lines:\n"
                                     + self.process.log())
            time.sleep(0.05)
        return self.reloadLines()


class ReloadTests(ReloadServerMixin, unittest.SynchronousTestCase):
    """
    One server process reloads on SIGHUP and on C{ldapd-admin reload}.
    """

    def test_sizeLimitAndRules(self) -> None:
        """
        A new C{size_limit} and new access rules apply to the searches made
        after the reload: an anonymous search is cut at the new limit
        (sizeLimitExceeded, 4), then sees nothing once only users may read.
        """
        url = self.process.url
        status, dns = ldapsearch(url)
        self.assertEqual(status, 0)
        self.assertGreater(len(dns), 5)
        self.edit(size_limit=5)
        [line] = self.hangUp()
        self.assertIn(f"reload: {self.process.configPath} applied", line)
        status, dns = ldapsearch(url)
        self.assertEqual((status, len(dns)), (4, 5))
        self.edit(size_limit=5, rules=CLOSED)
        self.hangUp()
        status, dns = ldapsearch(url)
        self.assertEqual(dns, [])
        status, dns = ldapsearch(url, "-D", ROOT_DN, "-w", "secret")
        self.assertEqual(status, 0)
        self.assertGreater(len(dns), 5)

    def test_invalid(self) -> None:
        """
        A file that does not validate changes nothing, and the server logs
        one line naming the file, the key and the problem.
        """
        self.edit(size_limit=5)
        path = self.process.configPath
        path.write_text(path.read_text().replace("size_limit = 5", 'size_limit = "many"'))
        [line] = self.hangUp()
        self.assertIn(f"reload: {path}: server.size_limit: ", line)
        self.assertTrue(line.endswith("; nothing changed"), line)
        status, dns = ldapsearch(self.process.url)
        self.assertEqual(status, 0)
        self.assertGreater(len(dns), 5)
        self.assertEqual(len(self.reloadLines()), 1)

    def test_suffixNeedsRestart(self) -> None:
        """
        A changed suffix is refused as needing a restart, in one line, and
        nothing changes: neither the suffix nor the size limit edited with it.
        """
        self.edit(size_limit=5, suffix="dc=example,dc=org")
        [line] = self.hangUp()
        self.assertIn(f"reload: {self.process.configPath}: database[0].suffix: cannot change "
                      "without a restart (was 'dc=example,dc=com', now 'dc=example,dc=org')",
                      line)
        status, dns = ldapsearch(self.process.url)
        self.assertEqual(status, 0)
        self.assertGreater(len(dns), 5)

    def test_listenerAddedThenRemoved(self) -> None:
        """
        A listener added is served once the server reloads (ldap3 and
        ldapsearch reach it), and no longer once it is removed again; the
        first listener serves throughout.
        """
        port = freePort()
        self.edit(listen=(f"tcp:{port}:interface=127.0.0.1",))
        self.hangUp()
        url = f"ldap://127.0.0.1:{port}"
        with Connection(Server(url, connect_timeout=5), ROOT_DN, "secret",
                        auto_bind=True, receive_timeout=10) as conn:
            self.assertTrue(conn.search(SUFFIX, "(objectClass=*)", attributes=["1.1"]))
        self.assertEqual(ldapsearch(url)[0], 0)
        self.edit()
        self.hangUp()
        self.assertEqual(ldapsearch(url)[0], 255)
        self.assertEqual(ldapsearch(self.process.url)[0], 0)

    def test_admin(self) -> None:
        """
        C{ldapd-admin reload CONFIG} finds the server by its pid file and
        has it reload; the file is removed when the server stops.
        """
        pidFile = self.folder / "ldapd.pid"
        assert self.process.process is not None
        self.assertEqual(pidFile.read_text().strip(), str(self.process.process.pid))
        self.edit(size_limit=3)
        done = subprocess.run([sys.executable, "-m", "ldapd.admin", "reload",
                               str(self.process.configPath)],
                              capture_output=True, text=True, timeout=60, env=childEnvironment())
        self.assertEqual(done.returncode, 0, done.stderr)
        self.waitForReloadLines(1)
        status, dns = ldapsearch(self.process.url)
        self.assertEqual((status, len(dns)), (4, 3))
        self.process.stop()
        self.assertFalse(pidFile.exists())


def serving(process: ServerProcess) -> set[str]:
    """
    @return: the numbers of the workers that have logged that they serve.
    """
    return set(re.findall(r"#info worker=(\d+)\] ldapd serving", process.log()))


class WorkersReloadTests(ReloadServerMixin, unittest.SynchronousTestCase):
    """
    With C{workers = 2}, the parent checks the file and every worker
    reloads; a change of listeners replaces the workers.
    """

    backend = 'backend = "sql"\nurl = "sqlite:///example.db"'
    server = "workers = 2"

    def started(self) -> None:
        deadline = time.monotonic() + DEADLINE
        while len(serving(self.process)) < 2:
            if time.monotonic() > deadline:
                raise AssertionError("the workers did not start:\n" + self.process.log())
            time.sleep(0.1)

    def test_everyWorkerReloads(self) -> None:
        """
        Both workers log that they applied the file, and every new
        connection, whichever worker accepts it, gets the new size limit.
        """
        self.edit(size_limit=4)
        lines = self.hangUp(2)
        self.assertEqual(
            sorted(re.findall(r"worker=(\d+)\] reload: .* applied", "\n".join(lines))),
            ["1", "2"])
        for _ in range(6):
            status, dns = ldapsearch(self.process.url)
            self.assertEqual((status, len(dns)), (4, 4))

    def test_invalidLoggedOnce(self) -> None:
        """
        A file that does not validate is refused by the parent in one line;
        no worker is signalled: the next valid file is the first the
        workers log about.
        """
        path = self.process.configPath
        path.write_text(path.read_text().replace("size_limit = 500", "size_limit = -3"))
        [line] = self.hangUp()
        self.assertIn(f"reload: {path}: server.size_limit: must not be negative", line)
        self.assertNotIn("worker=", line)
        self.assertEqual(ldapsearch(self.process.url)[0], 0)
        self.edit(size_limit=4)
        lines = self.hangUp(2)
        self.assertEqual(len(self.reloadLines()), 3)
        self.assertTrue(all(line.endswith(" applied") for line in lines), lines)

    def test_listenerAdded(self) -> None:
        """
        A listener added is bound by the parent, and the workers, replaced
        one at a time, serve it.
        """
        port = freePort()
        self.edit(listen=(f"tcp:{port}:interface=127.0.0.1",))
        self.hangUp()
        deadline = time.monotonic() + DEADLINE
        while len(re.findall(r"started worker \d", self.process.log())) < 4:
            if time.monotonic() > deadline:
                raise AssertionError("the workers were not replaced:\n" + self.process.log())
            time.sleep(0.1)
        self.assertEqual(ldapsearch(f"ldap://127.0.0.1:{port}")[0], 0)
        self.assertEqual(ldapsearch(self.process.url)[0], 0)
