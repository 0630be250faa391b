"""
Dynamic and nested groups. Through real clients: the C{dynlist} plugin side
by side with slapd's dynlist overlay (C{dynlist-attrset groupOfURLs
memberURL member}), through ldapsearch, ldapcompare, python-ldap and ldap3;
then nested groups (the memberof plugin's C{nested = true}) and
LDAP_MATCHING_RULE_IN_CHAIN, which slapd does not have, in ldapd alone. In
process: the plugin on the memory and sql backends, its configuration, and
the LDAP URL parser.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import ldap
import ldap3
import pytest
from ldaptor.protocols import pureber, pureldap
from twisted.internet import defer
from twisted.trial import unittest

from ldapd import requests
from ldapd.ldapurl import InvalidLDAPURL, parseLDAPURL
from ldapd.operation import Scope
from ldapd.plugins.dynlist import AttrSet, DynamicLists, DynamicListsFactory
from ldapd.registry import ConfigContext, ConfigError
from ldapd.schema import Schema
from ldapd.testing import (
    SLAPD,
    DirectoryTestsMixin,
    ServerTestsMixin,
    SlapdProcess,
    exampleConfig,
    wireFilter,
)
from test_transactions import ALICE, GROUPS, PASSWORD, PEOPLE, ROOT_DN

pytestmark = pytest.mark.integration

BOB = f"uid=bob,{PEOPLE}"
CAROL = f"uid=carol,{PEOPLE}"
DYNAMIC = f"cn=dynamic,{GROUPS}"
MIXED = f"cn=mixed,{GROUPS}"
IN_CHAIN = "1.2.840.113556.1.4.1941"

#: Where Debian's slapd keeps its schema files.
SLAPD_SCHEMA = "/etc/ldap/schema"

#: The groups both servers get: one with members by URL only, one with a
#: static member too.
GROUPS_LDIF = f"""\
dn: {DYNAMIC}
objectClass: groupOfURLs
cn: dynamic
memberURL: ldap:///{PEOPLE}??one?(|(uid=bob)(uid=carol))

