"""
Tests for L{ldapd.dn}: the RFC 4514 string form of distinguished names and
the tree relations between names.
"""

from __future__ import annotations

import random

from twisted.trial import unittest

from ldapd.dn import AVA, DN, RDN, InvalidDN, _Parser, escapeValue


def values(text: str) -> list[list[tuple[str, str]]]:
    """
    Parse a DN into plain lists, for compact assertions.

    @param text: the DN.
    @return: one list of C{(type, value)} pairs per RDN, leaf first.
    """
    return [[(ava.type, ava.value) for ava in rdn] for rdn in DN.parse(text)]


class ParseTests(unittest.TestCase):
    """
    Tests for L{DN.parse} on valid names.
    """

    def test_root(self) -> None:
        """
        The empty string is the root DN: no RDNs, false, and empty as text.
        """
        root = DN.parse("")
        self.assertEqual(root.rdns, ())
        self.assertFalse(root)
        self.assertEqual(str(root), "")

    def test_simple(self) -> None:
        """
        RDNs are separated by commas and listed leaf first; types keep their spelling.
        """
        self.assertEqual(
            values("CN=Alice,dc=example,DC=com"),
            [[("CN", "Alice")], [("dc", "example")], [("DC", "com")]],
        )

    def test_multiValuedRDNWithEscapedCommaAndSpaces(self) -> None:
        """
        A C{+} joins the AVAs of one RDN, an escaped comma belongs to the value,
        and unescaped spaces around separators are dropped, as slapd reads
        C{cn=Foo\\, Bar+uid=x , dc=Example}.
        """
        self.assertEqual(
            values("cn=Foo\\, Bar+uid=x , dc=Example"),
            [[("cn", "Foo, Bar"), ("uid", "x")], [("dc", "Example")]],
        )

    def test_spacesAroundTypeAndEquals(self) -> None:
        """
        Spaces before a type, around C{=} and after a value are not part of the name.
        """
        self.assertEqual(values("  cn = a ,  dc = b "), [[("cn", "a")], [("dc", "b")]])

    def test_innerSpacesKept(self) -> None:
        """
        Spaces inside a value are significant to the parser.
        """
        self.assertEqual(values("cn=a  b"), [[("cn", "a  b")]])

    def test_hexPairs(self) -> None:
        """
        A backslash followed by two hex digits, in either case, is one octet.
        """
        self.assertEqual(values("cn=a\\2Cb\\2c"), [[("cn", "a,b,")]])

    def test_hexPairsFormUTF8(self) -> None:
        """
        Consecutive hex pairs form one UTF-8 encoded character.
        """
        self.assertEqual(values("cn=Caf\\C3\\A9"), [[("cn", "Café")]])

    def test_hexPairsNotUTF8(self) -> None:
        """
        Hex pairs that do not decode as UTF-8 make the name invalid.
        """
        self.assertRaises(InvalidDN, DN.parse, "cn=\\C3")

    def test_escapedSpecials(self) -> None:
        """
        Every special character may be escaped with a backslash.
        """
        self.assertEqual(values('cn=\\"\\+\\,\\;\\<\\>\\=\\\\'), [[("cn", '"+,;<>=\\')]])

    def test_escapedLeadingHashAndSpaces(self) -> None:
        """
        An escaped leading C{#} is a plain character, and escaped leading and
        trailing spaces are kept.
        """
        self.assertEqual(values("cn=\\#a"), [[("cn", "#a")]])
        self.assertEqual(values("cn=\\ a\\ "), [[("cn", " a ")]])

    def test_escapedSpaceBeforeUnescapedOnes(self) -> None:
        """
        Unescaped spaces after an escaped one at the end of a value are dropped.
        """
        self.assertEqual(values("cn=a\\   ,dc=b"), [[("cn", "a ")], [("dc", "b")]])

    def test_unescapedEquals(self) -> None:
        """
        RFC 4514 lets C{=} appear unescaped inside a value, as libldap accepts it.
        """
        self.assertEqual(values("cn=a=b"), [[("cn", "a=b")]])

    def test_innerHash(self) -> None:
        """
        A C{#} after the first character is a plain character.
        """
        self.assertEqual(values("cn=a#b"), [[("cn", "a#b")]])

    def test_hexString(self) -> None:
        """
        A value starting with C{#} is the BER encoding of a string: C{04034a6f65}
        is the OCTET STRING "Joe".
        """
        self.assertEqual(values("cn=#04034a6f65,dc=x"), [[("cn", "Joe")], [("dc", "x")]])

    def test_hexStringOtherStringTypes(self) -> None:
        """
        UTF8String and PrintableString encodings decode too, and spaces around
        a hexstring are dropped.
        """
        self.assertEqual(values("cn=#0c034a6f65"), [[("cn", "Joe")]])
        self.assertEqual(values("cn= #13034A6F65 "), [[("cn", "Joe")]])

    def test_hexStringLongLength(self) -> None:
        """
        A hexstring may use BER's long length form.
        """
        self.assertEqual(values("cn=#048103616263"), [[("cn", "abc")]])

    def test_ldapv2Semicolon(self) -> None:
        """
        The LDAPv2 C{;} separator is accepted, as slapd accepts it.
        """
        self.assertEqual(values("cn=a;dc=b"), [[("cn", "a")], [("dc", "b")]])

    def test_numericOID(self) -> None:
        """
        An attribute type may be a numeric OID.
        """
        self.assertEqual(values("2.5.4.3=a"), [[("2.5.4.3", "a")]])

    def test_typeWithHyphenAndDigits(self) -> None:
        """
        A descr may contain digits and hyphens after its first letter.
        """
        self.assertEqual(values("x-my-attr2=v"), [[("x-my-attr2", "v")]])

    def test_emptyValue(self) -> None:
        """
        RFC 4514's grammar allows an empty value; the schema rejects it when
        the name is normalised (see L{ldapd.schema.Schema.normalizeDN}).
        """
        self.assertEqual(values("cn="), [[("cn", "")]])

    def test_escapedNUL(self) -> None:
        """
        A NUL written as a hex pair is part of the value.
        """
        self.assertEqual(values("cn=a\\00b"), [[("cn", "a\x00b")]])

    def test_nonASCII(self) -> None:
        """
        Non-ASCII characters may be written as they are.
        """
        self.assertEqual(values("cn=Zoë,o=Überall"), [[("cn", "Zoë")], [("o", "Überall")]])

    def test_bytes(self) -> None:
        """
        A name given as bytes is decoded as UTF-8.
        """
        self.assertEqual(DN.parse("cn=Zoë".encode()), DN.parse("cn=Zoë"))

    def test_bytesNotUTF8(self) -> None:
        """
        Bytes that are not UTF-8 are not a name.
        """
        self.assertRaises(InvalidDN, DN.parse, b"cn=\xff")


