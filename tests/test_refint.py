"""
Tests for the C{refint} plugin (L{ldapd.plugins.refint}): values naming a
deleted entry removed, values naming a renamed entry (or an entry below
it) renamed, after the client's write, on the memory backend and the sql
backend (SQLite, and PostgreSQL when C{LDAPD_TEST_POSTGRESQL_URL} names
one); and, with the memberof plugin, against a private slapd running the
memberof and refint overlays.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ldap3
import pytest
from twisted.internet import defer
from twisted.trial import unittest

from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.plugins.memberof import MemberOf
from ldapd.plugins.refint import (
    InvalidSetting,
    ReferentialIntegrity,
    ReferentialIntegrityFactory,
)
from ldapd.registry import PLUGINS, ConfigContext, ConfigError, lookup
from ldapd.schema import Schema
from ldapd.testing import SLAPD, DirectoryTestsMixin, ServerProcess, SlapdProcess, exampleConfig

PEOPLE = "ou=people,dc=example,dc=com"
GROUPS = "ou=groups,dc=example,dc=com"
ALICE = f"uid=alice,{PEOPLE}"
BOB = f"uid=bob,{PEOPLE}"
CAROL = f"uid=carol,{PEOPLE}"
DAVE = f"uid=dave,{PEOPLE}"
ADMINS = f"cn=admins,{GROUPS}"
DEVELOPERS = f"cn=developers,{GROUPS}"
NOBODY = "cn=nobody,dc=example,dc=com"


class ReferentialIntegrityTestsMixin(DirectoryTestsMixin):
    """
    The memberof and refint plugins in a directory with the example
    organisation (C{admins}: alice; C{developers}: bob, carol and dave).
    """

    nothing: str | None = None

    def makePlugins(self, schema: Schema) -> list[Any]:
        nothing = DN.parse(self.nothing) if self.nothing is not None else None
        return [MemberOf(schema), ReferentialIntegrity(schema, nothing=nothing)]

    async def person(self, dn: str) -> int:
        return await self.add(dn, [("objectClass", [b"inetOrgPerson"]), ("sn", [b"Example"])])

    async def _test_delete(self) -> None:
        self.assertEqual(await self.modify(ADMINS, ("add", "member", [BOB.encode()])), 0)
        self.assertEqual(await self.delete(BOB), 0)
        self.assertEqual(await self.values(ADMINS, "member"), {self.ndn(ALICE)})
        self.assertEqual(await self.values(DEVELOPERS, "member"),
                         {self.ndn(CAROL), self.ndn(DAVE)})

    def test_delete(self) -> Any:
        """
        Deleting an entry removes the values naming it from every group
        that holds one.
        """
        return defer.Deferred.fromCoroutine(self._test_delete())

    async def _test_rename(self) -> None:
        self.assertEqual(await self.rename(BOB, "uid=Robert"), 0)
        robert = f"uid=Robert,{PEOPLE}"
        developers = await self.read(DEVELOPERS)
        assert developers is not None
        self.assertIn(robert.encode(), developers.get("member"))
        self.assertEqual(await self.values(DEVELOPERS, "member"),
                         {self.ndn(robert), self.ndn(CAROL), self.ndn(DAVE)})
        # memberOf moved with the entry, and the group's modify was the plugin's.
        self.assertIn(self.ndn(DEVELOPERS), await self.values(robert, "memberOf"))
        self.assertEqual(developers.get("modifiersName"), (b"cn=Referential Integrity Overlay",))

    def test_rename(self) -> Any:
        """
        Renaming an entry replaces the values naming it with its new DN,
        as written; the modify is made as C{cn=Referential Integrity
        Overlay}, as slapd's.
        """
        return defer.Deferred.fromCoroutine(self._test_rename())

    async def _test_renameSubtree(self) -> None:
        self.assertEqual(await self.rename(PEOPLE, "ou=staff"), 0)
        staff = "ou=staff,dc=example,dc=com"
        self.assertEqual(await self.values(ADMINS, "member"), {self.ndn(f"uid=alice,{staff}")})
        self.assertEqual(await self.values(DEVELOPERS, "member"),
                         {self.ndn(f"uid={uid},{staff}") for uid in ("bob", "carol", "dave")})

    def test_renameSubtree(self) -> Any:
        """
        Renaming an entry with entries below it replaces the values naming
        any of them.
        """
        return defer.Deferred.fromCoroutine(self._test_renameSubtree())

    async def _test_lastValue(self) -> None:
        self.assertEqual(await self.delete(ALICE), 0)
        if self.nothing is None:
            # groupOfNames requires a member: the modify is refused and
            # the group left as it was; the delete succeeded all the same.
            self.assertEqual(await self.values(ADMINS, "member"), {self.ndn(ALICE)})
        else:
            self.assertEqual(await self.values(ADMINS, "member"), {self.ndn(self.nothing)})

    def test_lastValue(self) -> Any:
        """
        Removing the last value of a required attribute puts C{nothing} in
        its place; without C{nothing}, the holder is left as it was and the
        client's result is unchanged.
        """
        return defer.Deferred.fromCoroutine(self._test_lastValue())

    async def _test_uniqueMember(self) -> None:
        group = f"cn=unique,{GROUPS}"
        self.assertEqual(await self.add(group, [
            ("objectClass", [b"groupOfUniqueNames"]),
            ("uniqueMember", [f"{BOB}#'0101'B".encode(), CAROL.encode(), ALICE.encode()])]), 0)
        self.assertEqual(await self.rename(BOB, "uid=robert"), 0)
        self.assertEqual(await self.delete(CAROL), 0)
        entry = await self.read(group)
        assert entry is not None
        self.assertEqual(sorted(entry.get("uniqueMember")),
                         [ALICE.encode(), f"uid=robert,{PEOPLE}#'0101'B".encode()])

    def test_uniqueMember(self) -> Any:
        """
        Values of C{uniqueMember} are compared by their DN part; the
        optional UID is kept when the DN is renamed.
        """
        return defer.Deferred.fromCoroutine(self._test_uniqueMember())

    async def _test_specialCharacters(self) -> None:
        names = [f"cn=a\\,b,{PEOPLE}", f"cn=x)(cn=*,{PEOPLE}", f"cn=*,{PEOPLE}",
                 f"cn=back\\\\slash,{PEOPLE}", f"cn=\\2a\\28star,{PEOPLE}"]
        decoy = f"cn=ab,{PEOPLE}"
        for name in names + [decoy]:
            self.assertEqual(await self.person(name), 0)
        group = f"cn=odd,{GROUPS}"
        members = [n.encode() for n in names + [decoy]]
        self.assertEqual(await self.add(group, [("objectClass", [b"groupOfNames"]),
                                                ("member", members)]), 0)
        self.assertEqual(await self.rename(names[0], "cn=a\\,b\\,c"), 0)
        expected = {self.ndn(f"cn=a\\,b\\,c,{PEOPLE}")} | {self.ndn(n) for n in names[1:]}
        self.assertEqual(await self.values(group, "member"), expected | {self.ndn(decoy)})
        for name in [f"cn=a\\,b\\,c,{PEOPLE}"] + names[1:]:
            self.assertEqual(await self.delete(name), 0)
        self.assertEqual(await self.values(group, "member"), {self.ndn(decoy)})

    def test_specialCharacters(self) -> Any:
        """
        Names holding commas, parentheses, asterisks and backslashes are
        escaped in the searches for their holders: each is found, and only
        its own value is changed.
        """
        return defer.Deferred.fromCoroutine(self._test_specialCharacters())

    async def _test_internalWrites(self) -> None:
        op = self.directory.internalOperation()
        await self.directory.delete(op, self.ndn(BOB))
        self.assertIn(self.ndn(BOB), await self.values(DEVELOPERS, "member"))

    def test_internalWrites(self) -> Any:
        """
        The server's own deletes (the plugin's own writes among them) do
        not set the plugin off.
        """
        return defer.Deferred.fromCoroutine(self._test_internalWrites())

    async def _test_failedDelete(self) -> None:
        self.assertEqual(await self.delete(PEOPLE), 66)
        self.assertEqual(await self.delete(f"uid=ghost,{PEOPLE}"), 32)
        self.assertEqual(await self.values(DEVELOPERS, "member"),
                         {self.ndn(BOB), self.ndn(CAROL), self.ndn(DAVE)})

    def test_failedDelete(self) -> Any:
        """
        A delete that fails changes no holder.
        """
        return defer.Deferred.fromCoroutine(self._test_failedDelete())


class OtherDatabaseTests(DirectoryTestsMixin, unittest.TestCase):
    """
    Holders in another database of the directory are updated too.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        return [MemberOf(schema), ReferentialIntegrity(schema)]

    def setUp(self) -> Any:
        d = super().setUp()
        other = DN.parse("dc=other,dc=com")
        database = Database(other, MemoryBackend(self.schema.normalizeDN(other), self.schema))
        self.directory.configuredDatabases.append(database)
        self.directory.addDatabase(database)
        return d.addCallback(lambda _: database.backend.open())

    async def _test_otherDatabase(self) -> None:
        op = self.directory.internalOperation()
        await self.directory.add(op, Entry(DN.parse("dc=other,dc=com"), [
            ("objectClass", [b"dcObject", b"organization"]), ("dc", [b"other"]),
            ("o", [b"Other"])], self.schema))
        group = "cn=guests,dc=other,dc=com"
        self.assertEqual(await self.add(group, [("objectClass", [b"groupOfNames"]),
                                                ("member", [BOB.encode(), CAROL.encode()])]), 0)
        # The member is in another database than the group: no memberOf.
        self.assertNotIn(self.ndn(group), await self.values(BOB, "memberOf"))
        self.assertEqual(await self.delete(BOB), 0)
        self.assertEqual(await self.values(group, "member"), {self.ndn(CAROL)})
        self.assertEqual(await self.rename(CAROL, "uid=caroline"), 0)
        self.assertEqual(await self.values(group, "member"),
                         {self.ndn(f"uid=caroline,{PEOPLE}")})

    def test_otherDatabase(self) -> Any:
        """
        Deleting or renaming an entry updates the holders in every
        database; the memberof plugin leaves members in another database
        than their group alone.
        """
        return defer.Deferred.fromCoroutine(self._test_otherDatabase())


