"""
The syncrepl consumer (RFC 4533): keeps a local database (memory or sql) in
step with a provider, ldapd's or OpenLDAP's, as slapd's C{syncrepl}
directive does.

One L{SyncReplConsumer} per C{[[replica]]} table. It connects to the
provider through the proxy backend's client (L{UpstreamPool}), binds, and
sends a search of the replicated subtree with the Sync Request control and
the cookie of its last session; C{refreshAndPersist} stays connected and
applies changes as they come, C{refreshOnly} repeats every C{interval}. Any
failure (no provider, a lost connection, a change that cannot be applied)
is logged in one line and the session starts again, from the last saved
cookie, C{retry} seconds later, forever.

Changes are applied as the provider made them (L{Directory.writeReplicated}):
an entry is found by its entryUUID, added, renamed (moved) and given the
provider's content verbatim, operational attributes included. The cookie's
CSNs are kept as C{contextCSN} on the local suffix entry, as slapd's
consumer keeps them, so that a restarted server resumes where it stopped.

With C{multi_supplier = true} the provider is one of several suppliers of
the database, which takes clients' writes too: a consumer per other
supplier, each entry sent merged with the local one by CSN
(L{ldapd.syncrepl.multi}), the cookies merged into C{contextCSN} per server
ID, and this server's ID sent in the cookie so that its own changes never
come back (L{Suppliers}).

While the provider sends faster than they are applied (a refresh, a burst),
changes are applied in batches (L{IWriteBatch}, when the backend offers
them): one transaction, one disk sync, for many changes, committed when no
more responses wait, every L{_SAVE_EVERY} changes and every
L{_SAVE_AFTER} seconds, with the cookie that covers them written in the
same transaction, so that a crash never leaves a cookie ahead of the data.
The changes that wait are applied as a pipeline (L{_pipeline}): their
entries are found with one read, and their writes made without waiting for
each, the batch's thread writing while the reactor prepares the next.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence
from urllib.parse import quote

from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ldapd._codec import IntermediateResponse, filterToLdaptor
from ldapd.backends._proxypool import (
    Upstream,
    UpstreamConnection,
    UpstreamPool,
    _describe,
    parseUpstream,
)
from ldapd.backends.proxy import ProxyBackend, bindCredentials, upstreamTLS
from ldapd.changes import ADD, DELETE, MODIFY, RENAME
from ldapd.csn import csnSID, csnTime, csnVector, mergeCSNs, newerThan
from ldapd.directory import Database, Directory
from ldapd.dn import DN, InvalidDN
from ldapd.entry import Entry, Modification, SearchReference
from ldapd.filters import byUUID, compileFilter, everything
from ldapd.interfaces import IChangelog, ITransactionHooks, IWriteBatch, IWriteBatches
from ldapd.operation import Operation, Scope, SearchParameters
from ldapd.plugins.chain import PluginChain
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.requests import InvalidFilter, parseFilter
from ldapd.results import NoSuchObject, Referral
from ldapd.syncrepl import codec
from ldapd.syncrepl.multi import ATTRIBUTE_CSN, createdCSN, merge

__all__ = ["MODES", "ReplicaSettings", "Suppliers", "SyncReplConsumer", "replicaFromConfig"]

#: The C{mode} setting's values.
MODES = {"refreshOnly": codec.REFRESH_ONLY, "refreshAndPersist": codec.REFRESH_AND_PERSIST}

_SCOPES = {"base": Scope.BASE, "one": Scope.ONE, "sub": Scope.SUB}

#: Attributes of the provider's entries that are not stored: those servers
#: compute on every read, and C{contextCSN}, which says how far the
#: provider is, not how far this copy is (this server keeps its own).
_NOT_STORED = frozenset(
    {"entrydn", "subschemasubentry", "hassubordinates", "numsubordinates", "contextcsn"}
)

#: The hooks of the consumer's own bookkeeping (the cookie): no plugin sees
#: it, so it is never replicated further as a change.
_NO_HOOKS = PluginChain()

#: How many responses may wait to be applied before the provider's
#: connection stops being read, and how few before it is read again.
_HIGH_WATER, _LOW_WATER = 512, 64

#: How many changes are applied between two saves of the cookie (and two
#: commits) while the provider keeps sending, and how many seconds at most.
_SAVE_EVERY = 256
_SAVE_AFTER = 1.0

#: e-syncRefreshRequired (RFC 4533 §3.4): the cookie is too old; refresh
#: everything.
_REFRESH_REQUIRED = 4096

#: The most changes applied as one pipeline (L{SyncReplConsumer._pipeline}).
_PIPELINE = 128

#: How many of the local changelog's last records are searched for the
#: rename or delete of the missing parent of a supplier's entry.
_RESETTLE_SCAN = 10000


@dataclass(frozen=True)
class ReplicaSettings:
    """
    What a C{[[replica]]} table says.

    @ivar suffix: the replicated suffix (the local database's).
    @ivar provider: the provider.
    @ivar bindDN: the DN the consumer binds as, or C{None} (anonymous).
    @ivar bindPassword: its password.
    @ivar mode: L{codec.REFRESH_ONLY} or L{codec.REFRESH_AND_PERSIST}.
    @ivar interval: seconds between two refreshOnly sessions.
    @ivar retry: seconds to wait after a failure.
    @ivar rid: the replica id sent in cookies (slapd's C{rid}).
    @ivar filter: the search filter, as text.
    @ivar scope: the search scope under the suffix.
    @ivar attributes: the attributes asked for.
    @ivar chainWrites: whether clients' writes are forwarded to the
        provider rather than referred to it.
    @ivar timeout: seconds to wait for the provider to answer (not for a
        change during the persist stage).
    @ivar multiSupplier: whether the provider is one of several suppliers
        of the database, which takes writes itself (C{multi_supplier}).
    """

    suffix: DN
    provider: Upstream
    bindDN: str | None = None
    bindPassword: bytes = b""
    mode: int = codec.REFRESH_AND_PERSIST
    interval: float = 60.0
    retry: float = 5.0
    rid: int = 1
    filter: str = "(objectClass=*)"
    scope: Scope = Scope.SUB
    attributes: tuple[str, ...] = ("*", "+")
    chainWrites: bool = False
    timeout: float = 10.0
    multiSupplier: bool = False


class _ApplyFailed(Exception):
    """
    A change the provider sent could not be applied; the session restarts
    from the last saved cookie.
    """


@dataclass(frozen=True)
class _Change:
    """
    A change the provider sent: an entry with its Sync State control, or a
    UUID of a syncIdSet (a delete, or a present entry).

    @ivar dn: the entry's DN, as sent (C{""} for a UUID alone).
    @ivar attributes: its attributes, as sent.
    @ivar uuid: its entryUUID, as text.
    @ivar state: L{codec.PRESENT}, L{codec.ADD}, L{codec.MODIFY} or
        L{codec.DELETE}.
    @ivar cookie: the cookie sent with it, or C{None}.
    """

    dn: str
    attributes: Any
    uuid: str
    state: int
    cookie: bytes | None = None


class _Stale(Exception):
    """
    The local entry a change was merged with changed before the merge was
    written; it is merged again.
    """


#: How many times a change is merged again with a local entry that keeps
#: changing under it, before the session restarts.
_MERGE_ATTEMPTS = 5


@implementer(ITransactionHooks)
class _Guarded:
    """
    The hooks of a merged write: those of the plugin chain, once the
    entry is found as it was merged with (else L{_Stale}), so that a
    client's write to it made meanwhile is never overwritten.
    """

    def __init__(self, hooks: Any, expected: tuple[Any, ...]) -> None:
        self._hooks = hooks
        self._expected = expected

    def check(self, operation: str, op: Operation, txn: Any, *args: Any) -> None:
        if _version(args[0]) != self._expected:
            raise _Stale()
        self._hooks.check(operation, op, txn, *args)

    def txn(self, operation: str, op: Operation, txn: Any, *args: Any) -> None:
        self._hooks.txn(operation, op, txn, *args)


@implementer(ITransactionHooks)
class _MergeContextCSN:
    """
    The hooks of the write of a supplier's cookie: its CSNs merged into the
    suffix entry's C{contextCSN} inside the transaction, per server ID, so
    that a local write's (the changelog plugin's) and another supplier's
    consumer's made meanwhile are kept. No plugin sees it.
    """

    def __init__(self, csns: tuple[bytes, ...]) -> None:
        self._csns = csns

    def check(self, operation: str, op: Operation, txn: Any, *args: Any) -> None:
        pass

    def txn(self, operation: str, op: Operation, txn: Any, old: Entry, new: Entry) -> None:
        merged = mergeCSNs(old.get("contextCSN"), self._csns)
        kept = [(a.description, a.values) for a in new if a.type.name.lower() != "contextcsn"]
        txn.put(Entry(new.dn, kept + [("contextCSN", merged)], new.schema, new.ndn))


def _version(entry: Entry) -> tuple[Any, ...]:
    """
    @return: what tells one version of an entry from another for a merge.
    """
    return (entry.ndn, entry.get("entryUUID"), entry.get("entryCSN"), entry.get(ATTRIBUTE_CSN))


#: How many entryUUIDs of deleted entries a database replicated between
#: suppliers remembers (L{Suppliers.deleted}).
_DELETES_KEPT = 100000


class Suppliers:
    """
    The consumers of one database replicated between several suppliers
    (L{Database.suppliers}), one per other supplier. They apply changes
    side by side, each merged with the local entry as it is when written
    (L{_Guarded}), and merge their cookies into one C{contextCSN}.

    @ivar consumers: the consumers.
    """

    def __init__(self, suffix: DN) -> None:
        """
        @param suffix: the database's normalised suffix.
        """
        self.consumers: list[SyncReplConsumer] = []
        self._suffix = suffix
        self._deleted: OrderedDict[str, None] = OrderedDict()

    def changed(self, change: Any) -> None:
        """
        The Directory's change feed: remember the entryUUIDs of the entries
        deleted in the database (by clients or by replication), the last
        L{_DELETES_KEPT}.
        """
        if change.kind != DELETE or change.suffix != self._suffix or change.old is None:
            return
        values = change.old.get("entryUUID")
        if values:
            self.remember(values[0].decode("ascii", "replace").lower())

    def remember(self, uuid: str) -> None:
        """
        Remember that the entry of an entryUUID was deleted: here, or on a
        supplier that sent its delete before this server had it.
        """
        self._deleted[uuid] = None
        while len(self._deleted) > _DELETES_KEPT:
            self._deleted.popitem(last=False)

    def deleted(self, uuid: str) -> bool:
        """
        @return: whether the entry of this entryUUID was deleted here since
            the server started (so that an add another supplier forwards
            late, after the delete, does not bring it back).
        """
        return uuid in self._deleted


class _NotPipelined(Exception):
    """
    A change must be applied alone (it may change other entries than its
    own, or it cannot be applied as sent).
    """


class _Responses:
    """
    The responses of the sync search, taken one at a time by the applying
    loop. While many wait, the provider's connection is not read, so that a
    provider faster than the local database does not fill memory.
    """

    def __init__(self, connection: UpstreamConnection) -> None:
        self._transport = connection.protocol.transport
        self._queue: defer.DeferredQueue[tuple[Any, Any]] = defer.DeferredQueue()
        self._paused = False

    @property
    def waiting(self) -> int:
        """
        How many responses wait to be taken.
        """
        return len(self._queue.pending)

    def put(self, value: Any, controls: Any) -> None:
        """
        A response arrived (L{UpstreamConnection.request}'s C{onResponse}).
        """
        self._queue.put((value, controls or []))
        if not self._paused and self.waiting >= _HIGH_WATER:
            self._paused = True
            self._transport.pauseProducing()

    def end(self, result: Any) -> None:
        """
        The search ended: with its final response and controls, or a failure.
        """
        self._queue.put((result, None))

    async def get(self) -> tuple[Any, Any]:
        """
        @return: the next response and its controls (a list); or, at the
            end, what L{end} was given and C{None}.
        """
        response = await self._queue.get()
        self._resumeWhenLow()
        return response

    def takeWaiting(self, limit: int, wanted: Callable[[Any], bool]) -> list[tuple[Any, Any]]:
        """
        Take, without waiting, the responses that wait at the front of the
        queue, as long as C{wanted(response)} holds (the end is never taken).

        @param limit: the most to take.
        @return: the responses and their controls.
        """
        pending = self._queue.pending
        taken: list[tuple[Any, Any]] = []
        while (pending and len(taken) < limit and pending[0][1] is not None
               and wanted(pending[0][0])):
            taken.append(pending.pop(0))
        self._resumeWhenLow()
        return taken

    def _resumeWhenLow(self) -> None:
        if self._paused and self.waiting <= _LOW_WATER:
            self._paused = False
            self._transport.resumeProducing()


class SyncReplConsumer(service.Service):
    """
    Keeps one local database in step with a provider, as a service: started
    once the directory is open, it runs sessions until it is stopped.

    @ivar settings: the L{ReplicaSettings}.
    @ivar chain: the backend clients' writes are forwarded through (a proxy
        to the provider, when C{chain_writes} is set), or C{None}: they are
        referred to the provider (L{referral}).
    @ivar applied: how many changes the current (or last) session applied.
    @ivar deleted: how many entries it deleted.
    @ivar present: how many entries the provider said were unchanged.
    @ivar state: what the consumer is doing: C{"connecting"},
        C{"refreshing"}, C{"persisting"} (refreshed, receiving changes as
        they are made), C{"waiting"} (for the next refreshOnly session),
        C{"retrying"} (after a failure, or after the provider ended a
        persistent session) or C{"stopped"}.
    @ivar lastChange: the time the provider made the newest change this
        consumer has committed (its cookie's newest CSN), seconds since the
        epoch; C{None} before the first.
    @ivar lastCommitted: this server's time when it committed that
        change's cookie; C{None} before the first.
    """

    #: The values of L{state}.
    STATES = ("connecting", "refreshing", "persisting", "waiting", "retrying", "stopped")

    _log = Logger()

    def __init__(self, directory: Directory, settings: ReplicaSettings, pool: UpstreamPool,
                 reactor: Any = None) -> None:
        """
        @param directory: the directory holding the local database.
        @param settings: what to replicate, from where.
        @param pool: connections to the provider, bound as C{settings.bindDN}.
        @param reactor: the reactor; the global one by default.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.directory = directory
        self.settings = settings
        self.pool = pool
        schema = directory.schema
        self._suffix = schema.normalizeDN(settings.suffix)
        # Services of one parent have names of their own: among suppliers,
        # one database has a consumer per supplier.
        self.setName(f"syncrepl {settings.suffix}" + (
            f" from {settings.provider.uri}" if settings.multiSupplier else ""))
        self.chain = ProxyBackend(self._suffix, schema, pool) if settings.chainWrites else None
        self._filter = compileFilter(parseFilter(settings.filter), schema)
        self._base = settings.provider.uri.rstrip("/")
        self._cookie: bytes | None = None
        self._cookieLoaded = False
        self._unsaved: bytes | None = None
        self._sinceSave = 0
        self._present: set[str] | None = None
        self._orphans: dict[DN, dict[str, Entry]] = {}
        self._running: defer.Deferred[None] | None = None
        # The batch of writes under way (and when it began), if any.
        self._batch: IWriteBatch | None = None
        self._batchBegun = 0.0
        # refreshOnly sessions that change nothing are not logged, but
        # for the first and the first after a failure.
        self._quiet = False
        self.applied = self.deleted = self.present = 0
        self.state = "stopped"
        self.lastChange: float | None = None
        self.lastCommitted: float | None = None

    # Clients' writes

    def referral(self, ndn: DN) -> Referral:
        """
        @param ndn: the normalised DN a client asked to write.
        @return: the referral to the provider for it (as slapd's C{updateref}).
        """
        url = f"{self._base}/{quote(str(ndn), safe='=,+')}"
        return Referral((url,), "this is a replica: writes go to the provider")

    # The service

    def startService(self) -> None:
        """
        Start the sessions (the directory must be open).
        """
        super().startService()
        self._running = defer.Deferred.fromCoroutine(self._run())

    def stopService(self) -> defer.Deferred[None]:
        """
        End the current session (abandoning its search) and close the
        connections to the provider.

        @return: a Deferred that fires when they are closed.
        """
        super().stopService()
        self.state = "stopped"
        running, self._running = self._running, None
        if running is not None:
            running.addErrback(lambda f: f.trap(defer.CancelledError))
            running.cancel()
        return self.pool.close()

    async def _run(self) -> None:
        """
        Run sessions until cancelled: after a failure (logged in one line)
        and after a persistent session the provider ended, wait C{retry};
        between refreshOnly sessions, C{interval}.
        """
        settings = self.settings
        while True:
            try:
                self.state = "connecting"
                await self._session()
            except (defer.CancelledError, GeneratorExit):
                raise
            except Exception as e:
                self.state = "retrying"
                self._quiet = False
                self._log.warn("{name}: {problem}; retrying in {retry:g} s",
                               name=self.name, problem=_describe(e), retry=settings.retry)
                delay = settings.retry
            else:
                if settings.mode == codec.REFRESH_AND_PERSIST:
                    self._log.info("{name}: the provider ended the session; retrying in "
                                   "{retry:g} s", name=self.name, retry=settings.retry)
                    self.state = "retrying"
                    delay = settings.retry
                else:
                    self.state = "waiting"
                    self._quiet = True
                    delay = settings.interval
            await task.deferLater(self.reactor, delay, lambda: None)

    # A session

    async def _session(self) -> None:
        op = self.directory.internalOperation()
        if not self._cookieLoaded or self.settings.multiSupplier:
            # Among suppliers, contextCSN also moves with local writes and
            # the other suppliers' cookies: the cookie is read anew.
            self._cookie = await self._loadCookie(op)
            self._cookieLoaded = True
        connection = await self.pool.connect()
        try:
            await self._synchronise(op, connection)
        except ldaperrors.LDAPException as e:
            if getattr(e, "code", e.resultCode) != _REFRESH_REQUIRED:
                raise
            self._log.warn("{name}: the provider cannot resume from the cookie; "
                           "refreshing everything", name=self.name)
            self._cookie = self._firstCookie()
            await self._synchronise(op, connection)
        finally:
            await connection.close()

    async def _synchronise(self, op: Operation, connection: UpstreamConnection) -> None:
        """
        One sync search on C{connection}: send it, and apply what comes
        until its end (or, in refreshAndPersist, until the connection goes).
        """
        settings = self.settings
        started = self.reactor.seconds()
        self.applied = self.deleted = self.present = 0
        self._present = set()
        self._orphans = {}
        self._unsaved = None
        self._sinceSave = 0
        cookie = self._cookie
        log = self._log.debug if self._quiet else self._log.info
        log("{name}: {mode} from {provider}, {start}",
                       name=self.name, provider=settings.provider.uri,
                       mode=_modeName(settings.mode),
                       start=f"cookie {cookie.decode()}" if cookie else "no cookie (full refresh)")
        request = pureldap.LDAPSearchRequest(
            baseObject=str(settings.suffix),
            scope=int(settings.scope),
            derefAliases=0,
            sizeLimit=0,
            timeLimit=0,
            typesOnly=False,
            filter=filterToLdaptor(parseFilter(settings.filter)),
            attributes=list(settings.attributes) + (
                # Returned only when named (not with '+'): what suppliers
                # merge by.
                [ATTRIBUTE_CSN] if settings.multiSupplier else []),
        )
        control = codec.SyncRequest(settings.mode, cookie).encode()
        responses = _Responses(connection)
        d, _ = connection.request(
            request, [(codec.SYNC_REQUEST, True, control)], responses.put,
            persistent=settings.mode == codec.REFRESH_AND_PERSIST,
        )
        d.addBoth(responses.end)
        self.state = "refreshing"

        def refreshed(how: str) -> None:
            changed = self.applied or self.deleted
            (self._log.info if changed or not self._quiet else self._log.debug)(
                "{name}: refresh done{how} in {seconds:.2f} s: {applied} changes applied, "
                "{deleted} entries deleted, {present} unchanged",
                name=self.name, how=how, seconds=self.reactor.seconds() - started,
                applied=self.applied, deleted=self.deleted, present=self.present)

        try:
            while True:
                value, controls = await responses.get()
                if controls is None:
                    if isinstance(value, Failure):
                        value.raiseException()
                    response, finalControls = value
                    await self._done(op, response, finalControls)
                    if self._present is not None:
                        refreshed("")
                    return
                if _carriesChanges(value):
                    more = responses.takeWaiting(_PIPELINE - 1, _carriesChanges)
                    await self._changesSent(op, [(value, controls), *more])
                elif isinstance(value, IntermediateResponse):
                    refreshDone = await self._info(op, value)
                    if refreshDone:
                        self.state = "persisting"
                        refreshed(", now persisting")
                if not responses.waiting:
                    await self._save(op)
        except Exception:
            # What came before the failure is applied: its cookie is where
            # the next session starts.
            await self._save(op)
            raise
        finally:
            # What is not committed (the session is cancelled) is undone, and
            # will come again from the provider.
            batch, self._batch = self._batch, None
            if batch is not None:
                await batch.rollback()
            if not d.called:
                # The session ends early (a failure, or the service stops).
                d.cancel()

    # Responses

    async def _changesSent(self, op: Operation, responses: list[tuple[Any, Any]]) -> None:
        """
        Apply the changes of responses that carry some (L{_carriesChanges}),
        in their order: entries with their Sync State control, and the
        UUIDs of syncIdSet messages (deleted, or present). An entry without
        a well-formed control ends the session once those before it are
        applied.
        """
        changes: list[_Change] = []
        problem = None
        for response, controls in responses:
            if _isIdSet(response):
                try:
                    info = codec.decodeSyncInfo(response.responseValue)
                except ValueError as e:
                    problem = e
                    break
                kind = codec.DELETE if info.refreshDeletes else codec.PRESENT
                changes.extend(_Change("", (), codec.uuidFromBytes(octets), kind)
                               for octets in info.syncUUIDs)
                if info.cookie is not None:
                    if changes:
                        # It holds once they are applied.
                        changes[-1] = replace(changes[-1], cookie=info.cookie)
                    else:
                        self._received(info.cookie)
                continue
            try:
                state = _control(controls, codec.SYNC_STATE, codec.decodeSyncState)
                if state is None:
                    raise ldaperrors.LDAPProtocolError(
                        f"entry {_text(response.objectName)} came without a Sync State control")
                uuid = codec.uuidFromBytes(state.entryUUID)
            except (ldaperrors.LDAPProtocolError, ValueError) as e:
                problem = e
                break
            changes.append(_Change(_text(response.objectName), response.attributes, uuid,
                                   state.state, state.cookie))
        await self._changes(op, changes)
        if problem is not None:
            raise problem

    async def _changes(self, op: Operation, changes: list[_Change]) -> None:
        """
        Apply changes in their order: as pipelines where the local database
        offers write batches, else (and while entries wait for their
        parents) one at a time.
        """
        i = 0
        while i < len(changes):
            if len(changes) - i > 1 and not self._orphans and IWriteBatch.providedBy(self._store()):
                i = await self._pipeline(op, changes, i)
            else:
                await self._change(op, changes[i])
                i += 1
            await self._saveIfDue(op)

    async def _change(self, op: Operation, change: _Change) -> None:
        """
        Apply one change alone.
        """
        if change.state == codec.DELETE:
            await self._deleteByUUID(op, change.uuid, self._originCSN(change))
        else:
            if self._present is not None:
                self._present.add(change.uuid)
            if change.state == codec.PRESENT:
                self.present += 1
            else:
                await self._apply(op, change.dn, change.attributes, change.uuid, change.state)
        if change.cookie is not None:
            self._received(change.cookie)

    async def _pipeline(self, op: Operation, changes: list[_Change], start: int) -> int:
        """
        Apply changes from C{changes[start]} on as a pipeline: their local
        entries found with one read, then, for each change that touches its
        own entry only (an add, a modify without a rename, the delete of a
        leaf), its write made without waiting for the one before; the
        batch's thread makes them in order while the next are prepared. The
        pipeline stops before a change that must be applied alone (it is
        then applied so), or a second change of one entry. Once the writes
        are made, the changes are counted and their cookies taken in order.
        A write that fails is applied again alone, as L{_change} would (its
        failure handled, or logged and the session ended); the batch does
        not make the writes called after it (L{IWriteBatch}), and their
        changes are applied after it.

        @return: the index of the first change not applied.
        """
        window = changes[start:start + _PIPELINE]
        found = await self._findAll(op, [c.uuid for c in window if c.state != codec.PRESENT])
        made: list[tuple[_Change, defer.Deferred[Any] | None]] = []
        alone: _Change | None = None
        uuids: set[str] = set()
        for change in window:
            if change.uuid in uuids:
                break
            uuids.add(change.uuid)
            try:
                d = self._start(op, change, found.get(change.uuid))
            except _NotPipelined:
                alone = change
                break
            made.append((change, d))
            if d is not None and d.called and isinstance(d.result, Failure):
                # It failed at once (the memory backend): nothing made
                # after it may assume it succeeded.
                break
        try:
            for n, (change, d) in enumerate(made):
                if d is not None:
                    try:
                        await d
                    except defer.CancelledError:
                        raise
                    except Exception:
                        await self._change(op, change)
                        return start + n + 1
                self._applied(change, d is not None)
        finally:
            # The writes after a failure were not made (WriteSkipped).
            for _, d in made:
                if d is not None:
                    d.addErrback(lambda f: None)
        if alone is not None:
            await self._change(op, alone)
            return start + len(made) + 1
        return start + len(made)

    def _start(self, op: Operation, change: _Change, local: Entry | None
               ) -> defer.Deferred[Any] | None:
        """
        Start the write of a change in a pipeline, as L{_change} would make
        it given the local entry of its entryUUID.

        @return: the write's Deferred, or C{None} if there is nothing to write.
        @raise _NotPipelined: if the change must be applied alone.
        """
        if change.state == codec.PRESENT:
            return None
        if change.state == codec.DELETE:
            if local is None:
                return None
            # The delete of a leaf: one with entries below fails, and is
            # applied again alone (with its subtree).
            ndn = local.ndn
            return self._startWrite(op, DELETE, ndn,
                                    lambda backend, hooks: backend.delete(op, ndn, hooks))
        try:
            entry = self._stored(change.dn, change.attributes)
        except (ldaperrors.LDAPException, InvalidDN):
            raise _NotPipelined() from None
        if local is None:
            return self._startWrite(op, ADD, entry.ndn,
                                    lambda backend, hooks: backend.add(op, entry, hooks))
        if local.ndn != entry.ndn:
            # A rename moves the entries below it too.
            raise _NotPipelined()
        if _content(local) == _content(entry):
            return None
        changes = _differences(local, _replacement(local, entry))
        ndn = local.ndn
        return self._startWrite(op, MODIFY, ndn, lambda backend, hooks: backend.modify(
            op, ndn, changes, hooks))

    def _startWrite(self, op: Operation, kind: str, ndn: DN,
                    write: Callable[[Any, Any], defer.Deferred[Any]]) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(
            self.directory.writeReplicated(op, kind, ndn, write, self._store()))

    def _applied(self, change: _Change, written: bool) -> None:
        """
        Count a change a pipeline applied, and take its cookie.
        """
        if change.state == codec.DELETE:
            if written:
                self.deleted += 1
        else:
            if self._present is not None:
                self._present.add(change.uuid)
            if change.state == codec.PRESENT:
                self.present += 1
        if written:
            self.applied += 1
            self._sinceSave += 1
        if change.cookie is not None:
            self._received(change.cookie)

    async def _info(self, op: Operation, response: IntermediateResponse) -> bool:
        """
        Act on a Sync Info message other than a syncIdSet (L{_changesSent}).

        @return: whether it ends the refresh stage of a refreshAndPersist search.
        """
        if _text(response.responseName or b"") != codec.SYNC_INFO:
            return False
        info = codec.decodeSyncInfo(response.responseValue)
        refreshDone = False
        cookie = info.cookie
        if info.kind == codec.REFRESH_PRESENT:
            await self._deleteNotPresent(op, cookie)
            refreshDone = info.refreshDone
            if not refreshDone and self.settings.multiSupplier:
                # The present phase's cookie says what the supplier held
                # (L{_deleteNotPresent}); the delete phase that follows
                # sends what holds it.
                cookie = None
        elif info.kind == codec.REFRESH_DELETE:
            refreshDone = info.refreshDone
        if refreshDone:
            self._present = None
        if cookie is not None:
            self._received(cookie)
        return refreshDone

    async def _done(self, op: Operation, response: Any, controls: Any) -> None:
        """
        The search's end: in refreshOnly, the end of the refresh.
        """
        if response.resultCode != 0:
            raise ldaperrors.get(response.resultCode, _text(response.errorMessage))
        done = _control(controls, codec.SYNC_DONE, codec.decodeSyncDone)
        if done is None:
            raise ldaperrors.LDAPProtocolError("the search ended without a Sync Done control")
        if not done.refreshDeletes and self._present is not None:
            await self._deleteNotPresent(op, done.cookie)
        if done.cookie is not None:
            self._received(done.cookie)
        await self._save(op)

    # The cookie

    def _received(self, cookie: bytes) -> None:
        self._unsaved = cookie

    async def _loadCookie(self, op: Operation) -> bytes | None:
        """
        @return: the cookie of the CSNs saved on the local suffix entry, or
            C{None} (a full refresh) when there are none.
        """
        try:
            suffix = await self.directory.get(op, self._suffix)
        except NoSuchObject:
            return self._firstCookie()
        csns = tuple(sorted(suffix.get("contextCSN")))
        if not csns:
            return self._firstCookie()
        return codec.Cookie(rid=self.settings.rid, sid=self._sid(), csns=csns).format()

    def _firstCookie(self) -> bytes | None:
        """
        @return: the cookie of a full refresh: none; among suppliers, one
            without CSNs, naming this server's ID (L{_sid}).
        """
        if not self.settings.multiSupplier:
            return None
        return codec.Cookie(rid=self.settings.rid, sid=self._sid()).format()

    def _sid(self) -> int | None:
        """
        @return: among suppliers, this server's ID, sent in the cookie so
            that the supplier never sends back this server's own changes
            (as slapd's consumer sends its C{serverID}); else C{None}.
        """
        return self.directory.csn.sid if self.settings.multiSupplier else None

    async def _saveIfDue(self, op: Operation) -> None:
        """
        Commit (L{_save}) every L{_SAVE_EVERY} changes, and every
        L{_SAVE_AFTER} seconds of a batch, while the provider keeps sending.
        """
        if self._sinceSave >= _SAVE_EVERY or (
                self._batch is not None
                and self.reactor.seconds() - self._batchBegun >= _SAVE_AFTER):
            await self._save(op)

    async def _save(self, op: Operation) -> None:
        """
        Commit what is applied, with the last cookie received if everything
        before it is applied: as C{contextCSN} on the local suffix entry, in
        the same transaction. An entry still waiting for its parent holds
        the cookie back.
        """
        try:
            await self._saveCookie(op)
        finally:
            batch, self._batch = self._batch, None
            self._sinceSave = 0
            if batch is not None:
                await batch.commit()

    async def _saveCookie(self, op: Operation) -> None:
        cookie = self._unsaved
        if cookie is None or self._orphans:
            return
        self._unsaved = None
        parsed = codec.Cookie.parse(cookie)
        self._cookie = codec.Cookie(rid=self.settings.rid, sid=self._sid(),
                                    csns=parsed.csns).format()
        if not parsed.csns:
            return
        self._committing(parsed.csns)
        try:
            suffix = await self._get(op, self._suffix)
        except NoSuchObject:
            return
        held = suffix.get("contextCSN")
        if self.settings.multiSupplier:
            # One supplier's cookie among others': merged, per server ID.
            if sorted(mergeCSNs(held, parsed.csns)) == sorted(held):
                return
            hooks: Any = _MergeContextCSN(parsed.csns)
        elif tuple(sorted(held)) == tuple(sorted(parsed.csns)):
            return
        else:
            hooks = _NO_HOOKS
        await self._store().modify(op, self._suffix,
                                   [Modification("replace", "contextCSN", parsed.csns)], hooks)

    def _committing(self, csns: Sequence[bytes]) -> None:
        """
        Take the time of the newest change a cookie covers, and now, as
        L{lastChange} and L{lastCommitted} (the cookie is committed with
        what it covers, or the session fails).
        """
        times = []
        for csn in csns:
            try:
                times.append(csnTime(csn).timestamp())
            except ValueError:
                continue
        if times:
            self.lastChange = max(times)
            self.lastCommitted = self.reactor.seconds()

    def _database(self) -> Database:
        db = self.directory.databaseFor(self._suffix)
        assert db is not None
        return db

    def _store(self) -> Any:
        """
        @return: what the local database is read and written through: the
            batch of writes under way, begun when there is none and the
            backend offers batches (L{IWriteBatches}); or the backend.
        """
        if self._batch is not None:
            return self._batch
        backend = self._database().backend
        if not IWriteBatches.providedBy(backend) or self.settings.multiSupplier:
            # A backend has one batch at a time; among suppliers, several
            # consumers write, each change in a transaction of its own.
            return backend
        self._batch = backend.batch()
        self._batchBegun = self.reactor.seconds()
        return self._batch

    async def _get(self, op: Operation, ndn: DN) -> Entry:
        """
        Read a local entry as the batch under way sees it.

        @raise NoSuchObject: if it does not exist.
        """
        if not ndn.isWithin(self._suffix):
            return await self.directory.get(op, ndn)  # type: ignore[no-any-return]
        return await self._store().get(op, ndn)  # type: ignore[no-any-return]

    # Applying changes

    async def _write(self, op: Operation, kind: str, ndn: DN, dn: str,
                     write: Callable[[Any, Any], defer.Deferred[Any]]) -> None:
        """
        Make one replicated write; if it fails, log the DN and the result and
        end the session, but for noSuchObject, and an add's
        entryAlreadyExists, which the caller handles.
        """
        try:
            await self.directory.writeReplicated(op, kind, ndn, write, self._store())
        except Exception as e:
            if isinstance(e, (NoSuchObject, _Stale)) or (
                    kind == ADD and isinstance(e, ldaperrors.LDAPEntryAlreadyExists)):
                raise
            self._log.error("{name}: cannot apply the {kind} of {dn}: {problem}; "
                            "restarting from the last saved cookie",
                            name=self.name, kind=kind, dn=dn, problem=_describe(e))
            raise _ApplyFailed(f"{kind} of {dn} failed") from None
        self.applied += 1
        self._sinceSave += 1
        await self._saveIfDue(op)

    async def _apply(self, op: Operation, dn: str, attributes: Any, uuid: str,
                     state: int = codec.ADD) -> None:
        """
        Make the local copy of an entry the provider sent (state add or
        modify): add it, or rename and rewrite the entry of its entryUUID
        (or, failing that, of its DN). From one of several suppliers, it is
        merged with the local entry instead (L{_merge}).
        """
        try:
            entry = self._stored(dn, attributes)
        except (ldaperrors.LDAPException, InvalidDN) as e:
            self._log.error("{name}: cannot store {dn} as the provider sent it: {problem}; "
                            "restarting from the last saved cookie",
                            name=self.name, dn=dn, problem=_describe(e))
            raise _ApplyFailed(f"{dn} cannot be stored") from None
        try:
            if self.settings.multiSupplier:
                await self._merge(op, entry, uuid, state)
                await self._adopt(op, entry.ndn)
                return
            local = await self._find(op, uuid)
            if local is None:
                try:
                    await self._write(op, ADD, entry.ndn, dn,
                                      lambda backend, hooks: backend.add(op, entry, hooks))
                except ldaperrors.LDAPEntryAlreadyExists:
                    # An entry of another entryUUID has the name: it gets
                    # the provider's content (tried after the add, which
                    # most often succeeds, to spare a read).
                    local = await self._get(op, entry.ndn)
            if local is None:
                pass
            elif local.ndn != entry.ndn:
                occupant = await self._occupant(op, entry.ndn, uuid)
                if occupant is not None:
                    # Only a refresh's present phase can leave an entry
                    # where the provider has another: it was deleted there
                    # (with its subtree), and the present phase would delete
                    # it after this rename failed.
                    await self._deleteSubtree(op, occupant)
                changes = _replacement(local, entry)
                await self._write(op, RENAME, local.ndn, dn, lambda backend, hooks: backend.rename(
                    op, local.ndn, entry.dn, True, hooks, changes))
            else:
                if _content(local) == _content(entry):
                    return
                changes = _differences(local, _replacement(local, entry))
                await self._write(op, MODIFY, local.ndn, dn, lambda backend, hooks: backend.modify(
                    op, local.ndn, changes, hooks))
        except NoSuchObject:
            parent = entry.ndn.parent()
            if await self._exists(op, parent):
                self._log.error("{name}: cannot apply {dn}: no such object; restarting from "
                                "the last saved cookie", name=self.name, dn=dn)
                raise _ApplyFailed(f"{dn}: no such object") from None
            if self.settings.multiSupplier and await self._resettle(op, entry, uuid, state):
                return
            # Providers send parents first; should one not have, the entry
            # waits for its parent (and the cookie is not saved meanwhile).
            self._orphans.setdefault(parent, {})[uuid] = entry
            return
        await self._adopt(op, entry.ndn)

    async def _resettle(self, op: Operation, entry: Entry, uuid: str, state: int) -> bool:
        """
        Among suppliers, apply an entry whose parent is not here because,
        as the local changelog tells, an ancestor was renamed or deleted
        here while the supplier wrote the entry below it: placed under the
        ancestor's new name (as the supplier places it once the rename
        reaches it), or dropped (as the supplier's consumer deletes it with
        the ancestor's subtree).

        @return: whether the entry was so dealt with.
        """
        found = await self._ancestorChange(entry.ndn.parent())
        if found is None:
            return False
        ancestor, now = found
        if now is None:
            self._log.warn("{name}: {dn} was written on the supplier below {ancestor}, which "
                           "was deleted here meanwhile: dropped", name=self.name,
                           dn=str(entry.dn), ancestor=str(ancestor))
            return True
        kept = len(entry.dn.rdns) - len(ancestor.rdns)
        moved = entry.withDN(DN(entry.dn.rdns[:kept] + now.dn.rdns))
        self._log.info("{name}: {dn} was written on the supplier below {ancestor}, renamed here "
                       "meanwhile: placed under {now}", name=self.name, dn=str(entry.dn),
                       ancestor=str(ancestor), now=str(now.dn))
        await self._merge(op, moved, uuid, state)
        return True

    async def _ancestorChange(self, parent: DN) -> tuple[DN, Entry | None] | None:
        """
        Look in the local changelog's last L{_RESETTLE_SCAN} records for
        the rename or delete of C{parent} or of one of its ancestors (the
        nearest).

        @return: the ancestor's normalised name then, and its entry now
            (C{None} if it was deleted); or C{None} if none was found.
        """
        backend = self._database().backend
        if not IChangelog.providedBy(backend):
            return None
        changelog = IChangelog(backend)
        names = []
        name = parent
        while name != self._suffix and name.isWithin(self._suffix):
            names.append(name)
            name = name.parent()
        first, last = await changelog.changeBounds()
        if last is None:
            return None
        after = max(first.number - 1 if first is not None else 0, last.number - _RESETTLE_SCAN)
        latest: dict[DN, Any] = {}
        while True:
            records = await changelog.changes(after, 500)
            if not records:
                break
            for record in records:
                if record.kind not in (RENAME, DELETE):
                    continue
                try:
                    target = self.directory.schema.normalizeDN(DN.parse(record.targetDN))
                except InvalidDN:
                    continue
                if target in names:
                    latest[target] = record
            after = records[-1].number
        for name in names:
            change = latest.get(name)
            if change is None:
                continue
            if change.kind == DELETE:
                return name, None
            now = await self._find(self.directory.internalOperation(),
                                   change.entryUUID.decode("ascii", "replace").lower())
            if now is not None:
                return name, now
        return None

    async def _merge(self, op: Operation, entry: Entry, uuid: str, state: int) -> None:
        """
        Apply an entry one of several suppliers sent, resolving conflicts by
        CSN as slapd's multi-provider replication does:

          - an entry of this entryUUID is merged with it (L{merge}: each
            attribute, and the name, from the version that changed it
            last), and rewritten (renamed) if that changes it;
          - an entry of another entryUUID under its name (the same DN added
            on two suppliers at once): the one with the later C{entryCSN}
            is kept, as slapd keeps it, the other is logged and dropped;
          - none, and the supplier sends it as changed (state modify): it
            was deleted here, and the change is dropped (a delete wins over
            a concurrent modify);
          - none: it is added.

        A local write to the entry made while it is merged has the merge
        made again (L{_Guarded}).

        @raise NoSuchObject: if its parent does not exist.
        """
        for _ in range(_MERGE_ATTEMPTS):
            local = await self._find(op, uuid)
            try:
                if local is None:
                    await self._addFromSupplier(op, entry, uuid, state)
                else:
                    await self._mergeWith(op, local, merge(local, entry))
                return
            except _Stale:
                continue
        raise _ApplyFailed(f"{entry.dn} kept changing while it was merged")

    async def _addFromSupplier(self, op: Operation, entry: Entry, uuid: str, state: int) -> None:
        """
        Add an entry one of several suppliers sent that has no local entry
        of its entryUUID (L{_merge}).

        @raise _Stale: if an entry of its entryUUID came meanwhile.
        """
        suppliers = self._database().suppliers
        if state == codec.MODIFY or (suppliers is not None and suppliers.deleted(uuid)):
            self._log.info("{name}: {dn} (entryUUID {uuid}) was deleted here; its change "
                           "on the supplier is dropped", name=self.name, dn=str(entry.dn),
                           uuid=uuid)
            return
        try:
            await self._write(op, ADD, entry.ndn, str(entry.dn),
                              lambda backend, hooks: backend.add(op, entry, hooks))
            return
        except ldaperrors.LDAPEntryAlreadyExists:
            pass
        occupant = await self._get(op, entry.ndn)
        theirs = occupant.get("entryUUID")
        if theirs and theirs[0].decode("ascii", "replace").lower() == uuid:
            raise _Stale()
        ours, incoming = max(occupant.get("entryCSN"), default=b""), max(entry.get("entryCSN"),
                                                                         default=b"")
        if ours >= incoming:
            self._log.warn(
                "{name}: {dn} was added here and on a supplier at once: kept the later "
                "(entryUUID {kept}, CSN {keptCSN}), dropped the supplier's (entryUUID {uuid}, "
                "CSN {csn})", name=self.name, dn=str(entry.dn),
                kept=theirs[0].decode("ascii", "replace") if theirs else "", keptCSN=ours.decode(),
                uuid=uuid, csn=incoming.decode())
            return
        self._log.warn(
            "{name}: {dn} was added here and on a supplier at once: kept the later (entryUUID "
            "{uuid}, CSN {csn}), replaced this server's (entryUUID {dropped}, CSN {droppedCSN})",
            name=self.name, dn=str(entry.dn), uuid=uuid, csn=incoming.decode(),
            dropped=theirs[0].decode("ascii", "replace") if theirs else "",
            droppedCSN=ours.decode())
        await self._mergeWith(op, occupant, entry)

    async def _mergeWith(self, op: Operation, local: Entry, merged: Entry) -> None:
        """
        Rewrite (rename) a local entry to its merged version, unless that
        changes nothing; only if the entry is still as it was read.

        @raise _Stale: if it changed meanwhile.
        """
        if local.ndn == merged.ndn and _content(local) == _content(merged):
            return
        expected = _version(local)
        changes = _replacement(local, merged)
        ndn = local.ndn
        try:
            if ndn != merged.ndn:
                occupant = await self._occupant(
                    op, merged.ndn, _text((merged.get("entryUUID") or (b"",))[0]).lower())
                if occupant is not None:
                    # Only a present phase can leave an entry where the
                    # supplier has another (L{_apply}).
                    await self._deleteSubtree(op, occupant)
                await self._write(op, RENAME, ndn, str(merged.dn),
                                  lambda backend, hooks: backend.rename(
                                      op, ndn, merged.dn, True, _Guarded(hooks, expected), changes))
            else:
                changes = _differences(local, changes)
                await self._write(op, MODIFY, ndn, str(merged.dn),
                                  lambda backend, hooks: backend.modify(
                                      op, ndn, changes, _Guarded(hooks, expected)))
        except NoSuchObject:
            if not await self._exists(op, ndn):
                # Deleted meanwhile (by a client, or another supplier's
                # consumer): merged again, with nothing.
                raise _Stale() from None
            raise

    def _stored(self, dn: str, attributes: Any) -> Entry:
        """
        @return: the entry to store for one the provider sent.
        @raise ldaperrors.LDAPException: if it breaks the schema.
        @raise InvalidDN: if its DN is malformed.
        """
        return Entry(
            DN.parse(dn),
            [(_text(name), [_bytes(v) for v in values]) for name, values in attributes
             if _text(name).split(";")[0].lower() not in _NOT_STORED],
            self.directory.schema,
        )

    async def _adopt(self, op: Operation, parent: DN) -> None:
        """
        Apply the entries that were waiting for C{parent}.
        """
        for uuid, child in self._orphans.pop(parent, {}).items():
            attributes = [(a.description, a.values) for a in child]
            await self._apply(op, str(child.dn), attributes, uuid)

    async def _find(self, op: Operation, uuid: str) -> Entry | None:
        """
        @return: the local entry of an entryUUID (an indexed search in the
            memory and sql backends), or C{None}.
        """
        found = await self._search(op, self._suffix, Scope.SUB,
                                   byUUID(self.directory.schema, uuid.encode()))
        return found[0] if found else None

    async def _findAll(self, op: Operation, uuids: list[str]) -> dict[str, Entry]:
        """
        @param uuids: entryUUIDs, as text.
        @return: the local entries of those that have one, by entryUUID
            (one read of the write batch, L{IWriteBatch.findEqual}).
        """
        if not uuids:
            return {}
        schema = self.directory.schema
        at = schema.attributeType("entryUUID")
        assert at is not None
        found = await self._store().findEqual(
            op, at, {schema.normalizeValue(at, uuid.encode()) for uuid in uuids})
        byUUID = {}
        for entry in found:
            values = entry.get("entryUUID")
            if values:
                byUUID[values[0].decode("ascii", "replace").lower()] = entry
        return byUUID

    async def _occupant(self, op: Operation, ndn: DN, uuid: str) -> Entry | None:
        """
        @return: the local entry named C{ndn} if its entryUUID is not C{uuid}.
        """
        try:
            entry = await self._get(op, ndn)
        except NoSuchObject:
            return None
        values = entry.get("entryUUID")
        if values and values[0].decode("ascii", "replace").lower() == uuid:
            return None
        return entry

    async def _exists(self, op: Operation, ndn: DN) -> bool:
        try:
            await self._get(op, ndn)
        except NoSuchObject:
            return False
        return True

    async def _search(self, op: Operation, base: DN, scope: Scope, f: Any) -> list[Entry]:
        """
        @return: the local entries C{f} matches, deepest first; none if the
            base does not exist.
        """
        search = self.directory.internalOperation()
        search.search = SearchParameters(base=base, scope=scope, filter=f,
                                         attributes=["entryUUID", "entryCSN", ATTRIBUTE_CSN])
        found: list[Entry] = []

        def emit(entry: Entry | SearchReference) -> None:
            if isinstance(entry, Entry):
                found.append(entry)

        try:
            await self._store().search(search, emit)
        except NoSuchObject:
            return []
        found.sort(key=lambda e: len(e.ndn), reverse=True)
        return found

    def _originCSN(self, change: _Change) -> bytes | None:
        """
        @return: among suppliers, the CSN a supplier sent with a delete
            (ldapd's sends it, as C{entryCSN}), or C{None}.
        """
        if not self.settings.multiSupplier:
            return None
        for name, values in change.attributes:
            if _text(name).lower() == "entrycsn":
                csns = [_bytes(v) for v in values]
                if csns and csnSID(csns[0]) is not None:
                    return csns[0]
        return None

    async def _deleteByUUID(self, op: Operation, uuid: str, csn: bytes | None = None) -> None:
        """
        Delete the local entry of an entryUUID, with what is below it.

        @param csn: the delete's CSN at its origin, if the supplier sent it.
        """
        local = await self._find(op, uuid)
        if local is not None:
            await self._deleteSubtree(op, local, csn)
            return
        suppliers = self._database().suppliers
        if suppliers is not None:
            # Deleted on a supplier before its add reached this server: the
            # add, should another supplier forward it late, is dropped.
            suppliers.remember(uuid)

    async def _deleteSubtree(self, op: Operation, entry: Entry, csn: bytes | None = None) -> None:
        """
        Delete an entry and whatever is below it, children first.

        @param csn: the CSN the changelog records the entry's delete with
            (its origin's); the others get CSNs of this server's own.
        """
        def deleting(ndn: DN) -> Callable[[Any, Any], defer.Deferred[Any]]:
            return lambda backend, hooks: backend.delete(op, ndn, hooks)

        for victim in await self._search(op, entry.ndn, Scope.SUB, everything(self.directory.schema)):
            op.originCSN = csn if victim.ndn == entry.ndn else None
            try:
                await self._write(op, DELETE, victim.ndn, str(victim.dn), deleting(victim.ndn))
            except NoSuchObject:
                continue
            finally:
                op.originCSN = None
            self.deleted += 1

    async def _deleteNotPresent(self, op: Operation, cookie: bytes | None = None) -> None:
        """
        The end of a present phase: delete the local entries of the
        replicated content whose entryUUIDs the provider did not name.
        Among suppliers, an entry whose add (stamped in
        C{ldapdAttributeCSN}; else its C{entryCSN}) is newer than what the
        supplier held of its server ID (its C{cookie}) is kept: the
        supplier had not seen it yet. One it had seen was deleted there, and
        is deleted here even if it changed here since.

        @param cookie: the cookie sent with the end of the present phase.
        """
        present = self._present
        if present is None:
            # A provider that ends a present phase it never began.
            raise ldaperrors.LDAPProtocolError("a present phase ended after the refresh was done")
        held = None
        if self.settings.multiSupplier:
            csns = codec.Cookie.parse(cookie).csns if cookie is not None else ()
            if not csns:
                self._log.warn("{name}: the supplier ended its present phase without a cookie; "
                               "the entries it did not name are kept", name=self.name)
                return
            held = csnVector(csns)
        for entry in await self._search(op, self._suffix, self.settings.scope, self._filter):
            values = entry.get("entryUUID")
            if values and values[0].decode("ascii", "replace").lower() in present:
                continue
            # Judged by its add (else, unstamped, by its last change): a
            # supplier that held it deleted it, even if it changed here
            # since, as a delete wins over a concurrent modify.
            csn = createdCSN(entry) or max(entry.get("entryCSN"), default=None)
            if held is not None and csn is not None and newerThan(csn, held):
                continue
            if await self._exists(op, entry.ndn):
                await self._deleteSubtree(op, entry)


#: The first octet of a syncIdSet Sync Info value (its CHOICE tag).
_ID_SET_TAG = bytes([0xA0 | codec.SYNC_ID_SET])


def _isIdSet(response: Any) -> bool:
    """
    @return: whether a response is a syncIdSet Sync Info message (told by
        its tag: it is decoded once, when applied).
    """
    return (isinstance(response, IntermediateResponse)
            and _text(response.responseName or b"") == codec.SYNC_INFO
            and (response.responseValue or b"")[:1] == _ID_SET_TAG)


def _carriesChanges(response: Any) -> bool:
    """
    @return: whether a response of the sync search carries changes: an
        entry, or a syncIdSet.
    """
    return isinstance(response, pureldap.LDAPSearchResultEntry) or _isIdSet(response)


def _replacement(old: Entry, new: Entry) -> list[Modification]:
    """
    @return: the modifications that turn C{old}'s content into C{new}'s
        (C{contextCSN} and computed attributes left as they are).
    """
    keep = {a.description.lower() for a in new}
    changes = [
        Modification("replace", a.description, ())
        for a in old
        if a.description.lower() not in keep and a.type.name.lower() not in _NOT_STORED
    ]
    changes.extend(Modification("replace", a.description, a.values) for a in new)
    return changes


def _differences(old: Entry, changes: list[Modification]) -> list[Modification]:
    """
    @return: the replacements of C{changes} that change C{old}: a modify
        then rewrites (and re-indexes) only the attributes the provider
        changed, as slapd's consumer modifies only those (not for a rename,
        whose new RDN may take values that a replacement must restore).
    """
    held = {a.description: a.values for a in old}
    return [c for c in changes if held.get(c.description) != tuple(c.values)]


def _content(entry: Entry) -> list[tuple[str, list[bytes]]]:
    return sorted(
        (a.description.lower(), sorted(a.values))
        for a in entry
        if a.type.name.lower() not in _NOT_STORED
    )


def _control(controls: Any, oid: str, decode: Callable[..., Any]) -> Any:
    """
    @return: the decoded value of the response control C{oid}, or C{None}.
    @raise ldaperrors.LDAPProtocolError: if its value is malformed.
    """
    for name, _, value in controls or ():
        if _text(name) == oid:
            try:
                return decode(value)
            except ValueError as e:
                raise ldaperrors.LDAPProtocolError(f"malformed control {oid}: {e}") from None
    return None


def _modeName(mode: int) -> str:
    return next(name for name, value in MODES.items() if value == mode)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


# Configuration

_KEYS = frozenset({
    "suffix", "provider", "bind_dn", "bind_password", "mode", "interval", "retry", "rid",
    "filter", "scope", "attrs", "starttls", "ca_file", "verify_hostname", "timeout",
    "chain_writes", "multi_supplier",
})


def replicaFromConfig(table: dict[str, Any], context: ConfigContext, directory: Directory,
                      defaultRid: int = 1) -> SyncReplConsumer:
    """
    Build the consumer of a C{[[replica]]} table and make its database a
    replica (L{Database.replica}).

    @param table: the table: C{suffix} and C{provider} (required), C{bind_dn}
        and C{bind_password}, C{mode} (C{refreshAndPersist} or
        C{refreshOnly}), C{interval}, C{retry} and C{timeout} (durations),
        C{rid}, C{filter}, C{scope} (C{base}, C{one}, C{sub}), C{attrs},
        C{starttls}, C{ca_file}, C{verify_hostname}, C{chain_writes},
        C{multi_supplier} (the provider is one of several suppliers: the
        database takes writes, and may have one such table per supplier).
    @param context: where the table is.
    @param directory: the directory whose database the replica keeps.
    @param defaultRid: the C{rid} when the table has none.
    @return: the consumer, not started.
    @raise ldapd.registry.ConfigError: naming the key that is wrong.
    """
    config = ConfigTable(table, context, _KEYS)
    schema = directory.schema
    suffix = config.dn("suffix")
    if suffix is None:
        raise context.error("suffix", "is required")
    text = config.string("suffix")
    ndn = schema.normalizeDN(suffix)
    db = next((d for d in directory.databases if d.normalizedSuffix == ndn), None)
    if db is None:
        raise context.error("suffix", f"no [[database]] has the suffix {text!r}")
    multi = config.boolean("multi_supplier", False)
    if db.replica is not None:
        raise context.error("suffix", f"two [[replica]] tables replicate {text!r} (give each "
                                      "multi_supplier = true to replicate it between suppliers)")
    if db.suppliers is not None and not multi:
        raise context.error("suffix", f"{text!r} is replicated between suppliers: every "
                                      "[[replica]] table of it needs multi_supplier = true")
    if multi:
        _checkSupplier(config, context, directory)
    if isinstance(db.backend, ProxyBackend):
        raise context.error("suffix", "the database of a replica must keep its entries "
                                      "(memory or sql backend), not proxy them")
    uri = config.required("provider", str)
    startTLS = config.boolean("starttls", False)
    try:
        provider = parseUpstream(uri, startTLS)
    except ValueError as e:
        raise context.error("provider", str(e)) from None
    bindDN, bindPassword = bindCredentials(config)
    modeName = config.choice("mode", MODES, "refreshAndPersist")
    if "interval" in config and modeName != "refreshOnly":
        raise context.error("interval", "is for mode = \"refreshOnly\"")
    interval = config.duration("interval", 60)
    retry = config.duration("retry", 5)
    timeout = config.duration("timeout", 10)
    for key, value in [("interval", interval), ("retry", retry), ("timeout", timeout)]:
        if value <= 0:
            raise context.error(key, "must be more than 0")
    rid = config.integer("rid", defaultRid, minimum=0, maximum=999)
    filterText = config.string("filter", "(objectClass=*)")
    try:
        compileFilter(parseFilter(filterText), schema)
    except (InvalidFilter, ldaperrors.LDAPException) as e:
        raise context.error("filter", f"not a valid filter: {_describe(e)}") from None
    scopeName = config.choice("scope", _SCOPES, "sub")
    expected = "a non-empty list of attribute names"
    attrs = config.strings("attrs", ["*", "+"], expected, nonEmpty=True)
    if not attrs:
        raise context.error("attrs", f"must be {expected}")
    options = upstreamTLS(config, [provider]).get(provider.uri)
    settings = ReplicaSettings(
        suffix=db.suffix,
        provider=provider,
        bindDN=bindDN,
        bindPassword=bindPassword.encode("utf-8") if bindPassword is not None else b"",
        mode=MODES[modeName],
        interval=interval,
        retry=retry,
        rid=rid,
        filter=filterText,
        scope=_SCOPES[scopeName],
        attributes=tuple(attrs),
        chainWrites=config.boolean("chain_writes", False),
        timeout=timeout,
        multiSupplier=multi,
    )
    pool = UpstreamPool([provider], context.reactor, bindDN, settings.bindPassword, size=1,
                        timeout=timeout, retryInterval=0, tls=lambda _: options)
    consumer = SyncReplConsumer(directory, settings, pool, context.reactor)
    if multi:
        if db.suppliers is None:
            db.suppliers = Suppliers(db.normalizedSuffix)
            directory.subscribe(db.suppliers.changed)
        db.suppliers.consumers.append(consumer)
    else:
        db.replica = consumer
    return consumer


def _checkSupplier(config: ConfigTable, context: ConfigContext, directory: Directory) -> None:
    """
    Check what a C{[[replica]]} table with C{multi_supplier = true} needs:
    the C{changelog} plugin with a server ID of this server's own (its
    changes' CSNs, and its changelog, which the other suppliers replicate
    from), and no C{chain_writes} (the database takes writes itself).

    @raise ldapd.registry.ConfigError: naming the key that is wrong.
    """
    if config.boolean("chain_writes", False):
        raise context.error("chain_writes", "a supplier takes writes itself: not with "
                                            "multi_supplier = true")
    if not any(getattr(p, "name", None) == "changelog" for p in directory.plugins.plugins):
        raise context.error("multi_supplier", 'needs the changelog plugin ([[plugin]] name = '
                                              '"changelog") with a sid of this server\'s own')
    if not directory.csn.sid:
        raise context.error("multi_supplier", "needs the changelog plugin's sid set (1 to "
                                              "4095), another on every supplier")
