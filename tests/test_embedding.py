"""
The embedding example serves a Directory built in code from inside another
Twisted program.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request

from twisted.trial import unittest

from ldapd.testing import SOURCE_ROOT, freePort


class EmbeddingExampleTests(unittest.TestCase):
    """
    C{examples/embedded.py} runs an LDAP server and a web server on one reactor.
    """

    def setUp(self) -> None:
        if shutil.which("ldapsearch") is None:
            raise unittest.SkipTest("ldapsearch (Debian package ldap-utils) is not installed")
        self.ldapPort, self.webPort = freePort(), freePort()
        self.process = subprocess.Popen(
            [sys.executable, str(SOURCE_ROOT / "examples" / "embedded.py"),
             f"tcp:{self.ldapPort}:interface=127.0.0.1", f"tcp:{self.webPort}:interface=127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.addCleanup(self.stop)

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=10)

    def fetch(self) -> str:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.webPort}/", timeout=2) as r:
                    return r.read().decode()
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.1)

    def test_serves(self) -> None:
        """
        Once the web service answers, the directory it embeds answers
        ldapsearch and simple binds on the endpoint it was given.
        """
        self.assertEqual(self.fetch(), "4 entries in the directory\n")
        url = f"ldap://127.0.0.1:{self.ldapPort}"
        out = subprocess.run(
            ["ldapsearch", "-x", "-LLL", "-H", url, "-b", "dc=example,dc=com", "(uid=ada)", "cn"],
            capture_output=True, text=True, timeout=30,
        )
        self.assertEqual(out.stdout, "dn: uid=ada,ou=people,dc=example,dc=com\ncn: Ada Lovelace\n\n")
        who = subprocess.run(
            ["ldapwhoami", "-x", "-H", url, "-D", "uid=ada,ou=people,dc=example,dc=com",
             "-w", "lovelace"], capture_output=True, text=True, timeout=30,
        )
        self.assertEqual(who.stdout, "dn:uid=ada,ou=people,dc=example,dc=com\n")
