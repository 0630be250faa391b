"""
Packaging: a plain C{pip install .} in a fresh virtualenv gives a working
C{twist ldapd}.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

from twisted.trial import unittest

from ldapd.testing import SOURCE_ROOT


class InstallTests(unittest.TestCase):
    """
    The package installs its Twisted plugin and its schema files.
    """

    def test_twistListsLdapd(self) -> None:
        """
        After C{pip install .} into a new virtualenv, C{twist --help} lists
        ldapd, and the installed package finds its standard schema.
        """
        if not (SOURCE_ROOT / "setup.cfg").exists():
            raise unittest.SkipTest("not running from a source tree")
        with tempfile.TemporaryDirectory() as tmp:
            env = Path(tmp) / "venv"
            venv.EnvBuilder(with_pip=True).create(env)
            python = env / "bin" / "python"
            clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
            subprocess.run(
                [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "."],
                cwd=SOURCE_ROOT, env=clean, check=True, timeout=600,
            )
            # Run from elsewhere, so that nothing is imported from the source tree.
            help = subprocess.run(
                [env / "bin" / "twist", "--help"], cwd=tmp, env=clean,
                capture_output=True, text=True, check=True, timeout=120,
            )
            self.assertRegex(help.stdout, r"\n\s+ldapd\s+An LDAPv3 directory server")
            schema = subprocess.run(
                [python, "-c", "from ldapd.schema import Schema; import ldapd; "
                 "print(len(Schema.standard().objectClasses), ldapd.__file__)"],
                cwd=tmp, env=clean, capture_output=True, text=True, check=True, timeout=120,
            )
            count, location = schema.stdout.split()
            self.assertGreater(int(count), 40)
            self.assertTrue(location.startswith(str(env)), location)


class WheelTests(unittest.TestCase):
    """
    The wheel carries what the package reads from its own files.
    """

    def unpackedWheel(self, tmp: str) -> tuple[Path, dict[str, str]]:
        """
        Build the wheel into C{tmp} and unpack it there.

        @return: the unpacked wheel, and an environment that imports from
            it first (the dependencies are this environment's).
        """
        if not (SOURCE_ROOT / "setup.cfg").exists():
            raise unittest.SkipTest("not running from a source tree")
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--disable-pip-version-check", "-w", tmp, str(SOURCE_ROOT)],
            check=True, timeout=300,
        )
        [wheel] = Path(tmp).glob("ldapd-*.whl")
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(unpacked)
        return unpacked, dict(os.environ, PYTHONPATH=str(unpacked))

    def test_testingKitData(self) -> None:
        """
        Imported from the unpacked wheel, C{ldapd.testing} finds the example
        configuration and organisation inside the package (not in the source
        tree, which an installed wheel has not got), and so does the schema.
        """
        with tempfile.TemporaryDirectory() as tmp:
            unpacked, env = self.unpackedWheel(tmp)
            found = subprocess.run(
                [sys.executable, "-c",
                 "from ldapd import testing; from ldapd.schema import Schema; "
                 "Schema.standard(); testing.exampleConfig(); "
                 "print(testing.EXAMPLE_CONFIG); print(testing.EXAMPLE_LDIF)"],
                cwd=tmp, env=env, capture_output=True, text=True, check=False, timeout=120,
            )
            self.assertEqual(found.returncode, 0, found.stderr)
            for line in found.stdout.splitlines():
                path = Path(line)
                self.assertTrue(path.is_relative_to(unpacked / "ldapd" / "examples"), path)
                self.assertTrue(path.is_file(), path)

    def test_pytestPlugin(self) -> None:
        """
        With the wheel installed, pytest loads the ldapd plugin through its
        entry point: a test asking for C{ldap_server} gets one.
        """
        with tempfile.TemporaryDirectory() as tmp:
            unpacked, env = self.unpackedWheel(tmp)
            project = Path(tmp) / "project"
            project.mkdir()
            (project / "test_server.py").write_text(
                "def test_server(ldap_server):\n"
                "    assert ldap_server.url.startswith('ldap://127.0.0.1:')\n"
                "    import ldapd\n"
                f"    assert ldapd.__file__.startswith({str(unpacked)!r})\n")
            ran = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:twisted"],
                cwd=project, env=env, capture_output=True, text=True, check=False, timeout=300,
            )
            self.assertEqual(ran.returncode, 0, ran.stdout + ran.stderr)
            self.assertIn("1 passed", ran.stdout)
