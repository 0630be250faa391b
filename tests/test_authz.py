"""
Tests for L{ldapd.authz} (who may act as whom: the proxied authorization
control and SASL authorization identities under C{authz_policy}) and for
L{ldapd.naming}'s edges that slapd cannot be compared on here (alias chains
too long, paged searches with references), on a directory driven directly.
"""

from __future__ import annotations

from typing import Any

from ldaptor.protocols import pureldap
from twisted.internet import defer
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from ldapd import accesslog
from ldapd.authz import PROXIED_AUTHZ, AuthorizationDenied, AuthzPolicy
from ldapd.controls import MANAGE_DSA_IT, PAGED_RESULTS
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.limits import IdentityLimit, Limits
from ldapd.naming import MAX_ALIAS_CHAIN
from ldapd.operation import ANONYMOUS, Identity
from ldapd.sasl import Authentication, IdentityMapping
from ldapd.schema import Schema
from ldapd.testing import DirectoryTestsMixin, wireFilter

SUFFIX = "dc=example,dc=com"
ROOT = f"cn=admin,{SUFFIX}"
PEOPLE = f"ou=people,{SUFFIX}"
ALICE = f"uid=alice,{PEOPLE}"
BOB = f"uid=bob,{PEOPLE}"
CAROL = f"uid=carol,{PEOPLE}"
DAVE = f"uid=dave,{PEOPLE}"


class _DirectoryTestsBase(DirectoryTestsMixin, unittest.TestCase):
    """
    The example organisation, with C{policy} and C{limits}, and a PLAIN
    user name mapping (C{uid=<name>,cn=auth} or C{uid=<name>,cn=plain,cn=auth}
    to the person).
    """

    policy = "none"
    limits = Limits()

    def directoryOptions(self) -> dict[str, Any]:
        return {"authzPolicy": self.policy, "limits": self.limits,
                "authentication": Authentication([IdentityMapping.compile(
                    r"^uid=([^,]+),cn=(plain,)?auth$", "uid=$1," + PEOPLE)])}

    def identity(self, dn: str) -> Identity:
        name = DN.parse(dn)
        return Identity(name, self.ndn(dn), isRoot=dn == ROOT)

    async def write(self, dn: str, attribute: str, *values: str) -> None:
        """
        Add values to an entry, as the root DN.
        """
        self.assertEqual(await self.modify(dn, ("add", attribute, [v.encode() for v in values])),
                         0)

    async def make(self, dn: str, **attributes: str | list[str]) -> None:
        """
        Add an entry, as the root DN.
        """
        self.assertEqual(await self.add(dn, [
            (k, [v.encode()] if isinstance(v, str) else [x.encode() for x in v])
            for k, v in attributes.items()]), 0)

    async def search(self, base: str, scope: int = 2, filterText: str = "(objectClass=*)",
                     deref: int = 0, controls: Any = None, identity: str | None = None,
                     ) -> tuple[int, str, list[str]]:
        """
        A search as C{identity} (anonymous by default).

        @return: the result code, matched DN and what was sent (entries'
            DNs, references' URLs), sorted.
        """
        bound = self.connection.identity
        self.connection.identity = ANONYMOUS if identity is None else self.identity(identity)
        try:
            responses = await self.request(pureldap.LDAPSearchRequest(
                baseObject=base, scope=scope, derefAliases=deref, filter=wireFilter(filterText),
                attributes=["1.1"]), controls)
        finally:
            self.connection.identity = bound
        done = responses[-1].value
        found = []
        for response in responses[:-1]:
            value = response.value
            if isinstance(value, pureldap.LDAPSearchResultReference):
                found.extend("ref " + uri.value.decode() for uri in value.uris)
            else:
                found.append(value.objectName.decode())
        return done.resultCode, done.matchedDN.decode(), sorted(found)


