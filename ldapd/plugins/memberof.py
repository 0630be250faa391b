"""
The C{memberof} plugin: each member of a group names the group in its
C{memberOf}, as slapd's memberof overlay and 389's MemberOf plugin keep it.

It watches the writes of groups (entries of C{group_objectclass}, or a
subclass of it) and updates their members inside the group write's own
transaction (its C{txn_*} hooks, as 389's MemberOf is a betxn plugin), so
that a group and its members' C{memberOf} commit or roll back together:

  - a group added: each member gets the group's DN;
  - a group deleted: each member loses it;
  - a group's members modified: members added get it, members removed
    lose it;
  - a group renamed (or moved): its members' value is replaced by the new DN.

Members that do not exist are skipped (slapd's default C{memberof-dangling
ignore}), and so are members in another database than the group's: a
transaction sees its own database only.

Each member's C{memberOf} change is a write of its own, in the group
write's transaction (L{ldapd.interfaces.IPluginTransaction.modify}): the
member's C{entryCSN} and C{modifyTimestamp} move, its C{modifiersName}
becomes the root DN of its database (slapd's default C{memberof-dn}), and
the C{changelog} plugin records it, after the group's change. So every
replica, ldapd's or slapd's, gets members' C{memberOf} by replication, as
with slapd's memberof overlay under syncprov: the writes of a syncrepl
consumer are left alone (the provider's plugin made the members' changes,
which come by replication too).

With C{nested = true}, a member of a group that is itself a member of
another group names both (and so on up, AD's and 389's nested groups): each
write that changes a group's members brings the C{memberOf} of every entry
below it (its members, their members, ...) in step with the groups above
it, found by following C{memberOf} up and checking each step in the group's
members, inside the write's transaction. A cycle of groups ends: each entry
is visited once, and names no group it is part of through itself. A write
that would touch more than L{MAX_NESTED} entries is refused
(adminLimitExceeded), as a bound.

What happens to groups when a member entry is deleted or renamed is the
C{refint} plugin's job (L{ldapd.plugins.refint}): configure both, as with
slapd. Clients cannot write C{memberOf} (it is C{NO-USER-MODIFICATION}).

Configuration::

    [[plugin]]
    name = "memberof"
    group_objectclass = "groupOfNames"   # the class of groups
    member_attribute = "member"          # the DN-valued attribute naming members
    memberof_attribute = "memberOf"      # what members get (an operational DN type)
    nested = false                       # members of nested groups get their groups too
"""

from __future__ import annotations

from typing import Any

from ldaptor.protocols.ldap import ldaperrors
from zope.interface import implementer

from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.host import PluginHost
from ldapd.interfaces import IOperationPlugin, IPluginTransaction
from ldapd.operation import Identity, Operation
from ldapd.plugins.refint import DN_SYNTAX, InvalidSetting, dnAttributeType, dnValues
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.schema import Schema

__all__ = ["MAX_NESTED", "MemberOf", "MemberOfFactory"]

#: The most entries one group write may bring in step, with C{nested}.
MAX_NESTED = 10000


