"""
Tests for L{ldapd.filters}: compiling ldaptor's decoded filters and
evaluating them with RFC 4511 §4.5.1.7's three-valued logic, checked against
what slapd answers for the same filters on the same data.
"""

from __future__ import annotations

from typing import Any

from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from twisted.trial import unittest

from ldapd import requests
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.filters import (
    MAX_DEPTH,
    And,
    Equality,
    Filter,
    Not,
    Or,
    Present,
    Substrings,
    Undefined,
    compileFilter,
    throughSearchable,
    withoutAssertionsOn,
)
from ldapd.schema import Schema
from ldapd.testing import parseFilter

#: Built once: the standard schema is immutable in these tests.
SCHEMA = Schema.standard()


def makeEntry(dn: str, attributes: dict[str, Any]) -> Entry:
    """
    @param dn: the entry's name.
    @param attributes: descriptions mapped to a text value or a list of them.
    @return: an entry of the standard schema.
    """
    return Entry(
        DN.parse(dn),
        [
            (name, [v.encode() for v in (value if isinstance(value, list) else [value])])
            for name, value in attributes.items()
        ],
        SCHEMA,
    )


ALICE = makeEntry(
    "uid=alice,ou=people,dc=example,dc=com",
    {
        "objectClass": ["inetOrgPerson", "posixAccount"],
        "uid": "alice",
        "cn": "Alice Smith",
        "cn;lang-en": "Alice",
        "sn": "Smith",
        "uidNumber": "1000",
        "gidNumber": "6",
        "homeDirectory": "/home/alice",
        "telephoneNumber": "+1 555-123-4567",
        "description": "Likes   cheese",
        "mail": "Alice@Example.COM",
        "userPassword": "secret",
        "createTimestamp": "20240101120000+0100",
    },
)

BOB = makeEntry(
    "cn=Bob Jones+uid=bob,ou=people,dc=example,dc=com",
    {"objectClass": "inetOrgPerson", "uid": "bob", "cn": "Bob Jones", "sn": "Jones"},
)

TYMCZAK = makeEntry(
    "cn=Tymczak,ou=people,dc=example,dc=com",
    {
        "objectClass": "organizationalPerson",
        "cn": "Tymczak",
        "sn": "Tymczak",
        "title": "1000",
        "description": "Robert Ashcraft",
    },
)

STAFF = makeEntry(
    "cn=staff,ou=groups,dc=example,dc=com",
    {
        "objectClass": "groupOfNames",
        "cn": "staff",
        "member": [
            "uid=alice,ou=people,dc=example,dc=com",
            "CN=Bob Jones+UID=bob, ou=People,dc=example,dc=com",
        ],
    },
)


def compile(text: str) -> Filter:
    """
    @param text: a filter in RFC 4515 string form.
    @return: the compiled filter.
    """
    return compileFilter(parseFilter(text), SCHEMA)


def match(text: str, entry: Entry = ALICE) -> bool | None:
    """
    @param text: a filter in RFC 4515 string form.
    @param entry: the entry to test.
    @return: C{True}, C{False} or C{None} for Undefined.
    """
    return compile(text).match(entry)


class _Fixed(Filter):
    """
    A filter node with a fixed result, to test the logical operators alone.
    """

    def __init__(self, result: bool | None) -> None:
        self.result = result

    def match(self, entry: Entry) -> bool | None:
        return self.result


