"""
Tests for L{ldapd.requests}, ldapd's request types, and their decoding at the
wire edge (L{ldapd._codec.decodeMessage}).
"""

from __future__ import annotations

from ldaptor import ldapfilter
from ldaptor.protocols import pureber, pureldap
from ldaptor.protocols.ldap import ldaperrors
from twisted.trial import unittest

from ldapd._codec import (
    decodeMessage,
    encodeSequence,
    filterFromLdaptor,
    filterToLdaptor,
    integer,
    octetString,
)
from ldapd.requests import (
    ANY,
    CANCEL,
    FINAL,
    INITIAL,
    PASSWORD_MODIFY,
    START_TLS,
    AddRequest,
    And,
    CancelRequest,
    Equality,
    ExtendedRequest,
    Extensible,
    InvalidFilter,
    ModifyRequest,
    Not,
    Or,
    PasswordModifyRequest,
    Present,
    RawControl,
    StartTLSRequest,
    Substrings,
    filterText,
    parseFilter,
)

#: Filters in string form, each as ldapd writes it back.
FILTERS = [
    "(uid=alice)",
    "(objectClass=*)",
    "(cn=a*)",
    "(cn=*b*c*)",
    "(cn=*z)",
    "(cn=a*b*c)",
    "(age>=3)",
    "(age<=9)",
    "(cn~=smith)",
    "(cn:dn:2.5.13.5:=Foo)",
    "(:caseExactMatch:=x)",
    "(member:=cn=a)",
    "(&(uid=a)(|(sn=b)(!(sn=c))))",
    "(&)",
    "(|)",
    "(cn=\\28x\\29\\2a\\5c\\00)",
    "(cn=caf\xe9)",
]


class FilterTextTests(unittest.TestCase):
    """
    L{parseFilter} reads RFC 4515 filters and L{filterText} writes them.
    """

    def test_roundTrip(self) -> None:
        """
        Every kind of filter is written back as it was read.
        """
        for text in FILTERS:
            with self.subTest(text):
                self.assertEqual(filterText(parseFilter(text)), text)

    def test_sameAsLdaptor(self) -> None:
        """
        What L{parseFilter} reads is what ldaptor's parser reads (without
        the absolute true and false filters and extensible matches, which
        it cannot parse).
        """
        for text in FILTERS:
            if ":" in text or text in ("(&)", "(|)"):
                continue
            with self.subTest(text):
                self.assertEqual(parseFilter(text),
                                 filterFromLdaptor(ldapfilter.parseFilter(text)))

    def test_values(self) -> None:
        """
        Escapes are decoded into the assertion values; substrings keep their
        pieces in order; the outer parentheses may be left out.
        """
        self.assertEqual(parseFilter("(cn=\\2a\\00)"), Equality(b"cn", b"*\x00"))
        self.assertEqual(parseFilter("(cn=a*b*c)"),
                         Substrings(b"cn", ((INITIAL, b"a"), (ANY, b"b"), (FINAL, b"c"))))
        self.assertEqual(parseFilter("objectClass=*"), Present(b"objectClass"))
        self.assertEqual(parseFilter("(cn:dn:=x)"), Extensible(None, b"cn", b"x", True))
        self.assertEqual(parseFilter("(!(&(a=1)(|)))"),
                         Not(And((Equality(b"a", b"1"), Or(())))))

    def test_invalid(self) -> None:
        """
        Malformed filters are refused, saying where.
        """
        for text in ["(cn=a", "((cn=a))", "(=a)", "(cn=\\zz)", "(cn=\\2)", "(cn=a)(sn=b)",
                     "(:=x)", "(c n=x)"]:
            with self.subTest(text):
                self.assertRaises(InvalidFilter, parseFilter, text)

    def test_mask(self) -> None:
        """
        Values asserted on masked attributes are written C{***}.
        """
        f = parseFilter("(&(userPassword=s3cret)(uid=a*))")
        self.assertEqual(filterText(f, lambda a: a.lower() == "userpassword"),
                         "(&(userPassword=***)(uid=a*))")

    def test_toLdaptor(self) -> None:
        """
        A filter sent upstream encodes as ldaptor's own parse of its text.
        """
        for text in FILTERS:
            if ":" in text or text in ("(&)", "(|)"):
                continue
            with self.subTest(text):
                self.assertEqual(filterToLdaptor(parseFilter(text)).toWire(),
                                 ldapfilter.parseFilter(text).toWire())