class PolicyTests(_DirectoryTestsBase):
    """
    L{AuthzPolicy.authorize} under each policy: authzTo on the
    authenticated entry, authzFrom on the target, both, either, or neither.
    """

    def setUp(self) -> Any:
        return defer.Deferred.fromCoroutine(self._setUp())

    async def _setUp(self) -> None:
        await super().setUp()
        await self.write(ALICE, "authzTo", f"{{0}}dn:{BOB}", f"dn.children:{PEOPLE}x",
                         f"dn.exact:{CAROL}")
        await self.write(DAVE, "authzFrom", f"dn:{ALICE}")
        await self.write(BOB, "authzFrom", f"dn.subtree:{PEOPLE}")

    async def authorize(self, policy: str, who: str, authzId: str) -> Any:
        """
        @return: the DN C{who} acts as asking for C{authzId}, or
            L{AuthorizationDenied}.
        """
        authz = AuthzPolicy(self.directory, policy, self.directory.authentication.map)
        try:
            identity = await authz.authorize(self.identity(who), authzId)
        except AuthorizationDenied:
            return AuthorizationDenied
        return str(identity.dn or "")

    async def test_policies(self) -> None:
        """
        Each policy allows what its rules name, and nothing else; whatever
        the policy, a root DN becomes anyone and anyone becomes itself or
        anonymous.
        """
        table = [
            # authzTo's dn (with X-ORDERED's prefix), dn.exact; authzFrom's dn and dn.subtree.
            (f"dn:{BOB}", {"none": False, "to": True, "from": True, "any": True, "all": True}),
            (f"dn:{CAROL}", {"none": False, "to": True, "from": False, "any": True, "all": False}),
            (f"dn:{DAVE}", {"none": False, "to": False, "from": True, "any": True, "all": False}),
            (f"dn:uid=eve,{PEOPLE}", {p: False for p in ("none", "to", "from", "any", "all")}),
        ]
        for authzId, allowed in table:
            for policy, expected in allowed.items():
                outcome = await self.authorize(policy, ALICE, authzId)
                self.assertEqual(outcome == authzId[3:], expected, (policy, authzId, outcome))
                if not expected:
                    self.assertIs(outcome, AuthorizationDenied)
        for policy in ("none", "to"):
            self.assertEqual(await self.authorize(policy, ROOT, f"dn:{BOB}"), BOB)
            self.assertEqual(await self.authorize(policy, BOB, f"dn:{BOB}"), BOB)
            self.assertEqual(await self.authorize(policy, BOB, ""), "")
            self.assertEqual(await self.authorize(policy, BOB, "dn:"), "")

    async def test_forms(self) -> None:
        """
        u: names are mapped through the identity mappings
        (C{uid=<name>,cn=auth}); dn.regex is matched on the normalised DN,
        whatever the case; dn.onelevel and dn.children name only entries
        below; other forms and names that do not parse are refused.
        """
        await self.write(CAROL, "authzTo", "dn.regex:^uid=[ab][a-z]+,ou=PEOPLE,dc=example,dc=com$",
                   f"dn.onelevel:ou=groups,{SUFFIX}", f"dn.children:ou=services,{SUFFIX}",
                   f"ldap:///{SUFFIX}??sub?(uid=dave)")
        self.assertEqual(await self.authorize("to", CAROL, "u:bob"), BOB)
        self.assertEqual(await self.authorize("to", CAROL, f"dn:{ALICE.upper()}"), ALICE.upper())
        self.assertEqual(await self.authorize("to", CAROL, f"dn:cn=staff,ou=groups,{SUFFIX}"),
                         f"cn=staff,ou=groups,{SUFFIX}")
        self.assertEqual(await self.authorize("to", CAROL, f"dn:uid=sssd,ou=services,{SUFFIX}"),
                         f"uid=sssd,ou=services,{SUFFIX}")
        for refused in (f"dn:ou=groups,{SUFFIX}", f"dn:ou=services,{SUFFIX}",
                        f"dn:cn=x,cn=staff,ou=groups,{SUFFIX}", f"dn:{DAVE}", "u:dave",
                        "u:nobody,x", "dn:not a dn", "junk"):
            self.assertIs(await self.authorize("to", CAROL, refused), AuthorizationDenied, refused)


