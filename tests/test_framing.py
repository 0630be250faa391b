"""
Tests for L{ldapd._framing}: splitting a byte stream into LDAPMessages,
refusing what is not LDAP before buffering it, and telling a malformed stream
(L{MalformedPDU}) from a well-framed request that cannot be decoded
(L{BadRequest}).
"""

from __future__ import annotations

import io
import sys

from ldaptor import ldapfilter
from ldaptor.protocols import pureber, pureldap
from twisted.trial import unittest

from ldapd import _codec
from ldapd._codec import DECODER, encodeSequence, fromLdaptor, integer, octetString, tlv
from ldapd._framing import BadRequest, BufferBudget, Framer, MalformedPDU, Oversized
from ldapd.filters import MAX_DEPTH
from ldapd.requests import RawControl, SearchRequest, UnbindRequest
from ldapd.testing import longFormLengths


def _search(messageId: int, base: bytes = b"dc=example,dc=com") -> pureldap.LDAPMessage:
    """
    @return: a subtree search for everything below C{base}.
    """
    return pureldap.LDAPMessage(
        pureldap.LDAPSearchRequest(
            baseObject=base,
            scope=2,
            filter=ldapfilter.parseFilter("(&(objectClass=person)(cn=a*))"),
            attributes=[b"cn", b"mail"],
        ),
        id=messageId,
    )


def _message(messageId: bytes, *elements: bytes) -> bytes:
    """
    @param messageId: the encoded message id.
    @param elements: the encoded elements that follow it.
    @return: an LDAPMessage SEQUENCE around them.
    """
    return encodeSequence((messageId,) + elements)


#: Malformed searches the server once accepted, each built from a
#: good search: C{(what is wrong, the PDU)}.
MALFORMED_SEARCHES = [
    ("a primitive SEQUENCE for the attribute list",
     _message(integer(20), tlv(0x63, octetString(b"o=x") + integer(2, 0x0A) + integer(0, 0x0A)
                               + integer(0) + integer(0) + b"\x01\x01\x00" + tlv(0x87, b"cn")
                               + tlv(0x10, octetString(b"cn"))))),
    ("the scope as an INTEGER",
     _message(integer(21), tlv(0x63, octetString(b"o=x") + integer(2) + integer(0, 0x0A)
                               + integer(0) + integer(0) + b"\x01\x01\x00" + tlv(0x87, b"cn")
                               + tlv(0x30, b"")))),
    ("a timeLimit of 2**40",
     _message(integer(22), tlv(0x63, octetString(b"o=x") + integer(2, 0x0A) + integer(0, 0x0A)
                               + integer(0) + integer(2**40) + b"\x01\x01\x00" + tlv(0x87, b"cn")
                               + tlv(0x30, b"")))),
    ("a BOOLEAN of two octets",
     _message(integer(23), tlv(0x63, octetString(b"o=x") + integer(2, 0x0A) + integer(0, 0x0A)
                               + integer(0) + integer(0) + b"\x01\x02\x00\x00" + tlv(0x87, b"cn")
                               + tlv(0x30, b"")))),
    ("a substrings filter with no substring",
     _message(integer(24), tlv(0x63, octetString(b"o=x") + integer(2, 0x0A) + integer(0, 0x0A)
                               + integer(0) + integer(0) + b"\x01\x01\x00"
                               + tlv(0xA4, octetString(b"cn") + tlv(0x30, b"")) + tlv(0x30, b"")))),
]


class FramerTestsBase(unittest.TestCase):
    """
    A framer, and a check that nothing was printed (ldaptor prints when its
    decoder meets an unknown tag).
    """

    def setUp(self) -> None:
        self.framer = Framer()
        self.stdout = io.StringIO()
        self.patch(sys, "stdout", self.stdout)

    def tearDown(self) -> None:
        self.assertEqual(self.stdout.getvalue(), "")

    def drain(self) -> list[pureldap.LDAPMessage | BadRequest]:
        """
        @return: every complete message in the framer.
        """
        messages = []
        while (message := self.framer.next()) is not None:
            messages.append(message)
        return messages

    def assertSameMessages(self, received: list, sent: list[pureldap.LDAPMessage]) -> None:
        """
        Assert that the received messages are the sent ones, as ldaptor's
        decoder reads them.
        """
        expected = [fromLdaptor(pureber.berDecodeObject(DECODER, m.toWire())[0]) for m in sent]
        self.assertEqual(received, expected)


