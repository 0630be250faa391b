"""
Integration tests of the C{acl} plugin: the real C{twist ldapd} with access
rules in its configuration, driven by OpenLDAP's clients and ldap3 as
anonymous, a user, the entry's owner, a group member and the root DN; and,
where the behaviour is slapd's, the same rules on a private slapd.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from twisted.trial import unittest

from ldapd.testing import EXAMPLE_LDIF, ServerTestsMixin, SlapdTestsMixin, exampleConfig

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
ROOT = (f"cn=admin,{BASE}", "secret")
ALICE = (f"uid=alice,{PEOPLE}", "alice-secret")
BOB = (f"uid=bob,{PEOPLE}", "bob-secret")
CAROL = (f"uid=carol,{PEOPLE}", "carol-secret")
DEVELOPERS = f"cn=developers,ou=groups,{BASE}"

#: The rules both servers run with (slapd.access(5) syntax).
RULES = [
    "to attrs=userPassword by self =wx by anonymous auth by * none",
    (f'to dn.children="{PEOPLE}" attrs=mail,telephoneNumber by self write '
     f'by group="{DEVELOPERS}" write by users read by * none'),
    f'to dn.subtree="ou=services,{BASE}" by users read by * none',
    f'to dn.base="uid=heidi,{PEOPLE}" by self read by * none',
    'to * by peername.regex="^IP=127\\.0\\.0\\.1:" read by * none',
]


def _config() -> str:
    rules = "".join(f"    '{r}',\n" for r in RULES)
    return (exampleConfig() + f'\n[[plugin]]\nname = "acl"\nrules = [\n{rules}]\n'
            + '\n[[plugin]]\nname = "audit"\nfile = "audit.ldif"\n')


def _run(url: str, tool: str, who: tuple[str, str] | None, *args: str,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    auth = ["-D", who[0], "-w", who[1]] if who else []
    return subprocess.run([tool, "-x", "-H", url, *auth, *args], input=stdin,
                          capture_output=True, text=True, timeout=30, check=False)


def _attributes(output: str) -> set[str]:
    return {line.split(":", 1)[0] for line in output.splitlines()
            if ":" in line and not line.startswith(("#", "dn:", "search:", "result:"))}


def _dns(output: str) -> set[str]:
    return {line[4:] for line in output.splitlines() if line.startswith("dn: ")}


class _Battery:
    """
    The checks both servers must pass; C{url} is the server's.
    """

    url: str

    def search(self, who: tuple[str, str] | None, base: str, *args: str) -> Any:
        return _run(self.url, "ldapsearch", who, "-LLL", "-b", base, *args)

    def test_anonymous(self) -> None:
        """
        Anonymous sees entries but no mail, no services, no heidi, no
        passwords; a filter on mail finds nothing; a search based on heidi
        is noSuchObject.
        """
        out = self.search(None, PEOPLE, "-s", "one")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn(f"uid=heidi,{PEOPLE}", _dns(out.stdout))
        self.assertIn(f"uid=alice,{PEOPLE}", _dns(out.stdout))
        self.assertFalse(_attributes(out.stdout) & {"mail", "userPassword"})
        self.assertEqual(_dns(self.search(None, PEOPLE, "(mail=alice@example.com)").stdout), set())
        self.assertEqual(_dns(self.search(None, BASE, "(ou=services)").stdout), set())
        hidden = self.search(None, f"uid=heidi,{PEOPLE}", "-s", "base")
        self.assertEqual(hidden.returncode, 32, hidden.stderr)

    def test_user(self) -> None:
        """
        A user reads mail but no password; a filter on mail works.
        """
        out = self.search(BOB, f"uid=alice,{PEOPLE}", "-s", "base")
        self.assertIn("mail", _attributes(out.stdout))
        self.assertNotIn("userPassword", _attributes(out.stdout))
        self.assertEqual(_dns(self.search(BOB, PEOPLE, "(mail=alice@example.com)").stdout),
                         {f"uid=alice,{PEOPLE}"})

    def test_compare(self) -> None:
        """
        Compare gives compareTrue where allowed, insufficientAccess (50) on
        an attribute of a visible entry, noSuchObject (32) on an invisible one.
        """
        alice = f"uid=alice,{PEOPLE}"
        self.assertEqual(_run(self.url, "ldapcompare", None, alice, "cn:Alice Anderson").returncode, 6)
        self.assertEqual(_run(self.url, "ldapcompare", None, alice, "mail:alice@example.com").returncode, 50)
        heidi = f"uid=heidi,{PEOPLE}"
        self.assertEqual(_run(self.url, "ldapcompare", None, heidi, "uid:heidi").returncode, 32)

    def test_selfAndGroupWrite(self) -> None:
        """
        The owner (alice) and a developer (bob) may change mail; another
        user (heidi) may not (50); nobody but the root DN may change cn.
        """
        alice = f"uid=alice,{PEOPLE}"
        change = f"dn: {alice}\nchangetype: modify\nreplace: mail\nmail: alice@example.com\n"
        for who, code in ((ALICE, 0), (BOB, 0), ((f"uid=heidi,{PEOPLE}", "heidi-secret"), 50)):
            out = _run(self.url, "ldapmodify", who, stdin=change)
            self.assertEqual(out.returncode, code, (who, out.stderr))
        cn = f"dn: {alice}\nchangetype: modify\nreplace: cn\ncn: Alice Anderson\n"
        self.assertEqual(_run(self.url, "ldapmodify", ALICE, stdin=cn).returncode, 50)
        self.assertEqual(_run(self.url, "ldapmodify", ROOT, stdin=cn).returncode, 0)

    def test_bindNeedsAuth(self) -> None:
        """
        Binds work through C{by anonymous auth}; a wrong password is 49.
        """
        self.assertEqual(_run(self.url, "ldapwhoami", BOB).returncode, 0)
        self.assertEqual(_run(self.url, "ldapwhoami", (BOB[0], "wrong")).returncode, 49)


class LdapdAccessTests(_Battery, ServerTestsMixin, unittest.SynchronousTestCase):
    """
    ldapd with the rules.
    """

    serverConfig = _config()

    @property
    def url(self) -> str:  # type: ignore[override]
        assert self.server is not None
        return self.server.url

    def test_storedRules(self) -> None:
        """
        The root DN stores a rule on ou=people giving the developers manage
        there; a developer (carol) then delegates reading userPassword of
        people to the admins group (alice) without touching the configuration;
        a user who is not a developer cannot write rules.
        """
        delegate = (f'to dn.subtree="{PEOPLE}" attrs=ldapdACI,userPassword '
                    f'by group="{DEVELOPERS}" manage by * break')
        ldif = f"dn: {PEOPLE}\nchangetype: modify\nadd: ldapdACI\nldapdACI: {{}}\n"
        self.addCleanup(_run, self.url, "ldapmodify", ROOT,
                        stdin=f"dn: {PEOPLE}\nchangetype: modify\ndelete: ldapdACI\n")
        self.assertEqual(_run(self.url, "ldapmodify", ALICE, stdin=ldif.format(delegate)).returncode, 50)
        self.assertEqual(_run(self.url, "ldapmodify", ROOT, stdin=ldif.format(delegate)).returncode, 0)
        grant = (f'to dn.children="{PEOPLE}" attrs=userPassword '
                 f'by group="cn=admins,ou=groups,{BASE}" read by * break')
        out = _run(self.url, "ldapmodify", CAROL, stdin=ldif.format(grant))
        self.assertEqual(out.returncode, 0, out.stderr)
        out = self.search(ALICE, f"uid=bob,{PEOPLE}", "-s", "base", "userPassword")
        self.assertIn("userPassword", _attributes(out.stdout))
        self.assertNotIn("userPassword", _attributes(
            self.search((f"uid=eve,{PEOPLE}", "eve-secret"), f"uid=bob,{PEOPLE}", "-s", "base").stdout))
        rules = self.search(ROOT, PEOPLE, "-s", "base", "ldapdACI")
        self.assertEqual(rules.stdout.count("ldapdACI:"), 2)

    def test_logs(self) -> None:
        """
        The server logs one RESULT line per operation, with the bound DN and
        the changed attributes' names, and the audit log the change as LDIF;
        neither holds a password or password hash.
        """
        change = f"dn: {BOB[0]}\nchangetype: modify\nreplace: userPassword\nuserPassword: bob-secret\n"
        self.assertEqual(_run(self.url, "ldapmodify", BOB, stdin=change).returncode, 0)
        self.search(BOB, PEOPLE, "(userPassword=alice-secret)")
        assert self.server is not None
        log = self.server.log(containing='filter="(userPassword=***)"')
        self.assertIn(f'MOD dn="{BOB[0]}" attrs="userPassword" RESULT err=0 tag=103 nentries=0', log)
        self.assertIn('filter="(userPassword=***)"', log)
        secrets = [password for _, password in (ROOT, ALICE, BOB, CAROL)]
        secrets += [line.split(":", 1)[1].strip() for line in EXAMPLE_LDIF.read_text().splitlines()
                    if line.lower().startswith("userpassword:")]
        audit = (self.server.configPath.parent / "audit.ldif").read_text()
        self.assertIn(f"dn: {BOB[0]}\nchangetype: modify\nreplace: userPassword\n", audit)
        for secret in secrets:
            self.assertNotIn(secret, log)
            self.assertNotIn(secret, audit)

    def test_ldap3(self) -> None:
        """
        ldap3 as the root DN reads userPassword; as a user it does not.
        """
        ldap3 = pytest.importorskip("ldap3")
        server = ldap3.Server(self.url)
        for (dn, password), visible in ((ROOT, True), (BOB, False)):
            conn = ldap3.Connection(server, dn, password, auto_bind=True)
            conn.search(f"uid=alice,{PEOPLE}", "(objectClass=*)", "BASE", attributes=["*"])
            self.assertEqual("userPassword" in conn.entries[0].entry_attributes, visible)
            conn.unbind()


class SlapdAccessTests(_Battery, SlapdTestsMixin, unittest.SynchronousTestCase):
    """
    The same checks on OpenLDAP's slapd with the same rules and data, which
    shows that ldapd's answers are slapd's.
    """

    slapdDatabaseConfig = "".join(f"access {r}\n" for r in RULES)