class LogicTests(unittest.TestCase):
    """
    Tests for And, Or and Not over True, False and Undefined (C{None}).
    """

    def test_and(self) -> None:
        """
        And is False if any part is, else Undefined if any part is, else True.
        """
        T, F, U = _Fixed(True), _Fixed(False), _Fixed(None)
        for parts, result in [
            ([T, T], True),
            ([T, F], False),
            ([T, U], None),
            ([U, F], False),
            ([U, U], None),
        ]:
            self.assertIs(And(parts).match(ALICE), result, [p.result for p in parts])

    def test_or(self) -> None:
        """
        Or is True if any part is, else Undefined if any part is, else False.
        """
        T, F, U = _Fixed(True), _Fixed(False), _Fixed(None)
        for parts, result in [
            ([F, F], False),
            ([F, T], True),
            ([F, U], None),
            ([U, T], True),
            ([U, U], None),
        ]:
            self.assertIs(Or(parts).match(ALICE), result, [p.result for p in parts])

    def test_not(self) -> None:
        """
        Not swaps True and False and leaves Undefined.
        """
        self.assertIs(Not(_Fixed(True)).match(ALICE), False)
        self.assertIs(Not(_Fixed(False)).match(ALICE), True)
        self.assertIsNone(Not(_Fixed(None)).match(ALICE))

    def test_absoluteTrueAndFalse(self) -> None:
        """
        The empty And is absolute true and the empty Or absolute false (RFC 4526).
        """
        self.assertIs(compileFilter(requests.And(()), SCHEMA).match(ALICE), True)
        self.assertIs(compileFilter(requests.Or(()), SCHEMA).match(ALICE), False)
        notTrue = requests.Not(requests.And(()))
        self.assertIs(compileFilter(notTrue, SCHEMA).match(ALICE), False)

    def test_undefinedInCompositions(self) -> None:
        """
        An assertion on an undefined type is Undefined, and so is its negation;
        it does not stop an Or from being True or an And from being False.
        """
        self.assertIsNone(match("(fooBar=x)"))
        self.assertIsNone(match("(!(fooBar=x))"))
        self.assertIs(match("(|(fooBar=x)(uid=alice))"), True)
        self.assertIsNone(match("(&(fooBar=x)(uid=alice))"))
        self.assertIs(match("(&(fooBar=x)(uid=bob))"), False)

    def test_depth(self) -> None:
        """
        Filters nested deeper than L{MAX_DEPTH} are a protocolError.
        """

        def nested(depth: int) -> Any:
            f: Any = parseFilter("(uid=alice)")
            for _ in range(depth):
                f = requests.Not(f)
            return f

        self.assertIs(compileFilter(nested(MAX_DEPTH), SCHEMA).match(ALICE), True)
        self.assertRaises(
            ldaperrors.LDAPProtocolError, compileFilter, nested(MAX_DEPTH + 1), SCHEMA
        )

    def test_unknownFilterType(self) -> None:
        """
        Something that is not a filter is a protocolError.
        """
        self.assertRaises(ldaperrors.LDAPProtocolError, compileFilter, object(), SCHEMA)


