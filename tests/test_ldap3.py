"""
Integration tests: the real C{twist ldapd} process driven by ldap3, the
pure-Python client many web applications use for LDAP login and sync.

Each class runs its own server seeded with the example organisation.
"""

from __future__ import annotations

import datetime

import pytest
from twisted.trial import unittest

from ldapd.testing import ServerTestsMixin

try:
    import ldap3
    from ldap3.core import exceptions as ldap3errors
except ImportError:
    ldap3 = None

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
PEOPLE = "ou=people,dc=example,dc=com"
SERVICES = "ou=services,dc=example,dc=com"
ROOT_DN = "cn=admin,dc=example,dc=com"
ROOT_PASSWORD = "secret"
EXAMPLE_ENTRIES = 20


def person(uid: str) -> str:
    """
    @return: the DN of the person C{uid}.
    """
    return f"uid={uid},{PEOPLE}"


class Ldap3TestsMixin(ServerTestsMixin):
    """
    Connects ldap3 to the class's server; skips when ldap3 is not installed.
    """

    @classmethod
    def setUpClass(cls) -> None:
        if ldap3 is None:
            raise unittest.SkipTest("ldap3 is not installed (pip install ldap3)")
        super().setUpClass()

    def connect(
        self, user: str | None = None, password: str | None = None, **kwargs: object
    ) -> ldap3.Connection:
        """
        @return: a connection to the server, bound as C{user} if given
            (anonymously otherwise), closed when the test ends.
        """
        assert self.server is not None
        connection = ldap3.Connection(
            ldap3.Server(self.server.url, get_info=kwargs.pop("get_info", ldap3.NONE)),
            user, password, auto_bind=True, receive_timeout=30, **kwargs,
        )
        self.addCleanup(connection.unbind)
        return connection

    def root(self, **kwargs: object) -> ldap3.Connection:
        """
        @return: a connection bound as the root DN.
        """
        return self.connect(ROOT_DN, ROOT_PASSWORD, **kwargs)


