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
numSubordinates) are added here too, and tested when a filter asks for
them; and the controls that change what a search returns are carried out
here: the Assertion on the base entry (RFC 4528), Matched Values (RFC
3876), Subentries (RFC 3672, which also hides subentries from searches
without it but of their base), and RFC 4529's C{@objectClass} attribute
lists.

One search's path::

    Directory.execute -> Searcher.handle -> backend.search(op, emit)
        -> emit: Searcher.filterEntry -> Searcher.sendEntry -> encodeSearchEntry -> reply
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from twisted.python.failure import Failure

from ldapd import controls, sorting
from ldapd._cache import LRU
from ldapd._codec import encodeSearchEntry, encodeSearchReference
from ldapd.dn import DN
from ldapd.entry import Entry, SearchReference, parseDescription
from ldapd.filters import (
    And,
    Equality,
    Filter,
    InChain,
    Not,
    Or,
    assertions,
    compileFilter,
    everything,
    loosened,
)
from ldapd.limits import checkFilterSize, limitsFor
from ldapd.operation import Operation, Scope, SearchParameters
from ldapd.requests import SearchRequest
from ldapd.results import NoSuchObject, Outcome, Reply
from ldapd.schema import AttributeType, Schema
from ldapd.syncrepl.multi import ATTRIBUTE_CSN
from ldapd.views import SUBSCHEMA_DN

if TYPE_CHECKING:
    from ldapd.directory import Database, Directory

__all__ = ["MAX_CHAIN", "Searcher", "followChains", "withVirtual"]

#: How many encoded search results (entry and attribute selection) it keeps.
_CACHED_RESULTS = 4096

#: The attribute lists (and the entry shapes for each) whose selection is kept.
_CACHED_SELECTIONS = 1024

#: The scopes by their value in a request: looked up, where calling the
#: enumeration runs its Python-level C{__call__} for every search.
_SCOPES = {scope.value: scope for scope in Scope}

_MAX_PAGED_SEARCHES = 16