class PlainFormTests(unittest.TestCase):
    """
    L{DN.parse} splits names of the plain form (no escapes, one AVA per RDN)
    instead of running the full parser; it must agree with the full parser
    on every string, plain or not.
    """

    def parsedBoth(self, text: str) -> None:
        try:
            expected: object = _Parser(text).parse()
        except InvalidDN:
            expected = InvalidDN
        try:
            found: object = list(DN.parse(text).rdns)
        except InvalidDN:
            found = InvalidDN
        self.assertEqual(found, expected, f"for {text!r}")
        if isinstance(found, list):
            self.assertEqual([type(rdn) for rdn in found], [RDN] * len(found))

    def test_examples(self) -> None:
        """
        Names at the edges of the plain form parse as the full parser parses
        them.
        """
        for text in ["uid=u1,ou=people,dc=example,dc=com", "cn=a=b", "cn=a b", "cn= a",
                     "cn=a ", "cn=#a", "cn=a#", "cn=", "cn=a,", ",cn=a", "cn=a,,dc=b",
                     "2.5.4.3=a", "cn-x=a", "1cn=a", "cn=\\2C", "cn=a+sn=b", "cn=a;dc=b",
                     "cn=é", "cn=a\x00", "cn=\ud800", "cn=\x01", " cn=a", "cn =a", "CN=A"]:
            self.parsedBoth(text)

    def test_random(self) -> None:
        """
        Random strings over the characters that matter to the parser.
        """
        rng = random.Random(4514)
        alphabet = "aZ09-.=,+; #\\\"<>\x00é\x01"
        for _ in range(20000):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            self.parsedBoth(text)
            self.parsedBoth("cn=" + text)