class Ldap3ReadTests(Ldap3TestsMixin, unittest.SynchronousTestCase):
    """
    ldap3 reading the example organisation.
    """

    def test_serverInfo(self) -> None:
        """
        ldap3 reads the root DSE and the subschema entry at connect time and
        understands both.
        """
        connection = self.connect(get_info=ldap3.ALL)
        info = connection.server.info
        self.assertEqual(info.naming_contexts, [BASE])
        self.assertIn("3", [str(v) for v in info.supported_ldap_versions])
        extensions = [e[0] for e in info.supported_extensions]
        self.assertIn("1.3.6.1.4.1.4203.1.11.1", extensions)
        self.assertIn("1.3.6.1.4.1.4203.1.11.3", extensions)
        self.assertIn("1.2.840.113556.1.4.319", [c[0] for c in info.supported_controls])
        schema = connection.server.schema
        self.assertEqual(sorted(schema.object_classes["person"].must_contain), ["cn", "sn"])
        integer = "1.3.6.1.4.1.1466.115.121.1.27"
        self.assertEqual(schema.attribute_types["uidNumber"].syntax, integer)

    def test_searchTypedValues(self) -> None:
        """
        With the schema read, ldap3 turns values into Python types by their
        syntax: integers, and generalized times into datetimes.
        """
        connection = self.connect(get_info=ldap3.SCHEMA)
        self.assertTrue(connection.search(
            PEOPLE, "(uid=alice)", attributes=["cn", "uidNumber", "createTimestamp"]
        ))
        [entry] = connection.entries
        self.assertEqual(entry.entry_dn, person("alice"))
        self.assertEqual(entry.cn.value, "Alice Anderson")
        self.assertEqual(entry.uidNumber.value, 10001)
        self.assertIsInstance(entry.createTimestamp.value, datetime.datetime)

    def test_searchScopes(self) -> None:
        """
        Base, one-level and subtree scopes return what they should.
        """
        connection = self.connect()
        for scope, count in [(ldap3.BASE, 1), (ldap3.LEVEL, 3), (ldap3.SUBTREE, EXAMPLE_ENTRIES)]:
            self.assertTrue(connection.search(BASE, "(objectClass=*)", search_scope=scope,
                                              attributes=[ldap3.NO_ATTRIBUTES]))
            self.assertEqual(len(connection.response), count)

    def test_searchFilters(self) -> None:
        """
        ldap3's filter encoding (with escaped characters) is understood.
        """
        connection = self.connect()
        cases = [
            ("(&(objectClass=inetOrgPerson)(|(sn=Brown)(sn=Clark)))", {"bob", "carol"}),
            ("(cn=*Dav*)", {"dave"}),
            ("(uidNumber>=10007)", {"grace", "heidi"}),
            ("(sn~=Andersen)", {"alice"}),
            ("(uid:caseExactMatch:=eve)", {"eve"}),
            ("(description=Intern; password stored in cleartext on purpose)", {"heidi"}),
            (r"(description=\2a*)", set()),
        ]
        for text, uids in cases:
            self.assertTrue(connection.search(PEOPLE, text, attributes=["uid"]) or not uids, text)
            self.assertEqual({e.uid.value for e in connection.entries}, uids, text)

    def test_pagedSearch(self) -> None:
        """
        C{extend.standard.paged_search} pages through the whole
        organisation, as a generator and as a list, each entry once.
        """
        connection = self.connect()
        pages = connection.extend.standard.paged_search(
            BASE, "(objectClass=*)", attributes=["1.1"], paged_size=3, generator=True
        )
        dns = [r["dn"] for r in pages if r["type"] == "searchResEntry"]
        self.assertEqual(len(dns), EXAMPLE_ENTRIES)
        self.assertEqual(len(set(dns)), EXAMPLE_ENTRIES)
        listed = connection.extend.standard.paged_search(
            BASE, "(objectClass=person)", attributes=["uid"], paged_size=2, generator=False
        )
        self.assertEqual(len([r for r in listed if r["type"] == "searchResEntry"]), 8)

    def test_pagedCookies(self) -> None:
        """
        Paging by hand with C{paged_size} and C{paged_cookie}: each page
        holds at most the page size and returns a cookie, the last an empty one.
        """
        connection = self.connect()
        cookie = None
        sizes = []
        while True:
            connection.search(PEOPLE, "(uid=*)", attributes=["uid"], paged_size=3,
                              paged_cookie=cookie)
            sizes.append(len(connection.entries))
            cookie = connection.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
            if not cookie:
                break
        self.assertEqual(sizes, [3, 3, 2])

    def test_sizeLimit(self) -> None:
        """
        A client size limit returns that many entries with sizeLimitExceeded.
        """
        connection = self.connect()
        connection.search(BASE, "(objectClass=*)", size_limit=3)
        self.assertEqual(connection.result["result"], 4)
        self.assertEqual(len(connection.entries), 3)

    def test_whoAmI(self) -> None:
        """
        C{extend.standard.who_am_i} returns C{dn:<DN>} when bound and
        nothing for anonymous.
        """
        self.assertIsNone(self.connect().extend.standard.who_am_i())
        bound = self.connect(person("carol"), "carol-secret")
        self.assertEqual(bound.extend.standard.who_am_i(), f"dn:{person('carol')}")
        self.assertEqual(self.root().extend.standard.who_am_i(), f"dn:{ROOT_DN}")

    def test_bindErrors(self) -> None:
        """
        A wrong password, for a user or the root DN, raises
        LDAPInvalidCredentialsResult.
        """
        assert self.server is not None
        server = ldap3.Server(self.server.url)
        for dn in (person("alice"), ROOT_DN):
            wrong = ldap3.Connection(server, dn, "wrong", raise_exceptions=True)
            self.assertRaises(ldap3errors.LDAPInvalidCredentialsResult, wrong.bind)
            wrong.unbind()

    def test_noSuchObject(self) -> None:
        """
        A search from a missing base raises LDAPNoSuchObjectResult carrying
        the matched DN.
        """
        connection = self.connect(raise_exceptions=True)
        with self.assertRaises(ldap3errors.LDAPNoSuchObjectResult) as caught:
            connection.search(f"ou=nowhere,{PEOPLE}", "(objectClass=*)")
        self.assertEqual(caught.exception.dn, PEOPLE)

    def test_criticalControl(self) -> None:
        """
        An unknown critical control is unavailableCriticalExtension (12).
        """
        connection = self.connect()
        self.assertFalse(connection.search(BASE, "(objectClass=*)",
                                           controls=[("1.2.3.4", True, None)]))
        self.assertEqual(connection.result["result"], 12)


