"""
Search execution: everything a search does once the Directory has it.

L{Searcher} reads the request (base, scope, filter, attributes), applies the
size and time limits and the deadline, routes the base through the
L{Directory<ldapd.directory.Directory>}'s naming contexts and views, runs
the backend's search, and sends each entry the plugins let through, with
the attributes the request selected, encoded once per selection while the
entry is cached; or it hands the search to the syncrepl provider, a
persistent search, or the paged results control (L{_PagedSearch}). The
computed attributes (entryDN, subschemaSubentry, hasSubordinates,
numSubordinates) are added here too.

One search's path::

    Directory.execute -> Searcher.handle -> backend.search(op, emit)
        -> emit: plugins.filterEntry -> Searcher.sendEntry -> encodeSearchEntry -> reply
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer

from ldapd import controls
from ldapd._cache import LRU
from ldapd._codec import encodeSearchEntry, encodeSearchReference
from ldapd.dn import DN
from ldapd.entry import Entry, SearchReference, parseDescription
from ldapd.filters import compileFilter, everything
from ldapd.limits import checkFilterSize, limitsFor
from ldapd.operation import Operation, Scope, SearchParameters
from ldapd.requests import SearchRequest
from ldapd.results import NoSuchObject, Outcome, Reply
from ldapd.schema import AttributeType, Schema
from ldapd.syncrepl.multi import ATTRIBUTE_CSN
from ldapd.views import SUBSCHEMA_DN

if TYPE_CHECKING:
    from ldapd.directory import Database, Directory

__all__ = ["Searcher", "withVirtual"]

#: How many encoded search results (entry and attribute selection) it keeps.
_CACHED_RESULTS = 4096
_MAX_PAGED_SEARCHES = 16


class _SubordinateFound(Exception):
    """
    A search for an entry's children has found one, which is all hasSubordinates needs.
    """


class _SizeLimitReached(Exception):
    """
    A search has sent as many entries as its size limit allows and found one more.
    """


class _PagedSearch:
    """
    A search suspended between the pages of the paged results control.

    The backend's search runs once; when a page is full, C{emit} hands the
    backend a Deferred that fires only when the client asks for the next page.
    Each page is sent as the identity that asks for it, as in slapd: after a
    rebind, the plugins filter the entries for the new identity, and only
    those that match its filter (as its C{pre_search} hooks left it) are sent.

    @ivar op: the operation of the first page, which the backend's search runs with.
    @ivar current: the operation of the page being sent.
    """

    def __init__(self, searcher: Searcher, op: Operation, fingerprint: tuple[object, ...]
                 ) -> None:
        self.searcher = searcher
        self.op = self.current = op
        self.fingerprint = fingerprint
        self.cookie = b""
        self.search: defer.Deferred[None] | None = None
        self.resume: defer.Deferred[None] | None = None
        self.pending: Entry | None = None
        self.pageDone: defer.Deferred[bool] | None = None
        self.reply: Reply | None = None
        self.pageSize = 0
        self.sent = 0
        self.total = 0

    def start(self, backend: Any) -> None:
        self.search = backend.search(self.op, self.emit)
        self.search.addCallbacks(self._cbDone, self._ebDone)

    def _cbDone(self, _: None) -> None:
        if self.pageDone is not None and not self.pageDone.called:
            self.pageDone.callback(False)

    def _ebDone(self, reason: Any) -> None:
        if self.pageDone is not None and not self.pageDone.called:
            self.pageDone.errback(reason)

    def page(self, op: Operation, reply: Reply, size: int) -> defer.Deferred[bool]:
        """
        Send the next page.

        @return: a Deferred firing with whether more entries remain.
        """
        self.reply = reply
        self.pageSize = size
        self.sent = 0
        self.pageDone = defer.Deferred()
        self.op.deadline = op.deadline
        self.current = op
        done = self.pageDone
        sending = None
        if self.pending is not None:
            entry, self.pending = self.pending, None
            filtered = self._filter(entry)
            if filtered is not None:
                sending = self._send(filtered)
        if self.resume is not None:
            resume, self.resume = self.resume, None
            if sending is None:
                resume.callback(None)
            else:
                sending.chainDeferred(resume)
        return done

    def _send(self, entry: Entry) -> defer.Deferred[None] | None:
        self.sent += 1
        self.total += 1
        assert self.reply is not None
        return self.searcher.sendEntry(self.current, self.reply, entry)

    def _filter(self, entry: Entry) -> Entry | None:
        """
        @return: the entry as the plugins let the current page's identity
            see it, or C{None} when it is withheld from it.
        """
        op = self.current
        if op.identity != self.op.identity:
            assert op.search is not None
            if op.search.filter.match(entry) is not True:
                return None
        return self.searcher.plugins.filterEntry(op, entry)

    def emit(self, entry: Entry | SearchReference) -> defer.Deferred[None] | None:
        if isinstance(entry, SearchReference):
            assert self.reply is not None
            self.searcher.sendReference(self.reply, entry)
            return None
        filtered = self._filter(entry)
        if filtered is None:
            return None
        if self.op.sizeLimit and self.total >= self.op.sizeLimit:
            raise _SizeLimitReached()
        if self.sent >= self.pageSize:
            # Kept as found: the next page may be asked for by another identity.
            self.pending = entry
            self.resume = defer.Deferred()
            assert self.pageDone is not None
            self.pageDone.callback(True)
            return self.resume
        return self._send(filtered)

    def cancel(self) -> None:
        """
        Stop the suspended search and release what it holds.
        """
        if self.search is not None and not self.search.called:
            self.search.addErrback(lambda f: f.trap(defer.CancelledError))
            self.search.cancel()



class Searcher:
    """
    Carries out the searches of one L{Directory<ldapd.directory.Directory>}.

    @ivar schema: the directory's schema.
    @ivar plugins: the directory's plugin chain.
    @ivar statistics: the directory's counters (entries and references sent).
    """

    def __init__(self, directory: Directory) -> None:
        """
        @param directory: the directory whose naming contexts, plugins and
            limits searches use.
        """
        self._directory = directory
        # The directory's cache of parsed request DNs, shared with its other operations.
        self._parseDN = directory._parseDN
        self.schema = directory.schema
        self.plugins = directory.plugins
        self.statistics = directory.statistics
        # Entries are immutable (a write stores a new one), so an entry's
        # encoding for an attribute selection stays right as long as the
        # entry is held.
        self._encoded: LRU[tuple[Entry, tuple[str, ...], bool], bytes] = LRU(_CACHED_RESULTS)

    async def handle(self, op: Operation, reply: Reply) -> Outcome:
        """
        Carry out a search request: route it to the view or database that
        holds its base, and send what it finds.

        @param op: the search.
        @param reply: its reply function.
        @return: how it ended.
        """
        directory = self._directory
        request = op.request
        assert isinstance(request, SearchRequest)
        _, base = self._parseDN(request.base)
        try:
            scope = Scope(request.scope)
        except ValueError:
            raise ldaperrors.LDAPProtocolError("invalid scope") from None
        if request.derefAliases not in (0, 1, 2, 3):
            raise ldaperrors.LDAPProtocolError("invalid alias dereferencing value")
        if request.sizeLimit < 0 or request.timeLimit < 0:
            raise ldaperrors.LDAPProtocolError("negative size or time limit")
        op.search = SearchParameters(
            base=base,
            scope=scope,
            filter=self._compileSearchFilter(op, request.filter),
            attributes=[a.decode("utf-8", "replace") for a in request.attributes],
            typesOnly=request.typesOnly,
        )
        await self._applyLimits(op)
        view = directory.viewFor(base)
        if view is not None:
            # The root DSE and cn=Subschema: anyone reads them whole, as
            # in slapd, so no plugin hook runs.
            def send(found: Entry | SearchReference) -> None:
                assert isinstance(found, Entry), "a view holds entries"
                self.sendEntry(op, reply, found)

            await view.backend.search(op, send)
            return Outcome()
        db = directory.databaseFor(base)
        if db is None:
            raise NoSuchObject("no such object")
        await self.plugins.pre("search", op, base)
        for oid, control in op.controls.items():
            # A control that changes what the search does (syncrepl,
            # persistent search) carries it out.
            registered = directory.extensions.control(oid)
            if registered is not None and registered.search is not None:
                responseControls = await registered.search(op, reply, db, control)
                if responseControls is not None:
                    return Outcome(controls=responseControls)
        paged = op.controls.get(controls.PAGED_RESULTS)
        if paged is not None:
            return await self._pagedSearch(op, reply, db, paged)
        await self.searchDatabase(op, reply, db)
        return Outcome()

    async def searchDatabase(
        self,
        op: Operation,
        reply: Reply,
        db: Database,
        send: Callable[[Entry], defer.Deferred[None] | None] | None = None,
    ) -> None:
        """
        Send what a search finds in one database: each entry as the plugins
        filter it (withheld if they withhold it), and continuation
        references; within the size limit and the deadline.

        @param op: the search.
        @param reply: the search's reply function.
        @param db: the database holding the search base.
        @param send: sends one filtered entry (the syncrepl provider adds
            its Sync State control); L{sendEntry} by default.
        @raise ldaperrors.LDAPSizeLimitExceeded: when more entries match than
            the size limit allows.
        """
        sent = 0
        filterEntry = self.plugins.filterEntry
        sendReference = self.sendReference
        sendEntry = self.sendEntry

        def emit(entry: Entry | SearchReference) -> defer.Deferred[None] | None:
            nonlocal sent
            if isinstance(entry, SearchReference):
                sendReference(reply, entry)
                return None
            filtered = filterEntry(op, entry)
            if filtered is None:
                return None
            if op.sizeLimit and sent >= op.sizeLimit:
                raise _SizeLimitReached()
            sent += 1
            if send is not None:
                return send(filtered)
            return sendEntry(op, reply, filtered)

        try:
            await self._withDeadline(op, db.backend.search(op, emit))
        except _SizeLimitReached:
            raise ldaperrors.LDAPSizeLimitExceeded("") from None

    def _compileSearchFilter(self, op: Operation, f: Any) -> Any:
        if not (op.identity.isRoot or op.internal):
            checkFilterSize(f, self._directory.limits.maxFilterComponents)
        return compileFilter(f, self.schema)

    async def _limitsFor(self, op: Operation) -> tuple[int, int]:
        """
        @return: the size and time limits for C{op}'s identity (0: none).
        """
        if op.identity.isRoot or op.internal:
            return 0, 0
        limits = self._directory.limits
        return await limitsFor(self._directory, op.identity, limits.identities,
                               limits.sizeLimit, limits.timeLimit)

    async def _applyLimits(self, op: Operation) -> None:
        request = op.request
        assert isinstance(request, SearchRequest)
        size, time = request.sizeLimit, request.timeLimit
        sizeLimit, timeLimit = await self._limitsFor(op)
        if sizeLimit and (not size or size > sizeLimit):
            size = sizeLimit
        if timeLimit and (not time or time > timeLimit):
            time = timeLimit
        op.sizeLimit = size
        op.deadline = op.clock.seconds() + time if time else None

    def _withDeadline(self, op: Operation, d: defer.Deferred[Any]) -> defer.Deferred[Any]:
        """
        Cancel C{d} when C{op}'s deadline passes, which turns into timeLimitExceeded.
        """
        if d.called:
            # A synchronous backend has already answered: nothing to time.
            return d

        def abandoned() -> None:
            if not d.called:
                d.cancel()

        op.onAbandon(abandoned)
        if op.deadline is None:
            return d

        def expire() -> None:
            op.timedOut = True
            d.cancel()

        timer = op.clock.callLater(max(0.0, op.deadline - op.clock.seconds()), expire)

        def stop(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            return result

        return d.addBoth(stop)

    async def _pagedSearch(
        self, op: Operation, reply: Reply, db: Database, paged: controls.PagedResults
    ) -> Outcome:
        states = op.connection.pagedSearches
        assert isinstance(op.request, SearchRequest)
        fingerprint = _fingerprint(op.request)
        if paged.cookie:
            state = states.pop(paged.cookie, None)
            if state is None or state.fingerprint != fingerprint:
                raise ldaperrors.LDAPProtocolError("paged results cookie is invalid")
            if paged.size == 0:
                state.cancel()
                return Outcome(controls=[controls.pagedResultsResponse(b"")])
        else:
            if paged.size == 0:
                return Outcome(controls=[controls.pagedResultsResponse(b"")])
            while len(states) >= _MAX_PAGED_SEARCHES:
                states.pop(next(iter(states))).cancel()
            state = _PagedSearch(self, op, fingerprint)
        # The configured size limit caps each page, not the whole result
        # set (as 389-ds and Active Directory do); the client's own size
        # limit still caps the total.
        op.sizeLimit = op.request.sizeLimit
        size = paged.size
        sizeLimit, _ = await self._limitsFor(op)
        if sizeLimit:
            size = min(size, sizeLimit)
        page = state.page(op, reply, size)
        if state.search is None:
            state.start(db.backend)
        op.onAbandon(state.cancel)
        try:
            more = await self._withDeadline(op, page)
        except _SizeLimitReached:
            state.cancel()
            raise ldaperrors.LDAPSizeLimitExceeded("") from None
        except BaseException:
            state.cancel()
            raise
        cookie = b""
        if more:
            cookie = secrets.token_bytes(8)
            state.cookie = cookie
            states[cookie] = state
        return Outcome(controls=[controls.pagedResultsResponse(cookie)])

    def sendReference(self, reply: Reply, reference: SearchReference) -> None:
        """
        Send a continuation reference of a search. Unlike entries, it counts
        toward neither the size limit nor the page size (slapd counts only
        entries too), and no plugin filters it.

        @param reply: the search's reply function.
        @param reference: the reference, from the backend.
        """
        self.statistics.referrals += 1
        reply(encodeSearchReference(uri.encode("utf-8") for uri in reference.uris), ())

    def sendEntry(
        self, op: Operation, reply: Reply, entry: Entry, counted: bool = True
    ) -> defer.Deferred[None] | None:
        """
        Send one search result with the attributes the request selected.

        @param op: the search.
        @param reply: the operation's reply function.
        @param entry: the entry, already filtered by the plugins.
        @param counted: whether hasSubordinates and numSubordinates are
            computed when asked for. The syncrepl provider sends entries as
            stored: slapd's consumer refuses numSubordinates (its schema
            lacks it), and the counts would cost a search per entry.
        @return: C{None} once it is sent; or, when hasSubordinates or
            numSubordinates is asked for, a Deferred that fires when the
            entry's children are counted and it is sent.
        """
        assert op.search is not None
        wanted = _subordinateAttributes(op.search.attributes) if counted else set()
        if wanted and entry.dn and self._directory.viewFor(entry.ndn) is None:
            return defer.Deferred.fromCoroutine(self._sendCounted(op, reply, entry, wanted))
        self._sendSelected(op, reply, entry, [])
        return None

    async def _sendCounted(self, op: Operation, reply: Reply, entry: Entry, wanted: set[str]) -> None:
        """
        Send an entry with the subordinate counts asked for.
        """
        count = await self._countSubordinates(op, entry.ndn,
                                              onlyOne="numsubordinates" not in wanted)
        computed = []
        if "hassubordinates" in wanted:
            computed.append(("hasSubordinates", [b"TRUE" if count else b"FALSE"]))
        if "numsubordinates" in wanted:
            computed.append(("numSubordinates", [str(count).encode()]))
        self._sendSelected(op, reply, entry, computed)

    async def _countSubordinates(self, client: Operation, ndn: DN, onlyOne: bool) -> int:
        """
        Count an entry's children with a one-level search of its backend,
        which works the same for every backend. Only the children the
        client may know of (C{disclose_entry}) count: the counts tell of no
        hidden entry.

        @param client: the search the counts are sent in.
        @param ndn: the entry's normalised name.
        @param onlyOne: stop at the first child (for hasSubordinates).
        @return: the number of children (at most 1 when C{onlyOne}).
        """
        db = self._directory.databaseFor(ndn)
        if db is None:
            return 0
        checked = self.plugins.has("disclose_entry") and not client.internal
        op = self._directory.internalOperation()
        op.search = SearchParameters(
            base=ndn,
            scope=Scope.ONE,
            filter=everything(self.schema),
            attributes=["1.1"],
            typesOnly=True,
        )
        count = 0

        async def counted(child: Entry) -> None:
            nonlocal count
            if await self.plugins.discloses(client, child):
                count += 1
                if onlyOne:
                    raise _SubordinateFound()

        def emit(child: Entry | SearchReference) -> defer.Deferred[None] | None:
            nonlocal count
            if isinstance(child, SearchReference):
                return None
            if checked:
                return defer.Deferred.fromCoroutine(counted(child))
            count += 1
            if onlyOne:
                raise _SubordinateFound()
            return None

        try:
            await db.backend.search(op, emit)
        except _SubordinateFound:
            pass
        return count

    def _sendSelected(
        self, op: Operation, reply: Reply, entry: Entry, computed: list[tuple[str, list[bytes]]]
    ) -> None:
        """
        Send an entry with the attributes the search selected, encoded once
        for each selection while the entry stays in the cache.
        """
        search = op.search
        assert search is not None
        key = (entry, tuple(search.attributes), search.typesOnly)
        pdu = None if computed else self._encoded.get(key)
        if pdu is None:
            pdu = encodeSearchEntry(
                str(entry.dn).encode("utf-8"),
                self._selectAttributes(entry, search.attributes, search.typesOnly, computed),
            )
            if not computed:
                self._encoded.put(key, pdu)
        self.statistics.entries += 1
        reply(pdu, ())

    def _selectAttributes(
        self,
        entry: Entry,
        requested: list[str],
        typesOnly: bool,
        computed: list[tuple[str, list[bytes]]],
    ) -> list[tuple[bytes, tuple[bytes, ...]]]:
        allUser = not requested or "*" in requested
        allOperational = "+" in requested
        wanted: list[tuple[AttributeType, tuple[str, ...]]] = []
        for name in requested:
            if name in ("*", "+", "1.1"):
                continue
            try:
                wanted.append(parseDescription(self.schema, name))
            except ldaperrors.LDAPUndefinedAttributeType:
                continue
        chosen = []
        for attr in withVirtual(entry, self.schema, allOperational, wanted, computed):
            operational = attr.type.operational
            # The suppliers' merge state goes only to those who name it
            # (ldapd's own consumers), not to every '+' (slapd's consumer,
            # whose schema lacks it).
            byPlus = allOperational and attr.type.name != ATTRIBUTE_CSN
            take = (byPlus if operational else allUser) or any(
                attr.type in self.schema.subtypes(at) and set(options) <= set(attr.options)
                for at, options in wanted
            )
            if take:
                chosen.append((attr.description.encode(), () if typesOnly else attr.values))
        return chosen


def _subordinateAttributes(requested: list[str]) -> set[str]:
    """
    @param requested: a search's attribute list.
    @return: which of hasSubordinates and numSubordinates (lower-cased) it
        asks for, by name or with C{+}.
    """
    names = {name.lower() for name in requested}
    if "+" in names:
        return {"hassubordinates", "numsubordinates"}
    return names & {"hassubordinates", "numsubordinates"}



def _fingerprint(request: SearchRequest) -> tuple[object, ...]:
    """
    What must not change between the pages of one paged search (RFC 2696 §3).
    """
    return (request.base, request.scope, request.filter, request.attributes)


def withVirtual(
    entry: Entry,
    schema: Schema,
    allOperational: bool,
    wanted: list[tuple[AttributeType, tuple[str, ...]]],
    computed: list[tuple[str, list[bytes]]],
) -> Iterable[Any]:
    """
    The entry's attributes plus the virtual operational attributes
    (entryDN, subschemaSubentry, and the C{computed} subordinate counts)
    when they are asked for.

    @param entry: the entry.
    @param schema: the schema.
    @param allOperational: whether every operational attribute is asked for.
    @param wanted: the attribute types asked for by name, with options.
    @param computed: the subordinate counts computed for the entry.
    @return: the L{ldapd.entry.Attribute}s.
    """
    yield from entry
    names = {at.name.lower() for at, _ in wanted}
    if not (allOperational or names & {"entrydn", "subschemasubentry"} or computed):
        return
    extra = list(computed)
    if not entry.get("entryDN"):
        extra.append(("entryDN", [str(entry.dn).encode("utf-8")]))
    if entry.dn and not entry.get("subschemaSubentry"):
        extra.append(("subschemaSubentry", [SUBSCHEMA_DN.encode()]))
    yield from Entry(entry.dn, extra, schema, entry.ndn)