class InvalidTests(unittest.TestCase):
    """
    Tests for the strings L{DN.parse} rejects.
    """

    def assertInvalid(self, text: str) -> InvalidDN:
        """
        Assert that C{text} is not a DN.

        @param text: the string.
        @return: the error.
        """
        return self.assertRaises(InvalidDN, DN.parse, text)

    def test_missingValueSeparator(self) -> None:
        """
        An AVA needs a C{=}.
        """
        self.assertInvalid("cn")
        self.assertInvalid("cn a,dc=b")

    def test_missingType(self) -> None:
        """
        An AVA needs a type.
        """
        self.assertInvalid("=x")
        self.assertInvalid("cn=a,=b")

    def test_trailingSeparator(self) -> None:
        """
        A comma or plus must be followed by another AVA.
        """
        self.assertInvalid("cn=a,")
        self.assertInvalid("cn=a+")
        self.assertInvalid("cn=a,,dc=b")
        self.assertInvalid(",cn=a")

    def test_danglingEscape(self) -> None:
        """
        A backslash at the end of the string escapes nothing.
        """
        self.assertInvalid("cn=a\\")

    def test_badEscapes(self) -> None:
        """
        A backslash must be followed by a special character or two hex digits.
        """
        self.assertInvalid("cn=a\\zz")
        self.assertInvalid("cn=a\\4")
        self.assertInvalid("cn=a\\4g")

    def test_unescapedSpecials(self) -> None:
        """
        C{"}, C{<}, C{>} and NUL must be escaped in a value.
        """
        for text in ['cn=a"b', "cn=a<b", "cn=a>", "cn=a\x00b"]:
            self.assertInvalid(text)

    def test_onlySpaces(self) -> None:
        """
        A string of spaces is not the root DN, as slapd rejects it.
        """
        self.assertInvalid("   ")

    def test_badTypes(self) -> None:
        """
        A type is a descr starting with a letter or a numeric OID without
        leading zeros or empty arcs, in ASCII.
        """
        for text in ["01.2=a", "1..2=a", "1.=a", "-cn=a", "cn.x=a", "OID.2.5.4.3=a", "ç=a", "١=a"]:
            self.assertInvalid(text)

    def test_badHexStrings(self) -> None:
        """
        A hexstring needs an even, non-zero number of hex digits encoding a BER
        string whose length matches its content, and nothing after it.
        """
        for text in [
            "cn=#",
            "cn=#0",
            "cn=#zz",
            "cn=#0403",
            "cn=#02010a",
            "cn=#04034a6f65x",
            "cn=##",
        ]:
            self.assertInvalid(text)

    def test_hexStringNotUTF8(self) -> None:
        """
        A hexstring whose content is not UTF-8 is rejected.
        """
        self.assertInvalid("cn=#0401ff")

    def test_messageNamesTheString(self) -> None:
        """
        The error names the string and is a L{ValueError}.
        """
        error = self.assertInvalid("cn=a,")
        self.assertIsInstance(error, ValueError)
        self.assertIn("'cn=a,'", str(error))