class FramingTests(FramerTestsBase):
    """
    Complete messages come out however the stream is cut.
    """

    def test_oneMessage(self) -> None:
        """
        One message fed at once comes out decoded, then nothing more.
        """
        self.framer.feed(_search(1).toWire())
        message = self.framer.next()
        self.assertIsInstance(message.request, SearchRequest)
        self.assertSameMessages([message], [_search(1)])
        self.assertIsNone(self.framer.next())

    def test_empty(self) -> None:
        """
        An empty framer has no message.
        """
        self.assertIsNone(self.framer.next())
        self.framer.feed(b"")
        self.assertIsNone(self.framer.next())

    def test_byteByByte(self) -> None:
        """
        Fed one byte at a time, a message comes out when its last byte
        arrives, and not before.
        """
        data = _search(3).toWire()
        for byte in data[:-1]:
            self.framer.feed(bytes((byte,)))
            self.assertIsNone(self.framer.next())
        self.framer.feed(data[-1:])
        self.assertSameMessages(self.drain(), [_search(3)])

    def test_longLengthByteByByte(self) -> None:
        """
        The header of a message longer than 65535 bytes (three length
        octets) is read correctly when it arrives a byte at a time.
        """
        sent = pureldap.LDAPMessage(
            pureldap.LDAPAddRequest(
                entry=b"cn=big,dc=example,dc=com",
                attributes=[(pureldap.LDAPAttributeDescription(b"description"),
                             pureber.BERSet([pureldap.LDAPAttributeValue(b"x" * 70000)]))],
            ),
            id=9,
        )
        data = sent.toWire()
        self.assertEqual(data[1], 0x83)
        for byte in data[:10]:
            self.framer.feed(bytes((byte,)))
            self.assertIsNone(self.framer.next())
        self.framer.feed(data[10:-1])
        self.assertIsNone(self.framer.next())
        self.framer.feed(data[-1:])
        self.assertSameMessages(self.drain(), [sent])

    def test_severalInOneChunk(self) -> None:
        """
        Several messages in one chunk come out in order.
        """
        sent = [_search(i) for i in range(1, 51)]
        self.framer.feed(b"".join(m.toWire() for m in sent))
        self.assertSameMessages(self.drain(), sent)

    def test_chunksAcrossMessages(self) -> None:
        """
        Chunks that end inside a header or in the next message give the same
        messages.
        """
        sent = [_search(i, b"o=" + b"x" * (i * 40)) for i in range(1, 9)]
        data = b"".join(m.toWire() for m in sent)
        received = []
        for size in (1, 2, 3, 7, 100, 1000):
            for start in range(0, len(data), size):
                self.framer.feed(data[start : start + size])
                received.extend(self.drain())
        self.assertSameMessages(received, sent * 6)

    def test_bufferReleased(self) -> None:
        """
        A message's bytes leave the buffer when it is taken; the start of the
        next one stays.
        """
        data = _search(1).toWire() + _search(2).toWire()[:5]
        self.framer.feed(data)
        self.framer.next()
        self.assertEqual(len(self.framer._buffer), 5)

    def test_controls(self) -> None:
        """
        A message's controls come out as C{(oid, criticality, value)}.
        """
        sent = pureldap.LDAPMessage(
            pureldap.LDAPDelRequest(entry=b"cn=a,dc=example,dc=com"),
            id=4,
            controls=[(b"1.2.3", True, b"value"), (b"1.2.4", None, None)],
        )
        self.framer.feed(sent.toWire())
        message = self.framer.next()
        self.assertEqual(message.controls, (RawControl("1.2.3", True, b"value"),
                                            RawControl("1.2.4", False, None)))

    def test_largestMessageId(self) -> None:
        """
        Message ids up to 2**31 - 1 are accepted.
        """
        for messageId in (1, 127, 128, 2**31 - 1):
            self.framer.feed(_search(messageId).toWire())
            self.assertEqual(self.framer.next().messageId, messageId)

    def test_longFormEverywhere(self) -> None:
        """
        A search whose every length, message id's included, is in the
        four-octet long form is the same search as its minimal encoding:
        BER allows lengths in more octets than needed (X.690 §8.1.3.5).
        """
        sent = _search(42)
        self.framer.feed(longFormLengths(sent.toWire()))
        self.assertSameMessages(self.drain(), [sent])

    def test_abandonAndUnbind(self) -> None:
        """
        Abandon and Unbind, whose protocolOps are primitive, are decoded.
        """
        sent = [
            pureldap.LDAPMessage(pureldap.LDAPAbandonRequest(id=3), id=4),
            pureldap.LDAPMessage(pureldap.LDAPUnbindRequest(), id=5),
        ]
        self.framer.feed(b"".join(m.toWire() for m in sent))
        self.assertSameMessages(self.drain(), sent)