dn: {MIXED}
objectClass: groupOfURLs
objectClass: extensibleObject
cn: mixed
member: {ALICE}
memberURL: ldap:///{PEOPLE}??one?(uid=bob)
"""


def _lower(values: Any) -> set[str]:
    return {(v.decode() if isinstance(v, bytes) else str(v)).lower() for v in values}


class DynamicGroupTestsMixin:
    """
    Dynamic groups, the same checks against both servers: C{url} is one
    holding the example organisation and L{GROUPS_LDIF}.
    """

    url: str

    @classmethod
    def addGroups(cls, url: str) -> None:
        subprocess.run(["ldapadd", "-x", "-H", url, "-D", ROOT_DN, "-w", PASSWORD],
                       input=GROUPS_LDIF.encode(), capture_output=True, check=True, timeout=60)

    def ldapsearch(self, base: str, scope: str, filterText: str, *attributes: str) -> str:
        done = subprocess.run(
            ["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", self.url, "-b", base,
             "-s", scope, filterText, *attributes],
            capture_output=True, check=True, timeout=60)
        return done.stdout.decode()

    def ldapcompare(self, dn: str, assertion: str) -> int:
        return subprocess.run(["ldapcompare", "-x", "-H", self.url, dn, assertion],
                              capture_output=True, check=False, timeout=60).returncode

    def test_read(self) -> None:
        """
        A dynamic group is read with the entries its URL finds as members
        (ldapsearch).
        """
        found = self.ldapsearch(DYNAMIC, "base", "(objectClass=*)", "member")
        self.assertEqual(sorted(line.lower() for line in found.splitlines() if line.startswith("member:")),
                         [f"member: {BOB}", f"member: {CAROL}"])  # type: ignore[attr-defined]

    def test_staticKept(self) -> None:
        """
        The members a group holds itself stay, next to those found
        (python-ldap).
        """
        conn = ldap.initialize(self.url)
        self.addCleanup(conn.unbind_s)  # type: ignore[attr-defined]
        [(_, attributes)] = conn.search_s(MIXED, ldap.SCOPE_BASE, attrlist=["member"])
        self.assertEqual(_lower(attributes["member"]), {ALICE, BOB})  # type: ignore[attr-defined]

    def test_filterOnMember(self) -> None:
        """
        A filter on member finds dynamic groups by their expanded members,
        and the static groups as before (ldap3).
        """
        conn = ldap3.Connection(self.url, auto_bind=True)
        self.addCleanup(conn.unbind)  # type: ignore[attr-defined]
        conn.search(GROUPS, f"(member={CAROL})", ldap3.SUBTREE, attributes=["1.1"])
        self.assertEqual(_lower(e.entry_dn for e in conn.entries),  # type: ignore[attr-defined]
                         {DYNAMIC, f"cn=developers,{GROUPS}", f"cn=staff,{GROUPS}"})
        conn.search(GROUPS, f"(&(objectClass=groupOfURLs)(member={BOB}))", ldap3.SUBTREE,
                    attributes=["1.1"])
        self.assertEqual(_lower(e.entry_dn for e in conn.entries), {DYNAMIC, MIXED})  # type: ignore[attr-defined]

    def test_compare(self) -> None:
        """
        Compare answers from the expanded members (ldapcompare: 6 is
        compareTrue, 5 compareFalse).
        """
        self.assertEqual(self.ldapcompare(DYNAMIC, f"member:{BOB}"), 6)  # type: ignore[attr-defined]
        self.assertEqual(self.ldapcompare(DYNAMIC, f"member:{ALICE}"), 5)  # type: ignore[attr-defined]


class LdapdDynamicGroupTests(DynamicGroupTestsMixin, ServerTestsMixin, unittest.SynchronousTestCase):
    """
    The dynlist plugin (before the memberof plugin, nested).
    """

    serverConfig = exampleConfig() + (
        '\n[[plugin]]\nname = "ldapd.plugins.dynlist:DynamicListsFactory"\n'
        '\n[[plugin]]\nname = "memberof"\nnested = true\n')

    @classmethod
    def startServer(cls) -> Any:
        server = super().startServer()  # type: ignore[misc]
        cls.addGroups(server.url)
        return server

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url  # type: ignore[no-any-return]

    def test_staticCompared(self) -> None:
        """
        Compare of a static member of a dynamic group is true (slapd 2.5's
        dynlist answers false: it compares the expanded members only).
        """
        self.assertEqual(self.ldapcompare(MIXED, f"member:{ALICE}"), 6)

    def test_notMember(self) -> None:
        """
        A negated filter on member leaves out the dynamic groups that have
        the member (slapd 2.5 tests the stored entry and returns them).
        """
        found = self.ldapsearch(GROUPS, "one", f"(!(member={BOB}))", "1.1")
        self.assertNotIn(DYNAMIC.lower(), found.lower())
        self.assertIn(f"cn=admins,{GROUPS}".lower(), found.lower())

    def test_nestedMemberOf(self) -> None:
        """
        With the memberof plugin's C{nested = true}, a member of a group
        nested in another names both (ldapsearch), and the in-chain rule
        finds it by the outer group and the outer group by it.
        """
        top = f"cn=top,{GROUPS}"
        subprocess.run(["ldapadd", "-x", "-H", self.url, "-D", ROOT_DN, "-w", PASSWORD],
                       input=(f"dn: {top}\nobjectClass: groupOfNames\ncn: top\n"
                              f"member: cn=admins,{GROUPS}\n").encode(),
                       capture_output=True, check=True, timeout=60)
        found = self.ldapsearch(ALICE, "base", "(objectClass=*)", "memberOf")
        self.assertIn(f"memberOf: {top}".lower(), found.lower())
        found = self.ldapsearch(PEOPLE, "one", f"(memberOf:{IN_CHAIN}:={top})", "1.1")
        self.assertEqual(found.lower().split(), ["dn:", ALICE.lower()])
        found = self.ldapsearch(GROUPS, "one", f"(member:{IN_CHAIN}:={ALICE})", "1.1")
        self.assertIn(top.lower(), found.lower())
        self.assertIn(f"cn=admins,{GROUPS}".lower(), found.lower())


class SlapdDynamicGroupTests(DynamicGroupTestsMixin, ServerTestsMixin, unittest.SynchronousTestCase):
    """
    The same checks against slapd with its dynlist overlay.
    """

    @classmethod
    def startServer(cls) -> Any:
        if not SLAPD.is_file():
            raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
        slapd = SlapdProcess(globalConfig=f"include {SLAPD_SCHEMA}/dyngroup.schema\n",
                             modules=["dynlist"],
                             databaseConfig="overlay dynlist\n"
                                            "dynlist-attrset groupOfURLs memberURL member\n")
        slapd.loadExample()
        slapd.start()
        cls.addGroups(slapd.url)
        return slapd

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url  # type: ignore[no-any-return]


class LDAPURLTests(unittest.SynchronousTestCase):
    """
    L{parseLDAPURL}: RFC 4516's parts and defaults.
    """

    def test_parts(self) -> None:
        """
        The DN, attributes, scope and filter are read, percent-decoded.
        """
        url = parseLDAPURL(f"ldap://h:389/{PEOPLE.replace(',', '%2C')}?cn,sn?sub?(uid=a%28b)")
        self.assertEqual((url.host, str(url.dn), url.attributes, url.scope),
                         ("h:389", PEOPLE, ("cn", "sn"), Scope.SUB))
        self.assertEqual(url.filter, requests.Equality(b"uid", b"a(b"))

    def test_defaults(self) -> None:
        """
        A missing scope is base, a missing filter (objectClass=*).
        """
        url = parseLDAPURL(f"ldap:///{PEOPLE}")
        self.assertEqual((url.scope, url.filter), (Scope.BASE, requests.Present(b"objectClass")))

    def test_invalid(self) -> None:
        """
        Another scheme, a bad scope, filter or DN, or a critical extension
        are refused.
        """
        for text in ("http://x/", "ldap:///dc=x??deep", "ldap:///dc=x???(uid=", "ldap:///x??base",
                     "ldap:///dc=x????!e-x"):
            self.assertRaises(InvalidLDAPURL, parseLDAPURL, text)


class DynamicListsTestsMixin(DirectoryTestsMixin):
    """
    The dynlist plugin in process, on each backend: C{cn=dynamic} holds bob
    and carol by URL.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        return [DynamicLists(schema, [AttrSet(schema, "groupOfURLs memberURL member")])]

    async def addDynamic(self) -> None:
        self.assertEqual(await self.add(DYNAMIC, [
            ("objectClass", [b"groupOfURLs"]), ("cn", [b"dynamic"]),
            ("memberURL", [f"ldap:///{PEOPLE}??one?(|(uid=bob)(uid=carol))".encode()])]), 0)

    async def search(self, base: str, scope: int, text: str, *attributes: str) -> list[Any]:
        responses = await self.request(pureldap.LDAPSearchRequest(
            baseObject=base, scope=scope, filter=wireFilter(text), attributes=list(attributes)))
        self.assertEqual(responses[-1].value.resultCode, 0)
        return [r.value for r in responses[:-1]]

    async def _test_expanded(self) -> None:
        await self.addDynamic()
        [entry] = await self.search(DYNAMIC, 0, "(objectClass=*)", "member")
        self.assertEqual(_lower(v for _, values in entry.attributes for v in values), {BOB, CAROL})
        found = await self.search(GROUPS, 1, f"(member={BOB})", "1.1")
        self.assertIn(DYNAMIC, _lower(e.objectName for e in found))
        self.assertEqual((await self.request(pureldap.LDAPCompareRequest(
            entry=DYNAMIC, ava=pureldap.LDAPAttributeValueAssertion(
                pureber.BEROctetString("member"), pureber.BEROctetString(CAROL)))))[-1].value.resultCode, 6)
        # Stored as written.
        stored = await self.read(DYNAMIC)
        assert stored is not None
        self.assertEqual(stored.get("member"), ())

    def test_expanded(self) -> Any:
        """
        A dynamic group is read, found by member and compared with its
        members expanded; nothing is stored.
        """
        return defer.Deferred.fromCoroutine(self._test_expanded())