class EqualityTests(unittest.TestCase):
    """
    Tests for equality assertions.
    """

    def test_caseIgnore(self) -> None:
        """
        caseIgnoreMatch ignores case and insignificant spaces.
        """
        self.assertIs(match("(cn=  alice   SMITH )"), True)
        self.assertIs(match("(description=likes cheese)"), True)
        self.assertIs(match("(cn=alicesmith)"), False)

    def test_objectClassSuperclasses(self) -> None:
        """
        An objectClass assertion matches entries of its subclasses too, by
        name or OID and in any case, as slapd's objectSubClassMatch does.
        """
        self.assertIs(match("(objectClass=inetOrgPerson)", BOB), True)
        self.assertIs(match("(objectClass=PERSON)", BOB), True)
        self.assertIs(match("(objectClass=2.5.6.6)", BOB), True)
        self.assertIs(match("(objectClass=top)", BOB), True)
        self.assertIs(match("(objectClass=groupOfNames)", BOB), False)
        self.assertIs(match("(objectClass=inetOrgPerson)", TYMCZAK), False)

    def test_caseExactIA5(self) -> None:
        """
        caseExactIA5Match keeps case.
        """
        self.assertIs(match("(homeDirectory=/home/alice)"), True)
        self.assertIs(match("(homeDirectory=/HOME/alice)"), False)

    def test_telephoneNumber(self) -> None:
        """
        telephoneNumberMatch ignores spaces and hyphens.
        """
        self.assertIs(match("(telephoneNumber=+15551234567)"), True)
        self.assertIs(match("(telephoneNumber=+1 555 123 4567)"), True)

    def test_integer(self) -> None:
        """
        integerMatch compares numbers; an assertion that is not an RFC 4517
        Integer is Undefined, and so is its negation.
        """
        self.assertIs(match("(uidNumber=1000)"), True)
        self.assertIs(match("(uidNumber=100)"), False)
        for text in [
            "(uidNumber=01000)",
            "(uidNumber=abc)",
            "(uidNumber=1000 )",
            "(!(uidNumber=abc))",
        ]:
            self.assertIsNone(match(text), text)

    def test_distinguishedName(self) -> None:
        """
        DN-valued attributes compare normalised names: case, spaces and the
        order of a multi-valued RDN do not matter.
        """
        self.assertIs(match("(member=UID=Alice, OU=people,dc=EXAMPLE,dc=com)", STAFF), True)
        self.assertIs(
            match("(member=uid=BOB+cn=bob jones,ou=people,dc=example,dc=com)", STAFF), True
        )
        self.assertIs(match("(member=uid=carol,ou=people,dc=example,dc=com)", STAFF), False)
        self.assertIsNone(match("(member=not a dn)", STAFF))

    def test_objectClass(self) -> None:
        """
        objectClass values compare as OIDs: by any case of the name or by OID.
        """
        self.assertIs(match("(objectClass=INETORGPERSON)"), True)
        self.assertIs(match("(objectClass=2.16.840.1.113730.3.2.2)"), True)
        self.assertIs(match("(objectClass=groupOfNames)"), False)

    def test_subtypes(self) -> None:
        """
        An assertion on a supertype tests its subtypes: C{name} matches C{cn} and C{sn}.
        """
        self.assertIs(match("(name=smith)"), True)
        self.assertIs(match("(name=alice smith)"), True)
        self.assertIs(match("(cn=smith)"), False)

    def test_options(self) -> None:
        """
        An assertion with options tests only attributes with those options; one
        without tests them all.
        """
        self.assertIs(match("(cn;lang-en=alice)"), True)
        self.assertIs(match("(cn;LANG-EN=alice smith)"), False)
        self.assertIs(match("(cn;lang-de=alice)"), False)
        self.assertIs(match("(cn=alice)"), True)

    def test_absentAttribute(self) -> None:
        """
        An entry without the attribute does not match.
        """
        self.assertIs(match("(mail=alice@example.com)", BOB), False)
        self.assertIs(match("(!(mail=alice@example.com))", BOB), True)

    def test_noEqualityRule(self) -> None:
        """
        A type without an equality rule makes the assertion Undefined.
        """
        self.assertIsNone(match("(jpegPhoto=x)"))

    def test_compiled(self) -> None:
        """
        The compiled node carries the type, options and normalised key, for
        backends to plan index lookups.
        """
        f = compile("(CommonName;Lang-EN=  Alice )")
        self.assertIsInstance(f, Equality)
        self.assertIs(f.type, SCHEMA.attributeType("cn"))
        self.assertEqual(f.options, ("lang-en",))
        self.assertEqual(f.key, "alice")
        self.assertIsInstance(compile("(fooBar=x)"), Undefined)


class PresentTests(unittest.TestCase):
    """
    Tests for presence assertions.
    """

    def test_present(self) -> None:
        """
        An attribute is present when the entry has a value of it or a subtype,
        with at least the options asked for.
        """
        self.assertIs(match("(mail=*)"), True)
        self.assertIs(match("(mail=*)", BOB), False)
        self.assertIs(match("(name=*)", BOB), True)
        self.assertIs(match("(cn;lang-en=*)"), True)
        self.assertIs(match("(cn;lang-en=*)", BOB), False)
        self.assertIsInstance(compile("(mail=*)"), Present)

    def test_undefinedType(self) -> None:
        """
        Presence of an undefined type is Undefined, so its negation matches
        nothing, as slapd answers C{(!(fooBar=*))}.
        """
        self.assertIsNone(match("(fooBar=*)"))
        self.assertIsNone(match("(!(fooBar=*))"))


