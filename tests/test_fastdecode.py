"""
Tests for L{ldapd._codec.decodeRequest} and L{ldapd._codec.decodeResponse},
the decoders' fast paths: on a corpus of requests and responses, edge cases
and malformed PDUs, whatever they decode is equal in every attribute to what
ldaptor's decoder makes of the same bytes, and they leave to ldaptor
everything that decoder refuses.
"""

from __future__ import annotations

import random
from typing import Any
from unittest import mock

from ldaptor.protocols import pureber, pureldap
from twisted.trial import unittest

from ldapd import _codec
from ldapd._codec import (
    DECODER,
    RESPONSE_DECODER,
    Control,
    checkBER,
    decodeRequest,
    decodeResponse,
    decodeSequence,
    encodeIntermediateResponse,
    encodeMessage,
    encodeResult,
    encodeSearchEntry,
    encodeSearchReference,
    encodeSequence,
    fromLdaptor,
    octetString,
    tlv,
)
from ldapd._framing import Framer
from ldapd.backends._proxypool import _UpstreamProtocol
from ldapd.syncrepl import codec
from ldapd.testing import longFormLengths

_ATTRIBUTE = pureldap.LDAPAttributeDescription


def _equality(name: str, value: str | bytes) -> pureldap.LDAPFilter_equalityMatch:
    return pureldap.LDAPFilter_equalityMatch(
        attributeDesc=_ATTRIBUTE(name), assertionValue=pureldap.LDAPAssertionValue(value)
    )


def _substrings(name: str, *pieces: pureber.BERBase) -> pureldap.LDAPFilter_substrings:
    return pureldap.LDAPFilter_substrings(type=name, substrings=list(pieces))


_INITIAL = pureldap.LDAPFilter_substrings_initial
_ANY = pureldap.LDAPFilter_substrings_any
_FINAL = pureldap.LDAPFilter_substrings_final

#: Filters the fast path decodes, nested and flat, with values whose
#: lengths need one, two and three length octets.
FILTERS = [
    _equality("uid", "alice"),
    _equality("cn", ""),
    _equality("description", "x" * 127),
    _equality("description", "x" * 128),
    _equality("description", b"\x00\xff" * 200),
    _equality("jpegPhoto", b"j" * 70000),
    pureldap.LDAPFilter_present("objectClass"),
    pureldap.LDAPFilter_present(""),
    _substrings("mail", _INITIAL("al")),
    _substrings("mail", _ANY("ic")),
    _substrings("mail", _FINAL(".com")),
    _substrings("cn", _INITIAL("a"), _ANY("b"), _ANY("c"), _FINAL("d")),
    _substrings("cn", _FINAL("d"), _INITIAL("a")),
    pureldap.LDAPFilter_and([]),
    pureldap.LDAPFilter_or([]),
    pureldap.LDAPFilter_and([_equality("uid", "a"), pureldap.LDAPFilter_present("cn")]),
    pureldap.LDAPFilter_or([_equality("uid", "a"), _equality("uid", "b"), _equality("uid", "c")]),
    pureldap.LDAPFilter_not(_equality("uid", "a")),
    pureldap.LDAPFilter_and([
        pureldap.LDAPFilter_or([_equality("objectClass", "person"), _substrings("cn", _INITIAL("x"))]),
        pureldap.LDAPFilter_not(pureldap.LDAPFilter_and([pureldap.LDAPFilter_present("mail")])),
    ]),
]


def _nested(depth: int) -> pureber.BERBase:
    f: pureber.BERBase = _equality("uid", "deep")
    for _ in range(depth):
        f = pureldap.LDAPFilter_not(f)
    return f


def _search(messageId: int = 1, **fields: Any) -> bytes:
    request: dict[str, Any] = {"baseObject": "dc=example,dc=com", "filter": _equality("uid", "alice")}
    request.update(fields)
    return pureldap.LDAPMessage(pureldap.LDAPSearchRequest(**request), id=messageId).toWire()


def _bind(messageId: int = 1, **fields: Any) -> bytes:
    return pureldap.LDAPMessage(pureldap.LDAPBindRequest(**fields), id=messageId).toWire()


