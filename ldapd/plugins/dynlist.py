"""
The C{dynlist} plugin: dynamic groups, as slapd's dynlist overlay makes
them (C{dynlist-attrset groupOfURLs memberURL member}).

A group of the configured object class names its members by LDAP URLs in
its URL attribute (RFC 4516: C{ldap:///ou=people,dc=example,dc=com??sub?
(employeeType=staff)}). When a client reads the group, the DNs of the
entries each URL finds are added to its member attribute, next to the
members it holds itself; a filter on the member attribute (C{(member=...)})
finds the group by its members, expanded; a Compare of the member attribute
answers from them too. Nothing is stored: the members are looked up each
time.

Each URL is searched as the server, in the database holding its base (the
host part, if any, is ignored: slapd too searches its own databases); the
members found are bounded by the client's size limit and by C{max_members}
(what passes the bound is left out, and logged), and so are the dynamic
groups one search looks at.

Configuration, before the C{acl} plugin (so that access control applies to
the members added, as in slapd where dynlist runs under the ACLs)::

    [[plugin]]
    name = "dynlist"
    attrset = "groupOfURLs memberURL member"   # or a list of such sets
    max_members = 10000
"""

from __future__ import annotations

from typing import Any, Sequence
from weakref import WeakKeyDictionary

from ldaptor.protocols.ldap import ldaperrors
from twisted.logger import Logger
from zope.interface import implementer

from ldapd import requests
from ldapd.dn import DN
from ldapd.entry import Entry, SearchReference
from ldapd.filters import EntryDNEquality, Filter, Or, assertions, compileFilter, rewritten
from ldapd.host import PluginHost
from ldapd.interfaces import IOperationPlugin
from ldapd.ldapurl import InvalidLDAPURL, parseLDAPURL
from ldapd.operation import Operation, Scope, SearchParameters
from ldapd.plugins.refint import DN_SYNTAX, InvalidSetting, dnAttributeType
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.results import NoSuchObject
from ldapd.schema import AttributeType, InvalidValue, ObjectClass, Schema

__all__ = ["AttrSet", "DynamicLists", "DynamicListsFactory"]

#: The most members one group gets, and groups one search expands, by default.
DEFAULT_MAX_MEMBERS = 10000


class AttrSet:
    """
    One kind of dynamic group: C{"<objectClass> <URL attribute> <member attribute>"}.

    @ivar objectClass: the class of the groups.
    @ivar urlType: the attribute holding their LDAP URLs.
    @ivar memberType: the attribute the DNs found are added to.
    """

    def __init__(self, schema: Schema, text: str) -> None:
        """
        @raise InvalidSetting: if C{text} is not three names the schema
            defines, the last of DN syntax.
        """
        names = text.split()
        if len(names) != 3:
            raise InvalidSetting("attrset", f"{text!r}: expected \"<objectClass> <URL attribute> "
                                            "<member attribute>\"")
        oc = schema.objectClass(names[0])
        if oc is None:
            raise InvalidSetting("attrset", f"undefined object class {names[0]!r}")
        url = schema.attributeType(names[1])
        if url is None:
            raise InvalidSetting("attrset", f"undefined attribute type {names[1]!r}")
        self.objectClass: ObjectClass = oc
        self.urlType: AttributeType = url
        self.memberType: AttributeType = dnAttributeType(schema, "attrset", names[2], (DN_SYNTAX,))


