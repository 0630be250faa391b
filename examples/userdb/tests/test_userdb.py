"""
Tests for the userdb example: the Django password format, the backend in
process (the backend conformance suite where it applies, binds, writes,
Password Modify), and the real server with real clients.

Run from the example's folder (C{python -m pytest tests}) once the package
is installed, or from ldapd's source tree (its C{tests/test_userdb_example.py}
runs these).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ldapd_userdb.backend import UserDBBackend, UserDBBackendFactory
from ldapd_userdb.djangohash import fromLDAP, makePassword, toLDAP
from ldapd_userdb.sample import TABLES, addGroup, addUser
from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from twisted.trial import unittest

from ldapd import passwords
from ldapd.dn import DN
from ldapd.entry import Modification
from ldapd.interfaces import IBackend
from ldapd.operation import Connection, Identity, Operation, Scope
from ldapd.registry import BACKENDS, ConfigContext, ConfigError, lookup
from ldapd.requests import PASSWORD_MODIFY, PasswordModifyRequest
from ldapd.schema import Schema
from ldapd.testing import BackendTestsMixin, RecordingHooks, ServerProcess

#: The example's folder.
EXAMPLE = Path(__file__).resolve().parent.parent
#: Few iterations, for tests that hash many passwords.
_FAST = 1000
PEOPLE = "ou=people,dc=example,dc=com"
#: The factory, as the entry point names it.
_FACTORY = "ldapd_userdb.backend:UserDBBackendFactory"


def _op(request: Any = None) -> Operation:
    from twisted.internet import reactor

    connection = Connection("test", reactor)
    connection.identity = Identity(isRoot=True)
    return Operation(connection, 1, request)


def _database(testCase: unittest.TestCase) -> Path:
    """
    @return: a new database with the application's tables, removed after the test.
    """
    folder = Path(tempfile.mkdtemp(prefix="userdb-"))
    testCase.addCleanup(shutil.rmtree, folder)
    path = folder / "app.db"
    with sqlite3.connect(path) as db:
        db.executescript(TABLES)
    db.close()
    return path


class DjangoHashTests(unittest.TestCase):
    """
    The application's C{pbkdf2_sha256} values and ldapd's C{{PBKDF2-SHA256}}
    are the same hash written two ways.
    """

    def test_verifiedByLdapd(self) -> None:
        """
        ldapd's own verifier accepts the translation of a Django hash for
        its password, and only for it.
        """
        stored = makePassword(b"lovelace", _FAST, "seasalt")
        self.assertTrue(stored.startswith(f"pbkdf2_sha256${_FAST}$seasalt$"))
        value = toLDAP(stored)
        assert value is not None
        self.assertTrue(value.startswith(b"{PBKDF2-SHA256}1000$"))
        self.assertTrue(passwords.verifyPassword(value, b"lovelace"))
        self.assertFalse(passwords.verifyPassword(value, b"lovelacE"))

    def test_roundTrip(self) -> None:
        """
        L{fromLDAP} gives back the Django form; what Django cannot hold
        (a binary salt, another scheme) is C{None}, as are unusable passwords.
        """
        stored = makePassword(b"x", _FAST)
        self.assertEqual(fromLDAP(toLDAP(stored) or b""), stored)
        self.assertIsNone(fromLDAP(passwords.hashPassword(b"x", "{PBKDF2-SHA256}")))
        self.assertIsNone(fromLDAP(b"{SSHA}abc"))
        self.assertIsNone(toLDAP("!unusable"))
        self.assertIsNone(toLDAP("argon2$argon2id$v=19$m=102400,t=2,p=8$abc$def"))


class UserDBConformanceTests(BackendTestsMixin, unittest.TestCase):
    """
    The userdb backend passes the backend conformance suite, filled through
    the application's tables, where the suite applies: not the tests that
    write attributes the tables have no column for (description), or
    rename or move entries other than users and groups in place.
    """

    def makeBackend(self, suffix: DN, schema: Schema) -> UserDBBackend:
        path = _database(self)
        with sqlite3.connect(path) as db:
            alice = addUser(db, "alice", b"alice-secret", "alice@example.com", "Alice Example",
                            iterations=_FAST)
            addUser(db, "bob", b"bob-secret", "bob@example.com", "Bob Example", iterations=_FAST)
            addGroup(db, "staff", [alice])
        db.close()
        return UserDBBackend(suffix, schema, path, iterations=_FAST)

    async def _populate(self) -> None:
        """
        The suite's entries are the application's rows, made in L{makeBackend}.
        """

    def test_modify(self) -> None:
        raise unittest.SkipTest("the users table has no column for description")

    def test_renameSubtree(self) -> None:
        raise unittest.SkipTest("ou=people is the layout, not an entry of the tables")

    test_renameRollback = test_renameSubtree

    def test_renameNewSuperior(self) -> None:
        raise unittest.SkipTest("a user cannot become a group")

    test_renameModifications = test_modify


class UserDBBackendTests(unittest.TestCase):
    """
    The userdb backend serves the application's tables as they are now.
    """

    def setUp(self) -> Any:
        self.schema = Schema.standard()
        self.path = _database(self)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(self.db.close)
        self.ada = addUser(self.db, "ada", b"lovelace", "ada@example.com", "Ada Lovelace",
                           iterations=_FAST)
        addGroup(self.db, "engineers", [self.ada])
        self.backend = UserDBBackend(self.ndn("dc=example,dc=com"), self.schema, self.path,
                                     iterations=_FAST)
        self.addCleanup(self.backend.close)
        return self.backend.open()

    def ndn(self, text: str) -> DN:
        return self.schema.normalizeDN(DN.parse(text))

    def search(self, base: str, text: str) -> defer.Deferred[list[Any]]:
        from ldapd.filters import compileFilter
        from ldapd.operation import SearchParameters
        from ldapd.testing import parseFilter

        found: list[Any] = []
        op = _op()
        op.search = SearchParameters(self.ndn(base), Scope.SUB,
                                     compileFilter(parseFilter(text), self.schema))
        return self.backend.search(op, found.append).addCallback(lambda _: found)

    def test_entries(self) -> None:
        """
        A user is an inetOrgPerson and posixAccount; a group a groupOfNames
        naming its members; both found through the columns' lookups.
        """
        self.assertTrue(IBackend.providedBy(self.backend))
        [ada] = self.successResultOf(self.search("dc=example,dc=com", "(uid=ADA)"))
        self.assertEqual(str(ada.dn), f"uid=ada,{PEOPLE}")
        self.assertEqual(
            {k: ada.get(k) for k in ("mail", "cn", "sn", "givenName", "uidNumber", "homeDirectory")},
            {"mail": (b"ada@example.com",), "cn": (b"Ada Lovelace",), "sn": (b"Lovelace",),
             "givenName": (b"Ada",), "uidNumber": (str(10000 + self.ada).encode(),),
             "homeDirectory": (b"/home/ada",)})
        self.assertIn(b"posixAccount", ada.get("objectClass"))
        [group] = self.successResultOf(self.search(
            "dc=example,dc=com", f"(&(objectClass=groupOfNames)(member=uid=ADA,{PEOPLE}))"))
        self.assertEqual((str(group.dn), group.get("member")),
                         ("cn=engineers,ou=groups,dc=example,dc=com", (f"uid=ada,{PEOPLE}".encode(),)))

    def test_changesShowAtOnce(self) -> None:
        """
        What the application writes to its tables is served at once.
        """
        self.db.execute("UPDATE users SET email = 'countess@example.com' WHERE id = ?", (self.ada,))
        [ada] = self.successResultOf(self.search(PEOPLE, "(mail=countess@example.com)"))
        self.assertEqual(ada.get("mail"), (b"countess@example.com",))
        addUser(self.db, "charles", b"engine", iterations=_FAST)
        self.assertEqual(len(self.successResultOf(self.search(PEOPLE, "(objectClass=person)"))), 2)

    def test_binds(self) -> None:
        """
        A bind verifies the application's hash; an inactive user cannot
        bind even with the right password.
        """
        ada = self.ndn(f"uid=ada,{PEOPLE}")
        d = self.backend.authenticate(_op(), ada, b"lovelace")
        d.addCallback(lambda e: self.assertEqual(e.ndn, ada))
        d.addCallback(lambda _: self.backend.authenticate(_op(), ada, b"wrong"))
        d.addCallbacks(self.fail, lambda f: f.trap(ldaperrors.LDAPInvalidCredentials))
        d.addCallback(lambda _: self.db.execute("UPDATE users SET is_active = 0"))
        d.addCallback(lambda _: self.backend.authenticate(_op(), ada, b"lovelace"))
        return d.addCallbacks(self.fail, lambda f: f.trap(ldaperrors.LDAPInvalidCredentials))

    def passwordColumn(self) -> str:
        row = self.db.execute("SELECT password FROM users WHERE id = ?", (self.ada,)).fetchone()
        return str(row[0])

    def test_passwordModify(self) -> None:
        """
        A password the server sets (Password Modify's, generated or given)
        is made in the application's format, which verifies it, and stored
        as it is; a hash whose cleartext is unknown (a client's C{{SSHA}}
        value) is refused and changes nothing.
        """
        ada = self.ndn(f"uid=ada,{PEOPLE}")
        before = self.passwordColumn()
        op = _op(PasswordModifyRequest(PASSWORD_MODIFY))
        d = self.backend.modify(op, ada, [Modification(
            "replace", "userPassword", (passwords.hashPassword(b"x", "{SSHA}"),))], RecordingHooks())
        d.addCallbacks(self.fail, lambda f: f.trap(ldaperrors.LDAPUnwillingToPerform))
        d.addCallback(lambda _: self.assertEqual(self.passwordColumn(), before))
        d.addCallback(lambda _: self.backend.storedPassword(op, ada, b"analytical"))
        d.addCallback(lambda stored: self.backend.modify(op, ada, [Modification(
            "replace", "userPassword", (stored,))], RecordingHooks()))

        def check(_: Any) -> Any:
            column = self.passwordColumn()
            self.assertTrue(column.startswith(f"pbkdf2_sha256${_FAST}$"), column)
            salt = column.split("$")[2]
            self.assertEqual(column, makePassword(b"analytical", _FAST, salt))
            return self.backend.authenticate(_op(), ada, b"analytical")

        return d.addCallback(check)

    def test_writes(self) -> None:
        """
        The root DN's adds, modifies, renames and deletes of users and
        groups are rows of the tables; what they cannot hold is refused.
        """
        hooks = RecordingHooks()
        carol = self.schema.normalizeDN(DN.parse(f"uid=carol,{PEOPLE}"))

        async def check() -> None:
            from ldapd.entry import Entry

            await self.backend.add(_op(), Entry(DN.parse(f"uid=Carol,{PEOPLE}"), [
                ("objectClass", [b"inetOrgPerson"]), ("uid", [b"Carol"]), ("cn", [b"Carol Smith"]),
                ("sn", [b"Smith"]), ("mail", [b"carol@example.com"]), ("userPassword", [b"pw"])],
                self.schema), hooks)
            row = self.db.execute("SELECT * FROM users WHERE username = 'Carol'").fetchone()
            self.assertEqual(row[2:4], ("carol@example.com", "Carol Smith"))
            self.assertTrue(row[4].startswith("pbkdf2_sha256$"))
            await self.backend.modify(_op(), self.ndn("cn=engineers,ou=groups,dc=example,dc=com"),
                                      [Modification("add", "member", (f"uid=carol,{PEOPLE}".encode(),))],
                                      hooks)
            self.assertEqual(self.db.execute("SELECT count(*) FROM memberships").fetchone()[0], 2)
            for refused in (
                self.backend.modify(_op(), carol, [Modification("add", "description", (b"x",))],
                                    hooks),
                self.backend.rename(_op(), carol, DN.parse("uid=carol,ou=groups,dc=example,dc=com"),
                                    True, hooks),
            ):
                try:
                    await refused
                except ldaperrors.LDAPUnwillingToPerform:
                    pass
                else:
                    self.fail("not refused")
            renamed = await self.backend.rename(_op(), carol, DN.parse(f"uid=carol2,{PEOPLE}"),
                                                True, hooks)
            self.assertEqual(renamed.get("uid"), (b"carol2",))
            await self.backend.delete(_op(), renamed.ndn, hooks)
            self.assertEqual(self.db.execute("SELECT count(*) FROM users").fetchone()[0], 1)
            self.assertEqual(self.db.execute("SELECT count(*) FROM memberships").fetchone()[0], 1)

        return defer.Deferred.fromCoroutine(check())

    def test_factory(self) -> None:
        """
        The factory takes the database relative to the configuration's
        folder, and names a missing key.
        """
        context = ConfigContext(Path("/etc/ldapd/ldapd.toml"), "database[0]", self.schema, None,
                                self.ndn("dc=example,dc=com"))
        backend = UserDBBackendFactory.fromConfig({"database": "app.db"}, context)
        self.assertEqual(backend.path, Path("/etc/ldapd/app.db"))
        self.assertRaises(ConfigError, UserDBBackendFactory.fromConfig, {}, context)


class EntryPointTests(unittest.TestCase):
    """
    The package registers its factory as the C{userdb} backend.
    """

    def test_entryPoint(self) -> None:
        """
        The C{ldapd.backends} entry point C{userdb} names the factory,
        whose name is the same.
        """
        import tomllib

        with open(EXAMPLE / "pyproject.toml", "rb") as f:
            project = tomllib.load(f)["project"]
        target = project["entry-points"]["ldapd.backends"]["userdb"]
        self.assertEqual(target, _FACTORY)
        context = ConfigContext(None, "database[0]", Schema.standard(), None)
        self.assertIs(lookup(BACKENDS, target, context, "backend"), UserDBBackendFactory)
        self.assertEqual(UserDBBackendFactory.name, "userdb")


class RealServerTests(unittest.TestCase):
    """
    The example as a user runs it: C{make_sample_db.py}'s database next
    to the example's C{ldapd.toml}, C{twist ldapd}, and real clients.
    """

    def setUp(self) -> None:
        for tool in ("ldapwhoami", "ldappasswd", "ldapsearch"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest(f"{tool} (ldap-utils) is not installed")
        serverFolder = Path(tempfile.mkdtemp(prefix="userdb-server-"))
        self.addCleanup(shutil.rmtree, serverFolder)
        self.database = serverFolder / "sample.db"
        subprocess.run([sys.executable, str(EXAMPLE / "make_sample_db.py"), str(self.database)],
                       check=True, timeout=120, capture_output=True)
        config = (EXAMPLE / "ldapd.toml").read_text()
        # The server imports the package from the example's folder; the
        # entry point that names it "userdb" once installed is checked by
        # EntryPointTests.
        for old, new in [("tcp:10389:", "tcp:{port}:"),
                         ('backend = "userdb"', f'backend = "{_FACTORY}"')]:
            self.assertIn(old, config)
            config = config.replace(old, new)
        self.patch(os, "environ", dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(EXAMPLE), os.environ.get("PYTHONPATH")]))))
        self.server = ServerProcess(config.replace("tcp:10389:", "tcp:{port}:"), serverFolder)
        self.server.start()
        self.addCleanup(self.server.stop)

    def run_(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, "-x", "-H", self.server.url], capture_output=True,
                              text=True, timeout=60)

    def test_clients(self) -> None:
        """
        ada binds with her password; finds herself and her group; changes
        her password with ldappasswd (to one the server generates, then to
        one she gives), in the application's format; cannot
        bind once the application deactivates her.
        """
        ada = f"uid=ada,{PEOPLE}"
        who = self.run_("ldapwhoami", "-D", ada, "-w", "lovelace")
        self.assertEqual((who.returncode, who.stdout.strip()), (0, f"dn:{ada}"), who.stderr)
        found = self.run_("ldapsearch", "-LLL", "-D", ada, "-w", "lovelace", "-b",
                          "dc=example,dc=com", "(member=uid=ada,ou=people,dc=example,dc=com)", "cn")
        self.assertIn("cn: engineers", found.stdout, found.stderr)
        generated = self.run_("ldappasswd", "-D", ada, "-w", "lovelace")
        self.assertEqual(generated.returncode, 0, generated.stderr)
        newPassword = generated.stdout.split("New password:", 1)[1].strip()
        who = self.run_("ldapwhoami", "-D", ada, "-w", newPassword)
        self.assertEqual((who.returncode, who.stdout.strip()), (0, f"dn:{ada}"), who.stderr)
        changed = self.run_("ldappasswd", "-D", ada, "-w", newPassword, "-s", "difference-engine")
        self.assertEqual(changed.returncode, 0, changed.stderr)
        with sqlite3.connect(self.database) as db:
            [column] = db.execute("SELECT password FROM users WHERE username = 'ada'").fetchone()
        self.assertEqual(column, makePassword(b"difference-engine", int(column.split("$")[1]),
                                              column.split("$")[2]))

        import ldap3

        connection = ldap3.Connection(ldap3.Server(self.server.url), ada, "difference-engine")
        self.assertTrue(connection.bind())
        connection.search("dc=example,dc=com", "(mail=ada@example.com)", attributes=["uidNumber"])
        self.assertEqual([str(e.entry_dn) for e in connection.entries], [ada])
        connection.unbind()
        with sqlite3.connect(self.database) as db:
            db.execute("UPDATE users SET is_active = 0 WHERE username = 'ada'")
        db.close()
        refused = self.run_("ldapwhoami", "-D", ada, "-w", "difference-engine")
        self.assertEqual(refused.returncode, 49, refused.stderr)
