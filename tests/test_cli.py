"""
Integration tests: the real C{twist ldapd} process on a loopback port, driven
by OpenLDAP's command-line clients (ldap-utils), as an administrator would.

Each class runs its own server seeded with the example organisation
(C{examples/ldapd.toml}), so that no class sees another's writes; tests that
write use entries of their own. The expected results are those OpenLDAP's
slapd gives for the same data and commands.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from twisted.trial import unittest

from ldapd.testing import ServerTestsMixin, childEnvironment

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
PEOPLE = "ou=people,dc=example,dc=com"
SERVICES = "ou=services,dc=example,dc=com"
GROUPS = "ou=groups,dc=example,dc=com"
ROOT_DN = "cn=admin,dc=example,dc=com"
ROOT_PASSWORD = "secret"

#: The example users and the scheme each one's password is stored in
#: (examples/data/example.ldif); every password is "<uid>-secret".
USERS = {
    "alice": "{SSHA}",
    "bob": "{SSHA}",
    "carol": "{SSHA256}",
    "dave": "{SSHA512}",
    "eve": "{PBKDF2-SHA256}",
    "frank": "{ARGON2}",
    "grace": "{CRYPT}",
    "heidi": "cleartext",
}
SERVICE_ACCOUNTS = ("mail-gateway", "nextcloud", "sssd")

#: The form of an entryUUID value (RFC 4530).
UUID = r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$"

#: Every entry of the example organisation.
EXAMPLE_ENTRIES = 20

CLIENTS = (
    "ldapsearch",
    "ldapadd",
    "ldapmodify",
    "ldapdelete",
    "ldapmodrdn",
    "ldapcompare",
    "ldapwhoami",
    "ldappasswd",
)


def person(uid: str) -> str:
    """
    @return: the DN of the person C{uid}.
    """
    return f"uid={uid},{PEOPLE}"


def _value(line: str, name: str) -> bytes:
    """
    @param line: an unwrapped LDIF line, C{name: text} or C{name:: base64}.
    @return: its value.
    """
    prefix, sep, rest = line.partition(":")
    if prefix != name or not sep:
        raise ValueError(f"not a {name} line: {line!r}")
    if rest.startswith(":"):
        return base64.b64decode(rest[1:].strip())
    return rest[1:].encode("utf-8") if rest.startswith(" ") else rest.encode("utf-8")


class Result:
    """
    The outcome of one client command.

    @ivar code: its exit status (the LDAP result code for most failures).
    @ivar out: its standard output.
    @ivar err: its standard error.
    """

    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.code = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr

    def entries(self) -> dict[str, dict[str, list[bytes]]]:
        """
        @return: the entries of C{ldapsearch -LLL} output, by DN, each with
            its values by attribute description as written.
        """
        found: dict[str, dict[str, list[bytes]]] = {}
        for record in self.out.split("\n\n"):
            lines = [line for line in record.splitlines() if line and not line.startswith("#")]
            if not lines:
                continue
            dn = _value(lines[0], "dn").decode("utf-8")
            attrs: dict[str, list[bytes]] = {}
            for line in lines[1:]:
                name = line.split(":", 1)[0]
                attrs.setdefault(name, []).append(_value(line, name))
            found[dn] = attrs
        return found

    def __repr__(self) -> str:
        return f"<exit {self.code}\nstdout: {self.out}\nstderr: {self.err}>"


class ClientTestsMixin(ServerTestsMixin):
    """
    Runs the OpenLDAP clients against the class's server; skips the class
    when they are not installed.
    """

    @classmethod
    def setUpClass(cls) -> None:
        missing = [c for c in CLIENTS if shutil.which(c) is None]
        if missing:
            raise unittest.SkipTest(
                f"OpenLDAP command-line clients not installed: {', '.join(missing)}"
                " (Debian/Ubuntu package ldap-utils)"
            )
        super().setUpClass()

    def client(
        self,
        tool: str,
        *args: str,
        bind: tuple[str, str] | None = None,
        stdin: str | None = None,
    ) -> Result:
        """
        Run one client with simple authentication against the server.

        @param tool: the program, e.g. C{ldapsearch}.
        @param args: its arguments after C{-x -H url} and the bind options.
        @param bind: a DN and password to bind with; anonymous by default.
        @param stdin: text for its standard input (LDIF for ldapadd/ldapmodify).
        @return: the outcome.
        """
        assert self.server is not None
        command = [tool, "-x", "-H", self.server.url]
        if bind is not None:
            command += ["-D", bind[0], "-w", bind[1]]
        if tool == "ldapsearch":
            command += ["-LLL", "-o", "ldif-wrap=no"]
        # LDAPNOINIT: ignore ldap.conf and ~/.ldaprc, whatever this machine has in them.
        env = dict(os.environ, LDAPNOINIT="1")
        completed = subprocess.run(
            command + list(args), input=stdin, check=False, capture_output=True, text=True, env=env,
            timeout=30,
        )
        return Result(completed)

    def root(self, tool: str, *args: str, stdin: str | None = None) -> Result:
        """
        Run a client bound as the root DN.
        """
        return self.client(tool, *args, bind=(ROOT_DN, ROOT_PASSWORD), stdin=stdin)

    def search(self, *args: str, base: str = BASE, bind: tuple[str, str] | None = None) -> Result:
        """
        Run ldapsearch from C{base}.
        """
        return self.client("ldapsearch", "-b", base, *args, bind=bind)

    def assertCode(self, result: Result, code: int) -> None:
        """
        Assert that a client exited with C{code}, showing its output if not.
        """
        self.assertEqual(result.code, code, result)

    def assertDNs(self, result: Result, dns: set[str]) -> None:
        """
        Assert that a search succeeded and returned exactly C{dns}.
        """
        self.assertCode(result, 0)
        self.assertEqual(set(result.entries()), dns)

    def assertUids(self, filterText: str, uids: set[str]) -> None:
        """
        Assert that a subtree search of the people with C{filterText} finds
        exactly the people C{uids}.
        """
        self.assertDNs(self.search(filterText, "1.1", base=PEOPLE), {person(u) for u in uids})


class SearchTests(ClientTestsMixin, unittest.SynchronousTestCase):
    """
    ldapsearch over the example organisation, anonymously: scopes, every
    kind of filter, attribute selection, size limit and paging.
    """

    def test_baseScope(self) -> None:
        """
        A base search returns exactly the base entry.
        """
        result = self.search("-s", "base", "(objectClass=*)")
        self.assertDNs(result, {BASE})
        self.assertEqual(result.entries()[BASE]["o"], [b"Example Corp"])

    def test_oneLevelScope(self) -> None:
        """
        A one-level search returns the base's children, not the base or grandchildren.
        """
        self.assertDNs(
            self.search("-s", "one", "(objectClass=*)", "1.1"),
            {PEOPLE, GROUPS, SERVICES},
        )

    def test_subtreeScope(self) -> None:
        """
        A subtree search returns the base and everything below it: the whole
        example organisation, each entry once.
        """
        result = self.search("(objectClass=*)", "1.1")
        self.assertCode(result, 0)
        dns = re.findall(r"^dn: (.*)$", result.out, re.MULTILINE)
        self.assertEqual(len(dns), EXAMPLE_ENTRIES)
        self.assertEqual(len(set(dns)), EXAMPLE_ENTRIES)
        self.assertIn(f"cn=users,ou=posix,{GROUPS}", dns)

    def test_equality(self) -> None:
        """
        Equality uses the attribute's matching rule: case- and
        space-insensitive for cn, exact DN match for member, integer for gidNumber.
        """
        self.assertUids("(cn=ALICE   anderson)", {"alice"})
        self.assertUids("(uid=nobody)", set())
        self.assertDNs(
            self.search(f"(member=UID=Bob, OU=People, {BASE})", "1.1"),
            {f"cn=developers,{GROUPS}", f"cn=staff,{GROUPS}"},
        )
        self.assertUids("(&(objectClass=posixAccount)(gidNumber=10000))", set(USERS))

    def test_presence(self) -> None:
        """
        A presence filter finds the entries holding the attribute.
        """
        self.assertUids("(telephoneNumber=*)", {"alice", "bob", "dave", "frank", "heidi"})

    def test_substrings(self) -> None:
        """
        Initial, any and final substrings, alone and together.
        """
        self.assertUids("(sn=Gr*)", {"grace"})
        self.assertUids("(cn=*an*)", {"alice", "eve", "frank"})
        self.assertUids("(cn=*son)", {"alice"})
        self.assertUids("(cn=F*an*Fisch*r)", {"frank"})
        self.assertUids("(mail=*@example.com)", set(USERS))

    def test_ordering(self) -> None:
        """
        Greater-or-equal and less-or-equal compare integers as integers.
        """
        self.assertUids("(uidNumber>=10006)", {"frank", "grace", "heidi"})
        self.assertUids("(uidNumber<=10002)", {"alice", "bob"})
        self.assertUids("(&(uidNumber>=10003)(uidNumber<=10004))", {"carol", "dave"})

    def test_orderingWithoutRule(self) -> None:
        """
        An ordering filter on an attribute with no ordering rule is
        Undefined: nothing matches, and it is not an error.
        """
        self.assertUids("(employeeNumber>=1007)", set())

    def test_approx(self) -> None:
        """
        Approximate match finds values that sound alike.
        """
        self.assertUids("(sn~=Andersen)", {"alice"})
        self.assertUids("(cn~=bob brwn)", {"bob"})

    def test_booleans(self) -> None:
        """
        And, or and not combine filters; (&) is absolute true and (|)
        absolute false (RFC 4526).
        """
        self.assertUids("(|(uid=alice)(uid=bob))", {"alice", "bob"})
        self.assertUids("(&(loginShell=/bin/bash)(!(telephoneNumber=*)))", {"eve", "grace"})
        self.assertDNs(self.search("-s", "one", "(!(ou=people))", "1.1"), {GROUPS, SERVICES})
        self.assertEqual(len(self.search("(&)", "1.1").entries()), EXAMPLE_ENTRIES)
        self.assertDNs(self.search("(|)", "1.1"), set())

    def test_extensibleDN(self) -> None:
        """
        An extensible match with :dn: also tests the values in the entry's
        DN, so (ou:dn:=people) finds the people container and everyone in it.
        """
        self.assertDNs(
            self.search("(ou:dn:=people)", "1.1"),
            {PEOPLE} | {person(u) for u in USERS},
        )
        self.assertDNs(self.search("(cn:dn:=people)", "1.1"), set())

    def test_extensibleRule(self) -> None:
        """
        An extensible match applies the rule it names: caseExactMatch tells
        case apart, and a rule with no type tests every attribute (and the
        DN's, with :dn:).
        """
        self.assertUids("(uid:caseExactMatch:=Alice)", set())
        self.assertUids("(uid:caseExactMatch:=alice)", {"alice"})
        self.assertUids("(uid:2.5.13.2:=ALICE)", {"alice"})
        self.assertUids("(:caseIgnoreMatch:=bob brown)", {"bob"})
        self.assertDNs(
            self.search("(:dn:caseExactMatch:=posix)", "1.1"),
            {f"ou=posix,{GROUPS}", f"cn=users,ou=posix,{GROUPS}"},
        )

    def test_undefinedAttribute(self) -> None:
        """
        A filter on an attribute type the schema does not define is
        Undefined: the search succeeds and finds nothing.
        """
        self.assertDNs(self.search("(noSuchAttribute=x)", "1.1"), set())
        self.assertUids("(|(noSuchAttribute=x)(uid=eve))", {"eve"})

    def test_allUserAttributes(self) -> None:
        """
        C{*} returns the user attributes and no operational ones; an
        anonymous client never sees userPassword.
        """
        attrs = self.search("-s", "base", "*", base=person("alice")).entries()[person("alice")]
        self.assertEqual(attrs["cn"], [b"Alice Anderson"])
        self.assertEqual(attrs["uidNumber"], [b"10001"])
        for name in ("userPassword", "entryUUID", "createTimestamp", "entryDN"):
            self.assertNotIn(name, attrs)

    def test_allOperationalAttributes(self) -> None:
        """
        C{+} returns the operational attributes only (RFC 3673); C{* +} both.
        """
        attrs = self.search("-s", "base", "+", base=person("bob")).entries()[person("bob")]
        self.assertNotIn("cn", attrs)
        self.assertEqual(attrs["entryDN"], [person("bob").encode()])
        self.assertEqual(attrs["subschemaSubentry"], [b"cn=Subschema"])
        self.assertRegex(attrs["entryUUID"][0].decode(), UUID)
        self.assertRegex(attrs["createTimestamp"][0].decode(), r"^\d{14}Z$")
        self.assertIn("modifyTimestamp", attrs)
        # Seeded entries are created by the root DN, as slapadd's are.
        self.assertEqual(attrs["creatorsName"], [ROOT_DN.encode()])
        both = self.search("-s", "base", "*", "+", base=person("bob")).entries()[person("bob")]
        self.assertIn("cn", both)
        self.assertIn("entryUUID", both)

    def test_namedAttributes(self) -> None:
        """
        Named attributes are returned and nothing else; an unknown name is
        ignored; an operational attribute can be asked for by name.
        """
        result = self.search("-s", "base", "cn", "entryDN", "noSuchAttribute", base=person("carol"))
        self.assertEqual(
            result.entries()[person("carol")],
            {"cn": [b"Carol Clark"], "entryDN": [person("carol").encode()]},
        )

    def test_noAttributes(self) -> None:
        """
        C{1.1} returns the DNs without attributes.
        """
        result = self.search("-s", "one", "1.1", base=PEOPLE)
        self.assertCode(result, 0)
        self.assertEqual(len(result.entries()), len(USERS))
        self.assertTrue(all(attrs == {} for attrs in result.entries().values()))

    def test_typesOnly(self) -> None:
        """
        C{-A} returns the attribute descriptions without their values.
        """
        result = self.search("-s", "base", "-A", base=person("dave"))
        attrs = result.entries()[person("dave")]
        self.assertEqual(attrs["cn"], [b""])
        self.assertEqual(attrs["objectClass"], [b""])
        self.assertNotIn("Dave", result.out)

    def test_sizeLimit(self) -> None:
        """
        C{-z 3} over more entries ends with sizeLimitExceeded (exit 4) after
        exactly three entries, which the client shows.
        """
        result = self.search("-z", "3", "(objectClass=*)", "1.1")
        self.assertCode(result, 4)
        self.assertEqual(len(result.entries()), 3)
        self.assertIn("Size limit exceeded (4)", result.err)
        self.assertCode(self.search("-z", "3", "-s", "one", "1.1"), 0)

    def test_pagedResults(self) -> None:
        """
        With C{-E pr=3/noprompt} ldapsearch pages through the whole
        organisation three entries at a time: every entry once, and a last
        page with an empty cookie.
        """
        assert self.server is not None
        result = subprocess.run(
            ["ldapsearch", "-x", "-H", self.server.url, "-b", BASE, "-E", "pr=3/noprompt",
             "(objectClass=*)", "1.1"],
            check=False, capture_output=True, text=True, env=dict(os.environ, LDAPNOINIT="1"),
            timeout=30,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        dns = re.findall(r"^dn: (.*)$", result.stdout, re.MULTILINE)
        self.assertEqual(len(dns), EXAMPLE_ENTRIES)
        self.assertEqual(len(set(dns)), EXAMPLE_ENTRIES)
        cookies = re.findall(r"^pagedresults: cookie=(.*)$", result.stdout, re.MULTILINE)
        self.assertEqual(len(cookies), -(-EXAMPLE_ENTRIES // 3))
        self.assertEqual(cookies[-1], "")
        self.assertNotIn("", cookies[:-1])

    def test_noSuchObject(self) -> None:
        """
        A search from a base that does not exist is noSuchObject (exit 32),
        and ldapsearch shows the matched DN: the deepest entry that exists.
        """
        result = self.search("-s", "base", base=f"uid=nobody,ou=nowhere,{PEOPLE}")
        self.assertCode(result, 32)
        self.assertIn("No such object (32)", result.err)
        self.assertIn(f"Matched DN: {PEOPLE}", result.err)
        outside = self.search("-s", "base", base="dc=example,dc=org")
        self.assertCode(outside, 32)
        self.assertNotIn("Matched DN", outside.err)

    def test_rootDSE(self) -> None:
        """
        The root DSE names the naming context, LDAPv3, the subschema entry,
        and the paged results control and both extended operations.
        """
        result = self.search("-s", "base", "(objectClass=*)", "+", "*", base="")
        attrs = result.entries()[""]
        self.assertEqual(attrs["namingContexts"], [BASE.encode()])
        self.assertEqual(attrs["supportedLDAPVersion"], [b"3"])
        self.assertEqual(attrs["subschemaSubentry"], [b"cn=Subschema"])
        self.assertIn(b"1.2.840.113556.1.4.319", attrs["supportedControl"])
        self.assertIn(b"1.3.6.1.4.1.4203.1.11.1", attrs["supportedExtension"])
        self.assertIn(b"1.3.6.1.4.1.4203.1.11.3", attrs["supportedExtension"])

    def test_unknownCriticalControl(self) -> None:
        """
        An unknown control marked critical fails the operation with
        unavailableCriticalExtension (12); the same control not critical is ignored.
        """
        result = self.search("-e", "!1.2.3.4", "-s", "base", "1.1")
        self.assertCode(result, 12)
        self.assertIn("Critical extension is unavailable (12)", result.err)
        self.assertDNs(self.search("-e", "1.2.3.4", "-s", "base", "1.1"), {BASE})

    def test_passwordPrivate(self) -> None:
        """
        userPassword is hidden from others and cannot be tested by them in a
        filter; its owner reads it.
        """
        self.assertUids("(userPassword=*)", set())
        anonymous = self.search("-s", "base", base=person("heidi")).entries()[person("heidi")]
        self.assertNotIn("userPassword", anonymous)
        own = self.search(
            "-s", "base", "userPassword", base=person("heidi"),
            bind=(person("heidi"), "heidi-secret"),
        )
        self.assertEqual(own.entries()[person("heidi")], {"userPassword": [b"heidi-secret"]})


class CompareTests(ClientTestsMixin, unittest.SynchronousTestCase):
    """
    ldapcompare: the answer is the exit status, compareTrue (6) or
    compareFalse (5).
    """

    def test_true(self) -> None:
        """
        A value the entry holds, under the attribute's matching rule, is TRUE (exit 6).
        """
        result = self.client("ldapcompare", person("dave"), "cn:DAVE  davis")
        self.assertCode(result, 6)
        self.assertEqual(result.out.strip(), "TRUE")
        self.assertCode(self.client("ldapcompare", person("dave"), "uidNumber:10004"), 6)

    def test_false(self) -> None:
        """
        A value the entry does not hold is FALSE (exit 5).
        """
        result = self.client("ldapcompare", person("dave"), "cn:Bob Brown")
        self.assertCode(result, 5)
        self.assertEqual(result.out.strip(), "FALSE")

    def test_base64Value(self) -> None:
        """
        A value given in base64 (C{attr::value}) is compared as its bytes.
        """
        self.assertCode(self.client("ldapcompare", person("dave"), "sn::RGF2aXM="), 6)

    def test_errors(self) -> None:
        """
        Compare fails with noSuchAttribute (16) for an attribute the entry
        lacks, undefinedAttributeType (17) for an unknown one, noSuchObject
        (32) for a missing entry, and insufficientAccessRights (50) for
        another's password.
        """
        self.assertCode(self.client("ldapcompare", person("dave"), "roomNumber:1"), 16)
        self.assertCode(self.client("ldapcompare", person("dave"), "noSuchAttribute:1"), 17)
        missing = self.client("ldapcompare", person("nobody"), "cn:x")
        self.assertCode(missing, 32)
        self.assertIn(f"Matched DN: {PEOPLE}", missing.out + missing.err)
        self.assertCode(self.client("ldapcompare", person("dave"), "userPassword:dave-secret"), 50)


class BindTests(ClientTestsMixin, unittest.SynchronousTestCase):
    """
    Simple binds checked with ldapwhoami.
    """

    def test_everyUser(self) -> None:
        """
        Every example user binds with their password, whichever scheme it is
        stored in, and is then known by their DN.
        """
        for uid, scheme in USERS.items():
            result = self.client("ldapwhoami", bind=(person(uid), f"{uid}-secret"))
            self.assertCode(result, 0)
            self.assertEqual(result.out.strip(), f"dn:{person(uid)}", scheme)

    def test_serviceAccounts(self) -> None:
        """
        The service accounts (simpleSecurityObject entries) bind too.
        """
        for uid in SERVICE_ACCOUNTS:
            dn = f"uid={uid},{SERVICES}"
            result = self.client("ldapwhoami", bind=(dn, f"{uid}-secret"))
            self.assertCode(result, 0)
            self.assertEqual(result.out.strip(), f"dn:{dn}")

    def test_rootDN(self) -> None:
        """
        The root DN, which has no entry, binds with the configured password.
        """
        result = self.client("ldapwhoami", bind=(ROOT_DN, ROOT_PASSWORD))
        self.assertCode(result, 0)
        self.assertEqual(result.out.strip(), f"dn:{ROOT_DN}")

    def test_anonymous(self) -> None:
        """
        Without a bind, "Who am I?" answers anonymous.
        """
        result = self.client("ldapwhoami")
        self.assertCode(result, 0)
        self.assertEqual(result.out.strip(), "anonymous")

    def test_wrongPassword(self) -> None:
        """
        A wrong password is invalidCredentials (49) for a user, a name that
        does not exist (the answer does not tell them apart) and the root DN.
        """
        for dn in (person("alice"), person("frank"), person("nobody"), ROOT_DN):
            result = self.client("ldapwhoami", bind=(dn, "wrong"))
            self.assertCode(result, 49)
            self.assertIn("Invalid credentials (49)", result.err)

    def test_emptyPassword(self) -> None:
        """
        A DN with an empty password is an unauthenticated bind, refused with
        unwillingToPerform (53) as RFC 4513 §5.1.2 recommends and slapd does.
        """
        result = self.client("ldapwhoami", bind=(person("alice"), ""))
        self.assertCode(result, 53)
        self.assertIn("unauthenticated bind (DN with no password) disallowed", result.err)


class WriteTests(ClientTestsMixin, unittest.SynchronousTestCase):
    """
    ldapadd, ldapmodify, ldapdelete and ldapmodrdn as the root DN. Every
    test writes entries of its own.
    """

    def addPerson(self, uid: str, parent: str = PEOPLE, extra: str = "") -> None:
        """
        Add a POSIX person under C{parent}.
        """
        ldif = (
            f"dn: uid={uid},{parent}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
            f"uid: {uid}\ncn: {uid.title()} Test\nsn: Test\nuidNumber: 20000\ngidNumber: 20000\n"
            f"homeDirectory: /home/{uid}\n{extra}"
        )
        self.assertCode(self.root("ldapadd", stdin=ldif), 0)

    def read(self, dn: str, *attributes: str) -> dict[str, list[bytes]]:
        """
        @return: the attributes of the entry C{dn}, as the root DN reads them.
        """
        result = self.search("-s", "base", *attributes, base=dn, bind=(ROOT_DN, ROOT_PASSWORD))
        self.assertCode(result, 0)
        return result.entries()[dn]

    def modify(
        self, dn: str, changes: str, bind: tuple[str, str] | None = (ROOT_DN, ROOT_PASSWORD)
    ) -> Result:
        """
        Run ldapmodify with one modify record.
        """
        record = f"dn: {dn}\nchangetype: modify\n{changes}"
        return self.client("ldapmodify", bind=bind, stdin=record)

    def test_addThenDelete(self) -> None:
        """
        An added entry can be searched for, carries the operational
        attributes naming its creator, and is gone once deleted.
        """
        dn = person("ada")
        result = self.root("ldapadd", stdin=(
            f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: ada\ncn: Ada Lovelace\nsn: Lovelace\n"
            "mail: ada@example.com\n"
        ))
        self.assertCode(result, 0)
        self.assertIn(f'adding new entry "{dn}"', result.out)
        self.assertUids("(mail=ada@example.com)", {"ada"})
        attrs = self.read(dn, "*", "+")
        self.assertEqual(attrs["cn"], [b"Ada Lovelace"])
        self.assertEqual(attrs["creatorsName"], [ROOT_DN.encode()])
        self.assertEqual(attrs["modifiersName"], [ROOT_DN.encode()])
        self.assertCode(self.root("ldapdelete", dn), 0)
        self.assertCode(self.search("-s", "base", base=dn), 32)

    def test_addRDNValueImplied(self) -> None:
        """
        An entry added without its RDN's value among its attributes gets it
        (RFC 4511 §4.7), as slapd does.
        """
        dn = person("bea")
        self.assertCode(self.root("ldapadd", stdin=(
            f"dn: {dn}\nobjectClass: inetOrgPerson\ncn: Bea\nsn: B\n"
        )), 0)
        self.assertEqual(self.read(dn, "uid"), {"uid": [b"bea"]})

    def test_addExisting(self) -> None:
        """
        Adding an entry that exists is entryAlreadyExists (68).
        """
        result = self.root("ldapadd", stdin=(
            f"dn: {person('alice')}\nobjectClass: inetOrgPerson\nuid: alice\ncn: A\nsn: A\n"
        ))
        self.assertCode(result, 68)
        self.assertIn("Already exists (68)", result.err)

    def test_addWithoutParent(self) -> None:
        """
        Adding below an entry that does not exist is noSuchObject (32) with
        the deepest existing superior as matched DN.
        """
        result = self.root("ldapadd", stdin=(
            f"dn: uid=x,ou=nowhere,{BASE}\nobjectClass: inetOrgPerson\nuid: x\ncn: X\nsn: X\n"
        ))
        self.assertCode(result, 32)
        self.assertIn(f"matched DN: {BASE}", result.err)

    def test_addObjectClassViolation(self) -> None:
        """
        An entry lacking an attribute its classes require, holding one they
        do not allow, or without exactly one chain of structural classes is
        objectClassViolation (65), with slapd's message.
        """
        missing = self.root("ldapadd", stdin=(
            f"dn: {person('cy')}\nobjectClass: inetOrgPerson\nuid: cy\ncn: Cy\n"
        ))
        self.assertCode(missing, 65)
        self.assertIn("requires attribute 'sn'", missing.err)
        notAllowed = self.root("ldapadd", stdin=(
            f"dn: {person('cy')}\nobjectClass: inetOrgPerson\nuid: cy\ncn: Cy\nsn: C\n"
            "uidNumber: 5\n"
        ))
        self.assertCode(notAllowed, 65)
        self.assertIn("attribute 'uidNumber' not allowed", notAllowed.err)
        noStructural = self.root(
            "ldapadd", stdin=f"dn: {person('cy')}\nobjectClass: top\nuid: cy\n"
        )
        self.assertCode(noStructural, 65)
        self.assertIn("no structural object class provided", noStructural.err)
        twoChains = self.root("ldapadd", stdin=(
            f"dn: {person('cy')}\nobjectClass: inetOrgPerson\nobjectClass: account\nuid: cy\n"
            "cn: Cy\nsn: C\n"
        ))
        self.assertCode(twoChains, 65)
        self.assertIn(
            "invalid structural object class chain (inetOrgPerson/account)", twoChains.err
        )

    def test_addUndefinedAttribute(self) -> None:
        """
        An attribute type the schema does not define is undefinedAttributeType (17).
        """
        result = self.root("ldapadd", stdin=(
            f"dn: {person('di')}\nobjectClass: inetOrgPerson\nuid: di\ncn: Di\nsn: D\n"
            "favouriteColour: red\n"
        ))
        self.assertCode(result, 17)
        self.assertIn("favouriteColour: attribute type undefined", result.err)

    def test_addInvalidSyntax(self) -> None:
        """
        A value that its attribute's syntax rejects is invalidAttributeSyntax (21).
        """
        result = self.root("ldapadd", stdin=(
            f"dn: {person('ed')}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: ed\n"
            "cn: Ed\nsn: E\nuidNumber: many\ngidNumber: 1\nhomeDirectory: /home/ed\n"
        ))
        self.assertCode(result, 21)
        self.assertIn("uidNumber: value #0 invalid per syntax", result.err)

    def test_modify(self) -> None:
        """
        Add, delete (one value and a whole attribute) and replace, in one
        request and in several.
        """
        dn = person("fay")
        self.addPerson("fay", extra="description: first\ntelephoneNumber: 1\n")
        self.assertCode(
            self.modify(dn, "add: mail\nmail: fay@example.com\nmail: f@example.com\n"), 0
        )
        self.assertCode(self.modify(dn, "delete: mail\nmail: F@EXAMPLE.COM\n"), 0)
        self.assertCode(self.modify(
            dn, "replace: description\ndescription: second\n-\ndelete: telephoneNumber\n-\n"
                "add: title\ntitle: Tester\n"
        ), 0)
        attrs = self.read(dn)
        self.assertEqual(attrs["mail"], [b"fay@example.com"])
        self.assertEqual(attrs["description"], [b"second"])
        self.assertEqual(attrs["title"], [b"Tester"])
        self.assertNotIn("telephoneNumber", attrs)
        self.assertEqual(self.read(dn, "modifiersName")["modifiersName"], [ROOT_DN.encode()])

    def test_modifyIncrement(self) -> None:
        """
        Modify-Increment (RFC 4525) adds to an integer, negative amounts too.
        """
        dn = person("gus")
        self.addPerson("gus")
        self.assertCode(self.modify(dn, "increment: uidNumber\nuidNumber: 5\n"), 0)
        self.assertEqual(self.read(dn, "uidNumber"), {"uidNumber": [b"20005"]})
        self.assertCode(self.modify(dn, "increment: uidNumber\nuidNumber: -10\n"), 0)
        self.assertEqual(self.read(dn, "uidNumber"), {"uidNumber": [b"19995"]})
        self.assertCode(self.modify(dn, "increment: cn\ncn: 1\n"), 19)

    def test_modifyErrors(self) -> None:
        """
        A failing modification fails the whole request and changes nothing:
        an existing value is attributeOrValueExists (20), a missing one
        noSuchAttribute (16), a second value of a single-valued type
        constraintViolation (19), a missing MUST objectClassViolation (65),
        an unknown type undefinedAttributeType (17).
        """
        dn = person("hal")
        self.addPerson("hal", extra="mail: hal@example.com\n")
        cases = [
            ("add: mail\nmail: HAL@example.com\n", 20),
            ("delete: mail\nmail: other@example.com\n", 16),
            ("delete: telephoneNumber\n", 16),
            ("add: uidNumber\nuidNumber: 7\n", 19),
            ("delete: sn\n", 65),
            ("add: favouriteColour\nfavouriteColour: red\n", 17),
            ("replace: title\ntitle: Changed\n-\ndelete: mail\nmail: other@example.com\n", 16),
        ]
        for changes, code in cases:
            self.assertCode(self.modify(dn, changes), code)
        attrs = self.read(dn)
        self.assertEqual(attrs["mail"], [b"hal@example.com"])
        self.assertNotIn("title", attrs)

    def test_modifyMissingEntry(self) -> None:
        """
        Modifying an entry that does not exist is noSuchObject (32).
        """
        self.assertCode(self.modify(person("nobody"), "replace: title\ntitle: x\n"), 32)

    def test_delete(self) -> None:
        """
        Deleting an entry with children is notAllowedOnNonLeaf (66); a
        missing entry is noSuchObject (32) with its matched DN.
        """
        result = self.root("ldapdelete", PEOPLE)
        self.assertCode(result, 66)
        self.assertIn("Operation not allowed on non-leaf (66)", result.err)
        missing = self.root("ldapdelete", person("nobody"))
        self.assertCode(missing, 32)
        self.assertIn(f"matched DN: {PEOPLE}", missing.err)

    def test_outsideNamingContexts(self) -> None:
        """
        A write to a name in no naming context is unwillingToPerform (53)
        with slapd's "no global superior knowledge".
        """
        result = self.root("ldapdelete", "dc=example,dc=org")
        self.assertCode(result, 53)
        self.assertIn("no global superior knowledge", result.err)

    def test_anonymousWrite(self) -> None:
        """
        Anonymous clients may not write: add, modify, delete and modrdn are
        strongAuthRequired (8) with slapd's "modifications require
        authentication", and nothing changes.
        """
        add = self.client("ldapadd", stdin=(
            f"dn: {person('ian')}\nobjectClass: inetOrgPerson\nuid: ian\ncn: Ian\nsn: I\n"
        ))
        self.assertCode(add, 8)
        self.assertIn("modifications require authentication", add.err)
        self.assertCode(self.modify(person("bob"), "replace: title\ntitle: x\n", bind=None), 8)
        self.assertCode(self.client("ldapdelete", person("bob")), 8)
        self.assertCode(self.client("ldapmodrdn", person("bob"), "uid=rob"), 8)
        self.assertCode(self.search("-s", "base", base=person("ian")), 32)
        self.assertEqual(
            self.read(person("bob"), "title"), {"title": [b"Senior Software Engineer"]}
        )

    def test_userWritesOnlyOwnPassword(self) -> None:
        """
        Without an access-control plugin a user may change their own
        userPassword and nothing else (insufficientAccessRights, 50).
        """
        alice = (person("alice"), "alice-secret")
        self.assertCode(self.modify(person("alice"), "replace: title\ntitle: x\n", bind=alice), 50)
        self.assertCode(self.modify(person("bob"), "replace: title\ntitle: x\n", bind=alice), 50)
        own = "replace: userPassword\nuserPassword: alice-secret\n"
        self.assertCode(self.modify(person("alice"), own, bind=alice), 0)

    def test_modrdnKeepOldRDN(self) -> None:
        """
        ldapmodrdn without -r renames and keeps the old RDN value in the entry.
        """
        self.addPerson("jo")
        result = self.root("ldapmodrdn", person("jo"), "uid=joanna")
        self.assertCode(result, 0)
        self.assertCode(self.search("-s", "base", base=person("jo")), 32)
        self.assertEqual(sorted(self.read(person("joanna"), "uid")["uid"]), [b"jo", b"joanna"])

    def test_modrdnDeleteOldRDN(self) -> None:
        """
        ldapmodrdn -r renames and removes the old RDN value.
        """
        self.addPerson("kim")
        self.assertCode(self.root("ldapmodrdn", "-r", person("kim"), "uid=kimberly"), 0)
        self.assertEqual(self.read(person("kimberly"), "uid"), {"uid": [b"kimberly"]})

    def test_modrdnNewSuperior(self) -> None:
        """
        ldapmodrdn -s moves an entry under a new parent; a new parent that
        does not exist is noSuchObject (32).
        """
        self.addPerson("lee")
        self.assertCode(self.root("ldapmodrdn", "-s", SERVICES, person("lee"), "uid=lee"), 0)
        self.assertDNs(self.search("(uid=lee)", "1.1"), {f"uid=lee,{SERVICES}"})
        self.assertCode(
            self.root("ldapmodrdn", "-s", f"ou=nowhere,{BASE}", f"uid=lee,{SERVICES}", "uid=lee"),
            32,
        )

    def test_modrdnSubtree(self) -> None:
        """
        Renaming an entry with children renames the whole subtree: the
        children are found under the new name, and the old name is gone.
        """
        self.assertCode(self.root("ldapadd", stdin=(
            f"dn: ou=lab,{BASE}\nobjectClass: organizationalUnit\nou: lab\n\n"
            f"dn: ou=team,ou=lab,{BASE}\nobjectClass: organizationalUnit\nou: team\n"
        )), 0)
        self.addPerson("max", parent=f"ou=team,ou=lab,{BASE}")
        self.assertCode(self.root("ldapmodrdn", "-r", f"ou=lab,{BASE}", "ou=research"), 0)
        self.assertDNs(
            self.search("(objectClass=*)", "1.1", base=f"ou=research,{BASE}"),
            {
                f"ou=research,{BASE}",
                f"ou=team,ou=research,{BASE}",
                f"uid=max,ou=team,ou=research,{BASE}",
            },
        )
        self.assertCode(self.search(base=f"ou=team,ou=lab,{BASE}"), 32)
        self.assertEqual(
            self.read(f"uid=max,ou=team,ou=research,{BASE}", "entryDN")["entryDN"],
            [f"uid=max,ou=team,ou=research,{BASE}".encode()],
        )

    def test_modrdnErrors(self) -> None:
        """
        Renaming onto an existing name is entryAlreadyExists (68), a missing
        entry noSuchObject (32), and moving an entry below itself
        unwillingToPerform (53).
        """
        self.addPerson("ned")
        self.assertCode(self.root("ldapmodrdn", person("ned"), "uid=alice"), 68)
        self.assertCode(self.root("ldapmodrdn", person("nobody"), "uid=x"), 32)
        self.assertCode(self.root("ldapmodrdn", "-s", person("ned"), PEOPLE, "ou=people"), 53)


class PasswordModifyTests(ClientTestsMixin, unittest.SynchronousTestCase):
    """
    ldappasswd: the Password Modify extended operation (RFC 3062). Every
    test changes a different user's password.
    """

    def whoami(self, dn: str, password: str) -> Result:
        return self.client("ldapwhoami", bind=(dn, password))

    def test_changeOwn(self) -> None:
        """
        A user sets their own new password: it works at once and the old one
        no longer does.
        """
        bob = person("bob")
        result = self.client("ldappasswd", "-s", "bob-new", bind=(bob, "bob-secret"))
        self.assertCode(result, 0)
        self.assertEqual(result.out.strip(), "")
        self.assertCode(self.whoami(bob, "bob-new"), 0)
        self.assertCode(self.whoami(bob, "bob-secret"), 49)

    def test_generated(self) -> None:
        """
        Without a new password the server generates one and returns it;
        ldappasswd prints it, and it works.
        """
        carol = person("carol")
        result = self.client("ldappasswd", bind=(carol, "carol-secret"))
        self.assertCode(result, 0)
        match = re.fullmatch(r"New password: (\S+)\n", result.out)
        self.assertIsNotNone(match, result)
        assert match is not None
        self.assertCode(self.whoami(carol, match.group(1)), 0)
        self.assertCode(self.whoami(carol, "carol-secret"), 49)

    def test_oldPassword(self) -> None:
        """
        With the old password given (-a), a right one is accepted and a
        wrong one refused with unwillingToPerform (53), as slapd does.
        """
        dave = person("dave")
        wrong = self.client("ldappasswd", "-a", "wrong", "-s", "x", bind=(dave, "dave-secret"))
        self.assertCode(wrong, 1)
        self.assertIn("Server is unwilling to perform (53)", wrong.out + wrong.err)
        self.assertCode(self.client(
            "ldappasswd", "-a", "dave-secret", "-s", "dave-new", bind=(dave, "dave-secret")
        ), 0)
        self.assertCode(self.whoami(dave, "dave-new"), 0)

    def test_rootSetsPassword(self) -> None:
        """
        The root DN sets a user's password by naming the user.
        """
        result = self.root("ldappasswd", "-s", "eve-new", person("eve"))
        self.assertCode(result, 0)
        self.assertCode(self.whoami(person("eve"), "eve-new"), 0)

    def test_refused(self) -> None:
        """
        Anonymous clients get strongerAuthRequired (8), a user changing
        another's password insufficientAccessRights (50), and a user that
        does not exist noSuchObject (32). ldappasswd itself exits 1.
        """
        anonymous = self.client("ldappasswd", "-s", "x", person("grace"))
        self.assertIn("Strong(er) authentication required (8)", anonymous.out + anonymous.err)
        other = self.client(
            "ldappasswd", "-s", "x", person("grace"), bind=(person("frank"), "frank-secret")
        )
        self.assertIn("Insufficient access (50)", other.out + other.err)
        missing = self.root("ldappasswd", "-s", "x", person("nobody"))
        self.assertIn("No such object (32)", missing.out + missing.err)
        for result in (anonymous, other, missing):
            self.assertCode(result, 1)
        self.assertCode(self.whoami(person("grace"), "grace-secret"), 0)


class ConfigErrorTests(unittest.SynchronousTestCase):
    """
    A bad configuration stops C{twist ldapd} before it serves anything.
    """

    def twist(self, config: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        """
        Run C{python -m twisted ldapd --config} on a configuration file, as
        L{ldapd.testing.ServerProcess} does.

        @return: the finished process and the file's path.
        """
        path = Path(tempfile.mkdtemp(prefix="ldapd-test-")) / "bad.toml"
        path.write_text(config)
        completed = subprocess.run(
            [sys.executable, "-m", "twisted", "ldapd", "--config", str(path)],
            check=False, capture_output=True, text=True, env=childEnvironment(), timeout=60,
        )
        return completed, path

    def test_oneLine(self) -> None:
        """
        Each problem is reported as exactly one line naming the file, the
        key and what is wrong, and the process exits with EX_CONFIG (78)
        without printing a traceback or usage text.
        """
        database = '[[database]]\nsuffix = "dc=example,dc=com"\n'
        cases = [
            ('[server]\nlisten = ["tcp:0"]\nsize_limit = -1\n' + database,
             "server.size_limit", "must not be negative"),
            ('[server]\nlisten = ["tcp:0"]\n' + database + 'backend = "nosuch"\n',
             "database[0].backend", "unknown name 'nosuch'"),
            ('[server]\nlisten = ["tcp:0"]\n' + database + "bogus = 1\n",
             "database[0].bogus", "unknown key"),
        ]
        for config, key, problem in cases:
            completed, path = self.twist(config)
            self.assertEqual(completed.returncode, 78, completed.stderr)
            lines = completed.stderr.splitlines()
            self.assertEqual(len(lines), 1, completed.stderr)
            self.assertIn(str(path), lines[0])
            self.assertIn(key, lines[0])
            self.assertIn(problem, lines[0])

    def test_rootPasswordUnknownScheme(self) -> None:
        """
        A root password beginning with a C{{...}} prefix that names no
        scheme (a cleartext password beginning with C{{}, which could never
        bind) stops start-up, naming the key and the scheme.
        """
        completed, path = self.twist(
            '[server]\nlisten = ["tcp:0"]\n[[database]]\nsuffix = "dc=example,dc=com"\n'
            'root_dn = "cn=admin,dc=example,dc=com"\nroot_password = "{my}secret"\n')
        self.assertEqual(completed.returncode, 78, completed.stderr)
        self.assertEqual(
            completed.stderr,
            f"ldapd: {path}: database[0].root_password: unknown password scheme {{MY}} (known: "
            "{SHA}, {SHA256}, {SHA384}, {SHA512}, {MD5}, {SSHA}, {SSHA256}, {SSHA384}, "
            "{SSHA512}, {SMD5}, {PBKDF2}, {PBKDF2-SHA1}, {PBKDF2-SHA256}, {PBKDF2-SHA512}, "
            "{ARGON2}, {CRYPT}); a cleartext password cannot begin with a {...} prefix: store a "
            "hash (ldapd-admin hash)\n")

    def test_seedRefused(self) -> None:
        """
        A C{seed_ldif} entry the directory refuses stops start-up with status
        1 and one line naming the file, the line and the entry, rather than
        a server that listens and never answers; the database is left
        empty, not half seeded, so that the mended file seeds it on the
        next start.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-test-"))
        seed = folder / "seed.ldif"
        good = ("dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\n"
                "dc: example\no: Example\n\n"
                "dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n")
        seed.write_text(good + "dn: uid=x,ou=people,dc=example,dc=com\nobjectClass: person\n"
                        "cn: x\nsn: x\n")
        config = (f'[server]\nlisten = ["tcp:0:interface=127.0.0.1"]\n[[database]]\n'
                  f'suffix = "dc=example,dc=com"\nbackend = "sql"\nurl = "sqlite:///{folder}/s.db"\n'
                  f'seed_ldif = "{seed}"\n')
        completed, path = self.twist(config)
        self.assertEqual(completed.returncode, 1, completed.stderr)
        self.assertEqual(completed.stderr,
                         f"ldapd: cannot open the directory: {seed}: line 11: uid=x,ou=people,"
                         "dc=example,dc=com: namingViolation: value of naming attribute 'uid' is "
                         "not present in entry\n")
        self.assertNotIn("Traceback", completed.stderr)
        self.assertNotIn("serving", completed.stdout)
        # Not even the suffix entry, which the seed's first record is.
        exported = subprocess.run(
            [sys.executable, "-m", "ldapd.admin", "export", "-q", str(path)],
            check=False, capture_output=True, text=True, env=childEnvironment(), timeout=60)
        self.assertEqual((exported.returncode, exported.stdout), (1, ""))
        self.assertIn("ldapd-admin: noSuchObject: no such object\n", exported.stderr)

    def test_listenerInUse(self) -> None:
        """
        A listener whose port is taken stops start-up with one line naming
        it and a non-zero exit status, rather than a server that logs
        "serving" without it; with one process or several (C{workers}).
        """
        sql = 'backend = "sql"\nurl = "sqlite:///w.db"\n'
        for extra, database in [("", ""), ("workers = 2\n", sql)]:
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen()
                port = taken.getsockname()[1]
                completed, _ = self.twist(
                    f'[server]\n{extra}listen = ["tcp:{port}:interface=127.0.0.1"]\n'
                    f'[[database]]\nsuffix = "dc=example,dc=com"\n{database}')
            self.assertEqual(completed.returncode, 1, completed.stderr)
            self.assertEqual(completed.stderr, f"ldapd: cannot listen on tcp:{port}:"
                             "interface=127.0.0.1: Address already in use\n")
            self.assertNotIn("serving", completed.stdout)