@implementer(IOperationPlugin)
class DynamicLists:
    """
    Expands the members of dynamic groups when they are read, searched by
    member, or compared.
    """

    name = "dynlist"
    _log = Logger()

    def __init__(self, schema: Schema, attrsets: Sequence[AttrSet],
                 maxMembers: int = DEFAULT_MAX_MEMBERS) -> None:
        """
        @param schema: the directory's schema.
        @param attrsets: the kinds of dynamic group.
        @param maxMembers: the most members one group gets, and groups one
            search expands.
        """
        self.schema = schema
        self.attrsets = list(attrsets)
        self.maxMembers = maxMembers
        self.directory: Any = None
        # By search; an abandoned search runs no post hook, and is forgotten
        # with its operation.
        self._expanded: WeakKeyDictionary[Operation, dict[DN, Entry]] = WeakKeyDictionary()
        objectClass = schema.attributeType("objectClass")
        assert objectClass is not None
        self._objectClass = objectClass

    def attach(self, host: PluginHost) -> None:
        """
        Remember the directory, to search through.
        """
        self.directory = host.directory

    def _attrset(self, entry: Entry) -> AttrSet | None:
        """
        @return: the kind of dynamic group C{entry} is, or C{None}.
        """
        for attrset in self.attrsets:
            if entry.hasValue(self._objectClass, attrset.objectClass.name.encode()):
                return attrset
        return None

    def _bound(self, op: Operation) -> int:
        return min(op.sizeLimit, self.maxMembers) if op.sizeLimit else self.maxMembers

    async def _search(self, base: DN, scope: Scope, f: Filter, limit: int) -> list[Entry]:
        """
        @return: up to C{limit} entries a search as the server finds.
        """
        db = self.directory.databaseFor(base)
        if db is None:
            return []
        op = self.directory.internalOperation()
        op.search = SearchParameters(base, scope, f)
        found: list[Entry] = []

        class _Full(Exception):
            pass

        def emit(entry: Entry | SearchReference) -> None:
            if isinstance(entry, Entry):
                if len(found) >= limit:
                    raise _Full()
                found.append(entry)

        try:
            await db.backend.search(op, emit)
        except NoSuchObject:
            pass
        except _Full:
            self._log.warn("dynlist: a search below {base} passes the bound of {limit} entries",
                           base=str(base), limit=limit)
        return found

    async def expand(self, op: Operation, entry: Entry) -> Entry:
        """
        @param op: the client's operation, whose size limit bounds the members.
        @param entry: an entry as stored.
        @return: the entry with the members its URLs find added, if it is a
            dynamic group; C{entry} itself otherwise.
        """
        attrset = self._attrset(entry)
        if attrset is None:
            return entry
        limit = self._bound(op)
        held = entry.matching(attrset.memberType)
        keys = set().union(*(a.keys(self.schema) for a in held)) if held else set()
        added: list[bytes] = []
        for raw in (v for a in entry.matching(attrset.urlType) for v in a.values):
            try:
                url = parseLDAPURL(raw.decode("utf-8", "replace"))
                base = self.schema.normalizeDN(url.dn)
                f = compileFilter(url.filter, self.schema)
            except (InvalidLDAPURL, InvalidValue, ValueError, ldaperrors.LDAPException) as e:
                self._log.warn("dynlist: {dn}: ignoring {url!r}: {error}",
                               dn=str(entry.dn), url=raw, error=str(e))
                continue
            for member in await self._search(base, url.scope, f, limit - len(added)):
                key = str(member.ndn)
                if key not in keys:
                    keys.add(key)
                    added.append(str(member.dn).encode("utf-8"))
        if not added:
            return entry
        attributes: list[tuple[str, Sequence[bytes]]] = []
        merged = False
        for a in entry:
            if a.type is attrset.memberType and not a.options and not merged:
                attributes.append((a.description, tuple(a.values) + tuple(added)))
                merged = True
            else:
                attributes.append((a.description, a.values))
        if not merged:
            attributes.append((attrset.memberType.name, tuple(added)))
        return Entry(entry.dn, attributes, self.schema, entry.ndn)

    def _concerns(self, op: Operation) -> bool:
        """
        Whether a search may return or test a member attribute of a dynamic group.
        """
        params = op.search
        assert params is not None
        members = {a.memberType for a in self.attrsets}
        if any(getattr(node, "type", None) in members for node in assertions(params.filter)):
            return True
        asked = {name.lower() for name in params.attributes}
        if not asked or "*" in asked:
            return True
        return any(at.name.lower() in asked or at.oid in asked for at in members)

    async def pre_search(self, op: Operation, base: DN) -> None:
        """
        Expand the dynamic groups the search may return, and make its filter
        find a group by the members expanded: each assertion on a member
        attribute also matches the groups whose expanded entry it matches.
        """
        params = op.search
        assert params is not None
        if not self.attrsets or not self._concerns(op):
            return
        limit = self._bound(op)
        expanded: dict[DN, Entry] = {}
        for attrset in self.attrsets:
            kind = compileFilter(requests.Equality(b"objectClass", attrset.objectClass.name.encode()),
                                 self.schema)
            for group in await self._search(base, params.scope, kind, limit - len(expanded)):
                expanded[group.ndn] = await self.expand(op, group)
        if not expanded:
            return
        self._expanded[op] = expanded
        members = {a.memberType for a in self.attrsets}

        def leaf(node: Filter) -> Filter:
            if getattr(node, "type", None) not in members:
                return node
            extra: list[Filter] = [EntryDNEquality(str(ndn)) for ndn, group in expanded.items()
                                   if node.match(group) is True]
            return Or([node, *extra]) if extra else node

        params.filter = rewritten(params.filter, leaf)

    def filter_entry(self, op: Operation, entry: Entry) -> Entry | None:
        """
        A dynamic group is returned with its members expanded.
        """
        expanded = self._expanded.get(op)
        if expanded is None:
            return entry
        return expanded.get(entry.ndn, entry)

    def post_search(self, op: Operation, resultCode: int) -> None:
        """
        Forget the search's expanded groups.
        """
        self._expanded.pop(op, None)

    async def pre_compare(self, op: Operation, ndn: DN, at: AttributeType, value: bytes) -> None:
        """
        Compare a member attribute of a dynamic group with its members
        expanded.

        @raise ldaperrors.LDAPCompareTrue: if they hold the value.
        @raise ldaperrors.LDAPCompareFalse: if they do not.
        """
        if at not in {a.memberType for a in self.attrsets}:
            return
        try:
            entry = await self.directory.get(self.directory.internalOperation(), ndn)
        except NoSuchObject:
            return
        attrset = self._attrset(entry)
        if attrset is None or attrset.memberType is not at:
            return
        expanded = await self.expand(op, entry)
        try:
            found = expanded.hasValue(at, value)
        except InvalidValue:
            return
        raise ldaperrors.LDAPCompareTrue() if found else ldaperrors.LDAPCompareFalse()


class DynamicListsFactory:
    """
    Builds L{DynamicLists} from C{[[plugin]] name = "dynlist"} with
    C{attrset} (one set or a list of them) and C{max_members}.
    """

    name = "dynlist"
    description = "Dynamic groups: members named by LDAP URLs, expanded when read (slapd's dynlist)."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> DynamicLists:
        """
        @param table: the plugin's configuration.
        @param context: the L{ConfigContext}.
        @raise ldapd.registry.ConfigError: naming the key that is wrong.
        """
        config = ConfigTable(table, context, {"attrset", "max_members"})
        raw = table.get("attrset", "groupOfURLs memberURL member")
        texts = [raw] if isinstance(raw, str) else config.strings(
            "attrset", [], "a string or a list of strings like \"groupOfURLs memberURL member\"")
        maxMembers = config.integer("max_members", DEFAULT_MAX_MEMBERS, minimum=1,
                                    expected="a positive number of entries")
        try:
            return DynamicLists(context.schema, [AttrSet(context.schema, t) for t in texts],
                                maxMembers)
        except InvalidSetting as e:
            raise context.error(e.key, e.problem) from None