def _pdu(request: object, controls: object = None) -> bytes:
    return pureldap.LDAPMessage(request, id=7, controls=controls).toWire()


class DecodeMessageTests(unittest.TestCase):
    """
    L{decodeMessage} turns each request into ldapd's types once, checking
    what its operation requires of its fields.
    """

    def test_add(self) -> None:
        """
        An Add's attributes come with their values.
        """
        message = decodeMessage(_pdu(pureldap.LDAPAddRequest(entry="cn=x,o=y", attributes=[
            (pureldap.LDAPAttributeDescription("cn"),
             pureber.BERSet([pureldap.LDAPAttributeValue("x")]))])))
        self.assertEqual(message.request, AddRequest(b"cn=x,o=y", (("cn", (b"x",)),)))
        self.assertEqual(message.messageId, 7)

    def test_addWithoutValues(self) -> None:
        """
        An attribute without values is a protocolError naming it.
        """
        pdu = _pdu(pureldap.LDAPAddRequest(entry="cn=x,o=y", attributes=[
            (pureldap.LDAPAttributeDescription("cn"), pureber.BERSet([]))]))
        e = self.assertRaises(ldaperrors.LDAPProtocolError, decodeMessage, pdu)
        self.assertIn("no values for attribute type cn", e.message)

    def test_modify(self) -> None:
        """
        A Modify's changes name their operation.
        """
        pdu = _pdu(pureldap.LDAPModifyRequest(object="cn=x", modification=[
            pureber.BERSequence([pureber.BEREnumerated(3), pureber.BERSequence([
                pureldap.LDAPAttributeDescription("n"),
                pureber.BERSet([pureldap.LDAPAttributeValue("1")])])])]))
        self.assertEqual(decodeMessage(pdu).request,
                         ModifyRequest(b"cn=x", (("increment", "n", (b"1",)),)))

    def test_passwordModify(self) -> None:
        """
        A Password Modify's value is decoded once, into its fields.
        """
        value = encodeSequence([octetString(b"uid=a", 0x80), octetString(b"new", 0x82)])
        request = decodeMessage(_pdu(pureldap.LDAPExtendedRequest(
            requestName=PASSWORD_MODIFY, requestValue=value))).request
        self.assertEqual(request, PasswordModifyRequest(PASSWORD_MODIFY, value, b"uid=a", None,
                                                        b"new"))

    def test_passwordModifyMalformed(self) -> None:
        """
        A Password Modify value that is not the RFC 3062 SEQUENCE is a
        protocolError.
        """
        self.assertRaises(ldaperrors.LDAPProtocolError, decodeMessage, _pdu(
            pureldap.LDAPExtendedRequest(requestName=PASSWORD_MODIFY, requestValue=b"\x04\x00")))

    def test_cancel(self) -> None:
        """
        A Cancel names the message id it cancels; an out-of-range one is a
        protocolError.
        """
        request = decodeMessage(_pdu(pureldap.LDAPExtendedRequest(
            requestName=CANCEL, requestValue=encodeSequence([integer(5)])))).request
        self.assertIsInstance(request, CancelRequest)
        self.assertEqual(request.messageId, 5)  # type: ignore[attr-defined]
        self.assertRaises(ldaperrors.LDAPProtocolError, decodeMessage, _pdu(
            pureldap.LDAPExtendedRequest(requestName=CANCEL,
                                         requestValue=encodeSequence([integer(-1)]))))

    def test_extended(self) -> None:
        """
        StartTLS has its own type, which cannot be abandoned; an unknown
        extended request keeps its name and value for its handler.
        """
        start = decodeMessage(_pdu(pureldap.LDAPExtendedRequest(requestName=START_TLS))).request
        self.assertIsInstance(start, StartTLSRequest)
        self.assertFalse(start.abandonable)
        other = decodeMessage(_pdu(pureldap.LDAPExtendedRequest(
            requestName="1.2.3.4", requestValue=b"x"))).request
        self.assertEqual(other, ExtendedRequest("1.2.3.4", b"x"))
        self.assertTrue(other.abandonable)

    def test_controls(self) -> None:
        """
        Controls come as the client sent them, the criticality a boolean.
        """
        message = decodeMessage(_pdu(pureldap.LDAPDelRequest(entry="cn=x"),
                                     [("1.2.3", True, b"v"), ("1.2.4", None, None)]))
        self.assertEqual(message.controls,
                         (RawControl("1.2.3", True, b"v"), RawControl("1.2.4", False, None)))