class MemoryDynamicListsTests(DynamicListsTestsMixin, unittest.TestCase):
    backend = "memory"


class SQLiteDynamicListsTests(DynamicListsTestsMixin, unittest.TestCase):
    backend = "sqlite"


class DynamicListsConfigTests(unittest.SynchronousTestCase):
    """
    L{DynamicListsFactory}: settings checked against the schema.
    """

    def context(self) -> ConfigContext:
        return ConfigContext(Path("ldapd.toml"), "plugin[0]", Schema.standard(), None)

    def test_defaults(self) -> None:
        """
        Without settings, slapd's usual set: groupOfURLs memberURL member.
        """
        plugin = DynamicListsFactory.fromConfig({}, self.context())
        [attrset] = plugin.attrsets
        self.assertEqual((attrset.objectClass.name, attrset.urlType.name, attrset.memberType.name),
                         ("groupOfURLs", "memberURL", "member"))

    def test_invalid(self) -> None:
        """
        A set that is not three names the schema defines, the last of DN
        syntax, stops start-up naming the key.
        """
        for value in ("groupOfURLs memberURL", "nothing memberURL member", "groupOfURLs memberURL cn"):
            with self.assertRaises(ConfigError) as caught:
                DynamicListsFactory.fromConfig({"attrset": value}, self.context())
            self.assertIn("plugin[0].attrset", str(caught.exception))
