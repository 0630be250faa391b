"""
Tests for the C{memberof} plugin (L{ldapd.plugins.memberof}): members'
C{memberOf} kept in step with their groups inside the group write's
transaction, each member's change a write of its own that the changelog
records, on the memory backend and the sql backend (SQLite, and
PostgreSQL when C{LDAPD_TEST_POSTGRESQL_URL} names one).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import ldap
import pytest
from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from twisted.trial import unittest

from ldapd.changes import ADD, MODIFY
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.interfaces import IChangelog
from ldapd.operation import Operation
from ldapd.plugins.changelog import Changelog
from ldapd.plugins.memberof import MemberOf, MemberOfFactory
from ldapd.plugins.refint import InvalidSetting
from ldapd.registry import PLUGINS, ConfigContext, ConfigError, lookup
from ldapd.schema import Schema
from ldapd.testing import (
    SLAPD,
    DirectoryTestsMixin,
    ServerProcess,
    SlapdProcess,
    wireFilter,
)
from test_syncconsumer import (
    BASE,
    CONVERGE_SECONDS,
    PASSWORD,
    ROOT_DN,
    consumerServer,
    ldapmodify,
    person,
)
from test_syncprovider import SYNCREPL, providerConfig

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


class GroupsMixin(DirectoryTestsMixin):
    """
    What the tests of groups share.
    """

    async def memberOf(self, dn: str) -> set[Any]:
        return await self.values(dn, "memberOf")

    async def addTeam(self, *members: str) -> int:
        return await self.add(TEAM, [("objectClass", [b"groupOfNames"]), ("cn", [b"team"]),
                                     ("member", [m.encode() for m in members])])


class MemberOfTestsMixin(GroupsMixin):
    """
    The memberof plugin in a directory with the example organisation,
    whose seeded groups already gave their members C{memberOf}.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        return [MemberOf(schema)]

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
                baseObject=ALICE, scope=0, filter=wireFilter("(objectClass=*)"),
                attributes=list(asked)))
            return {str(k) if not isinstance(k, bytes) else k.decode()
                    for k, _ in responses[0].value.attributes}

        self.assertNotIn("memberOf", await attributes())
        self.assertIn("memberOf", await attributes("+"))
        self.assertIn("memberOf", await attributes("memberOf"))
        responses = await self.request(pureldap.LDAPSearchRequest(
            baseObject=PEOPLE, scope=1, filter=wireFilter(f"(memberOf=cn=admins,{GROUPS})"),
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


class _RefuseMembers:
    """
    A plugin whose C{txn_modify} refuses the server's own modifies (the
    memberof plugin's changes of members), once armed (after the seed).
    """

    name = "refuse-members"
    armed = False

    def txn_modify(self, op: Operation, txn: Any, old: Entry, new: Entry) -> None:
        if self.armed and op.internal:
            raise ldaperrors.LDAPUnwillingToPerform("refused")


class ReplicatedTestsMixin(GroupsMixin):
    """
    The memberof plugin before the changelog plugin: members' changes are
    writes of their own, recorded after the group's.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        return [MemberOf(schema), Changelog(sid=1)]

    async def records(self) -> list[Any]:
        changelog = IChangelog(self.directory.databases[0].backend)
        return await changelog.changes(0, 10000)  # type: ignore[no-any-return]

    async def _test_recorded(self) -> None:
        alice = await self.read(ALICE)
        bob = await self.read(BOB)
        assert alice is not None and bob is not None
        seen = len(await self.records())
        self.assertEqual(await self.addTeam(ALICE, BOB), 0)
        records = (await self.records())[seen:]
        self.assertEqual([(r.kind, r.targetDN) for r in records],
                         [(ADD, TEAM), (MODIFY, ALICE), (MODIFY, BOB)])
        self.assertEqual([r.entryUUID for r in records[1:]],
                         [alice.get("entryUUID")[0], bob.get("entryUUID")[0]])
        # In number order, the CSNs grow: the members' come after the group's.
        self.assertEqual([r.csn for r in records], sorted({r.csn for r in records}))
        self.assertIn(b"memberOf", records[1].changes)
        after = await self.read(ALICE)
        assert after is not None
        self.assertEqual(after.get("entryCSN"), (records[1].csn,))
        self.assertGreater(after.get("entryCSN")[0], alice.get("entryCSN")[0])
        self.assertGreaterEqual(after.get("modifyTimestamp")[0], alice.get("modifyTimestamp")[0])
        self.assertEqual(after.get("modifiersName"), (self.rootDN.encode(),))
        # A member removed: its change is recorded too.
        seen += len(records)
        self.assertEqual(await self.modify(TEAM, ("delete", "member", [BOB.encode()])), 0)
        records = (await self.records())[seen:]
        self.assertEqual([(r.kind, r.targetDN, r.entryUUID) for r in records],
                         [(MODIFY, TEAM, records[0].entryUUID),
                          (MODIFY, BOB, bob.get("entryUUID")[0])])
        self.assertNotIn(self.ndn(TEAM), await self.memberOf(BOB))

    def test_recorded(self) -> Any:
        """
        Adding a group records, after the group's add, a modify of each
        member (with its entryUUID) with a greater CSN, which the member
        now holds as its C{entryCSN}, with the database's root DN as
        C{modifiersName}; removing a member records its modify too.
        """
        return defer.Deferred.fromCoroutine(self._test_recorded())

    async def _test_announced(self) -> None:
        changes: list[Any] = []
        self.addCleanup(self.directory.subscribe(changes.append))
        self.assertEqual(await self.addTeam(ALICE), 0)
        self.assertEqual([(c.kind, str(c.new.dn)) for c in changes],
                         [(ADD, TEAM), (MODIFY, ALICE)])
        self.assertIn(self.ndn(TEAM), {self.ndn(v.decode()) for v in changes[1].new.get("memberOf")})

    def test_announced(self) -> Any:
        """
        Subscribers of the directory's changes are told of the members'
        changes, after the group's.
        """
        return defer.Deferred.fromCoroutine(self._test_announced())

    async def _test_replicatedLeftAlone(self) -> None:
        before = await self.memberOf(ALICE)
        op = self.directory.internalOperation()
        entry = Entry(DN.parse(TEAM), [
            ("objectClass", [b"groupOfNames"]), ("cn", [b"team"]), ("member", [ALICE.encode()]),
            ("entryUUID", [b"0d9f3c2e-1111-4c1c-9c1c-000000000001"]),
            ("entryCSN", [b"20260101000000.000000Z#000000#002#000000"]),
        ], self.directory.schema)
        await self.directory.writeReplicated(op, ADD, entry.ndn,
                                             lambda backend, hooks: backend.add(op, entry, hooks))
        self.assertIsNotNone(await self.read(TEAM))
        self.assertEqual(await self.memberOf(ALICE), before)

    def test_replicatedLeftAlone(self) -> Any:
        """
        A syncrepl consumer's write of a group changes no member: the
        provider's plugin made those changes, which come by replication.
        """
        return defer.Deferred.fromCoroutine(self._test_replicatedLeftAlone())


class DerivedRollbackTestsMixin(GroupsMixin):
    """
    The memberof plugin and one that refuses the members' changes.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        self.refuse = _RefuseMembers()
        return [MemberOf(schema), self.refuse]

    async def _test_rollback(self) -> None:
        self.refuse.armed = True
        before = await self.values(ALICE, "memberOf")
        self.assertEqual(await self.addTeam(ALICE), 53)
        self.assertIsNone(await self.read(TEAM))
        self.assertEqual(await self.values(ALICE, "memberOf"), before)

    def test_rollback(self) -> Any:
        """
        A hook refusing a member's change rolls back the group's write too.
        """
        return defer.Deferred.fromCoroutine(self._test_rollback())


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


DEVELOPERS = f"cn=developers,{GROUPS}"
STAFF = f"cn=staff,{GROUPS}"
OUTER = f"cn=outer,{GROUPS}"
TOP = f"cn=top,{GROUPS}"
DAVE = f"uid=dave,{PEOPLE}"
EVE = f"uid=eve,{PEOPLE}"
IN_CHAIN = "1.2.840.113556.1.4.1941"


class NestedGroupsMixin(GroupsMixin):
    """
    Groups in groups: C{cn=top} holds C{cn=outer}, which holds eve and the
    seeded C{cn=developers} (bob, carol, dave).
    """

    async def addGroup(self, dn: str, *members: str) -> int:
        return await self.add(dn, [("objectClass", [b"groupOfNames"]),
                                   ("member", [m.encode() for m in members])])

    async def nest(self) -> None:
        self.assertEqual(await self.addGroup(OUTER, DEVELOPERS, EVE), 0)
        self.assertEqual(await self.addGroup(TOP, OUTER), 0)

    async def found(self, base: str, text: str) -> set[DN]:
        """
        @return: the DNs a one-level search below C{base} finds, normalised.
        """
        responses = await self.request(pureldap.LDAPSearchRequest(
            baseObject=base, scope=1, filter=wireFilter(text), attributes=["1.1"]))
        self.assertEqual(responses[-1].value.resultCode, 0)
        return {self.ndn(r.value.objectName.decode()) for r in responses[:-1]}


class NestedMemberOfTestsMixin(NestedGroupsMixin):
    """
    The memberof plugin with C{nested = true}: members of nested groups get
    the groups above them too.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        return [MemberOf(schema, nested=True)]

    async def _test_nested(self) -> None:
        await self.nest()
        self.assertEqual(await self.memberOf(BOB),
                         {self.ndn(DEVELOPERS), self.ndn(STAFF), self.ndn(OUTER), self.ndn(TOP)})
        self.assertEqual(await self.memberOf(DEVELOPERS), {self.ndn(OUTER), self.ndn(TOP)})
        # A member joining a group below gets every group above.
        self.assertEqual(await self.modify(DEVELOPERS, ("add", "member", [ALICE.encode()])), 0)
        self.assertTrue({self.ndn(OUTER), self.ndn(TOP)} <= await self.memberOf(ALICE))
        # The nesting undone: the groups above are lost.
        self.assertEqual(await self.modify(OUTER, ("delete", "member", [DEVELOPERS.encode()])), 0)
        self.assertEqual(await self.memberOf(BOB), {self.ndn(DEVELOPERS), self.ndn(STAFF)})
        self.assertEqual(await self.memberOf(DEVELOPERS), set())

    def test_nested(self) -> Any:
        """
        Members of a nested group name the groups above it, and lose them
        when the nesting is undone.
        """
        return defer.Deferred.fromCoroutine(self._test_nested())

    async def _test_otherPath(self) -> None:
        await self.nest()
        # bob is in top through developers and directly.
        self.assertEqual(await self.modify(TOP, ("add", "member", [BOB.encode()])), 0)
        self.assertEqual(await self.modify(OUTER, ("delete", "member", [DEVELOPERS.encode()])), 0)
        self.assertEqual(await self.memberOf(BOB),
                         {self.ndn(DEVELOPERS), self.ndn(STAFF), self.ndn(TOP)})
        self.assertEqual(await self.memberOf(CAROL), {self.ndn(DEVELOPERS), self.ndn(STAFF)})

    def test_otherPath(self) -> Any:
        """
        A group reached another way stays when one way is undone.
        """
        return defer.Deferred.fromCoroutine(self._test_otherPath())

    async def _test_cycle(self) -> None:
        await self.nest()
        self.assertEqual(await self.modify(DEVELOPERS, ("add", "member", [TOP.encode()])), 0)
        self.assertEqual(await self.memberOf(BOB),
                         {self.ndn(DEVELOPERS), self.ndn(STAFF), self.ndn(OUTER), self.ndn(TOP)})
        self.assertEqual(await self.memberOf(TOP), {self.ndn(DEVELOPERS), self.ndn(OUTER)})
        # The cycle broken: top is still in developers, developers in nothing.
        self.assertEqual(await self.delete(OUTER), 0)
        self.assertEqual(await self.memberOf(BOB), {self.ndn(DEVELOPERS), self.ndn(STAFF)})
        self.assertEqual(await self.memberOf(TOP), {self.ndn(DEVELOPERS)})

    def test_cycle(self) -> Any:
        """
        A cycle of groups ends: each member names every group of the cycle
        but none names itself.
        """
        return defer.Deferred.fromCoroutine(self._test_cycle())


class InChainTestsMixin(NestedGroupsMixin):
    """
    LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941) on C{member} and
    C{memberOf}, with the plain memberof plugin: the chain is followed at
    search time.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        return [MemberOf(schema)]

    async def _test_memberOf(self) -> None:
        await self.nest()
        self.assertEqual(await self.found(PEOPLE, f"(memberOf={TOP})"), set())
        self.assertEqual(await self.found(PEOPLE, f"(memberOf:{IN_CHAIN}:={TOP})"),
                         {self.ndn(BOB), self.ndn(CAROL), self.ndn(DAVE), self.ndn(EVE)})
        self.assertEqual(await self.found(PEOPLE, f"(&(uid=b*)(memberOf:{IN_CHAIN}:={TOP}))"),
                         {self.ndn(BOB)})
        self.assertEqual(await self.found(GROUPS, f"(memberOf:{IN_CHAIN}:={TOP})"),
                         {self.ndn(OUTER), self.ndn(DEVELOPERS)})

    def test_memberOf(self) -> Any:
        """
        C{(memberOf:1.2.840.113556.1.4.1941:=G)} finds the members of G and
        of the groups nested in it.
        """
        return defer.Deferred.fromCoroutine(self._test_memberOf())

    async def _test_member(self) -> None:
        await self.nest()
        self.assertEqual(await self.found(GROUPS, f"(member:{IN_CHAIN}:={BOB})"),
                         {self.ndn(DEVELOPERS), self.ndn(STAFF), self.ndn(OUTER), self.ndn(TOP)})
        self.assertEqual(await self.found(GROUPS, f"(member={BOB})"),
                         {self.ndn(DEVELOPERS), self.ndn(STAFF)})

    def test_member(self) -> Any:
        """
        C{(member:1.2.840.113556.1.4.1941:=X)} finds the groups holding X
        directly or through nested groups.
        """
        return defer.Deferred.fromCoroutine(self._test_member())

    async def _test_cycle(self) -> None:
        await self.nest()
        self.assertEqual(await self.modify(DEVELOPERS, ("add", "member", [TOP.encode()])), 0)
        self.assertEqual(await self.found(GROUPS, f"(member:{IN_CHAIN}:={BOB})"),
                         {self.ndn(DEVELOPERS), self.ndn(STAFF), self.ndn(OUTER), self.ndn(TOP)})

    def test_cycle(self) -> Any:
        """
        A cycle of nested groups ends the chain.
        """
        return defer.Deferred.fromCoroutine(self._test_cycle())


class MemoryNestedMemberOfTests(NestedMemberOfTestsMixin, unittest.TestCase):
    backend = "memory"


class SQLiteNestedMemberOfTests(NestedMemberOfTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLNestedMemberOfTests(NestedMemberOfTestsMixin, unittest.TestCase):
    backend = "postgresql"


class MemoryInChainTests(InChainTestsMixin, unittest.TestCase):
    backend = "memory"


class SQLiteInChainTests(InChainTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLInChainTests(InChainTestsMixin, unittest.TestCase):
    backend = "postgresql"


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


class MemoryReplicatedTests(ReplicatedTestsMixin, unittest.TestCase):
    backend = "memory"


class SQLiteReplicatedTests(ReplicatedTestsMixin, unittest.TestCase):
    backend = "sqlite"


class PostgreSQLReplicatedTests(ReplicatedTestsMixin, unittest.TestCase):
    backend = "postgresql"


class MemoryDerivedRollbackTests(DerivedRollbackTestsMixin, unittest.TestCase):
    backend = "memory"


class SQLiteDerivedRollbackTests(DerivedRollbackTestsMixin, unittest.TestCase):
    backend = "sqlite"


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


#: The users and the group of the replication test, below the example's people.
_REPLICATED_USERS = [f"uid=mo{i},{PEOPLE}" for i in (1, 2)]
_REPLICATED_GROUP = f"cn=mo-team,{GROUPS}"


@pytest.mark.integration
class ReplicaTests(unittest.SynchronousTestCase):
    """
    The real C{twist ldapd} (SQLite, changelog and memberof plugins) as a
    syncrepl provider, with an OpenLDAP slapd consumer (which loads the
    memberof module for the attribute type, and runs no memberof overlay)
    and an ldapd consumer (no memberof plugin): members' C{memberOf}
    reaches both by replication.
    """

    def setUp(self) -> None:
        if not SLAPD.is_file():
            raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
        folder = Path(tempfile.mkdtemp(prefix="ldapd-memberof-"))
        self.addCleanup(shutil.rmtree, folder, True)
        self.provider = ServerProcess(providerConfig() + '\n[[plugin]]\nname = "memberof"\n',
                                      folder)
        self.addCleanup(self.provider.stop)
        self.provider.start()
        self.consumers = {
            "slapd": SlapdProcess(BASE, ROOT_DN, PASSWORD, modules=["memberof"],
                                  databaseConfig=SYNCREPL.format(provider=self.provider.url,
                                                                 type="refreshAndPersist")),
            "ldapd": consumerServer(self.provider.url, folder),
        }
        for consumer in self.consumers.values():
            self.addCleanup(consumer.stop)
            consumer.start()

    def read(self, url: str, dn: str) -> dict[str, list[bytes]]:
        """
        @return: the C{memberOf}, C{entryCSN} and C{modifyTimestamp} of an
            entry (empty if it does not exist).
        """
        connection = ldap.initialize(url)
        try:
            connection.simple_bind_s(ROOT_DN, PASSWORD)
            found = connection.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)",
                                        ["memberOf", "entryCSN", "modifyTimestamp"])
        except ldap.NO_SUCH_OBJECT:
            return {}
        finally:
            connection.unbind_s()
        return {name.lower(): values for name, values in found[0][1].items()}

    def assertMemberOf(self, expected: dict[str, set[str]]) -> None:
        """
        Wait (a bounded time) until every consumer gives each user the
        groups C{expected} names (DNs in lower case).
        """
        for name, consumer in self.consumers.items():
            deadline = time.monotonic() + CONVERGE_SECONDS
            while True:
                got = {user: {v.decode().lower() for v in
                              self.read(consumer.url, user).get("memberof", [])}
                       for user in expected}
                if got == expected or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(got, expected, f"{name}: {consumer.log()[-2000:]}")

    def test_memberOfReplicated(self) -> None:
        """
        A group added with a member, then a member added and one removed:
        after each step both consumers hold the provider's C{memberOf}
        values, and on the provider the members' C{entryCSN} and
        C{modifyTimestamp} moved with each change of their C{memberOf}.
        """
        group = _REPLICATED_GROUP.lower()
        first, second = _REPLICATED_USERS
        done = ldapmodify(self.provider.url, "".join(
            person(dn.split(",")[0][4:]) for dn in _REPLICATED_USERS))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertMemberOf({first.lower(): set(), second.lower(): set()})
        before = self.read(self.provider.url, first)
        # modifyTimestamp counts whole seconds.
        time.sleep(1.1)
        done = ldapmodify(self.provider.url, f"dn: {_REPLICATED_GROUP}\nchangetype: add\n"
                          f"objectClass: groupOfNames\ncn: mo-team\nmember: {first}\n\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertMemberOf({first.lower(): {group}, second.lower(): set()})
        after = self.read(self.provider.url, first)
        self.assertGreater(after["entrycsn"], before["entrycsn"])
        self.assertGreater(after["modifytimestamp"], before["modifytimestamp"])
        done = ldapmodify(self.provider.url, f"dn: {_REPLICATED_GROUP}\nchangetype: modify\n"
                          f"add: member\nmember: {second}\n-\ndelete: member\nmember: {first}\n\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertMemberOf({first.lower(): set(), second.lower(): {group}})
        self.assertGreater(self.read(self.provider.url, first)["entrycsn"], after["entrycsn"])
