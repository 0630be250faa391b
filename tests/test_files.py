"""
Tests for L{ldapd._files} and the modes of the files the server writes
(issue 15, "file modes"): the SQLite database with its WAL and shared-memory
files, the audit log and C{ldapd-admin export} output are created readable
by their owner only, and a configuration holding a root password that every
local user may read is warned about.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from twisted.logger import LogLevel, capturedLogs
from twisted.trial import unittest

from ldapd._files import createPrivate, openPrivate, warnIfReadable
from ldapd.testing import SLAPD, ServerProcess, SlapdProcess, exampleConfig
from test_admin import admin, sqlConfig


def _mode(path: Path) -> int:
    """
    @return: the permission bits of C{path}.
    """
    return stat.S_IMODE(os.stat(path).st_mode)


class _Umask:
    """
    Run with a permissive umask (022, a common default), under which a
    file created with the default mode 0666 would be 0644.
    """

    def setUp(self) -> None:
        previous = os.umask(0o022)
        self.addCleanup(os.umask, previous)  # type: ignore[attr-defined]
        self.folder = Path(tempfile.mkdtemp(prefix="ldapd-files-"))
        self.addCleanup(shutil.rmtree, self.folder)  # type: ignore[attr-defined]


class PrivateFileTests(_Umask, unittest.SynchronousTestCase):
    """
    Tests for L{openPrivate}, L{createPrivate} and L{warnIfReadable}.
    """

    def test_openPrivateCreates0600(self) -> None:
        """
        A new file is created with mode 0600, truncating or appending.
        """
        for append in (False, True):
            path = self.folder / f"new-{append}"
            with openPrivate(path, append=append) as f:
                f.write(b"x")
            self.assertEqual(_mode(path), 0o600)
            self.assertEqual(path.read_bytes(), b"x")

    def test_openPrivateKeepsMode(self) -> None:
        """
        An existing file keeps its mode; appending keeps its content.
        """
        path = self.folder / "kept"
        path.write_bytes(b"a")
        path.chmod(0o640)
        with openPrivate(path, append=True) as f:
            f.write(b"b")
        self.assertEqual((_mode(path), path.read_bytes()), (0o640, b"ab"))
        with openPrivate(path) as f:
            f.write(b"c")
        self.assertEqual(path.read_bytes(), b"c")

    def test_createPrivate(self) -> None:
        """
        A missing file is created empty with mode 0600; an existing one is
        left alone, with a warning if every user may read it.
        """
        path = self.folder / "db"
        with capturedLogs() as events:
            createPrivate(path)
        self.assertEqual((_mode(path), path.read_bytes(), events), (0o600, b"", []))
        path.write_bytes(b"data")
        path.chmod(0o644)
        with capturedLogs() as events:
            createPrivate(path)
        self.assertEqual((_mode(path), path.read_bytes()), (0o644, b"data"))
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])

    def test_warnIfReadable(self) -> None:
        """
        The warning names the file, what it holds and its mode, and says
        what to do; a file others cannot read gets none.
        """
        path = self.folder / "ldapd.toml"
        path.write_text("")
        path.chmod(0o644)
        with capturedLogs() as events:
            self.assertTrue(warnIfReadable(path, "holds database[0].root_password"))
        self.assertEqual(
            events[0]["log_format"].format(**events[0]),
            f"{path} holds database[0].root_password and is readable by every local user "
            f"(mode 0644): chmod o-r {path}",
        )
        path.chmod(0o640)
        with capturedLogs() as events:
            self.assertFalse(warnIfReadable(path, "holds database[0].root_password"))
        self.assertEqual(events, [])


@pytest.mark.integration
class ServerFileModeTests(_Umask, unittest.SynchronousTestCase):
    """
    The real server and C{ldapd-admin} under umask 022.
    """

    def start(self, config: str) -> ServerProcess:
        """
        Start a server from the folder of the test, stopped at its end.
        """
        server = ServerProcess(config, self.folder)
        server.start()
        self.addCleanup(server.stop)
        return server

    def setTitle(self, server: ServerProcess, uid: str, title: str) -> None:
        """
        Change a person's title as the root DN, with ldapmodify.
        """
        if shutil.which("ldapmodify") is None:
            raise unittest.SkipTest("ldap-utils not installed")
        written = subprocess.run(
            ["ldapmodify", "-x", "-H", server.url, "-D", "cn=admin,dc=example,dc=com",
             "-w", "secret"],
            input=f"dn: uid={uid},ou=people,dc=example,dc=com\nchangetype: modify\n"
            f"replace: title\ntitle: {title}\n", capture_output=True, text=True, timeout=30,
            check=False)
        self.assertEqual(written.returncode, 0, written.stderr)

    def test_sqliteFiles(self) -> None:
        """
        The SQLite database the server creates, its write-ahead log and its
        shared-memory file are mode 0600 (slapd's databases are), after
        the seed is loaded and a write made.
        """
        self.setTitle(self.start(exampleConfig()), "alice", "CTO")
        files = sorted(self.folder.glob("example.db*"))
        self.assertEqual([f.name for f in files], ["example.db", "example.db-shm",
                                                   "example.db-wal"])
        self.assertEqual({f.name: _mode(f) for f in files}, {f.name: 0o600 for f in files})

    def test_sameAsSlapd(self) -> None:
        """
        slapd's back-mdb database, under the same umask, is mode 0600 too.
        """
        if not SLAPD.exists():
            raise unittest.SkipTest(f"{SLAPD} not installed (Debian package slapd)")
        slapd = SlapdProcess()
        self.addCleanup(slapd.stop)
        slapd.start()
        self.assertEqual(_mode(slapd.folder / "db" / "data.mdb"), 0o600)

    def test_auditLog(self) -> None:
        """
        The audit log is created mode 0600.
        """
        audit = self.folder / "audit.ldif"
        server = self.start(exampleConfig() + f'\n[[plugin]]\nname = "audit"\nfile = "{audit}"\n')
        self.setTitle(server, "bob", "Boss")
        self.assertIn(b"title: Boss", audit.read_bytes())
        self.assertEqual(_mode(audit), 0o600)

    def test_readableConfigWarned(self) -> None:
        """
        A configuration holding a root password that every local user may
        read is named in a warning at start-up; one readable by its owner
        only is not.
        """
        server = self.start(exampleConfig())
        self.assertEqual(_mode(server.configPath), 0o644)
        self.assertIn(f"{server.configPath} holds database[0].root_password and is readable by "
                      "every local user (mode 0644)", server.log())
        server.stop()
        server.configPath.chmod(0o600)
        server.start()
        self.assertNotIn("readable by every local user", server.log())

    def test_exportAndImport(self) -> None:
        """
        C{ldapd-admin import} creates the SQLite database mode 0600, and
        C{ldapd-admin export -o} writes its file mode 0600.
        """
        config = sqlConfig()
        ldif = config.parent / "in.ldif"
        ldif.write_text("dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\n"
                        "dc: example\no: Example\n\ndn: uid=ann,dc=example,dc=com\n"
                        "objectClass: inetOrgPerson\nuid: ann\ncn: Ann\nsn: A\n"
                        "userPassword: {SSHA}C2pUNaGLoULyAX7LYIEvYFGdBUlgM9qL9SS4sA==\n")
        result = admin("import", "-q", str(config), str(ldif))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(_mode(config.parent / "dir.db"), 0o600)
        exported = config.parent / "out.ldif"
        result = admin("export", "-q", str(config), "-o", str(exported))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("userPassword: {SSHA}", exported.read_text())
        self.assertEqual(_mode(exported), 0o600)
