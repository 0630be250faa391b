"""
Tests for L{ldapd.protocol}: L{LDAPServerProtocol} driven over a
L{StringTransport} with a L{task.Clock}, first with L{FakeDirectory} (which
lets each test decide when every operation ends), then with a real
L{Directory} on a L{MemoryBackend}. Expected PDUs are built with ldaptor's
own classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ldaptor import ldapfilter
from ldaptor.protocols import pureber, pureldap
from twisted.internet import defer, interfaces, task
from twisted.internet import protocol as protocol_
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from ldapd._codec import Control, encodeSequence, integer, octetString, tlv
from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.limits import Limits
from ldapd.operation import ANONYMOUS, Identity, Operation
from ldapd.protocol import MAX_OUTSTANDING, LDAPServerFactory, LDAPServerProtocol
from ldapd.requests import RawControl, SearchRequest
from ldapd.schema import Schema
from ldapd.statistics import ServerStatistics
from ldapd.testing import EXAMPLE_LDIF, decodeResponses

SUFFIX = "dc=example,dc=com"
ROOT = "cn=admin,dc=example,dc=com"
NOTICE = b"1.3.6.1.4.1.1466.20036"
WHO_AM_I = b"1.3.6.1.4.1.4203.1.11.3"

#: The response class of each request class.
RESPONSES = {
    "bind": pureldap.LDAPBindResponse,
    "search": pureldap.LDAPSearchResultDone,
    "modify": pureldap.LDAPModifyResponse,
    "add": pureldap.LDAPAddResponse,
    "delete": pureldap.LDAPDelResponse,
    "compare": pureldap.LDAPCompareResponse,
    "extended": pureldap.LDAPExtendedResponse,
}


def message(messageId: int, value: Any, controls: Any = None) -> bytes:
    """
    @return: an encoded LDAPMessage.
    """
    return pureldap.LDAPMessage(value, id=messageId, controls=controls).toWire()


@lru_cache
def _parseFilter(text: str) -> Any:
    """
    @return: ldaptor's decoded filter (parsed once: pyparsing is slow).
    """
    return ldapfilter.parseFilter(text)


def search(base: str = SUFFIX, scope: int = 0, filterText: str = "(objectClass=*)",
           attributes: tuple[str, ...] = ()) -> pureldap.LDAPSearchRequest:
    """
    @return: a search request.
    """
    return pureldap.LDAPSearchRequest(
        baseObject=base.encode(), scope=scope, filter=_parseFilter(filterText),
        attributes=[a.encode() for a in attributes],
    )


def done(resultCode: int = 0, matchedDN: bytes = b"", errorMessage: bytes = b"") -> Any:
    """
    @return: a SearchResultDone.
    """
    return pureldap.LDAPSearchResultDone(
        resultCode=resultCode, matchedDN=matchedDN, errorMessage=errorMessage
    )


def bind(dn: str = "", password: str = "") -> pureldap.LDAPBindRequest:
    """
    @return: a simple bind request.
    """
    return pureldap.LDAPBindRequest(dn=dn.encode(), auth=password.encode())


def abandon(messageId: int) -> pureldap.LDAPAbandonRequest:
    """
    @return: an Abandon request for C{messageId}.
    """
    return pureldap.LDAPAbandonRequest(id=messageId)


@dataclass
class Call:
    """
    One operation L{FakeDirectory} was given.

    @ivar op: the operation.
    @ivar reply: the protocol's reply function for it.
    @ivar done: the Deferred C{execute} returned.
    """

    op: Operation
    reply: Any
    done: defer.Deferred[None]

    def finish(self, resultCode: int = 0) -> None:
        """
        Send the final response of the operation's type with C{resultCode}
        and end it.
        """
        response = RESPONSES[self.op.request.operation](resultCode=resultCode)
        self.reply(response.toWire(), ())
        self.done.callback(None)


class FakeDirectory:
    """
    A test double for L{Directory}: C{execute} records the operation and
    returns a Deferred that fires only when the test says so.

    @ivar calls: one L{Call} per operation, in the order they started.
    @ivar statistics: the counters the protocol keeps.
    @ivar limits: the limits the protocol reads (filter components).
    """

    limits = Limits()

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.statistics = ServerStatistics(0)

    def execute(self, op: Operation, reply: Any) -> defer.Deferred[None]:
        """
        Record the operation; the test ends it with L{Call.finish}.
        """
        call = Call(op, reply, defer.Deferred())
        self.calls.append(call)
        return call.done

    def byId(self, messageId: int) -> Call:
        """
        @return: the call of the operation with that message id.
        """
        [call] = [c for c in self.calls if c.op.messageId == messageId]
        return call

    def ids(self) -> list[int]:
        """
        @return: the message ids of the operations started so far.
        """
        return [c.op.messageId for c in self.calls]


class SynchronousDirectory:
    """
    A test double for L{Directory} that answers every request at once with
    success, as a directory on a fast in-memory backend does.
    """

    limits = Limits()

    def execute(self, op: Operation, reply: Any) -> defer.Deferred[None]:
        """
        Reply success and return a Deferred that has already fired.
        """
        reply(RESPONSES[op.request.operation](resultCode=0).toWire(), ())
        return defer.succeed(None)


@implementer(interfaces.ITCPTransport)
class _TCPTransport(StringTransport):
    """
    A L{StringTransport} that is a TCP connection, recording whether
    Nagle's algorithm is off (C{TCP_NODELAY}).
    """

    noDelay = False

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.noDelay = enabled

    def getTcpNoDelay(self) -> bool:
        return self.noDelay


class ProtocolTestsBase(unittest.TestCase):
    """
    A protocol connected to a L{StringTransport}, serving the directory that
    L{makeDirectory} returns.
    """

    def makeDirectory(self) -> Any:
        """
        @return: the directory to serve.
        """
        return FakeDirectory()

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.directory = self.makeDirectory()
        self.factory = LDAPServerFactory(self.directory, reactor=self.clock)
        self.protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 10389))
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.7", 40000))
        self.protocol.makeConnection(self.transport)

    def send(self, *messages: bytes) -> None:
        """
        Deliver encoded messages in one chunk.
        """
        self.protocol.dataReceived(b"".join(messages))

    def written(self) -> bytes:
        """
        @return: what the server wrote since the last call.
        """
        data = self.transport.value()
        self.transport.clear()
        return data

    def assertNotice(self, data: bytes) -> pureldap.LDAPExtendedResponse:
        """
        Assert that C{data} is a Notice of Disconnection with protocolError,
        and that the connection is being closed.

        @return: the notice.
        """
        [notice] = decodeResponses(data)
        self.assertEqual(notice.id, 0)
        self.assertIsInstance(notice.value, pureldap.LDAPExtendedResponse)
        self.assertEqual(notice.value.responseName, NOTICE)
        self.assertEqual(notice.value.resultCode, 2)
        self.assertIsNone(notice.value.response)
        self.assertTrue(self.transport.disconnecting)
        return notice.value

    def lose(self) -> None:
        """
        Close the connection as the transport would.
        """
        self.transport.loseConnection()
        self.protocol.connectionLost(Failure(Exception("connection lost")))


class ConnectionTests(ProtocolTestsBase):
    """
    The protocol's connection state and its place in the transport.
    """

    def test_factory(self) -> None:
        """
        The factory builds protocols serving its directory with its reactor
        as clock.
        """
        self.assertIsInstance(self.protocol, LDAPServerProtocol)
        self.assertIs(self.protocol.factory, self.factory)
        self.assertIs(self.protocol.directory, self.directory)

    def test_interfaces(self) -> None:
        """
        The protocol is told when a TLS handshake completes (StartTLS and
        LDAPS mark the connection secure then) and is its transport's
        producer.
        """
        verifyObject(interfaces.IHandshakeListener, self.protocol)
        verifyObject(interfaces.IPushProducer, self.protocol)
        self.assertIs(self.protocol.clock, self.clock)

    def test_connection(self) -> None:
        """
        Each connection has a L{Connection} naming the peer, anonymous and
        not secure, shared by its operations.
        """
        self.send(message(1, search()), message(2, search()))
        first, second = self.directory.calls
        connection = first.op.connection
        self.assertIs(second.op.connection, connection)
        self.assertEqual(connection.peer, "192.0.2.7:40000")
        self.assertIs(connection.identity, ANONYMOUS)
        self.assertFalse(connection.secure)
        self.assertIs(connection.clock, self.clock)

    def test_noDelay(self) -> None:
        """
        On a TCP connection, Nagle's algorithm is off (as slapd sets
        C{TCP_NODELAY}): a response written in pieces is not held back
        until the client acknowledges the first.
        """
        transport = _TCPTransport(peerAddress=IPv4Address("TCP", "192.0.2.7", 40001))
        self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 10389)).makeConnection(transport)
        self.assertTrue(transport.noDelay)

    def test_registeredAsStreamingProducer(self) -> None:
        """
        The protocol is the transport's streaming producer.
        """
        self.assertIs(self.transport.producer, self.protocol)
        self.assertTrue(self.transport.streaming)

    def test_transportFull(self) -> None:
        """
        While the transport's buffer is full, operations that cooperate wait;
        they go on when it has room.
        """
        self.send(message(1, search()))
        op = self.directory.calls[0].op
        self.protocol.pauseProducing()
        waiting = op.cooperate()
        self.clock.advance(0)
        self.assertNoResult(waiting)
        self.protocol.resumeProducing()
        self.successResultOf(waiting)


class MessageIdTests(ProtocolTestsBase):
    """
    Requests run concurrently; each response carries its request's message
    id.
    """

    def test_request(self) -> None:
        """
        The directory gets an operation with the decoded request, its message
        id and its controls.
        """
        self.send(message(7, search(), controls=[(b"1.2.3", True, b"v")]))
        [call] = self.directory.calls
        self.assertEqual(call.op.messageId, 7)
        self.assertIsInstance(call.op.request, SearchRequest)
        self.assertEqual(call.op.request.base, SUFFIX.encode())
        self.assertEqual(call.op.rawControls, (RawControl("1.2.3", True, b"v"),))

    def test_responsesCarryMessageIds(self) -> None:
        """
        Every response of an operation, with response controls, goes out
        with the operation's message id.
        """
        self.send(message(300, search()))
        [call] = self.directory.calls
        entry = pureldap.LDAPSearchResultEntry(b"dc=example,dc=com", [(b"dc", [b"example"])])
        call.reply(entry.toWire(), ())
        call.reply(done().toWire(), [Control("1.2.840.113556.1.4.319", False, b"\x30\x00")])
        call.done.callback(None)
        self.assertEqual(
            self.written(),
            message(300, entry)
            + message(300, done(), controls=[(b"1.2.840.113556.1.4.319", None, b"\x30\x00")]),
        )

    def test_outOfOrder(self) -> None:
        """
        Several requests run at once and are answered in the order they
        end, each with its own message id.
        """
        self.send(message(1, search()), message(2, search()), message(3, search()))
        self.assertEqual(self.directory.ids(), [1, 2, 3])
        for messageId, code in ((3, 32), (1, 0), (2, 50)):
            self.directory.byId(messageId).finish(code)
        self.assertEqual(
            self.written(), message(3, done(32)) + message(1, done(0)) + message(2, done(50))
        )

    def test_manySynchronousRequests(self) -> None:
        """
        Thousands of requests in one chunk that the directory answers at once
        are all answered, in order: the stack does not grow with each.
        """
        self.factory.directory = SynchronousDirectory()
        count = 1500
        self.send(*(message(i, search()) for i in range(1, count + 1)))
        self.assertEqual(
            [m.id for m in decodeResponses(self.written())], list(range(1, count + 1))
        )
        self.assertEqual(self.transport.producerState, "producing")


class DirectoryFailureTests(ProtocolTestsBase):
    """
    C{Directory.execute} never fails; if it does anyway, the failure is
    logged and the connection goes on.
    """

    def test_failureLogged(self) -> None:
        """
        A failed operation is logged and the Bind it was does not block the
        requests after it.
        """
        self.send(message(1, bind()), message(2, search()))
        self.directory.byId(1).done.errback(RuntimeError("directory bug"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.directory.ids(), [1, 2])


class AbandonTests(ProtocolTestsBase):
    """
    Abandon is never answered; it stops the abandoned operation's responses.
    """

    def test_running(self) -> None:
        """
        Abandoning a running operation marks it abandoned; nothing it sends
        afterwards goes out, and the Abandon itself gets no response.
        """
        self.send(message(1, search()), message(2, search()))
        self.send(message(3, abandon(1)))
        first, second = self.directory.calls
        self.assertTrue(first.op.abandoned)
        self.assertFalse(second.op.abandoned)
        first.finish()
        second.finish()
        self.assertEqual(self.written(), message(2, done()))

    def test_queued(self) -> None:
        """
        Abandoning a request still queued (behind a Bind) drops it: it never
        starts.
        """
        self.send(message(1, bind()), message(2, search()), message(3, search()))
        self.send(message(4, abandon(2)))
        self.assertEqual(self.directory.ids(), [1])
        self.directory.byId(1).finish()
        self.assertEqual(self.directory.ids(), [1, 3])
        self.directory.byId(3).finish()
        self.assertEqual(
            self.written(),
            message(1, pureldap.LDAPBindResponse(resultCode=0)) + message(3, done()),
        )

    def test_unknown(self) -> None:
        """
        Abandoning a message id that is not outstanding does nothing.
        """
        self.send(message(1, search()))
        self.send(message(2, abandon(99)), message(3, search()))
        self.assertEqual(self.written(), b"")
        self.assertEqual(self.directory.ids(), [1, 3])
        self.assertFalse(self.directory.byId(1).op.abandoned)
        self.assertFalse(self.transport.disconnecting)

    def test_bindNotAbandoned(self) -> None:
        """
        A Bind cannot be abandoned (RFC 4511 §4.11): it still gets its
        response.
        """
        self.send(message(1, bind()))
        self.send(message(2, abandon(1)))
        [call] = self.directory.calls
        self.assertFalse(call.op.abandoned)
        call.finish()
        self.assertEqual(self.written(), message(1, pureldap.LDAPBindResponse(resultCode=0)))

    def test_queuedBindNotAbandoned(self) -> None:
        """
        A Bind waiting for earlier operations cannot be abandoned either.
        """
        self.send(message(1, search()), message(2, bind()))
        self.send(message(3, abandon(2)))
        self.directory.byId(1).finish()
        self.directory.byId(2).finish()
        self.assertEqual(
            self.written(),
            message(1, done()) + message(2, pureldap.LDAPBindResponse(resultCode=0)),
        )

    def test_startTLSNotAbandoned(self) -> None:
        """
        Nor can StartTLS.
        """
        self.send(message(1, pureldap.LDAPStartTLSRequest()))
        self.send(message(2, abandon(1)))
        [call] = self.directory.calls
        self.assertFalse(call.op.abandoned)

    def test_otherExtendedAbandoned(self) -> None:
        """
        Other extended operations can be abandoned.
        """
        self.send(message(1, pureldap.LDAPExtendedRequest(requestName=WHO_AM_I)))
        self.send(message(2, abandon(1)))
        [call] = self.directory.calls
        self.assertTrue(call.op.abandoned)


class BindTests(ProtocolTestsBase):
    """
    A Bind waits until every earlier operation is complete, and later
    requests wait until the Bind is.
    """

    def test_waitsForOutstanding(self) -> None:
        """
        A Bind does not start while operations are outstanding.
        """
        self.send(message(1, search()), message(2, search()), message(3, bind()))
        self.assertEqual(self.directory.ids(), [1, 2])
        self.directory.byId(2).finish()
        self.assertEqual(self.directory.ids(), [1, 2])
        self.directory.byId(1).finish()
        self.assertEqual(self.directory.ids(), [1, 2, 3])

    def test_blocksLater(self) -> None:
        """
        Requests after a Bind start when it ends, in order, and their
        responses follow the Bind's.
        """
        self.send(message(1, bind()), message(2, search()))
        self.send(message(3, search()))
        self.assertEqual(self.directory.ids(), [1])
        self.directory.byId(1).finish()
        self.assertEqual(self.directory.ids(), [1, 2, 3])
        self.directory.byId(3).finish()
        self.directory.byId(2).finish()
        self.assertEqual(
            self.written(),
            message(1, pureldap.LDAPBindResponse(resultCode=0))
            + message(3, done())
            + message(2, done()),
        )

    def test_failedBindUnblocks(self) -> None:
        """
        A Bind that fails lets later requests start too.
        """
        self.send(message(1, bind("cn=x", "wrong")), message(2, search()))
        self.directory.byId(1).finish(49)
        self.assertEqual(self.directory.ids(), [1, 2])

    def test_twoBinds(self) -> None:
        """
        A second Bind waits for the first.
        """
        self.send(message(1, bind()), message(2, bind()), message(3, search()))
        self.assertEqual(self.directory.ids(), [1])
        self.directory.byId(1).finish()
        self.assertEqual(self.directory.ids(), [1, 2])
        self.directory.byId(2).finish()
        self.assertEqual(self.directory.ids(), [1, 2, 3])


class CloseTests(ProtocolTestsBase):
    """
    Unbind closes the connection; a lost connection abandons its operations.
    """

    def test_unbind(self) -> None:
        """
        Unbind closes the connection without a response; what the client
        sends after it is ignored.
        """
        self.send(message(1, pureldap.LDAPUnbindRequest()))
        self.assertTrue(self.transport.disconnecting)
        self.send(message(2, search()))
        self.assertEqual(self.written(), b"")
        self.assertEqual(self.directory.calls, [])

    def test_unbindSilencesOutstanding(self) -> None:
        """
        Operations outstanding at Unbind send nothing more.
        """
        self.send(message(1, search()))
        self.send(message(2, pureldap.LDAPUnbindRequest()))
        self.directory.byId(1).finish()
        self.assertEqual(self.written(), b"")

    def test_connectionLost(self) -> None:
        """
        When the connection is lost, outstanding operations are abandoned,
        queued requests never start, and nothing more is written.
        """
        self.send(message(1, search()), message(2, bind()), message(3, search()))
        self.lose()
        first = self.directory.byId(1)
        self.assertTrue(first.op.abandoned)
        first.finish()
        self.successResultOf(first.done)
        self.assertEqual(self.directory.ids(), [1])
        self.assertEqual(self.written(), b"")

    def test_connectionLostWakesWaiting(self) -> None:
        """
        Operations waiting for the client to read go on (and find themselves
        abandoned) when the connection is lost.
        """
        self.send(message(1, search()))
        op = self.directory.calls[0].op
        self.protocol.pauseProducing()
        waiting = op.cooperate()
        self.clock.advance(0)
        self.lose()
        self.successResultOf(waiting)
        self.assertTrue(op.abandoned)


class MalformedTests(ProtocolTestsBase):
    """
    A malformed stream gets a Notice of Disconnection and the connection is
    closed.
    """

    def test_notLDAP(self) -> None:
        """
        Bytes that are not an LDAPMessage: the notice is an ExtendedResponse
        with message id 0, the notice's OID, protocolError and the reason.
        """
        self.send(b"GET / HTTP/1.1\r\n\r\n")
        self.assertEqual(
            self.written(),
            message(
                0,
                pureldap.LDAPExtendedResponse(
                    resultCode=2,
                    errorMessage=b"expected an LDAPMessage SEQUENCE, got tag 0x47",
                    responseName=NOTICE,
                ),
            ),
        )
        self.assertTrue(self.transport.disconnecting)

    def test_afterGoodRequests(self) -> None:
        """
        Requests before the malformed PDU run; their responses are not sent
        once the connection is closing; nothing after it is read.
        """
        self.send(message(1, search()))
        self.send(b"\x04\x00", message(2, search()))
        self.assertNotice(self.written())
        self.assertEqual(self.directory.ids(), [1])
        self.directory.byId(1).finish()
        self.send(message(3, search()))
        self.assertEqual(self.written(), b"")
        self.assertEqual(self.directory.ids(), [1])

    def test_tooLarge(self) -> None:
        """
        A PDU longer than the connection's maximum is refused from its
        header: the connection is closed without a Notice of Disconnection
        (as slapd closes it) and what it had buffered is freed.
        """
        self.send(b"\x30\x84\x7f\xff\xff\xff")
        self.assertEqual(self.written(), b"")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.protocol.framer.buffered, 0)
        self.assertEqual(self.factory.budget.used, 0)

    def test_messageIdZero(self) -> None:
        """
        Message id 0 is reserved for unsolicited notifications; a request
        that uses it gets a Notice of Disconnection.
        """
        self.send(message(0, search()))
        self.assertNotice(self.written())
        self.assertEqual(self.directory.calls, [])

    def test_negativeMessageId(self) -> None:
        """
        A negative message id gets a Notice of Disconnection.
        """
        self.send(encodeSequence([integer(-5), b"\x42\x00"]))
        self.assertNotice(self.written())


class BadRequestTests(ProtocolTestsBase):
    """
    A well-framed request that cannot be decoded gets protocolError in a
    response of its type, and the connection goes on.
    """

    def test_search(self) -> None:
        """
        An undecodable search gets a SearchResultDone with protocolError;
        the next request is served.
        """
        self.send(encodeSequence([integer(4), tlv(0x63, b"\x01\x02\x03")]))
        self.assertEqual(
            self.written(), message(4, done(2, errorMessage=b"decoding error"))
        )
        self.assertFalse(self.transport.disconnecting)
        self.send(message(5, search()))
        self.directory.byId(5).finish()
        self.assertEqual(self.written(), message(5, done()))

    def test_eachType(self) -> None:
        """
        Each request type gets the response of its type. (A Delete, whose
        content is any string, cannot be undecodable but for its controls.)
        """
        for requestTag, response in (
            (0x60, pureldap.LDAPBindResponse),
            (0x66, pureldap.LDAPModifyResponse),
            (0x68, pureldap.LDAPAddResponse),
            (0x6C, pureldap.LDAPModifyDNResponse),
            (0x6E, pureldap.LDAPCompareResponse),
            (0x77, pureldap.LDAPExtendedResponse),
        ):
            self.send(encodeSequence([integer(9), tlv(requestTag, b"\x05\x05")]))
            self.assertEqual(
                self.written(),
                message(9, response(resultCode=2, errorMessage=b"decoding error")),
                hex(requestTag),
            )
        self.assertFalse(self.transport.disconnecting)

    def test_badControls(self) -> None:
        """
        A request with malformed controls is a bad request.
        """
        self.send(encodeSequence([integer(6), tlv(0x4A, b"x"), tlv(0xA0, octetString(b"c"))]))
        self.assertEqual(
            self.written(),
            message(6, pureldap.LDAPDelResponse(resultCode=2, errorMessage=b"decoding error")),
        )

    def test_bindLeavesAnonymous(self) -> None:
        """
        An undecodable Bind is a failed Bind: the connection is anonymous
        afterwards.
        """
        self.send(message(1, search()))
        connection = self.directory.calls[0].op.connection
        connection.identity = Identity(DN.parse(ROOT), DN.parse(ROOT), isRoot=True)
        self.send(encodeSequence([integer(2), tlv(0x60, b"")]))
        self.assertIs(connection.identity, ANONYMOUS)

    def test_abandon(self) -> None:
        """
        An undecodable Abandon is ignored, as Abandon is never answered.
        """
        self.send(encodeSequence([integer(3), tlv(0x50, b"")]))
        self.assertEqual(self.written(), b"")
        self.assertFalse(self.transport.disconnecting)

    def test_unknownOperation(self) -> None:
        """
        An operation that does not exist cannot be answered: the connection
        is closed with a Notice of Disconnection.
        """
        self.send(encodeSequence([integer(3), tlv(0x7E, b"")]))
        self.assertNotice(self.written())

    def test_unbind(self) -> None:
        """
        An undecodable Unbind closes the connection too.
        """
        self.send(encodeSequence([integer(3), tlv(0x42, b"\x00")]))
        self.assertNotice(self.written())

    def test_response(self) -> None:
        """
        A response sent by the client gets a Notice of Disconnection.
        """
        self.send(message(3, done()))
        self.assertNotice(self.written())

    def test_messageIdZero(self) -> None:
        """
        An undecodable request with message id 0 gets a Notice of
        Disconnection.
        """
        self.send(encodeSequence([integer(0), tlv(0x63, b"")]))
        self.assertNotice(self.written())


class BackPressureTests(ProtocolTestsBase):
    """
    With L{MAX_OUTSTANDING} requests queued or running, the protocol stops
    reading, and reads again when half of them are done.
    """

    def test_pause(self) -> None:
        """
        Reading stops at the limit and resumes below half of it; requests
        beyond the limit, though already received, wait in the framer and
        start then.
        """
        extra = 10
        self.send(*(message(i, search()) for i in range(1, MAX_OUTSTANDING + extra + 1)))
        self.assertEqual(self.transport.producerState, "paused")
        self.assertEqual(self.directory.ids(), list(range(1, MAX_OUTSTANDING + 1)))
        half = MAX_OUTSTANDING // 2
        for i in range(1, half + 1):
            self.directory.byId(i).finish()
        self.assertEqual(self.transport.producerState, "paused")
        self.directory.byId(half + 1).finish()
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual(
            self.directory.ids(), list(range(1, MAX_OUTSTANDING + extra + 1))
        )

    def test_queueCounts(self) -> None:
        """
        Requests queued behind a Bind count towards the limit.
        """
        self.send(message(1, bind()))
        self.send(*(message(i, search()) for i in range(2, MAX_OUTSTANDING + 1)))
        self.assertEqual(self.transport.producerState, "paused")
        self.assertEqual(self.directory.ids(), [1])
        self.directory.byId(1).finish()
        self.assertEqual(self.directory.ids(), list(range(1, MAX_OUTSTANDING + 1)))

    def test_belowLimit(self) -> None:
        """
        One request fewer than the limit does not pause reading.
        """
        self.send(*(message(i, search()) for i in range(1, MAX_OUTSTANDING)))
        self.assertEqual(self.transport.producerState, "producing")

    def test_noResumeAfterClose(self) -> None:
        """
        Operations that end after the connection was closed do not resume
        reading from it.
        """
        self.send(*(message(i, search()) for i in range(1, MAX_OUTSTANDING + 1)))
        self.assertEqual(self.transport.producerState, "paused")
        self.lose()
        for call in self.directory.calls:
            call.finish()
            self.successResultOf(call.done)
        self.assertEqual(self.transport.producerState, "paused")


class SlowReaderTests(ProtocolTestsBase):
    """
    A client that does not read its responses: when the transport's send
    buffer is full it pauses the protocol as a producer, and the protocol
    stops reading and starting requests until the client reads again.
    """

    def test_stopsReading(self) -> None:
        """
        Pausing the protocol pauses reading from the transport; resuming it
        resumes reading.
        """
        self.protocol.pauseProducing()
        self.assertEqual(self.transport.producerState, "paused")
        self.protocol.resumeProducing()
        self.assertEqual(self.transport.producerState, "producing")

    def test_nothingStartsWhilePaused(self) -> None:
        """
        Requests already received while the client is not reading wait in
        the queue; they start, in order, when it reads again.
        """
        self.protocol.pauseProducing()
        self.send(*(message(i, search()) for i in range(1, 4)))
        self.assertEqual(self.directory.ids(), [])
        self.protocol.resumeProducing()
        self.assertEqual(self.directory.ids(), [1, 2, 3])

    def test_abandonWhilePaused(self) -> None:
        """
        An Abandon received while the client is not reading still takes
        effect: the abandoned request never starts.
        """
        self.protocol.pauseProducing()
        self.send(message(1, search()), message(2, abandon(1)), message(3, search()))
        self.protocol.resumeProducing()
        self.assertEqual(self.directory.ids(), [3])

    def test_outstandingLimitStillApplies(self) -> None:
        """
        Resuming after the client read does not resume reading while the
        outstanding-request limit holds it paused.
        """
        self.send(*(message(i, search()) for i in range(1, MAX_OUTSTANDING + 1)))
        self.protocol.pauseProducing()
        self.protocol.resumeProducing()
        self.assertEqual(self.transport.producerState, "paused")


class RealDirectoryTestsBase(ProtocolTestsBase):
    """
    The protocol serving a real L{Directory}: the example organisation in a
    L{MemoryBackend}, with C{cn=admin} as root DN.
    """

    schema = Schema.standard()

    def makeDirectory(self) -> Directory:
        """
        @return: the opened directory, seeded with the example LDIF.
        """
        suffix = DN.parse(SUFFIX)
        directory = Directory(
            [Database(suffix, MemoryBackend(self.schema.normalizeDN(suffix), self.schema,
                                            reactor=self.clock),
                      DN.parse(ROOT), b"secret", EXAMPLE_LDIF)],
            schema=self.schema, reactor=self.clock,
        )
        self.successResultOf(directory.open())
        return directory

    def addUnits(self, count: int) -> None:
        """
        Add C{count} organizational units below the suffix.
        """
        op = self.directory.internalOperation()
        for i in range(count):
            entry = Entry(
                DN.parse(f"ou=unit{i},{SUFFIX}"),
                [("objectClass", [b"top", b"organizationalUnit"]), ("ou", [f"unit{i}".encode()])],
                self.schema,
            )
            self.successResultOf(defer.Deferred.fromCoroutine(self.directory.add(op, entry)))


class RealDirectoryTests(RealDirectoryTestsBase):
    """
    Requests served end to end, compared byte for byte.
    """

    def test_search(self) -> None:
        """
        A base search returns the entry with the requested attribute, then
        success.
        """
        self.send(message(2, search(attributes=("dc",))))
        self.assertEqual(
            self.written(),
            message(2, pureldap.LDAPSearchResultEntry(SUFFIX.encode(), [(b"dc", [b"example"])]))
            + message(2, done()),
        )

    def test_searchOneWrite(self) -> None:
        """
        The responses of requests answered while a read is handled (a
        search's entry and its result, and a second request's) are written
        together, with one write, at the end of the read.
        """
        writes: list[bytes] = []
        write = self.transport.write
        self.transport.write = lambda data: (writes.append(data), write(data))  # type: ignore[method-assign]
        self.send(message(2, search(attributes=("dc",))), message(3, search(attributes=("o",))))
        self.assertEqual(len(writes), 1)
        self.assertEqual([r.id for r in decodeResponses(writes[0])], [2, 2, 3, 3])

    def test_selectionsPerShape(self) -> None:
        """
        Entries of one shape searched with different attribute lists each
        get what their list selects, by type and subtype (C{name} selects
        C{cn}, C{sn}, C{givenName} and C{title}), and the userPassword an
        anonymous client may not read is left out either way.
        """
        def attributes(messageId: int, uid: str, wanted: tuple[str, ...]) -> list[bytes]:
            self.send(message(messageId, search(base=f"uid={uid},ou=people,{SUFFIX}",
                                                attributes=wanted)))
            entry, _ = decodeResponses(self.written())
            return [bytes(a) for a, _ in entry.value.attributes]

        self.assertEqual(attributes(2, "alice", ("cn",)), [b"cn"])
        self.assertEqual(attributes(3, "bob", ("mail", "uid")), [b"uid", b"mail"])
        self.assertEqual(attributes(4, "alice", ("name",)), [b"cn", b"sn", b"givenName", b"title"])
        everything = attributes(5, "bob", ())
        self.assertIn(b"telephoneNumber", everything)
        self.assertNotIn(b"userPassword", everything)
        self.assertEqual(attributes(6, "alice", ("cn", "entryDN")), [b"cn", b"entryDN"])

    def test_noSuchObject(self) -> None:
        """
        A search below a missing entry gets noSuchObject with the matched DN.
        """
        self.send(message(3, search(base="ou=nowhere," + SUFFIX)))
        [response] = decodeResponses(self.written())
        self.assertEqual(response.id, 3)
        self.assertEqual(response.value.resultCode, 32)
        self.assertEqual(response.value.matchedDN, SUFFIX.encode())

    def test_bindThenWhoAmI(self) -> None:
        """
        A Bind and a request sent right after it in the same chunk: the
        request runs as the bound identity.
        """
        self.send(
            message(1, bind(ROOT, "secret")),
            message(2, pureldap.LDAPExtendedRequest(requestName=WHO_AM_I)),
        )
        self.assertEqual(
            self.written(),
            message(1, pureldap.LDAPBindResponse(resultCode=0))
            + message(2, pureldap.LDAPExtendedResponse(resultCode=0,
                                                       response=b"dn:" + ROOT.encode())),
        )

    def test_unknownCriticalControl(self) -> None:
        """
        An unknown control marked critical fails the request with
        unavailableCriticalExtension (12); the connection goes on.
        """
        self.send(message(4, search(), controls=[(b"1.2.3.4.5", True, None)]))
        [response] = decodeResponses(self.written())
        self.assertEqual((response.id, response.value.resultCode), (4, 12))
        self.assertFalse(self.transport.disconnecting)

    def test_unknownNonCriticalControl(self) -> None:
        """
        An unknown control that is not critical is ignored.
        """
        self.send(message(5, search(attributes=("1.1",)),
                          controls=[(b"1.2.3.4.5", None, b"x")]))
        self.assertEqual(
            self.written(),
            message(5, pureldap.LDAPSearchResultEntry(SUFFIX.encode(), [])) + message(5, done()),
        )

    def test_undecodableThenGood(self) -> None:
        """
        An undecodable search gets protocolError; a good one after it on the
        same connection is answered.
        """
        self.send(
            encodeSequence([integer(6), tlv(0x63, b"\x04\x00")]),
            message(7, search(attributes=("1.1",))),
        )
        self.assertEqual(
            self.written(),
            message(6, done(2, errorMessage=b"decoding error"))
            + message(7, pureldap.LDAPSearchResultEntry(SUFFIX.encode(), []))
            + message(7, done()),
        )

    def test_pipelined(self) -> None:
        """
        Hundreds of searches in one chunk are all answered, in order.
        """
        count = 600
        self.send(*(message(i, search(attributes=("1.1",))) for i in range(1, count + 1)))
        responses = decodeResponses(self.written())
        self.assertEqual([m.id for m in responses], [i for i in range(1, count + 1) for _ in "ed"])
        self.assertEqual(
            {type(m.value) for m in responses[1::2]}, {pureldap.LDAPSearchResultDone}
        )
        self.assertEqual({m.value.resultCode for m in responses[1::2]}, {0})


class RealAbandonTests(RealDirectoryTestsBase):
    """
    Abandoning, or losing the connection during, a search that yields to the
    reactor part way.
    """

    def setUp(self) -> None:
        super().setUp()
        self.addUnits(400)

    def startSearch(self) -> int:
        """
        Start a one-level search for the units; it stops after a batch.

        @return: how many entries it sent before it stopped.
        """
        self.send(message(8, search(scope=1, filterText="(ou=unit*)", attributes=("1.1",))))
        sent = decodeResponses(self.written())
        self.assertTrue(sent)
        self.assertTrue(all(isinstance(m.value, pureldap.LDAPSearchResultEntry) for m in sent))
        return len(sent)

    def test_notAbandoned(self) -> None:
        """
        Without Abandon the search goes on when the clock lets it, and ends
        with success after every unit.
        """
        first = self.startSearch()
        self.clock.advance(0)
        self.clock.advance(0)
        responses = decodeResponses(self.written())
        self.assertEqual(first + len(responses) - 1, 400)
        self.assertEqual(responses[-1].toWire(), message(8, done()))

    def test_abandon(self) -> None:
        """
        After Abandon the search sends nothing more, not even
        SearchResultDone, and the Abandon gets no response.
        """
        self.startSearch()
        self.send(message(9, abandon(8)))
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(self.written(), b"")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.send(message(10, search(attributes=("1.1",))))
        self.assertEqual(
            self.written(),
            message(10, pureldap.LDAPSearchResultEntry(SUFFIX.encode(), [])) + message(10, done()),
        )

    def test_abandonWhileClientNotReading(self) -> None:
        """
        A search waiting for the client to read can be abandoned; when the
        transport has room again nothing is written and nothing fails.
        """
        self.startSearch()
        self.protocol.pauseProducing()
        self.clock.advance(0)
        self.send(message(9, abandon(8)))
        self.protocol.resumeProducing()
        self.clock.advance(0)
        self.assertEqual(self.written(), b"")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_connectionLost(self) -> None:
        """
        A lost connection stops the search: nothing more is written.
        """
        self.startSearch()
        self.lose()
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(self.written(), b"")
        self.assertEqual(self.clock.getDelayedCalls(), [])


class IncomingLimitsTests(ProtocolTestsBase):
    """
    What a client may send depends on who it is: PDUs up to the factory's
    anonymous maximum before it binds and up to its maximum after (as
    slapd's C{sockbuf_max_incoming} and C{sockbuf_max_incoming_auth}),
    search filters up to the directory's component limit unless it is a
    root DN; and all connections together buffer no more than the
    factory's budget.
    """

    def header(self, length: int) -> bytes:
        """
        @return: the start of a PDU announcing C{length} bytes.
        """
        return b"\x30\x84" + length.to_bytes(4, "big") + b"\x02\x01\x01"

    def test_anonymousLimit(self) -> None:
        """
        An anonymous client may announce 262143 bytes, not 262144.
        """
        self.send(self.header(262143))
        self.assertFalse(self.transport.disconnecting)
        self.lose()
        self.setUp()
        self.send(self.header(262144))
        self.assertTrue(self.transport.disconnecting)

    def test_boundLimit(self) -> None:
        """
        Once bound, the client may announce up to 4194303 bytes.
        """
        self.protocol.connection.identity = Identity(DN.parse(f"cn=a,{SUFFIX}"))
        self.send(self.header(1024 * 1024))
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual(self.protocol.framer.maxPDUSize, 4194303)
        self.lose()
        self.setUp()
        self.protocol.connection.identity = Identity(DN.parse(f"cn=a,{SUFFIX}"))
        self.send(self.header(4194304))
        self.assertTrue(self.transport.disconnecting)

    def test_budget(self) -> None:
        """
        When the bytes a connection receives would take the connections
        together past the budget, that connection is closed and the others
        keep what they hold.
        """
        self.factory.budget.limit = 100000
        others = []
        for _ in range(2):
            p = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 10389))
            t = StringTransport()
            p.makeConnection(t)
            p.dataReceived(self.header(200000) + b"\x00" * 40000)
            others.append((p, t))
        self.send(self.header(200000) + b"\x00" * 40000)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual([t.disconnecting for _, t in others], [False, False])
        self.assertEqual(self.factory.budget.used, 2 * 40009)
        for p, _ in others:
            p.connectionLost(Failure(Exception("connection lost")))
        self.assertEqual(self.factory.budget.used, 0)

    def test_filterComponents(self) -> None:
        """
        A search whose filter has more components than the directory allows
        is answered adminLimitExceeded without reaching the directory, and
        the connection goes on.
        """
        self.directory.limits = Limits(maxFilterComponents=3)
        self.send(message(5, search(filterText="(|(cn=a)(cn=b)(cn=c))")))
        [response] = decodeResponses(self.written())
        self.assertEqual((response.id, response.value.resultCode), (5, 11))
        self.assertEqual(self.directory.calls, [])
        self.send(message(6, search(filterText="(|(cn=a)(cn=b))")))
        self.assertEqual(self.directory.ids(), [6])

    def test_filterComponentsRoot(self) -> None:
        """
        A root DN's filter is not limited (as L{checkFilterSize} exempts it).
        """
        self.directory.limits = Limits(maxFilterComponents=3)
        self.protocol.connection.identity = Identity(
            DN.parse(f"cn=admin,{SUFFIX}"), isRoot=True)
        self.send(message(5, search(filterText="(|(cn=a)(cn=b)(cn=c))")))
        self.assertEqual(self.directory.ids(), [5])


class _Holding:
    """
    A plugin whose hooks wait for the test: a modify waits in its pre hook
    (before anything is written) or its post hook (once it is committed),
    a bind in its pre hook, as long as C{held} has a Deferred for that hook.

    @ivar held: the waits to make, by hook name.
    """

    name = "holding"

    def __init__(self) -> None:
        self.held: dict[str, defer.Deferred[None]] = {}

    def _wait(self, hook: str) -> defer.Deferred[None] | None:
        return self.held.get(hook)

    def pre_modify(self, op: Operation, modifications: Any, ndn: DN) -> Any:
        return self._wait("pre_modify")

    def post_modify(self, op: Operation, resultCode: int) -> Any:
        return self._wait("post_modify")

    def pre_bind(self, op: Operation, request: Any) -> Any:
        return self._wait("pre_bind")


def cancel(messageId: int) -> pureldap.LDAPExtendedRequest:
    """
    @return: a Cancel request (RFC 3909) for C{messageId}.
    """
    return pureldap.LDAPExtendedRequest(requestName=b"1.3.6.1.1.8",
                                        requestValue=encodeSequence([integer(messageId)]))


def modify(value: bytes) -> pureldap.LDAPModifyRequest:
    """
    @return: a Modify replacing the suffix's description with C{value}.
    """
    change = pureber.BERSequence([
        pureber.BEREnumerated(2),
        pureber.BERSequence([pureber.BEROctetString(b"description"),
                             pureber.BERSet([pureber.BEROctetString(value)])]),
    ])
    return pureldap.LDAPModifyRequest(object=SUFFIX.encode(), modification=[change])


class RealCancelTests(RealDirectoryTestsBase):
    """
    Cancel (RFC 3909) of each kind of operation, with slapd's result codes:
    the operation canceled answers canceled (118) and the Cancel success;
    one that ended first, tooLate (120); one that is not outstanding,
    noSuchOperation (119); Bind and StartTLS, cannotCancel (121).
    """

    def makeDirectory(self) -> Directory:
        suffix = DN.parse(SUFFIX)
        self.holding = _Holding()
        directory = Directory(
            [Database(suffix, MemoryBackend(self.schema.normalizeDN(suffix), self.schema,
                                            reactor=self.clock),
                      DN.parse(ROOT), b"secret", EXAMPLE_LDIF)],
            plugins=[self.holding], schema=self.schema, reactor=self.clock,
        )
        self.successResultOf(directory.open())
        return directory

    def results(self) -> dict[int, int]:
        """
        @return: the result codes written since the last call, by message id.
        """
        return {m.id: m.value.resultCode for m in decodeResponses(self.written())
                if not isinstance(m.value, pureldap.LDAPSearchResultEntry)}

    def description(self) -> tuple[bytes, ...]:
        op = self.directory.internalOperation()
        entry = self.successResultOf(defer.Deferred.fromCoroutine(
            self.directory.get(op, self.schema.normalizeDN(DN.parse(SUFFIX)))))
        return tuple(entry.get("description"))

    def test_search(self) -> None:
        """
        A search under way is canceled.
        """
        self.addUnits(400)
        self.send(message(1, bind(ROOT, "secret")),
                  message(8, search(scope=1, filterText="(ou=unit*)", attributes=("1.1",))))
        self.written()
        self.send(message(9, cancel(8)))
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(self.results(), {8: 118, 9: 0})

    def test_persistentSearch(self) -> None:
        """
        A persistent search, waiting for changes, is canceled.
        """
        control = encodeSequence([integer(15), b"\x01\x01\xff", b"\x01\x01\x00"])
        self.send(message(1, bind(ROOT, "secret")),
                  message(8, search(), controls=[(b"2.16.840.1.113730.3.4.3", True, control)]))
        self.assertEqual(self.results(), {1: 0})
        self.send(message(9, cancel(8)))
        self.assertEqual(self.results(), {8: 118, 9: 0})

    def test_writeNotMade(self) -> None:
        """
        A write canceled before it is made is canceled, and changes nothing.
        """
        before = self.description()
        self.holding.held["pre_modify"] = waiting = defer.Deferred()
        self.send(message(1, bind(ROOT, "secret")), message(2, modify(b"canceled")),
                  message(3, cancel(2)))
        self.assertEqual(self.results(), {1: 0})
        waiting.callback(None)
        self.assertEqual(self.results(), {2: 118, 3: 0})
        self.assertEqual(self.description(), before)

    def test_writeMade(self) -> None:
        """
        A write canceled once it is committed succeeds, and the Cancel is
        tooLate.
        """
        self.holding.held["post_modify"] = waiting = defer.Deferred()
        self.send(message(1, bind(ROOT, "secret")), message(2, modify(b"made")),
                  message(3, cancel(2)))
        self.assertEqual(self.results(), {1: 0})
        waiting.callback(None)
        self.assertEqual(self.results(), {2: 0, 3: 120})
        self.assertEqual(self.description(), (b"made",))

    def test_noSuchOperation(self) -> None:
        """
        A Cancel of an operation that is over is noSuchOperation.
        """
        self.send(message(1, bind(ROOT, "secret")), message(2, modify(b"over")),
                  message(3, cancel(2)))
        self.assertEqual(self.results(), {1: 0, 2: 0, 3: 119})

    def test_bind(self) -> None:
        """
        A Bind cannot be canceled.
        """
        self.holding.held["pre_bind"] = waiting = defer.Deferred()
        self.send(message(1, bind(ROOT, "secret")), message(2, cancel(1)))
        self.assertEqual(self.results(), {2: 121})
        waiting.callback(None)
        self.assertEqual(self.results(), {1: 0})


class WriteNowTests(unittest.TestCase):
    """
    L{protocol._writeNow} on a real TCP transport: bytes go out at once when
    nothing is queued, after what is queued otherwise.
    """

    def setUp(self) -> None:
        import socket

        from twisted.internet import tcp
        from twisted.internet.testing import MemoryReactor

        mine, self.peer = socket.socketpair()
        mine.setblocking(False)
        self.addCleanup(mine.close)
        self.addCleanup(self.peer.close)
        self.peer.settimeout(5)
        self.reactor = MemoryReactor()
        self.reactor.addWriter = lambda r: self.writers.add(r)  # type: ignore[method-assign]
        self.reactor.removeWriter = lambda r: self.writers.discard(r)  # type: ignore[method-assign]
        self.reactor.addReader = self.reactor.removeReader = lambda r: None  # type: ignore[method-assign]
        self.writers: set[Any] = set()
        server = type("Port", (), {"_realPortNumber": 1, "factory": None})()
        self.transport = tcp.Server(mine, protocol_.Protocol(), ("127.0.0.1", 1), server, 1,
                                    self.reactor)

    def test_atOnce(self) -> None:
        """
        With nothing queued, the bytes are sent at once and the transport
        does not wait to become writable.
        """
        from ldapd.protocol import _writeNow

        _writeNow(self.transport, b"response")
        self.assertEqual(self.peer.recv(100), b"response")
        self.assertEqual(self.writers, set())

    def test_afterQueued(self) -> None:
        """
        With bytes queued, new ones are queued after them, so that the order
        is kept.
        """
        from ldapd.protocol import _writeNow

        self.transport.write(b"first ")
        _writeNow(self.transport, b"second")
        self.assertEqual(self.writers, {self.transport})
        self.transport.doWrite()
        self.assertEqual(self.peer.recv(100), b"first second")

    def test_notConnected(self) -> None:
        """
        A transport that is closing takes Twisted's way, which sends what is
        written before closing.
        """
        from ldapd.protocol import _writeNow

        self.transport.disconnecting = True
        _writeNow(self.transport, b"last")
        self.assertEqual(self.writers, {self.transport})
