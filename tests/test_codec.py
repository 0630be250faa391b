"""
Tests for L{ldapd._codec}: the direct response encoder gives the same bytes
as ldaptor's own classes, and L{decodeSequence} refuses what is not one
SEQUENCE.
"""

from __future__ import annotations

import io
import sys

from ldaptor.protocols import pureber, pureldap
from twisted.trial import unittest

from ldapd._codec import (
    NOTICE_OF_DISCONNECTION,
    RESPONSE_DECODER,
    Control,
    checkBER,
    decodeSequence,
    encodeExtendedResponse,
    encodeMessage,
    encodeResult,
    encodeSearchEntry,
    encodeSearchReference,
    encodeSequence,
    integer,
    lengthAt,
    octetString,
    tlv,
)

#: Content lengths on both sides of each change in the length encoding:
#: short form, then one, two and three length octets.
LENGTHS = (0, 1, 127, 128, 255, 256, 65535, 65536, 70000)

#: Integers on both sides of each change in the number of content octets.
INTEGERS = sorted(
    {0, 1, -1, 2**31 - 1, -(2**31), 2**63, -(2**63), 2**100, -(2**100) - 1}
    | {s * 2**bits + d for bits in range(6, 41) for s in (1, -1) for d in (-1, 0, 1)}
)


def _value(length: int) -> bytes:
    """
    @return: C{length} bytes that are not all the same.
    """
    return bytes(i % 251 for i in range(length))


class IntegerTests(unittest.TestCase):
    """
    L{integer} encodes INTEGER and ENUMERATED as ldaptor does: the fewest
    two's complement octets.
    """

    def test_integers(self) -> None:
        """
        Positive, negative and large integers, including those next to a
        power of two, encode as L{pureber.BERInteger} encodes them.
        """
        for value in INTEGERS:
            self.assertEqual(integer(value), pureber.BERInteger(value).toWire(), value)

    def test_negativePowersOfTwo(self) -> None:
        """
        -128 and -32768 fit in one and two octets; a sign octet more would
        not be the minimal encoding BER asks for.
        """
        self.assertEqual(integer(-128), b"\x02\x01\x80")
        self.assertEqual(integer(-32768), b"\x02\x02\x80\x00")
        self.assertEqual(integer(-129), b"\x02\x02\xff\x7f")

    def test_enumerated(self) -> None:
        """
        With tag 0x0A, L{integer} encodes as L{pureber.BEREnumerated}.
        """
        for value in (0, 2, 80, 127, 128, 4096):
            self.assertEqual(integer(value, 0x0A), pureber.BEREnumerated(value).toWire())


class PrimitiveTests(unittest.TestCase):
    """
    L{octetString}, L{tlv} and L{encodeSequence} use the definite length
    forms ldaptor uses.
    """

    def test_octetStrings(self) -> None:
        """
        OCTET STRINGs of every length form encode as
        L{pureber.BEROctetString}, with the universal and with a context tag.
        """
        for length in LENGTHS:
            value = _value(length)
            self.assertEqual(octetString(value), pureber.BEROctetString(value).toWire(), length)
            self.assertEqual(
                octetString(value, 0x87), pureber.BEROctetString(value, tag=0x87).toWire()
            )

    def test_longLength(self) -> None:
        """
        A content of 70000 bytes has a length of three octets after 0x83.
        """
        self.assertEqual(tlv(0x04, b"x" * 70000)[:5], b"\x04\x83\x01\x11\x70")

    def test_sequences(self) -> None:
        """
        A SEQUENCE of encoded parts, and a constructed context-tagged one,
        encode as L{pureber.BERSequence}.
        """
        for length in LENGTHS:
            parts = [pureber.BERInteger(length), pureber.BEROctetString(_value(length))]
            self.assertEqual(
                encodeSequence(p.toWire() for p in parts), pureber.BERSequence(parts).toWire()
            )
            self.assertEqual(
                encodeSequence((p.toWire() for p in parts), 0xA3),
                pureber.BERSequence(parts, tag=0x83).toWire(),
            )

    def test_emptySequence(self) -> None:
        """
        An empty SEQUENCE is two octets.
        """
        self.assertEqual(encodeSequence([]), b"\x30\x00")