class SubstringsTests(unittest.TestCase):
    """
    Tests for substrings assertions.
    """

    def test_pieces(self) -> None:
        """
        The initial piece starts the value, the final one ends it, and the
        middle ones occur in order between them, without case.
        """
        for text, result in [
            ("(cn=ali*)", True),
            ("(cn=*SMITH)", True),
            ("(cn=*ice sm*)", True),
            ("(cn=a*i*s*h)", True),
            ("(cn=*x*)", False),
            ("(sn=*m*t*)", True),
            ("(sn=*t*m*)", False),
            ("(cn=smith*)", False),
        ]:
            self.assertIs(match(text), result, text)

    def test_noOverlap(self) -> None:
        """
        The pieces may not overlap.
        """
        self.assertIs(match("(sn=sm*ith)"), True)
        self.assertIs(match("(sn=smi*ith)"), False)
        self.assertIs(match("(sn=smi*i*th)"), False)

    def test_insignificantSpaces(self) -> None:
        """
        Runs of spaces in a value and in a piece count as one.
        """
        self.assertIs(match("(description=*es   ch*)"), True)
        self.assertIs(match("(description=likes c*)"), True)

    def test_spacesNextToWildcards(self) -> None:
        """
        A space next to a wildcard is significant and cannot be shared by two
        pieces, as slapd evaluates: C{(cn=* *)} asks for an inner space and
        C{(cn=ali *)} for a whole word.
        """
        for text, entry, result in [
            ("(cn=* *)", ALICE, True),
            ("(cn=* *)", TYMCZAK, False),
            ("(cn=* * *)", ALICE, False),
            ("(cn=alice *)", ALICE, True),
            ("(cn=ali *)", ALICE, False),
            ("(cn=* smith)", ALICE, True),
            ("(cn=alice * smith)", ALICE, False),
            ("(cn=alice *smith)", ALICE, True),
            ("(cn= *)", ALICE, False),
        ]:
            self.assertIs(match(text, entry), result, text)

    def test_telephoneNumber(self) -> None:
        """
        Telephone number pieces ignore spaces and hyphens.
        """
        self.assertIs(match("(telephoneNumber=*555-12*)"), True)
        self.assertIs(match("(telephoneNumber=+1555*)"), True)
        self.assertIs(match("(telephoneNumber=*51 2*)"), True)

    def test_caseExactIA5(self) -> None:
        """
        caseExactIA5SubstringsMatch keeps case.
        """
        group = makeEntry("cn=g", {"cn": "g", "memberUid": "Alice"})
        self.assertIs(match("(memberUid=Al*)", group), True)
        self.assertIs(match("(memberUid=al*)", group), False)

    def test_undefined(self) -> None:
        """
        A type without a substrings rule, or a piece invalid for the rule,
        makes the assertion Undefined.
        """
        self.assertIsNone(match("(uidNumber=1*)"))
        self.assertIsNone(match("(homeDirectory=/home*)"))
        self.assertIsNone(match("(mail=é*)"))
        self.assertIsNone(match("(fooBar=a*)"))

    def test_compiled(self) -> None:
        """
        The compiled node carries the normalised pieces, a space next to a
        wildcard kept as one.
        """
        f = compile("(cn=Al*I*  Ce*SMITH)")
        self.assertIsInstance(f, Substrings)
        self.assertEqual((f.initial, f.any, f.final), ("al", ["i", " ce"], "smith"))

    def test_misplacedPieces(self) -> None:
        """
        An initial piece after another piece, two final pieces, or a piece
        after the final one is a protocolError.
        """
        initial = pureldap.LDAPFilter_substrings_initial
        middle = pureldap.LDAPFilter_substrings_any
        final = pureldap.LDAPFilter_substrings_final
        for pieces in [
            [middle("a"), initial("b")],
            [final("a"), final("b")],
            [final("a"), middle("b")],
        ]:
            f = pureldap.LDAPFilter_substrings(type="cn", substrings=pieces)
            self.assertRaises(ldaperrors.LDAPProtocolError, compileFilter, f, SCHEMA)


class OrderingTests(unittest.TestCase):
    """
    Tests for greaterOrEqual and lessOrEqual assertions.
    """

    def test_integer(self) -> None:
        """
        Integers order numerically, not as text.
        """
        for text, result in [
            ("(uidNumber>=999)", True),
            ("(uidNumber>=1000)", True),
            ("(uidNumber>=1001)", False),
            ("(uidNumber>=200)", True),
            ("(uidNumber<=1000)", True),
            ("(uidNumber<=999)", False),
            ("(uidNumber>=-5)", True),
        ]:
            self.assertIs(match(text), result, text)

    def test_generalizedTimeZones(self) -> None:
        """
        Times order as instants: 12:00+0100 is 11:00Z.
        """
        for text, result in [
            ("(createTimestamp>=20240101110000Z)", True),
            ("(createTimestamp>=20240101110001Z)", False),
            ("(createTimestamp<=20240101120000+0100)", True),
            ("(createTimestamp<=20240101105959Z)", False),
            ("(createTimestamp<=2024010106-05)", True),
            ("(createTimestamp>=2024010112Z)", False),
        ]:
            self.assertIs(match(text), result, text)

    def test_undefined(self) -> None:
        """
        A type without an ordering rule or an invalid assertion is Undefined.
        """
        self.assertIsNone(match("(cn>=m)"))
        self.assertIsNone(match("(uidNumber>=abc)"))
        self.assertIsNone(match("(createTimestamp>=20240101120000+2400)"))

    def test_invalidStoredValue(self) -> None:
        """
        A stored value invalid for the rule makes the assertion Undefined
        rather than False.
        """
        entry = makeEntry("cn=x", {"cn": "x", "uidNumber": "x"})
        self.assertIsNone(match("(uidNumber>=1)", entry))

    def test_absent(self) -> None:
        """
        An entry without the attribute does not match.
        """
        self.assertIs(match("(uidNumber>=1)", BOB), False)


