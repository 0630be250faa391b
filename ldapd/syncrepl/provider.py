"""
The syncrepl provider (RFC 4533), as slapd's syncprov overlay serves it,
built on the changelog the C{changelog} plugin keeps (L{IChangelog}).

A search with the Sync Request control is first a refresh:

  - without a cookie, or with one the changelog no longer covers (its
    oldest record is newer than the cookie's CSN): the present phase, every
    matching entry, those changed since the cookie in full (state C{add}),
    the others as C{present} without attributes, so that the consumer
    removes what it was not told about (refreshDeletes FALSE);
  - with a covered cookie: the changes since, replayed from the changelog
    in their order: each changed entry with its attributes as they are now,
    in full if the search returns it, or as a C{delete} (its syncUUID) if it
    is gone or no longer returned (refreshDeletes TRUE).

A refreshOnly search then ends with the Sync Done control; refreshAndPersist
sends a Sync Info message and goes on tailing the changelog, sending each
change as it commits (woken by the Directory's change feed, and every second
for changes other processes commit to a shared PostgreSQL database), until
it is abandoned or its connection closes. Cookies are slapd's,
C{rid=<the consumer's rid>,csn=<contextCSN>}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, Sequence

from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from twisted.logger import Logger

from ldapd._codec import Control, encodeIntermediateResponse, encodeSearchEntry
from ldapd.changes import ADD, DELETE, RENAME, ChangeRecord
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.interfaces import IChangelog
from ldapd.filters import compileFilter
from ldapd.operation import Operation, Scope, SearchParameters
from ldapd.results import NoSuchObject
from ldapd.syncrepl._persist import Watch, inScope, visible, withControls
from ldapd.syncrepl.codec import (
    MODIFY,
    NEW_COOKIE,
    PRESENT,
    REFRESH_AND_PERSIST,
    REFRESH_DELETE,
    REFRESH_PRESENT,
    SYNC_DONE,
    SYNC_INFO,
    SYNC_STATE,
    Cookie,
    SyncDone,
    SyncInfo,
    SyncRequest,
    SyncState,
    uuidToBytes,
)
from ldapd.syncrepl.codec import ADD as STATE_ADD
from ldapd.syncrepl.codec import DELETE as STATE_DELETE

if TYPE_CHECKING:
    from ldapd.directory import Database, Directory, Reply

__all__ = ["SyncProvider", "SyncRefreshRequired"]

#: Changelog records read at a time.
_BATCH = 500

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
        if op.request.derefAliases & 1:
            raise ldaperrors.LDAPProtocolError("illegal value for derefAliases")
        try:
            cookie = Cookie.parse(request.cookie) if request.cookie is not None else Cookie()
        except ValueError as e:
            raise ldaperrors.LDAPProtocolError(f"invalid sync cookie: {e}") from None
        session = _Session(self, op, reply, db, cookie.rid)
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


@dataclass(frozen=True)
class _Outcome:
    """
    What a consumer is sent about one changed entry.

    @ivar uuid: its syncUUID.
    @ivar dn: the name it is sent under.
    @ivar entry: the entry as the search returns it, or C{None} for a delete.
    @ivar state: the Sync State to send.
    """

    uuid: bytes
    dn: str
    entry: Entry | None
    state: int


class _Session:
    """
    One search with the Sync Request control.

    @ivar position: the number of the last changelog record whose change
        the consumer has been sent (or that the refresh has covered).
    @ivar csn: the CSN the consumer's cookie names once it has what was sent.
    @ivar phase: how the refresh went: C{"present"} (the full content),
        C{"delete"} (the changes since the cookie) or C{"none"} (the
        consumer was up to date).
    @ivar sent: the number of entries sent.
    """

    def __init__(
        self, provider: SyncProvider, op: Operation, reply: Reply, db: Database, rid: int | None
    ) -> None:
        self.directory = provider.directory
        self.op = op
        self.reply = reply
        self.db = db
        self.rid = rid
        self.changelog = IChangelog(db.backend)
        self.watch = Watch(op, provider.pollInterval)
        self._internal = self.directory.internalOperation()
        self.position = 0
        self.csn: bytes | None = None
        self._refreshing = True
        self.phase = "none"
        self.sent = 0

    def changed(self, change: Any) -> None:
        """
        The Directory's change feed: a write committed; look at the log.
        """
        if change.suffix == self.db.normalizedSuffix:
            self.watch.wake()

    def cookie(self) -> bytes:
        """
        @return: the cookie naming what the consumer has been sent; with
            this server's ID when it has one (the changelog plugin's C{sid}),
            as slapd's provider names its C{serverID}.
        """
        sid = self.directory.csn.sid or None
        return Cookie(self.rid, sid, (self.csn,) if self.csn else ()).format()

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
        try:
            suffix = await self.db.backend.get(self._internal, self.db.normalizedSuffix)
        except NoSuchObject:
            pass
        else:
            csns.extend(suffix.get("contextCSN"))
        return max(csns, default=None)

    async def refresh(self, since: bytes | None) -> bool:
        """
        Send the refresh stage.

        @param since: the CSN of the consumer's cookie, or C{None}.
        @return: refreshDeletes: whether the delete phase was used.
        """
        first, last = await self.changelog.changeBounds()
        context = await self._contextCSN(last)
        self.position = last.number if last is not None else 0
        self.csn = context
        if since is not None and context is not None and since > context:
            raise ldaperrors.LDAPUnwillingToPerform("consumer state is newer than provider")
        if since is not None and context is not None and since == context:
            self._refreshing = False
            return True
        covered = since is not None and first is not None and first.csn <= since
        if not covered:
            self.phase = "present"
            await self.directory.searchDatabase(
                self.op, self.reply, self.db, lambda entry: self._sendPresent(entry, since)
            )
            self._refreshing = False
            return False
        self.phase = "delete"
        self.position = 0
        while True:
            records = await self.changelog.changes(self.position, _BATCH)
            if not records:
                break
            self.op.check()
            await self._replay([r for r in records if r.csn > since], None)
            self.position = records[-1].number
            self.csn = max(self.csn or b"", records[-1].csn)
            await self.watch.writable()
        self._refreshing = False
        return True

    def _sendPresent(self, entry: Entry, since: bytes | None) -> Any:
        """
        Send an entry of the present phase: in full if it changed since the
        cookie, else as C{present}, its name alone.
        """
        uuid = _uuidOf(entry)
        if uuid is None:
            return None
        csn = max(entry.get("entryCSN"), default=None)
        if since is None or csn is None or csn > since:
            return self._sendEntry(entry, STATE_ADD, uuid, None)
        self._countSent()
        state = Control(SYNC_STATE, False, SyncState(PRESENT, uuid).encode())
        self.reply(encodeSearchEntry(str(entry.dn).encode("utf-8"), ()), [state])
        return None

    # Changes

    async def persist(self) -> NoReturn:
        """
        Send each change committed after L{position}, as long as the
        search lasts.

        @raise SyncRefreshRequired: if the changelog has been trimmed past
            changes not yet sent.
        """
        while True:
            records = await self.changelog.changes(self.position, _BATCH)
            if not records:
                await self.watch.wait()
                continue
            if records[0].number > self.position + 1:
                first, _ = await self.changelog.changeBounds()
                if first is not None and first.number == records[0].number:
                    raise SyncRefreshRequired("the changelog no longer holds changes not yet sent")
            await self.watch.writable()
            self.csn = max(self.csn or b"", records[-1].csn)
            if not await self._replay(records, self.cookie()):
                self.info(SyncInfo(NEW_COOKIE, self.cookie()))
            self.position = records[-1].number

    async def _replay(self, records: list[ChangeRecord], cookie: bytes | None) -> bool:
        """
        Send what a run of changes did to the entries the search returns.

        The consumer applies the messages in order, and a change may need
        an earlier one (a child added under a parent just renamed, a parent
        deleted once its last child has moved away), so each entry is sent
        at the place of its last change in the run (and of its last rename,
        which later changes of others may need), under the name it had
        then, with its attributes as they are now; a deleted entry, at its
        delete.

        @param cookie: the cookie for the last message sent, or C{None}.
        @return: whether a message was sent.
        """
        last: dict[bytes, int] = {}
        lastRename: dict[bytes, int] = {}
        had: dict[bytes, bool] = {}
        for n, record in enumerate(records):
            last[record.entryUUID] = n
            if record.kind == RENAME:
                lastRename[record.entryUUID] = n
            if record.entryUUID not in had:
                # Whether the consumer may have the entry: it was there
                # and in scope (and, as far as this can tell without the
                # old entry, matched the filter).
                had[record.entryUUID] = record.kind != ADD and self._inScope(record.targetDN)
        outcomes = []
        for n, record in enumerate(records):
            uuid = record.entryUUID
            if n != last[uuid] and n != lastRename.get(uuid):
                continue
            outcome = await self._outcome(record, had[uuid])
            if outcome is not None:
                had[uuid] = outcome.entry is not None
                outcomes.append(outcome)
        for n, outcome in enumerate(outcomes, 1):
            sending = self._sendOutcome(outcome, cookie if n == len(outcomes) else None)
            if sending is not None:
                await sending
        return bool(outcomes)

    def _inScope(self, dn: str) -> bool:
        try:
            return inScope(self.op, self.directory.schema.normalizeDN(DN.parse(dn)))
        except ValueError:
            return False

    async def _outcome(self, record: ChangeRecord, had: bool) -> _Outcome | None:
        """
        What one change did for the consumer: the entry (under the name the
        change gave it) if the search returns it, else a C{delete} if the
        consumer may have it.

        @param had: whether the consumer may have the entry.
        @return: what to send, or C{None}.
        """
        try:
            uuid = uuidToBytes(record.entryUUID)
            dn = self._renamed(record) if record.kind == RENAME else DN.parse(record.targetDN)
            ndn = self.directory.schema.normalizeDN(dn)
        except ValueError:
            self._log.warn("syncrepl: change {number} is unreadable", number=record.number)
            return None
        if record.kind == DELETE:
            return _Outcome(uuid, record.targetDN, None, STATE_DELETE) if had else None
        if not (had or inScope(self.op, ndn)):
            return None
        entry = await self._current(ndn, record.entryUUID)
        if entry is None:
            # Deleted since: a later record says so.
            return None
        if entry.ndn != ndn:
            # Moved since, with an ancestor: the ancestor's rename, sent
            # later, moves it on the consumer.
            entry = entry.withDN(dn)
        shown = visible(self.directory, self.op, entry)
        if shown is not None:
            return _Outcome(uuid, str(dn), shown, MODIFY if had else STATE_ADD)
        if had:
            return _Outcome(uuid, record.targetDN, None, STATE_DELETE)
        return None

    def _sendOutcome(self, outcome: _Outcome, cookie: bytes | None) -> Any:
        """
        Send an entry, or the delete of one.
        """
        if outcome.entry is not None:
            return self._sendEntry(outcome.entry, outcome.state, outcome.uuid, cookie)
        self._countSent()
        message = SyncState(STATE_DELETE, outcome.uuid, cookie)
        self.reply(
            encodeSearchEntry(outcome.dn.encode("utf-8"), ()),
            [Control(SYNC_STATE, False, message.encode())],
        )
        return None

    def _renamed(self, record: ChangeRecord) -> DN:
        """
        @return: the DN a rename gave its entry.
        @raise ValueError: if the record names no new RDN, or bad DNs.
        """
        if record.newRDN is None:
            raise ValueError("a rename record without its new RDN")
        rdn = DN.parse(record.newRDN).rdn
        parent = DN.parse(record.newSuperior or record.targetDN)
        if not record.newSuperior:
            parent = parent.parent()
        return parent.child(rdn)

    async def _current(self, ndn: DN, entryUUID: bytes) -> Entry | None:
        """
        @param ndn: where the change left the entry.
        @return: the entry changed, as it is now; C{None} if it is gone.
        """
        try:
            entry = await self.db.backend.get(self._internal, ndn)
        except NoSuchObject:
            entry = None
        values = entry.get("entryUUID") if entry is not None else ()
        if values and values[0].lower() == entryUUID.lower():
            return entry
        # Moved since, by a rename of its own (a later record) or of an
        # ancestor (whose record names only the ancestor): look it up.
        return await self._byUUID(entryUUID)

    async def _byUUID(self, entryUUID: bytes) -> Entry | None:
        """
        @return: the database's entry with this entryUUID, or C{None}.
        """
        op = self.directory.internalOperation()
        op.search = SearchParameters(
            base=self.db.normalizedSuffix,
            scope=Scope.SUB,
            filter=compileFilter(
                pureldap.LDAPFilter_equalityMatch(
                    attributeDesc=pureldap.LDAPAttributeDescription("entryUUID"),
                    assertionValue=pureldap.LDAPAssertionValue(entryUUID),
                ),
                self.directory.schema,
            ),
        )
        found: list[Entry] = []
        await self.db.backend.search(op, found.append)
        return found[0] if found else None

    def _countSent(self) -> None:
        """
        Count an entry sent against the size limit, which applies to the
        refresh stage only (as in slapd).
        """
        self.sent += 1
        if self._refreshing and self.op.sizeLimit and self.sent > self.op.sizeLimit:
            raise ldaperrors.LDAPSizeLimitExceeded("")

    def _sendEntry(self, entry: Entry, state: int, uuid: bytes, cookie: bytes | None) -> Any:
        """
        Send an entry, with the attributes the search selected and a Sync
        State control.
        """
        self._countSent()
        control = Control(SYNC_STATE, False, SyncState(state, uuid, cookie).encode())
        return self.directory.sendEntry(
            self.op, withControls(self.reply, [control]), entry, counted=False
        )