class LengthTests(unittest.TestCase):
    """
    Tests for L{lengthAt}, the one reader of BER length octets.
    """

    def test_forms(self) -> None:
        """
        The short form, and the long form in any number of octets, leading
        zeros included (X.690 §8.1.3.5), give the length and where the
        contents start.
        """
        self.assertEqual(lengthAt(b"\x04\x05", 1), (5, 2))
        self.assertEqual(lengthAt(b"\x04\x81\x80", 1), (128, 3))
        self.assertEqual(lengthAt(b"\x04\x84\x00\x00\x00\x05", 1), (5, 6))
        self.assertEqual(lengthAt(b"\x04\x8a" + b"\x00" * 9 + b"\x01", 1), (1, 12))

    def test_incomplete(self) -> None:
        """
        Length octets that have not all arrived give C{None}.
        """
        self.assertIsNone(lengthAt(b"\x04", 1))
        self.assertIsNone(lengthAt(b"\x04\x84\x00\x00", 1))

    def test_refused(self) -> None:
        """
        The indefinite form and the reserved octet 0xFF are refused.
        """
        self.assertRaises(ValueError, lengthAt, b"\x30\x80", 1)
        self.assertRaises(ValueError, lengthAt, b"\x30\xff" + b"\x00" * 127, 1)


class CheckBERTests(unittest.TestCase):
    """
    Tests for L{checkBER}.
    """

    def test_wellFormed(self) -> None:
        """
        Nested elements of every universal type LDAP uses, in their forms,
        and context-specific ones, pass.
        """
        checkBER(encodeSequence([integer(1), b"\x01\x01\xff", octetString(b"x"), b"\x05\x00",
                                 integer(2, 0x0A), tlv(0x31, octetString(b"y")),
                                 tlv(0xA0, tlv(0x87, b"cn"))]))

    def test_malformed(self) -> None:
        """
        A universal type in the other form, a BOOLEAN that is not one
        octet, an empty INTEGER or ENUMERATED, a NULL with contents, a high
        tag number, an element overrunning what holds it and octets after
        the element are refused, however deep.
        """
        for inner in (tlv(0x10, b""), tlv(0x22, integer(1)), tlv(0x24, octetString(b"x")),
                      b"\x01\x02\x00\x00", b"\x01\x00", b"\x02\x00", b"\x0a\x00", b"\x05\x01\x00",
                      b"\x1f\x81\x00\x00", b"\x04\x05ab"):
            for pdu in (inner, encodeSequence([inner]), tlv(0xA3, encodeSequence([inner]))):
                self.assertRaises(ValueError, checkBER, pdu)
        self.assertRaises(ValueError, checkBER, encodeSequence([]) + b"\x00")


