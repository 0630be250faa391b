"""
Rehashing on bind and the bind throttle in the real server (C{twist ldapd}
with the example configuration, its sql database, and C{rehash_on_bind},
C{bind_throttle} and the monitor plugin set), driven by real clients over
sockets: ldap3, and OpenLDAP's ldapwhoami and ldapsearch.
"""

from __future__ import annotations

import subprocess

import ldap3
import pytest
from twisted.trial import unittest

from ldapd.testing import ServerTestsMixin, exampleConfig

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "secret"


def _config() -> str:
    config = exampleConfig()
    if "[server]\n" not in config:
        raise ValueError("the example configuration has no [server] table")
    return config.replace("[server]\n", "[server]\nrehash_on_bind = true\n"
                          "bind_throttle = { per_dn = 3 }\n", 1) + '\n[[plugin]]\nname = "monitor"\n'


class BindOperationsTests(ServerTestsMixin, unittest.SynchronousTestCase):
    """
    The server rehashes a password on bind and throttles failed binds.
    """

    serverConfig = _config()

    def whoami(self, dn: str, password: str) -> subprocess.CompletedProcess[str]:
        assert self.server is not None
        return subprocess.run(["ldapwhoami", "-x", "-H", self.server.url, "-D", dn,
                               "-w", password], capture_output=True, text=True, timeout=60,
                              check=False)

    def read(self, dn: str, *attributes: str) -> dict[str, list[bytes]]:
        """
        @return: attributes of an entry, read as the root DN.
        """
        assert self.server is not None
        with ldap3.Connection(ldap3.Server(self.server.url, get_info=ldap3.NONE), ROOT_DN,
                              ROOT_PASSWORD, auto_bind=True) as connection:
            connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
            (entry,) = connection.response
            return {k.lower(): v for k, v in entry["raw_attributes"].items()}

    def test_rehash(self) -> None:
        """
        After carol binds (ldap3), her {SSHA256} value is an {ARGON2} one
        (the default password_hash), stamped with her as modifiersName and
        a new entryCSN; she binds with it again (ldapwhoami).
        """
        carol = f"uid=carol,{PEOPLE}"
        before = self.read(carol, "userPassword", "entryCSN")
        self.assertTrue(before["userpassword"][0].startswith(b"{SSHA256}"))
        assert self.server is not None
        connection = ldap3.Connection(ldap3.Server(self.server.url, get_info=ldap3.NONE),
                                      carol, "carol-secret")
        self.assertTrue(connection.bind())
        connection.unbind()
        after = self.read(carol, "userPassword", "entryCSN", "modifiersName")
        self.assertTrue(after["userpassword"][0].startswith(b"{ARGON2}$argon2id$"))
        self.assertNotEqual(after["entrycsn"], before["entrycsn"])
        self.assertEqual(after["modifiersname"], [carol.encode()])
        result = self.whoami(carol, "carol-secret")
        self.assertEqual((result.returncode, result.stdout), (0, f"dn:{carol}\n"))

    def test_throttle(self) -> None:
        """
        After three wrong passwords for bob, his right one is refused
        (ldapwhoami: invalid credentials), the server logs why, and
        cn=Monitor counts the refusal.
        """
        bob = f"uid=bob,{PEOPLE}"
        for _ in range(3):
            self.assertEqual(self.whoami(bob, "wrong").returncode, 49)
        refused = self.whoami(bob, "bob-secret")
        self.assertEqual(refused.returncode, 49)
        self.assertIn("Invalid credentials (49)", refused.stderr)
        assert self.server is not None
        why = "throttled, password not checked: 3 failed binds a minute as this DN"
        self.assertIn(why, self.server.log(containing=why))
        counter = self.read("cn=Throttled Binds,cn=Statistics,cn=Monitor", "monitorCounter")
        self.assertGreaterEqual(int(counter["monitorcounter"][0]), 1)
        self.assertEqual(self.whoami(f"uid=dave,{PEOPLE}", "dave-secret").returncode, 0)
