"""
The LDAP server protocol: one L{LDAPServerProtocol} per connection.

The protocol frames the byte stream, keeps the connection's state, runs
requests concurrently by message id, serialises Bind, answers nothing to
Abandon, and applies back-pressure; what each request means is decided by the
L{ldapd.directory.Directory} (as C{twisted.names.dns} hands messages to its
controller).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Sequence

from ldaptor.protocols import pureldap
from twisted.internet import interfaces, protocol
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
from ldapd._framing import DEFAULT_MAX_PDU_SIZE, BadRequest, Framer, MalformedPDU
from ldapd.directory import Directory
from ldapd.operation import Connection, Operation

__all__ = ["LDAPServerFactory", "LDAPServerProtocol", "MAX_OUTSTANDING"]

#: Requests a connection may have queued or running before the server stops
#: reading from it.
MAX_OUTSTANDING = 128

_ABANDON = 0x50
_UNBIND = 0x42


def _peerText(address: Any) -> str:
    host = getattr(address, "host", None)
    if host is not None:
        return f"{host}:{address.port}"
    name = getattr(address, "name", None)
    return f"unix:{name.decode() if isinstance(name, bytes) else name or ''}"


@implementer(interfaces.IPushProducer)
class LDAPServerProtocol(protocol.Protocol):
    """
    One client connection.

    It is registered as a producer with its transport, so that when the
    client stops reading, operations that call
    L{ldapd.operation.Operation.cooperate} wait.
    """

    _log = Logger()

    def __init__(self, directory: Directory, clock: Any, maxPDUSize: int) -> None:
        """
        @param directory: the directory requests are sent to.
        @param clock: the reactor's clock.
        @param maxPDUSize: the largest PDU accepted.
        """
        self.directory = directory
        self.clock = clock
        self.framer = Framer(maxPDUSize)
        self.connection: Connection | None = None
        self._outstanding: dict[int, Operation] = {}
        self._queue: deque[pureldap.LDAPMessage] = deque()
        self._binding = False
        self._readingPaused = False
        self._closing = False

    # Transport events

    def connectionMade(self) -> None:
        self.connection = Connection(
            _peerText(self.transport.getPeer()),
            self.clock,
            secure=interfaces.ISSLTransport.providedBy(self.transport),
        )
        self.transport.registerProducer(self, True)
        self._log.info(
            "conn={conn} accepted from {peer}", conn=self.connection.id, peer=self.connection.peer
        )

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._closing = True
        self._queue.clear()
        for op in list(self._outstanding.values()):
            op.abandon()
        if self.connection is not None:
            for state in list(self.connection.pagedSearches.values()):
                state.cancel()
            self.connection.pagedSearches.clear()
            self.connection.resume()
            self._log.info("conn={conn} closed", conn=self.connection.id)

    def pauseProducing(self) -> None:
        if self.connection is not None:
            self.connection.pause()

    def resumeProducing(self) -> None:
        if self.connection is not None:
            self.connection.resume()

    def stopProducing(self) -> None:
        self.pauseProducing()

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self.framer.feed(data)
        while not self._closing:
            try:
                message = self.framer.next()
            except MalformedPDU as e:
                self._disconnect(str(e))
                return
            if message is None:
                break
            if isinstance(message, BadRequest):
                self._badRequest(message)
            else:
                self._received(message)
        self._process()

    # Requests

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
        self.transport.write(encodeMessage(0, notice))
        self._closing = True
        self.transport.loseConnection()

    def _badRequest(self, bad: BadRequest) -> None:
        responseTag = RESPONSE_TAGS.get(bad.tag)
        if bad.tag == _ABANDON:
            return
        if bad.tag == _UNBIND or responseTag is None or bad.messageId == 0:
            self._disconnect(f"unknown or undecodable request: {bad.reason}")
            return
        self.transport.write(
            encodeMessage(bad.messageId, encodeResult(responseTag, 2, b"", b"decoding error"))
        )

    def _received(self, message: pureldap.LDAPMessage) -> None:
        request = message.value
        if message.id == 0:
            self._disconnect("message id 0 is reserved for unsolicited notifications")
        elif isinstance(request, pureldap.LDAPUnbindRequest):
            self._closing = True
            self.transport.loseConnection()
        elif isinstance(request, pureldap.LDAPAbandonRequest):
            self._abandon(request.value)
        else:
            self._queue.append(message)
            if len(self._queue) + len(self._outstanding) >= MAX_OUTSTANDING:
                self._readingPaused = True
                self.transport.pauseProducing()

    def _abandon(self, messageId: int) -> None:
        op = self._outstanding.get(messageId)
        if op is not None:
            op.abandon()
            return
        for message in self._queue:
            if message.id == messageId:
                self._queue.remove(message)
                return

    def _process(self) -> None:
        """
        Start queued requests, in order: a Bind waits until every earlier
        request is complete, and later requests wait for the Bind.
        """
        while self._queue and not self._binding and not self._closing:
            message = self._queue[0]
            isBind = isinstance(message.value, pureldap.LDAPBindRequest)
            if isBind and self._outstanding:
                return
            self._queue.popleft()
            self._binding = isBind
            self._start(message)
        if self._readingPaused and len(self._queue) + len(self._outstanding) < MAX_OUTSTANDING // 2:
            self._readingPaused = False
            self.transport.resumeProducing()

    def _start(self, message: pureldap.LDAPMessage) -> None:
        assert self.connection is not None
        op = Operation(self.connection, message.id, message.value, message.controls)
        self._outstanding[message.id] = op

        def reply(pdu: bytes, controls: Sequence[Control] = ()) -> None:
            if not (op.abandoned or self._closing):
                self.transport.write(encodeMessage(op.messageId, pdu, controls))

        def finished(_: Any) -> None:
            if self._outstanding.get(op.messageId) is op:
                del self._outstanding[op.messageId]
            if isinstance(op.request, pureldap.LDAPBindRequest):
                self._binding = False
            self._process()

        self.directory.execute(op, reply).addBoth(finished)


class LDAPServerFactory(protocol.ServerFactory):
    """
    Serves a L{Directory} on any stream endpoint.
    """

    protocol = LDAPServerProtocol

    def __init__(
        self,
        directory: Directory,
        reactor: Any = None,
        maxPDUSize: int = DEFAULT_MAX_PDU_SIZE,
    ) -> None:
        """
        @param directory: the directory to serve.
        @param reactor: the reactor (its clock times operations); the global
            one by default.
        @param maxPDUSize: the largest request accepted, in bytes.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.directory = directory
        self.reactor = reactor
        self.maxPDUSize = maxPDUSize

    def buildProtocol(self, addr: Any) -> LDAPServerProtocol:
        p = LDAPServerProtocol(self.directory, self.reactor, self.maxPDUSize)
        p.factory = self
        return p
