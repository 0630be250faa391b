"""
The LDAP server protocol: one L{LDAPServerProtocol} per connection.

The protocol frames the byte stream, keeps the connection's state, runs
requests concurrently by message id, serialises Bind, answers nothing to
Abandon, and applies back-pressure; what each request means is decided by the
L{ldapd.directory.Directory} (as C{twisted.names.dns} hands messages to its
controller).
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from typing import Any, Protocol, Sequence

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import address, interfaces, protocol, tcp
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ldapd._codec import (
    NOTICE_OF_DISCONNECTION,
    RESPONSE_TAGS,
    Control,
    encodeExtendedResponse,
    encodeMessage,
    encodeResult,
)
from ldapd._framing import (
    DEFAULT_MAX_ANONYMOUS_PDU_SIZE,
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_PDU_SIZE,
    BadRequest,
    BufferBudget,
    Framer,
    MalformedPDU,
    Oversized,
)
from ldapd.directory import Directory
from ldapd.limits import ConnectionLimits, IdleTimer
from ldapd.operation import ANONYMOUS, Connection, Operation
from ldapd.requests import (
    AbandonRequest,
    BindRequest,
    CancelRequest,
    Message,
    StartTLSRequest,
    UnbindRequest,
)

__all__ = ["LDAPServerFactory", "LDAPServerProtocol", "MAX_OUTSTANDING"]

#: Requests a connection may have queued or running before the server stops
#: reading from it, unless configured otherwise (L{ConnectionLimits}).
_DEFAULT_LIMITS = ConnectionLimits()
MAX_OUTSTANDING = _DEFAULT_LIMITS.maxOutstanding

_ABANDON = 0x50
_BIND = 0x60
_UNBIND = 0x42


def _peerCredentials(transport: Any) -> tuple[int, int] | None:
    """
    @return: the C{(uid, gid)} of the process at the other end of a local
        socket, where the system tells it (C{SO_PEERCRED}); else C{None}.
    """
    option = getattr(socket, "SO_PEERCRED", None)
    handle = getattr(transport, "getHandle", None)
    if option is None or handle is None:
        return None
    try:
        raw = handle().getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    _, uid, gid = struct.unpack("3i", raw)
    return uid, gid


def _writeNow(transport: Any, data: bytes) -> None:
    """
    Write C{data} to C{transport}, sending it at once when the transport is
    a plain TCP connection with nothing queued.

    Twisted's TCP transport queues every write and sends it when the
    reactor next finds the socket writable: for one response, an
    C{epoll_ctl} to watch for writability, a wake-up, the send, and another
    C{epoll_ctl} to stop watching (slapd, like most servers, sends at once).
    With nothing queued there is nothing to keep in order, so the bytes go
    out now, and only what the kernel does not take is queued as before.
    Anything else (TLS, a UNIX socket, a closing connection, a send error,
    which Twisted's own write then meets and reports) takes Twisted's way.

    @param transport: the connection's transport.
    @param data: the bytes.
    """
    if (type(transport) is tcp.Server and not transport.TLS and transport.connected
            and not transport.disconnecting and not transport._tempDataBuffer
            and transport.offset == len(transport.dataBuffer)):
        try:
            sent = transport.socket.send(data)
        except OSError:
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


def _peerText(address: Any) -> str:
    host = getattr(address, "host", None)
    if host is not None:
        return f"{host}:{address.port}"
    name = getattr(address, "name", None)
    return f"unix:{name.decode() if isinstance(name, bytes) else name or ''}"


def _abandonable(op: Operation) -> bool:
    """
    @return: whether Abandon and Cancel can stop a client's operation (RFC
        4511 §4.11: not Bind, StartTLS or Cancel).
    """
    return op.request is not None and op.request.abandonable


class _Transport(Protocol):
    """
    What the protocol uses of its transport: a TCP, TLS or UNIX socket
    transport, which is also a producer and can start TLS.
    """

    def write(self, data: bytes) -> None: ...
    def loseConnection(self) -> None: ...
    def getPeer(self) -> Any: ...
    def getHost(self) -> Any: ...
    def getHandle(self) -> Any: ...
    def getPeerCertificate(self) -> Any: ...
    def registerProducer(self, producer: Any, streaming: bool) -> None: ...
    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...
    def startTLS(self, contextFactory: Any) -> None: ...


@implementer(interfaces.IPushProducer, interfaces.IHandshakeListener)
class LDAPServerProtocol(protocol.Protocol):
    """
    One client connection.

    It is registered as a producer with its transport, so that when the
    client stops reading, operations that call
    L{ldapd.operation.Operation.cooperate} wait.
    """

    _log = Logger()
    transport: _Transport  # type: ignore[assignment]

    #: The connection's limits; its factory sets them.
    limits = ConnectionLimits()

    #: The client's IP address, counted against its factory's
    #: C{maxConnectionsPerAddress}; C{None} for other transports.
    address: str | None = None

    def __init__(self, directory: Directory, clock: Any, maxPDUSize: int, tls: Any = None,
                 maxAnonymousPDUSize: int | None = None, budget: BufferBudget | None = None) -> None:
        """
        @param directory: the directory requests are sent to.
        @param clock: the reactor's clock.
        @param maxPDUSize: the largest PDU accepted once the client has bound.
        @param tls: the server's TLS (an C{IOpenSSLServerConnectionCreator}
            such as L{ldapd.tls.ServerTLS}), which enables StartTLS; or C{None}.
        @param maxAnonymousPDUSize: the largest PDU accepted before; by
            default C{maxPDUSize}.
        @param budget: what the server's connections may buffer together.
        """
        self._directory = directory
        self._statistics = directory.statistics
        self.clock = clock
        self.tls = tls
        self._startingTLS: Operation | None = None
        self.maxPDUSize = maxPDUSize
        self.maxAnonymousPDUSize = maxPDUSize if maxAnonymousPDUSize is None else maxAnonymousPDUSize
        self.framer = Framer(self.maxAnonymousPDUSize, budget)
        self.connection: Connection | None = None
        self._outstanding: dict[int, Operation] = {}
        # The Cancel requests waiting for each operation they cancel to end.
        self._cancels: dict[int, list[int]] = {}
        self._queue: deque[Message] = deque()
        self._binding = False
        self._readingPaused = False
        self._writePaused = False
        self._transportPaused = False
        self._processing = False
        self._closing = False
        # The responses made while a read is handled, written together at
        # its end (L{_flush}); None when responses go out as they come.
        self._corked: list[bytes] | None = None
        self._idle = IdleTimer(clock, 0, self._idleTimedOut)

    @property
    def directory(self) -> Directory:
        """
        The directory each new operation is sent to: its factory's, which a
        reload replaces (operations under way finish with the one they
        started with), or the one it was built with when it has no factory.
        """
        factory = getattr(self, "factory", None)
        if isinstance(factory, LDAPServerFactory):
            return factory.directory
        return self._directory

    # Transport events

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.connection = Connection(
            _peerText(peer),
            self.clock,
            secure=interfaces.ISSLTransport.providedBy(self.transport),
        )
        self.connection.address = getattr(peer, "host", None)
        if isinstance(self.transport.getHost(), address.UNIXAddress):
            self.connection.local = True
            self.connection.peerCredentials = _peerCredentials(self.transport)
        elif hasattr(self.transport, "setTcpNoDelay"):
            # As slapd: a response written in pieces (a search's entries as
            # a backend's thread hands them over, then its result) goes out
            # at once, not held back by Nagle's algorithm until the client
            # acknowledges the first piece, which a client waiting for the
            # rest delays by up to 40 ms.
            self.transport.setTcpNoDelay(True)
        if self.tls is not None and interfaces.ITLSTransport.providedBy(self.transport):
            self.connection.startTLS = self._startTLS
        self.transport.registerProducer(self, True)
        self._statistics.totalConnections += 1
        self._statistics.connections[self.connection.id] = self
        self._log.info(
            "conn={conn} accepted from {peer}", conn=self.connection.id, peer=self.connection.peer
        )
        self._idle.timeout = self.limits.idleTimeout
        self._idle.reset()

    def _idleTimedOut(self) -> None:
        """
        Close the connection if it has nothing outstanding, as slapd's
        C{idletimeout} does; otherwise wait again.
        """
        if self._pending() or self._closing:
            self._idle.reset()
            return
        assert self.connection is not None
        self._log.info("conn={conn} idle for {timeout}s, closing",
                       conn=self.connection.id, timeout=self._idle.timeout)
        self._closing = True
        self._flush()
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._closing = True
        self._idle.cancel()
        self.framer.close()
        factory = getattr(self, "factory", None)
        if isinstance(factory, LDAPServerFactory):
            factory.connectionClosed(self)
        self._queue.clear()
        for op in list(self._outstanding.values()):
            op.abandon()
        if self.connection is not None:
            self._statistics.connections.pop(self.connection.id, None)
            for state in list(self.connection.pagedSearches.values()):
                state.cancel()
            self.connection.pagedSearches.clear()
            # Its LDAP transaction, if any, is abandoned with its updates.
            self.connection.transaction = None
            self.connection.resume()
            self._log.info("conn={conn} closed", conn=self.connection.id)

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake is over (LDAPS or StartTLS): the connection is
        secure, and the client's certificate, if any, has been verified.
        """
        assert self.connection is not None
        self.connection.secure = True
        certificate = self.transport.getPeerCertificate()
        subject = None
        if certificate is not None:
            self.connection.peerCertificate = certificate.to_cryptography()
            subject = self.connection.peerCertificate.subject.rfc4514_string()
        handle = self.transport.getHandle()
        self._log.info(
            "conn={conn} TLS established {version} {cipher} client certificate {subject}",
            conn=self.connection.id, version=handle.get_protocol_version_name(),
            cipher=handle.get_cipher_name(), subject=subject,
        )

    def pauseProducing(self) -> None:
        """
        The transport's send buffer is full: the client is not reading. Stop
        producing responses (long searches wait in L{Operation.cooperate})
        and stop reading requests, so that a client that never reads cannot
        make the server buffer its answers without bound.
        """
        self._writePaused = True
        if self.connection is not None:
            self.connection.pause()
        self._updateReading()

    def resumeProducing(self) -> None:
        """
        The client reads again: go on with what is queued and read more.
        """
        self._writePaused = False
        if self.connection is not None:
            self.connection.resume()
        self._updateReading()
        self._process()

    def _updateReading(self) -> None:
        """
        Read from the transport unless too many requests are pending or the
        client is not reading its responses.
        """
        if self._closing:
            return
        pause = self._readingPaused or self._writePaused
        if pause != self._transportPaused:
            self._transportPaused = pause
            if pause:
                self.transport.pauseProducing()
            else:
                self.transport.resumeProducing()

    def stopProducing(self) -> None:
        self.pauseProducing()

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self._idle.reset()
        # Requests answered synchronously (the memory backend's) have their
        # responses written with one send: a search's entry and its result
        # in one segment, as slapd writes them.
        self._corked = []
        try:
            try:
                self.framer.feed(data)
            except Oversized as e:
                self._drop(str(e))
                return
            self._process()
        finally:
            self._flush()

    def _flush(self) -> None:
        """
        Write the responses held since the read began, and write the next
        ones as they come.
        """
        corked, self._corked = self._corked, None
        if corked:
            _writeNow(self.transport, b"".join(corked))

    # Requests

    def _send(self, data: bytes) -> None:
        """
        Write one encoded PDU, counting it for C{cn=Monitor}: every PDU the
        server sends goes through here.
        """
        statistics = self._statistics
        statistics.pdus += 1
        statistics.bytes += len(data)
        if self._corked is not None:
            self._corked.append(data)
        else:
            _writeNow(self.transport, data)

    def _completed(self, kind: str) -> None:
        """
        Count a request as over.

        @param kind: its operation (L{ldapd.requests.Request.operation}).
        """
        self._statistics.completed[kind] += 1
        self.connection.opsCompleted += 1  # type: ignore[union-attr]

    def _disconnect(self, reason: str) -> None:
        """
        Send a Notice of Disconnection (RFC 4511 §4.4.1) and close.
        """
        assert self.connection is not None
        self._log.info("conn={conn} protocol error, closing: {reason}",
                       conn=self.connection.id, reason=reason)
        notice = encodeExtendedResponse(
            2, b"", reason.encode("utf-8", "replace"), name=NOTICE_OF_DISCONNECTION
        )
        self._send(encodeMessage(0, notice))
        self._closing = True
        self._flush()
        self.transport.loseConnection()

    def _drop(self, reason: str) -> None:
        """
        Close the connection without a Notice of Disconnection, as slapd
        does when a client sends more than it may (C{sockbuf_max_incoming}),
        and free what it had buffered at once.
        """
        assert self.connection is not None
        self._log.warn("conn={conn} from {peer} closed: {reason}",
                       conn=self.connection.id, peer=self.connection.peer, reason=reason)
        self._closing = True
        self.framer.close()
        self._flush()
        self.transport.loseConnection()

    def _frameFor(self) -> None:
        """
        Give the framer the limits of who the client is now: a bound client
        may send larger PDUs than an anonymous one (as slapd's
        C{sockbuf_max_incoming_auth} and C{sockbuf_max_incoming}), and a root
        DN filters of any size (L{ldapd.limits.checkFilterSize}).
        """
        assert self.connection is not None
        identity = self.connection.identity
        self.framer.maxPDUSize = (
            self.maxAnonymousPDUSize if identity.anonymous else self.maxPDUSize
        )
        self.framer.maxFilterComponents = (
            0 if identity.isRoot else self.directory.limits.maxFilterComponents
        )

    def _badRequest(self, bad: BadRequest) -> None:
        """
        Answer a well-framed request that could not be decoded with
        protocolError in a response of its type, or with the error of the
        limit it passed; an undecodable Bind is a failed Bind, which leaves
        the connection anonymous (RFC 4511 §4.2.1).
        """
        assert self.connection is not None
        responseTag = RESPONSE_TAGS.get(bad.tag)
        if bad.tag == _ABANDON:
            return
        if bad.tag == _UNBIND or responseTag is None or bad.messageId == 0:
            self._disconnect(f"unknown or undecodable request: {bad.reason}")
            return
        if bad.tag == _BIND:
            self.connection.identity = ANONYMOUS
        if bad.error is None:
            code, text = 2, b"decoding error"
        else:
            # Refused before decoding, the request never reaches the access log.
            self._log.info("conn={conn} op={msgid} refused: {reason}",
                           conn=self.connection.id, msgid=bad.messageId, reason=bad.reason)
            code, text = bad.error.resultCode, bad.reason.encode("utf-8")
        self._send(encodeMessage(bad.messageId, encodeResult(responseTag, code, b"", text)))

    def _received(self, message: Message) -> None:
        request = message.request
        if message.messageId == 0:
            self._disconnect("message id 0 is reserved for unsolicited notifications")
            return
        kind = request.operation
        self._statistics.initiated[kind] += 1
        self.connection.opsReceived += 1  # type: ignore[union-attr]
        if isinstance(request, UnbindRequest):
            self._completed(kind)
            self._closing = True
            self._flush()
            self.transport.loseConnection()
        elif isinstance(request, AbandonRequest):
            self._abandon(request.messageId)
            self._completed(kind)
        elif isinstance(request, CancelRequest):
            self._cancel(message.messageId, request.messageId)
        else:
            self._queue.append(message)
            if self._pending() >= self.limits.maxOutstanding:
                self._readingPaused = True
                self._updateReading()

    def operationCounts(self) -> tuple[int, int]:
        """
        @return: the number of requests running and the number queued, for
            C{cn=Monitor}'s connection entries.
        """
        return len(self._outstanding), len(self._queue)

    def _pending(self) -> int:
        """
        @return: the number of requests queued or running.
        """
        return len(self._queue) + len(self._outstanding)

    def _abandon(self, messageId: int) -> None:
        """
        Abandon a running or queued request, unless it is one that cannot be
        abandoned (RFC 4511 §4.11): the client still gets its response.
        """
        op = self._outstanding.get(messageId)
        if op is not None:
            if _abandonable(op):
                op.abandon()
            return
        for index, message in enumerate(self._queue):
            if message.messageId == messageId:
                if message.request.abandonable:
                    del self._queue[index]
                    self._completed(message.request.operation)
                return

    def _cancel(self, messageId: int, target: int) -> None:
        """
        Carry out a Cancel request (RFC 3909): the operation it names stops
        and answers canceled (118); the Cancel itself is answered once that
        is done: success, or tooLate (120) if the operation ended first.
        What cannot be canceled (Bind, StartTLS, Cancel) is cannotCancel
        (121), and what is not running noSuchOperation (119).

        @param messageId: the Cancel's message id.
        @param target: the message id of the operation to cancel.
        """
        op = self._outstanding.get(target)
        if op is None:
            for index, queued in enumerate(self._queue):
                if queued.messageId == target:
                    if not queued.request.abandonable:
                        self._answerCancel(messageId, 121, "operation cannot be canceled")
                        return
                    del self._queue[index]
                    tag = queued.request.responseTag
                    assert tag is not None
                    self._send(encodeMessage(target, encodeResult(tag, 118, b"", b"canceled")))
                    self._completed(queued.request.operation)
                    self._answerCancel(messageId, 0)
                    return
            self._answerCancel(messageId, 119, "no such operation")
            return
        if not _abandonable(op):
            self._answerCancel(messageId, 121, "operation cannot be canceled")
            return
        self._cancels.setdefault(target, []).append(messageId)
        op.cancel()

    def _answerCancel(self, messageId: int, code: int, text: Any = b"") -> None:
        """
        Send the response of a Cancel request, and count it as over.
        """
        if isinstance(text, str):
            text = text.encode("utf-8")
        if not self._closing:
            self._send(encodeMessage(messageId, encodeExtendedResponse(code, b"", text)))
        self._completed("extended")

    def _process(self) -> None:
        """
        Read messages from the framer and start queued requests, until
        neither can go on.

        Requests start in order: a Bind waits until every earlier request is
        complete, and later requests wait for the Bind. Reading stops while
        C{limits.maxOutstanding} requests are queued or running (what is already
        buffered stays in the framer), and resumes when half of them are
        done. An operation that completes synchronously calls this again
        from inside the loop; that call returns at once and the loop goes
        on, so that the stack does not grow with the number of requests.
        """
        if self._processing:
            return
        self._processing = True
        try:
            while not self._closing:
                if self._readingPaused and self._pending() < self.limits.maxOutstanding // 2:
                    self._readingPaused = False
                    self._updateReading()
                # While the client is not reading, nothing new starts, but
                # what was received is still decoded (up to the limit), so
                # that an Abandon or an Unbind takes effect.
                if not self._writePaused and self._startNext():
                    continue
                if self._readingPaused:
                    break
                self._frameFor()
                try:
                    message = self.framer.next()
                except Oversized as e:
                    self._drop(str(e))
                    break
                except MalformedPDU as e:
                    self._disconnect(str(e))
                    break
                if message is None:
                    break
                if isinstance(message, BadRequest):
                    self._badRequest(message)
                else:
                    self._received(message)
        finally:
            self._processing = False

    def _startNext(self) -> bool:
        """
        Start the first queued request, if it may start. Later requests
        wait for a Bind or a StartTLS to end; StartTLS itself starts at once,
        to refuse itself if others are outstanding.

        @return: whether one was started.
        """
        if not self._queue or self._binding:
            return False
        message = self._queue[0]
        isBind = isinstance(message.request, BindRequest)
        if isBind and self._outstanding:
            return False
        self._queue.popleft()
        self._binding = isBind or isinstance(message.request, StartTLSRequest)
        self._start(message)
        return True

    def _startTLS(self, op: Operation) -> None:
        """
        Switch to TLS once C{op}, a StartTLS request, has been answered.

        @raise ldaperrors.LDAPOperationsError: if other requests are
            outstanding or more bytes have arrived, which would be read as
            if they had come over TLS.
        """
        if len(self._outstanding) > 1 or self._queue or self.framer.buffered:
            raise ldaperrors.LDAPOperationsError(
                "cannot start TLS when operations are outstanding"
            )
        self._startingTLS = op

    def _switchToTLS(self) -> None:
        """
        Start TLS, right after the StartTLS response. Bytes the client sent
        after its request and before the response came in the clear; rather
        than read them as if they had come over TLS, close the connection.
        """
        if self._closing:
            return
        assert self.connection is not None
        if self._queue or self.framer.buffered:
            self._log.info("conn={conn} sent data in the clear during StartTLS, closing",
                           conn=self.connection.id)
            self._closing = True
            self._queue.clear()
            self._flush()
            self.transport.loseConnection()
            return
        self._flush()
        self.transport.startTLS(self.tls)

    def _start(self, message: Message) -> None:
        assert self.connection is not None
        request = message.request
        op = Operation(self.connection, message.messageId, message.request, message.controls)
        self._outstanding[message.messageId] = op

        def reply(pdu: bytes, controls: Sequence[Control] = ()) -> None:
            if not (op.abandoned or self._closing):
                self._send(encodeMessage(op.messageId, pdu, controls))

        def finished(result: Any) -> None:
            if isinstance(result, Failure):
                self._log.failure(
                    "conn={conn} op={msgid}: the directory failed", result,
                    conn=op.connection.id, msgid=op.messageId,
                )
            if self._outstanding.get(op.messageId) is op:
                del self._outstanding[op.messageId]
            self._completed(request.operation)
            for cancel in self._cancels.pop(op.messageId, ()):
                self._answerCancel(cancel, 0 if op.cancelTookEffect else 120)
            if isinstance(request, (BindRequest, StartTLSRequest)):
                self._binding = False
            if op is self._startingTLS:
                self._startingTLS = None
                self._switchToTLS()
            self._idle.reset()
            self._process()

        self.directory.execute(op, reply).addBoth(finished)