class ControlTests(_DirectoryTestsBase):
    """
    The proxied authorization control on the wire: registered and
    advertised, critical only, and the operation runs as the identity
    assumed (limits and the access log see it).
    """

    policy = "to"

    def setUp(self) -> Any:
        return defer.Deferred.fromCoroutine(self._setUp())

    async def _setUp(self) -> None:
        bob = Schema.standard().normalizeDN(DN.parse(BOB))
        self.limits = Limits(identities=(IdentityLimit("dn.base", bob, 1, None),))
        await super().setUp()
        await self.write(ALICE, "authzTo", f"dn:{BOB}")

    def test_advertised(self) -> None:
        """
        The root DSE lists the proxied authorization and ManageDsaIT
        controls, because they are registered.
        """
        controls = self.directory.extensions.supportedControls
        self.assertIn(PROXIED_AUTHZ, controls)
        self.assertIn(MANAGE_DSA_IT, controls)

    async def test_critical(self) -> None:
        """
        The control must be critical and have a value: protocolError
        otherwise, as slapd answers.
        """
        for control in [(PROXIED_AUTHZ, False, f"dn:{BOB}".encode()), (PROXIED_AUTHZ, True, None)]:
            code, _, _ = await self.search(PEOPLE, 0, controls=[control], identity=ALICE)
            self.assertEqual(code, 2)

    async def test_limitsAndLog(self) -> None:
        """
        A search under proxied authorization has the limits of the identity
        assumed (bob's size limit of 1 applies to alice acting as bob), and
        the access log names it; refused, it is authorizationDenied (123).
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        control = [(PROXIED_AUTHZ, True, f"dn:{BOB}".encode())]
        self.assertEqual((await self.search(PEOPLE, 1, identity=ALICE))[0], 0)
        self.assertEqual((await self.search(PEOPLE, 1, controls=control, identity=ALICE))[0], 4)
        logged = [e for e in events if e.get("log_namespace") == accesslog.__name__
                  or "authzDN" in e]
        self.assertEqual(logged[-1]["authzDN"], BOB)
        refused = [(PROXIED_AUTHZ, True, f"dn:{CAROL}".encode())]
        self.assertEqual((await self.search(PEOPLE, 0, controls=refused, identity=ALICE))[0], 123)


class NamingEdgeTests(_DirectoryTestsBase):
    """
    What L{ldapd.naming} does beyond what the side-by-side tests show.
    """

    def setUp(self) -> Any:
        return defer.Deferred.fromCoroutine(self._setUp())

    async def _setUp(self) -> None:
        await super().setUp()
        await self.make(f"ou=remote,{SUFFIX}", objectClass=["referral", "extensibleObject"], ou="remote",
                 ref="ldap://other.example.net/ou=remote,dc=example,dc=net")
        await self.make(f"ou=two,{PEOPLE}", objectClass=["referral", "extensibleObject"], ou="two",
                 ref="ldap://two.example.net/ou=two,dc=example,dc=net")
        target = PEOPLE
        for i in range(MAX_ALIAS_CHAIN + 1):
            await self.make(f"cn=chain{i},{SUFFIX}", objectClass=["alias", "extensibleObject"],
                     cn=f"chain{i}", aliasedObjectName=target)
            target = f"cn=chain{i},{SUFFIX}"

    async def test_chainTooLong(self) -> None:
        """
        A chain of L{MAX_ALIAS_CHAIN} aliases is followed; one more is
        aliasDereferencingProblem (36), naming the first alias.
        """
        last = MAX_ALIAS_CHAIN - 1
        self.assertEqual(await self.search(f"cn=chain{last},{SUFFIX}", 0, deref=3),
                         (0, "", [PEOPLE]))
        first = f"cn=chain{MAX_ALIAS_CHAIN},{SUFFIX}"
        self.assertEqual(await self.search(first, 0, deref=2), (36, first, []))

    async def test_pagedReferences(self) -> None:
        """
        A paged search sends the continuation references of its scope
        outside the page size, and the referral objects' subtrees are not
        searched; with ManageDsaIT, they are entries.
        """
        paged = (PAGED_RESULTS, False, b"\x30\x05\x02\x01\x64\x04\x00")
        code, _, found = await self.search(PEOPLE, 1, "(uid=a*)", controls=[paged])
        self.assertEqual((code, found), (0, ["ref ldap://two.example.net/ou=two,dc=example,"
                                             "dc=net??base", ALICE]))
        code, _, found = await self.search(PEOPLE, 1, "(ou=two)",
                                     controls=[paged, (MANAGE_DSA_IT, True, None)])
        self.assertEqual((code, found), (0, [f"ou=two,{PEOPLE}"]))

    async def test_duplicates(self) -> None:
        """
        An entry reached through several aliases while searching is sent
        once (RFC 4511 §4.5.1.3 asks servers to eliminate duplicates).
        """
        for name in ("a1", "a2"):
            await self.make(f"cn={name},ou=groups,{SUFFIX}", objectClass=["alias", "extensibleObject"],
                     cn=name, aliasedObjectName=ALICE)
        for scope in (1, 2):
            self.assertEqual(await self.search(f"ou=groups,{SUFFIX}", scope, "(uid=alice)", deref=1),
                             (0, "", [ALICE]))


class SQLNamingEdgeTests(NamingEdgeTests):
    """
    L{NamingEdgeTests} on the sql backend (SQLite).
    """

    backend = "sqlite"


class HoldingTests(_DirectoryTestsBase):
    """
    A database without referral objects and aliases is not looked at for
    them; one stored through the directory counts at once, one stored by
    another process once the databases are looked at again.
    """

    async def test_noted(self) -> None:
        """
        The example organisation holds none; an alias added by a client is
        dereferenced at once; a referral object added behind the
        directory's back (as another worker would) counts from the next
        rescan.
        """
        names = self.directory.names
        [db] = self.directory.configuredDatabases
        self.assertFalse(names.resolves(db))
        await self.make(f"cn=al,{SUFFIX}", objectClass=["alias", "extensibleObject"], cn="al",
                        aliasedObjectName=PEOPLE)
        self.assertTrue(names.resolves(db))
        self.assertEqual(await self.search(f"cn=al,{SUFFIX}", 0, deref=3), (0, "", [PEOPLE]))
        await self.delete(f"cn=al,{SUFFIX}")
        await names.rescan()
        self.assertFalse(names.resolves(db))
        referral = Entry(DN.parse(f"ou=remote,{SUFFIX}"), [
            ("objectClass", [b"referral", b"extensibleObject"]), ("ou", [b"remote"]),
            ("ref", [b"ldap://other.example.net/ou=remote,dc=example,dc=net"])], self.schema)
        await db.backend.add(self.directory.internalOperation(), referral,
                             self.directory.plugins)
        self.assertEqual((await self.search(f"ou=remote,{SUFFIX}", 0))[0], 0)
        await names.rescan()
        self.assertEqual(await self.search(f"ou=remote,{SUFFIX}", 0), (
            10, f"ou=remote,{SUFFIX}", []))


class PostgreSQLNamingEdgeTests(NamingEdgeTests):
    """
    L{NamingEdgeTests} on the sql backend (PostgreSQL; skipped without
    C{LDAPD_TEST_POSTGRESQL_URL}).
    """

    backend = "postgresql"
