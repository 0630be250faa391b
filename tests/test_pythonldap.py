"""
Integration tests: the real C{twist ldapd} process driven by python-ldap
(libldap underneath), including its asynchronous API: several requests
outstanding on one connection, answered as each completes, and Abandon.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from twisted.trial import unittest

from ldapd.testing import EXAMPLE_LDIF, ServerTestsMixin, exampleConfig

try:
    import ldap
    import ldap.modlist
    from ldap.controls import LDAPControl, SimplePagedResultsControl
except ImportError:
    ldap = None

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
PEOPLE = "ou=people,dc=example,dc=com"
BULK = "ou=bulk,dc=example,dc=com"
ROOT_DN = "cn=admin,dc=example,dc=com"
ROOT_PASSWORD = "secret"
EXAMPLE_ENTRIES = 20
#: Entries below ou=bulk in the bulk data, besides ou=bulk itself.
BULK_ENTRIES = 2000


def person(uid: str) -> str:
    """
    @return: the DN of the person C{uid}.
    """
    return f"uid={uid},{PEOPLE}"


def bulkLDIF(path: Path) -> None:
    """
    Write the example organisation plus L{BULK_ENTRIES} devices below
    ou=bulk: enough entries that a search testing them all takes several
    turns of the server's reactor.
    """
    parts = [EXAMPLE_LDIF.read_text().rstrip("\n"), "",
             f"dn: {BULK}\nobjectClass: organizationalUnit\nou: bulk\n"]
    for i in range(BULK_ENTRIES):
        parts.append(
            f"dn: cn=item{i:04d},{BULK}\nobjectClass: device\ncn: item{i:04d}\n"
            f"serialNumber: {i}\ndescription: item number {i}\n"
        )
    path.write_text("\n".join(parts))


class PythonLDAPTestsMixin(ServerTestsMixin):
    """
    Connects python-ldap to the class's server; skips when it is not installed.
    """

    @classmethod
    def setUpClass(cls) -> None:
        if ldap is None:
            raise unittest.SkipTest("python-ldap is not installed (pip install python-ldap)")
        super().setUpClass()

    def connect(self, who: str | None = None, password: str = "") -> ldap.ldapobject.LDAPObject:
        """
        @return: a python-ldap connection, bound as C{who} if given, unbound
            when the test ends.
        """
        assert self.server is not None
        connection = ldap.initialize(self.server.url, bytes_mode=False)
        connection.protocol_version = ldap.VERSION3
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 10)
        connection.set_option(ldap.OPT_TIMEOUT, 30)
        if who is not None:
            connection.simple_bind_s(who, password)
        self.addCleanup(connection.unbind_s)
        return connection

    def root(self) -> ldap.ldapobject.LDAPObject:
        """
        @return: a connection bound as the root DN.
        """
        return self.connect(ROOT_DN, ROOT_PASSWORD)


class PythonLDAPReadTests(PythonLDAPTestsMixin, unittest.SynchronousTestCase):
    """
    python-ldap reading a directory of the example organisation and two
    thousand more entries.
    """

    @classmethod
    def setUpClass(cls) -> None:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-test-"))
        bulkLDIF(folder / "bulk.ldif")
        cls.serverConfig = exampleConfig().replace("{example_ldif}", str(folder / "bulk.ldif"))
        super().setUpClass()

    def test_bind(self) -> None:
        """
        simple_bind_s succeeds for users and the root DN, and whoami_s names them.
        """
        for dn, password in [(person("alice"), "alice-secret"), (person("frank"), "frank-secret"),
                             (ROOT_DN, ROOT_PASSWORD)]:
            self.assertEqual(self.connect(dn, password).whoami_s(), f"dn:{dn}")
        self.assertEqual(self.connect().whoami_s(), "")

    def test_bindErrors(self) -> None:
        """
        A wrong password raises INVALID_CREDENTIALS; a DN with an empty
        password raises UNWILLING_TO_PERFORM and leaves the connection anonymous.
        """
        connection = self.connect()
        self.assertRaises(ldap.INVALID_CREDENTIALS, connection.simple_bind_s, person("bob"), "x")
        with self.assertRaises(ldap.UNWILLING_TO_PERFORM) as caught:
            connection.simple_bind_s(person("bob"), "")
        self.assertIn("unauthenticated bind", caught.exception.args[0]["info"])
        self.assertEqual(connection.whoami_s(), "")

    def test_searchExt(self) -> None:
        """
        search_ext_s returns (dn, attributes) pairs with the values as bytes,
        only the attributes asked for.
        """
        connection = self.connect()
        result = connection.search_ext_s(
            PEOPLE, ldap.SCOPE_ONELEVEL, "(|(uid=alice)(uid=bob))", ["cn", "mail"]
        )
        self.assertEqual(sorted(result), [
            (person("alice"), {"cn": [b"Alice Anderson"], "mail": [b"alice@example.com"]}),
            (person("bob"), {"cn": [b"Bob Brown"], "mail": [b"bob@example.com"]}),
        ])
        [(dn, attrs)] = connection.search_ext_s(
            person("carol"), ldap.SCOPE_BASE, attrlist=["1.1"])
        self.assertEqual((dn, attrs), (person("carol"), {}))

    def test_noSuchObject(self) -> None:
        """
        A missing base raises NO_SUCH_OBJECT with the matched DN.
        """
        connection = self.connect()
        with self.assertRaises(ldap.NO_SUCH_OBJECT) as caught:
            connection.search_ext_s(f"uid=nobody,{PEOPLE}", ldap.SCOPE_BASE)
        self.assertEqual(caught.exception.args[0]["matched"], PEOPLE)

    def test_serverSizeLimit(self) -> None:
        """
        The configured size limit (500) stops an anonymous search of more
        entries with SIZELIMIT_EXCEEDED after exactly 500; the root DN has no limit.
        """
        connection = self.connect()
        msgid = connection.search_ext(BULK, ldap.SCOPE_ONELEVEL, "(objectClass=device)", ["1.1"])
        received = 0
        with self.assertRaises(ldap.SIZELIMIT_EXCEEDED):
            while True:
                _, data, _, _ = connection.result3(msgid, all=0)
                received += len(data)
        self.assertEqual(received, 500)
        everything = self.root().search_ext_s(BULK, ldap.SCOPE_ONELEVEL, "(objectClass=device)",
                                              ["1.1"])
        self.assertEqual(len(everything), BULK_ENTRIES)

    def test_clientSizeLimit(self) -> None:
        """
        The client's own size limit applies too.
        """
        with self.assertRaises(ldap.SIZELIMIT_EXCEEDED):
            self.connect().search_ext_s(BULK, ldap.SCOPE_SUBTREE, sizelimit=7)

    def test_pagedResults(self) -> None:
        """
        SimplePagedResultsControl pages through two thousand entries: full
        pages, then a short one with an empty cookie, every entry once.
        """
        connection = self.root()
        control = SimplePagedResultsControl(True, size=300, cookie="")
        seen: list[str] = []
        pages = []
        while True:
            msgid = connection.search_ext(BULK, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"],
                                          serverctrls=[control])
            _, data, _, controls = connection.result3(msgid)
            pages.append(len(data))
            seen.extend(dn for dn, _ in data)
            [response] = [c for c in controls if c.controlType == control.controlType]
            if not response.cookie:
                break
            control.cookie = response.cookie
        self.assertEqual(len(seen), BULK_ENTRIES + 1)
        self.assertEqual(len(set(seen)), BULK_ENTRIES + 1)
        self.assertEqual(pages, [300] * 6 + [201])

    def test_outstandingRequests(self) -> None:
        """
        Many requests sent at once on one connection are each answered with
        their own results, whichever order they are collected in.
        """
        connection = self.connect()
        uids = ["alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi"]
        ids = {connection.search_ext(person(uid), ldap.SCOPE_BASE, attrlist=["uid"]): uid
               for uid in uids}
        ids[connection.compare_ext(person("alice"), "sn", b"Anderson")] = "compare"
        for msgid in reversed(list(ids)):
            if ids[msgid] == "compare":
                self.assertRaises(ldap.COMPARE_TRUE, connection.result3, msgid)
                continue
            _, data, answered, _ = connection.result3(msgid)
            self.assertEqual(answered, msgid)
            self.assertEqual(data, [(person(ids[msgid]), {"uid": [ids[msgid].encode()]})])

    def test_outOfOrder(self) -> None:
        """
        Requests on one connection run concurrently: a search that must test
        two thousand entries is sent first, a base search and a compare
        after it, and the later two are answered before the first completes.
        """
        connection = self.root()
        slow = connection.search_ext(BASE, ldap.SCOPE_SUBTREE, "(description=*7*)", ["cn"])
        quick = connection.search_ext(BASE, ldap.SCOPE_BASE, attrlist=["dc"])
        compare = connection.compare_ext(person("alice"), "uid", b"alice")
        order = []
        results = {}
        for _ in range(3):
            try:
                _, data, msgid, _ = connection.result3(ldap.RES_ANY, all=1)
            except ldap.COMPARE_TRUE as e:
                msgid, data = e.args[0]["msgid"], True
            order.append(msgid)
            results[msgid] = data
        self.assertEqual(order[-1], slow)
        self.assertEqual(set(order), {slow, quick, compare})
        self.assertEqual(results[quick], [(BASE, {"dc": [b"example"]})])
        self.assertEqual(len(results[slow]), len([i for i in range(BULK_ENTRIES) if "7" in str(i)]))

    def test_abandon(self) -> None:
        """
        An abandoned search gets no response, and the connection goes on
        serving requests.
        """
        connection = self.root()
        msgid = connection.search_ext(BASE, ldap.SCOPE_SUBTREE, "(description=*7*)", ["cn"])
        connection.abandon_ext(msgid)
        self.assertEqual(connection.whoami_s(), f"dn:{ROOT_DN}")
        self.assertRaises(ldap.TIMEOUT, connection.result3, msgid, 1, 0.5)
        again = connection.search_ext_s(BASE, ldap.SCOPE_SUBTREE, "(description=*7*)", ["1.1"])
        self.assertEqual(len(again), len([i for i in range(BULK_ENTRIES) if "7" in str(i)]))

    def test_criticalControl(self) -> None:
        """
        An unknown critical control raises UNAVAILABLE_CRITICAL_EXTENSION;
        unknown non-critical controls are ignored.
        """
        connection = self.connect()
        self.assertRaises(
            ldap.UNAVAILABLE_CRITICAL_EXTENSION, connection.search_ext_s, BASE, ldap.SCOPE_BASE,
            serverctrls=[LDAPControl("1.2.3.4", True)],
        )
        self.assertEqual(len(connection.search_ext_s(
            BASE, ldap.SCOPE_BASE, serverctrls=[LDAPControl("1.2.3.4", False)])), 1)


class PythonLDAPWriteTests(PythonLDAPTestsMixin, unittest.SynchronousTestCase):
    """
    python-ldap writing to the example organisation; every test uses its
    own entries.
    """

    def addPerson(self, connection: ldap.ldapobject.LDAPObject, uid: str) -> str:
        """
        Add a person with add_s.

        @return: its DN.
        """
        dn = person(uid)
        connection.add_s(dn, ldap.modlist.addModlist({
            "objectClass": [b"inetOrgPerson", b"posixAccount"], "uid": [uid.encode()],
            "cn": [uid.title().encode()], "sn": [b"Test"], "uidNumber": [b"40000"],
            "gidNumber": [b"40000"], "homeDirectory": [f"/home/{uid}".encode()],
        }))
        return dn

    def attributes(self, connection: ldap.ldapobject.LDAPObject, dn: str) -> dict[str, list[bytes]]:
        """
        @return: the user attributes of C{dn}.
        """
        [(_, attrs)] = connection.search_ext_s(dn, ldap.SCOPE_BASE)
        return attrs

    def test_writes(self) -> None:
        """
        add_s, modify_s with add, delete, replace and increment, rename_s
        and delete_s each succeed and have their effect.
        """
        connection = self.root()
        dn = self.addPerson(connection, "ann")
        connection.modify_s(dn, [
            (ldap.MOD_ADD, "mail", [b"ann@example.com", b"a@example.com"]),
            (ldap.MOD_REPLACE, "cn", [b"Ann Test"]),
            (ldap.MOD_INCREMENT, "uidNumber", [b"2"]),
        ])
        connection.modify_s(dn, [(ldap.MOD_DELETE, "mail", [b"a@example.com"])])
        attrs = self.attributes(connection, dn)
        self.assertEqual(attrs["mail"], [b"ann@example.com"])
        self.assertEqual(attrs["cn"], [b"Ann Test"])
        self.assertEqual(attrs["uidNumber"], [b"40002"])
        connection.rename_s(dn, "uid=anne", newsuperior=f"ou=services,{BASE}", delold=1)
        moved = f"uid=anne,ou=services,{BASE}"
        self.assertEqual(self.attributes(connection, moved)["uid"], [b"anne"])
        connection.delete_s(moved)
        self.assertRaises(ldap.NO_SUCH_OBJECT, connection.delete_s, moved)

    def test_writeErrors(self) -> None:
        """
        Failed writes raise python-ldap's exception for slapd's result code.
        """
        connection = self.root()
        self.assertRaises(ldap.ALREADY_EXISTS, self.addPerson, connection, "alice")
        self.assertRaises(ldap.NOT_ALLOWED_ON_NONLEAF, connection.delete_s, PEOPLE)
        self.assertRaises(ldap.OBJECT_CLASS_VIOLATION, connection.add_s, person("bo"),
                          [("objectClass", [b"inetOrgPerson"]), ("cn", [b"Bo"])])
        self.assertRaises(ldap.UNDEFINED_TYPE, connection.modify_s, person("bob"),
                          [(ldap.MOD_ADD, "favouriteColour", [b"red"])])
        self.assertRaises(ldap.TYPE_OR_VALUE_EXISTS, connection.modify_s, person("bob"),
                          [(ldap.MOD_ADD, "uid", [b"BOB"])])
        self.assertRaises(ldap.STRONG_AUTH_REQUIRED, self.connect().delete_s, person("bob"))

    def test_compare(self) -> None:
        """
        compare_s returns True and False.
        """
        connection = self.connect()
        self.assertTrue(connection.compare_s(person("grace"), "title", b"office manager"))
        self.assertFalse(connection.compare_s(person("grace"), "title", b"CEO"))

    def test_passwd(self) -> None:
        """
        passwd_s changes a user's own password, and returns a generated one
        when no new password is given; both bind.
        """
        heidi = self.connect(person("heidi"), "heidi-secret")
        heidi.passwd_s(None, "heidi-secret", "heidi-new")
        self.connect(person("heidi"), "heidi-new")
        _, response = self.root().passwd_s(person("dave"), None, None, extract_newpw=True)
        self.assertTrue(response.genPasswd)
        self.connect(person("dave"), response.genPasswd.decode("utf-8"))
        self.assertRaises(ldap.INVALID_CREDENTIALS, self.connect, person("dave"), "dave-secret")
