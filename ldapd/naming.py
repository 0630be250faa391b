"""
Where a name leads, in the databases whose entries ldapd stores itself:
referral objects (RFC 3296), aliases (RFC 4512 §2.6, dereferenced as
RFC 4511 §4.5.1.3 asks) and the default referral for names in no naming
context, answered as slapd answers them.

  - A referral object (class C{referral}, URLs in C{ref}) is an ordinary
    entry for an operation with ManageDsaIT. Without it, an operation on
    the object or a name below it, and a search based there, end with
    referral (10) and its URLs, their DN adjusted to the name asked for
    (L{referralURIs}); a one-level or subtree search sends a continuation
    reference for each referral object in its scope, whatever its filter,
    and nothing below it. An Add below one is referred even with
    ManageDsaIT, a rename below one is refused (other, 80), as slapd does.
  - An alias (class C{alias}, target in C{aliasedObjectName}) is followed
    as the search's C{derefAliases} asks: the base when finding it, the
    aliases in scope when searching (their targets are returned in their
    place, and for a subtree search the targets' subtrees searched, each
    entry once). A missing target or a loop is aliasProblem (33); a chain
    longer than L{MAX_ALIAS_CHAIN} is aliasDereferencingProblem (36).
    Nothing is added below an alias (33).

Backends that resolve names themselves (L{IResolvingBackend}: the proxy,
whose upstream server does) are left to it. So is a database that holds no
referral object and no alias, which costs a request nothing: which do is
looked up as the directory opens, again by the first request after
L{RESCAN_INTERVAL} seconds (for another process's writes: workers,
C{ldapd-admin import}), and noted at once when a write through this
directory stores one.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import quote, unquote

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer

from ldapd import controls
from ldapd.changes import Change
from ldapd.dn import DN, InvalidDN
from ldapd.entry import Entry, SearchReference
from ldapd.filters import compileFilter
from ldapd.interfaces import IResolvingBackend
from ldapd.ldapurl import SCOPE_NAMES, splitURL
from ldapd.operation import Operation, Scope, SearchParameters
from ldapd.requests import SearchRequest, parseFilter
from ldapd.results import NoSuchObject, Referral

if TYPE_CHECKING:
    from ldapd.directory import Database, Directory

__all__ = [
    "DEREF_ALWAYS",
    "DEREF_FINDING",
    "DEREF_NEVER",
    "DEREF_SEARCHING",
    "MAX_ALIAS_CHAIN",
    "Names",
    "RESCAN_INTERVAL",
    "isAlias",
    "isReferral",
    "referralURIs",
]

#: derefAliases (RFC 4511 §4.5.1.3), as bits: searching is 1, finding 2.
DEREF_NEVER = 0
DEREF_SEARCHING = 1
DEREF_FINDING = 2
DEREF_ALWAYS = 3

#: The most aliases one name is followed through.
MAX_ALIAS_CHAIN = 15

#: Seconds between two looks at which databases hold referral objects or
#: aliases.
RESCAN_INTERVAL = 60.0

# What slapd's URL writer leaves unescaped in a DN (RFC 2396's reserved and
# unreserved marks, but "?").
_DN_SAFE = ";:@&=+$!*'(),/"


def isReferral(entry: Entry) -> bool:
    """
    @return: whether C{entry} is a referral object (RFC 3296).
    """
    return "referral" in entry.objectClasses()


def isAlias(entry: Entry) -> bool:
    """
    @return: whether C{entry} is an alias.
    """
    return "alias" in entry.objectClasses()


def referralURIs(refs: Iterable[bytes | str], holder: DN, target: DN,
                 scope: Scope | None) -> tuple[str, ...]:
    """
    The URLs a referral or a continuation reference names, as slapd writes
    them: the DN of each C{ref} URL gets the RDNs of C{target} below
    C{holder} in front (a URL without a DN names C{target} itself), and a
    search's scope is added.

    @param refs: the C{ref} values (or the default referral).
    @param holder: the DN of the referral object (the root DN for the
        default referral).
    @param target: the name asked for, at or below C{holder}.
    @param scope: the scope of the search the URLs continue; C{None} for
        other operations.
    @return: the URLs.
    """
    below = target.rdns[: len(target) - len(holder)]
    found = []
    for raw in refs:
        uri = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw).strip()
        split = splitURL(uri)
        if split is None:
            found.append(uri)
            continue
        head, dnText, _ = split
        try:
            dn = unquote(dnText)
            name = DN(below + DN.parse(dn).rdns) if dn else target
        except InvalidDN:
            found.append(uri)
            continue
        suffix = "" if scope is None else f"??{SCOPE_NAMES[scope]}"
        found.append(f"{head}/{quote(str(name), safe=_DN_SAFE)}{suffix}")
    return tuple(found)


def _aliasTarget(entry: Entry) -> DN:
    values = entry.get("aliasedObjectName")
    try:
        return DN.parse(values[0])
    except (InvalidDN, IndexError):
        raise ldaperrors.LDAPAliasProblem("aliasedObjectName is not a DN") from None


class _Found(Exception):
    """
    A search that looks for one entry has found it.
    """


class _Visit:
    """
    What one client search has met: the entries sent (an entry reached
    through aliases is sent once) and the subtrees searched.
    """

    def __init__(self) -> None:
        self.sent: set[DN] = set()
        self.searched: set[DN] = set()


class Names:
    """
    Resolves the names of one L{Directory<ldapd.directory.Directory>}'s
    requests through referral objects and aliases.

    @ivar defaultReferral: the URLs names in no naming context are referred
        to (C{[server] referral}, as slapd's C{referral} directive); empty
        for none.
    """

    def __init__(self, directory: Directory, defaultReferral: tuple[str, ...] = ()) -> None:
        self._directory = directory
        self.schema = directory.schema
        self.defaultReferral = defaultReferral
        self._special = compileFilter(
            parseFilter("(|(objectClass=referral)(objectClass=alias))"), self.schema)
        self._referrals = compileFilter(parseFilter("(objectClass=referral)"), self.schema)
        # By normalised suffix: whether the database may hold referral
        # objects or aliases (until looked at, it may).
        self._holding: dict[DN, bool] = {}
        self._scanned: float | None = None

    async def _current(self, db: Database) -> bool:
        """
        Look at the databases again if the last look is older than
        L{RESCAN_INTERVAL} and C{db} held nothing then.

        @return: whether names in C{db} are resolved here (L{resolves}).
        """
        if (self._scanned is not None and not self._holding.get(db.normalizedSuffix, True)
                and self._directory.reactor.seconds() - self._scanned >= RESCAN_INTERVAL):
            await self.rescan()
        return self.resolves(db)

    @staticmethod
    def manages(op: Operation) -> bool:
        """
        @return: whether C{op} sees referral objects as entries: it carries
            ManageDsaIT, or the server issued it.
        """
        return op.internal or controls.MANAGE_DSA_IT in op.controls

    @staticmethod
    def _stores(db: Database) -> bool:
        """
        @return: whether C{db} stores its entries, referral objects and
            aliases among them, for the Directory to resolve (unlike a
            backend that resolves them, or a private view).
        """
        return not (db.private or IResolvingBackend.providedBy(db.backend))

    def resolves(self, db: Database) -> bool:
        """
        @return: whether names in C{db} are resolved here: it stores its
            entries, and may hold a referral object or an alias.
        """
        # The look-up first: after a scan, most databases hold neither, and
        # the interface check is the dearer of the two.
        return self._holding.get(db.normalizedSuffix, True) and self._stores(db)

    async def rescan(self) -> None:
        """
        Look at which databases hold a referral object or an alias.
        """
        self._scanned = self._directory.reactor.seconds()
        for db in self._directory.databases:
            if self._stores(db):
                self._holding[db.normalizedSuffix] = bool(await self._specials(
                    self._directory.internalOperation(), db, db.normalizedSuffix, Scope.SUB,
                    referrals=False, first=True))

    def noteChange(self, change: Change) -> None:
        """
        A subscriber to the directory's changes: a referral object or an
        alias stored is noted at once.
        """
        if change.new is not None and (isReferral(change.new) or isAlias(change.new)):
            self._holding[change.suffix] = True

    def outside(self, dn: DN, scope: Scope | None, otherwise: Exception) -> Exception:
        """
        The error for a name in no naming context.

        @param dn: the name, as the client wrote it.
        @param scope: the search's scope, or C{None}.
        @param otherwise: the error when there is no default referral.
        @return: a L{Referral} to the default referral, or C{otherwise}.
        """
        if not self.defaultReferral:
            return otherwise
        return Referral(referralURIs(self.defaultReferral, DN(), dn, scope))

    async def _get(self, db: Database, ndn: DN) -> Entry | None:
        try:
            return await db.backend.get(self._directory.internalOperation(), ndn)  # type: ignore[no-any-return]
        except NoSuchObject:
            return None

    async def _deepest(self, db: Database, ndn: DN) -> tuple[Entry | None, Entry | None]:
        """
        @return: the entry C{ndn} (or C{None}), and when it does not exist
            the deepest existing superior the backend names (or C{None}).
        """
        try:
            return await db.backend.get(self._directory.internalOperation(), ndn), None
        except NoSuchObject as e:
            if e.matchedDN is None:
                return None, None
            return None, await self._get(db, self.schema.normalizeDN(e.matchedDN))

    async def locate(self, op: Operation, db: Database, dn: DN, ndn: DN,
                     scope: Scope | None = None) -> Entry | None:
        """
        Look a request's name up through referral objects.

        @param dn: the name as the client wrote it.
        @param ndn: its normalised form.
        @param scope: the search's scope; C{None} for other operations.
        @return: the entry, or C{None} if it does not exist (the operation
            then fails as it would have).
        @raise Referral: if the entry is a referral object and C{op} does
            not manage them, or the name lies below one.
        """
        if op.internal or not await self._current(db):
            return None
        entry, superior = await self._deepest(db, ndn)
        holder = entry if entry is not None and not self.manages(op) else superior
        if holder is not None and isReferral(holder):
            raise Referral(referralURIs(holder.get("ref"), holder.dn, dn, scope),
                           matchedDN=holder.dn)
        if superior is not None and isAlias(superior) and scope is not None:
            request = op.request
            if isinstance(request, SearchRequest) and request.derefAliases & DEREF_FINDING:
                target = await self._dereference(superior)
                raise NoSuchObject("no such object", target.dn)
        return entry

    async def checkAdd(self, op: Operation, db: Database, dn: DN, ndn: DN) -> None:
        """
        Refuse an Add below a referral object (referred, ManageDsaIT or
        not) or below an alias (aliasProblem), as slapd does.
        """
        if op.internal or len(ndn) <= len(db.normalizedSuffix) or not await self._current(db):
            return
        parent, superior = await self._deepest(db, ndn.parent())
        holder = parent if parent is not None else superior
        if holder is not None and isReferral(holder):
            raise Referral(referralURIs(holder.get("ref"), holder.dn, dn, None),
                           matchedDN=holder.dn)
        if parent is not None and isAlias(parent):
            raise ldaperrors.LDAPAliasProblem("parent is an alias")

    async def checkNewSuperior(self, op: Operation, db: Database, ndn: DN) -> None:
        """
        Refuse to move an entry below a referral object (other, 80, as slapd).
        """
        if op.internal or not await self._current(db):
            return
        superior = await self._get(db, ndn)
        if superior is not None and isReferral(superior):
            raise ldaperrors.LDAPOther("new superior is a referral")

    async def _dereference(self, alias: Entry) -> Entry:
        """
        Follow an alias, and the aliases it leads to, to an entry. An error
        names the alias as its matched DN, as slapd's do.

        @raise ldaperrors.LDAPAliasProblem: for a target that does not
            exist, or a loop.
        @raise ldaperrors.LDAPAliasDereferencingProblem: for too long a chain.
        """
        try:
            return await self._follow(alias)
        except (ldaperrors.LDAPAliasProblem, ldaperrors.LDAPAliasDereferencingProblem) as e:
            e.matchedDN = alias.dn  # type: ignore[attr-defined]
            raise

    async def _follow(self, alias: Entry) -> Entry:
        seen = {alias.ndn}
        entry = alias
        for _ in range(MAX_ALIAS_CHAIN):
            target = self.schema.normalizeDN(_aliasTarget(entry))
            if target in seen:
                raise ldaperrors.LDAPAliasProblem("circular alias")
            seen.add(target)
            db = self._directory.databaseFor(target)
            found = None if db is None else await self._get(db, target)
            if found is None:
                raise ldaperrors.LDAPAliasProblem("aliasedObject not found")
            if not isAlias(found):
                return found
            entry = found
        raise ldaperrors.LDAPAliasDereferencingProblem("maximum deref depth exceeded")

    async def searchBase(self, op: Operation, db: Database, dn: DN) -> Database:
        """
        Resolve a search's base: referred if it is (or lies below) a
        referral object, replaced by the aliased entry when the search
        dereferences in finding its base. C{op.search.base} is updated.

        @return: the database that holds the base now.
        @raise ldaperrors.LDAPAliasProblem: if the base is an alias whose
            target is missing or that loops.
        """
        params = op.search
        request = op.request
        assert params is not None and isinstance(request, SearchRequest)
        entry = await self.locate(op, db, dn, params.base, params.scope)
        if entry is None or not isAlias(entry) or not request.derefAliases & DEREF_FINDING:
            return db
        target = await self._dereference(entry)
        params.base = target.ndn
        found = self._directory.databaseFor(target.ndn)
        assert found is not None
        return found

    def searching(self, op: Operation, db: Database) -> Any:
        """
        @return: what runs a client's one-level or subtree search in
            C{db} (an object with the backend's C{search(op, emit)}):
            C{db}'s backend itself, or one that sends referral objects as
            continuation references and dereferences aliases in scope.
        """
        params = op.search
        request = op.request
        assert params is not None
        if params.scope == Scope.BASE or not self.resolves(db) or op.internal:
            return db.backend
        deref = isinstance(request, SearchRequest) and bool(
            request.derefAliases & DEREF_SEARCHING)
        if self.manages(op) and not deref:
            return db.backend
        return _ResolvingSearch(self, db, deref)

    async def _specials(self, op: Operation, db: Database, base: DN, scope: Scope,
                        referrals: bool, first: bool = False) -> list[Entry]:
        """
        @param first: stop at the first found.
        @return: the referral objects (only those, or with the aliases) in
            a scope, in the backend's order.
        """
        search = self._directory.internalOperation()
        search.deadline = op.deadline
        search.search = SearchParameters(base, scope, self._referrals if referrals
                                         else self._special, ["*"])
        found: list[Entry] = []

        def collect(entry: Entry | SearchReference) -> None:
            if isinstance(entry, Entry):
                found.append(entry)
                if first:
                    raise _Found()

        try:
            await db.backend.search(search, collect)
        except (NoSuchObject, _Found):
            pass
        return found


class _ResolvingSearch:
    """
    A client's one-level or subtree search through one database, with its
    referral objects and aliases resolved (see L{Names}).
    """

    def __init__(self, names: Names, db: Database, deref: bool) -> None:
        self.names = names
        self.db = db
        self.deref = deref

    def search(self, op: Operation, emit: Callable[[Entry | SearchReference], Any]
               ) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._search(op, emit))

    async def _search(self, op: Operation, emit: Callable[[Entry | SearchReference], Any]) -> None:
        params = op.search
        assert params is not None
        visit = _Visit()
        pending = [(self.db, params.base, params.scope)]
        try:
            while pending:
                db, base, scope = pending.pop(0)
                if base in visit.searched:
                    continue
                visit.searched.add(base)
                op.search = dataclasses.replace(params, base=base, scope=scope)
                for target, targetScope in await self._scope(op, emit, visit, db, base, scope):
                    holder = self.names._directory.databaseFor(target.ndn)
                    if targetScope == Scope.BASE:
                        await self._sendOne(op, emit, visit, target)
                    elif holder is not None and self.names._stores(holder):
                        # An alias may name an entry of another naming context.
                        pending.append((holder, target.ndn, targetScope))
        finally:
            op.search = params

    async def _scope(self, op: Operation, emit: Callable[[Entry | SearchReference], Any],
                     visit: _Visit, db: Database, base: DN, scope: Scope
                     ) -> list[tuple[Entry, Scope]]:
        """
        Search one scope: continuation references for its referral objects,
        its entries but those and what lies below them (and, when
        dereferencing, its aliases).

        @return: the aliases' targets out of the scope, each with the scope
            it is searched in.
        """
        names = self.names
        manages = names.manages(op)
        specials = await names._specials(op, db, base, scope, referrals=not self.deref)
        referrals = [] if manages else [e for e in specials if isReferral(e)]
        aliases = [e for e in specials if isAlias(e)] if self.deref else []
        for referral in referrals:
            uris = referralURIs(referral.get("ref"), referral.dn, referral.dn,
                                Scope.BASE if scope == Scope.ONE else Scope.SUB)
            waiting = emit(SearchReference(uris))
            if waiting is not None:
                await waiting
        skipped = {e.ndn for e in referrals} | {e.ndn for e in aliases}
        below = [e.ndn for e in referrals]

        def passing(entry: Entry | SearchReference) -> Any:
            if isinstance(entry, SearchReference):
                return emit(entry)
            if entry.ndn in skipped or entry.ndn in visit.sent or any(
                    entry.ndn.isWithin(r) for r in below):
                return None
            visit.sent.add(entry.ndn)
            return emit(entry)

        await db.backend.search(op, passing)
        targets = []
        for alias in aliases:
            try:
                target = await names._dereference(alias)
            except ldaperrors.LDAPException:
                continue  # as slapd: a broken alias met while searching is passed over
            if target.ndn.isWithin(base) and (scope == Scope.SUB or len(target.ndn) == len(base) + 1):
                continue  # found in the scope itself
            targets.append((target, Scope.BASE if scope == Scope.ONE else Scope.SUB))
        return targets

    async def _sendOne(self, op: Operation, emit: Callable[[Entry | SearchReference], Any],
                       visit: _Visit, entry: Entry) -> None:
        """
        Send an alias's target reached by a one-level search, if it matches.
        """
        params = op.search
        assert params is not None
        if entry.ndn in visit.sent or params.filter.match(entry) is not True:
            return
        if isReferral(entry) and not self.names.manages(op):
            return
        visit.sent.add(entry.ndn)
        waiting = emit(entry)
        if waiting is not None:
            await waiting

