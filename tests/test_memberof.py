"""
Tests for the C{memberof} plugin (L{ldapd.plugins.memberof}): members'
C{memberOf} kept in step with their groups inside the group write's
transaction, on the memory backend and the sql backend (SQLite, and
PostgreSQL when C{LDAPD_TEST_POSTGRESQL_URL} names one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from twisted.trial import unittest

from ldapd.entry import Entry
from ldapd.operation import Operation
from ldapd.plugins.memberof import MemberOf, MemberOfFactory
from ldapd.plugins.refint import InvalidSetting
from ldapd.registry import PLUGINS, ConfigContext, ConfigError, lookup
from ldapd.schema import Schema
from ldapd.testing import DirectoryTestsMixin, parseFilter

PEOPLE = "ou=people,dc=example,dc=com"
GROUPS = "ou=groups,dc=example,dc=com"
ALICE = f"uid=alice,{PEOPLE}"
BOB = f"uid=bob,{PEOPLE}"
CAROL = f"uid=carol,{PEOPLE}"
TEAM = f"cn=team,{GROUPS}"


class _Refuse:
    """
    A plugin whose C{txn_*} hooks refuse every write leaving an entry with
    a C{cn} starting with C{team}, after the plugins before it have run.
    """

    name = "refuse"

    def _refuse(self, entry: Entry) -> None:
        if any(cn.lower().startswith(b"team") for cn in entry.get("cn")):
            raise ldaperrors.LDAPUnwillingToPerform("refused")

    def txn_add(self, op: Operation, txn: Any, entry: Entry) -> None:
        self._refuse(entry)

    def txn_modify(self, op: Operation, txn: Any, old: Entry, new: Entry) -> None:
        self._refuse(new)

    def txn_delete(self, op: Operation, txn: Any, entry: Entry) -> None:
        self._refuse(entry)

    def txn_rename(self, op: Operation, txn: Any, old: Entry, new: Entry) -> None:
        self._refuse(new)


class MemberOfTestsMixin(DirectoryTestsMixin):
    """
    The memberof plugin in a directory with the example organisation,
    whose seeded groups already gave their members C{memberOf}.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        return [MemberOf(schema)]

    async def memberOf(self, dn: str) -> set[Any]:
        return await self.values(dn, "memberOf")

    async def addTeam(self, *members: str) -> int:
        return await self.add(TEAM, [("objectClass", [b"groupOfNames"]), ("cn", [b"team"]),
                                     ("member", [m.encode() for m in members])])

    async def _test_seeded(self) -> None:
        self.assertIn(self.ndn(f"cn=admins,{GROUPS}"), await self.memberOf(ALICE))

    def test_seeded(self) -> Any:
        """
        Groups loaded from the seed LDIF after their members gave them
        C{memberOf}.
        """
        return defer.Deferred.fromCoroutine(self._test_seeded())

    async def _test_groupLifeCycle(self) -> None:
        before = await self.memberOf(ALICE)
        self.assertEqual(await self.addTeam(ALICE, BOB, f"uid=ghost,{PEOPLE}"), 0)
        self.assertEqual(await self.memberOf(ALICE), before | {self.ndn(TEAM)})
        self.assertIn(self.ndn(TEAM), await self.memberOf(BOB))
        self.assertIsNone(await self.read(f"uid=ghost,{PEOPLE}"))
        # Members added and removed.
        self.assertEqual(await self.modify(TEAM, ("add", "member", [CAROL.encode()]),
                                           ("delete", "member", [BOB.encode()])), 0)
        self.assertIn(self.ndn(TEAM), await self.memberOf(CAROL))
        self.assertNotIn(self.ndn(TEAM), await self.memberOf(BOB))
        # Replaced.
        self.assertEqual(await self.modify(TEAM, ("replace", "member", [BOB.encode()])), 0)
        self.assertEqual(await self.memberOf(ALICE), before)
        self.assertNotIn(self.ndn(TEAM), await self.memberOf(CAROL))
        self.assertIn(self.ndn(TEAM), await self.memberOf(BOB))
        # Renamed and moved.
        renamed = f"cn=crew,{PEOPLE}"
        self.assertEqual(await self.rename(TEAM, "cn=crew", PEOPLE), 0)
        bob = await self.read(BOB)
        assert bob is not None
        self.assertIn(renamed.encode(), bob.get("memberOf"))
        self.assertNotIn(self.ndn(TEAM), await self.memberOf(BOB))
        # Deleted.
        self.assertEqual(await self.delete(renamed), 0)
        self.assertNotIn(self.ndn(renamed), await self.memberOf(BOB))

    def test_groupLifeCycle(self) -> Any:
        """
        Adding a group gives its existing members C{memberOf} (members that
        do not exist are skipped); modifying its members adds and removes
        the value; renaming it replaces the value with the new DN, as
        written; deleting it removes the value.
        """
        return defer.Deferred.fromCoroutine(self._test_groupLifeCycle())

    async def _test_noUserModification(self) -> None:
        self.assertEqual(await self.modify(ALICE, ("add", "memberOf", [TEAM.encode()])), 19)
        self.assertEqual(await self.add(f"uid=zoe,{PEOPLE}", [
            ("objectClass", [b"inetOrgPerson"]), ("cn", [b"Zoe"]), ("sn", [b"Z"]),
            ("memberOf", [TEAM.encode()])]), 19)

    def test_noUserModification(self) -> Any:
        """
        Clients cannot write C{memberOf}: constraintViolation, as slapd.
        """
        return defer.Deferred.fromCoroutine(self._test_noUserModification())

    async def _test_operational(self) -> None:
        async def attributes(*asked: str) -> set[str]:
            responses = await self.request(pureldap.LDAPSearchRequest(
                baseObject=ALICE, scope=0, filter=parseFilter("(objectClass=*)"),
                attributes=list(asked)))
            return {str(k) if not isinstance(k, bytes) else k.decode()
                    for k, _ in responses[0].value.attributes}

        self.assertNotIn("memberOf", await attributes())
        self.assertIn("memberOf", await attributes("+"))
        self.assertIn("memberOf", await attributes("memberOf"))
        responses = await self.request(pureldap.LDAPSearchRequest(
            baseObject=PEOPLE, scope=1, filter=parseFilter(f"(memberOf=cn=admins,{GROUPS})"),
            attributes=["1.1"]))
        self.assertEqual([r.value.objectName for r in responses[:-1]], [ALICE.encode()])

    def test_operational(self) -> Any:
        """
        C{memberOf} is returned only when asked for by name or with C{+},
        and can be searched for.
        """
        return defer.Deferred.fromCoroutine(self._test_operational())

    async def _test_specialCharacters(self) -> None:
        odd = f"cn=a\\,b (c*) \\\\d,{PEOPLE}"
        self.assertEqual(await self.add(odd, [("objectClass", [b"person"]), ("sn", [b"x"])]), 0)
        group = f"cn=odd\\2c(*)\\\\,{GROUPS}"
        self.assertEqual(await self.add(group, [("objectClass", [b"groupOfNames"]),
                                                ("member", [odd.encode()])]), 0)
        self.assertEqual(await self.memberOf(odd), {self.ndn(group)})
        self.assertEqual(await self.delete(group), 0)
        self.assertEqual(await self.memberOf(odd), set())

    def test_specialCharacters(self) -> Any:
        """
        Groups and members whose names hold commas, parentheses, asterisks
        and backslashes are followed exactly.
        """
        return defer.Deferred.fromCoroutine(self._test_specialCharacters())