class SizeLimitTests(FramerTestsBase):
    """
    The size of a PDU is checked from its length header, before its
    content is buffered.
    """

    def test_twoGiBRefused(self) -> None:
        """
        A header claiming 2 GiB is refused as soon as it is complete, and the
        buffer holds no more than what was fed.
        """
        header = b"\x30\x84\x80\x00\x00\x00"
        for byte in header[:-1]:
            self.framer.feed(bytes((byte,)))
            self.assertIsNone(self.framer.next())
        self.framer.feed(header[-1:] + b"\x02\x01\x01")
        self.assertRaises(Oversized, self.framer.next)
        self.assertEqual(len(self.framer._buffer), len(header) + 3)

    def test_limit(self) -> None:
        """
        A PDU whose header announces exactly the maximum (as slapd counts:
        the length, not the header) is accepted; one byte more is refused
        before it has arrived.
        """
        message = _search(1).toWire()
        framer = Framer(maxPDUSize=len(message) - 2)
        framer.feed(message)
        self.assertEqual(framer.next().messageId, 1)
        bigger = _search(2, b"dc=example,dc=comm").toWire()
        framer = Framer(maxPDUSize=len(bigger) - 3)
        framer.feed(bigger[:2])
        self.assertRaises(Oversized, framer.next)

    def test_limitSwitch(self) -> None:
        """
        The limit is read when a PDU's header is, so that the protocol can
        raise it once the client has bound: the same header is refused
        under the anonymous limit and accepted under the bound one.
        """
        header = b"\x30\x83\x10\x00\x00"
        framer = Framer(maxPDUSize=262143)
        framer.feed(header)
        self.assertRaises(Oversized, framer.next)
        framer.maxPDUSize = 4194303
        self.assertIsNone(framer.next())
        self.assertEqual(framer.buffered, len(header))


class BufferBudgetTests(unittest.TestCase):
    """
    Every framer of a server charges what it buffers to one
    L{BufferBudget}, and gives it back when it takes a PDU out or closes.
    """

    def test_chargedAndReleased(self) -> None:
        """
        Fed bytes are charged; a PDU taken out is released, and so is a
        partial one when the framer closes.
        """
        budget = BufferBudget(1000)
        framer = Framer(budget=budget)
        message = _search(1).toWire()
        framer.feed(message + message[:10])
        self.assertEqual(budget.used, len(message) + 10)
        framer.next()
        self.assertEqual(budget.used, 10)
        framer.close()
        self.assertEqual((budget.used, framer.buffered), (0, 0))

    def test_shared(self) -> None:
        """
        Bytes that would take several framers together past the budget are
        refused with L{Oversized} and not buffered; once another framer
        closes, they fit.
        """
        budget = BufferBudget(100)
        first, second = Framer(budget=budget), Framer(budget=budget)
        first.feed(b"\x30\x84\x00\x01\x00\x00" + b"\x00" * 54)
        second.feed(b"\x30\x84\x00\x01\x00\x00" + b"\x00" * 34)
        self.assertRaises(Oversized, second.feed, b"\x00")
        self.assertEqual((second.buffered, budget.used), (40, 100))
        first.close()
        second.feed(b"\x00")
        self.assertEqual(budget.used, 41)

    def test_noLimit(self) -> None:
        """
        A budget of 0 has no limit.
        """
        budget = BufferBudget(0)
        self.assertTrue(budget.charge(1 << 40))

    def test_largeBufferDropped(self) -> None:
        """
        Once a large PDU is taken out, the framer holds a new, empty buffer
        rather than the one that grew to hold it.
        """
        framer = Framer()
        message = _search(1, b"dc=" + b"x" * 100000).toWire()
        framer.feed(message)
        grown = framer._buffer
        framer.next()
        self.assertIsNot(framer._buffer, grown)
        self.assertEqual(framer.buffered, 0)


