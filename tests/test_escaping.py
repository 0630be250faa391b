"""
Tests for L{ldapd.escaping}: untrusted values cannot change the structure of
a filter or a DN.
"""

from __future__ import annotations

from ldaptor import ldapfilter
from twisted.trial import unittest

from ldapd.dn import DN
from ldapd.escaping import (
    buildDN,
    buildFilter,
    escapeControl,
    escapeDNValue,
    escapeFilterValue,
)
from ldapd.filters import compileFilter
from ldapd.schema import Schema
from ldapd.testing import parseFilter

#: The classic injection strings, and what each must stay: one literal value.
INJECTIONS = [
    "*)(uid=*))(|(uid=*",
    "*",
    "admin)(|(password=*)",
    "x\x00y",
    ")(objectClass=*",
    "\\2a",
    "é*(ü)",
]


class EscapeFilterValueTests(unittest.TestCase):
    """
    Values escaped for RFC 4515 filters.
    """

    def test_specials(self) -> None:
        """
        C{*}, C{(}, C{)}, C{\\} and NUL are written as hex escapes; other
        characters, including non-ASCII UTF-8, stay as they are.
        """
        self.assertEqual(escapeFilterValue("a*b(c)d\\e\x00f"), "a\\2ab\\28c\\29d\\5ce\\00f")
        self.assertEqual(escapeFilterValue("Zoë"), "Zoë")
        self.assertEqual(escapeFilterValue(b"a*b"), "a\\2ab")
        self.assertEqual(escapeFilterValue(bytearray(b"a*b")), "a\\2ab")

    def test_notUTF8(self) -> None:
        """
        Bytes that are not UTF-8 are escaped byte by byte, so they survive.
        """
        self.assertEqual(escapeFilterValue(b"\xff\xfe(x"), "\\ff\\fe\\28x")

    def test_injections(self) -> None:
        """
        Each classic injection string, put into a filter template, parses
        to a single equality assertion whose value is exactly the input.
        """
        for value in INJECTIONS:
            text = buildFilter("(uid={})", value)
            parsed = ldapfilter.parseFilter(text)
            self.assertEqual(type(parsed).__name__, "LDAPFilter_equalityMatch", text)
            self.assertEqual(parsed.assertionValue.value, value, text)

    def test_templateStructureKept(self) -> None:
        """
        In a compound template the injected value cannot add clauses: the
        filter keeps its two parts and matches only the literal value.
        """
        schema = Schema.standard()
        text = buildFilter("(&(uid={})(objectClass=person))", "*)(uid=*))(|(uid=*")
        compiled = compileFilter(parseFilter(text), schema)
        self.assertEqual(len(compiled.parts), 2)

    def test_placeholderCount(self) -> None:
        """
        A template whose placeholders do not match the values is refused.
        """
        self.assertRaises(ValueError, buildFilter, "(uid={})", "a", "b")
        self.assertRaises(ValueError, buildFilter, "(&(uid={})(cn={}))", "a")


class EscapeDNValueTests(unittest.TestCase):
    """
    Values escaped for RFC 4514 DNs.
    """

    def test_injections(self) -> None:
        """
        Each injection string (and DN separators) stays one attribute value
        of one RDN.
        """
        for value in INJECTIONS + ["a,ou=admins", "x+cn=y", " lead", "trail ", "#hash", 'q"<>;=']:
            if "\x00" in value:
                continue
            dn = DN.parse(buildDN("uid={},ou=people,dc=example,dc=com", value))
            self.assertEqual(len(dn), 4, value)
            self.assertEqual(dn.rdn[0].value, value, value)

    def test_notUTF8(self) -> None:
        """
        Bytes that are not UTF-8 become hex pairs.
        """
        self.assertEqual(escapeDNValue(b"\xff,"), "\\FF\\2C")

    def test_nul(self) -> None:
        """
        NUL is escaped as a hex pair.
        """
        self.assertEqual(escapeDNValue("a\x00b"), "a\\00b")


class EscapeControlTests(unittest.TestCase):
    """
    Tests for L{escapeControl}.
    """

    def test_everyControlCharacter(self) -> None:
        """
        Every C0 and C1 control character, DEL and Unicode's line and
        paragraph separators are written as C{\\xNN} or C{\\uNNNN}: the
        result holds no character that C{str.splitlines} splits on.
        """
        controls = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0)])) + "\u2028\u2029"
        escaped = escapeControl("a" + controls + "b")
        self.assertEqual(escaped.splitlines(), [escaped])
        self.assertTrue(escaped.isprintable())
        for c in controls:
            self.assertNotIn(c, escapeControl("a" + c + "b"))
            self.assertNotIn(c, escapeControl(c + "é", multiline=c not in "\t\n"))
        self.assertEqual(escapeControl("a\r\n\x1b[2J\u2028"), "a\\x0d\\x0a\\x1b[2J\\u2028")

    def test_printableUnchanged(self) -> None:
        """
        Printable text, backslashes and non-ASCII letters included, is
        returned as it is.
        """
        for text in ["", "cn=Zoë,dc=example", "a\\b", "(uid=*)", "日本語"]:
            self.assertEqual(escapeControl(text), text)

    def test_multiline(self) -> None:
        """
        With C{multiline}, LF and TAB are kept and every other control
        character is escaped.
        """
        self.assertEqual(escapeControl("a\tb\nc\rd\x85", multiline=True), "a\tb\nc\\x0dd\\x85")