@implementer(IOperationPlugin)
class MemberOf:
    """
    Keeps the C{memberOf} of group members in step with their groups.

    @ivar groupClass: the object class of groups (L{ldapd.schema.ObjectClass}).
    @ivar memberType: the attribute type naming a group's members.
    @ivar memberOfType: the attribute type naming a member's groups.
    @ivar nested: whether members of nested groups get the groups above.
    """

    name = "memberof"

    def __init__(
        self,
        schema: Schema,
        groupClass: str = "groupOfNames",
        memberAttribute: str = "member",
        memberOfAttribute: str = "memberOf",
        nested: bool = False,
    ) -> None:
        """
        @param schema: the directory's schema, which must define the names.
        @param groupClass: the object class of groups.
        @param memberAttribute: the attribute of DN syntax naming members.
        @param memberOfAttribute: the attribute of DN syntax naming groups.
        @param nested: whether members of nested groups get the groups above.
        @raise InvalidSetting: naming the setting that is wrong.
        """
        oc = schema.objectClass(groupClass)
        if oc is None:
            raise InvalidSetting("group_objectclass", f"undefined object class {groupClass!r}")
        self.groupClass = oc
        self.memberType = dnAttributeType(schema, "member_attribute", memberAttribute,
                                          (DN_SYNTAX,))
        self.memberOfType = dnAttributeType(schema, "memberof_attribute", memberOfAttribute,
                                            (DN_SYNTAX,))
        if self.memberOfType is self.memberType:
            raise InvalidSetting("memberof_attribute", "must differ from member_attribute")
        self._schema = schema
        self.nested = nested
        self.directory: Any = None

    def attach(self, host: PluginHost) -> None:
        """
        Remember the host's directory, to tell which database holds a member.
        """
        self.directory = host.directory

    def _isGroup(self, entry: Entry | None) -> bool:
        if entry is None:
            return False
        for value in entry.get("objectClass"):
            oc = self._schema.objectClass(value.decode("utf-8", "replace"))
            if oc is not None and self.groupClass.oid in self._schema.superclasses(oc.oid):
                return True
        return False

    def _members(self, group: Entry | None) -> set[DN]:
        """
        @return: the normalised DNs of the members of C{group}; none when it
            is not a group.
        """
        if group is None or not self._isGroup(group):
            return set()
        return {ndn for _, _, ndn, _ in dnValues(group, self.memberType)}

    def _update(self, op: Operation, txn: IPluginTransaction, old: Entry | None,
                new: Entry | None) -> None:
        """
        Bring the members of a group written in C{txn} in step with it,
        unless the write is a syncrepl consumer's.

        @param op: the group's write.
        @param old: the entry before the write (C{None} for an add).
        @param new: the entry after it (C{None} for a delete).
        """
        if op.replicated:
            return
        before, after = self._members(old), self._members(new)
        renamed = old is not None and new is not None and old.ndn != new.ndn
        subject = new if new is not None else old
        assert subject is not None
        database = self.directory.databaseFor(subject.ndn) if self.directory else None
        writer = self._writer(database)
        if self.nested:
            if before != after or renamed:
                self._updateNested(writer, txn, database, before | after, new)
            return
        for member in sorted(before | after, key=str):
            if database is not None and self.directory.databaseFor(member) is not database:
                continue
            leaving = old if member in before and (renamed or member not in after) else None
            joining = new if member in after and (renamed or member not in before) else None
            if leaving is not None or joining is not None:
                self._updateMember(writer, txn, member, leaving, joining)

    def _inDatabase(self, database: Any, ndn: DN) -> bool:
        return database is None or self.directory.databaseFor(ndn) is database

    def _updateNested(self, writer: Operation, txn: IPluginTransaction, database: Any,
                      members: set[DN], group: Entry | None) -> None:
        """
        Bring in step the C{memberOf} of the members a group had or has, and
        of every entry below them.

        @param members: the group's members, before and after the write.
        @param group: the group after the write (C{None} once deleted).
        @raise ldaperrors.LDAPAdminLimitExceeded: past L{MAX_NESTED} entries.
        """
        below: list[Entry] = []
        seen: set[DN] = set()
        stack = sorted(members, key=str, reverse=True)
        while stack:
            ndn = stack.pop()
            if ndn in seen or not self._inDatabase(database, ndn):
                continue
            seen.add(ndn)
            if len(seen) > MAX_NESTED:
                raise ldaperrors.LDAPAdminLimitExceeded(
                    f"nested groups: more than {MAX_NESTED} members to bring in step")
            entry = txn.get(ndn)
            if entry is None:
                continue
            below.append(entry)
            stack.extend(sorted(self._members(entry), key=str, reverse=True))
        for entry in below:
            self._setGroups(writer, txn, entry, self._above(txn, entry, group))

    def _above(self, txn: IPluginTransaction, entry: Entry, group: Entry | None) -> dict[DN, Entry]:
        """
        The groups an entry is a member of, directly or through nested
        groups: up its C{memberOf} (and the group just written, which it
        may not name yet), each step checked in the group's members.

        @return: the groups, by normalised DN.
        """
        found: dict[DN, Entry] = {}
        frontier = [entry]
        while frontier:
            current = frontier.pop()
            candidates = {ndn for _, _, ndn, _ in dnValues(current, self.memberOfType)}
            if group is not None:
                candidates.add(group.ndn)
            for ndn in sorted(candidates, key=str):
                if ndn in found or ndn == entry.ndn:
                    continue
                above = group if group is not None and ndn == group.ndn else txn.get(ndn)
                if above is None or current.ndn not in self._members(above):
                    continue
                found[ndn] = above
                if len(found) > MAX_NESTED:
                    raise ldaperrors.LDAPAdminLimitExceeded(
                        f"nested groups: {entry.dn} is in more than {MAX_NESTED} groups")
                frontier.append(above)
        return found

    def _setGroups(self, writer: Operation, txn: IPluginTransaction, entry: Entry,
                   groups: dict[DN, Entry]) -> None:
        """
        Make an entry's C{memberOf} name exactly C{groups}.
        """
        held = {ndn: raw for _, raw, ndn, _ in dnValues(entry, self.memberOfType)}
        modifications = []
        leaving = tuple(raw for ndn, raw in held.items() if ndn not in groups)
        if leaving:
            modifications.append(Modification("delete", self.memberOfType.name, leaving))
        joining = tuple(str(group.dn).encode("utf-8") for ndn, group in groups.items()
                        if ndn not in held)
        if joining:
            modifications.append(Modification("add", self.memberOfType.name, joining))
        if modifications:
            txn.modify(writer, entry.ndn, modifications)

    def _writer(self, database: Any) -> Operation:
        """
        @param database: the L{ldapd.directory.Database} of a group, or C{None}.
        @return: the internal operation of the plugin's changes to its
            members: named as the database's root DN, as slapd's memberof
            overlay names its changes by default.
        """
        op: Operation = self.directory.internalOperation()
        if database is not None and database.rootDN is not None:
            op.identity = Identity(database.rootDN, database.normalizedRootDN, isRoot=True)
        return op

    def _updateMember(self, writer: Operation, txn: IPluginTransaction, ndn: DN,
                      leaving: Entry | None, joining: Entry | None) -> None:
        """
        Take the DN of group C{leaving} out of a member's C{memberOf} and
        put that of C{joining} in, unless the member does not exist.

        @param writer: the operation the change is made as.
        """
        member = txn.get(ndn)
        if member is None:
            return
        held = {valueNDN: raw for _, raw, valueNDN, _ in dnValues(member, self.memberOfType)}
        modifications = []
        if leaving is not None and leaving.ndn in held:
            modifications.append(Modification("delete", self.memberOfType.name,
                                              (held.pop(leaving.ndn),)))
        if joining is not None and joining.ndn not in held:
            modifications.append(Modification("add", self.memberOfType.name,
                                              (str(joining.dn).encode("utf-8"),)))
        if modifications:
            txn.modify(writer, ndn, modifications)

    def txn_add(self, op: Operation, txn: IPluginTransaction, entry: Entry) -> None:
        """
        A group added: its members get its DN.
        """
        self._update(op, txn, None, entry)

    def txn_delete(self, op: Operation, txn: IPluginTransaction, entry: Entry) -> None:
        """
        A group deleted: its members lose its DN.
        """
        self._update(op, txn, entry, None)

    def txn_modify(self, op: Operation, txn: IPluginTransaction, old: Entry, new: Entry) -> None:
        """
        A group modified: members added get its DN, members removed lose it
        (and all of them, when the entry stops or starts being a group).
        """
        self._update(op, txn, old, new)

    def txn_rename(self, op: Operation, txn: IPluginTransaction, old: Entry, new: Entry) -> None:
        """
        A group renamed or moved: its members' value is replaced.
        """
        self._update(op, txn, old, new)


class MemberOfFactory:
    """
    Builds L{MemberOf} from C{[[plugin]] name = "memberof"} with
    C{group_objectclass}, C{member_attribute}, C{memberof_attribute} and
    C{nested}.
    """

    name = "memberof"
    description = "memberOf on group members, kept in step with their groups."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> MemberOf:
        """
        @param table: the plugin's configuration.
        @param context: the L{ConfigContext}.
        @raise ldapd.registry.ConfigError: naming the key that is wrong.
        """
        keys = {"group_objectclass": "groupOfNames", "member_attribute": "member",
                "memberof_attribute": "memberOf"}
        config = ConfigTable(table, context, {*keys, "nested"})
        settings = {key: config.get(key, str, default, "a name (a string)")
                    for key, default in keys.items()}
        try:
            return MemberOf(context.schema, settings["group_objectclass"],
                            settings["member_attribute"], settings["memberof_attribute"],
                            config.boolean("nested", False))
        except InvalidSetting as e:
            raise context.error(e.key, e.problem) from None
