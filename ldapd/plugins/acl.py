"""
The C{acl} plugin: access control with OpenLDAP's rule language
(slapd.access(5), see L{ldapd.plugins.aclrules}), applied to every operation.

Rules come from two places:

  - the configuration, C{rules = ['to ... by ...', ...]}, in order;
  - the directory itself: the values of the operational attribute
    C{ldapdACI} of any entry are rules for the subtree rooted there
    (delegated administration, like 389 Directory Server's C{aci}). They
    are evaluated I{before} the configuration's rules, the deepest holder
    first, so that a configuration ending in a catch-all (C{to * by * read})
    does not shadow them; a stored rule never applies outside its holder's
    subtree. Writing C{ldapdACI} needs C{manage} on it.

The root DN and the server's own operations bypass every rule. Without
C{rules}, the policy is slapd's default with a private C{userPassword}
(L{DEFAULT_RULES}).

The private views (C{cn=changelog}, C{cn=Monitor}: see
L{ldapd.directory.Directory.addPrivateDatabase}) are as each slapd database
with its own access rules: only the configured rules whose C{dn} target lies
in the view (C{to dn.subtree="cn=changelog" by ... read}) apply there, so a
generic C{to * by users read} never hands out the password hashes written or
who is connected; without such a rule only the root DN reads them.

What each operation needs, as in slapd: search, C{search} on every
attribute the filter tests (others count as Undefined) and C{read} on
C{entry} and on each attribute returned; compare, C{compare} on the
attribute; add, C{add} on the new C{entry} and on the parent's
C{children}; delete, C{delete} on both; modify, C{add}/C{delete}/C{write}
on each attribute changed; rename, C{write} on C{entry}, on the RDN
attributes and on the old and new parents' C{children}; bind (simple or SASL
PLAIN), C{auth} on the target's C{userPassword} (else invalidCredentials);
checking the old password of a change (Password Modify), C{write} on it
(else the answer a wrong old password gets). An error about an
entry the client may not see (no C{disclose} on it) is noSuchObject, as in
slapd.

Parsed stored rules are cached: reloaded at once after this process's own
writes that touch C{ldapdACI}, and at the latest C{stored_rules_ttl}
seconds (5 by default) after they were read, so that with several server
processes on one SQL database a rule changed (or revoked) through one
process holds on every other within that time.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ldapd.dn import DN
from ldapd.entry import Entry, Modification, parseDescription
from ldapd.filters import (
    EntryDNEquality,
    Extensible,
    Filter,
    Present,
    assertions,
    throughSearchable,
)
from ldapd.host import PluginHost
from ldapd.interfaces import IOperationPlugin
from ldapd.limits import groupMembers
from ldapd.operation import Operation, Scope, SearchParameters
from ldapd.passwordcheck import PasswordCheck
from ldapd.plugins.aclrules import (
    CHILDREN,
    ENTRY,
    AccessRule,
    AccessRuleError,
    Decisions,
    Grants,
    Privilege,
    Subject,
    SubjectDecisions,
    parseRule,
)
from ldapd.registry import ConfigTable
from ldapd.results import NoSuchObject
from ldapd.schema import AttributeType, InvalidValue, Schema

__all__ = ["ACI_ATTRIBUTE", "DEFAULT_RULES", "AccessControl", "AccessControlFactory"]

#: The operational attribute that holds rules stored in the directory.
ACI_ATTRIBUTE = "ldapdACI"

#: The rules without configuration: everyone reads (but the private views,
#: which no rule here names); userPassword is usable only to bind, and
#: changeable only by its owner; the password history (old hashes, or old
#: cleartext passwords) no client reads.
DEFAULT_RULES = (
    "to attrs=userPassword by self =wx by anonymous auth by * none",
    "to attrs=pwdHistory by * none",
    "to * by * read",
)

#: The most L{Grants} kept (L{Decisions}): one for each way the rules look
#: at an entry and its subject, a few for each kind of client and entry;
#: more with rules stored in many entries.
_MAX_GRANTS = 4096

_MODIFY_PRIVILEGES = {
    "add": Privilege.ADD,
    "delete": Privilege.DELETE,
    "replace": Privilege.WRITE,
    "increment": Privilege.WRITE,
}


def _peerName(peer: str) -> str:
    """
    The client's address in slapd's form (C{IP=host:port}, C{PATH=...}).
    """
    if peer.startswith("unix:"):
        return "PATH=" + peer[len("unix:"):]
    return "IP=" + peer


class _Context:
    """
    What one operation's checks share: who asks, and the rules in force.
    """

    def __init__(self, decisions: SubjectDecisions, stored: dict[DN, list[AccessRule]]) -> None:
        self.decisions = decisions
        self.stored = stored
        self.filter: Filter | None = None
        self.filterTypes: set[AttributeType] = set()
        # The strict subtypes of the filter's types: each is checked on its own.
        self.filterSubtypes: frozenset[AttributeType] = frozenset()
        self.typeless = False


@implementer(IOperationPlugin)
class AccessControl:
    """
    Access control by slapd-style rules, from the configuration and from
    C{ldapdACI} values in the directory.
    """

    name = "acl"
    controlsAccess = True
    _log = Logger()

    def __init__(self, schema: Schema, rules: Iterable[str] = DEFAULT_RULES,
                 storedRules: bool = True, storedRulesTTL: float = 5.0) -> None:
        """
        @param schema: the directory's schema (it must define C{ldapdACI}).
        @param rules: the configured rules, in order.
        @param storedRules: whether rules stored in the directory apply.
        @param storedRulesTTL: the most seconds stored rules are used after
            they were read (0: until this process changes them).
        @raise AccessRuleError: for a rule that cannot be parsed, naming it.
        """
        self.schema = schema
        self.rules: list[AccessRule] = []
        for i, text in enumerate(rules):
            try:
                self.rules.append(parseRule(text, schema))
            except AccessRuleError as e:
                raise AccessRuleError(f"rule {i + 1}: {e}") from None
        aci = schema.attributeType(ACI_ATTRIBUTE)
        if aci is None:
            raise AccessRuleError(f"the schema does not define {ACI_ATTRIBUTE} (ldapd.schema)")
        self._aci = aci
        self._password = schema.attributeType("userPassword")
        self._storedRules = storedRules
        self._stored: dict[DN, list[AccessRule]] | None = None if storedRules else {}
        self._storedTTL = storedRulesTTL
        self._loadedAt = 0.0
        self._generation = 0
        self._contexts: weakref.WeakKeyDictionary[Operation, _Context] = weakref.WeakKeyDictionary()
        self._touched: weakref.WeakSet[Operation] = weakref.WeakSet()
        self._private: dict[DN, list[AccessRule]] = {}
        self._decisions = Decisions(_MAX_GRANTS)
        self._parsed: dict[DN, tuple[tuple[bytes, ...], list[AccessRule]]] = {}
        # The read of the stored rules under way, with the generation it
        # began in and the Deferreds waiting for it (L{_sharedLoad}).
        self._pending: tuple[int, list[defer.Deferred[Any]]] | None = None
        # The groups the rules name, for the rules and stored rules they
        # were found in (compared by identity).
        self._groupsNamed: tuple[object, object, frozenset[DN]] = (None, None, frozenset())
        self._members: dict[DN, tuple[Entry, frozenset[DN]]] = {}
        self.directory: Any = None

    def attach(self, host: PluginHost) -> None:
        """
        Read entries (groups, stored rules, targets) through the host's
        directory.
        """
        self.directory = host.directory

    # Rules and subjects

    def _bypass(self, op: Operation) -> bool:
        return op.internal or op.identity.isRoot

    async def _loadStored(self) -> dict[DN, list[AccessRule]]:
        generation = self._generation
        loadedAt = self.directory.reactor.seconds()
        stored: dict[DN, list[AccessRule]] = {}
        parsed: dict[DN, tuple[tuple[bytes, ...], list[AccessRule]]] = {}
        for db in self.directory.databases:
            op = self.directory.internalOperation()
            op.search = SearchParameters(
                base=db.normalizedSuffix, scope=Scope.SUB, filter=Present(self._aci, ()),
                attributes=[ACI_ATTRIBUTE],
            )

            def emit(entry: Any) -> None:
                # Backends may also emit continuation references.
                if isinstance(entry, Entry):
                    # The rules of values read before are those parsed
                    # then: the decisions made with them still hold.
                    values = entry.get(ACI_ATTRIBUTE)
                    before = self._parsed.get(entry.ndn)
                    rules = before[1] if before is not None and before[0] == values \
                        else self._parseStored(entry)
                    stored[entry.ndn] = rules
                    parsed[entry.ndn] = (values, rules)

            try:
                await db.backend.search(op, emit)
            except NoSuchObject:
                continue
        if generation == self._generation:
            self._stored = stored
            self._parsed = parsed
            self._loadedAt = loadedAt
        return stored

    def _sharedLoad(self) -> defer.Deferred[dict[DN, list[AccessRule]]]:
        """
        Read the stored rules, once for all the operations that need them
        read again at the same time: each reading them for itself, every
        operation arriving while they were read (a subtree search of every
        database, which lets others in as it goes) began another such
        search. An operation joins a read begun since the last write that
        touched them, never an older one.

        @return: a Deferred firing with the stored rules.
        """
        waiter: defer.Deferred[dict[DN, list[AccessRule]]] = defer.Deferred()
        pending = self._pending
        if pending is not None and pending[0] == self._generation:
            pending[1].append(waiter)
            return waiter
        waiters = [waiter]
        self._pending = (self._generation, waiters)

        def fire(result: Any) -> None:
            if self._pending is not None and self._pending[1] is waiters:
                self._pending = None
            for each in waiters:
                if isinstance(result, Failure):
                    each.errback(result)
                else:
                    each.callback(result)

        defer.Deferred.fromCoroutine(self._loadStored()).addBoth(fire)
        return waiter

    def _parseStored(self, entry: Entry) -> list[AccessRule]:
        rules = []
        for value in entry.get(ACI_ATTRIBUTE):
            text = value.decode("utf-8", "replace")
            try:
                rules.append(parseRule(text, self.schema, scope=entry.ndn))
            except AccessRuleError as e:
                # Fail closed: a broken rule denies everything in its subtree.
                self._log.error("{dn}: ignoring broken {attr} rule {text!r} ({why}); "
                                "denying access below it", dn=str(entry.dn),
                                attr=ACI_ATTRIBUTE, text=text, why=str(e))
                rules.append(parseRule("to * by * none", self.schema, scope=entry.ndn))
        return rules

    def _invalidate(self) -> None:
        self._generation += 1
        if self._storedRules:
            self._stored = None

    def _contextNow(self, op: Operation, anonymous: bool = False) -> _Context | None:
        """
        The operation's context, when it can be made without reading
        anything: the stored rules are current, and the client is anonymous
        or the rules name no group.

        @param anonymous: for the anonymous identity rather than the
            operation's (a bind); such a context is not kept.
        @return: the context, or C{None} when L{_context} must read.
        """
        context = self._contexts.get(op)
        if context is not None and not anonymous:
            return context
        stored = self._stored
        if stored is None or self._stale():
            return None
        ndn = None if anonymous else op.identity.ndn
        if ndn is not None and self._namedGroups(stored):
            return None
        return self._newContext(op, anonymous, stored, ndn, frozenset())

    async def _context(self, op: Operation, anonymous: bool = False) -> _Context:
        """
        The operation's context, reading what L{_contextNow} cannot do
        without.
        """
        context = self._contextNow(op, anonymous)
        if context is not None:
            return context
        stored = self._stored
        if stored is None or self._stale():
            stored = await self._sharedLoad()
        ndn = None if anonymous else op.identity.ndn
        groups = frozenset() if ndn is None else await self._groupsOf(ndn, stored)
        return self._newContext(op, anonymous, stored, ndn, groups)

    def _stale(self) -> bool:
        """
        @return: whether the stored rules were read C{stored_rules_ttl} ago.
        """
        return bool(self._storedRules and self._storedTTL
                    and self.directory.reactor.seconds() - self._loadedAt >= self._storedTTL)

    def _newContext(self, op: Operation, anonymous: bool, stored: dict[DN, list[AccessRule]],
                    ndn: DN | None, groups: frozenset[DN]) -> _Context:
        subject = Subject(ndn, _peerName(op.connection.peer), groups)
        context = _Context(self._decisions.of(subject), stored)
        if not anonymous:
            self._contexts[op] = context
        return context

    def _namedGroups(self, stored: dict[DN, list[AccessRule]]) -> frozenset[DN]:
        """
        @param stored: the stored rules in force.
        @return: the groups the configured and stored rules name.
        """
        rules, known, named = self._groupsNamed
        if rules is not self.rules or known is not stored:
            named = frozenset().union(*(r.groups for r in self.rules), *(
                r.groups for rules in stored.values() for r in rules))
            self._groupsNamed = (self.rules, stored, named)
            for group in self._members.keys() - named:
                del self._members[group]
        return named

    async def _groupsOf(self, ndn: DN, stored: dict[DN, list[AccessRule]]) -> frozenset[DN]:
        """
        @param ndn: the normalised DN of a client.
        @param stored: the stored rules in force.
        @return: the groups the rules name that it is a member of, from
            their entries as they are now; each group's members are read
            again only when its entry has changed since.
        """
        groups = set()
        for group in self._namedGroups(stored):
            entry = await self._read(group)
            if entry is None:
                continue
            members = self._members.get(group)
            # Held with the entry it was read from, which is compared by
            # identity: a write makes a new entry.
            if members is None or members[0] is not entry:
                members = self._members[group] = (
                    entry, frozenset(groupMembers(self.schema, entry)))
            if ndn in members[1]:
                groups.add(group)
        return frozenset(groups)

    async def _read(self, ndn: DN) -> Entry | None:
        try:
            return await self.directory.get(self.directory.internalOperation(), ndn)  # type: ignore[no-any-return]
        except NoSuchObject:
            return None

    def _rulesFor(self, context: _Context, ndn: DN) -> list[AccessRule]:
        private = self.directory.privateSuffix(ndn) if self.directory is not None else None
        if private is not None:
            return self._privateRules(private)
        if not context.stored:
            return self.rules
        holders = sorted((h for h in context.stored if ndn.isWithin(h)), key=len, reverse=True)
        return [rule for h in holders for rule in context.stored[h]] + self.rules

    def _privateRules(self, suffix: DN) -> list[AccessRule]:
        """
        @return: the configured rules that name a private view's subtree,
            the only ones that apply in it.
        """
        rules = self._private.get(suffix)
        if rules is None:
            rules = self._private[suffix] = [r for r in self.rules if r.names(suffix)]
        return rules

    def _grantsFor(self, context: _Context, entry: Entry) -> Grants:
        """
        @return: what the rules in force grant the operation's subject on
            C{entry}.
        """
        return context.decisions.grants(self._rulesFor(context, entry.ndn), entry)

    def allowed(self, context: _Context, entry: Entry, attribute: AttributeType | str,
                wanted: Privilege) -> bool:
        """
        @param context: the operation's context.
        @param entry: the entry accessed.
        @param attribute: an attribute type, C{"entry"} or C{"children"}.
        @param wanted: the privilege needed.
        @return: whether the rules grant it.
        """
        return self._grantsFor(context, entry).allows(attribute, wanted)

    async def _target(self, context: _Context, ndn: DN) -> Entry:
        """
        Read the entry an operation names.

        @return: the entry.
        @raise NoSuchObject: when it does not exist, with the matched DN
            the directory passes on only as far as L{disclose_entry} allows.
        """
        return await self.directory.get(self.directory.internalOperation(), ndn)  # type: ignore[no-any-return]

    def _hidden(self, entry: Entry) -> NoSuchObject:
        """
        The error for an entry the client may not know exists: the one it
        would get if the entry did not exist. The entry is given as the
        matched DN; the directory replaces it by its deepest superior the
        client may know of (L{disclose_entry}), as for a missing entry.
        """
        return NoSuchObject("no such object", entry.dn)

    def _deny(self, context: _Context, entry: Entry, what: str) -> ldaperrors.LDAPException:
        """
        The error for a refused access: insufficientAccessRights, or
        noSuchObject when the client may not even know the entry exists.
        """
        if not self.allowed(context, entry, ENTRY, Privilege.DISCLOSE):
            return self._hidden(entry)
        return ldaperrors.LDAPInsufficientAccessRights(f"no {what} access")

    def _require(self, context: _Context, entry: Entry, attribute: AttributeType | str,
                 wanted: Privilege, what: str) -> None:
        if not self.allowed(context, entry, attribute, wanted):
            raise self._deny(context, entry, what)

    async def _parent(self, ndn: DN) -> Entry | None:
        parent = ndn.parent()
        if not parent or self.directory.databaseFor(parent) is None:
            return None
        return await self._read(parent)

    def _checkRules(self, values: Iterable[bytes], ndn: DN) -> None:
        for value in values:
            try:
                parseRule(value.decode("utf-8", "replace"), self.schema, scope=ndn)
            except AccessRuleError as e:
                raise ldaperrors.LDAPInvalidAttributeSyntax(f"{ACI_ATTRIBUTE}: {e}") from None

    # Hooks

    def pre_authenticate(self, op: Operation, check: PasswordCheck) -> defer.Deferred[None] | None:
        """
        A bind needs C{auth} on the target's userPassword, as the anonymous
        identity; checking the old password of a change needs C{write} on
        it, as the client (the root DN may change any). A refusal is
        invalidCredentials, as for a wrong password, and comes before the
        password is looked at, so that a client learns nothing from trying
        passwords it may not use.

        Decided at once when nothing needs waiting for, as L{pre_search}.
        """
        if op.internal or self._password is None:
            return None
        if not check.isBind and self._bypass(op):
            return None
        if any(db.normalizedRootDN == check.ndn for db in self.directory.databases):
            return None
        read = defer.Deferred.fromCoroutine(self._read(check.ndn))
        context = self._contextNow(op, anonymous=check.isBind)
        if context is None or not read.called:
            return defer.Deferred.fromCoroutine(self._preAuthenticate(op, check, read))
        self._checkPassword(context, check, _result(read))
        return None

    async def _preAuthenticate(self, op: Operation, check: PasswordCheck,
                               read: defer.Deferred[Entry | None]) -> None:
        """
        L{pre_authenticate}, waiting for what it needs.

        @param read: the read of the entry whose password is checked.
        """
        entry = await read
        if entry is not None:
            context = await self._context(op, anonymous=check.isBind)
            self._checkPassword(context, check, entry)

    def _checkPassword(self, context: _Context, check: PasswordCheck, entry: Entry | None) -> None:
        """
        Refuse a password check the rules do not allow (L{pre_authenticate}).

        @param entry: the entry whose password is checked, C{None} when
            there is none (the check then fails as for a wrong password).
        """
        if entry is None or self._password is None:
            return
        wanted = Privilege.AUTH if check.isBind else Privilege.WRITE
        if not self.allowed(context, entry, self._password, wanted):
            raise ldaperrors.LDAPInvalidCredentials()

    def pre_search(self, op: Operation, base: DN) -> defer.Deferred[None] | None:
        """
        The base must be visible; the filter is remembered so that each
        result can be checked against what the client may test.

        Decided at once when nothing needs waiting for (the context made
        without reading, the base read from memory): most searches.
        """
        if self._bypass(op) or op.search is None:
            return None
        context = self._contextNow(op)
        if context is None:
            return defer.Deferred.fromCoroutine(self._preSearch(op, base))
        read = defer.Deferred.fromCoroutine(self._target(context, base))
        if not read.called:
            return defer.Deferred.fromCoroutine(self._preSearch(op, base, read))
        self._searchBase(op, context, _result(read))
        return None

    async def _preSearch(self, op: Operation, base: DN,
                         read: defer.Deferred[Entry] | None = None) -> None:
        """
        L{pre_search}, waiting for what it needs.

        @param read: the base entry's read, when it was begun.
        """
        context = await self._context(op)
        entry = await (read if read is not None else self._target(context, base))
        self._searchBase(op, context, entry)

    def _searchBase(self, op: Operation, context: _Context, entry: Entry) -> None:
        """
        Check a search's base entry and remember its filter (L{pre_search}).
        """
        if not self.allowed(context, entry, ENTRY, Privilege.DISCLOSE):
            raise self._hidden(entry)
        assert op.search is not None
        context.filter = op.search.filter
        context.filterTypes, context.typeless = _filterTypes(op.search.filter, self.schema)
        context.filterSubtypes = frozenset().union(
            *(self.schema.subtypes(t) for t in context.filterTypes)) - context.filterTypes

    async def renew_search(self, op: Operation) -> None:
        """
        A long-lived search looks at entries again: who its client is (its
        groups) and the stored rules are looked up anew, so that access
        revoked since the search began applies to what it sends next.
        """
        old = self._contexts.pop(op, None)
        if old is None or self._bypass(op):
            return
        context = await self._context(op)
        context.filter = old.filter
        context.filterTypes = old.filterTypes
        context.filterSubtypes = old.filterSubtypes
        context.typeless = old.typeless

    async def disclose_entry(self, op: Operation, entry: Entry) -> bool:
        """
        An entry may be named to a client (as a matched DN) or counted
        among the children it is told of when it has C{disclose} on it, as
        slapd names a matched DN.
        """
        if self._bypass(op):
            return True
        context = await self._context(op)
        return self.allowed(context, entry, ENTRY, Privilege.DISCLOSE)

    def filter_entry(self, op: Operation, entry: Entry) -> Entry | None:
        """
        Withhold an entry the client may not read, or that matches only
        through attributes it may not search (as slapd, each attribute a
        filter on a supertype reaches is checked: L{throughSearchable});
        strip the attributes it may not read.
        """
        context = self._contexts.get(op)
        if context is None or self._bypass(op):
            return entry
        grants = self._grantsFor(context, entry)
        if not grants.allows(ENTRY, Privilege.READ):
            return None
        if context.filter is not None:
            hidden = {t for t in context.filterTypes if not grants.allows(t, Privilege.SEARCH)}
            if context.typeless or context.filterSubtypes:
                hidden.update(
                    at for at, _ in entry.descriptions
                    if (context.typeless or at in context.filterSubtypes)
                    and not grants.allows(at, Privilege.SEARCH))
            if hidden:
                frozen = frozenset(hidden)
                if throughSearchable(context.filter, frozen).match(
                        entry.without(frozen)) is not True:
                    return None
        # Which attributes the rules strip depends on the entry's layout
        # alone, once the grants are those of its key.
        unreadable = grants.unreadable.get(entry.shape)
        if unreadable is None:
            unreadable = grants.unreadable[entry.shape] = frozenset(
                at for at, _ in entry.descriptions if not grants.allows(at, Privilege.READ))
        return entry.without(unreadable) if unreadable else entry

    async def pre_compare(self, op: Operation, ndn: DN, at: AttributeType, value: bytes) -> None:
        """
        Compare needs C{compare} on the attribute; on a supertype (C{name}),
        as in slapd, the value must be found in a subtype the client may
        compare, or the answer is that of a refused access, whatever the
        subtypes it may not compare hold.
        """
        if self._bypass(op):
            return
        context = await self._context(op)
        entry = await self._target(context, ndn)
        self._require(context, entry, at, Privilege.COMPARE, "compare")
        attrs = entry.matching(at)
        comparable = [a for a in attrs
                      if a.type is at or self.allowed(context, entry, a.type, Privilege.COMPARE)]
        if len(comparable) == len(attrs) or at.equality is None:
            return
        try:
            key = self.schema.normalizeValue(at, value)
        except InvalidValue:
            return
        if not any(key in a.keys(self.schema) for a in comparable):
            raise self._deny(context, entry, "compare")

    async def pre_add(self, op: Operation, entry: Entry) -> None:
        """
        Add needs C{add} on the new entry and on its parent's C{children};
        C{ldapdACI} values need C{manage} and must parse. A parent that
        does not exist, or that the client may not know of, is noSuchObject
        (as in slapd, before any other check), the same either way.
        """
        values = entry.get(ACI_ATTRIBUTE)
        if not op.internal:
            self._checkRules(values, entry.ndn)
        if self._bypass(op):
            return
        context = await self._context(op)
        parentDN = entry.ndn.parent()
        if parentDN and self.directory.databaseFor(parentDN) is not None:
            parent = await self._target(context, parentDN)
            self._require(context, parent, CHILDREN, Privilege.ADD, "add")
        if not self.allowed(context, entry, ENTRY, Privilege.ADD):
            raise ldaperrors.LDAPInsufficientAccessRights("no add access to entry")
        if values and not self.allowed(context, entry, self._aci, Privilege.MANAGE):
            raise ldaperrors.LDAPInsufficientAccessRights(f"no manage access to {ACI_ATTRIBUTE}")

    async def pre_delete(self, op: Operation, ndn: DN) -> None:
        """
        Delete needs C{delete} on the entry and on its parent's C{children}.
        """
        if self._bypass(op):
            return
        context = await self._context(op)
        entry = await self._target(context, ndn)
        self._require(context, entry, ENTRY, Privilege.DELETE, "delete")
        parent = await self._parent(ndn)
        if parent is not None:
            self._require(context, parent, CHILDREN, Privilege.DELETE, "delete")

    async def pre_modify(self, op: Operation, modifications: list[Modification], ndn: DN) -> None:
        """
        Each change needs C{add}, C{delete} or C{write} on its attribute;
        a change of C{ldapdACI} needs C{manage}, and its values must parse.
        """
        if not op.internal:
            for mod in modifications:
                if parseDescription(self.schema, mod.description)[0] is self._aci:
                    self._checkRules(mod.values, ndn)
        if self._bypass(op):
            return
        context = await self._context(op)
        entry = await self._target(context, ndn)
        for mod in modifications:
            at, _ = parseDescription(self.schema, mod.description)
            if at is self._aci:
                self._require(context, entry, at, Privilege.MANAGE, "manage")
            else:
                self._require(context, entry, at, _MODIFY_PRIVILEGES[mod.operation], "write")

    async def pre_rename(self, op: Operation, ndn: DN, newDN: DN, deleteOldRDN: bool) -> None:
        """
        Rename needs C{write} on the entry, C{add} on the new RDN's
        attributes (and C{delete} on the old one's when it is removed), and
        on the parents' C{children}: C{write} when the entry stays, C{delete}
        on the old and C{add} on the new when it moves.
        """
        if self._bypass(op):
            return
        context = await self._context(op)
        entry = await self._target(context, ndn)
        self._require(context, entry, ENTRY, Privilege.WRITE, "write")
        for ava in DN.parse(str(newDN)).rdn:
            at = self.schema.attributeType(ava.type)
            if at is not None:
                self._require(context, entry, at, Privilege.ADD, "write")
        if deleteOldRDN:
            for ava in entry.dn.rdn:
                at = self.schema.attributeType(ava.type)
                if at is not None:
                    self._require(context, entry, at, Privilege.DELETE, "write")
        newParentDN = self.schema.normalizeDN(newDN).parent()
        oldParent = await self._parent(ndn)
        moving = newParentDN != ndn.parent()
        if oldParent is not None:
            wanted = Privilege.DELETE if moving else Privilege.WRITE
            self._require(context, oldParent, CHILDREN, wanted, "write")
        if moving:
            newParent = await self._read(newParentDN)
            if newParent is not None:
                self._require(context, newParent, CHILDREN, Privilege.ADD, "write")

    # Keeping the stored rules current

    def _touches(self, ndn: DN, *entries: Entry) -> bool:
        if any(e.get(ACI_ATTRIBUTE) for e in entries):
            return True
        stored = self._stored
        return stored is None or any(h.isWithin(ndn) for h in stored)

    def _written(self, op: Operation, ndn: DN, *entries: Entry) -> None:
        if self._storedRules and self._touches(ndn, *entries):
            self._touched.add(op)
            self._invalidate()

    def txn_add(self, op: Operation, txn: Any, entry: Entry) -> None:
        """
        Forget the stored rules if the new entry holds some.
        """
        self._written(op, entry.ndn, entry)

    def txn_delete(self, op: Operation, txn: Any, entry: Entry) -> None:
        """
        Forget the stored rules if the deleted entry held some.
        """
        self._written(op, entry.ndn, entry)

    def txn_modify(self, op: Operation, txn: Any, old: Entry, new: Entry) -> None:
        """
        Forget the stored rules if the entry holds some, before or after.
        """
        self._written(op, old.ndn, old, new)

    def txn_rename(self, op: Operation, txn: Any, old: Entry, new: Entry) -> None:
        """
        Forget the stored rules if the renamed subtree holds some.
        """
        self._written(op, old.ndn, old, new)

    def _committed(self, op: Operation, resultCode: int) -> None:
        # Forget again once the write is over, in case a concurrent
        # operation reloaded the rules while the transaction was open.
        if op in self._touched:
            self._touched.discard(op)
            self._invalidate()

    def post_add(self, op: Operation, resultCode: int) -> None:
        """
        See L{_committed}.
        """
        self._committed(op, resultCode)

    def post_delete(self, op: Operation, resultCode: int) -> None:
        """
        See L{_committed}.
        """
        self._committed(op, resultCode)

    def post_modify(self, op: Operation, resultCode: int) -> None:
        """
        See L{_committed}.
        """
        self._committed(op, resultCode)

    def post_rename(self, op: Operation, resultCode: int) -> None:
        """
        See L{_committed}.
        """
        self._committed(op, resultCode)


def _result(d: defer.Deferred[Any]) -> Any:
    """
    @param d: a Deferred that has fired.
    @return: its result.
    @raise Exception: its failure's.
    """
    found: list[Any] = []
    d.addBoth(found.append)
    if isinstance(found[0], Failure):
        found[0].raiseException()
    return found[0]


def _filterTypes(f: Filter, schema: Schema) -> tuple[set[AttributeType], bool]:
    """
    The attribute types a filter tests, and whether it tests every
    attribute (an extensible match without a type, or with C{:dn:}).
    """
    types: set[AttributeType] = set()
    typeless = False
    for node in assertions(f):
        if isinstance(node, EntryDNEquality):
            entryDN = schema.attributeType("entryDN")
            if entryDN is not None:
                types.add(entryDN)
        elif isinstance(node, Extensible):
            if node.type is None or node.dnAttributes:
                typeless = True
            if node.type is not None:
                types.add(node.type)
        else:
            at = getattr(node, "type", None)
            if at is not None:
                types.add(at)
    return types, typeless


class AccessControlFactory:
    """
    Builds L{AccessControl} from C{[[plugin]] name = "acl"}: C{rules} (a
    list of rules, in order; L{DEFAULT_RULES} when absent), C{stored_rules}
    (whether C{ldapdACI} rules apply; true by default) and
    C{stored_rules_ttl} (seconds stored rules are cached; 5 by default).
    """

    name = "acl"
    description = "Access control with slapd's 'access to ... by ...' rules, also stored in the directory."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: Any) -> AccessControl:
        """
        @param table: the plugin's configuration.
        @param context: the L{ldapd.config.ConfigContext}.
        @raise ldapd.registry.ConfigError: naming the key and the rule.
        """
        config = ConfigTable(table, context, {"rules", "stored_rules", "stored_rules_ttl"})
        rules = config.strings("rules", list(DEFAULT_RULES))
        stored = config.boolean("stored_rules", True)
        ttl = config.number("stored_rules_ttl", 5.0, minimum=0,
                            expected="a number of seconds, 0 or more")
        for i, text in enumerate(rules):
            try:
                parseRule(text, context.schema)
            except AccessRuleError as e:
                raise context.error(f"rules[{i}]", str(e)) from None
        try:
            return AccessControl(context.schema, rules, stored, ttl)
        except AccessRuleError as e:
            raise context.error("name", str(e)) from None