class EscapeTests(unittest.TestCase):
    """
    Tests for L{escapeValue} and the string form of names.
    """

    def test_specials(self) -> None:
        """
        The RFC 4514 special characters are escaped with a backslash.
        """
        self.assertEqual(escapeValue('a,b+c"d\\e<f>g;h=i'), 'a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h\\=i')

    def test_leadingAndTrailing(self) -> None:
        """
        A leading space or C{#} and a trailing space are escaped; inner ones are not.
        """
        self.assertEqual(escapeValue(" a # b "), "\\ a # b\\ ")
        self.assertEqual(escapeValue("#a#"), "\\#a#")
        self.assertEqual(escapeValue(" "), "\\ ")

    def test_controlCharacters(self) -> None:
        """
        Control characters are written as hex pairs.
        """
        self.assertEqual(escapeValue("a\nb\x00\x7f"), "a\\0Ab\\00\\7F")

    def test_nonASCIIUnchanged(self) -> None:
        """
        Non-ASCII characters are written as they are.
        """
        self.assertEqual(escapeValue("Zoë"), "Zoë")

    def test_strings(self) -> None:
        """
        An AVA is C{type=escaped value}, an RDN joins its AVAs with C{+}, a DN
        its RDNs with commas.
        """
        ava = AVA("cn", "Foo, Bar")
        rdn = RDN([ava, AVA("uid", "x")])
        self.assertEqual(str(ava), "cn=Foo\\, Bar")
        self.assertEqual(str(rdn), "cn=Foo\\, Bar+uid=x")
        self.assertEqual(repr(rdn), "RDN('cn=Foo\\\\, Bar+uid=x')")
        dn = DN([rdn, RDN([AVA("dc", "example")])])
        self.assertEqual(str(dn), "cn=Foo\\, Bar+uid=x,dc=example")
        self.assertEqual(repr(dn), "DN('cn=Foo\\\\, Bar+uid=x,dc=example')")

    def test_normalisedSpacing(self) -> None:
        """
        The string form of a parsed name drops the spaces around separators and
        writes hex pairs and hexstrings as plain or escaped characters.
        """
        self.assertEqual(
            str(DN.parse(" cn = a\\2Cb + uid=#04034a6f65 , dc = x ")), "cn=a\\,b+uid=Joe,dc=x"
        )

    def test_roundTrip(self) -> None:
        """
        Parsing the string form of a name gives the same values back.
        """
        for value in [
            "a",
            " lead",
            "trail ",
            "#hash",
            "a,b+c",
            'q"<>;=\\',
            "tab\there",
            "Zoë",
            "a\x00b",
            "  ",
        ]:
            dn = DN([RDN([AVA("cn", value)]), RDN([AVA("dc", "x")])])
            self.assertEqual(DN.parse(str(dn)), dn, value)


class RDNTests(unittest.TestCase):
    """
    Tests for L{RDN}.
    """

    def test_empty(self) -> None:
        """
        An RDN needs at least one AVA.
        """
        self.assertRaises(InvalidDN, RDN, [])

    def test_tuple(self) -> None:
        """
        An RDN is a tuple of its AVAs in the order written; comparing order-free
        is the schema's normalisation's job.
        """
        a = RDN([AVA("cn", "a"), AVA("uid", "b")])
        self.assertEqual(list(a), [AVA("cn", "a"), AVA("uid", "b")])
        self.assertEqual(a, RDN([AVA("cn", "a"), AVA("uid", "b")]))
        self.assertNotEqual(a, RDN([AVA("uid", "b"), AVA("cn", "a")]))


