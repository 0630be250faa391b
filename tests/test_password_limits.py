"""
Integration tests of the password cost limits (issue 15, "hash bombs"): the
real C{twist ldapd} with entries whose stored passwords ask for hours of
work or gigabytes of memory per verification, attacked with OpenLDAP's
clients.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from twisted.trial import unittest

from ldapd.testing import EXAMPLE_LDIF, ServerProcess, exampleConfig
from test_cli import ClientTestsMixin, person
from test_passwords import BOMBS

pytestmark = pytest.mark.integration

#: The seeded entries holding the bombs, by the bomb's name.
BOMB_USERS = {name: f"bomb{i}" for i, name in enumerate(BOMBS)}


def _bombEntries() -> str:
    """
    @return: LDIF of one person per bomb, with the bomb as its password.
    """
    return "".join(
        f"\ndn: {person(uid)}\nobjectClass: inetOrgPerson\ncn: {uid}\nsn: {uid}\n"
        f"uid: {uid}\nuserPassword: {BOMBS[name].decode('ascii')}\n"
        for name, uid in BOMB_USERS.items()
    )


class HashBombTests(ClientTestsMixin, unittest.SynchronousTestCase):
    """
    Stored passwords over the limits are refused on write with
    constraintViolation, and binds against ones already stored (seeded, as
    an import or a migration would store them) are refused without hashing.
    """

    @classmethod
    def setUpClass(cls) -> None:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-bombs-"))
        seed = folder / "seed.ldif"
        seed.write_text(EXAMPLE_LDIF.read_text() + _bombEntries())
        cls.serverConfig = exampleConfig().replace("{example_ldif}", str(seed))
        super().setUpClass()

    def test_writeRefused(self) -> None:
        """
        A user setting its own password to a bomb, and the root DN adding an
        entry with one, get constraintViolation (19) naming the parameter
        and its limit; the password is unchanged.
        """
        errors = {}
        for name, stored in BOMBS.items():
            result = self.client(
                "ldapmodify", bind=(person("alice"), "alice-secret"),
                stdin=f"dn: {person('alice')}\nchangetype: modify\nreplace: userPassword\n"
                f"userPassword: {stored.decode('ascii')}\n",
            )
            self.assertCode(result, 19)
            errors[name] = result.err
        self.assertIn("userPassword: value #0: {CRYPT} bcrypt cost 16 is over the limit of 13"
                      " (bcrypt_cost)", errors["bcrypt cost 16"])
        self.assertIn("PBKDF2 rounds 2147483647 is over the limit", errors["PBKDF2 2^31-1 rounds"])
        self.assertCode(self.client("ldapwhoami", bind=(person("alice"), "alice-secret")), 0)
        added = self.root(
            "ldapadd",
            stdin=f"dn: {person('newbomb')}\nobjectClass: inetOrgPerson\ncn: n\nsn: n\n"
            f"userPassword: {BOMBS['argon2 256 MiB'].decode('ascii')}\n",
        )
        self.assertCode(added, 19)
        self.assertIn("argon2 memory (KiB) 262144 is over the limit of 131072", added.err)
        self.assertEqual(self.search("(uid=newbomb)", "1.1").entries(), {})

    def test_writeWithinLimits(self) -> None:
        """
        Values within the limits are stored as before: what ldapd itself
        makes by default.
        """
        result = self.root(
            "ldapmodify",
            stdin=f"dn: {person('bob')}\nchangetype: modify\nreplace: userPassword\n"
            "userPassword: {CRYPT}$2b$12$mjwHGhc3ztympQgPHeic4ekgi4Ld3S7fp4CHfxrgNcP7uL7Q3Oui\n",
        )
        self.assertCode(result, 0)

    def test_bindRefusedWithoutHashing(self) -> None:
        """
        Many simultaneous binds against every seeded bomb are all answered
        invalidCredentials (49), as for a wrong password, while a user of a
        slow scheme binds as usual; each refusal is logged as a warning
        naming the entry, and none was verified.
        """
        assert self.server is not None
        attackers = [
            subprocess.Popen(
                ["ldapwhoami", "-x", "-H", self.server.url, "-D", person(uid), "-w", "guess"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            for uid in BOMB_USERS.values()
            for _ in range(3)
        ]
        try:
            frank = self.client("ldapwhoami", bind=(person("frank"), "frank-secret"))
            codes = [p.wait(timeout=60) for p in attackers]
        finally:
            for p in attackers:
                if p.poll() is None:
                    p.kill()
                p.communicate()
        self.assertCode(frank, 0)
        self.assertEqual(codes, [49] * len(attackers))
        log = self.server.log()
        for uid in BOMB_USERS.values():
            self.assertIn(f"stored password of {person(uid)} not verified:", log)
        self.assertIn("bcrypt cost 16 is over the limit of 13 (bcrypt_cost)", log)

    def test_limitsConfigurable(self) -> None:
        """
        C{[server.password_limits]} sets the limits: with a bcrypt cost of
        at most 5, the example user whose password is bcrypt of cost 6 can
        no longer bind (and the server says why), and a root password over
        the limits stops start-up with a line naming it.
        """
        config = exampleConfig().replace(
            "[server]\n", "[server]\npassword_limits = { bcrypt_cost = 5, max_per_entry = 1 }\n")
        server = ServerProcess(config)
        server.start()
        try:
            grace = subprocess.run(
                ["ldapwhoami", "-x", "-H", server.url, "-D", person("grace"),
                 "-w", "grace-secret"], capture_output=True, text=True, timeout=30, check=False)
            alice = subprocess.run(
                ["ldapwhoami", "-x", "-H", server.url, "-D", person("alice"),
                 "-w", "alice-secret"], capture_output=True, text=True, timeout=30, check=False)
        finally:
            server.stop()
        self.assertEqual(grace.returncode, 49, grace.stderr)
        self.assertEqual(alice.returncode, 0, alice.stderr)
        self.assertIn(f"stored password of {person('grace')} not verified: {{CRYPT}} bcrypt "
                      "cost 6 is over the limit of 5 (bcrypt_cost)", server.log())
        bad = exampleConfig().replace(
            'root_password = "{SSHA}C2pUNaGLoULyAX7LYIEvYFGdBUlgM9qL9SS4sA=="',
            f'root_password = "{BOMBS["bcrypt cost 16"].decode("ascii")}"')
        refused = ServerProcess(bad)
        with self.assertRaises(RuntimeError) as raised:
            refused.start()
        self.assertIn("database[0].root_password", str(raised.exception))
        self.assertIn("bcrypt cost 16 is over the limit of 13", str(raised.exception))
        self.assertNotEqual(refused.process and refused.process.returncode, 0)

    def test_rootDN(self) -> None:
        """
        The root DN's writes are held to the same limits as anyone's.
        """
        result = self.root(
            "ldapmodify",
            stdin=f"dn: {person('carol')}\nchangetype: modify\nadd: userPassword\n"
            f"userPassword: {BOMBS['PBKDF2 2^31-1 rounds'].decode('ascii')}\n",
        )
        self.assertCode(result, 19)