#: Requests the fast path decodes.
HANDLED = (
    [_search(filter=f) for f in FILTERS]
    + [
        _search(scope=0, derefAliases=3, sizeLimit=1, timeLimit=2**31 - 1, typesOnly=1),
        _search(sizeLimit=-1, timeLimit=-200),
        _search(scope=7, derefAliases=9),
        _search(baseObject=""),
        _search(baseObject="o=" + "x" * 300),
        _search(attributes=["cn", "+", "*", "1.1", "x" * 200]),
        _search(filter=_nested(15)),
        _search(messageId=2**31 - 1),
        _search(messageId=128),
        _bind(dn="uid=alice,dc=example,dc=com", auth="secret"),
        _bind(),
        _bind(version=2, dn="cn=x", auth=""),
        _bind(dn="x" * 300, auth=b"\x00" * 200),
        pureldap.LDAPMessage(pureldap.LDAPUnbindRequest(), id=3).toWire(),
        _search(filter=pureldap.LDAPFilter_greaterOrEqual(
            attributeDesc=_ATTRIBUTE("n"), assertionValue=pureldap.LDAPAssertionValue("1"))),
        _search(filter=pureldap.LDAPFilter_lessOrEqual(
            attributeDesc=_ATTRIBUTE("n"), assertionValue=pureldap.LDAPAssertionValue("9"))),
        _search(filter=pureldap.LDAPFilter_approxMatch(
            attributeDesc=_ATTRIBUTE("cn"), assertionValue=pureldap.LDAPAssertionValue("x"))),
        pureldap.LDAPMessage(
            pureldap.LDAPSearchRequest(baseObject="", filter=_equality("uid", "a")), id=1,
            controls=[("1.2.840.113556.1.4.319", False, b"0\x05\x02\x01\x05\x04\x00"),
                      ("1.3.6.1.4.1.42.2.27.8.5.1", True, None)],
        ).toWire(),
        pureldap.LDAPMessage(pureldap.LDAPBindRequest(dn="cn=x", auth="y"), id=9,
                             controls=[("1.3.6.1.4.1.42.2.27.8.5.1", False, None)]).toWire(),
    ]
)

#: Well-formed requests the fast path leaves to ldaptor.
UNHANDLED = [
    _search(filter=pureldap.LDAPFilter_and([
        pureldap.LDAPFilter_extensibleMatch(matchingRule="2.5.13.2", type="cn", matchValue="x")])),
    _search(filter=_nested(17)),
    _bind(dn="", auth=("PLAIN", b"\x00u\x00p"), sasl=True),
    pureldap.LDAPMessage(pureldap.LDAPAbandonRequest(id=3), id=4).toWire(),
    pureldap.LDAPMessage(pureldap.LDAPDelRequest(entry="cn=x"), id=5).toWire(),
    pureldap.LDAPMessage(pureldap.LDAPModifyDNRequest(entry="cn=x", newrdn="cn=y", deleteoldrdn=1),
                         id=6).toWire(),
]


def _ldaptor(pdu: bytes) -> Any:
    """
    @return: what ldaptor's decoder makes of C{pdu}, after the framer's
        check of its encoding, in ldapd's types (L{fromLdaptor}); or the
        exception any of them raises.
    """
    try:
        checkBER(pdu)
        message, used = pureber.berDecodeObject(DECODER, pdu)
        if used != len(pdu):
            return ValueError("trailing bytes")
        return fromLdaptor(message)
    except Exception as e:
        return e


