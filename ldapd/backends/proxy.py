"""
The proxy backend: a naming context that is a view of upstream LDAP servers,
like slapd's back-ldap with the rwm overlay's suffix massage.

Every operation is forwarded through ldaptor's client to the first upstream
that answers (L{ldapd.backends._proxypool}); names and DN-valued attributes
are rewritten between the local and the remote suffix
(L{ldapd.backends._proxyrewrite}). ldapd's plugins run at the proxy as for
any backend, since they run in the Directory.

Identities:

  - Reads (searches and compares) go over pooled connections bound as the
    service account (C{bind_dn}); what a client may see is decided at the
    proxy by its plugins, as with back-ldap's identity assertion.
  - A client's simple bind is passed through: a connection of its own binds
    upstream as the rewritten DN with the client's password, and is closed.
    Successful binds may be cached for C{bind_cache_seconds} (keyed by a
    keyed hash of the password, never the password itself).
  - Writes by a client that bound through this backend go upstream as that
    client (on a connection of their own, bound with the credentials it gave),
    so the upstream's access rules apply to them too; other writes (the
    database's root DN, the server's own) go as the service account.

Transactions: a proxy cannot roll back a write the upstream has committed.
It reads the entry, calls the C{check} hooks, forwards the write, then calls
the C{txn} hooks. What the hooks write through the transaction is forwarded
after them, as the service account. A C{txn} hook that fails after the upstream
committed is logged and its error returned to the client, with a message
saying that the upstream write was applied. C{ITransaction.get} sees only
the entries of the write itself.

Searches stream: the upstream is asked for pages (the paged results
control, C{page_size} entries each) and the next page only when this one
has been emitted, so neither upstream size limits nor a large result set
make the proxy buffer more than one page; a paused C{emit} pauses the
upstream search. Each entry is rebuilt with the local schema; attribute
types the local schema does not define are left out (add the upstream's
schema with C{schema_files} to pass them through). The client's filter is
forwarded with its DN assertion values rewritten, and every entry is
confirmed against the compiled filter, so that filter rewriting by plugins
(such as hiding userPassword) holds at the proxy too.

Referrals: the ManageDsaIT control goes upstream when the client sent it
(and with the server's own requests). Without it, the upstream answers for
its referral objects with continuation references, emitted as
L{SearchReference}s, and referral results, raised as L{Referral}; the DNs of
their URLs are rewritten to the local suffix.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import weakref
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ldaptor.protocols import pureber, pureldap
from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ldapd._codec import decodeSequence, encodeSequence, filterToLdaptor, integer, octetString
from ldapd.backends._proxypool import (
    Upstream,
    UpstreamConnection,
    UpstreamPool,
    parseUpstream,
    tlsOptions,
)
from ldapd.backends._proxyrewrite import SuffixRewriter
from ldapd.controls import MANAGE_DSA_IT, PAGED_RESULTS
from ldapd.dn import DN, InvalidDN
from ldapd.entry import Entry, Modification, SearchReference
from ldapd.filters import And, Equality, Extensible, Filter, Not, Or, Present, assertions
from ldapd.interfaces import (
    IBackend,
    IBackendCompare,
    IResolvingBackend,
    ITransaction,
    ITransactionHooks,
)
from ldapd.operation import Operation
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.requests import BindRequest, SearchRequest
from ldapd.results import NoSuchObject, Referral
from ldapd.schema import AttributeType, Schema

__all__ = ["ProxyBackend", "ProxyBackendFactory"]

_log = Logger()

#: How many entries a search passes on between two yields to the reactor.
_BATCH = 256

_MODIFY_CODES = {"add": 0, "delete": 1, "replace": 2, "increment": 3}
_ALL_ENTRIES = pureldap.LDAPFilter_present("objectClass")
_AFTER_COMMIT = " (the upstream write was applied and cannot be rolled back)"
_COMPARE_FALSE = 5
_COMPARE_TRUE = 6
_MANAGE_DSA_IT = (MANAGE_DSA_IT, None, None)
_BASE_SCOPE = "??base"

#: Operational attributes the Directory computes for every backend's entries
#: (by searching the backend): the upstream's values would duplicate them.
_COMPUTED = frozenset({"hassubordinates", "numsubordinates"})


@implementer(IBackend, IBackendCompare, IResolvingBackend)
class ProxyBackend:
    """
    A naming context served by upstream LDAP servers.

    @ivar suffix: the normalised local suffix.
    @ivar pool: the L{UpstreamPool}.
    @ivar rewriter: the L{SuffixRewriter}.
    """

    def __init__(
        self,
        suffix: DN,
        schema: Schema,
        pool: UpstreamPool,
        remoteSuffix: DN | None = None,
        pageSize: int = 500,
        bindCacheSeconds: float = 0,
    ) -> None:
        """
        @param suffix: the normalised local suffix.
        @param schema: the directory's schema.
        @param pool: the connections to the upstreams.
        @param remoteSuffix: the upstream's suffix; the local one by default.
        @param pageSize: the page size of upstream searches.
        @param bindCacheSeconds: how long a successful client bind is
            remembered (0: never; every bind goes upstream).
        """
        self.suffix = suffix
        self.schema = schema
        self.pool = pool
        self.rewriter = SuffixRewriter(suffix, remoteSuffix if remoteSuffix is not None else suffix,
                                       schema)
        self.pageSize = pageSize
        self.bindCacheSeconds = bindCacheSeconds
        self._bindCache: dict[bytes, float] = {}
        self._cacheKey = secrets.token_bytes(32)
        self._credentials: weakref.WeakKeyDictionary[Any, tuple[DN, DN, bytes]] = (
            weakref.WeakKeyDictionary()
        )
        self._unknownTypes: set[str] = set()

    def open(self) -> defer.Deferred[None]:
        """
        Nothing to do: connections open on demand, so that the server starts
        while an upstream is down.
        """
        return defer.succeed(None)

    def close(self) -> defer.Deferred[None]:
        return self.pool.close()

    # Results and entries

    def _check(self, response: Any, accepted: tuple[int, ...] = (0,)) -> None:
        """
        Raise the upstream's error, if its result is one.

        @param accepted: the result codes that are not errors.
        @raise NoSuchObject: for noSuchObject, with the matched DN rewritten.
        @raise Referral: for a referral, with the DNs of its URLs rewritten.
        @raise ldaperrors.LDAPException: for any other error.
        """
        code = response.resultCode
        if code in accepted:
            return
        message = _text(response.errorMessage)
        if code == Referral.resultCode:
            uris = self._localURIs(response.referral or ())
            if not uris:
                raise ldaperrors.LDAPOther("the upstream sent a referral without URIs")
            raise Referral(uris, message, self._matchedDN(response))
        if code == NoSuchObject.resultCode:
            raise NoSuchObject(message or "no such object", self._matchedDN(response))
        raise ldaperrors.get(code, message)

    def _matchedDN(self, response: Any) -> DN | None:
        """
        @return: the local name of a result's matched DN, or C{None}.
        """
        if not response.matchedDN:
            return None
        try:
            return self.rewriter.toLocal(DN.parse(response.matchedDN))
        except InvalidDN:
            return None

    def _localURIs(self, uris: Iterable[bytes]) -> tuple[str, ...]:
        """
        @param uris: LDAP URLs from the upstream (a referral or a
            continuation reference).
        @return: the URLs with their DNs moved to the local suffix.
        """
        return tuple(_text(self.rewriter.url(uri, False)) for uri in uris)

    def _entry(self, result: Any) -> Entry | None:
        """
        The local entry for an upstream search result, or C{None} if its name
        is outside the remote suffix or cannot be used locally.
        """
        try:
            local = self.rewriter.toLocal(DN.parse(result.objectName))
        except InvalidDN:
            local = None
        if local is None:
            _log.debug("skipping upstream entry {dn}", dn=_text(result.objectName))
            return None
        attributes = []
        for description, values in result.attributes:
            description = _text(description)
            at = self.schema.attributeType(description.split(";")[0])
            if at is not None and at.name.lower() in _COMPUTED:
                continue
            if at is None:
                if description not in self._unknownTypes:
                    self._unknownTypes.add(description)
                    _log.info("attribute type {type} from upstream is not in the local schema; "
                              "it is left out", type=description)
                continue
            raw = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in values]
            attributes.append((description, self.rewriter.attributeValues(at, raw, False)))
        if not self.rewriter.identity and self.schema.normalizeDN(local) == self.suffix:
            attributes = self.rewriter.suffixEntry(attributes, False)
        try:
            return Entry(local, attributes, self.schema)
        except (InvalidDN, ldaperrors.LDAPException) as e:
            _log.warn("skipping upstream entry {dn}: {error}", dn=str(local), error=str(e))
            return None

    def _remote(self, dn: DN) -> str:
        """
        @param dn: a local name, normalised or as the client wrote it.
        @return: the upstream's name for it, in string form.
        """
        return str(self.rewriter.toRemote(dn))

    def _userAttributes(self, entry: Entry) -> list[tuple[Any, Any]]:
        """
        The attributes of C{entry} a client may write, for an Add request:
        the upstream stamps its own operational attributes.
        """
        pairs = [
            (attr.description, self.rewriter.attributeValues(attr.type, list(attr.values), True))
            for attr in entry
            if not attr.type.noUserModification
        ]
        if entry.ndn == self.suffix:
            pairs = self.rewriter.suffixEntry(pairs, True)
        return [
            (
                pureldap.LDAPAttributeDescription(description),
                pureber.BERSet([pureldap.LDAPAttributeValue(v) for v in values]),
            )
            for description, values in pairs
            if values
        ]

    def _modifications(self, modifications: Sequence[Modification]) -> list[Any]:
        changes = []
        for mod in modifications:
            at = self.schema.attributeType(mod.description.split(";")[0])
            if at is None or at.noUserModification:
                continue
            values = self.rewriter.attributeValues(at, list(mod.values), True)
            changes.append(pureber.BERSequence([
                pureber.BEREnumerated(_MODIFY_CODES[mod.operation]),
                pureber.BERSequence([
                    pureldap.LDAPAttributeDescription(mod.description),
                    pureber.BERSet([pureldap.LDAPAttributeValue(v) for v in values]),
                ]),
            ]))
        return changes

    # Reads

    async def _call(self, request: Any, op: Operation | None,
                    connection: UpstreamConnection | None = None,
                    accepted: tuple[int, ...] = (0,)) -> Any:
        """
        Send one request over C{connection}, or a pooled one, and raise its error.

        @param op: the operation it is sent for (L{_manageDsaIT}).
        @param accepted: the result codes that are not errors.
        """
        if connection is not None:
            response, _ = await connection.call(request, _manageDsaIT(op))
        else:
            pooled = await self.pool.acquire()
            try:
                response, _ = await pooled.call(request, _manageDsaIT(op))
            finally:
                self.pool.release(pooled)
        self._check(response, accepted)
        return response

    async def _get(self, op: Operation, ndn: DN) -> Entry:
        """
        Read an entry with a base search, with ManageDsaIT as C{op} has it.

        @raise Referral: for a referral object, or a name below one, when
            C{op} has no ManageDsaIT. The upstream's URLs name the scope of
            the base search (C{??base}, as slapd's do); it is removed, since
            the operation read for is not that search.
        """
        found: list[Any] = []

        def received(value: Any, controls: Any) -> None:
            if isinstance(value, pureldap.LDAPSearchResultEntry):
                found.append(value)

        connection = await self.pool.acquire()
        try:
            d, _ = connection.request(
                _searchRequest(self._remote(ndn), 0, _ALL_ENTRIES, ["*", "+"]),
                _manageDsaIT(op), received,
            )
            response, _ = await d
        finally:
            self.pool.release(connection)
        try:
            self._check(response)
        except Referral as e:
            uris = tuple(u[: -len(_BASE_SCOPE)] if u.lower().endswith(_BASE_SCOPE) else u
                         for u in e.uris)
            raise Referral(uris, _text(e.message), e.matchedDN) from None
        entry = self._entry(found[0]) if found else None
        if entry is None:
            raise NoSuchObject("no such object")
        return entry

    def get(self, op: Operation, ndn: DN) -> defer.Deferred[Entry]:
        return defer.Deferred.fromCoroutine(self._get(op, ndn))

    def compare(self, op: Operation, ndn: DN, at: AttributeType, options: tuple[str, ...],
                value: bytes) -> defer.Deferred[bool]:
        """
        Forward a Compare upstream over a pooled connection (as the service
        account, as every read), the DN and a DN-valued assertion rewritten.
        """
        return defer.Deferred.fromCoroutine(self._compare(op, ndn, at, options, value))

    async def _compare(self, op: Operation, ndn: DN, at: AttributeType, options: tuple[str, ...],
                       value: bytes) -> bool:
        request = pureldap.LDAPCompareRequest(
            entry=self._remote(ndn),
            ava=pureldap.LDAPAttributeValueAssertion(
                pureldap.LDAPAttributeDescription(_description(at, options)),
                pureldap.LDAPAssertionValue(self.rewriter.attributeValues(at, [value], True)[0]),
            ),
        )
        response = await self._call(request, op, accepted=(_COMPARE_FALSE, _COMPARE_TRUE))
        return response.resultCode == _COMPARE_TRUE  # type: ignore[no-any-return]

    def search(self, op: Operation, emit: Callable[[Entry | SearchReference], Any]
               ) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._search(op, emit))

    async def _search(self, op: Operation, emit: Callable[[Entry | SearchReference], Any]) -> None:
        params = op.search
        assert params is not None, "search() needs op.search"
        client = op.request if isinstance(op.request, SearchRequest) else None
        if client is not None and not op.internal:
            upstreamFilter = filterToLdaptor(self.rewriter.filterToRemote(client.filter))
            deref = client.derefAliases
        else:
            upstreamFilter = self._translate(params.filter)[0] or _ALL_ENTRIES
            deref = 0
        request = _searchRequest(
            self._remote(params.base), int(params.scope), upstreamFilter,
            _upstreamAttributes(params.attributes, params.filter), deref,
        )
        connection = await self.pool.acquire(search=True)
        passed = 0
        cookie = b""
        try:
            while True:
                page = _PageReader(connection, request, [_paged(self.pageSize, cookie),
                                                         *_manageDsaIT(op)])
                try:
                    while True:
                        item = await page.next()
                        if item is None:
                            break
                        op.check()
                        passed += 1
                        if passed % _BATCH == 0:
                            await op.cooperate()
                        result: Entry | SearchReference | None
                        if isinstance(item, pureldap.LDAPSearchResultReference):
                            result = SearchReference(
                                self._localURIs(uri.value for uri in item.uris))
                        else:
                            result = self._entry(item)
                            if result is None or params.filter.match(result) is not True:
                                continue
                        waiting = emit(result)
                        if waiting is not None:
                            await waiting
                finally:
                    page.stop()
                response, controls = page.result
                self._check(response)
                cookie = _pagedCookie(controls)
                if not cookie:
                    return
        finally:
            self.pool.release(connection, search=True)

    def _translate(self, f: Filter) -> tuple[Any, bool]:
        """
        One of ldaptor's filters for a compiled one, for searches the server
        issues itself (which carry no client filter). Parts that cannot be
        expressed are widened, never narrowed: the result is C{(filter,
        exact)}, C{filter} being C{None} for "every entry"; entries are
        confirmed against C{f} anyway.
        """
        if isinstance(f, And):
            parts = [self._translate(p) for p in f.parts]
            kept = [p for p, _ in parts if p is not None]
            exact = all(e for _, e in parts)
            return (pureldap.LDAPFilter_and(kept) if kept else None), exact
        if isinstance(f, Or):
            parts = [self._translate(p) for p in f.parts]
            if any(p is None for p, _ in parts):
                return None, False
            return pureldap.LDAPFilter_or([p for p, _ in parts]), all(e for _, e in parts)
        if isinstance(f, Not):
            part, exact = self._translate(f.part)
            if part is None or not exact:
                return None, False
            return pureldap.LDAPFilter_not(part), True
        if isinstance(f, Present):
            return pureldap.LDAPFilter_present(_description(f.type, f.options)), True
        if isinstance(f, Equality) and isinstance(f.key, str):
            value = self.rewriter.value(f.type, f.key.encode("utf-8"), True) if (
                self.rewriter.isDNValued(f.type)) else f.key.encode("utf-8")
            return pureldap.LDAPFilter_equalityMatch(
                attributeDesc=pureldap.LDAPAttributeDescription(_description(f.type, f.options)),
                assertionValue=pureldap.LDAPAssertionValue(value),
            ), True
        return None, False

    # Binds

    def authenticate(self, op: Operation, ndn: DN, password: bytes) -> defer.Deferred[Entry]:
        return defer.Deferred.fromCoroutine(self._authenticate(op, ndn, password))

    async def _authenticate(self, op: Operation, ndn: DN, password: bytes) -> Entry:
        self._credentials.pop(op.connection, None)
        remote = self.rewriter.toRemote(ndn)
        key = hmac.new(self._cacheKey, str(ndn).encode("utf-8") + b"\0" + password,
                       hashlib.sha256).digest()
        now = self.pool.clock.seconds()
        if self._bindCache.get(key, 0.0) <= now:
            self._bindCache.pop(key, None)
            connection = await self.pool.connect(serviceBind=False)
            try:
                await connection.bind(str(remote), password)
            except ldaperrors.LDAPInvalidCredentials:
                raise ldaperrors.LDAPInvalidCredentials() from None
            finally:
                await connection.close()
            if self.bindCacheSeconds:
                self._bindCache = {k: t for k, t in self._bindCache.items() if t > now}
                self._bindCache[key] = now + self.bindCacheSeconds
        self._credentials[op.connection] = (ndn, remote, password)
        dn = ndn
        if isinstance(op.request, BindRequest):
            try:
                dn = DN.parse(op.request.dn)
            except InvalidDN:
                dn = ndn
        return Entry(dn, (), self.schema, ndn)

    # Writes

    async def _writeConnection(self, op: Operation) -> tuple[UpstreamConnection, bool]:
        """
        The connection a write goes over: one bound as the client if it
        bound through this backend, else a pooled one.

        @return: the connection, and whether it is the client's own.
        """
        credentials = self._credentials.get(op.connection) if op.connection is not None else None
        if credentials is not None and not op.internal and op.identity.ndn == credentials[0]:
            connection = await self.pool.connect(serviceBind=False)
            try:
                await connection.bind(str(credentials[1]), credentials[2])
            except BaseException:
                await connection.close()
                raise
            return connection, True
        return await self.pool.acquire(), False

    async def _forward(self, op: Operation, requests: Sequence[Any]) -> None:
        """
        Send write requests in order, as the client or the service account.
        """
        connection, own = await self._writeConnection(op)
        try:
            for request in requests:
                await self._call(request, op, connection)
        finally:
            if own:
                await connection.close()
            else:
                self.pool.release(connection)

    async def _afterWrite(self, operation: str, op: Operation, hooks: ITransactionHooks,
                          txn: _ProxyTransaction, *args: Entry) -> None:
        """
        Run the txn hooks after the upstream committed, then forward what
        they wrote. A failure is logged and reported: it cannot undo the write.
        """
        try:
            hooks.txn(operation, op, txn, *args)
            for request in txn.requests(self):
                await self._call(request, None)
        except ldaperrors.LDAPException as e:
            _log.error("{operation} of {dn} failed after the upstream write was committed: "
                       "{error}", operation=operation, dn=str(args[0].dn), error=str(e))
            code = e.resultCode if e.resultCode is not None else ldaperrors.LDAPOther.resultCode
            raise ldaperrors.get(code, _text(e.message or "") + _AFTER_COMMIT) from None
        except Exception:
            _log.failure("{operation} of {dn} failed after the upstream write was committed",
                         Failure(), operation=operation, dn=str(args[0].dn))
            raise ldaperrors.LDAPOther("internal error" + _AFTER_COMMIT) from None

    def add(self, op: Operation, entry: Entry, hooks: ITransactionHooks) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._add(op, entry, hooks))

    async def _add(self, op: Operation, entry: Entry, hooks: ITransactionHooks) -> None:
        try:
            await self._get(op, entry.ndn)
        except NoSuchObject:
            pass
        else:
            raise ldaperrors.LDAPEntryAlreadyExists("already exists")
        txn = _ProxyTransaction({entry.ndn: entry})
        hooks.check("add", op, txn, entry)
        await self._forward(op, [pureldap.LDAPAddRequest(
            entry=self._remote(entry.dn), attributes=self._userAttributes(entry))])
        await self._afterWrite("add", op, hooks, txn, entry)

    def delete(self, op: Operation, ndn: DN, hooks: ITransactionHooks) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._delete(op, ndn, hooks))

    async def _delete(self, op: Operation, ndn: DN, hooks: ITransactionHooks) -> None:
        old = await self._get(op, ndn)
        txn = _ProxyTransaction({ndn: old})
        hooks.check("delete", op, txn, old)
        await self._forward(op, [pureldap.LDAPDelRequest(entry=self._remote(ndn))])
        txn.forget(ndn)
        await self._afterWrite("delete", op, hooks, txn, old)

    def modify(self, op: Operation, ndn: DN, modifications: list[Modification],
               hooks: ITransactionHooks) -> defer.Deferred[Entry]:
        return defer.Deferred.fromCoroutine(self._modify(op, ndn, modifications, hooks))

    async def _modify(self, op: Operation, ndn: DN, modifications: list[Modification],
                      hooks: ITransactionHooks) -> Entry:
        old = await self._get(op, ndn)
        planned = old.modified(modifications)
        txn = _ProxyTransaction({ndn: planned})
        hooks.check("modify", op, txn, old, planned)
        changes = self._modifications(modifications)
        if changes:
            await self._forward(op, [pureldap.LDAPModifyRequest(
                object=self._remote(ndn), modification=changes)])
        new = await self._get(op, ndn)
        txn.remember(new)
        await self._afterWrite("modify", op, hooks, txn, old, new)
        return new

    def rename(self, op: Operation, ndn: DN, newDN: DN, deleteOldRDN: bool,
               hooks: ITransactionHooks, modifications: Sequence[Modification] = ()
               ) -> defer.Deferred[Entry]:
        return defer.Deferred.fromCoroutine(
            self._rename(op, ndn, newDN, deleteOldRDN, hooks, modifications))

    async def _rename(self, op: Operation, ndn: DN, newDN: DN, deleteOldRDN: bool,
                      hooks: ITransactionHooks, modifications: Sequence[Modification]) -> Entry:
        old = await self._get(op, ndn)
        planned = old.renamed(newDN, deleteOldRDN)
        if modifications:
            planned = planned.modified(modifications)
        txn = _ProxyTransaction({ndn: None, planned.ndn: planned})
        hooks.check("rename", op, txn, old, planned)
        newSuperior = None
        if planned.ndn.parent() != ndn.parent():
            newSuperior = self._remote(planned.dn.parent())
        requests = [pureldap.LDAPModifyDNRequest(
            entry=self._remote(ndn), newrdn=str(newDN.rdn), deleteoldrdn=bool(deleteOldRDN),
            newSuperior=newSuperior)]
        changes = self._modifications(modifications)
        if changes:
            # Applied after the rename; two requests, since LDAP has no
            # rename-and-modify.
            requests.append(pureldap.LDAPModifyRequest(
                object=self._remote(planned.ndn), modification=changes))
        await self._forward(op, requests)
        new = await self._get(op, planned.ndn)
        txn.remember(new)
        await self._afterWrite("rename", op, hooks, txn, old, new)
        return new


@implementer(ITransaction)
class _ProxyTransaction:
    """
    The transaction hooks see around a proxied write. It knows the entries
    of the write itself; what hooks put or remove is recorded and forwarded
    after the txn hooks. Reading any other entry would need a round trip the
    synchronous interface cannot make, and is refused.
    """

    def __init__(self, entries: dict[DN, Entry | None]) -> None:
        self._entries = dict(entries)
        self._writes: list[tuple[str, Any]] = []

    def remember(self, entry: Entry) -> None:
        """
        Record an entry as the upstream now has it.
        """
        self._entries[entry.ndn] = entry

    def forget(self, ndn: DN) -> None:
        """
        Record that an entry no longer exists.
        """
        self._entries[ndn] = None

    def get(self, ndn: DN) -> Entry | None:
        if ndn not in self._entries:
            raise ldaperrors.LDAPUnwillingToPerform(
                f"the proxy backend cannot read {ndn} inside a write transaction")
        return self._entries[ndn]

    def put(self, entry: Entry) -> None:
        existed = self._entries.get(entry.ndn)
        self._entries[entry.ndn] = entry
        self._writes.append(("put", (existed, entry)))

    def remove(self, ndn: DN) -> None:
        self._entries[ndn] = None
        self._writes.append(("remove", ndn))

    def requests(self, backend: ProxyBackend) -> list[Any]:
        """
        @return: the upstream requests for what the hooks wrote, in order.
            An entry put over one the transaction knows becomes a Modify that
            replaces its user attributes; any other put is an Add.
        """
        requests: list[Any] = []
        for kind, what in self._writes:
            if kind == "remove":
                requests.append(pureldap.LDAPDelRequest(entry=backend._remote(what)))
                continue
            existed, entry = what
            if existed is None:
                requests.append(pureldap.LDAPAddRequest(
                    entry=backend._remote(entry.dn), attributes=backend._userAttributes(entry)))
                continue
            mods = [Modification("replace", a.description, a.values) for a in entry
                    if not a.type.noUserModification]
            mods += [Modification("replace", a.description) for a in existed
                     if not a.type.noUserModification and entry.attribute(a.type, a.options) is None]
            requests.append(pureldap.LDAPModifyRequest(
                object=backend._remote(entry.ndn), modification=backend._modifications(mods)))
        return requests


class _PageReader:
    """
    One page of an upstream search, read as the consumer asks: entries are
    queued as they arrive (at most one page), and taken one by one.
    """

    def __init__(self, connection: UpstreamConnection, request: Any,
                 controls: list[tuple[str, bool | None, bytes | None]]) -> None:
        self._queue: deque[Any] = deque()
        self._waiting: defer.Deferred[Any] | None = None
        self._failure: Failure | None = None
        self.result: Any = None
        self._request, _ = connection.request(request, controls, self._received)
        self._request.addCallbacks(self._finished, self._failed)

    def _received(self, value: Any, controls: Any) -> None:
        self._queue.append(value)
        self._wake()

    def _finished(self, result: Any) -> None:
        self.result = result
        self._wake()

    def _failed(self, failure: Failure) -> None:
        self._failure = failure
        self._wake()

    def _wake(self) -> None:
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            self.next().chainDeferred(waiting)

    def next(self) -> defer.Deferred[Any]:
        """
        @return: a Deferred firing with the next entry or reference, or
            C{None} once the page is done; failing with the request's error.
        """
        if self._queue:
            return defer.succeed(self._queue.popleft())
        if self._failure is not None:
            return defer.fail(self._failure)
        if self.result is not None:
            return defer.succeed(None)
        self._waiting = defer.Deferred(lambda _: setattr(self, "_waiting", None))
        return self._waiting

    def stop(self) -> None:
        """
        Abandon the request upstream if it is still running.
        """
        if not self._request.called:
            self._request.cancel()


def _manageDsaIT(op: Operation | None) -> list[tuple[str, bool | None, None]]:
    """
    The ManageDsaIT control for an upstream request: sent when the client
    sent it, so that, as with back-ldap, a client without it is answered
    with referrals and continuation references for the upstream's referral
    objects, and one with it sees them as entries (their ref values
    rewritten like other DNs). The server's own requests (C{op} internal or
    C{None}) always send it: ldapd treats referral objects as entries.
    """
    if op is None or op.internal:
        return [_MANAGE_DSA_IT]
    control = op.controls.get(MANAGE_DSA_IT)
    if control is None:
        return []
    return [(MANAGE_DSA_IT, True if control.criticality else None, None)]


def _paged(size: int, cookie: bytes) -> tuple[str, None, bytes]:
    return (PAGED_RESULTS, None, encodeSequence([integer(size), octetString(cookie)]))


def _pagedCookie(controls: Any) -> bytes:
    for oid, _, value in controls or ():
        if _text(oid) == PAGED_RESULTS and value:
            parts = decodeSequence(value)
            if len(parts) == 2 and isinstance(parts[1], pureber.BEROctetString):
                return parts[1].value  # type: ignore[no-any-return]
    return b""


def _searchRequest(base: str, scope: int, f: Any, attributes: list[str], deref: int = 0) -> Any:
    return pureldap.LDAPSearchRequest(
        baseObject=base, scope=scope, derefAliases=deref, sizeLimit=0, timeLimit=0,
        typesOnly=0, filter=f, attributes=attributes,
    )


def _upstreamAttributes(requested: list[str], f: Filter) -> list[str]:
    """
    What to ask the upstream for: the requested attributes and those the
    filter tests (entries are confirmed against it at the proxy). Every
    value is asked for, even for typesOnly, for the same reason.
    """
    wanted = ["*"] if not requested or "*" in requested else []
    wanted += [a for a in requested if a not in ("*", "1.1")]
    for node in assertions(f):
        if isinstance(node, Extensible) and (node.type is None or node.dnAttributes):
            wanted.append("*")
        else:
            at = getattr(node, "type", None)
            if at is not None:
                wanted.append(at.name)
    unique = list(dict.fromkeys(wanted))
    return unique or ["1.1"]


def _description(at: Any, options: tuple[str, ...]) -> str:
    return ";".join((at.name,) + tuple(options))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class ProxyBackendFactory:
    """
    Builds a L{ProxyBackend} from a C{[[database]]} table with C{backend = "proxy"}.
    """

    name = "proxy"
    description = "Serve upstream LDAP servers, with DN rewriting and failover (like back-ldap)."

    keys = frozenset({
        "upstreams", "starttls", "remote_suffix", "bind_dn", "bind_password", "pool_size",
        "timeout", "retry_interval", "page_size", "ca_file", "verify_hostname",
        "bind_cache_seconds",
    })

    @classmethod
    def fromConfig(cls, table: dict[str, Any], context: ConfigContext) -> ProxyBackend:
        """
        @param table: the backend's keys: C{upstreams} (required: ldap:// and
            ldaps:// URIs, tried in order), C{starttls}, C{remote_suffix},
            C{bind_dn} and C{bind_password}, C{pool_size}, C{timeout} and
            C{retry_interval} (seconds), C{page_size}, C{ca_file},
            C{verify_hostname}, C{bind_cache_seconds}.
        @param context: the database's context.
        @raise ldapd.registry.ConfigError: naming the key that is wrong.
        """
        config = ConfigTable(table, context, cls.keys)
        schema = context.schema
        assert context.suffix is not None
        startTLS = config.boolean("starttls", False)
        expected = "a non-empty list of ldap:// or ldaps:// URIs"
        uris = config.strings("upstreams", None, expected, nonEmpty=True)
        if not uris:
            raise context.error("upstreams", f"must be {expected}")
        upstreams: list[Upstream] = []
        for i, uri in enumerate(uris):
            try:
                upstreams.append(parseUpstream(uri, startTLS and uri.lower().startswith("ldap:")))
            except ValueError as e:
                raise context.error(f"upstreams[{i}]", str(e)) from None
        remoteSuffix = config.dn("remote_suffix")
        bindDN, bindPassword = bindCredentials(config)
        poolSize = config.integer("pool_size", 4, minimum=1)
        pageSize = config.integer("page_size", 500, minimum=1)
        timeout = config.number("timeout", 10.0)
        retry = config.number("retry_interval", 30.0, minimum=0)
        cacheSeconds = config.number("bind_cache_seconds", 0, minimum=0)
        if timeout <= 0:
            raise context.error("timeout", "must be more than 0")
        options = upstreamTLS(config, upstreams)
        pool = UpstreamPool(
            upstreams, context.reactor, bindDN,
            bindPassword.encode("utf-8") if bindPassword is not None else b"",
            size=poolSize, timeout=timeout, retryInterval=retry,
            tls=lambda u: options[u.uri],
        )
        return ProxyBackend(context.suffix, schema, pool, remoteSuffix, pageSize, cacheSeconds)


def upstreamTLS(config: ConfigTable, upstreams: Sequence[Upstream]) -> dict[str, Any]:
    """
    Read the C{ca_file} and C{verify_hostname} of a table that names
    upstream servers, and make the TLS options of each.

    @param config: the table.
    @param upstreams: the servers it names.
    @return: the client TLS options by upstream URI; empty when no
        upstream uses TLS.
    @raise ldapd.registry.ConfigError: for a CA file that is missing or unreadable.
    """
    caFile: Path | None = None
    caText = config.string("ca_file")
    if caText is not None:
        caFile = config.context.resolvePath(caText)
        if not caFile.is_file():
            raise config.error("ca_file", f"no such file: {caFile}")
    verifyHostname = config.boolean("verify_hostname", True)
    options: dict[str, Any] = {}
    if any(u.tls or u.startTLS for u in upstreams):
        for u in upstreams:
            try:
                options[u.uri] = tlsOptions(u.host, caFile, verifyHostname)
            except ValueError as e:
                raise config.error("ca_file", str(e)) from None
    return options


def bindCredentials(config: ConfigTable) -> tuple[str | None, str | None]:
    """
    Read the C{bind_dn} and C{bind_password} of a table that names an
    upstream server (a proxy database, a replica's provider).

    @param config: the table.
    @return: the DN and the password, both C{None} for an anonymous bind.
    @raise ldapd.registry.ConfigError: for a DN that is not valid, or one
        given without the other.
    """
    # A DN of the upstream server, which the local schema need not know.
    config.dn("bind_dn", inSchema=False)
    bindDN = config.string("bind_dn")
    bindPassword = config.string("bind_password")
    if (bindDN is None) != (bindPassword is None):
        raise config.error("bind_password" if bindDN else "bind_dn",
                           "bind_dn and bind_password go together")
    return bindDN, bindPassword