class FilterBoundTests(FramerTestsBase):
    """
    A search filter is measured from its encoding before it is decoded: one
    with more components than the framer's limit, or nested deeper than
    L{MAX_DEPTH}, is refused without being decoded, with the error compiling
    it would give.
    """

    def searchWith(self, encodedFilter: bytes, messageId: int = 7) -> bytes:
        """
        @return: a search PDU with that filter.
        """
        request = pureldap.LDAPSearchRequest(filter=pureldap.LDAPFilter_present("cn"))
        content = request.toWire()[2:].replace(tlv(0x87, b"cn"), encodedFilter)
        return _message(integer(messageId), tlv(0x63, content))

    def test_tooManyComponents(self) -> None:
        """
        A million-way OR from a 2 MB PDU is refused from its first 1001
        components: the framer's answer is a L{BadRequest} carrying
        adminLimitExceeded.
        """
        self.framer.maxFilterComponents = 1000
        self.framer.feed(self.searchWith(tlv(0xA1, tlv(0x87, b"") * 1000000)))
        bad = self.framer.next()
        self.assertIsInstance(bad, BadRequest)
        self.assertEqual((bad.messageId, bad.tag), (7, 0x63))
        self.assertEqual(bad.error.resultCode, 11)
        self.assertEqual(bad.reason, "filter has more than 1000 components")

    def test_atTheLimit(self) -> None:
        """
        A filter of exactly the limit's components (the OR and 999 others)
        is decoded.
        """
        self.framer.maxFilterComponents = 1000
        self.framer.feed(self.searchWith(tlv(0xA1, tlv(0x87, b"cn") * 999)))
        message = self.framer.next()
        self.assertEqual(len(message.request.filter.parts), 999)

    def test_noLimit(self) -> None:
        """
        Without a limit (a root DN's), a large filter is decoded.
        """
        self.framer.maxFilterComponents = 0
        self.framer.feed(self.searchWith(tlv(0xA0, tlv(0x87, b"cn") * 5000)))
        self.assertEqual(len(self.framer.next().request.filter.parts), 5000)

    def test_tooDeep(self) -> None:
        """
        A filter nested deeper than L{MAX_DEPTH} is refused with
        protocolError, before it is decoded; one at that depth is decoded.
        """
        inner = tlv(0x87, b"cn")
        for _ in range(MAX_DEPTH):
            inner = tlv(0xA2, inner)
        self.framer.maxFilterComponents = 5000
        self.framer.feed(self.searchWith(inner, 8) + self.searchWith(tlv(0xA2, inner), 9))
        self.assertEqual(self.framer.next().messageId, 8)
        bad = self.framer.next()
        self.assertEqual((bad.messageId, bad.error.resultCode), (9, 2))
        self.assertEqual(bad.reason, f"filter nested deeper than {MAX_DEPTH} levels")

    def test_indefiniteLength(self) -> None:
        """
        The indefinite length form (0x80) is refused.
        """
        self.framer.feed(b"\x30\x80\x02\x01\x01\x42\x00\x00\x00")
        self.assertRaises(MalformedPDU, self.framer.next)

    def test_fiveLengthOctets(self) -> None:
        """
        A length in five octets, leading zeros included, is read for its
        value: BER does not ask for the fewest octets (X.690 §8.1.3.5).
        """
        self.framer.feed(b"\x30\x85\x00\x00\x00\x00\x05\x02\x01\x01\x42\x00")
        message = self.framer.next()
        self.assertEqual(message.messageId, 1)
        self.assertIsInstance(message.request, UnbindRequest)

    def test_reservedLength(self) -> None:
        """
        The reserved initial length octet 0xFF (X.690 §8.1.3.5 c) is refused.
        """
        self.framer.feed(b"\x30\xff" + b"\x00" * 130)
        self.assertRaises(MalformedPDU, self.framer.next)

    def test_hugeLengthInManyOctets(self) -> None:
        """
        A length given in many octets is checked against the limit by its
        value, not its octets.
        """
        self.framer.feed(b"\x30\x90" + b"\x00" * 12 + b"\x80\x00\x00\x00")
        self.assertRaises(Oversized, self.framer.next)