class LDAPServerFactory(protocol.ServerFactory):
    """
    Serves a L{Directory} on any stream endpoint.
    """

    protocol = LDAPServerProtocol
    _log = Logger()

    def __init__(
        self,
        directory: Directory,
        reactor: Any = None,
        maxPDUSize: int = DEFAULT_MAX_PDU_SIZE,
        tls: Any = None,
        limits: ConnectionLimits = _DEFAULT_LIMITS,
        maxAnonymousPDUSize: int = DEFAULT_MAX_ANONYMOUS_PDU_SIZE,
        maxBufferedBytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        """
        @param directory: the directory to serve.
        @param reactor: the reactor (its clock times operations); the global
            one by default.
        @param maxPDUSize: the largest request accepted from a bound client,
            in bytes (the length its header announces).
        @param tls: the server's TLS (an C{IOpenSSLServerConnectionCreator}
            such as L{ldapd.tls.ServerTLS}), which enables StartTLS; or C{None}.
        @param limits: what one connection and one client address may hold.
        @param maxAnonymousPDUSize: the largest request accepted from a
            client that has not bound.
        @param maxBufferedBytes: the bytes all connections together may hold
            in requests not yet received in full (0: no limit); a connection
            whose bytes would pass it is closed.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.directory = directory
        self.reactor = reactor
        self.maxPDUSize = maxPDUSize
        self.maxAnonymousPDUSize = maxAnonymousPDUSize
        self.budget = BufferBudget(maxBufferedBytes)
        self.tls = tls
        self.limits = limits
        self._perAddress: dict[str, int] = {}

    def buildProtocol(self, addr: Any) -> LDAPServerProtocol | None:
        """
        A protocol for a new connection, or C{None} (which closes it) when
        its address already has C{limits.maxConnectionsPerAddress} open.
        """
        host = getattr(addr, "host", None)
        if host is not None and self.limits.maxConnectionsPerAddress:
            if self._perAddress.get(host, 0) >= self.limits.maxConnectionsPerAddress:
                self._log.warn(
                    "connection from {peer} refused: {host} has {count} connections open",
                    peer=_peerText(addr), host=host, count=self._perAddress[host],
                )
                return None
        p = LDAPServerProtocol(self.directory, self.reactor, self.maxPDUSize, self.tls,
                               self.maxAnonymousPDUSize, self.budget)
        p.factory = self
        p.limits = self.limits
        p.address = host
        if host is not None:
            self._perAddress[host] = self._perAddress.get(host, 0) + 1
        return p

    def connectionClosed(self, p: LDAPServerProtocol) -> None:
        """
        Forget a closed connection in the count of its address.

        @param p: the protocol whose connection closed.
        """
        host = getattr(p, "address", None)
        if host is None or host not in self._perAddress:
            return
        self._perAddress[host] -= 1
        if not self._perAddress[host]:
            del self._perAddress[host]
