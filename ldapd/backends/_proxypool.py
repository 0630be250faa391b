"""
Connections to the upstream servers of a proxy backend, through ldaptor's
client: URI parsing, TLS (ldaps:// and StartTLS, verified with
service_identity), per-request timeouts on the reactor's clock, and a pool
with ordered failover.

The pool holds up to C{size} connections bound as the service account and
multiplexes requests over them. A search holds its connection's paged-results
state (slapd keeps one paged search per connection), so two searches never
share a connection: when every pooled connection carries a search, another
one opens for the new search and closes after it.

Failover: a new connection tries the upstreams in their configured order,
skipping those that failed within the last C{retryInterval} seconds (unless
all have). A pooled connection to a later upstream is retired once an
earlier one's retry interval has passed, so that traffic goes back to the
first upstream when it recovers. When no upstream answers, the request fails
with unavailable (52).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

from ldaptor.protocols import pureber, pureldap
from ldaptor.protocols.ldap import ldaperrors
from ldaptor.protocols.ldap.ldapclient import LDAPClient
from twisted.internet import defer, endpoints, error, protocol, ssl
from twisted.logger import Logger
from twisted.python.failure import Failure

from ldapd._codec import RESPONSE_DECODER, decodeResponse, lengthAt

__all__ = ["Upstream", "UpstreamConnection", "UpstreamPool", "parseUpstream", "tlsOptions"]

_log = Logger()

#: A response PDU with its response controls, C{(oid, criticality, value)}.
Response = tuple[Any, list[tuple[Any, Any, Any]] | None]


@dataclass(frozen=True)
class Upstream:
    """
    One upstream server.

    @ivar uri: the URI as configured.
    @ivar host: the host name (checked against its certificate).
    @ivar port: the TCP port.
    @ivar tls: whether it speaks TLS from the start (C{ldaps://}).
    @ivar startTLS: whether StartTLS is sent before anything else.
    """

    uri: str
    host: str
    port: int
    tls: bool = False
    startTLS: bool = False


def parseUpstream(uri: str, startTLS: bool = False) -> Upstream:
    """
    @param uri: C{ldap://host[:port][/]} or C{ldaps://host[:port][/]}.
    @param startTLS: whether to send StartTLS on C{ldap://} connections.
    @return: the upstream.
    @raise ValueError: if the URI is not an LDAP URI naming a host, or
        combines ldaps:// with StartTLS.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in ("ldap", "ldaps"):
        raise ValueError(f"{uri!r} is not an ldap:// or ldaps:// URI")
    if not parts.hostname:
        raise ValueError(f"{uri!r} names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{uri!r} must name only a host and port")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{uri!r} has an invalid port") from None
    tls = scheme == "ldaps"
    if tls and startTLS:
        raise ValueError(f"{uri!r}: StartTLS cannot be used on ldaps://")
    return Upstream(uri, parts.hostname, port or (636 if tls else 389), tls, startTLS)


def tlsOptions(host: str, caFile: Path | None, verifyHostname: bool) -> Any:
    """
    The client TLS options for one upstream.

    @param host: the upstream's host name.
    @param caFile: PEM certificates to trust instead of the platform's.
    @param verifyHostname: whether the certificate must name C{host}
        (checked by service_identity).
    @return: an C{IOpenSSLClientConnectionCreator}.
    @raise ValueError: if C{caFile} holds no certificate.
    """
    trustRoot: Any
    if caFile is not None:
        text = caFile.read_bytes()
        marker = b"-----END CERTIFICATE-----"
        pems = [chunk + marker for chunk in text.split(marker) if b"-----BEGIN" in chunk]
        if not pems:
            raise ValueError(f"{caFile} holds no PEM certificate")
        trustRoot = ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(p) for p in pems])
    else:
        trustRoot = ssl.platformTrust()
    if verifyHostname:
        return ssl.optionsForClientTLS(host, trustRoot=trustRoot)
    return ssl.CertificateOptions(trustRoot=trustRoot)


class _UpstreamProtocol(LDAPClient):
    """
    ldaptor's client, tolerant of responses to requests it has abandoned,
    and telling its owner when the connection is lost. Its results keep
    their referral URIs (L{RESPONSE_DECODER}).
    """

    berdecoder = RESPONSE_DECODER
    #: What has come and is not yet decoded (kept by ldaptor's C{LDAPClient}).
    buffer: bytes

    def __init__(self) -> None:
        super().__init__()
        self.onLost: Callable[[], None] | None = None
        self._decoding = False

    def dataReceived(self, data: bytes) -> None:
        """
        Decode and handle each complete response, as ldaptor's client does,
        but for its test of a decoded message with C{not}, which BER objects
        answer by encoding themselves again (their C{__len__}): as costly as
        decoding, for every response (a syncrepl refresh's thousands). The
        common responses are decoded by L{decodeResponse}, the rest by
        ldaptor's decoder; the buffer is cut once per call, not once per
        response.
        """
        self.buffer += data
        if self._decoding:
            # Called again by a response's handler: the loop below goes on
            # with what came.
            return
        self._decoding = True
        pos = 0
        try:
            while pos < len(self.buffer):
                buffer = self.buffer
                message = None
                try:
                    found = lengthAt(buffer, pos + 1)
                except ValueError:
                    # Malformed: ldaptor's decoder says how.
                    found = None
                else:
                    if found is None or found[0] + found[1] > len(buffer):
                        return
                    used = found[0] + found[1] - pos
                    message = decodeResponse(buffer[pos : pos + used])
                if message is None:
                    try:
                        message, used = pureber.berDecodeObject(self.berdecoder, buffer[pos:])
                    except pureber.BERExceptionInsufficientData:
                        return
                    if message is None:
                        if not used:
                            return
                        # An unknown tag, skipped.
                        pos += used
                        continue
                pos += used
                self.handle(message)
        finally:
            self.buffer = self.buffer[pos:]
            self._decoding = False

    def handle(self, msg: Any) -> None:
        if msg.id == 0:
            # Notice of Disconnection (RFC 4511 §4.4.1): the server is going away.
            self.transport.loseConnection()
            return
        if msg.id not in self.onwire:
            return
        super().handle(msg)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        # The owner hears first, so that requests failing below see a lost connection.
        self.connected = 0
        if self.onLost is not None:
            self.onLost()
        super().connectionLost(reason)


class _UpstreamFactory(protocol.Factory):
    """
    Builds the client protocol of one connection, quietly: a proxy opens
    connections often, and each one's factory would log its start and stop.
    """

    noisy = False
    protocol = _UpstreamProtocol


class UpstreamConnection:
    """
    One open connection to an upstream server.

    @ivar upstream: the server.
    @ivar index: its position in the configured list.
    @ivar load: the number of requests in progress.
    @ivar searching: whether a search holds it.
    @ivar retired: whether the pool no longer hands it out.
    @ivar transient: whether it is closed as soon as it is idle.
    """

    def __init__(self, client: _UpstreamProtocol, upstream: Upstream, index: int, clock: Any,
                 timeout: float) -> None:
        """
        @param client: the connected ldaptor client.
        @param upstream: the server it is connected to.
        @param index: the server's position in the configured list.
        @param clock: the clock for request timeouts.
        @param timeout: seconds a request may wait for each response.
        """
        self.protocol = client
        self.upstream = upstream
        self.index = index
        self.clock = clock
        self.timeout = timeout
        self.load = 0
        self.searching = False
        self.retired = False
        self.transient = False
        self.lost = False
        self._lostCallbacks: list[Callable[[UpstreamConnection], None]] = []
        client.onLost = self._connectionLost

    def _connectionLost(self) -> None:
        self.lost = True
        callbacks, self._lostCallbacks = self._lostCallbacks, []
        for cb in callbacks:
            cb(self)

    def whenLost(self, callback: Callable[[UpstreamConnection], None]) -> None:
        """
        @param callback: called with this connection when it is lost.
        """
        self._lostCallbacks.append(callback)

    @property
    def usable(self) -> bool:
        """
        Whether requests may be sent on it.
        """
        return not (self.lost or self.retired)

    def request(
        self,
        op: Any,
        controls: Sequence[tuple[str, bool | None, bytes | None]] | None = None,
        onResponse: Callable[[Any, Any], None] | None = None,
        persistent: bool = False,
    ) -> tuple[defer.Deferred[Response], int]:
        """
        Send one request.

        The request fails with unavailable (52) if the connection is lost or
        the upstream sends nothing for C{timeout} seconds (the connection is
        then dropped: an upstream that stalls is not trusted with more
        requests). Cancelling the returned Deferred abandons the request.

        @param op: the ldaptor request PDU.
        @param controls: request controls.
        @param onResponse: called with C{(response, controls)} for every
            response before the final one (search entries and references).
            If it raises, the request is abandoned and fails with that error.
        @param persistent: whether the upstream may rightly stay silent for
            any time (a persistent search): no timeout then, only the loss
            of the connection ends it.
        @return: a Deferred firing with the final response and its controls,
            and the request's message id.
        """
        if self.lost:
            raise ldaperrors.LDAPUnavailable(f"connection to {self.upstream.uri} lost")
        message = pureldap.LDAPMessage(op, controls=list(controls) if controls else None)
        msgid = message.id

        def cancel(_: defer.Deferred[Response]) -> None:
            self.abandon(msgid)

        d: defer.Deferred[Response] = defer.Deferred(cancel)

        def expire() -> None:
            self.protocol.onwire.pop(msgid, None)
            if not d.called:
                d.errback(ldaperrors.LDAPUnavailable(
                    f"{self.upstream.uri} did not answer within {self.timeout:g} s"))
            _log.warn("upstream {uri} stalled; dropping the connection", uri=self.upstream.uri)
            transport = self.protocol.transport
            if transport is not None:
                transport.abortConnection()

        timer = None if persistent else self.clock.callLater(self.timeout, expire)

        def handler(value: Any, responseControls: Any) -> bool:
            # Always False: the entry is removed here, before the callbacks
            # run (they may close the connection or send more requests).
            if timer is not None and timer.active():
                timer.reset(self.timeout)
            if isinstance(value, pureldap.LDAPResult):
                self.protocol.onwire.pop(msgid, None)
                if not d.called:
                    d.callback((value, responseControls))
                return False
            if onResponse is not None:
                try:
                    onResponse(value, responseControls)
                except BaseException:
                    self.abandon(msgid)
                    if not d.called:
                        d.errback()
            return False

        def done(result: Any) -> Any:
            if timer is not None and timer.active():
                timer.cancel()
            if isinstance(result, Failure) and not result.check(
                ldaperrors.LDAPException, defer.CancelledError
            ):
                return Failure(ldaperrors.LDAPUnavailable(
                    f"connection to {self.upstream.uri} lost: {_describe(result.value)}"))
            return result

        d.addBoth(done)
        self.protocol.onwire[msgid] = (d, True, handler, (), {})
        self.protocol.transport.write(message.toWire())
        return d, msgid

    def abandon(self, msgid: int) -> None:
        """
        Abandon a request: its further responses are ignored.
        """
        if self.protocol.onwire.pop(msgid, None) is not None and not self.lost:
            self.protocol.send_noResponse(pureldap.LDAPAbandonRequest(id=msgid))

    async def call(self, op: Any, controls: Sequence[tuple[str, bool | None, bytes | None]] | None = None
                   ) -> Response:
        """
        Send a request with one response.

        @return: the response and its controls.
        """
        d, _ = self.request(op, controls)
        return await d

    async def bind(self, dn: str, password: bytes) -> None:
        """
        Simple bind.

        @raise ldaperrors.LDAPException: the upstream's error.
        """
        response, _ = await self.call(pureldap.LDAPBindRequest(dn=dn, auth=password))
        if response.resultCode != 0:
            raise ldaperrors.get(response.resultCode, _text(response.errorMessage))

    async def startTLS(self, options: Any) -> None:
        """
        Send StartTLS and start the handshake.

        @raise ldaperrors.LDAPException: if the upstream refuses.
        """
        response, _ = await self.call(pureldap.LDAPStartTLSRequest())
        if response.resultCode != 0:
            raise ldaperrors.get(response.resultCode, _text(response.errorMessage))
        self.protocol.transport.startTLS(options)

    def close(self) -> defer.Deferred[None]:
        """
        Unbind and close.

        @return: a Deferred that fires when the connection is closed.
        """
        if self.lost or not self.protocol.connected:
            return defer.succeed(None)
        closed: defer.Deferred[None] = defer.Deferred()
        self.whenLost(lambda _: closed.callback(None))
        self.protocol.onwire.clear()
        self.protocol.send_noResponse(pureldap.LDAPUnbindRequest())
        self.protocol.transport.loseConnection()
        return closed


class UpstreamPool:
    """
    Connections to a list of upstreams, in order of preference.
    """

    def __init__(
        self,
        upstreams: Sequence[Upstream],
        reactor: Any,
        bindDN: str | None = None,
        bindPassword: bytes = b"",
        size: int = 4,
        timeout: float = 10.0,
        retryInterval: float = 30.0,
        tls: Callable[[Upstream], Any] | None = None,
        clock: Any = None,
    ) -> None:
        """
        @param upstreams: the servers, tried in this order.
        @param reactor: the reactor to connect with.
        @param bindDN: the service account pooled connections bind as
            (anonymous when C{None}).
        @param bindPassword: its password.
        @param size: the most pooled connections.
        @param timeout: seconds to wait for a connection or for any response.
        @param retryInterval: seconds a failed upstream is skipped for.
        @param tls: builds the TLS options of an upstream.
        @param clock: the clock for timeouts; the reactor by default.
        """
        self.upstreams = list(upstreams)
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.bindDN = bindDN
        self.bindPassword = bindPassword
        self.size = size
        self.timeout = timeout
        self.retryInterval = retryInterval
        self._tls = tls
        self._connections: list[UpstreamConnection] = []
        self._opening = 0
        self._downUntil: dict[int, float] = {}
        self._open: set[UpstreamConnection] = set()
        self._closed = False

    # Connecting

    def _isDown(self, index: int) -> bool:
        return self._downUntil.get(index, 0.0) > self.clock.seconds()

    async def _connectTo(self, upstream: Upstream, index: int) -> UpstreamConnection:
        endpoint: Any = endpoints.HostnameEndpoint(
            self.reactor, upstream.host.encode("idna"), upstream.port, timeout=self.timeout
        )
        if upstream.tls:
            assert self._tls is not None
            endpoint = endpoints.wrapClientTLS(self._tls(upstream), endpoint)
        d = endpoint.connect(_UpstreamFactory())
        d.addTimeout(self.timeout, self.clock)
        client = await d
        connection = UpstreamConnection(client, upstream, index, self.clock, self.timeout)
        self._open.add(connection)
        connection.whenLost(self._open.discard)
        try:
            if upstream.startTLS:
                assert self._tls is not None
                await connection.startTLS(self._tls(upstream))
        except BaseException:
            connection.close()
            raise
        return connection

    async def connect(self, serviceBind: bool = True) -> UpstreamConnection:
        """
        Open a connection to the first upstream that answers.

        @param serviceBind: whether to bind it as the service account.
        @return: the connection (not in the pool).
        @raise ldaperrors.LDAPUnavailable: if none answers.
        """
        indexes = range(len(self.upstreams))
        order = [i for i in indexes if not self._isDown(i)] + [i for i in indexes if self._isDown(i)]
        problems = []
        for i in order:
            upstream = self.upstreams[i]
            try:
                connection = await self._connectTo(upstream, i)
                if serviceBind and self.bindDN is not None:
                    try:
                        await connection.bind(self.bindDN, self.bindPassword)
                    except BaseException:
                        connection.close()
                        raise
            except defer.CancelledError:
                raise
            except (defer.TimeoutError, error.TimeoutError):
                problem = f"{upstream.uri}: no answer within {self.timeout:g} s"
            except Exception as e:
                problem = f"{upstream.uri}: {_describe(e)}"
            else:
                if self._downUntil.pop(i, None) is not None:
                    _log.info("upstream {uri} is back", uri=upstream.uri)
                return connection
            self._downUntil[i] = self.clock.seconds() + self.retryInterval
            problems.append(problem)
            _log.warn("upstream unavailable: {problem}", problem=problem)
        raise ldaperrors.LDAPUnavailable("no upstream server answered (" + "; ".join(problems) + ")")

    # The pool

    def _retire(self) -> None:
        for c in self._connections:
            if c.index and not c.retired and any(
                not self._isDown(j) for j in range(c.index)
            ):
                c.retired = True
                if c.load == 0:
                    c.close()
        self._connections = [c for c in self._connections if c.usable]

    def _forget(self, connection: UpstreamConnection) -> None:
        if connection in self._connections:
            self._connections.remove(connection)

    async def acquire(self, search: bool = False) -> UpstreamConnection:
        """
        A connection bound as the service account, for one request; give
        it back with L{release}.

        @param search: whether it is for a search (which needs a connection
            no other search uses).
        @raise ldaperrors.LDAPUnavailable: if no upstream answers.
        """
        if self._closed:
            raise ldaperrors.LDAPUnavailable("the proxy backend is closed")
        self._retire()
        candidates = [c for c in self._connections if not (search and c.searching)]
        full = len(self._connections) + self._opening >= self.size
        if candidates and (full or min(c.load for c in candidates) == 0):
            connection = min(candidates, key=lambda c: c.load)
        else:
            self._opening += 1
            try:
                connection = await self.connect()
            finally:
                self._opening -= 1
            if full or self._closed:
                connection.transient = True
            else:
                self._connections.append(connection)
                connection.whenLost(self._forget)
        connection.load += 1
        if search:
            connection.searching = True
        return connection

    def release(self, connection: UpstreamConnection, search: bool = False) -> None:
        """
        Give back a connection from L{acquire}.
        """
        connection.load -= 1
        if search:
            connection.searching = False
        if connection.load == 0 and (connection.transient or connection.retired):
            connection.close()

    def close(self) -> defer.Deferred[None]:
        """
        Close every connection, pooled or not.

        @return: a Deferred that fires when they are all closed.
        """
        self._closed = True
        self._connections = []
        return defer.gatherResults([c.close() for c in list(self._open)]).addCallback(
            lambda _: None)


def _describe(error: BaseException) -> str:
    if isinstance(error, ldaperrors.LDAPException):
        return _text(error.toWire())
    return str(error) or type(error).__name__


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