class ApproxTests(unittest.TestCase):
    """
    Tests for approximate assertions (Soundex of every word).
    """

    def test_soundsLike(self) -> None:
        """
        Every word of the assertion must sound like a word of the value.
        """
        for text, entry, result in [
            ("(sn~=smyth)", ALICE, True),
            ("(cn~=alise)", ALICE, True),
            ("(cn~=alise smyth)", ALICE, True),
            ("(cn~=alise jones)", ALICE, False),
            ("(sn~=jones)", ALICE, False),
            ("(description~=robbert)", TYMCZAK, True),
            ("(cn~=tymzak)", TYMCZAK, True),
        ]:
            self.assertIs(match(text, entry), result, text)

    def test_nonString(self) -> None:
        """
        Values whose keys are not text compare by key.
        """
        self.assertIs(match("(uidNumber~=1000)"), True)
        self.assertIs(match("(uidNumber~=1001)"), False)

    def test_undefined(self) -> None:
        """
        An undefined type or one without an equality rule is Undefined.
        """
        self.assertIsNone(match("(fooBar~=x)"))
        self.assertIsNone(match("(jpegPhoto~=x)"))


class ExtensibleTests(unittest.TestCase):
    """
    Tests for extensible match assertions (RFC 4511 §4.5.1.7.7), compared
    with slapd's answers.
    """

    def test_rule(self) -> None:
        """
        A named or numbered rule replaces the type's own.
        """
        self.assertIs(match("(cn:caseExactMatch:=Alice Smith)"), True)
        self.assertIs(match("(cn:caseExactMatch:=alice smith)"), False)
        self.assertIs(match("(cn:2.5.13.5:=Alice Smith)"), True)

    def test_typeOnly(self) -> None:
        """
        Without a rule, the type's equality rule is used.
        """
        self.assertIs(match("(sn:=SMITH)"), True)
        self.assertIs(match("(sn:=jones)"), False)

    def test_dnAttributes(self) -> None:
        """
        With C{:dn:}, the AVAs of the entry's DN are tested too.
        """
        self.assertIs(match("(ou:dn:=People)"), True)
        self.assertIs(match("(ou:=People)"), False)
        self.assertIs(match("(dc:dn:=example)", STAFF), True)
        self.assertIs(match("(uid:dn:=bob)", BOB), True)
        self.assertIs(match("(uid:dn:=bob)", STAFF), False)
        self.assertIs(match("(name:dn:=people)"), True)

    def test_dnAttributesWithoutType(self) -> None:
        """
        With C{:dn:} and no type, the DN's AVAs the rule is usable with are
        tested: caseIgnoreMatch applies to C{ou} but not to C{dc} (IA5).
        """
        self.assertIs(match("(:dn:caseIgnoreMatch:=people)"), True)
        self.assertIs(match("(:dn:caseIgnoreMatch:=example)"), False)
        self.assertIs(match("(:dn:caseIgnoreIA5Match:=example)"), True)

    def test_bitAnd(self) -> None:
        """
        1.2.840.113556.1.4.803 is true when every bit of the assertion is set.
        """
        self.assertIs(match("(gidNumber:1.2.840.113556.1.4.803:=6)"), True)
        self.assertIs(match("(gidNumber:1.2.840.113556.1.4.803:=2)"), True)
        self.assertIs(match("(gidNumber:1.2.840.113556.1.4.803:=7)"), False)

    def test_bitOr(self) -> None:
        """
        1.2.840.113556.1.4.804 is true when any bit of the assertion is set.
        """
        self.assertIs(match("(gidNumber:1.2.840.113556.1.4.804:=3)"), True)
        self.assertIs(match("(gidNumber:1.2.840.113556.1.4.804:=9)"), False)

    def test_bitRuleUndefined(self) -> None:
        """
        A bit rule with a non-integer assertion, or on a type that is not an
        integer, is Undefined.
        """
        self.assertIsNone(match("(gidNumber:1.2.840.113556.1.4.803:=x)"))
        self.assertIsNone(match("(title:1.2.840.113556.1.4.803:=8)", TYMCZAK))

    def test_bitRuleWithoutType(self) -> None:
        """
        A bit rule without a type tests the integer attributes only: C{title:
        1000} does not match.
        """
        self.assertIs(match("(:1.2.840.113556.1.4.803:=1000)"), True)
        self.assertIs(match("(:1.2.840.113556.1.4.803:=1000)", TYMCZAK), False)

    def test_orderingRule(self) -> None:
        """
        With an ordering rule the assertion is true for values less than it.
        """
        self.assertIs(match("(uidNumber:integerOrderingMatch:=2000)"), True)
        self.assertIs(match("(uidNumber:integerOrderingMatch:=1000)"), False)

    def test_withoutType(self) -> None:
        """
        A rule without a type tests every attribute the rule is usable with, as
        slapd: caseIgnoreMatch does not read userPassword (an octet string) or
        uidNumber (an integer).
        """
        self.assertIs(match("(:caseIgnoreMatch:=smith)"), True)
        self.assertIs(match("(:caseIgnoreMatch:=+1 555-123-4567)"), True)
        self.assertIs(match("(:caseIgnoreMatch:=secret)"), False)
        self.assertIs(match("(:octetStringMatch:=secret)"), True)
        self.assertIs(match("(:caseIgnoreMatch:=1000)"), False)
        self.assertIs(match("(:caseIgnoreMatch:=1000)", TYMCZAK), True)
        self.assertIs(match("(:integerMatch:=1000)"), True)
        self.assertIs(match("(:integerMatch:=1000)", TYMCZAK), False)

    def test_unusableRule(self) -> None:
        """
        A rule not usable with the type is Undefined, and so is its negation,
        as slapd answers.
        """
        for text in [
            "(uidNumber:caseIgnoreMatch:=1000)",
            "(!(uidNumber:caseIgnoreMatch:=1000))",
            "(userPassword:caseIgnoreMatch:=SECRET)",
            "(cn:caseIgnoreSubstringsMatch:=alice smith)",
        ]:
            self.assertIsNone(match(text), text)

    def test_undefined(self) -> None:
        """
        An unknown rule, an undefined type, a type without an equality rule or
        an assertion invalid for the rule is Undefined.
        """
        for text in [
            "(cn:fooMatch:=x)",
            "(fooBar:caseIgnoreMatch:=x)",
            "(jpegPhoto:=x)",
            "(uidNumber:integerMatch:=x)",
        ]:
            self.assertIsNone(match(text), text)

    def test_neitherTypeNorRule(self) -> None:
        """
        An extensible match needs a type or a rule: protocolError otherwise.
        """
        f = pureldap.LDAPFilter_extensibleMatch(
            matchingRule=None,
            type=None,
            matchValue=pureldap.LDAPMatchingRuleAssertion_matchValue(value="x"),
            dnAttributes=None,
        )
        self.assertRaises(ldaperrors.LDAPProtocolError, compileFilter, f, SCHEMA)


