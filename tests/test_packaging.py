"""
Packaging: a plain C{pip install .} in a fresh virtualenv gives a working
C{twist ldapd}.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import venv
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
