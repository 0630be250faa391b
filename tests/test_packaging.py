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

    def test_testingKitData(self) -> None:
        """
        Imported from the unpacked wheel, C{ldapd.testing} finds the example
        configuration and organisation inside the package (not in the source
        tree, which an installed wheel has not got), and so does the schema.
        """
        if not (SOURCE_ROOT / "setup.cfg").exists():
            raise unittest.SkipTest("not running from a source tree")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                 "--disable-pip-version-check", "-w", tmp, str(SOURCE_ROOT)],
                check=True, timeout=300,
            )
            [wheel] = Path(tmp).glob("ldapd-*.whl")
            unpacked = Path(tmp) / "unpacked"
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(unpacked)
            # The unpacked wheel comes first; the dependencies are this environment's.
            env = dict(os.environ, PYTHONPATH=str(unpacked))
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
