"""
Integration tests of what a client may learn about entries and values it
may not see (issue 15): the real C{twist ldapd} with ordinary access rules,
the changelog and monitor plugins, driven by OpenLDAP's clients and
python-ldap as anonymous, a user and the root DN; and, where the behaviour
is slapd's, the same rules and data on a private slapd.
"""

from __future__ import annotations

import base64
import subprocess
from typing import Any

import pytest
from twisted.trial import unittest

from ldapd.testing import ServerTestsMixin, SlapdTestsMixin, exampleConfig

try:
    import ldap
    from ldap.controls import SimplePagedResultsControl
except ImportError:  # pragma: no cover
    ldap = None

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
SERVICES = f"ou=services,{BASE}"
POSIX = f"ou=posix,ou=groups,{BASE}"
ROOT = (f"cn=admin,{BASE}", "secret")
ALICE = f"uid=alice,{PEOPLE}"
BOB = (f"uid=bob,{PEOPLE}", "bob-secret")

#: The rules both servers run with: ordinary ones, ending in a rule that
#: lets everyone read everything else.
RULES = [
    "to attrs=userPassword by self =wx by anonymous auth by * none",
    "to attrs=sn,title,member by users read by * none",
    f'to dn.subtree="{SERVICES}" by * none',
    f'to dn.children="{POSIX}" by * none',
    f'to dn.subtree="{PEOPLE}" by users write by * read',
    "to * by users read by anonymous read",
]


def _config() -> str:
    rules = "".join(f"    '{r}',\n" for r in RULES)
    return (exampleConfig() + '\n[[plugin]]\nname = "changelog"\n'
            + '\n[[plugin]]\nname = "monitor"\n'
            + f'\n[[plugin]]\nname = "acl"\nrules = [\n{rules}]\n')