class MemoryReferentialIntegrityTests(ReferentialIntegrityTestsMixin, unittest.TestCase):
    backend = "memory"


class MemoryNothingTests(ReferentialIntegrityTestsMixin, unittest.TestCase):
    backend = "memory"
    nothing = NOBODY


class SQLiteReferentialIntegrityTests(ReferentialIntegrityTestsMixin, unittest.TestCase):
    backend = "sqlite"


class SQLiteNothingTests(ReferentialIntegrityTestsMixin, unittest.TestCase):
    backend = "sqlite"
    nothing = NOBODY


class PostgreSQLReferentialIntegrityTests(ReferentialIntegrityTestsMixin, unittest.TestCase):
    backend = "postgresql"


class ConfigTests(unittest.TestCase):
    """
    L{ReferentialIntegrityFactory}: settings checked against the schema.
    """

    def context(self) -> ConfigContext:
        return ConfigContext(Path("ldapd.toml"), "plugin[1]", Schema.standard(), None)

    def test_defaults(self) -> None:
        """
        Without settings: member and uniqueMember, no C{nothing}.
        """
        plugin = ReferentialIntegrityFactory.fromConfig({}, self.context())
        self.assertEqual([t.name for t in plugin.types], ["member", "uniqueMember"])
        self.assertIsNone(plugin.nothing)

    def test_values(self) -> None:
        """
        C{attributes} and C{nothing} are taken.
        """
        plugin = ReferentialIntegrityFactory.fromConfig(
            {"attributes": ["owner", "seeAlso"], "nothing": NOBODY}, self.context())
        self.assertEqual([t.name for t in plugin.types], ["owner", "seeAlso"])
        self.assertEqual(plugin.nothing, DN.parse(NOBODY))

    def test_registered(self) -> None:
        """
        The factory is registered as C{refint}.
        """
        self.assertIs(lookup(PLUGINS, "refint", self.context(), "name"),
                      ReferentialIntegrityFactory)

    def test_errors(self) -> None:
        """
        Unknown keys, undefined types, types not of DN syntax and a
        C{nothing} that is no DN are refused, naming the key.
        """
        for table, message in [
            ({"attribute": []}, "plugin[1].attribute: unknown key"),
            ({"attributes": "member"}, "plugin[1].attributes: must be a list"),
            ({"attributes": []}, "plugin[1].attributes: names no attribute type"),
            ({"attributes": ["nope"]}, "plugin[1].attributes: undefined attribute type 'nope'"),
            ({"attributes": ["cn"]}, "plugin[1].attributes: cn is not of DN syntax"),
            ({"nothing": "no dn"}, "plugin[1].nothing: not a DN"),
            ({"nothing": 1}, "plugin[1].nothing: not a DN"),
        ]:
            with self.assertRaises(ConfigError) as caught:
                ReferentialIntegrityFactory.fromConfig(table, self.context())
            self.assertIn(message, str(caught.exception))

    def test_embedded(self) -> None:
        """
        Built in code, a wrong type raises L{InvalidSetting}.
        """
        self.assertRaises(InvalidSetting, ReferentialIntegrity, Schema.standard(), ["cn"])