class TreeTests(unittest.TestCase):
    """
    Tests for the relations between names: parent, child, isWithin, moved.
    """

    def test_rdn(self) -> None:
        """
        L{DN.rdn} is the leaf RDN; the root has none.
        """
        self.assertEqual(DN.parse("cn=a,dc=b").rdn, RDN([AVA("cn", "a")]))
        self.assertRaises(InvalidDN, lambda: DN().rdn)

    def test_parent(self) -> None:
        """
        The parent drops the leaf RDN; the root is its own parent.
        """
        self.assertEqual(DN.parse("cn=a,dc=b,dc=c").parent(), DN.parse("dc=b,dc=c"))
        self.assertEqual(DN.parse("dc=c").parent(), DN())
        self.assertEqual(DN().parent(), DN())

    def test_child(self) -> None:
        """
        A child adds an RDN at the leaf end.
        """
        child = DN.parse("dc=b").child(RDN([AVA("cn", "a"), AVA("uid", "x")]))
        self.assertEqual(child, DN.parse("cn=a+uid=x,dc=b"))

    def test_isWithin(self) -> None:
        """
        A name is within itself and its ancestors, not within siblings,
        descendants or names sharing only a suffix of RDN text.
        """
        base = DN.parse("dc=example,dc=com")
        self.assertTrue(base.isWithin(base))
        self.assertTrue(DN.parse("cn=a,ou=x,dc=example,dc=com").isWithin(base))
        self.assertFalse(base.isWithin(DN.parse("cn=a,dc=example,dc=com")))
        self.assertFalse(DN.parse("dc=other,dc=com").isWithin(base))
        self.assertFalse(DN.parse("dc=myexample,dc=com").isWithin(base))

    def test_everythingWithinRoot(self) -> None:
        """
        Every name, the root included, is within the root.
        """
        self.assertTrue(DN.parse("cn=a,dc=b").isWithin(DN()))
        self.assertTrue(DN().isWithin(DN()))
        self.assertFalse(DN().isWithin(DN.parse("dc=b")))

    def test_isWithinComparesExactly(self) -> None:
        """
        L{DN.isWithin} compares RDNs as stored: names differing in case are
        related only once normalised.
        """
        self.assertFalse(DN.parse("cn=a,DC=COM").isWithin(DN.parse("dc=com")))

    def test_relativeTo(self) -> None:
        """
        The RDNs between a name and its ancestor, leaf first.
        """
        dn = DN.parse("cn=a,ou=b,dc=c")
        self.assertEqual(
            dn.relativeTo(DN.parse("dc=c")), (RDN([AVA("cn", "a")]), RDN([AVA("ou", "b")]))
        )
        self.assertEqual(dn.relativeTo(dn), ())

    def test_moved(self) -> None:
        """
        Moving replaces the old base with the new one, keeping the RDNs below it.
        """
        dn = DN.parse("cn=a,ou=old,dc=c")
        self.assertEqual(
            dn.moved(DN.parse("ou=old,dc=c"), DN.parse("ou=new,o=d")), DN.parse("cn=a,ou=new,o=d")
        )
        self.assertEqual(dn.moved(dn, DN.parse("cn=z")), DN.parse("cn=z"))


class EqualityTests(unittest.TestCase):
    """
    Tests for the value semantics of L{DN}.
    """

    def test_equalAndHash(self) -> None:
        """
        Names with the same RDNs are equal and hash alike, however they were written.
        """
        a = DN.parse("cn=a , dc=b")
        b = DN.parse("cn=a,dc=b")
        self.assertEqual(a, b)
        self.assertEqual(hash(a), hash(b))
        self.assertEqual(len({a, b}), 1)

    def test_exactComparison(self) -> None:
        """
        Equality compares the stored text: case and AVA order matter.
        """
        self.assertNotEqual(DN.parse("cn=a"), DN.parse("CN=a"))
        self.assertNotEqual(DN.parse("cn=a"), DN.parse("cn=A"))

    def test_notEqualToString(self) -> None:
        """
        A name is never equal to its string form.
        """
        self.assertNotEqual(DN.parse("cn=a"), "cn=a")

    def test_sequence(self) -> None:
        """
        A name has a length and iterates over its RDNs, leaf first.
        """
        dn = DN.parse("cn=a,dc=b")
        self.assertEqual(len(dn), 2)
        self.assertEqual([str(r) for r in dn], ["cn=a", "dc=b"])
        self.assertTrue(dn)


class InScopeTests(unittest.TestCase):
    """
    L{DN.inScope}: the base, one, subtree and children styles.
    """

    def test_styles(self) -> None:
        """
        Each style selects the base, its children, or its subtree with or
        without the base, and nothing outside it.
        """
        base = DN.parse("ou=people,dc=example,dc=com")
        cases = {
            "ou=people,dc=example,dc=com": {"base": True, "one": False, "subtree": True, "children": False},
            "uid=a,ou=people,dc=example,dc=com":
                {"base": False, "one": True, "subtree": True, "children": True},
            "cn=x,uid=a,ou=people,dc=example,dc=com":
                {"base": False, "one": False, "subtree": True, "children": True},
            "ou=groups,dc=example,dc=com": {"base": False, "one": False, "subtree": False, "children": False},
        }
        for text, expected in cases.items():
            for style, result in expected.items():
                self.assertEqual(DN.parse(text).inScope(base, style), result, (text, style))

    def test_unknownStyle(self) -> None:
        """
        An unknown style is refused.
        """
        self.assertRaises(ValueError, DN.parse("dc=com").inScope, DN.parse("dc=com"), "sideways")