def _run(url: str, tool: str, who: tuple[str, str] | None, *args: str,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    auth = ["-D", who[0], "-w", who[1]] if who else []
    return subprocess.run([tool, "-x", "-H", url, *auth, *args], input=stdin,
                          capture_output=True, text=True, timeout=30, check=False)


def _dns(output: str) -> set[str]:
    return {line[4:] for line in output.splitlines() if line.startswith("dn: ")}


def _values(output: str, name: str) -> list[str]:
    """
    @return: the values of an attribute in ldapsearch's unwrapped output,
        base64 ones decoded.
    """
    values = []
    for line in output.splitlines():
        if line.lower().startswith(name.lower() + ":: "):
            values.append(base64.b64decode(line.split(":: ", 1)[1]).decode("utf-8"))
        elif line.lower().startswith(name.lower() + ": "):
            values.append(line.split(": ", 1)[1])
    return values


def _answer(out: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    """
    @return: a write's result code and matched DN, as ldapmodify shows them.
    """
    matched = [line.split(":", 1)[1].strip() for line in out.stderr.splitlines()
               if "matched DN:" in line]
    return out.returncode, matched[0] if matched else ""


class _Battery:
    """
    The checks both servers must pass; C{url} is the server's.
    """

    url: str

    def search(self, who: tuple[str, str] | None, base: str, *args: str) -> Any:
        return _run(self.url, "ldapsearch", who, "-LLL", "-b", base, *args)

    def test_supertypeFilters(self) -> None:
        """
        A filter on a supertype (C{name}, C{distinguishedName}) matches only
        through the subtypes the client may search: anonymous finds no one
        by a hidden C{sn}, C{title} or C{member}, but still by a visible
        C{cn}; a user who may search them finds them.
        """
        for probe in ("(name=Anderson)", "(name=*Officer*)", "(name=Anders*)"):
            self.assertEqual(_dns(self.search(None, PEOPLE, probe, "1.1").stdout), set(), probe)
            self.assertEqual(_dns(self.search(BOB, PEOPLE, probe, "1.1").stdout), {ALICE}, probe)
        members = f"(distinguishedName={ALICE})"
        self.assertEqual(_dns(self.search(None, BASE, members, "1.1").stdout), set())
        self.assertIn(f"cn=admins,ou=groups,{BASE}",
                      _dns(self.search(BOB, BASE, members, "1.1").stdout))
        self.assertEqual(_dns(self.search(None, PEOPLE, "(name=Alice Anderson)", "1.1").stdout),
                         {ALICE})

    def test_supertypeCompare(self) -> None:
        """
        Compare on a supertype is true through a visible subtype's value;
        a value only a hidden subtype holds is insufficientAccess (50), as
        is a value nobody holds, so the two cannot be told apart.
        """
        def compare(who: tuple[str, str] | None, ava: str) -> int:
            return _run(self.url, "ldapcompare", who, ALICE, ava).returncode

        self.assertEqual(compare(None, "name:Alice Anderson"), 6)
        self.assertEqual(compare(None, "name:Anderson"), 50)
        self.assertEqual(compare(None, "name:Nobody"), 50)
        self.assertEqual(compare(BOB, "name:Anderson"), 6)
        self.assertEqual(compare(BOB, "name:Nobody"), 5)

    def pages(self, first: tuple[str, str] | None, then: tuple[str, str] | None) -> list[Any]:
        """
        Start a paged search of people's C{sn} as C{first}, rebind as
        C{then} and ask for the next page.

        @return: the two pages, each a list of C{(dn, attributes)}.
        """
        if ldap is None:
            raise unittest.SkipTest("python-ldap is not installed")
        conn = ldap.initialize(self.url)
        self.addCleanup(conn.unbind_s)
        conn.simple_bind_s(*(first or ("", "")))
        control = SimplePagedResultsControl(True, size=2, cookie=b"")
        pages = []
        for _ in (first, then):
            msgid = conn.search_ext(PEOPLE, ldap.SCOPE_ONELEVEL, "(objectClass=person)", ["sn"],
                                    serverctrls=[control])
            _, data, _, responseControls = conn.result3(msgid)
            pages.append(data)
            control.cookie = [c for c in responseControls
                              if c.controlType == SimplePagedResultsControl.controlType][0].cookie
            conn.simple_bind_s(*(then or ("", "")))
        return pages

    def test_pagedSearchAfterRebind(self) -> None:
        """
        After a rebind, the next page of a paged search is read as the new
        identity: a user's search continued anonymously shows no C{sn}, an
        anonymous one continued by the user shows it.
        """
        first, second = self.pages(BOB, None)
        self.assertTrue(first and all("sn" in attributes for _, attributes in first))
        self.assertTrue(second)
        self.assertFalse(any("sn" in attributes for _, attributes in second))
        first, second = self.pages(None, BOB)
        self.assertFalse(any("sn" in attributes for _, attributes in first))
        self.assertTrue(second and all("sn" in attributes for _, attributes in second))


class LdapdVisibilityTests(_Battery, ServerTestsMixin, unittest.SynchronousTestCase):
    """
    ldapd with the rules, the changelog and cn=Monitor.
    """

    serverConfig = _config()

    @property
    def url(self) -> str:  # type: ignore[override]
        assert self.server is not None
        return self.server.url

    def test_changelogPrivate(self) -> None:
        """
        With C{to * by users read by anonymous read}, neither anonymous nor
        a user finds a record in cn=changelog, or can read one by name; the
        root DN reads them all.
        """
        for who in (None, BOB):
            out = self.search(who, "cn=changelog", "-s", "one", "(objectClass=*)")
            self.assertEqual(_dns(out.stdout), set(), out.stdout)
            self.assertEqual(self.search(who, "changeNumber=1,cn=changelog", "-s", "base")
                             .returncode, 32)
        self.assertIn("changeNumber=1,cn=changelog",
                      _dns(self.search(ROOT, "cn=changelog", "-s", "one").stdout))

    def test_changelogHoldsNoPasswords(self) -> None:
        """
        A user changes their password; the changelog records the change
        without the new value, and none of the seeded hashes are there.
        """
        change = (f"dn: {BOB[0]}\nchangetype: modify\nreplace: userPassword\n"
                  f"userPassword: {BOB[1]}\n-\nreplace: description\ndescription: rotated\n")
        self.assertEqual(_run(self.url, "ldapmodify", BOB, stdin=change).returncode, 0)
        out = self.search(ROOT, "cn=changelog", "-s", "one", "-o", "ldif-wrap=no", "changes")
        records = "\n".join(_values(out.stdout, "changes"))
        self.assertIn("replace: description\ndescription: rotated\n", records)
        self.assertIn("uid: alice\n", records)
        self.assertNotIn(BOB[1], records)
        self.assertNotIn("userpassword", records.lower())

    def test_monitorPrivate(self) -> None:
        """
        Neither anonymous nor a user lists cn=Monitor's connections (bound
        DNs, peers); the root DN does.
        """
        for who in (None, BOB):
            out = self.search(who, "cn=Monitor", "-s", "sub", "(objectClass=*)")
            self.assertEqual(_dns(out.stdout), set(), out.stdout)
        self.assertIn("cn=Connections,cn=Monitor",
                      _dns(self.search(ROOT, "cn=Monitor", "-s", "sub").stdout))

    def test_hiddenEntriesAnswerAsMissing(self) -> None:
        """
        A write or Password Modify naming a hidden entry, or an entry under
        a hidden parent, or moving under a hidden new superior, and a search
        based there, get the answer they would get if the hidden entry did
        not exist, and no matched DN ever names it.
        """
        def modify(text: str) -> tuple[int, str]:
            return _answer(_run(self.url, "ldapmodify", BOB, stdin=text))

        def rename(dn: str, superior: str | None = None) -> tuple[int, str]:
            move = f"newsuperior: {superior}\n" if superior else ""
            return modify(f"dn: {dn}\nchangetype: modrdn\nnewrdn: uid=zz\ndeleteoldrdn: 1\n{move}")

        def add(dn: str) -> tuple[int, str]:
            return modify(f"dn: {dn}\nchangetype: add\nobjectClass: account\nuid: x\n")

        missing = (32, BASE)
        self.assertEqual(rename(f"uid=sssd,{SERVICES}"), missing)
        self.assertEqual(rename(f"uid=nobody,{SERVICES}"), missing)
        self.assertEqual(rename(f"uid=nobody,ou=nothere,{BASE}"), missing)
        self.assertEqual(add(f"uid=x,{SERVICES}"), missing)
        self.assertEqual(add(f"uid=x,uid=nobody,{SERVICES}"), missing)
        self.assertEqual(add(f"uid=x,ou=nothere,{BASE}"), missing)
        for text in (f"dn: uid=sssd,{SERVICES}\nchangetype: delete\n",
                     f"dn: uid=nobody,{SERVICES}\nchangetype: delete\n",
                     f"dn: uid=nobody,{SERVICES}\nchangetype: modify\nreplace: cn\ncn: x\n"):
            self.assertEqual(modify(text), missing, text)
        carol = f"uid=carol,{PEOPLE}"
        outs = [_run(self.url, "ldapmodify", BOB, stdin=(
            f"dn: {carol}\nchangetype: modrdn\nnewrdn: uid=carol\ndeleteoldrdn: 1\n"
            f"newsuperior: {superior}\n"))
            for superior in (SERVICES, f"uid=x,{SERVICES}", f"ou=nothere,{BASE}")]
        self.assertEqual(len({(o.returncode, o.stderr) for o in outs}), 1, outs)
        self.assertEqual(outs[0].returncode, 32)
        for dn in (f"uid=sssd,{SERVICES}", f"uid=nobody,{SERVICES}"):
            out = _run(self.url, "ldappasswd", BOB, "-s", "new-secret", dn)
            self.assertEqual(out.returncode, 1, out.stdout)
            self.assertIn("No such object (32)", out.stdout)
            self.assertIn(f"Matched DN: {BASE}\n", out.stdout)
        base = self.search(BOB, f"uid=nobody,{SERVICES}", "-s", "base")
        hidden = self.search(BOB, f"uid=sssd,{SERVICES}", "-s", "base")
        self.assertEqual((base.returncode, base.stderr), (hidden.returncode, hidden.stderr))
        self.assertNotIn(SERVICES, base.stderr)

    def test_subordinatesCountVisibleChildren(self) -> None:
        """
        numSubordinates and hasSubordinates count only the children the
        client may know of: not ou=services for anyone but the root DN,
        and nothing under ou=posix, whose only child is hidden.
        """
        def counts(who: tuple[str, str] | None, dn: str) -> tuple[list[str], list[str]]:
            out = self.search(who, dn, "-s", "base", "(objectClass=*)",
                              "hasSubordinates", "numSubordinates")
            return _values(out.stdout, "hasSubordinates"), _values(out.stdout, "numSubordinates")

        self.assertEqual(counts(ROOT, BASE), (["TRUE"], ["3"]))
        self.assertEqual(counts(ROOT, POSIX), (["TRUE"], ["1"]))
        for who in (None, BOB):
            self.assertEqual(counts(who, BASE), (["TRUE"], ["2"]))
            self.assertEqual(counts(who, POSIX), (["FALSE"], ["0"]))


class SlapdVisibilityTests(_Battery, SlapdTestsMixin, unittest.SynchronousTestCase):
    """
    The same checks on OpenLDAP's slapd with the same rules and data, which
    shows that ldapd's answers are slapd's.
    """

    slapdDatabaseConfig = "".join(f"access {r}\n" for r in RULES)