#: The objectClass values of a subentry (RFC 3672 §2), lower-cased.
_SUBENTRY = frozenset({b"subentry", b"2.5.17.0"})


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
        return self.searcher.sendEntry(self.current, self.reply, entry,
                                       counted=not self.searcher.counts(self.op))

    def _filter(self, entry: Entry) -> Entry | None:
        """
        @return: the entry as the plugins let the current page's identity
            see it, or C{None} when it is withheld from it.
        """
        op = self.current
        if op.identity != self.op.identity:
            assert op.search is not None
            tested = op.search.subordinateFilter or op.search.filter
            if tested.match(entry) is not True:
                return None
        return self.searcher.filterEntry(op, entry)

    def emit(self, entry: Entry | SearchReference) -> defer.Deferred[None] | None:
        if isinstance(entry, SearchReference):
            assert self.reply is not None
            self.searcher.sendReference(self.reply, entry)
            return None
        return self.searcher.whenCounted(self.op, entry, self._emitSelected)

    def _emitSelected(self, entry: Entry) -> defer.Deferred[None] | None:
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
        objectClass = self.schema.attributeType("objectClass")
        assert objectClass is not None
        self._objectClass = objectClass
        # The attribute types counted rather than stored.
        self._counted = frozenset(
            t for t in (self.schema.attributeType("hasSubordinates"),
                        self.schema.attributeType("numSubordinates")) if t is not None)
        self._numSubordinates = self.schema.attributeType("numSubordinates")
        # What an attribute list asks for, and for each shape of entry
        # (L{Entry.shape}: the many entries of one object class share
        # one) the positions and descriptions of the attributes it selects.
        self._selections: LRU[tuple[str, ...], _Selection] = LRU(_CACHED_SELECTIONS)
        self._positions: LRU[tuple[object, tuple[str, ...]], tuple[tuple[int, bytes], ...]] = (
            LRU(_CACHED_SELECTIONS))

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
        dn, base = self._parseDN(request.base)
        scope = _SCOPES.get(request.scope)
        if scope is None:
            raise ldaperrors.LDAPProtocolError("invalid scope")
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
            raise directory.names.outside(dn, scope, NoSuchObject("no such object"))
        db = await directory.names.searchBase(op, db, dn)
        base = op.search.base
        await self.plugins.pre("search", op, base)
        await followChains(directory, op, db)
        if controls.ASSERTION in op.controls:
            await self._checkAssertion(op, base)
        for oid, control in op.controls.items():
            # A control that changes what the search does (syncrepl,
            # persistent search) carries it out.
            registered = directory.extensions.control(oid)
            if registered is not None and registered.search is not None:
                responseControls = await registered.search(op, reply, db, control)
                if responseControls is not None:
                    return Outcome(controls=responseControls)
        self._prepare(op)
        backend = directory.names.searching(op, db)
        paged = op.controls.get(controls.PAGED_RESULTS)
        if sorting.SORT_REQUEST in op.controls or sorting.VLV_REQUEST in op.controls:
            return await sorting.sortedSearch(self, op, reply, db, _fingerprint(request), paged,
                                              _MAX_PAGED_SEARCHES, backend)
        if paged is not None:
            return await self._pagedSearch(op, reply, backend, paged)
        await self.searchDatabase(op, reply, db, backend=backend)
        return Outcome()

    async def _checkAssertion(self, op: Operation, base: DN) -> None:
        """
        Test the Assertion control (RFC 4528), if the search has one, on its
        base entry.

        @raise controls.AssertionFailed: if it is not true of it.
        """
        assertion = await self._directory.prepareAssertion(op, base)
        if assertion is None:
            return
        try:
            entry = await self._directory.get(self._directory.internalOperation(), base)
        except NoSuchObject:
            return  # the search answers noSuchObject itself
        assertion.check(entry)

    def _prepare(self, op: Operation) -> None:
        """
        Prepare what an ordinary search (not one a control carries out)
        does with each entry besides testing its filter: count its children
        when the filter tests hasSubordinates or numSubordinates, which
        backends cannot test (L{SearchParameters.subordinateFilter}), or
        when the attribute list asks for them; and the Matched Values
        control's filter items.
        """
        search = op.search
        assert search is not None
        f = search.filter
        # Most filters are one assertion on a stored attribute: no walk.
        if isinstance(f, (And, Or, Not)) or getattr(f, "type", None) in self._counted:
            loose = loosened(f, self._counted)
            if loose is not f:
                search.subordinateFilter, search.filter = f, loose
        search.counted = search.subordinateFilter is not None or bool(
            search.attributes and _subordinateAttributes(search.attributes))
        if op.controls:
            matched = op.controls.get(controls.MATCHED_VALUES)
            if matched is not None:
                search.matchedValues = [compileFilter(f, self.schema) for f in matched.filters]

    def whenCounted(
        self, op: Operation, entry: Entry,
        then: Callable[[Entry], defer.Deferred[None] | None],
    ) -> defer.Deferred[None] | None:
        """
        Pass an entry a backend's search found on to C{then}: at once when
        the search neither tests nor returns subordinate counts; otherwise
        once its children are counted, with the counts as attributes, and
        only if the whole filter is true of it.

        @return: what C{then} returns, or a Deferred firing when it is done.
        """
        search = op.search
        assert search is not None
        if not search.counted:
            return then(entry)

        async def counted() -> None:
            withCounts = await self._withCounts(op, entry)
            tested = search.subordinateFilter
            if tested is None or tested.match(withCounts) is True:
                waiting = then(withCounts)
                if waiting is not None:
                    await waiting

        return defer.Deferred.fromCoroutine(counted())

    async def _withCounts(self, op: Operation, entry: Entry) -> Entry:
        """
        @return: the entry with its hasSubordinates and numSubordinates.
        """
        search = op.search
        assert search is not None
        onlyOne = "numsubordinates" not in _subordinateAttributes(search.attributes) and not (
            search.subordinateFilter is not None and any(
                getattr(node, "type", None) is self._numSubordinates
                for node in assertions(search.subordinateFilter)))
        count = await self._countSubordinates(op, entry.ndn, onlyOne)
        attributes: list[tuple[str, Iterable[bytes]]] = [(a.description, a.values) for a in entry]
        attributes.append(("hasSubordinates", [b"TRUE" if count else b"FALSE"]))
        if not onlyOne:
            attributes.append(("numSubordinates", [str(count).encode()]))
        return Entry(entry.dn, attributes, self.schema, entry.ndn)

    def filterEntry(self, op: Operation, entry: Entry) -> Entry | None:
        """
        The entry as a search sends it: withheld if it is a subentry the
        search does not show (RFC 3672: only to a search of its base, or
        with the Subentries control, which shows only them), or if the
        plugins withhold it (C{filter_entry}).

        @param op: the search.
        @param entry: an entry its backend found.
        @return: the entry to send, or C{None}.
        """
        search = op.search
        assert search is not None
        subentries = op.controls.get(controls.SUBENTRIES)
        if subentries is not None:
            if self._isSubentry(entry) is not subentries.visibility:
                return None
        elif search.scope != Scope.BASE and self._isSubentry(entry):
            return None
        return self.plugins.filterEntry(op, entry)

    def counts(self, op: Operation) -> bool:
        """
        @return: whether the search's entries carry their subordinate
            counts (L{whenCounted}) when they are filtered and sent.
        """
        return op.search is not None and op.search.counted

    def _isSubentry(self, entry: Entry) -> bool:
        """
        @return: whether the entry is of the C{subentry} object class.
        """
        # Asked of every entry a search finds: the stored values are read
        # as they are (a subentry names its class, RFC 3672 §2).
        attr = entry.attribute(self._objectClass)
        if attr is None:
            return False
        for value in attr.values:
            if value.lower() in _SUBENTRY:
                return True
        return False

    async def searchDatabase(
        self,
        op: Operation,
        reply: Reply,
        db: Database,
        send: Callable[[Entry], defer.Deferred[None] | None] | None = None,
        backend: Any = None,
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
        @param backend: what runs the search (L{ldapd.naming.Names.searching}
            for a client's); C{db}'s backend, which sends entries as stored,
            by default.
        @raise ldaperrors.LDAPSizeLimitExceeded: when more entries match than
            the size limit allows.
        """
        sent = 0
        filterEntry = self.filterEntry
        sendReference = self.sendReference
        sendEntry = self.sendEntry
        counting = self.counts(op)

        def emit(entry: Entry | SearchReference) -> defer.Deferred[None] | None:
            if isinstance(entry, SearchReference):
                sendReference(reply, entry)
                return None
            if counting:
                return self.whenCounted(op, entry, selected)
            return selected(entry)

        def selected(entry: Entry) -> defer.Deferred[None] | None:
            nonlocal sent
            filtered = filterEntry(op, entry)
            if filtered is None:
                return None
            if op.sizeLimit and sent >= op.sizeLimit:
                raise _SizeLimitReached()
            sent += 1
            if send is not None:
                return send(filtered)
            return sendEntry(op, reply, filtered, counted=not counting)

        try:
            await self._withDeadline(
                op, (db.backend if backend is None else backend).search(op, emit))
        except _SizeLimitReached:
            raise ldaperrors.LDAPSizeLimitExceeded("") from None

    def _compileSearchFilter(self, op: Operation, f: Any) -> Any:
        if not (op.identity.isRoot or op.internal):
            checkFilterSize(f, self._directory.limits.maxFilterComponents)
        return compileFilter(f, self.schema)

    async def identityLimits(self, op: Operation) -> tuple[int, int]:
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
        sizeLimit, timeLimit = await self.identityLimits(op)
        if sizeLimit and (not size or size > sizeLimit):
            size = sizeLimit
        if timeLimit and (not time or time > timeLimit):
            time = timeLimit
        op.sizeLimit = size
        op.deadline = op.clock.seconds() + time if time else None

    def maxSortedEntries(self, op: Operation) -> int:
        """
        @return: the most entries a sort may hold for C{op} (0: no limit);
            the server's own searches have no limit.
        """
        return 0 if op.internal else self._directory.limits.maxSortedEntries

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

        def ebCanceled(failure: Failure) -> Failure:
            # Stopped by a Cancel request (RFC 3909): canceled, not an error.
            failure.trap(defer.CancelledError)
            if op.canceled and not op.timedOut:
                op.check()
            return failure

        op.onAbandon(abandoned)
        d.addErrback(ebCanceled)
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
        self, op: Operation, reply: Reply, backend: Any, paged: controls.PagedResults
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
        sizeLimit, _ = await self.identityLimits(op)
        if sizeLimit:
            size = min(size, sizeLimit)
        page = state.page(op, reply, size)
        if state.search is None:
            state.start(backend)
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
            computed when asked for: not when the entry has them already
            (L{whenCounted}); and the syncrepl provider sends entries as
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
        self._sendSelected(op, reply, entry, await self._computed(op, entry, wanted))

    async def _computed(self, op: Operation, entry: Entry, wanted: set[str]
                        ) -> list[tuple[str, list[bytes]]]:
        """
        @param wanted: which of hasSubordinates and numSubordinates
            (lower-cased) to count (L{_subordinateAttributes}).
        @return: those of the entry, as attributes.
        """
        if not wanted or not entry.dn or self._directory.viewFor(entry.ndn) is not None:
            return []
        count = await self._countSubordinates(op, entry.ndn,
                                              onlyOne="numsubordinates" not in wanted)
        computed = []
        if "hassubordinates" in wanted:
            computed.append(("hasSubordinates", [b"TRUE" if count else b"FALSE"]))
        if "numsubordinates" in wanted:
            computed.append(("numSubordinates", [str(count).encode()]))
        return computed

    async def encodeRead(self, op: Operation, entry: Entry, attributes: Iterable[str]
                         ) -> bytes | None:
        """
        Encode an entry for a Pre-Read or Post-Read control (RFC 4527): a
        SearchResultEntry with the attributes selected as a search selects
        them, and only what the plugins let the client read of it.

        @param op: the write.
        @param entry: the entry before or after it.
        @param attributes: the control's attribute selection.
        @return: the control's value, or C{None} when the client may not
            read the entry.
        """
        visible = entry if op.internal else self.plugins.filterEntry(op, entry)
        if visible is None:
            return None
        requested = list(attributes)
        computed = await self._computed(op, entry, _subordinateAttributes(requested))
        return encodeSearchEntry(str(entry.dn).encode("utf-8"),
                                 self._selectAttributes(visible, requested, False, computed))

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
        # Entries with their counts are made for one search: not cached.
        cached = not computed and search.matchedValues is None and not search.counted
        pdu = self._encoded.get(key) if cached else None
        if pdu is None:
            pdu = encodeSearchEntry(
                str(entry.dn).encode("utf-8"),
                self._selectAttributes(entry, search.attributes, search.typesOnly, computed,
                                       search.matchedValues),
            )
            if cached:
                self._encoded.put(key, pdu)
        self.statistics.entries += 1
        reply(pdu, ())

    def _selectAttributes(
        self,
        entry: Entry,
        requested: list[str],
        typesOnly: bool,
        computed: list[tuple[str, list[bytes]]],
        matchedValues: list[Filter] | None = None,
    ) -> list[tuple[bytes, tuple[bytes, ...]]]:
        """
        The attributes of an entry a search's attribute list selects
        (RFC 4511 §4.5.1.8, with RFC 4529's C{@objectClass} lists), with
        their values, or only those the Matched Values control's filter
        items match (RFC 3876: an attribute none of whose values matches
        is left out).
        """
        key = tuple(requested)
        selection = self._selections.get(key)
        if selection is None:
            selection = _Selection(self.schema, requested)
            self._selections.put(key, selection)
        if not (selection.virtual or computed) and matchedValues is None:
            # The entry's own attributes only: which ones is the same for
            # every entry of its shape.
            shapeKey = (entry.shape, key)
            positions = self._positions.get(shapeKey)
            if positions is None:
                positions = tuple(
                    (i, ";".join((at.name,) + options).encode())
                    for i, (at, options) in enumerate(entry.descriptions)
                    if selection.takes(at, options)
                )
                self._positions.put(shapeKey, positions)
            return entry.selected(positions, typesOnly)
        chosen = []
        for attr in withVirtual(entry, self.schema, selection.allOperational, selection.wanted,
                                computed):
            if not selection.takes(attr.type, attr.options):
                continue
            values = attr.values
            if matchedValues is not None:
                values = tuple(v for v in values if any(
                    f.match(Entry(entry.dn, [(attr.description, (v,))], self.schema, entry.ndn))
                    is True for f in matchedValues))
                if not values:
                    continue
            chosen.append((attr.description.encode(), () if typesOnly else values))
        return chosen


class _Selection:
    """
    What a search's attribute list asks for.

    @ivar allUser: every user attribute (no list, or C{*}).
    @ivar allOperational: every operational attribute (C{+}).
    @ivar wanted: the types asked for by name or by an C{@objectClass}
        list (RFC 4529), with their options.
    @ivar virtual: whether it asks for a virtual attribute (entryDN,
        subschemaSubentry, or all operational ones), which the entry
        itself may not hold.
    """

    def __init__(self, schema: Schema, requested: list[str]) -> None:
        self._schema = schema
        self.allUser = not requested or "*" in requested
        self.allOperational = "+" in requested
        self.wanted: list[tuple[AttributeType, tuple[str, ...]]] = []
        for name in requested:
            if name in ("*", "+", "1.1"):
                continue
            if name.startswith("@"):
                self.wanted.extend((at, ()) for at in _classAttributes(schema, name[1:]))
                continue
            try:
                self.wanted.append(parseDescription(schema, name))
            except ldaperrors.LDAPUndefinedAttributeType:
                continue
        self.virtual = _asksVirtual(self.allOperational, self.wanted)

    def takes(self, at: AttributeType, options: tuple[str, ...]) -> bool:
        """
        @return: whether an attribute of type C{at} with C{options} is selected.
        """
        # The suppliers' merge state goes only to those who name it (ldapd's
        # own consumers), not to every '+' (slapd's consumer, whose schema
        # lacks it).
        if (self.allOperational and at.name != ATTRIBUTE_CSN) if at.operational else self.allUser:
            return True
        return any(
            at in self._schema.subtypes(wantedType) and set(wantedOptions) <= set(options)
            for wantedType, wantedOptions in self.wanted
        )


def _classAttributes(schema: Schema, name: str) -> list[AttributeType]:
    """
    The attribute types an C{@objectClass} attribute list names (RFC 4529):
    those the class and its superclasses require or allow; none for an
    unknown class, as slapd.
    """
    oc = schema.objectClass(name)
    if oc is None:
        return []
    types: list[AttributeType] = []
    for oid in schema.superclasses(oc.oid):
        sup = schema.objectClass(oid)
        if sup is not None:
            types.extend(sup.must)
            types.extend(sup.may)
    return types


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


def _asksVirtual(allOperational: bool, wanted: list[tuple[AttributeType, tuple[str, ...]]]) -> bool:
    """
    @return: whether a search asking for every operational attribute or no,
        and for the types C{wanted}, asks for a virtual attribute.
    """
    return allOperational or any(
        at.name.lower() in ("entrydn", "subschemasubentry") for at, _ in wanted
    )


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
    if not (_asksVirtual(allOperational, wanted) or computed):
        return
    extra = list(computed)
    if not entry.get("entryDN"):
        extra.append(("entryDN", [str(entry.dn).encode("utf-8")]))
    if entry.dn and not entry.get("subschemaSubentry"):
        extra.append(("subschemaSubentry", [SUBSCHEMA_DN.encode()]))
    yield from Entry(entry.dn, extra, schema, entry.ndn)


#: The most entries one LDAP_MATCHING_RULE_IN_CHAIN assertion may reach
#: (L{followChains}).
MAX_CHAIN = 10000


async def followChains(directory: Directory, op: Operation, db: Database) -> None:
    """
    Follow the chains of a search's LDAP_MATCHING_RULE_IN_CHAIN assertions
    (L{InChain}) through the database holding its base, as the server: from
    the DN asserted, the entries whose C{attr} names it, then those whose
    C{attr} names one of them, and so on; each entry once, so that a cycle
    of nested groups ends.

    @param op: the search, with its compiled filter.
    @param db: the database holding its base.
    @raise ldaperrors.LDAPAdminLimitExceeded: if a chain reaches more than
        L{MAX_CHAIN} entries.
    """
    assert op.search is not None
    for node in assertions(op.search.filter):
        if not isinstance(node, InChain) or node.reached is not None:
            continue
        reached: set[str] = set()
        frontier = [node.key]
        while frontier:
            for entry in await _holding(directory, db, node.type, frontier.pop()):
                name = str(entry.ndn)
                if name in reached:
                    continue
                if len(reached) >= MAX_CHAIN:
                    raise ldaperrors.LDAPAdminLimitExceeded(
                        f"{node.type.name}: the chain reaches more than {MAX_CHAIN} entries")
                reached.add(name)
                frontier.append(name)
        node.reached = frozenset(reached)


async def _holding(directory: Directory, db: Database, at: AttributeType, key: Any) -> list[Entry]:
    """
    @return: the entries of C{db} with a value of C{at} whose equality key
        is C{key}, read as the server (from the type's index, if any).
    """
    op = directory.internalOperation()
    op.search = SearchParameters(db.normalizedSuffix, Scope.SUB, Equality(at, (), key))
    found: list[Entry] = []

    def emit(entry: Entry | SearchReference) -> None:
        if isinstance(entry, Entry):
            found.append(entry)

    await db.backend.search(op, emit)
    return found