class ResultTests(unittest.TestCase):
    """
    L{encodeResult} and L{encodeExtendedResponse} encode LDAPResults as
    ldaptor's response classes do.
    """

    classes = (
        pureldap.LDAPSearchResultDone,
        pureldap.LDAPModifyResponse,
        pureldap.LDAPAddResponse,
        pureldap.LDAPDelResponse,
        pureldap.LDAPModifyDNResponse,
        pureldap.LDAPCompareResponse,
        pureldap.LDAPBindResponse,
    )

    def test_results(self) -> None:
        """
        Every response type, with result codes, matched DNs and messages of
        every length form, encodes as ldaptor encodes it.
        """
        for cls in self.classes:
            for code in (0, 2, 32, 80, 4096):
                for length in LENGTHS:
                    matched = b"dc=example,dc=com" * (length // 17)
                    message = _value(length)
                    ours = encodeResult(0x20 | cls.tag, code, matched, message)
                    theirs = cls(resultCode=code, matchedDN=matched, errorMessage=message)
                    self.assertEqual(ours, theirs.toWire(), (cls, code, length))

    def test_bindResponseSaslCredentials(self) -> None:
        """
        A BindResponse's serverSaslCreds [7] follow the LDAPResult.
        """
        for length in (1, 200, 70000):
            creds = _value(length)
            ours = encodeResult(0x61, 14, extra=octetString(creds, 0x87))
            theirs = pureldap.LDAPBindResponse(resultCode=14, serverSaslCreds=creds)
            self.assertEqual(ours, theirs.toWire())

    def test_referrals(self) -> None:
        """
        Referral URIs (which ldaptor cannot encode) are a [3] SEQUENCE of
        OCTET STRINGs after the diagnostic message.
        """
        uris = [b"ldap://a.example.com/dc=example,dc=com", b"ldap://b.example.com/" + b"x" * 300]
        expected = pureber.BERSequence(
            [
                pureber.BEREnumerated(10),
                pureber.BEROctetString(b""),
                pureber.BEROctetString(b""),
                pureber.BERSequence([pureber.BEROctetString(u) for u in uris], tag=0x83),
            ],
            tag=pureldap.LDAPSearchResultDone.tag,
        )
        self.assertEqual(encodeResult(0x65, 10, referrals=uris), expected.toWire())

    def test_extendedResponses(self) -> None:
        """
        ExtendedResponses with and without responseName [10] and response
        [11], short and long, encode as L{pureldap.LDAPExtendedResponse}.
        """
        for name in (None, b"1.3.6.1.4.1.4203.1.11.3"):
            for value in (None, b"", b"dn:cn=admin", _value(300), _value(70000)):
                ours = encodeExtendedResponse(0, b"", b"", name, value)
                theirs = pureldap.LDAPExtendedResponse(
                    resultCode=0, responseName=name, response=value
                )
                self.assertEqual(ours, theirs.toWire(), (name, value and len(value)))

    def test_noticeOfDisconnection(self) -> None:
        """
        The Notice of Disconnection is an ExtendedResponse with message id 0
        and the notice's OID as responseName.
        """
        ours = encodeMessage(
            0, encodeExtendedResponse(2, b"", b"bad PDU", name=NOTICE_OF_DISCONNECTION)
        )
        theirs = pureldap.LDAPMessage(
            pureldap.LDAPExtendedResponse(
                resultCode=2, errorMessage=b"bad PDU", responseName=b"1.3.6.1.4.1.1466.20036"
            ),
            id=0,
        )
        self.assertEqual(ours, theirs.toWire())


class SearchEntryTests(unittest.TestCase):
    """
    L{encodeSearchEntry} encodes as L{pureldap.LDAPSearchResultEntry}.
    """

    def assertSameEntry(self, dn: bytes, attributes: list[tuple[bytes, list[bytes]]]) -> None:
        """
        Assert that both encoders give the same bytes for an entry.
        """
        self.assertEqual(
            encodeSearchEntry(dn, attributes),
            pureldap.LDAPSearchResultEntry(dn, attributes).toWire(),
        )

    def test_noAttributes(self) -> None:
        """
        An entry with no attributes (as for the attribute list C{1.1}).
        """
        self.assertSameEntry(b"dc=example,dc=com", [])

    def test_typesOnly(self) -> None:
        """
        Attributes without values (as for typesOnly).
        """
        self.assertSameEntry(b"dc=example,dc=com", [(b"objectClass", []), (b"dc", [])])

    def test_values(self) -> None:
        """
        Several attributes with several values, including UTF-8 and binary.
        """
        self.assertSameEntry(
            "cn=Zoë,ou=people,dc=example,dc=com".encode(),
            [
                (b"objectClass", [b"top", b"person", b"inetOrgPerson"]),
                (b"cn", ["Zoë".encode()]),
                (b"jpegPhoto", [bytes(range(256))]),
            ],
        )

    def test_longLengths(self) -> None:
        """
        Values, attributes, DNs and entries longer than 127 and 65535
        bytes.
        """
        for length in LENGTHS:
            self.assertSameEntry(
                b"cn=" + b"x" * length + b",dc=example,dc=com",
                [(b"description", [_value(length), _value(length // 2)]), (b"cn", [b"x" * length])],
            )

    def test_manyAttributes(self) -> None:
        """
        An entry whose attribute list alone is longer than 65535 bytes.
        """
        self.assertSameEntry(
            b"dc=example,dc=com", [(f"attr{i}".encode(), [b"v" * 100]) for i in range(1000)]
        )


class MessageTests(unittest.TestCase):
    """
    L{encodeMessage} encodes as L{pureldap.LDAPMessage}.
    """

    def test_messageIds(self) -> None:
        """
        Message ids from 0 to the largest, around each change in their length.
        """
        done = pureldap.LDAPSearchResultDone(resultCode=0)
        for messageId in (0, 1, 127, 128, 255, 256, 32767, 32768, 65536, 2**23, 2**31 - 1):
            self.assertEqual(
                encodeMessage(messageId, done.toWire()),
                pureldap.LDAPMessage(done, id=messageId).toWire(),
                messageId,
            )

    def test_longMessage(self) -> None:
        """
        A message whose protocolOp is longer than 65535 bytes.
        """
        entry = pureldap.LDAPSearchResultEntry(b"dc=example", [(b"description", [_value(70000)])])
        self.assertEqual(
            encodeMessage(7, entry.toWire()), pureldap.LDAPMessage(entry, id=7).toWire()
        )

    def test_controls(self) -> None:
        """
        Controls, critical or not, with or without a value, short or long,
        follow the protocolOp as [0] Controls. A false criticality is left
        out, as DER asks for a default value.
        """
        done = pureldap.LDAPSearchResultDone(resultCode=0)
        cases = [
            [Control("1.2.840.113556.1.4.319", False, b"\x30\x05\x02\x01\x00\x04\x00")],
            [Control("1.2.3", True, None)],
            [Control("1.2.3", False, None), Control("1.2.4", True, _value(300))],
            [Control("1.2.5", True, _value(70000))],
        ]
        for controls in cases:
            theirs = pureldap.LDAPMessage(
                done,
                id=5,
                controls=[(c.oid, True if c.criticality else None, c.value) for c in controls],
            )
            self.assertEqual(encodeMessage(5, done.toWire(), controls), theirs.toWire())

    def test_falseCriticalityOmitted(self) -> None:
        """
        A non-critical control carries no BOOLEAN.
        """
        self.assertEqual(
            encodeMessage(1, b"\x65\x00", [Control("1.2", False, None)]),
            b"\x30\x0e\x02\x01\x01\x65\x00\xa0\x07\x30\x05\x04\x031.2",
        )


class DecodeSequenceTests(unittest.TestCase):
    """
    L{decodeSequence} decodes a control or extended operation value that
    must be exactly one SEQUENCE, and raises C{ValueError} for anything else
    without printing.
    """

    def setUp(self) -> None:
        self.stdout = io.StringIO()
        self.patch(sys, "stdout", self.stdout)

    def tearDown(self) -> None:
        self.assertEqual(self.stdout.getvalue(), "")

    def test_sequence(self) -> None:
        """
        The elements of the SEQUENCE are returned, decoded.
        """
        data = encodeSequence([integer(10), octetString(b"cookie")])
        parts = decodeSequence(data)
        self.assertEqual(len(parts), 2)
        self.assertIsInstance(parts[0], pureber.BERInteger)
        self.assertEqual(parts[0].value, 10)
        self.assertEqual(parts[1].value, b"cookie")

    def test_contextTags(self) -> None:
        """
        Context-tagged primitive elements (as in the Password Modify value)
        decode as OCTET STRINGs that keep their tag when their tags are
        given, and are refused otherwise.
        """
        data = encodeSequence([octetString(b"uid=a", 0x80), octetString(b"new", 0x82)])
        parts = decodeSequence(data, tagged=(0x80, 0x82))
        self.assertEqual([(p.tag, p.value) for p in parts], [(0x80, b"uid=a"), (0x82, b"new")])
        self.assertRaises(ValueError, decodeSequence, data)
        self.assertRaises(ValueError, decodeSequence, data, tagged=(0x80,))

    def test_empty(self) -> None:
        """
        An empty SEQUENCE has no elements; empty data is an error.
        """
        self.assertEqual(decodeSequence(b"\x30\x00"), [])
        self.assertRaises(ValueError, decodeSequence, b"")

    def test_notSequence(self) -> None:
        """
        A value that is not a SEQUENCE is refused.
        """
        self.assertRaises(ValueError, decodeSequence, octetString(b"x"))
        self.assertRaises(ValueError, decodeSequence, integer(5))

    def test_trailingBytes(self) -> None:
        """
        Bytes after the SEQUENCE are refused.
        """
        self.assertRaises(ValueError, decodeSequence, b"\x30\x00\x00")
        self.assertRaises(ValueError, decodeSequence, b"\x30\x00\x30\x00")

    def test_truncated(self) -> None:
        """
        A SEQUENCE that claims more than there is, or whose element does,
        is refused.
        """
        self.assertRaises(ValueError, decodeSequence, b"\x30\x05\x02\x01\x00")
        self.assertRaises(ValueError, decodeSequence, b"\x30\x03\x04\x05ab")
        self.assertRaises(ValueError, decodeSequence, b"\x30")

    def test_indefiniteLength(self) -> None:
        """
        The indefinite length form is refused.
        """
        self.assertRaises(ValueError, decodeSequence, b"\x30\x80\x02\x01\x00\x00\x00")

    def test_unknownTag(self) -> None:
        """
        An element of an unknown universal type is an error (ldaptor would
        print a message and skip it).
        """
        self.assertRaises(ValueError, decodeSequence, b"\x30\x03\x06\x01\x2a")
        self.assertRaises(ValueError, decodeSequence, b"\x30\x05\x30\x03\x13\x01a")


class ReferralCodecTests(unittest.TestCase):
    """
    Continuation references are encoded as ldaptor encodes them, and
    L{RESPONSE_DECODER} decodes results with their referral URIs, which
    ldaptor's client drops.
    """

    uris = (b"ldap://a.example.com/ou=x,dc=example,dc=com??sub", b"ldap://b.example.com/")

    def test_searchReference(self) -> None:
        """
        A SearchResultReference is [APPLICATION 19] SEQUENCE OF URI.
        """
        theirs = pureldap.LDAPSearchResultReference(uris=[pureldap.LDAPString(u) for u in self.uris])
        self.assertEqual(encodeSearchReference(self.uris), theirs.toWire())
        decoded, _ = pureber.berDecodeObject(RESPONSE_DECODER, encodeMessage(2, theirs.toWire()))
        self.assertEqual(tuple(u.value for u in decoded.value.uris), self.uris)

    def test_referralKept(self) -> None:
        """
        The results of the operations that can be referred keep their
        referral URIs, and encode back to the same bytes (ldaptor's client
        takes their length); a result without one has none.
        """
        for tag in (0x65, 0x67, 0x69, 0x6B, 0x6D, 0x6F):
            message = encodeMessage(3, encodeResult(tag, 10, b"ou=x", b"elsewhere", self.uris))
            decoded, used = pureber.berDecodeObject(RESPONSE_DECODER, message)
            self.assertEqual((used, decoded.value.resultCode, decoded.value.matchedDN,
                              decoded.value.referral), (len(message), 10, b"ou=x", list(self.uris)))
            self.assertIsInstance(decoded.value, pureldap.LDAPResult)
            self.assertEqual(decoded.toWire(), message)
        plain, _ = pureber.berDecodeObject(RESPONSE_DECODER, encodeMessage(4, encodeResult(0x65, 0)))
        self.assertIsNone(plain.value.referral)