class Ldap3WriteTests(Ldap3TestsMixin, unittest.SynchronousTestCase):
    """
    ldap3 writing as the root DN and as users; every test uses its own entries.
    """

    def addPerson(self, connection: ldap3.Connection, uid: str) -> str:
        """
        Add a POSIX person.

        @return: its DN.
        """
        dn = person(uid)
        self.assertTrue(connection.add(dn, ["inetOrgPerson", "posixAccount"], {
            "cn": f"{uid.title()} Test", "sn": "Test", "uid": uid, "uidNumber": 30000,
            "gidNumber": 30000, "homeDirectory": f"/home/{uid}",
        }), connection.result)
        return dn

    def read(self, connection: ldap3.Connection, dn: str) -> dict[str, list[object]]:
        """
        @return: the user attributes of C{dn}, as ldap3 returns them raw.
        """
        self.assertTrue(connection.search(dn, "(objectClass=*)", search_scope=ldap3.BASE,
                                          attributes=[ldap3.ALL_ATTRIBUTES]))
        return {k: list(v) for k, v in connection.response[0]["raw_attributes"].items()}

    def test_addModifyDelete(self) -> None:
        """
        add, modify with every modification type (add, delete, replace,
        increment) and delete, each answered success.
        """
        connection = self.root()
        dn = self.addPerson(connection, "amy")
        self.assertTrue(connection.modify(dn, {
            "mail": [(ldap3.MODIFY_ADD, ["amy@example.com", "a@example.com"])],
            "uidNumber": [(ldap3.MODIFY_INCREMENT, [7])],
            "description": [(ldap3.MODIFY_REPLACE, ["tester"])],
        }), connection.result)
        self.assertTrue(connection.modify(dn, {"mail": [(ldap3.MODIFY_DELETE, ["A@EXAMPLE.COM"])]}))
        attrs = self.read(connection, dn)
        self.assertEqual(attrs["mail"], [b"amy@example.com"])
        self.assertEqual(attrs["uidNumber"], [b"30007"])
        self.assertEqual(attrs["description"], [b"tester"])
        self.assertTrue(connection.delete(dn))
        self.assertFalse(connection.delete(dn))
        self.assertEqual(connection.result["result"], 32)
        self.assertEqual(connection.result["dn"], PEOPLE)

    def test_writeErrors(self) -> None:
        """
        Failed writes report slapd's result codes in C{connection.result}.
        """
        connection = self.root()
        self.assertFalse(connection.add(person("alice"), ["inetOrgPerson"], {"cn": "A", "sn": "A"}))
        self.assertEqual(connection.result["description"], "entryAlreadyExists")
        self.assertFalse(connection.add(person("bo"), ["inetOrgPerson"], {"cn": "B"}))
        self.assertEqual(connection.result["description"], "objectClassViolation")
        self.assertFalse(connection.delete(PEOPLE))
        self.assertEqual(connection.result["description"], "notAllowedOnNonLeaf")
        self.assertFalse(connection.modify(person("bob"), {"uidNumber": [(ldap3.MODIFY_ADD, [1])]}))
        self.assertEqual(connection.result["description"], "constraintViolation")

    def test_anonymousWrite(self) -> None:
        """
        An anonymous write raises LDAPStrongerAuthRequiredResult (8), as
        against slapd.
        """
        connection = self.connect(raise_exceptions=True)
        self.assertRaises(ldap3errors.LDAPStrongerAuthRequiredResult,
                          connection.delete, person("bob"))

    def test_modifyDN(self) -> None:
        """
        modify_dn renames (keeping or deleting the old RDN value) and moves
        an entry to a new superior.
        """
        connection = self.root()
        dn = self.addPerson(connection, "cat")
        self.assertTrue(connection.modify_dn(dn, "uid=cathy", delete_old_dn=False))
        self.assertEqual(sorted(self.read(connection, person("cathy"))["uid"]), [b"cat", b"cathy"])
        self.assertTrue(connection.modify_dn(person("cathy"), "uid=cath", delete_old_dn=True))
        self.assertEqual(self.read(connection, person("cath"))["uid"], [b"cat", b"cath"])
        self.assertTrue(connection.modify_dn(person("cath"), "uid=cath", new_superior=SERVICES))
        self.assertTrue(connection.search(BASE, "(uid=cath)", attributes=["1.1"]))
        self.assertEqual([e.entry_dn for e in connection.entries], [f"uid=cath,{SERVICES}"])
        self.assertFalse(connection.modify_dn(f"uid=cath,{SERVICES}", "uid=sssd"))
        self.assertEqual(connection.result["result"], 68)

    def test_compare(self) -> None:
        """
        compare returns True for compareTrue and False for compareFalse.
        """
        connection = self.connect()
        self.assertTrue(connection.compare(person("dave"), "sn", "DAVIS"))
        self.assertEqual(connection.result["result"], 6)
        self.assertFalse(connection.compare(person("dave"), "sn", "Brown"))
        self.assertEqual(connection.result["result"], 5)

    def test_modifyPassword(self) -> None:
        """
        C{extend.standard.modify_password}: a user changes their own
        password with the old one; with no new password the server returns a
        generated one; both then bind.
        """
        assert self.server is not None
        eve = self.connect(person("eve"), "eve-secret")
        self.assertTrue(eve.extend.standard.modify_password(
            old_password="eve-secret", new_password="eve-new"))
        self.connect(person("eve"), "eve-new")
        root = self.root()
        generated = root.extend.standard.modify_password(person("frank"))
        self.assertIsInstance(generated, str)
        self.assertTrue(generated)
        self.connect(person("frank"), generated)
        stale = ldap3.Connection(ldap3.Server(self.server.url), person("frank"), "frank-secret")
        self.assertFalse(stale.bind())
        stale.unbind()