#: Where the side-by-side comparison writes, on both servers.
_COMPARE = "ou=cmp,dc=example,dc=com"

#: The slapd overlays, as ldapd's plugins are configured below.
_SLAPD_OVERLAYS = """\
overlay memberof
overlay refint
refint_attributes member
"""

_LDAPD_PLUGINS = """
[[plugin]]
name = "memberof"

[[plugin]]
name = "refint"
"""

#: The longest a comparison waits for slapd's refint (which works after
#: answering the client) to reach the state ldapd is in.
_SETTLE_SECONDS = 10.0


@pytest.mark.integration
class SlapdComparisonTests(unittest.SynchronousTestCase):
    """
    The same writes on a private slapd with the memberof and refint
    overlays and on the real C{twist ldapd} with the memberof and refint
    plugins leave the same C{member} and C{memberOf} values.
    """

    def setUp(self) -> None:
        if not SLAPD.is_file():
            raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
        self.slapd = SlapdProcess(modules=["memberof", "refint"],
                                  databaseConfig=_SLAPD_OVERLAYS)
        self.addCleanup(self.slapd.stop)
        self.slapd.start()
        self.ldapd = ServerProcess(exampleConfig() + _LDAPD_PLUGINS)
        self.addCleanup(self.ldapd.stop)
        self.ldapd.start()
        self.schema = Schema.standard()
        self.connections = {}
        for name, server, password in [("slapd", self.slapd, self.slapd.rootPassword),
                                       ("ldapd", self.ldapd, "secret")]:
            connection = ldap3.Connection(ldap3.Server(server.url, connect_timeout=10),
                                          "cn=admin,dc=example,dc=com", password,
                                          auto_bind=True, receive_timeout=30)
            self.addCleanup(connection.unbind)
            self.connections[name] = connection
        # slapd's database starts empty; ldapd's holds the example organisation.
        self.connections["slapd"].add("dc=example,dc=com", ["dcObject", "organization"],
                                      {"dc": "example", "o": "Example"})

    def ndn(self, text: str) -> str:
        return str(self.schema.normalizeDN(DN.parse(text)))

    def state(self, connection: Any) -> dict[str, dict[str, set[str]]]:
        """
        @return: the normalised C{member} and C{memberOf} values of each
            entry below L{_COMPARE}, by normalised DN.
        """
        connection.search(_COMPARE, "(objectClass=*)", attributes=["member", "memberOf"])
        return {
            self.ndn(entry["dn"]): {
                name: {self.ndn(v) for v in entry["attributes"].get(name, [])}
                for name in ("member", "memberOf")
            }
            for entry in connection.response if entry["type"] == "searchResEntry"
        }

    def step(self, description: str, write: Any) -> None:
        """
        Make a write on both servers, check both succeed, and wait (at most
        L{_SETTLE_SECONDS}) for slapd's state to be ldapd's.
        """
        for name, connection in self.connections.items():
            write(connection)
            self.assertEqual(connection.result["result"], 0,
                             f"{description} on {name}: {connection.result}")
        expected = self.state(self.connections["ldapd"])
        deadline = time.monotonic() + _SETTLE_SECONDS
        while True:
            found = self.state(self.connections["slapd"])
            if found == expected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(found, expected, f"after {description}")

    def assertStaysEqual(self, polls: int = 10) -> None:
        """
        Read slapd's state several times, 0.1 s apart, and fail if it ever
        differs from ldapd's: a check that nothing changes afterwards, which
        passes however slow slapd is, not one that waits for a change.
        """
        expected = self.state(self.connections["ldapd"])
        for _ in range(polls):
            self.assertEqual(self.state(self.connections["slapd"]), expected)
            time.sleep(0.1)

    def test_sameValues(self) -> None:
        """
        Users added, a group added, its members modified, a member renamed,
        a member deleted, the group renamed, the group deleted, the only
        member of a group deleted: after each step, both servers hold the
        same values. Both refuse a client's write of C{memberOf} with
        constraintViolation.
        """
        people = f"ou=people,{_COMPARE}"
        users = [f"uid={uid},{people}" for uid in ("ann", "ben", "cy", "dee")]
        group = f"cn=crew,{_COMPARE}"
        steps = [
            ("add ou=cmp", lambda c: c.add(_COMPARE, "organizationalUnit")),
            ("add people", lambda c: c.add(people, "organizationalUnit")),
            *[(f"add {u}", lambda c, u=u: c.add(u, "inetOrgPerson", {"cn": "x", "sn": "y"}))
              for u in users],
            ("add group", lambda c: c.add(group, "groupOfNames", {"member": users[:2]})),
            ("modify members", lambda c: c.modify(group, {
                "member": [(ldap3.MODIFY_ADD, users[2:]), (ldap3.MODIFY_DELETE, [users[0]])]})),
            ("rename a member", lambda c: c.modify_dn(users[1], "uid=benjamin")),
            ("delete a member", lambda c: c.delete(users[2])),
            ("rename the group", lambda c: c.modify_dn(group, "cn=team")),
            ("delete the group", lambda c: c.delete(f"cn=team,{_COMPARE}")),
            ("add a group of one", lambda c: c.add(f"cn=solo,{_COMPARE}", "groupOfNames",
                                                   {"member": [users[3]]})),
            ("delete its only member", lambda c: c.delete(users[3])),
        ]
        for description, write in steps:
            self.step(description, write)
        # Equal at once: slapd's refint, which runs in the background, may
        # not have tried yet; when it does, it fails as ldapd's did
        # (groupOfNames requires a member), so the two stay equal.
        self.assertStaysEqual()
        codes = {}
        for name, connection in self.connections.items():
            connection.modify(users[0], {"memberOf": [(ldap3.MODIFY_ADD, [group])]})
            codes[name] = connection.result["result"]
        self.assertEqual(codes, {"slapd": 19, "ldapd": 19})
