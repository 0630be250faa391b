"""
The Directory: the one place that knows the naming contexts.

It takes each L{Operation} the protocol hands it, decodes its controls, and
routes it: to the database whose suffix is the longest match, or to a view
(the root DSE and cn=Subschema, L{ldapd.views}; plugins' private views such
as cn=Monitor). Searches are carried out by L{ldapd.search}, binds and
password checks by L{ldapd.binding}; the Directory runs the write pipeline
itself: the operational attributes stamped (L{ldapd.stamping}), one
transaction in the backend with the plugin chain's hooks, the change
announced to subscribers, the post hooks. Every result code it sends comes
from L{ldapd.results}.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence, cast

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ldapd import accesslog, controls, extended, passwords, transactions
from ldapd._cache import LRU
from ldapd._codec import Control, encodeResult, octetString
from ldapd.authz import PROXIED_AUTHZ, AuthzPolicy, ProxiedAuthz
from ldapd.binding import Binder
from ldapd.changes import ADD, DELETE, MODIFY, RENAME, Change, ChangeRecord
from ldapd.csn import CSNGenerator
from ldapd.dn import DN
from ldapd.entry import Entry, Modification, parseDescription
from ldapd.extensions import ControlType, ExtendedOutcome, Extensions
from ldapd.filters import Filter, compileFilter, throughSearchable
from ldapd.host import Lifecycle, PluginHost, RootDSEProvider
from ldapd.interfaces import (
    IBackend,
    IBackendCompare,
    IChangelogTransaction,
    IPasswordStorage,
    IPluginTransaction,
    ITransaction,
    ITransactionHooks,
    IWriteBatches,
)
from ldapd.ldif import parseLDIF
from ldapd.limits import Limits
from ldapd.naming import Names
from ldapd.operation import Abandoned, Connection, Identity, Operation
from ldapd.passwordcheck import BIND
from ldapd.plugins.chain import PluginChain
from ldapd.plugins.defaultaccess import DefaultAccess
from ldapd.registry import installedExtensions
from ldapd.requests import (
    AddRequest,
    BindRequest,
    CompareRequest,
    DeleteRequest,
    ExtendedRequest,
    ModifyDNRequest,
    ModifyRequest,
    Request,
    SearchRequest,
    StartTLSRequest,
    WhoAmIRequest,
)
from ldapd.results import NoSuchObject, Outcome, Reply, Result, resultOf
from ldapd.sasl import Authentication
from ldapd.schema import AttributeType, InvalidValue, Schema
from ldapd.search import Searcher, withVirtual
from ldapd.stamping import stampNew, stampWrite
from ldapd.statistics import ServerStatistics
from ldapd.syncrepl.codec import PERSISTENT_SEARCH, decodePersistentSearch
from ldapd.syncrepl.psearch import persistentSearch
from ldapd.throttle import BindThrottle, BindThrottleSettings
from ldapd.views import RootDSE, Subschema

__all__ = ["Database", "Directory", "Reply", "SeedError"]

_log = Logger()

#: The OID of userPassword, whose values' cost a write must respect.
_USER_PASSWORD = "2.5.4.35"

#: How many request DNs the directory keeps parsed and normalised.
_CACHED_NAMES = 1024


#: The limits of a directory built without any: L{Limits}' defaults.
_DEFAULT_LIMITS = Limits()

#: The features of ldapd's core, which the root DSE lists with the plugins'.
_FEATURES = (
    "1.3.6.1.1.14",  # Modify-Increment (RFC 4525)
    "1.3.6.1.4.1.4203.1.5.1",  # all operational attributes, '+' (RFC 3673)
    "1.3.6.1.4.1.4203.1.5.2",  # object class attribute lists, '@inetOrgPerson' (RFC 4529)
    "1.3.6.1.4.1.4203.1.5.3",  # absolute true and false filters (RFC 4526)
)

#: The operations a control may take over (L{ControlType.update}).
_UPDATES = frozenset({ADD, DELETE, MODIFY, RENAME})

#: The hooks of a write forwarded to a provider (C{chain_writes}): its
#: plugins run there, and the change comes back by replication.
_NO_HOOKS = PluginChain()

#: The NO-USER-MODIFICATION attributes the root DN may write with the Relax
#: Rules control, slapd's C{SLAP_AT_MANAGEABLE} ones: by OID, creatorsName,
#: createTimestamp, modifiersName, modifyTimestamp and entryUUID.
_MANAGEABLE = frozenset({"2.5.18.3", "2.5.18.1", "2.5.18.4", "2.5.18.2", "1.3.6.1.1.16.4"})


@dataclass(frozen=True)
class _Assertion:
    """
    The Assertion control's filter (RFC 4528) as one client may test it:
    the attributes it may not read (as the plugins' C{filter_entry} strips
    them from its target) are Undefined in it (L{throughSearchable}), as
    slapd's C{test_filter} needs search access. Prepared before a write,
    it is tested in the write's transaction, on the entry as it is there.

    @ivar filter: the compiled filter, narrowed to what the client may test.
    @ivar hidden: the attribute types the client may not test.
    """

    filter: Filter
    hidden: frozenset[AttributeType]

    def check(self, entry: Entry) -> None:
        """
        @param entry: the operation's target (for an add, the new entry).
        @raise controls.AssertionFailed: unless the filter is true of it.
        """
        if self.filter.match(entry.without(self.hidden) if self.hidden else entry) is not True:
            raise controls.AssertionFailed("assertion control failed")


class SeedError(Exception):
    """
    A database's C{seed_ldif} could not be loaded: the message names the
    file, the line and the entry, and why. The database is left as it was.
    """


@dataclass
class Database:
    """
    One naming context: a suffix served by a backend.

    @ivar suffix: the suffix as configured.
    @ivar backend: the L{IBackend}.
    @ivar rootDN: the database's administrator, who needs no entry.
    @ivar rootPassword: the root DN's password, stored form (hashed or cleartext).
    @ivar seedLDIF: an LDIF file loaded when the database is empty.
    @ivar replica: for a copy kept in step with a provider, the syncrepl
        consumer (L{ldapd.syncrepl.consumer.SyncReplConsumer}): clients'
        writes are referred to the provider (its C{referral}), or forwarded
        to it through its C{chain} backend; the server's own writes (the
        consumer's among them) stay local.
    @ivar suppliers: for a database replicated between several suppliers
        (C{[[replica]]} tables with C{multi_supplier = true}), what its
        consumers share (L{ldapd.syncrepl.consumer.Suppliers}); it takes
        clients' writes as any database does.
    @ivar private: whether it is a private view (C{cn=changelog},
        C{cn=Monitor}): see L{Directory.addPrivateDatabase}.
    """

    suffix: DN
    backend: IBackend
    rootDN: DN | None = None
    rootPassword: bytes | None = None
    seedLDIF: Path | None = None
    replica: Any = None
    suppliers: Any = None
    private: bool = False
    normalizedSuffix: DN = field(init=False)
    normalizedRootDN: DN | None = field(init=False, default=None)


@implementer(ITransaction)
class _TransactionView:
    """
    A write's transaction as the Directory hands it to the plugin chain's
    hooks (L{IPluginTransaction}): the backend's, and L{modify}, through
    which a plugin makes a change of another entry that is a write of its
    own, made by L{_WriteHooks} once the write's own hooks have run.

    @ivar pending: the changes asked for and not yet made, in order.
    """

    def __init__(self, txn: ITransaction) -> None:
        self._txn = txn
        self.pending: deque[tuple[Operation, DN, list[Modification]]] = deque()

    def get(self, ndn: DN) -> Entry | None:
        return self._txn.get(ndn)  # type: ignore[no-any-return]

    def put(self, entry: Entry) -> None:
        self._txn.put(entry)

    def remove(self, ndn: DN) -> None:
        self._txn.remove(ndn)

    def modify(self, op: Operation, ndn: DN, modifications: Sequence[Modification]) -> None:
        self.pending.append((op, ndn, list(modifications)))


@implementer(IPluginTransaction)
class _PluginTransaction(_TransactionView):
    """
    The L{_TransactionView} of a backend that keeps no changelog.
    """


@implementer(IPluginTransaction, IChangelogTransaction)
class _PluginChangelogTransaction(_TransactionView):
    """
    The L{_TransactionView} of a backend that keeps a changelog.
    """

    def appendChange(self, record: ChangeRecord) -> int:
        return cast(IChangelogTransaction, self._txn).appendChange(record)  # type: ignore[no-any-return]


@implementer(ITransactionHooks)
class _WriteHooks:
    """
    The transaction hooks a Directory hands a backend for one write: the
    plugin chain's, run with the transaction as an L{IPluginTransaction};
    then each change of another entry a hook asked for (L{_TransactionView.modify}),
    stamped and passed to the chain's C{modify} hooks as a write of its
    own, so that a changelog records it after the write that caused it
    (with a greater CSN). The entries seen are remembered, so that the
    changes are announced without reading anything again.

    @ivar old: the entry before the write (C{None} for an add).
    @ivar new: the entry after it (C{None} for a delete).
    @ivar derived: the changes of other entries made in the write's
        transaction, as C{(op, old, new)}.
    @ivar assertion: the Assertion control's filter, tested on the target
        entry before the chain's C{check} hooks, or C{None}.
    """

    def __init__(self, directory: Directory, assertion: _Assertion | None = None) -> None:
        self._directory = directory
        self._hooks = directory.plugins
        self.assertion = assertion
        self.old: Entry | None = None
        self.new: Entry | None = None
        self.derived: list[tuple[Operation, Entry, Entry]] = []

    def _view(self, txn: ITransaction) -> _TransactionView:
        if IChangelogTransaction.providedBy(txn):
            return _PluginChangelogTransaction(txn)
        return _PluginTransaction(txn)

    def check(self, operation: str, op: Operation, txn: ITransaction, *args: Any) -> None:
        # A backend that runs the write again (a PostgreSQL conflict)
        # calls this again: what the last run did is what commits.
        self.derived = []
        if self.assertion is not None:
            # The entry as the transaction has it (for modify and rename,
            # the one before the write): the test and the write are atomic.
            self.assertion.check(args[0])
        self._hooks.check(operation, op, self._view(txn), *args)

    def txn(self, operation: str, op: Operation, txn: ITransaction, *args: Any) -> None:
        view = self._view(txn)
        self._hooks.txn(operation, op, view, *args)
        if operation == ADD:
            self.old, self.new = None, args[0]
        elif operation == DELETE:
            self.old, self.new = args[0], None
        else:
            self.old, self.new = args
        while view.pending:
            derivedOp, ndn, modifications = view.pending.popleft()
            old = txn.get(ndn)
            if old is None:
                continue
            new = old.modified(modifications + self._directory._stampMods(derivedOp))
            self._hooks.check(MODIFY, derivedOp, view, old, new)
            txn.put(new)
            self._hooks.txn(MODIFY, derivedOp, view, old, new)
            self.derived.append((derivedOp, old, new))


class Directory:
    """
    The naming contexts of a server, with their backends and plugins.

    @ivar schema: the schema.
    @ivar plugins: the L{PluginChain}.
    @ivar limits: the limits for everyone but root DNs.
    @ivar passwordHash: the scheme passwords set by Password Modify are hashed with.
    @ivar rehashOnBind: whether binds store passwords anew in C{passwordHash}.
    @ivar bindThrottle: the L{BindThrottle} binds go through, or C{None}.
    @ivar passwordVerifier: checks passwords within the limits of
        C{passwordLimits} (L{passwords.PasswordVerifier}, the reactor's).
    @ivar passwordLimits: the limits of this directory's password checks
        (L{passwords.PasswordLimits}).
    @ivar csn: makes the C{entryCSN} of each write (L{CSNGenerator}).
    @ivar extensions: the registered controls, extended operations and
        features (L{Extensions}): ldapd's own, the plugins' and those of
        installed packages.
    @ivar configuredDatabases: the databases in the order they were
        configured (L{databases} is in routing order, longest suffix first).
    @ivar statistics: what this process counts for C{cn=Monitor}
        (L{ServerStatistics}); the protocol keeps most of it.
    @ivar rootDSEProviders: the plugins' L{RootDSEProvider}s: further
        attributes of the root DSE, computed each time a client reads it.
    @ivar rootDSE: the view serving the root DSE (L{RootDSE}).
    @ivar subschema: the view serving C{cn=Subschema} (L{Subschema}).
    @ivar searcher: carries out searches (L{Searcher}); the syncrepl
        provider and persistent searches send entries through it.
    @ivar binder: carries out binds and password checks (L{Binder}).
    @ivar authz: decides who may act as whom (L{AuthzPolicy}).
    @ivar names: resolves names through referral objects and aliases, and
        refers names in no naming context (L{Names}).
    """

    _log = Logger()

    def __init__(
        self,
        databases: Iterable[Database],
        plugins: Sequence[Any] = (),
        schema: Schema | None = None,
        limits: Limits = _DEFAULT_LIMITS,
        passwordHash: str = "{ARGON2}",
        passwordLimits: passwords.PasswordLimits | None = None,
        allowAnonymous: bool = True,
        allowUnauthenticatedBind: bool = False,
        reactor: Any = None,
        authentication: Authentication | None = None,
        rehashOnBind: bool = False,
        bindThrottle: BindThrottleSettings | None = None,
        predecessor: Directory | None = None,
        referral: Sequence[str] = (),
        authzPolicy: str = "none",
    ) -> None:
        """
        @param databases: the naming contexts.
        @param plugins: L{ldapd.interfaces.IOperationPlugin}s, in order. When
            none of them controls access (has a true C{controlsAccess}), the
            L{DefaultAccess} policy is put first. Those with an C{attach}
            method have it called with a L{PluginHost}, through which they
            register what they add.
        @param schema: the schema; the standard one by default.
        @param limits: size and time limits.
        @param passwordHash: the scheme for passwords set by Password Modify.
        @param passwordLimits: the most work a stored password may ask of a
            verification, checked when clients write C{userPassword} and
            when they bind, and how many slow verifications run at once;
            L{passwords.PasswordLimits}'s defaults by default.
        @param allowAnonymous: whether anonymous binds (and operations) are allowed.
        @param allowUnauthenticatedBind: whether a bind with a DN and an empty
            password succeeds as anonymous (RFC 4513 §5.1.2); refused by default.
        @param reactor: the reactor, for its clock and thread pool.
        @param authentication: SASL mechanisms, identity mappings and the
            TLS rule for simple binds (L{ldapd.sasl.Authentication}); none
            of them by default.
        @param rehashOnBind: whether a bind that succeeds against a password
            stored in another scheme than C{passwordHash} stores it anew in
            C{passwordHash} (L{Binder}).
        @param bindThrottle: the limits of failed binds per client address
            and per DN past which binds are refused unchecked
            (L{ldapd.throttle}); none by default.
        @param predecessor: the directory this one is to replace in a
            running server (a reload), serving the same backends: its
            statistics, the generator of its CSNs and the subscribers to
            its changes (persistent searches, syncrepl sessions) are this
            one's too, so that the counters go on, CSNs keep growing and a
            write through either is announced to every subscriber. Its
            plugins' open hooks and timers are for L{openPlugins}.
        @param referral: the default referral: the LDAP URLs a request for
            a name in no naming context is referred to (as slapd's
            C{referral} directive); none by default.
        @param authzPolicy: who may act as whom through proxied
            authorization and SASL authorization identities
            (L{ldapd.authz.POLICIES}); only root DNs by default.
        @raise ldapd.plugins.chain.UnknownHook: if a plugin has a method
            named like a hook that no operation runs.
        @raise ldapd.extensions.RegistrationError: if two registrations
            conflict.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.schema = schema if schema is not None else Schema.standard()
        if passwordHash.upper() not in passwords.SCHEMES:
            raise ValueError(f"unknown password hash {passwordHash!r}")
        self.passwordHash = passwordHash
        self.rehashOnBind = rehashOnBind
        # A reload that keeps the throttle's settings keeps its counts.
        kept: BindThrottle | None = (
            predecessor.bindThrottle if predecessor is not None else None)
        self.bindThrottle: BindThrottle | None = (
            None if bindThrottle is None
            else kept if kept is not None and kept.settings == bindThrottle
            else BindThrottle(bindThrottle, reactor))
        self.passwordVerifier = passwords.verifierFor(reactor)
        self.passwordLimits = (
            passwordLimits if passwordLimits is not None else passwords.PasswordLimits()
        )
        if predecessor is None:
            self.passwordVerifier.limits = self.passwordLimits
        plugins = list(plugins)
        if not any(getattr(p, "controlsAccess", False) for p in plugins):
            plugins.insert(0, DefaultAccess(self.schema))
        self.plugins = PluginChain(plugins)
        self.limits = limits
        self.allowAnonymous = allowAnonymous
        self.allowUnauthenticatedBind = allowUnauthenticatedBind
        self.authentication = authentication if authentication is not None else Authentication()
        self.databases: list[Database] = []
        self._privateSuffixes: list[DN] = []
        self._views: dict[DN, Database] = {}
        self.configuredDatabases = list(databases)
        for db in self.configuredDatabases:
            self.addDatabase(db)
        self._subscribers: list[Callable[[Change], object]]
        self.csn: CSNGenerator
        self.statistics: ServerStatistics
        if predecessor is not None:
            self.csn = predecessor.csn
            self._subscribers = predecessor._subscribers
            self._names: LRU[bytes | str, tuple[DN, DN]] = predecessor._names
            self.statistics = predecessor.statistics
        else:
            self.csn = CSNGenerator()
            self._subscribers = []
            self._names = LRU(_CACHED_NAMES)
            self.statistics = ServerStatistics(reactor.seconds())
        self.rootDSEProviders: list[RootDSEProvider] = []
        self.names = Names(self, tuple(referral))
        # The subscribers are shared with a successor (a reload): this
        # directory's names stop hearing of changes when it is closed.
        self._endNames = self.subscribe(self.names.noteChange)
        self.authz = AuthzPolicy(self, authzPolicy, self.authentication.map)
        self.searcher = Searcher(self)
        self.binder = Binder(self)
        self.extensions = Extensions()
        self._lifecycle = Lifecycle(reactor)
        self._lifecycle.onOpen(self.names.rescan)
        for control in (*controls.BUILT_IN, ControlType(
                PERSISTENT_SEARCH, decodePersistentSearch, frozenset({"search"}),
                search=self._persistentSearch)):
            self.extensions.addControl(control)
        for operation in extended.BUILT_IN:
            self.extensions.addExtendedOperation(operation)
        for feature in _FEATURES:
            self.extensions.addFeature(feature)
        host = PluginHost(self, self.extensions, self._lifecycle, self.rootDSEProviders)
        for plugin in self.plugins.plugins:
            attach = getattr(plugin, "attach", None)
            if attach is not None:
                attach(host)
        installedControls, installedOperations = installedExtensions()
        for control in installedControls:
            self.extensions.addControl(control)
        for operation in installedOperations:
            self.extensions.addExtendedOperation(operation)
        self.subschema = Subschema(self.schema)
        host.addView(Database(self.subschema.entry.dn, self.subschema), public=True)
        # After every registration: the root DSE lists what is registered.
        self.rootDSE = RootDSE(self)
        host.addView(Database(DN(), self.rootDSE), public=True)

    # Change feed

    def subscribe(self, callback: Callable[[Change], object]) -> Callable[[], None]:
        """
        Be told of every write committed through this directory (clients'
        and the server's own), as a L{Change}, after it commits and before
        its response is sent. A callback that raises (or returns a Deferred
        that fails) is logged; the write has succeeded all the same.

        @param callback: called with each L{Change}, in commit order.
        @return: a function that ends the subscription.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _hooksFor(self, assertion: _Assertion | None = None) -> _WriteHooks:
        """
        @param assertion: the write's Assertion control, prepared.
        @return: the hooks to hand a backend for one write: the plugin
            chain, with the changes of other entries its hooks make
            (L{IPluginTransaction.modify}).
        """
        return _WriteHooks(self, assertion)

    async def prepareAssertion(self, op: Operation, target: Entry | DN) -> _Assertion | None:
        """
        Prepare the Assertion control (RFC 4528) of an operation, if it has
        one, for the client that sent it.

        @param op: the operation.
        @param target: the entry it names (for an add, the new entry), or
            its normalised name.
        @return: what tests the filter, or C{None} without the control.
        """
        control = op.controls.get(controls.ASSERTION)
        if control is None:
            return None
        compiled = compileFilter(control.filter, self.schema)
        if op.internal or op.identity.isRoot:
            return _Assertion(compiled, frozenset())
        if isinstance(target, DN):
            try:
                target = await self.get(self.internalOperation(), target)
            except NoSuchObject:
                # The operation answers noSuchObject itself.
                return _Assertion(compiled, frozenset())
        present = frozenset(a.type for a in target)
        visible = self.plugins.filterEntry(op, target)
        hidden = present - frozenset(a.type for a in visible) if visible is not None else present
        return _Assertion(throughSearchable(compiled, hidden) if hidden else compiled, hidden)

    async def _readControls(self, op: Operation, old: Entry | None, new: Entry | None) -> None:
        """
        Answer the Pre-Read and Post-Read controls (RFC 4527) of a write
        that has committed: the entry before and after it, with the
        attributes selected as a search's and only as much of it as the
        client may read (the plugins' C{filter_entry}). Nothing is answered
        about an entry the client may not read at all.
        """
        for oid, entry in ((controls.PRE_READ, old), (controls.POST_READ, new)):
            control = op.controls.get(oid)
            if control is None or entry is None:
                continue
            value = await self.searcher.encodeRead(op, entry, control.attributes)
            if value is not None:
                op.responseControls.append(Control(oid, False, value))

    def _announce(self, kind: str, op: Operation, db: Database, hooks: _WriteHooks) -> None:
        """
        Tell the subscribers of a committed write, and of the changes of
        other entries the plugins made in its transaction.

        @param hooks: what L{_hooksFor} gave for the write.
        """
        if not self._subscribers:
            return
        suffix = db.normalizedSuffix
        changes = [Change(kind, op, suffix, hooks.old, hooks.new)]
        changes.extend(Change(MODIFY, derivedOp, suffix, old, new)
                       for derivedOp, old, new in hooks.derived)
        for change in changes:
            self._tell(change)

    def _tell(self, change: Change) -> None:
        """
        Tell the subscribers of one committed change.
        """
        for callback in list(self._subscribers):
            try:
                result = callback(change)
            except Exception:
                self._log.failure("change subscriber {callback} failed", callback=callback)
                continue
            if isinstance(result, defer.Deferred):
                result.addErrback(self._subscriberFailed, callback)

    def _subscriberFailed(self, failure: Failure, callback: Callable[[Change], object]) -> None:
        """
        Log the failure of a change subscriber's Deferred.
        """
        self._log.failure("change subscriber {callback} failed", failure, callback=callback)

    # Life cycle

    async def _open(self) -> None:
        for db in self.configuredDatabases:
            await db.backend.open()
            if db.seedLDIF is not None:
                await self._seed(db)
        await self.openPlugins()

    def _pluginViews(self) -> list[Database]:
        """
        @return: the views the plugins added (C{cn=changelog}, C{cn=Monitor}).
        """
        return [db for db in self.databases
                if not any(db is configured for configured in self.configuredDatabases)]

    async def _openPlugins(self) -> None:
        self.passwordVerifier.limits = self.passwordLimits
        for db in self._pluginViews():
            await db.backend.open()
        await self._lifecycle.open()

    def openPlugins(self) -> defer.Deferred[None]:
        """
        Open the plugins' views, run their open hooks, then start their
        timers: what L{open} does once the configured backends are open,
        and all a directory that replaces its C{predecessor} on a reload
        does, since those backends are open already.

        The reactor's password verifier, which every directory of the
        process shares, takes this one's C{passwordLimits} here.

        @return: a Deferred that fires when it is done.
        """
        return defer.Deferred.fromCoroutine(self._openPlugins())

    async def _closePlugins(self) -> None:
        self._endNames()
        try:
            await self._lifecycle.close()
        finally:
            await defer.gatherResults(
                [defer.maybeDeferred(db.backend.close) for db in self._pluginViews()],
                consumeErrors=True)

    def closePlugins(self) -> defer.Deferred[None]:
        """
        Stop the plugins' timers, run their close hooks and close their
        views, leaving the configured backends open: what L{close} does
        first, and all that is done to a directory a reload replaced, whose
        backends its successor serves.

        @return: a Deferred that fires when it is done.
        """
        return defer.Deferred.fromCoroutine(self._closePlugins())

    def open(self) -> defer.Deferred[None]:
        """
        Open every backend, load seed data into empty databases, then run
        the plugins' open hooks and start their timers.

        @return: a Deferred that fires when the directory can serve.
        """
        return defer.Deferred.fromCoroutine(self._open())

    async def _close(self) -> None:
        try:
            await self.closePlugins()
        finally:
            await defer.gatherResults(
                [defer.maybeDeferred(db.backend.close) for db in self.configuredDatabases],
                consumeErrors=True)

    def close(self) -> defer.Deferred[None]:
        """
        Stop the plugins' timers, run their close hooks, and close every
        backend.
        """
        return defer.Deferred.fromCoroutine(self._close())

    async def _seed(self, db: Database) -> None:
        """
        Load a database's C{seed_ldif} into it if it is empty: all of it in
        one write batch, so that an entry the server refuses leaves the
        database as empty as it was (and seeded on the next start, once
        the file is mended), never half loaded.

        @raise SeedError: naming the file, the line and the entry that
            could not be loaded.
        """
        op = self.internalOperation()
        try:
            await db.backend.get(op, db.normalizedSuffix)
            return
        except NoSuchObject:
            pass
        assert db.seedLDIF is not None
        if db.rootDN is not None:
            # As with slapadd, the seeded entries' creatorsName and
            # modifiersName are the database's root DN.
            op.identity = Identity(db.rootDN, db.normalizedRootDN, isRoot=True)
        if IWriteBatches.providedBy(db.backend):
            count = await transactions.inOneBatch(db, lambda group: self._seedEntries(op, db))
        else:
            # A backend without write batches (a third party's) is seeded
            # entry by entry.
            count = await self._seedEntries(op, db)
        _log.info("loaded {count} entries into {suffix} from {path}",
                  count=count, suffix=str(db.suffix), path=str(db.seedLDIF))

    async def _seedEntries(self, op: Operation, db: Database) -> int:
        """
        Add the entries of a database's C{seed_ldif}, in order.

        @return: how many there were.
        @raise SeedError: at the first record that is not an entry the
            directory accepts.
        """
        assert db.seedLDIF is not None
        count = 0
        with open(db.seedLDIF, "rb") as f:
            records = parseLDIF(f)
            while True:
                try:
                    record = next(records, None)
                except ValueError as e:
                    raise SeedError(f"{db.seedLDIF}: {e}") from e
                if record is None:
                    return count
                where = f"{db.seedLDIF}: line {record.lineNumber}: {record.dn}"
                if record.changetype not in ("content", "add"):
                    raise SeedError(f"{where}: not an entry")
                attributes = [(name, (value,)) for name, value in record.attributes]
                try:
                    await self.add(op, Entry(DN.parse(record.dn), attributes, self.schema))
                except (ldaperrors.LDAPException, ValueError) as e:
                    raise SeedError(f"{where}: {e}") from e
                count += 1

    def internalOperation(self, request: Request | None = None) -> Operation:
        """
        An operation the server issues itself (seeding, plugins' own writes):
        no limits and no access rules apply to it.

        @param request: the request it stands for, if any.
        """
        connection = Connection("internal", self.reactor)
        connection.identity = Identity(isRoot=True)
        return Operation(connection, 0, request, internal=True)

    # Routing

    def addPrivateDatabase(self, db: Database) -> None:
        """
        Serve a plugin's own read-only view (C{cn=changelog}, C{cn=Monitor}):
        one that holds what no ordinary rule should hand out (the password
        hashes written, who is connected from where). Under the default
        access policy only the root DN reads it; under the acl plugin only
        the rules whose target names it (C{dn.subtree="cn=changelog"}) apply
        to it, never a generic one such as C{to *}.

        @param db: the database.
        """
        db.private = True
        self.addDatabase(db)

    def privateSuffix(self, ndn: DN) -> DN | None:
        """
        @param ndn: a normalised DN.
        @return: the normalised suffix of the private view that holds it
            (see L{addPrivateDatabase}), or C{None} if none does.
        """
        # Asked for each access decision: only the private views are looked
        # at, and anything below one is private, whatever serves it.
        for suffix in self._privateSuffixes:
            if ndn.isWithin(suffix):
                return suffix
        return None

    def addDatabase(self, db: Database) -> None:
        """
        Serve one more naming context. One added by a plugin's C{attach}
        (its own read-only view, such as C{cn=changelog}) is not listed in
        the root DSE's C{namingContexts}, which lists the configured ones.

        @param db: the database.
        """
        db.normalizedSuffix = self.schema.normalizeDN(db.suffix)
        if db.rootDN is not None:
            db.normalizedRootDN = self.schema.normalizeDN(db.rootDN)
        self.databases.append(db)
        self.databases.sort(key=lambda d: len(d.normalizedSuffix), reverse=True)
        if db.private:
            self._privateSuffixes.append(db.normalizedSuffix)

    def addView(self, db: Database) -> None:
        """
        Serve a read-only view of one entry that anyone may read (the root
        DSE, C{cn=Subschema}; see L{ldapd.views}): requests that name its
        suffix go to it, without the plugins' hooks; names below it are in
        no naming context.

        @param db: the database.
        """
        db.normalizedSuffix = self.schema.normalizeDN(db.suffix)
        self._views[db.normalizedSuffix] = db

    def viewFor(self, ndn: DN) -> Database | None:
        """
        @param ndn: a normalised DN.
        @return: the view of L{addView} that serves exactly C{ndn}, or C{None}.
        """
        return self._views.get(ndn)

    def databaseFor(self, ndn: DN) -> Database | None:
        """
        @param ndn: a normalised DN.
        @return: the database whose suffix is the longest that contains it.
        """
        for db in self.databases:
            if ndn.isWithin(db.normalizedSuffix):
                return db
        return None

    def backendFor(self, ndn: DN) -> Any:
        """
        @param ndn: a normalised DN.
        @return: the backend holding it.
        @raise NoSuchObject: if no naming context holds it.
        """
        db = self.databaseFor(ndn)
        if db is None:
            raise NoSuchObject("no such object")
        return db.backend

    def _parseDN(self, value: Any) -> tuple[DN, DN]:
        """
        Parse and normalise a DN from a request. The names clients send
        again and again (search bases, bind DNs) are parsed once.

        @return: the DN and its normalised form.
        @raise ldapd.dn.InvalidDN: if it is not a valid DN.
        """
        text = value if isinstance(value, (bytes, str)) else str(value)
        found = self._names.get(text)
        if found is None:
            dn = DN.parse(text)
            found = (dn, self.schema.normalizeDN(dn))
            self._names.put(text, found)
        return found

    # Entry points for the protocol

    def execute(self, op: Operation, reply: Reply) -> defer.Deferred[None]:
        """
        Carry out one request and send its responses.

        @param op: the operation.
        @param reply: sends each response PDU of the operation.
        @return: a Deferred that fires when the operation is over; it never fails.
        """
        return defer.Deferred.fromCoroutine(self._execute(op, reply))

    async def _execute(self, op: Operation, reply: Reply) -> None:
        request = op.request
        assert request is not None and request.responseTag is not None
        name = request.operation
        started = op.connection.activity = op.clock.seconds()
        nentries = 0

        def counting(pdu: bytes, responseControls: Sequence[Control]) -> None:
            nonlocal nentries
            if pdu[:1] == b"\x64":
                nentries += 1
            reply(pdu, responseControls)

        try:
            op.controls = self.extensions.decodeControls(op.rawControls, name)
            proxied = op.controls.get(PROXIED_AUTHZ)
            if isinstance(proxied, ProxiedAuthz):
                op.identity = await self.authz.authorize(op.identity, proxied.authzId)
            self._checkAuthenticated(op)
            takeOver = self._takeOver(op)
            takenOver = takeOver is not None
            if takeOver is None:
                outcome = await getattr(self, "handle_" + name)(op, counting)
            else:
                await takeOver
                outcome = Outcome()
        except Abandoned:
            return
        except Exception as e:
            if op.abandoned:
                return
            takenOver = False
            outcome = await self._failed(op, e)
        if op.abandoned:
            return
        result = outcome.result
        if not takenOver:
            await self.plugins.post(name, op, result.code)
        reply(
            encodeResult(
                request.responseTag,
                result.code,
                result.matchedDN.encode("utf-8"),
                result.message.encode("utf-8"),
                [uri.encode("utf-8") for uri in result.referrals],
                extra=outcome.extra,
            ),
            list(outcome.controls) + op.responseControls,
        )
        etime = op.clock.seconds() - started
        self.statistics.resultSent(
            name, result.code, etime,
            ("sasl" if request.sasl else "simple") if isinstance(request, BindRequest) else None)
        accesslog.logResult(op, name, request.responseTag, result.code, nentries, etime)

    async def _failed(self, op: Operation, error: Exception) -> Outcome:
        """
        @return: the outcome of an operation that failed with C{error}: its
            result, with a matched DN the client may know of.
        """
        if isinstance(error, NoSuchObject) and error.matchedDN and not op.internal:
            error.matchedDN = await self._disclosedMatch(op, error.matchedDN)
        return Outcome(resultOf(error, op.timedOut))

    def _takeOver(self, op: Operation) -> Awaitable[None] | None:
        """
        Hand an update to the control that takes it over
        (L{ControlType.update}: the transaction specification control
        queues it into its transaction), if it carries one.

        @return: what the control's handler returns, to await; C{None} when
            no control takes the operation over.
        """
        if op.request is None or op.request.operation not in _UPDATES:
            return None
        for oid, control in op.controls.items():
            registered = self.extensions.control(oid)
            if registered is not None and registered.update is not None:
                return registered.update(self, op, control)
        return None

    async def carryOut(self, op: Operation) -> None:
        """
        Carry out a client's update (add, delete, modify or modify DN) that
        a control took over (L{ControlType.update}), as if it had just
        arrived, without its response: the transaction it was queued in
        commits. The plugins' post hooks are the caller's to run, once the
        outcome is settled (L{post}).

        @param op: the update, with its controls decoded.
        @raise Exception: the LDAP error it fails with (whose matched DN is
            the caller's to disclose as far as the client may know it, as
            L{handle_extended} does for an extended operation's error).
        """
        assert op.request is not None and op.request.operation in _UPDATES
        await getattr(self, "handle_" + op.request.operation)(op, _discard)

    def updateDatabase(self, op: Operation) -> Database:
        """
        @param op: a client's update (add, delete, modify or modify DN).
        @return: the database it writes to.
        @raise ldaperrors.LDAPException: as the update itself would be
            refused before the entry is looked up: a name in no naming
            context, an anonymous client, a read-only replica.
        """
        request = op.request
        assert isinstance(request, (AddRequest, DeleteRequest, ModifyRequest, ModifyDNRequest))
        _, ndn = self._parseDN(request.dn)
        return self._checkWritable(op, ndn)

    async def post(self, op: Operation, resultCode: int) -> None:
        """
        Run the plugins' post hooks of an operation whose outcome is
        settled: that of an update carried out by L{carryOut}.
        """
        assert op.request is not None
        await self.plugins.post(op.request.operation, op, resultCode)

    async def _disclosedMatch(self, op: Operation, matched: DN) -> DN | None:
        """
        The matched DN a client is told: the deepest of C{matched} and its
        superiors that the plugins disclose to it (C{disclose_entry}), so
        that an error names no entry the client may not know of, and a
        hidden entry answers as if it did not exist.

        @param matched: the deepest existing superior of the name asked for.
        @return: that DN, or C{None} when none of them may be named.
        """
        if not self.plugins.has("disclose_entry"):
            return matched
        while matched:
            ndn = self.schema.normalizeDN(matched)
            if self.databaseFor(ndn) is None:
                return None
            try:
                entry = await self.get(self.internalOperation(), ndn)
            except NoSuchObject:
                entry = None
            if entry is not None and await self.plugins.discloses(op, entry):
                return matched
            matched = matched.parent()
        return None

    def _checkAuthenticated(self, op: Operation) -> None:
        """
        When anonymous access is off, refuse what an anonymous client asks,
        as slapd's C{require authc} does, except what it needs to
        authenticate: Bind, StartTLS, WhoAmI and reading the root DSE.

        @raise ldaperrors.LDAPStrongAuthRequired: if it must be refused.
        """
        if self.allowAnonymous or op.internal or not op.identity.anonymous:
            return
        request = op.request
        if isinstance(request, (BindRequest, StartTLSRequest, WhoAmIRequest)):
            return
        if isinstance(request, SearchRequest) and not request.base and request.scope == 0:
            return
        raise ldaperrors.LDAPStrongAuthRequired("operation requires authentication")

    # Bind

    def handle_bind(self, op: Operation, reply: Reply) -> Awaitable[Outcome]:
        """
        A Bind is the L{Binder}'s.
        """
        return self.binder.handle(op, reply)

    def verifyPassword(
        self, op: Operation, ndn: DN, password: bytes, purpose: str = BIND
    ) -> Awaitable[Identity]:
        """
        Check a password for a DN: the public entry to
        L{Binder.verifyPassword}, which every password check goes through
        (SASL PLAIN, Password Modify's old password, plugins).

        @return: an awaitable firing with the identity it authenticates, or
            failing with C{LDAPInvalidCredentials}.
        """
        return self.binder.verifyPassword(op, ndn, password, purpose)

    # Search

    def handle_search(self, op: Operation, reply: Reply) -> Awaitable[Outcome]:
        """
        A search is the L{Searcher}'s.
        """
        return self.searcher.handle(op, reply)

    async def _persistentSearch(self, op: Operation, reply: Reply, db: Database,
                                control: Any) -> Sequence[Control]:
        """
        The search handler of the Persistent Search control: it ends only
        by an exception (abandoned, or its client too far behind).
        """
        await persistentSearch(self, op, reply, db, control)
        return ()

    # Compare

    async def handle_compare(self, op: Operation, reply: Reply) -> Outcome:
        request = op.request
        assert isinstance(request, CompareRequest)
        dn, ndn = self._parseDN(request.dn)
        at, options = parseDescription(self.schema, request.attribute)
        value = request.value
        view = self.viewFor(ndn)
        if view is None:
            db = self.databaseFor(ndn)
            if db is None:
                raise self.names.outside(dn, None, NoSuchObject("no such object"))
            await self.names.locate(op, db, dn, ndn)
            await self.plugins.pre("compare", op, ndn, at, value)
            assertion = await self.prepareAssertion(op, ndn)
            if assertion is not None:
                assertion.check(await self.get(op, ndn))
            backend = self.backendFor(ndn)
            if IBackendCompare.providedBy(backend):
                found = await backend.compare(op, ndn, at, options, value)
                return Outcome(Result(6 if found else 5))
            entry = await self.get(op, ndn)
        else:
            entry = await view.backend.get(op, ndn)
        if at.equality is None:
            raise ldaperrors.LDAPInappropriateMatching("no equality matching rule")
        attrs = entry.matching(at, options)
        if not attrs and not options:
            virtual = [(a.description, a.values) for a in withVirtual(entry, self.schema, True, [], [])]
            attrs = Entry(entry.dn, virtual, self.schema, entry.ndn).matching(at)
        if not attrs:
            raise ldaperrors.LDAPNoSuchAttribute("")
        try:
            key = self.schema.normalizeValue(at, value)
        except InvalidValue:
            raise ldaperrors.LDAPInvalidAttributeSyntax("invalid assertion value") from None
        found = any(key in a.keys(self.schema) for a in attrs)
        return Outcome(Result(6 if found else 5))

    # Writes

    def _checkWritable(self, op: Operation, ndn: DN) -> Database:
        """
        The database a write to C{ndn} goes to. As in slapd, a name in no
        naming context is unwillingToPerform, and an anonymous write is
        strongAuthRequired, both checked before the entry is looked up or
        any access rule applies.
        """
        if self.viewFor(ndn) is not None:
            raise ldaperrors.LDAPUnwillingToPerform("the root DSE and subschema are read-only")
        db = self.databaseFor(ndn)
        if db is None:
            raise self.names.outside(ndn, None, ldaperrors.LDAPUnwillingToPerform(
                "no global superior knowledge"))
        if op.identity.anonymous and not op.internal:
            raise ldaperrors.LDAPStrongAuthRequired("modifications require authentication")
        if db.replica is not None and db.replica.chain is None and not op.internal:
            # As slapd's updateref: a shadow copy refers writes before any
            # access rule is looked at.
            raise db.replica.referral(ndn)
        return db

    def _chain(self, op: Operation, db: Database) -> Any:
        """
        @return: the backend a client's write to a replica is forwarded
            through (C{chain_writes}), or C{None} to write to C{db}'s own.
        """
        if db.replica is None or op.internal:
            return None
        return db.replica.chain

    async def writeReplicated(
        self, op: Operation, kind: str, ndn: DN,
        write: Callable[[Any, ITransactionHooks], defer.Deferred[Any]],
        backend: Any = None,
    ) -> Any:
        """
        Make a write a syncrepl consumer received, as the provider made it:
        no pre hooks (the provider decided) and nothing stamped (the
        entries keep the provider's entryUUID, entryCSN, creators and
        modifiers), but in the backend's transaction with the plugin
        chain's C{check} and C{txn} hooks, and announced to subscribers, so
        that a local changelog records it for consumers of this server.

        @param op: the consumer's internal operation.
        @param kind: L{ADD}, L{DELETE}, L{MODIFY} or L{RENAME}.
        @param ndn: the normalised DN of the entry written.
        @param write: called with the database's backend and the hooks to
            hand it; makes the write.
        @param backend: what to hand C{write} instead of the database's
            backend: a batch of its writes (L{ldapd.interfaces.IWriteBatch}).
            Subscribers are told of the write once it is made, before the
            batch commits.
        @return: what C{write}'s Deferred fires with.
        @raise NoSuchObject: if no naming context holds C{ndn}.
        """
        db = self.databaseFor(ndn)
        if db is None:
            raise NoSuchObject("no such object")
        op.replicated = True
        return await self._commit(op, db, kind, write, backend)

    async def _commit(
        self, op: Operation, db: Database, kind: str,
        write: Callable[[Any, ITransactionHooks], defer.Deferred[Any]],
        backend: Any = None, target: Entry | DN | None = None,
    ) -> Any:
        """
        Make a write in its database's backend, with the plugin chain's
        transaction hooks, and announce it to subscribers; or, for a
        client's write to a replica that chains writes, forward it to the
        provider, whose plugins run there and whose change comes back by
        replication.

        @param kind: L{ADD}, L{DELETE}, L{MODIFY} or L{RENAME}.
        @param write: called with the backend and the hooks to hand it;
            makes the write.
        @param backend: what to hand C{write} instead of C{db}'s backend.
        @param target: for a client's write, the entry it names (the new
            one, for an add) or its normalised name: its Assertion control
            is tested on it in the transaction, its Pre-Read and Post-Read
            controls answered once it commits.
        @return: what C{write}'s Deferred fires with.
        """
        chain = self._chain(op, db)
        if chain is not None:
            return await write(chain, _NO_HOOKS)
        group = transactions.committing()
        if group is not None:
            backend = group.batchFor(db)
        assertion = None if target is None else await self.prepareAssertion(op, target)
        # A canceled write not yet made is canceled (RFC 3909); once it is
        # in its transaction, the Cancel is too late.
        op.check()
        hooks = self._hooksFor(assertion)
        result = await write(db.backend if backend is None else backend, hooks)
        if group is not None:
            group.committed(lambda: self._announce(kind, op, db, hooks))
        else:
            self._announce(kind, op, db, hooks)
        if target is not None:
            await self._readControls(op, hooks.old, hooks.new)
        return result

    def _checkUserModifiable(self, op: Operation, at: AttributeType) -> None:
        """
        Refuse a client's write of a NO-USER-MODIFICATION attribute, as
        slapd: with the Relax Rules control, the root DN may write those
        slapd manages (L{_MANAGEABLE}), anyone else is refused them as
        slapd refuses them without C{manage} access.

        @raise ldaperrors.LDAPConstraintViolation: for one no client writes.
        @raise ldaperrors.LDAPInsufficientAccessRights: for a manageable
            one, under Relax Rules, written by another than the root DN.
        """
        if not at.noUserModification or op.internal:
            return
        if controls.RELAX_RULES in op.controls and at.oid in _MANAGEABLE:
            if op.identity.isRoot:
                return
            raise ldaperrors.LDAPInsufficientAccessRights(f"{at.name}: no manage access")
        if controls.RELAX_RULES in op.controls:
            raise ldaperrors.LDAPConstraintViolation(
                f"{at.name}: no-user-modification attribute not manageable")
        raise ldaperrors.LDAPConstraintViolation(f"{at.name}: no user modification allowed")

    def _checkPasswordCost(self, op: Operation, at: AttributeType, values: Iterable[bytes]) -> None:
        """
        Refuse a client's C{userPassword} value whose verification would
        take more work than the limits allow: every bind against it would
        be refused anyway, and it would let the writer tie up the server.
        The server's own writes (seeding, imports, replication) keep what
        they are given, as slapadd does.

        @raise ldaperrors.LDAPConstraintViolation: naming the parameter and
            the limit.
        """
        if op.internal or at.oid != _USER_PASSWORD:
            return
        for i, value in enumerate(values):
            try:
                passwords.checkCost(value, self.passwordVerifier.limits)
            except passwords.ExcessiveCost as e:
                raise ldaperrors.LDAPConstraintViolation(
                    f"{at.name}: value #{i}: {e}"
                ) from None

    def _stampMods(self, op: Operation, written: frozenset[str] = frozenset()) -> list[Modification]:
        """
        The modifications that stamp a write of C{op}'s (L{stampWrite}).

        @param written: the OIDs of the attributes the client wrote itself
            (the root DN's, under Relax Rules), which keep its values.
        """
        stamps = [Modification("replace", name, tuple(values))
                  for name, values in stampWrite(op.identity.dn, self.csn)]
        if written:
            stamps = [m for m in stamps if self.schema.attributeType(m.description).oid  # type: ignore[union-attr]
                      not in written]
        return stamps

    async def add(self, op: Operation, entry: Entry) -> None:
        """
        Add an entry through the plugin chain: the operational attributes are
        stamped, the entry checked, and the backend writes it.

        @param op: the operation on whose behalf it is added.
        @param entry: the entry as the client gave it.
        """
        if entry.ndn == self.subschema.suffix:
            raise ldaperrors.LDAPEntryAlreadyExists("the subschema subentry exists")
        db = self._checkWritable(op, entry.ndn)
        await self.names.checkAdd(op, db, entry.dn, entry.ndn)
        for attr in entry:
            self._checkUserModifiable(op, attr.type)
        if not op.internal:
            entry.checkObsolete()
        entry = await self.plugins.pre("add", op, entry)
        for attr in entry:
            self._checkPasswordCost(op, attr.type, attr.values)
        # Only the server's own writes (seeding, say) may carry operational
        # values (checked above); stampNew keeps them.
        entry = stampNew(entry, op.identity.dn, self.csn)
        entry.validate()
        await self._commit(op, db, ADD, lambda backend, hooks: backend.add(op, entry, hooks),
                           target=entry)

    async def handle_add(self, op: Operation, reply: Reply) -> Outcome:
        request = op.request
        assert isinstance(request, AddRequest)
        dn, ndn = self._parseDN(request.dn)
        if not dn:
            raise ldaperrors.LDAPUnwillingToPerform("cannot add the root DSE")
        attributes: list[tuple[str, Sequence[bytes]]] = list(request.attributes)
        entry = Entry(dn, attributes, self.schema, ndn)
        missing = _missingRDNValues(entry)
        if missing:
            entry = Entry(dn, attributes + missing, self.schema, ndn)
        await self.add(op, entry)
        return Outcome()

    async def delete(self, op: Operation, ndn: DN) -> None:
        """
        Delete a leaf entry through the plugin chain.
        """
        db = self._checkWritable(op, ndn)
        ndn = await self.plugins.pre("delete", op, ndn)
        await self._commit(op, db, DELETE, lambda backend, hooks: backend.delete(op, ndn, hooks),
                           target=ndn)

    async def handle_delete(self, op: Operation, reply: Reply) -> Outcome:
        assert isinstance(op.request, DeleteRequest)
        dn, ndn = self._parseDN(op.request.dn)
        await self.names.locate(op, self._checkWritable(op, ndn), dn, ndn)
        await self.delete(op, ndn)
        return Outcome()

    async def modify(self, op: Operation, ndn: DN, modifications: list[Modification]) -> Entry:
        """
        Modify an entry through the plugin chain, stamping modifiersName and
        modifyTimestamp.

        @return: the modified entry.
        """
        db = self._checkWritable(op, ndn)
        written = set()
        for mod in modifications:
            at, _ = parseDescription(self.schema, mod.description)
            self._checkUserModifiable(op, at)
            if at.noUserModification and controls.RELAX_RULES in op.controls:
                written.add(at.oid)
        modifications = await self.plugins.pre("modify", op, modifications, ndn)
        for mod in modifications:
            if mod.operation != "delete":
                at, _ = parseDescription(self.schema, mod.description)
                self._checkPasswordCost(op, at, mod.values)
        if controls.PERMISSIVE_MODIFY in op.controls:
            modifications = [replace(mod, permissive=True) for mod in modifications]
        stamped = list(modifications) + self._stampMods(op, frozenset(written))
        return await self._commit(  # type: ignore[no-any-return]
            op, db, MODIFY, lambda backend, hooks: backend.modify(op, ndn, stamped, hooks),
            target=ndn)

    async def handle_modify(self, op: Operation, reply: Reply) -> Outcome:
        request = op.request
        assert isinstance(request, ModifyRequest)
        dn, ndn = self._parseDN(request.dn)
        await self.names.locate(op, self._checkWritable(op, ndn), dn, ndn)
        modifications = [Modification(operation, description, values)
                         for operation, description, values in request.changes]
        await self.modify(op, ndn, modifications)
        return Outcome()

    async def storedPassword(self, op: Operation, ndn: DN, password: bytes,
                             hasher: Callable[[bytes, str], bytes] | None = None,
                             scheme: str | None = None) -> bytes:
        """
        The value to store for a password the server sets on an entry: the
        one way the server makes one (Password Modify, the password policy's
        hashing of cleartext). The backend holding the entry makes it when
        it keeps passwords in a format of its own (L{IPasswordStorage});
        otherwise it is hashed with C{scheme} (C{password_hash} by default),
        off the reactor thread when the scheme is slow.

        @param hasher: makes the stored form in C{scheme}, for a caller with
            its own parameters (the password policy's argon2 costs).
        @raise ValueError: if the password cannot be hashed in the scheme.
        """
        db = self.databaseFor(ndn)
        if db is not None and IPasswordStorage.providedBy(db.backend):
            stored = await IPasswordStorage(db.backend).storedPassword(op, ndn, password)
            if stored is not None:
                return stored
        return await self.passwordVerifier.hash(  # type: ignore[no-any-return]
            password, scheme or self.passwordHash, hasher)

    async def get(self, op: Operation, ndn: DN) -> Entry:
        """
        Read one entry from its backend.

        @raise NoSuchObject: with the matched DN, if it does not exist.
        """
        group = transactions.committing()
        if group is not None and self.databaseFor(ndn) is group.database:
            # A transaction's update sees the transaction's earlier writes.
            return await group.batch.get(op, ndn)
        return await self.backendFor(ndn).get(op, ndn)

    async def _getDisclosed(self, op: Operation, ndn: DN) -> Entry:
        """
        Read an entry a client's request names before the plugins' checks.

        @raise NoSuchObject: if it does not exist, or if the client may not
            know it exists (C{disclose_entry}): the same error either way.
        """
        entry = await self.get(op, ndn)
        if not op.internal and not await self.plugins.discloses(op, entry):
            raise NoSuchObject("no such object", entry.dn)
        return entry

    async def rename(self, op: Operation, ndn: DN, newDN: DN, deleteOldRDN: bool) -> Entry:
        """
        Rename or move an entry (and its subtree) through the plugin chain.

        @return: the renamed entry.
        """
        db = self._checkWritable(op, ndn)
        newNDN = self.schema.normalizeDN(newDN)
        if self.databaseFor(newNDN) is not db:
            raise ldaperrors.LDAPAffectsMultipleDSAs("cannot move an entry between naming contexts")
        ndn = await self.plugins.pre("rename", op, ndn, newDN, deleteOldRDN)
        stamp = self._stampMods(op)
        return await self._commit(  # type: ignore[no-any-return]
            op, db, RENAME,
            lambda backend, hooks: backend.rename(op, ndn, newDN, deleteOldRDN, hooks, stamp),
            target=ndn)

    async def handle_rename(self, op: Operation, reply: Reply) -> Outcome:
        request = op.request
        assert isinstance(request, ModifyDNRequest)
        dn, ndn = self._parseDN(request.dn)
        if not dn:
            raise ldaperrors.LDAPUnwillingToPerform("cannot rename the root DSE")
        await self.names.locate(op, self._checkWritable(op, ndn), dn, ndn)
        newRDN = DN.parse(request.newRDN)
        if len(newRDN) != 1:
            raise ldaperrors.LDAPInvalidDNSyntax("new RDN is not an RDN")
        self.schema.normalizeDN(newRDN)
        entry = await self._getDisclosed(op, ndn)
        if request.newSuperior is not None:
            superior = DN.parse(request.newSuperior)
            superiorNDN = self.schema.normalizeDN(superior)
            db = self.databaseFor(superiorNDN)
            if db is not None:
                await self.names.checkNewSuperior(op, db, superiorNDN)
            try:
                await self._getDisclosed(op, superiorNDN)
            except NoSuchObject:
                # As slapd: no matched DN, which would name a superior of
                # the new superior rather than of the entry.
                raise NoSuchObject("new superior not found") from None
        else:
            superior = entry.dn.parent()
        await self.rename(op, ndn, superior.child(newRDN.rdn), request.deleteOldRDN)
        return Outcome()

    # Extended operations

    async def handle_extended(self, op: Operation, reply: Reply) -> Outcome:
        assert isinstance(op.request, ExtendedRequest)
        name = op.request.name
        registered = self.extensions.extendedOperation(name)
        if registered is None or registered.handler is None:
            raise ldaperrors.LDAPProtocolError(f"unsupported extended operation {name}")
        await self.plugins.pre("extended", op, name)
        outcome: ExtendedOutcome = await registered.handler(self, op)
        extra = b""
        if outcome.name is not None:
            extra += octetString(outcome.name, 0x8A)
        if outcome.value is not None:
            extra += octetString(outcome.value, 0x8B)
        if outcome.error is not None:
            return replace(await self._failed(op, outcome.error), extra=extra)
        return Outcome(extra=extra)


def _discard(pdu: bytes, controls: Sequence[Control] = ()) -> None:
    """
    The reply of an update carried out after its response was sent
    (L{Directory.carryOut}): it has nothing more to send.
    """


def _missingRDNValues(entry: Entry) -> list[tuple[str, Sequence[bytes]]]:
    """
    The values of an entry's RDN that its attributes lack: an Add request's
    attributes make up the entry "along with those from the RDN", and clients
    may leave the RDN's out (RFC 4511 §4.7), so they are added as slapd does.
    """
    missing: list[tuple[str, Sequence[bytes]]] = []
    for ava in entry.dn.rdn if entry.dn else ():
        at = entry.schema.attributeType(ava.type)
        value = ava.value.encode("utf-8")
        try:
            if at is not None and at.equality is not None and not entry.hasValue(at, value):
                missing.append((ava.type, [value]))
        except InvalidValue:
            pass  # validate() reports it
    return missing
