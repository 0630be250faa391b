"""
The syncrepl provider (RFC 4533), as slapd's syncprov overlay serves it,
built on the changelog the C{changelog} plugin keeps (L{IChangelog}).

A search with the Sync Request control is first a refresh:

  - without a cookie: the present phase, every matching entry in full
    (state C{add}), so that the consumer removes what it was not told about
    (refreshDeletes FALSE);
  - with a cookie the changelog no longer covers (its oldest record is
    newer than the cookie's CSN): the present phase, every matching entry's
    syncUUID in syncIdSet messages, ended by refreshPresent so that the
    consumer removes the others; then a delete phase, the entries changed
    since the cookie in full (refreshDeletes TRUE);
  - with a covered cookie: the changes since, from the changelog: each
    entry they changed once, as it is now and under its current name if
    the search returns it, or as a C{delete} (its syncUUID) if it is gone
    or no longer returned, in an order the consumer can apply
    (L{ldapd.syncrepl.catchup}) (refreshDeletes TRUE).

A refreshOnly search then ends with the Sync Done control; refreshAndPersist
sends a Sync Info message and goes on tailing the changelog, sending the
entries each run of changes touched in the same way as they commit (woken
by the Directory's change feed, and every second for changes other
processes commit to a shared PostgreSQL database), until it is abandoned,
canceled (RFC 3909) or its connection closes.

What a client may not read it is never sent, nor told the name of: a
change to such an entry sends nothing but a new cookie, as in slapd; and
what it may read is decided anew for each run of changes (group
memberships and rules revoked since the search began apply to it). Cookies are slapd's,
C{rid=<the consumer's rid>,csn=<contextCSN>}.

A refresh from a cookie the log covers sends the changes the log holds
after the record of the CSN the cookie names, whatever their CSNs (a change
stamped before another may commit after it, and a consumer may have gone
in between), and, before that record or when the log holds none, those
newer than that CSN (L{_ResumeFilter}). Among several suppliers of a
database (L{Database.suppliers}) the cookie carries one CSN per server ID,
each judged so, and a consumer is never sent the changes of its own server
ID (as slapd's syncprov). The persist stage sends every change committed
after the refresh, by log position. A present phase (the log no longer
covers the cookie) sends in full the entries whose entryCSN is newer than
the cookie: one that a late commit of an earlier-stamped change touched is
named, not sent.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, Sequence, Union

from ldaptor.protocols.ldap import ldaperrors
from twisted.logger import Logger

from ldapd._codec import Control, encodeIntermediateResponse, encodeSearchEntry
from ldapd.changes import DELETE, RENAME, ChangeRecord
from ldapd.csn import csnSID, csnVector, mergeCSNs
from ldapd.dn import DN
from ldapd.entry import Entry, SearchReference
from ldapd.filters import byUUID, everything
from ldapd.interfaces import IChangelog
from ldapd.operation import Operation, Scope, SearchParameters
from ldapd.requests import SearchRequest
from ldapd.results import NoSuchObject, Reply
from ldapd.syncrepl._persist import Watch, inScope, visible, withControls
from ldapd.syncrepl.catchup import Step, namesBefore, order, renamedDN, settledCSNs, uuidKey
from ldapd.syncrepl.codec import ADD as STATE_ADD
from ldapd.syncrepl.codec import DELETE as STATE_DELETE
from ldapd.syncrepl.codec import (
    MODIFY,
    NEW_COOKIE,
    REFRESH_AND_PERSIST,
    REFRESH_DELETE,
    REFRESH_PRESENT,
    SYNC_DONE,
    SYNC_ID_SET,
    SYNC_INFO,
    SYNC_STATE,
    Cookie,
    SyncDone,
    SyncInfo,
    SyncRequest,
    SyncState,
    uuidToBytes,
)
from ldapd.syncrepl.multi import ATTRIBUTE_CSN

if TYPE_CHECKING:
    from ldapd.directory import Database, Directory

__all__ = ["SyncProvider", "SyncRefreshRequired"]

#: Changelog records read at a time.
_BATCH = 500

#: How many times a catch-up takes in the renames of ancestors committed
#: while it read the entries, before it sends what it has.
_EXTENSIONS = 5

#: The syncUUIDs of unchanged entries sent in one syncIdSet in the present
#: phase (slapd's SLAP_SYNCUUID_SET_SIZE).
_ID_SET_SIZE = 100

#: Entries as they were before a change that a persist stage keeps from the
#: change feed until the change is sent.
_BEFORE_KEPT = 10000

#: Seconds between two looks at the changelog in the persist phase when
#: no change of this process wakes it.
_POLL_INTERVAL = 1.0

_SYNC_INFO = SYNC_INFO.encode()


class SyncRefreshRequired(ldaperrors.LDAPException):
    """
    e-syncRefreshRequired (RFC 4533 §2.2): the provider cannot bring the
    consumer up to date from where it is; it must refresh without its cookie
    (slapd's consumer does at once).
    """

    resultCode = 4096
    name = b"e-syncRefreshRequired"


class SyncProvider:
    """
    Serves searches with the Sync Request control, for each database whose
    backend keeps a changelog.
    """

    _log = Logger()

    def __init__(self, directory: Directory, pollInterval: float = _POLL_INTERVAL) -> None:
        """
        @param directory: the directory served.
        @param pollInterval: seconds between two looks at the changelog in
            the persist phase when no change of this process wakes it.
        """
        self.directory = directory
        self.pollInterval = pollInterval

    def serves(self, db: Database) -> bool:
        """
        @return: whether the database keeps the changelog syncrepl needs.
        """
        return IChangelog.providedBy(db.backend)  # type: ignore[no-any-return]

    async def searchWith(
        self, op: Operation, reply: Reply, db: Database, request: SyncRequest
    ) -> Sequence[Control] | None:
        """
        Carry out a search with the Sync Request control, when it is on a
        database that keeps a changelog (the control's search handler,
        L{ldapd.extensions.ControlType.search}).

        @return: what L{search} returns; or C{None} for a search on another
            database when the control is not critical: it runs as an
            ordinary search.
        @raise ldaperrors.LDAPUnavailableCriticalExtension: when the control
            is critical and the database keeps no changelog.
        """
        if self.serves(db):
            return await self.search(op, reply, db, request)
        if request.criticality:
            raise ldaperrors.LDAPUnavailableCriticalExtension(
                "no syncrepl provider for this database"
            )
        return None

    async def search(
        self, op: Operation, reply: Reply, db: Database, request: SyncRequest
    ) -> Sequence[Control]:
        """
        Carry out a search with the Sync Request control.

        @param op: the search, with its parameters and limits set.
        @param reply: its reply function.
        @param db: the database holding its base.
        @param request: the Sync Request control.
        @return: the controls of the SearchResultDone of a refreshOnly
            search; a refreshAndPersist search only ends by an exception
            (L{ldapd.operation.Abandoned} when abandoned).
        @raise ldaperrors.LDAPProtocolError: for a malformed cookie or a
            search that dereferences aliases (as slapd).
        @raise ldaperrors.LDAPUnwillingToPerform: when the cookie is newer
            than anything this server has.
        @raise SyncRefreshRequired: when a refreshAndPersist consumer falls
            so far behind that the changelog no longer holds what it has not
            been sent.
        """
        assert isinstance(op.request, SearchRequest)
        if op.request.derefAliases & 1:
            raise ldaperrors.LDAPProtocolError("illegal value for derefAliases")
        try:
            cookie = Cookie.parse(request.cookie) if request.cookie is not None else Cookie()
        except ValueError as e:
            raise ldaperrors.LDAPProtocolError(f"invalid sync cookie: {e}") from None
        session = _Session(self, op, reply, db, cookie)
        persist = request.mode == REFRESH_AND_PERSIST
        unsubscribe = None
        if persist:
            unsubscribe = self.directory.subscribe(session.changed)
        try:
            refreshDeletes = await session.refresh(cookie.csn)
            self._log.info(
                "conn={conn} op={msgid} syncrepl {mode} rid={rid}: {phase} refresh, {sent} "
                "entries sent, cookie {cookie}",
                conn=op.connection.id,
                msgid=op.messageId,
                mode="refreshAndPersist" if persist else "refreshOnly",
                rid=cookie.rid,
                phase=session.phase,
                sent=session.sent,
                cookie=session.cookie().decode(),
            )
            if not persist:
                done = SyncDone(session.cookie(), refreshDeletes)
                return [Control(SYNC_DONE, False, done.encode())]
            kind = REFRESH_DELETE if refreshDeletes else REFRESH_PRESENT
            session.info(SyncInfo(kind, session.cookie(), refreshDone=True))
            # As in slapd, where the persist phase is detached from the
            # search: its time and size limits applied to the refresh only.
            op.deadline = None
            await session.persist()
        finally:
            if unsubscribe is not None:
                unsubscribe()


def _uuidOf(entry: Entry) -> bytes | None:
    values = entry.get("entryUUID")
    if not values:
        return None
    try:
        return uuidToBytes(values[0])
    except ValueError:
        return None


@dataclass
class _Run:
    """
    Changes read from a changelog.

    @ivar records: the changes, in log order.
    @ivar end: the number of the last record read.
    @ivar csn: the CSN of the last record read, if any was.
    """

    records: list[ChangeRecord]
    end: int
    csn: bytes | None


class _ResumeFilter:
    """
    What of the changelog a consumer is sent in a refresh from its cookie:
    every change after the record whose CSN its cookie names (the position
    it had reached: a change stamped before that one but committed after it
    is still to be sent), or, before that record or without one in the
    log, the changes newer than that CSN. With one supplier the cookie
    names one CSN; among suppliers it names one per server ID, each judged
    apart, and a change of the consumer's own server ID is never sent.

    Records are to be shown to L{wanted} in log order, each once.
    """

    def __init__(self, held: dict[int | None, bytes], consumerSid: int | None,
                 bySid: bool) -> None:
        """
        @param held: the cookie's CSNs: by server ID, or one under C{None}.
        @param consumerSid: the consumer's server ID, if it sent one.
        @param bySid: whether C{held} is by server ID (among suppliers).
        """
        self._held = held
        self._consumerSid = consumerSid
        self._bySid = bySid
        self._passed: set[int | None] = set()

    def _newer(self, csn: bytes, key: int | None) -> bool:
        held = self._held.get(key)
        return held is None or csn > held

    def wanted(self, record: ChangeRecord) -> bool:
        """
        @return: whether the change of C{record} is to be sent.
        """
        sid = csnSID(record.csn)
        if sid is not None and sid == self._consumerSid:
            return False
        key = sid if self._bySid else None
        if key in self._passed:
            return True
        if self._held.get(key) == record.csn:
            self._passed.add(key)
        return self._newer(record.csn, key)

    def wantedCSN(self, csn: bytes) -> bool:
        """
        @return: whether an entry whose C{entryCSN} is C{csn} is to be sent
            in full after a present phase: it is newer than the cookie.
        """
        sid = csnSID(csn)
        return ((sid is None or sid != self._consumerSid)
                and self._newer(csn, sid if self._bySid else None))


#: What a refresh sends the changes after: the CSN of a cookie (one
#: supplier), the CSNs of a consumer's cookie among suppliers, or nothing.
_Since = Union[bytes, _ResumeFilter, None]


class _Session:
    """
    One search with the Sync Request control.

    @ivar position: the number of the last changelog record whose change
        the consumer has been sent (or that the refresh has covered).
    @ivar csn: the CSN the consumer's cookie names once it has what was
        sent, for a database with one supplier.
    @ivar multi: whether the database is replicated between suppliers
        (L{Database.suppliers}).
    @ivar vector: among suppliers, the CSNs the consumer's cookie names
        once it has what was sent, by server ID.
    @ivar phase: how the refresh went: C{"present"} (the full content),
        C{"delete"} (the changes since the cookie) or C{"none"} (the
        consumer was up to date).
    @ivar sent: the number of entries sent.
    """

    _log = Logger()

    def __init__(
        self, provider: SyncProvider, op: Operation, reply: Reply, db: Database, cookie: Cookie
    ) -> None:
        self.directory = provider.directory
        self.op = op
        self.reply = reply
        self.db = db
        self.rid = cookie.rid
        self.changelog = IChangelog(db.backend)
        self.watch = Watch(op, provider.pollInterval)
        self._internal = self.directory.internalOperation()
        self.position = 0
        self.csn: bytes | None = None
        self.multi = db.suppliers is not None
        self.vector: dict[int | None, bytes] = {}
        self._csns = cookie.csns
        # Among suppliers, the consumer's own server ID: its changes are
        # never sent back to it (as slapd's syncprov does not send a change
        # back to its originator).
        self._consumerSid = cookie.sid if self.multi else None
        # Among suppliers, a consumer that names the attributes' CSNs
        # (ldapd's) is sent each delete's CSN (L{_deleteCSNs}), the deletes
        # of the refresh too, one by one.
        self._withDeleteCSNs = self.multi and op.search is not None and ATTRIBUTE_CSN.lower() in (
            a.lower() for a in op.search.attributes)
        self._deleteCSNs: dict[bytes, bytes] = {}
        self._refreshing = True
        # The CSN of the cookie a refresh resumes from (one supplier).
        self._resumedFrom: bytes | None = None
        self._present: list[bytes] = []
        self._before: dict[bytes, deque[Entry]] = {}
        self.phase = "none"
        self.sent = 0

    def changed(self, change: Any) -> None:
        """
        The Directory's change feed: a write committed; look at the log.
        The entry as it was before each change is kept, in commit order,
        until the change is sent, so that the consumer is told of it only
        if it could read it (L{_had}). A change committed while a run of
        earlier ones is being sent keeps its own snapshot for the next run
        (the entry as that run's first change found it).
        """
        if change.suffix != self.db.normalizedSuffix:
            return
        csn = change.new.get("entryCSN") if change.new is not None else ()
        if csn and self._fromConsumer(csn[0]):
            # Its record is not sent: no snapshot would be taken back.
            self.watch.wake()
            return
        if change.old is not None:
            values = change.old.get("entryUUID")
            if values:
                self._before.setdefault(values[0].lower(), deque()).append(change.old)
                while len(self._before) > _BEFORE_KEPT:
                    del self._before[next(iter(self._before))]
        self.watch.wake()

    def _beforeRun(self, uuid: bytes, changes: int) -> Entry | None:
        """
        Take the snapshots of a run's C{changes} changes of one entry.

        @return: the entry before the first of them, if the change feed
            told it.
        """
        kept = self._before.get(uuid)
        if not kept:
            return None
        old = kept[0]
        for _ in range(min(changes, len(kept))):
            kept.popleft()
        if not kept:
            del self._before[uuid]
        return old

    def cookie(self) -> bytes:
        """
        @return: the cookie naming what the consumer has been sent; with
            this server's ID when it has one (the changelog plugin's C{sid}),
            as slapd's provider names its C{serverID}.
        """
        if self.multi:
            return self._cookieOf(tuple(mergeCSNs((), self.vector.values())))
        return self._cookieOf((self.csn,) if self.csn else ())

    def _cookieOf(self, csns: tuple[bytes, ...]) -> bytes:
        """
        @return: the cookie naming C{csns}.
        """
        return Cookie(self.rid, self.directory.csn.sid or None, csns).format()

    def _advance(self, csns: Sequence[bytes]) -> None:
        """
        Among suppliers, take this server's own CSNs among C{csns} into
        L{vector} (a change another supplier made is counted once this
        server's consumer saved the cookie that covers it in C{contextCSN}:
        it may have applied a later change of that supplier before an
        earlier).
        """
        own = self.directory.csn.sid
        self.vector = csnVector((*self.vector.values(), *(c for c in csns if csnSID(c) == own)))

    async def _suffixCSNs(self) -> list[bytes]:
        """
        @return: the suffix entry's contextCSN.
        """
        try:
            suffix = await self.db.backend.get(self._internal, self.db.normalizedSuffix)
        except NoSuchObject:
            return []
        return list(suffix.get("contextCSN"))

    def _fromConsumer(self, csn: bytes) -> bool:
        """
        @return: whether a change of this CSN was made by the consumer, one
            of the suppliers: it is not sent back to it.
        """
        return self._consumerSid is not None and csnSID(csn) == self._consumerSid

    def info(self, message: SyncInfo) -> None:
        """
        Send a Sync Info intermediate response.
        """
        self.reply(encodeIntermediateResponse(_SYNC_INFO, message.encode()), ())

    # Refresh

    async def _contextCSN(self, last: ChangeRecord | None) -> bytes | None:
        """
        @return: the greatest CSN of the database: its newest change's, or
            the suffix entry's contextCSN.
        """
        csns = [last.csn] if last is not None else []
        csns.extend(await self._suffixCSNs())
        return max(csns, default=None)

    async def refresh(self, since: bytes | None) -> bool:
        """
        Send the refresh stage.

        @param since: the CSN of the consumer's cookie, or C{None}.
        @return: refreshDeletes: whether the delete phase was used.
        """
        if self.multi:
            return await self._refreshSupplier()
        first, last = await self.changelog.changeBounds()
        context = await self._contextCSN(last)
        self.position = last.number if last is not None else 0
        self.csn = context
        if since is not None and context is not None and since > context:
            raise ldaperrors.LDAPUnwillingToPerform("consumer state is newer than provider")
        if since is not None and since == context and (last is None or last.csn == since):
            # Nothing after the cookie's change, by CSN or in the log.
            self._refreshing = False
            return True
        covered = since is not None and first is not None and first.csn <= since
        if not covered:
            self.phase = "present"
            refreshDeletes = await self._presentPhase(since)
            self._refreshing = False
            return refreshDeletes
        self.phase = "delete"
        self.position = 0
        # From the cookie's record on, by log position: a change stamped
        # before the cookie's but committed after it (two writes at once,
        # the consumer gone in between) is sent too.
        assert since is not None
        self._resumedFrom = since
        await self._catchUp(_ResumeFilter({None: since}, None, bySid=False))
        self._refreshing = False
        return True

    async def _refreshSupplier(self) -> bool:
        """
        Send the refresh stage to a consumer among suppliers, from the CSNs
        of its cookie, by server ID (L{_ResumeFilter}).

        @return: refreshDeletes: whether the delete phase was used.
        """
        # contextCSN is read before the log: the changes a supplier's
        # cookie saved there covers are then in the records read after.
        self.vector = csnVector(await self._suffixCSNs())
        first, last = await self.changelog.changeBounds()
        self.position = last.number if last is not None else 0
        if last is not None:
            self._advance([last.csn])
        held = csnVector(self._csns) if self._csns else None
        own = self.directory.csn.sid
        if held is not None and own in held and own in self.vector and held[own] > self.vector[own]:
            # Only its own: the consumer may hold later changes of others
            # than this server has yet (as slapd's syncprov judges).
            raise ldaperrors.LDAPUnwillingToPerform("consumer state is newer than provider")
        # The log covers the cookie if it holds every change after it: of
        # each server ID the cookie names, unless the consumer already has
        # everything this server has of it (a supplier retired long ago).
        # Even a consumer whose CSNs are this server's reads the log: a
        # change stamped before the last may have committed after it.
        covered = held is not None and first is not None and all(
            csn >= first.csn or self.vector.get(sid, b"") <= csn for sid, csn in held.items())
        if held is None or not covered:
            self.phase = "present"
            supplierFilter = None if held is None else _ResumeFilter(held, self._consumerSid, bySid=True)
            refreshDeletes = await self._presentPhase(supplierFilter)
            self._refreshing = False
            return refreshDeletes
        self.phase = "delete"
        self.position = 0
        await self._catchUp(_ResumeFilter(held, self._consumerSid, bySid=True))
        self._refreshing = False
        return True

    async def _presentPhase(self, since: _Since) -> bool:
        """
        The present phase: the consumer is told every entry the search
        returns, and removes the others.

        Without a cookie, every entry is sent in full. With one the
        changelog no longer covers, the consumer may hold entries under
        names that others have taken since (a deleted entry's name, given
        by a rename to another): the present phase then sends every entry's
        syncUUID alone and ends (refreshPresent, refreshDone FALSE), so that
        the consumer removes what is gone first, and a delete phase sends
        the entries changed since the cookie in full (RFC 4533 §3.4: a
        present phase followed by a delete phase).

        @param since: what the consumer's cookie names (L{_Since}), or
            C{None}.
        @return: refreshDeletes: whether the refresh ends in a delete phase.
        """
        search = self.directory.searcher.searchDatabase
        if since is None:
            await search(self.op, self.reply, self.db, self._sendFull)
            return False
        await search(self.op, self.reply, self.db, self._sendUUID)
        self._flushPresent()
        # Among suppliers, with the cookie of what it covers: the consumer
        # keeps what it has that is newer (ldapd.syncrepl.consumer).
        self.info(SyncInfo(REFRESH_PRESENT, self.cookie() if self.multi else None,
                           refreshDone=False))
        await search(self.op, self.reply, self.db, lambda entry: self._sendChanged(entry, since))
        return True

    def _sendFull(self, entry: Entry) -> Any:
        """
        Send an entry of a refresh without a cookie, in full.
        """
        uuid = _uuidOf(entry)
        return None if uuid is None else self._sendEntry(entry, STATE_ADD, uuid, None)

    def _sendUUID(self, entry: Entry) -> None:
        """
        Send the syncUUID of an entry of the present phase, in a syncIdSet
        of many (as slapd's syncprov sends them, a hundred at a time).
        """
        uuid = _uuidOf(entry)
        if uuid is None:
            return
        self._countSent()
        self._present.append(uuid)
        if len(self._present) >= _ID_SET_SIZE:
            self._flushPresent()

    def _sendChanged(self, entry: Entry, since: bytes | _ResumeFilter) -> Any:
        """
        Send an entry that changed since the cookie in full, after the
        present phase (which counted it against the size limit).
        """
        uuid = _uuidOf(entry)
        csn = max(entry.get("entryCSN"), default=None)
        if uuid is None or (csn is not None and not (
                since.wantedCSN(csn) if isinstance(since, _ResumeFilter) else csn > since)):
            return None
        return self._sendEntry(entry, STATE_ADD, uuid, None, counted=False)

    def _flushPresent(self) -> None:
        """
        Send the syncUUIDs of the present phase not sent yet, in a syncIdSet
        (refreshDeletes FALSE: the consumer keeps these entries).
        """
        if self._present:
            self.info(SyncInfo(SYNC_ID_SET, syncUUIDs=tuple(self._present)))
            self._present = []

    # Changes

    async def persist(self) -> NoReturn:
        """
        Send each change committed after L{position}, as long as the
        search lasts.

        @raise SyncRefreshRequired: if the changelog has been trimmed past
            changes not yet sent.
        """
        while True:
            if not await self.changelog.changes(self.position, 1):
                await self.watch.wait()
                continue
            await self.watch.writable()
            records = await self.changelog.changes(self.position, 1)
            if records[0].number > self.position + 1:
                first, _ = await self.changelog.changeBounds()
                if first is not None and first.number == records[0].number:
                    raise SyncRefreshRequired("the changelog no longer holds changes not yet sent")
            if not await self._catchUp(None):
                self.info(SyncInfo(NEW_COOKIE, self.cookie()))

    def _sends(self, record: ChangeRecord, since: _ResumeFilter | None) -> bool:
        """
        @param since: what the consumer's cookie names, in the refresh;
            C{None} after it, when every change after L{position} is sent
            but the consumer's own (among suppliers).
        @return: whether the change of C{record} is to be sent.
        """
        if isinstance(since, _ResumeFilter):
            return since.wanted(record)
        return not self._fromConsumer(record.csn)

    async def _read(self, after: int, since: _ResumeFilter | None) -> _Run:
        """
        @param after: the number of the last record not to read.
        @param since: what the consumer's cookie names (L{_sends}).
        @return: the records after C{after} to the end of the changelog,
            those the consumer is to be sent.
        """
        run = _Run([], after, None)
        while True:
            records = await self.changelog.changes(run.end, _BATCH)
            if not records:
                return run
            self.op.check()
            run.records.extend(r for r in records if self._sends(r, since))
            run.end = records[-1].number
            run.csn = records[-1].csn

    async def _catchUp(self, since: _ResumeFilter | None) -> bool:
        """
        Send what the changes after L{position} did to the entries the
        search returns (L{ldapd.syncrepl.catchup}): each changed entry once,
        as it is now, under its current name, or its delete; then move
        L{position} and L{csn} past those changes.

        The entries are read after the changes, while others may commit:
        when one of those renamed an ancestor of an entry to be sent, that
        entry's name already shows it, so the run takes that rename in too
        (a few times at most; the persist stage sends what comes later).

        @param since: what the consumer's cookie names (L{_sends}).
        @return: whether a message was sent.
        """
        context = await self._suffixCSNs() if self.multi else []
        run = await self._read(self.position, since)
        steps = await self._plan(run.records)
        for _ in range(_EXTENSIONS):
            later = await self._read(run.end, since)
            if not any(self._movesAncestor(r, steps) for r in later.records):
                break
            run = _Run(run.records + later.records, later.end, later.csn)
            steps = await self._plan(run.records)
        self.position = run.end
        if self.multi:
            self.vector = csnVector((*self.vector.values(), *context))
            self._advance([r.csn for r in run.records])
        elif run.csn is not None:
            self.csn = max(self.csn or b"", run.csn)
        ordered = order(steps)
        if ordered.stuck:
            leaves = [s.uuid for s in steps if s.uuid in ordered.stuck
                      and s.after is not None and await self._isLeaf(s.after)]
            ordered = order(steps, leaves)
        if ordered.stuck:
            self._log.warn("syncrepl: {count} entries renamed in a circle cannot be sent in an "
                           "order the consumer can apply", count=len(ordered.stuck))
        cookie = None if self._refreshing else self.cookie()
        deletes: list[bytes] = []
        steps = ordered.steps
        settled = settledCSNs(run.records, steps) if self._refreshing and not self.multi else None
        for n, step in enumerate(steps, 1):
            if self._refreshing and step.entry is None and not self._withDeleteCSNs:
                # As slapd's syncprov sends the deletes its session log
                # holds: their syncUUIDs alone, no names (but to a supplier
                # that takes each delete's CSN).
                deletes.append(step.uuid)
                continue
            self._sendDeletes(deletes, settled[n - 1] if settled is not None else None)
            sending = self._send(step, cookie if n == len(steps) else None)
            if sending is not None:
                await sending
        self._sendDeletes(deletes, settled[-1] if settled is not None else None)
        self._deleteCSNs.clear()
        return bool(steps)

    def _sendDeletes(self, uuids: list[bytes], settled: bytes | None) -> None:
        """
        Send the deletes of the refresh stage gathered in C{uuids} (emptied)
        in a syncIdSet (refreshDeletes TRUE).

        The syncIdSet carries a cookie when what was sent settles a CSN
        newer than the consumer's cookie (L{settledCSNs}), as slapd's
        syncprov gives each delete of its session log one: slapd's consumer
        deletes only the entries whose entryCSN that cookie (else its own)
        covers, and one that applied changes after its saved cookie (a
        session ended before the cookie that covers them came) would keep
        such an entry.

        @param settled: the greatest CSN the messages sent so far settle.
        """
        if not uuids:
            return
        cookie = None
        if settled is not None and (self._resumedFrom is None or settled > self._resumedFrom):
            cookie = self._cookieOf((settled,))
        syncUUIDs = []
        for uuid in uuids:
            self._countSent()
            try:
                syncUUIDs.append(uuidToBytes(uuid))
            except ValueError:
                self._log.warn("syncrepl: entryUUID {uuid!r} is unreadable", uuid=uuid)
        self.info(SyncInfo(SYNC_ID_SET, cookie, refreshDeletes=True, syncUUIDs=tuple(syncUUIDs)))
        del uuids[:]

    def _normalize(self, dn: DN) -> DN:
        return self.directory.schema.normalizeDN(dn)

    def _movesAncestor(self, record: ChangeRecord, steps: list[Step]) -> bool:
        """
        @return: whether C{record} renamed an ancestor of an entry to be sent.
        """
        if record.kind != RENAME:
            return False
        try:
            new = self._normalize(renamedDN(record))
        except ValueError:
            return False
        return any(s.after is not None and s.after != new and s.after.isWithin(new) for s in steps)

    async def _plan(self, records: list[ChangeRecord]) -> list[Step]:
        """
        @param records: a run of changes, in log order.
        @return: what to send of each entry they changed, in the log order
            of its last change: the entry as the search returns it now, or
            a delete if the consumer may have it.
        """
        before = namesBefore(records, self._normalize)
        last: dict[bytes, ChangeRecord] = {}
        changes: dict[bytes, int] = {}
        for record in records:
            key = uuidKey(record)
            last.pop(key, None)
            last[key] = record
            changes[key] = changes.get(key, 0) + 1
        found: list[tuple[bytes, DN | None, Entry | None]] = []
        for uuid, record in last.items():
            if uuid not in before:
                self._log.warn("syncrepl: change {number} is unreadable", number=record.number)
                continue
            entry = None if record.kind == DELETE else await self._current(record)
            # What the consumer has is judged by the access it was sent
            # things with...
            had = self._had(before[uuid], self._beforeRun(uuid, changes[uuid]), entry)
            if record.kind == DELETE and self._withDeleteCSNs:
                self._deleteCSNs[uuid] = record.csn
            if had is None and record.kind == DELETE and (self.multi or self._refreshing):
                # ...but a consumer may hold an entry added within the run:
                # a refresh's cookie may lag what the consumer holds (it
                # commits what it applies before the refresh's cookie comes,
                # and a consumer stopped then resumes from the older one),
                # and a supplier may have it through another supplier, its
                # cookie not yet saying so. It is told of the delete all the
                # same, as slapd's syncprov sends every delete its session
                # log holds; a consumer ignores the delete of an entry it
                # does not have.
                had = self._deletedName(record)
            found.append((uuid, had, entry))
        # ...what it is sent now by the access its client has now, as a new
        # search would decide it (group memberships, rules revoked).
        await self.directory.plugins.renew(self.op)
        steps = []
        for uuid, had, entry in found:
            shown = visible(self.directory, self.op, entry) if entry is not None else None
            if shown is not None:
                steps.append(Step(uuid, had, entry.ndn, shown))  # type: ignore[union-attr]
            elif had is not None:
                steps.append(Step(uuid, had, None))
        return steps

    def _deletedName(self, record: ChangeRecord) -> DN | None:
        """
        @return: the normalised name of the entry a delete record names, if
            it lies in the search's scope (else, or unreadable, C{None}).
        """
        try:
            name = self._normalize(DN.parse(record.targetDN))
        except ValueError:
            return None
        return name if inScope(self.op, name) else None

    def _had(self, before: DN | None, old: Entry | None, now: Entry | None) -> DN | None:
        """
        Whether the consumer may have had an entry before a run of changes,
        so that it is told of it (a delete, or a change) only then: the
        entry was in the search's scope under its name then, and its client
        could read it. Within this process the change feed tells what the
        entry was; otherwise the entry as it is now is judged under its old
        name (a deleted one is taken to have been readable). Whether it
        matched the search's filter before is not known; a delete of an
        entry the consumer does not have is ignored.

        @param before: its name before the run, if it existed.
        @param old: the entry before the run's first change, if known.
        @param now: the entry now, if it exists.
        @return: C{before} if the consumer may have had it, else C{None}.
        """
        if before is None or not inScope(self.op, before):
            return None
        judged = old if old is not None else now
        if judged is not None and self.directory.plugins.filterEntry(
                self.op, judged if judged.ndn == before else judged.withDN(before)) is None:
            return None
        return before

    def _send(self, step: Step, cookie: bytes | None) -> Any:
        """
        Send one message of a catch-up: an entry, or the delete of one.
        """
        try:
            uuid = uuidToBytes(step.uuid)
        except ValueError:
            self._log.warn("syncrepl: entryUUID {uuid!r} is unreadable", uuid=step.uuid)
            return None
        if step.entry is not None:
            state = STATE_ADD if step.before is None else MODIFY
            return self._sendEntry(step.entry, state, uuid, cookie)
        assert step.before is not None
        self._countSent()
        message = SyncState(STATE_DELETE, uuid, cookie)
        # The delete's CSN, for a supplier's changelog to record the
        # change as its origin made it (RFC 4533 sends a delete's name
        # alone; slapd's consumer is never sent one).
        csn = self._deleteCSNs.pop(step.uuid, None)
        self.reply(
            encodeSearchEntry(str(step.before).encode("utf-8"),
                              [(b"entryCSN", [csn])] if csn is not None else ()),
            [Control(SYNC_STATE, False, message.encode())],
        )
        return None

    async def _current(self, record: ChangeRecord) -> Entry | None:
        """
        @param record: the last change of an entry that was not a delete.
        @return: the entry, as it is now; C{None} if it is gone.
        """
        try:
            dn = renamedDN(record) if record.kind == RENAME else DN.parse(record.targetDN)
            entry: Entry | None = await self.db.backend.get(self._internal, self._normalize(dn))
        except (NoSuchObject, ValueError):
            entry = None
        values = entry.get("entryUUID") if entry is not None else ()
        if values and values[0].lower() == uuidKey(record):
            return entry
        # Moved since, by a rename of an ancestor (whose record names only
        # the ancestor), or deleted: look it up.
        return await self._byUUID(record.entryUUID)

    async def _isLeaf(self, ndn: DN) -> bool:
        """
        @return: whether the entry at C{ndn} has no children.
        """
        op = self.directory.internalOperation()
        op.search = SearchParameters(
            base=ndn, scope=Scope.ONE,
            filter=everything(self.directory.schema),
        )
        found: list[Any] = []
        try:
            await self.db.backend.search(op, found.append)
        except NoSuchObject:
            return False
        return not found

    async def _byUUID(self, entryUUID: bytes) -> Entry | None:
        """
        @return: the database's entry with this entryUUID, or C{None}.
        """
        op = self.directory.internalOperation()
        op.search = SearchParameters(
            base=self.db.normalizedSuffix,
            scope=Scope.SUB,
            filter=byUUID(self.directory.schema, entryUUID),
        )
        found: list[Entry | SearchReference] = []
        await self.db.backend.search(op, found.append)
        entries = [e for e in found if isinstance(e, Entry)]
        return entries[0] if entries else None

    def _countSent(self) -> None:
        """
        Count an entry sent against the size limit, which applies to the
        refresh stage only (as in slapd).
        """
        self.sent += 1
        if self._refreshing and self.op.sizeLimit and self.sent > self.op.sizeLimit:
            raise ldaperrors.LDAPSizeLimitExceeded("")

    def _sendEntry(self, entry: Entry, state: int, uuid: bytes, cookie: bytes | None,
                   counted: bool = True) -> Any:
        """
        Send an entry, with the attributes the search selected and a Sync
        State control.

        @param counted: whether it counts against the size limit.
        """
        if counted:
            self._countSent()
        control = Control(SYNC_STATE, False, SyncState(state, uuid, cookie).encode())
        return self.directory.searcher.sendEntry(
            self.op, withControls(self.reply, [control]), entry, counted=False
        )