class MalformedTests(FramerTestsBase):
    """
    A stream that is not a sequence of LDAPMessages raises L{MalformedPDU}.
    """

    def test_notSequence(self) -> None:
        """
        A first byte other than the SEQUENCE tag is refused at once, with
        the tag in the message.
        """
        for first in (0x04, 0x10, 0x31, 0x60, 0xA0, 0x00, 0xFF):
            framer = Framer()
            framer.feed(bytes((first, 0x00)))
            e = self.assertRaises(MalformedPDU, framer.next)
            self.assertIn(f"0x{first:02x}", str(e))

    def test_garbage(self) -> None:
        """
        Text (such as an HTTP request sent to the LDAP port) is refused.
        """
        self.framer.feed(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        self.assertRaises(MalformedPDU, self.framer.next)

    def test_emptySequence(self) -> None:
        """
        A SEQUENCE with no message id is refused.
        """
        self.framer.feed(b"\x30\x00")
        self.assertRaises(MalformedPDU, self.framer.next)

    def test_noOperation(self) -> None:
        """
        A message id with nothing after it is refused.
        """
        self.framer.feed(_message(integer(1)))
        self.assertRaises(MalformedPDU, self.framer.next)

    def test_messageIdNotInteger(self) -> None:
        """
        A message id that is not an INTEGER (an ENUMERATED, a BOOLEAN, an
        OCTET STRING) is refused, even when the operation is fine.
        """
        unbind = b"\x42\x00"
        for messageId in (integer(1, 0x0A), b"\x01\x01\xff", octetString(b"1")):
            framer = Framer()
            framer.feed(_message(messageId, unbind))
            self.assertRaises(MalformedPDU, framer.next)

    def test_messageIdOutOfRange(self) -> None:
        """
        Negative message ids, and ids from 2**31 up, are refused.
        """
        unbind = b"\x42\x00"
        for messageId in (-1, -(2**31), 2**31, 2**40):
            framer = Framer()
            framer.feed(_message(integer(messageId), unbind))
            self.assertRaises(MalformedPDU, framer.next)

    def test_emptyMessageId(self) -> None:
        """
        An INTEGER with no content octets is refused.
        """
        self.framer.feed(_message(b"\x02\x00", b"\x42\x00"))
        self.assertRaises(MalformedPDU, self.framer.next)


class BadRequestTests(FramerTestsBase):
    """
    A well-framed message whose operation cannot be decoded gives a
    L{BadRequest} with its message id and operation tag, and the stream goes
    on.
    """

    def assertBadRequest(self, data: bytes, messageId: int, tag: int) -> BadRequest:
        """
        Assert that C{data} followed by a good search gives a L{BadRequest},
        then the search.
        """
        framer = Framer()
        framer.feed(data + _search(77).toWire())
        bad = framer.next()
        self.assertIsInstance(bad, BadRequest)
        self.assertEqual((bad.messageId, bad.tag), (messageId, tag))
        self.assertTrue(bad.reason)
        self.assertEqual(framer.next().messageId, 77)
        self.assertIsNone(framer.next())
        return bad

    def test_searchGarbage(self) -> None:
        """
        A search whose content is garbage.
        """
        self.assertBadRequest(_message(integer(5), tlv(0x63, b"\xff\xfe\xfd")), 5, 0x63)

    def test_searchMissingFields(self) -> None:
        """
        A search with only a base DN.
        """
        self.assertBadRequest(_message(integer(6), tlv(0x63, octetString(b"o=x"))), 6, 0x63)

    def test_innerLengthOverrun(self) -> None:
        """
        An element inside the operation that claims more bytes than the
        operation holds.
        """
        self.assertBadRequest(_message(integer(300), tlv(0x63, b"\x04\x7fabc")), 300, 0x63)

    def test_nestedIndefiniteLength(self) -> None:
        """
        The indefinite length form inside the operation.
        """
        self.assertBadRequest(_message(integer(8), tlv(0x66, b"\x30\x80\x00\x00")), 8, 0x66)

    def test_unknownFilterTag(self) -> None:
        """
        A search whose filter has an unknown choice.
        """
        request = pureldap.LDAPSearchRequest(filter=pureldap.LDAPFilter_present("cn"))
        wire = bytearray(request.toWire())
        wire[wire.index(0x87)] = 0x8F
        self.assertBadRequest(_message(integer(9), bytes(wire)), 9, 0x63)

    def test_unknownOperation(self) -> None:
        """
        An application tag that is no LDAP operation.
        """
        self.assertBadRequest(_message(integer(10), tlv(0x7E, b"")), 10, 0x7E)

    def test_universalOperation(self) -> None:
        """
        A universal element where the operation should be.
        """
        self.assertBadRequest(_message(integer(11), octetString(b"x")), 11, 0x04)

    def test_response(self) -> None:
        """
        A response sent by a client is not a request.
        """
        done = pureldap.LDAPSearchResultDone(resultCode=0).toWire()
        self.assertBadRequest(_message(integer(12), done), 12, 0x65)

    def test_trailingElement(self) -> None:
        """
        An element after the controls.
        """
        unbind = b"\x42\x00"
        self.assertBadRequest(_message(integer(13), unbind, b"\xa0\x00", integer(1)), 13, 0x42)

    def test_notControls(self) -> None:
        """
        An element after the operation that is not [0] Controls.
        """
        self.assertBadRequest(_message(integer(14), b"\x42\x00", octetString(b"c")), 14, 0x42)

    def test_malformedControls(self) -> None:
        """
        Controls holding something else than control SEQUENCEs (ldaptor would
        print and drop them).
        """
        for inside in (octetString(b"1.2.3"), integer(1)):
            self.assertBadRequest(
                _message(integer(15), b"\x4a\x01x", tlv(0xA0, inside)), 15, 0x4A
            )

    def test_malformedSearches(self) -> None:
        """
        A primitive SEQUENCE, a scope under an INTEGER tag, a timeLimit
        above maxInt, a BOOLEAN of two octets and a substrings filter with
        no substring are each a bad request.
        """
        for what, pdu in MALFORMED_SEARCHES:
            with self.subTest(what):
                self.assertBadRequest(pdu, pdu[4], 0x63)

    def test_malformedSearchesWithoutFastPath(self) -> None:
        """
        ldaptor's decoder, which decodes what the fast path leaves, is
        checked as the fast path is: the same searches are bad requests.
        """
        self.patch(_codec, "decodeRequest", lambda pdu: None)
        self.test_malformedSearches()

    def test_universalForms(self) -> None:
        """
        Universal types in a form BER does not give them (a constructed
        BOOLEAN, OCTET STRING or ENUMERATED; a primitive SET), a BOOLEAN of
        no octet, a NULL with content and a high tag number are bad
        requests, wherever they are; the same requests with those elements
        well formed are not.
        """
        def delete(*control: bytes) -> bytes:
            return _message(integer(30), octetString(b"cn=x", 0x4A),
                            tlv(0xA0, tlv(0x30, octetString(b"1.2.3") + b"".join(control))))

        def modify(operation: bytes, values: bytes) -> bytes:
            return _message(integer(31), tlv(0x66, octetString(b"cn=x") + tlv(0x30, tlv(
                0x30, operation + tlv(0x30, octetString(b"cn") + values)))))

        good = [delete(b"\x01\x01\xff"), delete(octetString(b"v")),
                modify(integer(0, 0x0A), tlv(0x31, octetString(b"y")))]
        for pdu in good:
            self.assertNotIsInstance(self.framerOf(pdu).next(), BadRequest)
        for pdu in (
            delete(tlv(0x21, b"\x01\x01\xff")),
            delete(tlv(0x24, octetString(b"v"))),
            delete(b"\x01\x00"),
            delete(b"\x05\x01\x00"),
            delete(b"\x1f\x81\x00\x00"),
            modify(tlv(0x2A, integer(0, 0x0A)), tlv(0x31, octetString(b"y"))),
            modify(integer(0, 0x0A), tlv(0x11, octetString(b"y"))),
        ):
            self.assertBadRequest(pdu, pdu[4], pdu[5])

    def framerOf(self, pdu: bytes) -> Framer:
        """
        @return: a framer fed with C{pdu}.
        """
        framer = Framer()
        framer.feed(pdu)
        return framer

    def test_deepNesting(self) -> None:
        """
        A filter nested too deep to decode is a bad request, not a crash.
        """
        inner = tlv(0x87, b"cn")
        for _ in range(5000):
            inner = tlv(0xA2, inner)
        request = pureldap.LDAPSearchRequest(filter=pureldap.LDAPFilter_present("cn"))
        content = request.toWire()[2:].replace(tlv(0x87, b"cn"), inner)
        self.assertBadRequest(_message(integer(16), tlv(0x63, content)), 16, 0x63)