def _same(a: Any, b: Any) -> bool:
    """
    @return: whether C{a} and C{b} are of the same types with equal
        attributes, all the way down.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dict__"):
        mine, theirs = vars(a), vars(b)
        return mine.keys() == theirs.keys() and all(_same(mine[k], theirs[k]) for k in mine)
    return bool(a == b)


def _mutations(pdu: bytes, rng: random.Random, count: int) -> list[bytes]:
    """
    @return: C{count} copies of C{pdu} with one to three octets changed,
        and C{pdu} cut short at every length.
    """
    found = [pdu[:n] for n in range(len(pdu))]
    for _ in range(count):
        changed = bytearray(pdu)
        for _ in range(rng.randint(1, 3)):
            changed[rng.randrange(len(changed))] = rng.choice((0, 1, 0x7F, 0x80, 0x81, 0xFF,
                                                               rng.randrange(256)))
        found.append(bytes(changed))
    return found


class _SameAsLdaptorMixin:
    """
    Compares a fast path (C{fast}) with ldaptor's decoding (C{ldaptor}),
    both given as static methods by the test case.
    """

    fast: Any
    ldaptor: Any

    def assertSameAsLdaptor(self, pdu: bytes) -> bool:
        """
        Assert that whatever the fast path makes of C{pdu} equals ldaptor's
        decoding, which must succeed where the fast path does.

        @return: whether the fast path decoded it.
        """
        fast = self.fast(pdu)
        if fast is None:
            return False
        expected = self.ldaptor(pdu)
        self.assertFalse(  # type: ignore[attr-defined]
            isinstance(expected, Exception), f"ldaptor refuses {pdu.hex()}: {expected!r}")
        self.assertTrue(  # type: ignore[attr-defined]
            _same(fast, expected), f"{fast!r} != {expected!r} for {pdu.hex()}")
        return True

    def assertMutationsSameAsLdaptor(self, pdus: list[bytes], seed: int) -> None:
        """
        Assert L{assertSameAsLdaptor} of every truncation of the first 2,000
        octets of each PDU and of 60 random corruptions of each, and that
        some corruptions (of values) are still decoded.
        """
        rng = random.Random(seed)
        decoded = 0
        for pdu in pdus:
            for bad in _mutations(pdu[:2000], rng, 60):
                decoded += self.assertSameAsLdaptor(bad)
        self.assertGreater(decoded, 0)  # type: ignore[attr-defined]


class FastDecodeTests(_SameAsLdaptorMixin, unittest.TestCase):
    """
    L{decodeRequest} decodes the common requests as ldaptor does and leaves
    the rest to ldaptor.
    """

    fast = staticmethod(decodeRequest)
    ldaptor = staticmethod(_ldaptor)

    def test_handled(self) -> None:
        """
        Searches with equality, ordering, approximate, presence, substrings,
        and, or and not filters, simple binds and unbinds, with or without
        controls, including empty values, long-form
        lengths, negative and large integers and the largest message id, are
        decoded by the fast path into what ldaptor decodes.
        """
        for pdu in HANDLED:
            self.assertTrue(self.assertSameAsLdaptor(pdu), pdu.hex())

    def test_unhandled(self) -> None:
        """
        Extensible matches, filters nested deeper than the fast path goes,
        SASL binds and other operations are left to ldaptor.
        """
        for pdu in UNHANDLED:
            self.assertIsNone(decodeRequest(pdu), pdu.hex())
            self.assertNotIsInstance(_ldaptor(pdu), Exception)

    def test_malformed(self) -> None:
        """
        Every truncation of each request, and random corruptions of one to
        three octets of it, are either decoded as ldaptor decodes them or
        left to ldaptor: never decoded where ldaptor refuses them.
        """
        self.assertMutationsSameAsLdaptor(HANDLED + UNHANDLED, 8)

    def test_shapes(self) -> None:
        """
        Elements with other tags than the request's (an INTEGER for an
        ENUMERATED, a SET of attributes), empty integers, a two-octet
        BOOLEAN, indefinite lengths and octets after the operation are left
        to ldaptor.
        """
        good = _search()
        cases = [
            good.replace(b"\x0a\x01\x02", b"\x02\x01\x02", 1),
            good[:-2] + b"\x31\x00",
            good.replace(b"\x01\x01\x00", b"\x01\x02\x00\x00", 1).replace(
                good[:2], bytes((0x30, good[1] + 1)), 1),
            good.replace(b"\x0a\x01\x02", b"\x0a\x80\x02", 1),
            bytes((0x30, good[1] + 2)) + good[2:] + b"\x04\x00",
            b"\x30\x05\x02\x01\x01\x42\x01\x00"[:7],
            b"\x30\x06\x02\x00\x42\x00\x00\x00",
        ]
        for pdu in cases:
            self.assertIsNone(decodeRequest(pdu), pdu.hex())


class FramerFastPathTests(unittest.TestCase):
    """
    The framer gives the fast path's messages, and ldaptor's for the rest.
    """

    def test_framer(self) -> None:
        """
        A search, a paged search (with a control) and a Modify DN fed to a
        L{Framer} come out equal to ldaptor's decoding of each.
        """
        framer = Framer()
        pdus = [HANDLED[0], HANDLED[-2], UNHANDLED[-1]]
        framer.feed(b"".join(pdus))
        for pdu in pdus:
            self.assertTrue(_same(framer.next(), _ldaptor(pdu)))
        self.assertIsNone(framer.next())


class LongFormTests(unittest.TestCase):
    """
    Lengths in more octets than needed (X.690 §8.1.3.5) are read by both
    decoders.
    """

    def test_longForm(self) -> None:
        """
        Requests with every length in the four-octet long form are decoded
        by the fast path, and by ldaptor's (through the framer, without the
        fast path), as their minimal encodings are.
        """
        for pdu in HANDLED:
            self.assertTrue(_same(decodeRequest(longFormLengths(pdu)), _ldaptor(pdu)), pdu.hex())
        self.patch(_codec, "decodeRequest", lambda pdu: None)
        for pdu in HANDLED + UNHANDLED:
            framer = Framer()
            framer.feed(longFormLengths(pdu))
            self.assertTrue(_same(framer.next(), _ldaptor(pdu)), pdu.hex())


_UUID = bytes(range(16))
_COOKIE = b"rid=001,csn=20261207120000.000000Z#000000#000#000000"

#: Controls as a provider sends them: the Sync State control with each kind
#: of value, a Sync Done control, and odd ones (no value, an empty value,
#: critical or not, several at once).
_CONTROLS = [
    [Control(codec.SYNC_STATE, False, codec.SyncState(codec.ADD, _UUID, _COOKIE).encode())],
    [Control(codec.SYNC_STATE, False, codec.SyncState(codec.DELETE, _UUID).encode())],
    [Control(codec.SYNC_STATE, True, codec.SyncState(codec.PRESENT, _UUID).encode())],
    [Control("1.2.3", False, None)],
    [Control("1.2.3", True, None)],
    [Control("1.2.3", False, b"")],
    [Control("1.2.3", True, b"v" * 300), Control("1.2.4", False, None)],
]


def _message(op: bytes, messageId: int = 2, controls: list[Control] | None = None) -> bytes:
    return encodeMessage(messageId, op, controls or ())


def _withControls(op: bytes, encodedControls: list[bytes]) -> bytes:
    """
    @return: a message with controls encoded by hand (an explicit FALSE
        criticality, an empty list), which L{encodeMessage} never writes.
    """
    return tlv(0x30, b"\x02\x01\x05" + op + tlv(0xA0, b"".join(encodedControls)))


_ENTRY = encodeSearchEntry(b"uid=alice,ou=people,dc=example,dc=com", [
    (b"objectClass", [b"top", b"person", b"inetOrgPerson"]),
    (b"uid", [b"alice"]),
    (b"cn", [b"Alice", b""]),
    (b"jpegPhoto", [b"\xff" * 70000]),
    (b"entryUUID", [b"00010203-0405-0607-0809-0a0b0c0d0e0f"]),
])
_SYNC_INFOS = [
    codec.SyncInfo(codec.NEW_COOKIE, _COOKIE).encode(),
    codec.SyncInfo(codec.REFRESH_DELETE, _COOKIE, refreshDone=False).encode(),
    codec.SyncInfo(codec.REFRESH_PRESENT).encode(),
    codec.SyncInfo(codec.SYNC_ID_SET, _COOKIE, refreshDeletes=True,
                   syncUUIDs=(_UUID,) * 40).encode(),
]

#: Responses the fast path decodes.
RESPONSES = (
    [_message(_ENTRY, controls=c) for c in _CONTROLS]
    + [
        _message(_ENTRY),
        _message(encodeSearchEntry(b"", [])),
        _message(encodeSearchEntry(b"cn=x", [(b"cn", [])])),
        _message(encodeSearchEntry(b"x" * 300, [(b"a" * 200, [b"v"])]), messageId=2**31 - 1),
        _message(encodeSearchEntry(b"cn=x", [(b"cn", [b"x"])]), messageId=128),
        _message(encodeResult(0x65, 0)),
        _message(encodeResult(0x65, 4096, b"dc=example,dc=com", b"e-syncRefreshRequired")),
        _message(encodeResult(0x65, 0), controls=[
            Control(codec.SYNC_DONE, False, codec.SyncDone(_COOKIE, True).encode())]),
        _message(encodeIntermediateResponse()),
        _message(encodeIntermediateResponse(b"1.2.3")),
        _message(encodeIntermediateResponse(value=b"only a value")),
        _message(encodeIntermediateResponse(b"1.2.3", b"")),
    ]
    + [_message(encodeIntermediateResponse(codec.SYNC_INFO.encode(), v)) for v in _SYNC_INFOS]
    + [
        _withControls(_ENTRY, []),
        _withControls(_ENTRY, [encodeSequence([octetString(b"1.2.3"), b"\x01\x01\x00"])]),
        _withControls(_ENTRY, [encodeSequence([octetString(b"1.2.3"), b"\x01\x01\x01",
                                               octetString(b"v")])]),
        _withControls(_ENTRY, [encodeSequence([octetString(b"")])]),
    ]
)

#: Well-formed responses the fast path leaves to ldaptor.
OTHER_RESPONSES = [
    _message(encodeResult(0x65, 10, referrals=[b"ldap://other/"])),
    _message(encodeResult(0x61, 0)),
    _message(encodeResult(0x67, 0)),
    _message(encodeSearchReference([b"ldap://other/dc=example,dc=com"])),
    # An unknown field after the intermediate response's value.
    _message(tlv(0x79, octetString(b"1.2.3", 0x80) + octetString(b"v", 0x81)
                 + octetString(b"x", 0x82))),
    # A control whose fields are in the wrong order.
    _withControls(_ENTRY, [encodeSequence([octetString(b"1.2.3"), octetString(b"v"),
                                           b"\x01\x01\xff"])]),
]


def _ldaptorResponse(pdu: bytes) -> Any:
    """
    @return: what ldaptor's decoder (L{RESPONSE_DECODER}) makes of C{pdu},
        or the exception it raises.
    """
    try:
        message, used = pureber.berDecodeObject(RESPONSE_DECODER, pdu)
    except Exception as e:
        return e
    return message if used == len(pdu) else ValueError("trailing bytes")


class ResponseFastDecodeTests(_SameAsLdaptorMixin, unittest.TestCase):
    """
    L{decodeResponse} decodes the responses of a sync search as ldaptor
    does and leaves the rest to ldaptor.
    """

    fast = staticmethod(decodeResponse)
    ldaptor = staticmethod(_ldaptorResponse)

    def test_handled(self) -> None:
        """
        Search entries (with Sync State and other controls, critical or not,
        with and without values, explicit FALSE criticality, an empty control
        list; empty attribute lists and value sets; long values), search
        results without referral (with a Sync Done control) and intermediate
        responses with and without name and value, are decoded by the fast
        path into what ldaptor decodes.
        """
        for pdu in RESPONSES:
            self.assertTrue(self.assertSameAsLdaptor(pdu), pdu.hex())

    def test_longForm(self) -> None:
        """
        Responses with every length in the four-octet long form are decoded
        by the fast path as their minimal encodings are.
        """
        for pdu in RESPONSES:
            self.assertTrue(_same(decodeResponse(longFormLengths(pdu)), _ldaptorResponse(pdu)),
                            pdu.hex())

    def test_unhandled(self) -> None:
        """
        Results with referrals, other responses, unknown fields and
        controls with their fields out of order are left to ldaptor.
        """
        for pdu in OTHER_RESPONSES:
            self.assertIsNone(decodeResponse(pdu), pdu.hex())

    def test_malformed(self) -> None:
        """
        Every truncation of each response, and random corruptions of one to
        three octets of it, are either decoded as ldaptor decodes them or
        left to ldaptor.
        """
        self.assertMutationsSameAsLdaptor(RESPONSES + OTHER_RESPONSES, 9)


class UpstreamClientDecodingTests(unittest.TestCase):
    """
    The upstream client decodes what arrives in pieces of any size, with
    the fast path and ldaptor's decoder, into the same messages.
    """

    def test_pieces(self) -> None:
        """
        A stream of responses (some for the fast path, some for ldaptor's
        decoder), fed one octet at a time and all at once, gives each
        message, equal to ldaptor's decoding of it, in order.
        """
        pdus = RESPONSES[:4] + OTHER_RESPONSES[:4] + RESPONSES[-6:]
        stream = b"".join(pdus)
        for size in (1, 7, len(stream)):
            client = _UpstreamProtocol()
            received: list[Any] = []
            self.patch(client, "handle", received.append)
            for i in range(0, len(stream), size):
                client.dataReceived(stream[i : i + size])
            self.assertEqual(len(received), len(pdus))
            for message, pdu in zip(received, pdus, strict=True):
                self.assertTrue(_same(message, _ldaptorResponse(pdu)), pdu.hex())
            self.assertEqual(client.buffer, b"")

    def test_reentered(self) -> None:
        """
        Data that arrives while a response is handled (a handler that makes
        the transport deliver more) is decoded after it, in order.
        """
        pdus = RESPONSES[:3]
        client = _UpstreamProtocol()
        received: list[Any] = []

        def handle(message: Any) -> None:
            received.append(message)
            if len(received) == 1:
                client.dataReceived(pdus[2])

        self.patch(client, "handle", handle)
        client.dataReceived(pdus[0] + pdus[1])
        self.assertEqual(len(received), 3)
        for message, pdu in zip(received, [pdus[0], pdus[1], pdus[2]], strict=True):
            self.assertTrue(_same(message, _ldaptorResponse(pdu)), pdu.hex())
        self.assertEqual(client.buffer, b"")


#: Values L{decodeSequence} reads: Sync Request, State and Done controls,
#: a paged-results control, a Password Modify request (tagged fields),
#: empty and long ones; and a nested one (a syncIdSet), left to ldaptor.
SEQUENCES = [
    (codec.SyncRequest(codec.REFRESH_AND_PERSIST, _COOKIE).encode(), ()),
    (codec.SyncRequest(codec.REFRESH_ONLY, None, True).encode(), ()),
    (codec.SyncState(codec.MODIFY, _UUID, _COOKIE).encode(), ()),
    (codec.SyncDone(None, False).encode(), ()),
    (codec.SyncDone(_COOKIE, True).encode(), ()),
    (encodeSequence([b"\x02\x02\x01\x00", octetString(b"")]), ()),
    (encodeSequence([b"\x02\x01\xff", b"\x0a\x01\x80", b"\x01\x01\x00", b"\x01\x01\x05"]), ()),
    (encodeSequence([octetString(b"u", 0x80), octetString(b"old", 0x81),
                     octetString(b"n" * 300, 0x82)]), (0x80, 0x81, 0x82)),
    (encodeSequence([]), ()),
    (encodeSequence([octetString(b"x", 0x80)]), ()),
    (encodeSequence([tlv(0x31, octetString(_UUID))]), ()),
]


def _ldaptorSequence(data: bytes, tags: tuple[int, ...]) -> Any:
    """
    @return: what L{decodeSequence} makes of C{data} without its fast path
        (with ldaptor's decoder), or the exception it raises.
    """
    try:
        with mock.patch.object(_codec, "_flatSequence", lambda data, tags: None):
            return decodeSequence(data, tags)
    except ValueError as e:
        return e


class FlatSequenceTests(unittest.TestCase):
    """
    L{decodeSequence} decodes flat sequences without ldaptor's decoder, into
    what ldaptor's makes of them.
    """

    def test_sameAsLdaptor(self) -> None:
        """
        Each value, its long-form encoding, every truncation and random
        corruptions of it, are decoded by the fast path as by ldaptor's
        decoder, or left to it; the fast path decodes all but the nested
        and mistagged values.
        """
        rng = random.Random(10)
        decoded = 0
        for data, tags in SEQUENCES:
            for variant in [data, longFormLengths(data)] + _mutations(data, rng, 40):
                fast = _codec._flatSequence(variant, tags)
                if fast is not None:
                    decoded += 1
                    self.assertTrue(_same(fast, _ldaptorSequence(variant, tags)), variant.hex())
        for data, tags in SEQUENCES[:-2]:
            self.assertIsNotNone(_codec._flatSequence(data, tags), data.hex())
        for data, tags in SEQUENCES[-2:]:
            self.assertIsNone(_codec._flatSequence(data, tags), data.hex())
        # ldaptor's decoder decodes the nested one, and refuses the other.
        self.assertEqual(len(decodeSequence(*SEQUENCES[-1])), 1)
        self.assertRaises(ValueError, decodeSequence, *SEQUENCES[-2])
        self.assertGreater(decoded, len(SEQUENCES))