class WithoutAssertionsOnTests(unittest.TestCase):
    """
    Tests for L{withoutAssertionsOn}: what a client may not read, it may not test.
    """

    password = frozenset({SCHEMA.attributeType("userPassword")})

    def hidden(self, text: str, types: frozenset[Any] = password) -> Filter:
        """
        @return: the compiled filter with assertions on C{types} made Undefined.
        """
        return withoutAssertionsOn(compile(text), types)

    def test_assertion(self) -> None:
        """
        An assertion on a hidden type becomes Undefined.
        """
        self.assertIs(match("(userPassword=secret)"), True)
        f = self.hidden("(userPassword=secret)")
        self.assertIsInstance(f, Undefined)
        self.assertIsNone(f.match(ALICE))
        self.assertIsNone(self.hidden("(userPassword=*)").match(ALICE))

    def test_unchanged(self) -> None:
        """
        A filter without such assertions is returned as it is.
        """
        f = compile("(&(cn=alice*)(!(uid=bob)))")
        self.assertIs(withoutAssertionsOn(f, self.password), f)

    def test_nested(self) -> None:
        """
        Assertions inside And, Or and Not are replaced.
        """
        self.assertIs(self.hidden("(|(userPassword=secret)(uid=alice))").match(ALICE), True)
        self.assertIsNone(self.hidden("(&(userPassword=secret)(uid=alice))").match(ALICE))
        self.assertIsNone(self.hidden("(!(userPassword=nope))").match(ALICE))

    def test_supertype(self) -> None:
        """
        An assertion on a supertype of a hidden type would read it, so it
        becomes Undefined too; other subtypes of that supertype stay testable.
        """
        cn = frozenset({SCHEMA.attributeType("cn")})
        self.assertIs(match("(name=alice smith)"), True)
        self.assertIsNone(self.hidden("(name=alice smith)", cn).match(ALICE))
        self.assertIs(self.hidden("(sn=smith)", cn).match(ALICE), True)

    def test_extensibleWithoutType(self) -> None:
        """
        A rule without a type no longer tests the hidden attributes.
        """
        self.assertIs(match("(:octetStringMatch:=secret)"), True)
        self.assertIs(self.hidden("(:octetStringMatch:=secret)").match(ALICE), False)
        ou = frozenset({SCHEMA.attributeType("ou")})
        self.assertIs(self.hidden("(:dn:caseIgnoreMatch:=people)", ou).match(ALICE), False)

    def test_extensibleWithType(self) -> None:
        """
        An extensible match on a hidden type becomes Undefined.
        """
        self.assertIsNone(self.hidden("(userPassword:octetStringMatch:=secret)").match(ALICE))