class RollbackTestsMixin(DirectoryTestsMixin):
    """
    The memberof plugin followed by one that fails the group's writes.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        return [MemberOf(schema), _Refuse()]

    async def _test_rollback(self) -> None:
        before = await self.values(ALICE, "memberOf")
        group = [("objectClass", [b"groupOfNames"]), ("cn", [b"team"]),
                 ("member", [ALICE.encode()])]
        self.assertEqual(await self.add(TEAM, group), 53)
        self.assertIsNone(await self.read(TEAM))
        self.assertEqual(await self.values(ALICE, "memberOf"), before)
        admins = f"cn=admins,{GROUPS}"
        self.assertEqual(await self.modify(admins, ("add", "member", [BOB.encode()]),
                                           ("add", "cn", [b"team"])), 53)
        self.assertNotIn(self.ndn(admins), await self.values(BOB, "memberOf"))
        self.assertEqual(await self.rename(admins, "cn=teamsters"), 53)
        self.assertEqual(await self.values(ALICE, "memberOf"), before)

    def test_rollback(self) -> Any:
        """
        A group write whose transaction fails leaves no C{memberOf} change
        behind.
        """
        return defer.Deferred.fromCoroutine(self._test_rollback())


class MemoryMemberOfTests(MemberOfTestsMixin, unittest.TestCase):
    backend = "memory"


class SQLiteMemberOfTests(MemberOfTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLMemberOfTests(MemberOfTestsMixin, unittest.TestCase):
    backend = "postgresql"


class MemoryRollbackTests(RollbackTestsMixin, unittest.TestCase):
    backend = "memory"


class SQLiteRollbackTests(RollbackTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLRollbackTests(RollbackTestsMixin, unittest.TestCase):
    backend = "postgresql"


class ConfigTests(unittest.TestCase):
    """
    L{MemberOfFactory}: settings checked against the schema.
    """

    def context(self) -> ConfigContext:
        return ConfigContext(Path("ldapd.toml"), "plugin[0]", Schema.standard(), None)

    def test_defaults(self) -> None:
        """
        Without settings: groupOfNames, member and memberOf.
        """
        plugin = MemberOfFactory.fromConfig({}, self.context())
        self.assertEqual((plugin.groupClass.name, plugin.memberType.name,
                          plugin.memberOfType.name), ("groupOfNames", "member", "memberOf"))

    def test_registered(self) -> None:
        """
        The factory is registered as C{memberof}.
        """
        self.assertIs(lookup(PLUGINS, "memberof", self.context(), "name"), MemberOfFactory)

    def test_errors(self) -> None:
        """
        Unknown keys, names the schema does not define and types that are
        not of DN syntax are refused, naming the key.
        """
        for table, message in [
            ({"groups": "x"}, "plugin[0].groups: unknown key"),
            ({"group_objectclass": "nope"}, "plugin[0].group_objectclass: undefined object"),
            ({"group_objectclass": 3}, "plugin[0].group_objectclass: must be a name"),
            ({"member_attribute": "nope"}, "plugin[0].member_attribute: undefined attribute"),
            ({"member_attribute": "cn"}, "plugin[0].member_attribute: cn is not of DN syntax"),
            ({"memberof_attribute": "member"}, "plugin[0].memberof_attribute: must differ"),
        ]:
            with self.assertRaises(ConfigError) as caught:
                MemberOfFactory.fromConfig(table, self.context())
            self.assertIn(message, str(caught.exception))

    def test_embedded(self) -> None:
        """
        Built in code, a wrong name raises L{InvalidSetting}.
        """
        self.assertRaises(InvalidSetting, MemberOf, Schema.standard(), "nope")