class ThroughSearchableTests(unittest.TestCase):
    """
    Tests for L{throughSearchable}: a filter tests an entry only through the
    attributes the client may search, as slapd's C{test_ava_filter} does.
    """

    def visible(self, text: str, *hidden: str) -> bool | None:
        """
        @return: how the filter evaluates for a client that may not search
            the C{hidden} attribute types of L{ALICE}.
        """
        types = frozenset(SCHEMA.attributeType(name) for name in hidden)
        return throughSearchable(compile(text), types).match(ALICE.without(types))

    def test_supertypeThroughHiddenSubtype(self) -> None:
        """
        A supertype assertion that only a hidden subtype's value satisfies
        is Undefined, never true, and its negation Undefined too, never true.
        """
        self.assertIs(match("(name=smith)"), True)
        self.assertIsNone(self.visible("(name=smith)", "sn"))
        self.assertIsNone(self.visible("(name=smi*)", "sn"))
        self.assertIsNone(self.visible("(!(name=smith))", "sn"))
        self.assertIsNone(self.visible("(name=nobody)", "sn"))

    def test_supertypeThroughVisibleSubtype(self) -> None:
        """
        A value of a visible subtype still makes the assertion true.
        """
        self.assertIs(self.visible("(name=alice smith)", "sn"), True)
        self.assertIs(self.visible("(|(name=smith)(uid=alice))", "sn"), True)

    def test_hiddenType(self) -> None:
        """
        An assertion on a hidden type itself is Undefined.
        """
        self.assertIsNone(self.visible("(sn=smith)", "sn"))
        self.assertIsNone(self.visible("(sn=*)", "sn"))
        self.assertIsNone(self.visible("(entryDN=uid=alice,ou=people,dc=example,dc=com)",
                                       "entryDN"))

    def test_unchanged(self) -> None:
        """
        A filter that reaches no hidden type is returned as it is.
        """
        f = compile("(&(cn=alice*)(!(uid=bob)))")
        self.assertIs(throughSearchable(f, frozenset({SCHEMA.attributeType("sn")})), f)

    def test_extensibleWithoutType(self) -> None:
        """
        A rule without a type no longer tests the hidden attributes.
        """
        self.assertIs(self.visible("(:caseIgnoreMatch:=smith)"), True)
        self.assertIs(self.visible("(:caseIgnoreMatch:=smith)", "sn"), False)
