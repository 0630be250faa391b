"""
Tests for L{ldapd.schema}: the RFC 4512 description parser and schema files,
attribute types and object classes, the matching rules' normalisation and the
normalisation of DNs.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from twisted.trial import unittest

from ldapd.dn import DN, InvalidDN
from ldapd.schema import RULES, InvalidValue, Schema, SchemaError
from ldapd.schema.matching import prepareString, soundex, substringPiece
from ldapd.schema.parser import parseDescription, readSchemaFile

#: Built once: the standard schema is immutable in these tests.
SCHEMA = Schema.standard()


def key(rule: str, value: bytes) -> object:
    """
    Normalise a value with a named rule of the standard schema.

    @param rule: the rule's name.
    @param value: the raw value.
    @return: the rule's key.
    """
    return SCHEMA.applyRule(RULES[rule.lower()], value)


def writeSchemaFile(case: unittest.TestCase, text: str) -> Path:
    """
    Write a schema file in a temporary directory removed after the test.

    @param case: the running test.
    @param text: the file's content.
    @return: its path.
    """
    directory = tempfile.mkdtemp()
    case.addCleanup(shutil.rmtree, directory)
    path = Path(directory) / "test.schema"
    path.write_text(text, encoding="utf-8")
    return path


class ParseDescriptionTests(unittest.TestCase):
    """
    Tests for L{parseDescription}.
    """

    def test_attributeType(self) -> None:
        """
        The OID, quoted strings, names of rules and syntaxes, and flags are read.
        """
        d = parseDescription(
            "( 2.5.4.3 NAME 'cn' DESC 'RFC4519: common name' SUP name "
            "EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} SINGLE-VALUE )"
        )
        self.assertEqual(
            d,
            {
                "OID": "2.5.4.3",
                "NAME": ["cn"],
                "DESC": "RFC4519: common name",
                "SUP": ["name"],
                "EQUALITY": "caseIgnoreMatch",
                "SYNTAX": "1.3.6.1.4.1.1466.115.121.1.15{32768}",
                "SINGLE-VALUE": True,
            },
        )

    def test_lists(self) -> None:
        """
        Parenthesised lists of names and C{$}-separated OID lists become lists.
        """
        d = parseDescription(
            "( 2.5.6.6 NAME ( 'person' 'human' ) SUP top STRUCTURAL "
            "MUST ( sn $ cn ) MAY ( userPassword $ telephoneNumber ) )"
        )
        self.assertEqual(d["NAME"], ["person", "human"])
        self.assertEqual(d["MUST"], ["sn", "cn"])
        self.assertEqual(d["MAY"], ["userPassword", "telephoneNumber"])
        self.assertIs(d["STRUCTURAL"], True)

    def test_extensions(self) -> None:
        """
        C{X-} extensions are lists of strings.
        """
        d = parseDescription(
            "( 1.2.3 NAME 'x' SYNTAX 1.2 X-ORIGIN ( 'a' 'b c' ) X-ORDERED 'VALUES' )"
        )
        self.assertEqual(d["X-ORIGIN"], ["a", "b c"])
        self.assertEqual(d["X-ORDERED"], ["VALUES"])

    def test_quotedEscapes(self) -> None:
        """
        In a quoted string C{\\27} is a quote and C{\\5C} (either case) a backslash.
        """
        d = parseDescription("( 1.2.3 DESC 'it\\27s a \\5c and \\5C' )")
        self.assertEqual(d["DESC"], "it's a \\ and \\")

    def test_dollarInsideQuotes(self) -> None:
        """
        A C{$} or parenthesis inside a quoted string belongs to the string.
        """
        d = parseDescription("( 1.2.3 DESC 'a $ (b)' )")
        self.assertEqual(d["DESC"], "a $ (b)")

    def test_errors(self) -> None:
        """
        Malformed descriptions raise L{SchemaError}.
        """
        for text in [
            "1.2.3 NAME 'x'",
            "( 1.2.3 NAME 'x'",
            "( )",
            "( 1.2.3 DESC 'unterminated )",
            "( 1.2.3 DESC )",
            "( 1.2.3 NAME ( 'a' 'b' )",
            "( 1.2.3 DESC ( 'a' 'b' ) )",
            "( 1.2.3 NAME x' )",
        ]:
            self.assertRaises(SchemaError, parseDescription, text)


class ReadSchemaFileTests(unittest.TestCase):
    """
    Tests for L{readSchemaFile}.
    """

    def write(self, text: str) -> Path:
        """
        @param text: the content of a schema file.
        @return: its path.
        """
        return writeSchemaFile(self, text)

    def test_definitions(self) -> None:
        """
        Definitions are joined with their continuation lines, comments and blank
        lines are skipped, keys are case-insensitive, and each definition names
        the line it starts on.
        """
        path = self.write(
            "# comment\n"
            "\n"
            "attributeTypes: ( 1.2.3 NAME 'a'\n"
            "  SYNTAX 1.2 )\n"
            "# between\n"
            "objectclasses: ( 1.2.4 NAME 'b'\n"
            "\tMAY a )\n"
        )
        self.assertEqual(
            list(readSchemaFile(path)),
            [
                ("attributeTypes", "( 1.2.3 NAME 'a' SYNTAX 1.2 )", f"{path}:3"),
                ("objectClasses", "( 1.2.4 NAME 'b' MAY a )", f"{path}:6"),
            ],
        )

    def test_continuationFirst(self) -> None:
        """
        A continuation line before any definition is an error naming the line.
        """
        path = self.write("# x\n  ( 1.2.3 )\n")
        error = self.assertRaises(SchemaError, list, readSchemaFile(path))
        self.assertEqual(error.where, f"{path}:2")

    def test_unknownKey(self) -> None:
        """
        A line that is not a definition is an error naming the line.
        """
        path = self.write(
            "attributeTypes: ( 1.2.3 NAME 'a' SYNTAX 1.2 )\nattributetype ( 1.2.4 )\n"
        )
        error = self.assertRaises(SchemaError, list, readSchemaFile(path))
        self.assertEqual(error.where, f"{path}:2")
        self.assertIn(f"{path}:2: expected", str(error))


class SchemaTests(unittest.TestCase):
    """
    Tests for L{Schema} lookups and definitions.
    """

    def test_standard(self) -> None:
        """
        The standard schema holds core, cosine, inetOrgPerson and NIS definitions.
        """
        for name in ["top", "person", "inetOrgPerson", "posixAccount", "groupOfNames", "dcObject"]:
            self.assertIsNotNone(SCHEMA.objectClass(name), name)
        for name in ["objectClass", "cn", "mail", "uidNumber", "createTimestamp", "entryUUID"]:
            self.assertIsNotNone(SCHEMA.attributeType(name), name)

    def test_attributeTypeLookup(self) -> None:
        """
        A type is found by any of its names or its OID, in any case; its
        primary name is the first.
        """
        cn = SCHEMA.attributeType("cn")
        self.assertIsNotNone(cn)
        for name in ["CN", "commonName", "COMMONNAME", "2.5.4.3"]:
            self.assertIs(SCHEMA.attributeType(name), cn)
        self.assertEqual(cn.name, "cn")
        self.assertIsNone(SCHEMA.attributeType("fooBar"))
        self.assertIsNone(SCHEMA.attributeType("cn;lang-en"))

    def test_inheritance(self) -> None:
        """
        A subtype inherits its supertype's matching rules and syntax.
        """
        cn = SCHEMA.attributeType("cn")
        name = SCHEMA.attributeType("name")
        self.assertIs(cn.sup, name)
        self.assertEqual(cn.equality.name, "caseIgnoreMatch")
        self.assertEqual(cn.substr.name, "caseIgnoreSubstringsMatch")
        self.assertEqual(cn.syntax, name.syntax)

    def test_syntaxLengthBound(self) -> None:
        """
        A syntax's length bound is not part of the syntax OID.
        """
        self.assertEqual(SCHEMA.attributeType("name").syntax, "1.3.6.1.4.1.1466.115.121.1.15")

    def test_flagsAndUsage(self) -> None:
        """
        SINGLE-VALUE, NO-USER-MODIFICATION and USAGE are read; operational
        types are those whose usage is not userApplications.
        """
        created = SCHEMA.attributeType("createTimestamp")
        self.assertTrue(created.singleValue)
        self.assertTrue(created.noUserModification)
        self.assertTrue(created.operational)
        self.assertEqual(created.usage, "directoryOperation")
        self.assertFalse(SCHEMA.attributeType("cn").operational)
        self.assertFalse(SCHEMA.attributeType("cn").singleValue)

    def test_singleValueNotInherited(self) -> None:
        """
        SINGLE-VALUE is a property of one type, not inherited by subtypes (RFC 4512 §4.1.2).
        """
        schema = Schema()
        schema.addAttributeType(
            "( 1.1 NAME 'base' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )"
        )
        sub = schema.addAttributeType("( 1.2 NAME 'sub' SUP base )")
        self.assertFalse(sub.singleValue)
        self.assertEqual(sub.equality.name, "caseIgnoreMatch")

    def test_overrideRule(self) -> None:
        """
        A subtype may name its own matching rule instead of the inherited one.
        """
        schema = Schema()
        schema.addAttributeType(
            "( 1.1 NAME 'base' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )"
        )
        sub = schema.addAttributeType("( 1.2 NAME 'sub' SUP base EQUALITY caseExactMatch )")
        self.assertEqual(sub.equality.name, "caseExactMatch")

    def test_subtypes(self) -> None:
        """
        The subtypes of C{name} include itself, C{cn} and C{sn}, not unrelated types.
        """
        names = {t.name for t in SCHEMA.subtypes(SCHEMA.attributeType("name"))}
        self.assertTrue({"name", "cn", "sn", "givenName", "o", "ou"} <= names)
        self.assertNotIn("uid", names)
        self.assertNotIn("mail", names)
        self.assertEqual(
            SCHEMA.subtypes(SCHEMA.attributeType("uid")), {SCHEMA.attributeType("uid")}
        )

    def test_subtypesAfterAddition(self) -> None:
        """
        A type added later is among the subtypes of its supertype.
        """
        schema = Schema()
        base = schema.addAttributeType("( 1.1 NAME 'base' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )")
        self.assertEqual(schema.subtypes(base), {base})
        sub = schema.addAttributeType("( 1.2 NAME 'sub' SUP base )")
        self.assertEqual(schema.subtypes(base), {base, sub})

    def test_objectClasses(self) -> None:
        """
        Object classes are found by name or OID and know their kind,
        superclasses and required and allowed types.
        """
        person = SCHEMA.objectClass("PERSON")
        self.assertIs(SCHEMA.objectClass("2.5.6.6"), person)
        self.assertEqual(person.kind, "STRUCTURAL")
        self.assertEqual([oc.name for oc in person.sup], ["top"])
        self.assertEqual({at.name for at in person.must}, {"cn", "sn"})
        self.assertIn(SCHEMA.attributeType("userPassword"), person.may)
        self.assertEqual(SCHEMA.objectClass("top").kind, "ABSTRACT")
        self.assertEqual(SCHEMA.objectClass("posixAccount").kind, "AUXILIARY")
        self.assertEqual(SCHEMA.objectClass("inetOrgPerson").sup[0].name, "organizationalPerson")
        self.assertIsNone(SCHEMA.objectClass("fooClass"))

    def test_definitionsInOrder(self) -> None:
        """
        L{Schema.attributeTypes} and L{Schema.objectClasses} list definitions
        in the order they were loaded, and are copies.
        """
        types = SCHEMA.attributeTypes
        self.assertEqual(types[0].name, "objectClass")
        types.clear()
        self.assertTrue(SCHEMA.attributeTypes)
        self.assertEqual(SCHEMA.objectClasses[0].name, "top")

    def test_definitionKept(self) -> None:
        """
        Each definition keeps its description text, for cn=Subschema.
        """
        self.assertIn("NAME 'person'", SCHEMA.objectClass("person").definition)
        self.assertIn("2.5.4.3", SCHEMA.attributeType("cn").definition)

    def test_errors(self) -> None:
        """
        Duplicate names or OIDs, unknown supertypes, rules, classes or types,
        and types with neither SYNTAX nor SUP are refused.
        """
        schema = Schema()
        schema.addAttributeType("( 1.1 NAME 'a' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )")
        for text in [
            "( 1.1 NAME 'other' SYNTAX 1.2 )",
            "( 1.2 NAME 'A' SYNTAX 1.2 )",
            "( 1.3 NAME 'b' SUP nothing )",
            "( 1.4 NAME 'c' EQUALITY noSuchMatch SYNTAX 1.2 )",
            "( 1.5 NAME 'd' )",
        ]:
            self.assertRaises(SchemaError, schema.addAttributeType, text)
        for text in [
            "( 2.1 NAME 'x' SUP nothing )",
            "( 2.2 NAME 'y' MUST nothing )",
            "( 2.3 NAME 'z' MAY ( a $ nothing ) )",
        ]:
            self.assertRaises(SchemaError, schema.addObjectClass, text)

    def test_loadFileError(self) -> None:
        """
        A broken definition in a file is reported with the file and line it starts on.
        """
        path = writeSchemaFile(
            self,
            "attributeTypes: ( 1.1 NAME 'a' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n\n"
            "attributeTypes: ( 1.2 NAME 'b'\n  SUP nothing )\n",
        )
        error = self.assertRaises(SchemaError, Schema().loadFile, path)
        self.assertEqual(error.where, f"{path}:3")
        self.assertIn("unknown SUP nothing", str(error))

    def test_extraFiles(self) -> None:
        """
        L{Schema.standard} loads extra files after the standard ones, which they may use.
        """
        path = writeSchemaFile(
            self,
            "attributeTypes: ( 1.3.6.1.4.1.99999.1 NAME 'shoeSize' SUP name )\n"
            "objectClasses: ( 1.3.6.1.4.1.99999.2 NAME 'shod' SUP top AUXILIARY MAY shoeSize )\n",
        )
        schema = Schema.standard([path])
        self.assertIs(schema.attributeType("shoeSize").sup, schema.attributeType("name"))
        self.assertEqual(schema.objectClass("shod").may, (schema.attributeType("shoeSize"),))

    def test_resolveOID(self) -> None:
        """
        objectIdentifierMatch's key is the OID of a named class, type or rule,
        whatever the case, and the lower-cased text otherwise.
        """
        self.assertEqual(SCHEMA.resolveOID("inetOrgPerson"), "2.16.840.1.113730.3.2.2")
        self.assertEqual(SCHEMA.resolveOID("COMMONNAME"), "2.5.4.3")
        self.assertEqual(SCHEMA.resolveOID("caseIgnoreMatch"), "2.5.13.2")
        self.assertEqual(SCHEMA.resolveOID("2.5.6.6"), "2.5.6.6")
        self.assertEqual(SCHEMA.resolveOID("Unknown"), "unknown")

    def test_normalizeValueWithoutRule(self) -> None:
        """
        A type without an equality rule compares values as octet strings.
        """
        photo = SCHEMA.attributeType("jpegPhoto")
        self.assertIsNone(photo.equality)
        self.assertEqual(SCHEMA.normalizeValue(photo, b"\xff\xd8 X"), b"\xff\xd8 X")

    def test_equalityKey(self) -> None:
        """
        L{Schema.equalityKey} is L{Schema.normalizeValue}'s equality key,
        taken from what L{Schema.checkValue} found for the type when the
        value is one it checked lately, and made otherwise; a value that
        does not conform is refused either way. Adding a type or a class
        forgets what was checked.
        """
        schema = Schema.standard()
        cn = schema.attributeType("cn")
        schema.checkValue(cn, b"  Ann  Example ")
        for value in (b"  Ann  Example ", b"Bob"):
            self.assertEqual(schema.equalityKey(cn, value), schema.normalizeValue(cn, value))
        schema._checked[cn][b"Bob"] = "from the check"
        self.assertEqual(schema.equalityKey(cn, b"Bob"), "from the check")
        self.assertEqual(schema.checkValue(cn, b"Bob"), "from the check")
        schema.addObjectClass("( 1.3.6.1.4.1.99999.2.1 NAME 'testChecked' SUP top AUXILIARY )")
        self.assertEqual(schema.equalityKey(cn, b"Bob"), "bob")
        created = schema.attributeType("createTimestamp")
        self.assertRaises(InvalidValue, schema.equalityKey, created, b"yesterday")

    def test_normalizeValueKinds(self) -> None:
        """
        L{Schema.normalizeValue} uses the rule of the kind asked for.
        """
        created = SCHEMA.attributeType("createTimestamp")
        when = datetime(2024, 1, 1, 11, tzinfo=timezone.utc)
        self.assertEqual(SCHEMA.normalizeValue(created, b"20240101120000+0100", "ordering"), when)
        cn = SCHEMA.attributeType("cn")
        self.assertEqual(SCHEMA.normalizeValue(cn, b"  A  B ", "substr"), "a b")


class NormalizeDNTests(unittest.TestCase):
    """
    Tests for L{Schema.normalizeDN}: two DNs are equal in LDAP exactly when
    their normalised forms are equal.
    """

    def assertSameDN(self, a: str, b: str) -> None:
        """
        Assert that two names normalise to the same DN.
        """
        self.assertEqual(SCHEMA.normalizeDN(DN.parse(a)), SCHEMA.normalizeDN(DN.parse(b)))

    def assertInvalid(self, text: str) -> None:
        """
        Assert that a name parses but cannot be normalised.
        """
        self.assertRaises(InvalidDN, SCHEMA.normalizeDN, DN.parse(text))

    def test_form(self) -> None:
        """
        Types become lower-case primary names and values their equality keys.
        """
        self.assertEqual(
            str(
                SCHEMA.normalizeDN(
                    DN.parse("CommonName=  Alice   SMITH ,2.5.4.11=People,DC=Example")
                )
            ),
            "cn=alice smith,ou=people,dc=example",
        )

    def test_caseAndSpaces(self) -> None:
        """
        caseIgnoreMatch values compare without case and insignificant spaces.
        """
        self.assertSameDN(
            "cn=Alice  Smith,dc=EXAMPLE,dc=com", "CN = alice smith , DC=example,dc=COM"
        )

    def test_caseExactIA5(self) -> None:
        """
        A value whose rule is case-sensitive keeps its case.
        """
        self.assertNotEqual(
            SCHEMA.normalizeDN(DN.parse("homeDirectory=/Home")),
            SCHEMA.normalizeDN(DN.parse("homeDirectory=/home")),
        )

    def test_multiValuedRDNOrder(self) -> None:
        """
        The AVAs of a multi-valued RDN compare in any order.
        """
        self.assertSameDN("uid=alice+cn=Alice,dc=x", "cn=ALICE+UID=alice,dc=x")

    def test_escapesAndHexString(self) -> None:
        """
        Escaped, hex-pair and hexstring spellings of a value are the same name.
        """
        self.assertSameDN("cn=a\\,b", "cn=a\\2Cb")
        self.assertSameDN("cn=#04034a6f65", "cn=joe")

    def test_telephoneNumber(self) -> None:
        """
        telephoneNumberMatch ignores spaces and hyphens in names too.
        """
        self.assertSameDN("telephoneNumber=\\+1 555-1234", "telephoneNumber=\\2B15551234")

    def test_dnValuedValue(self) -> None:
        """
        A DN-valued attribute in an RDN is compared as a normalised DN.
        """
        self.assertSameDN("seeAlso=cn\\=X\\, dc\\=Y", "seeAlso=CN\\=x\\,DC\\=y")

    def test_integer(self) -> None:
        """
        integerMatch values are normalised, and invalid integers are refused.
        """
        self.assertEqual(str(SCHEMA.normalizeDN(DN.parse("uidNumber=7"))), "uidnumber=7")
        self.assertInvalid("uidNumber=007")
        self.assertInvalid("uidNumber=abc")

    def test_generalizedTime(self) -> None:
        """
        Times in different zones naming the same instant are the same value.
        """
        self.assertSameDN(
            "createTimestamp=20240101120000\\+0100", "createTimestamp=20240101110000Z"
        )

    def test_undefinedType(self) -> None:
        """
        An undefined attribute type makes the name invalid.
        """
        self.assertInvalid("fooBar=x,dc=example")

    def test_emptyValue(self) -> None:
        """
        An empty value makes the name invalid whatever the syntax, as slapd
        answers invalidDNSyntax for C{cn=}, C{mail=}, C{userPassword=} and C{seeAlso=}.
        """
        for text in ["cn=,dc=example", "mail=", "userPassword=", "seeAlso=", "telephoneNumber="]:
            self.assertInvalid(text)

    def test_sameTypeTwice(self) -> None:
        """
        One attribute type twice in an RDN, under any of its names, is refused
        as slapd refuses it; different types are fine.
        """
        self.assertInvalid("cn=a+cn=b")
        self.assertInvalid("cn=a+commonName=b,dc=x")
        self.assertEqual(len(SCHEMA.normalizeDN(DN.parse("cn=a+sn=a")).rdn), 2)

    def test_root(self) -> None:
        """
        The root DN normalises to itself.
        """
        self.assertEqual(SCHEMA.normalizeDN(DN()), DN())

    def test_sharedSuperiors(self) -> None:
        """
        Names that share their superiors' RDNs, written in any case,
        normalise each RDN as on its first sight, before and after the
        table of normalised RDNs fills; an RDN that cannot be normalised is
        refused each time it is seen.
        """
        schema = Schema.standard()
        for i in range(5000):
            self.assertEqual(
                str(schema.normalizeDN(DN.parse(f"uid=User{i},OU=People,dc=Example,dc=com"))),
                f"uid=user{i},ou=people,dc=example,dc=com")
        for _ in range(2):
            self.assertRaises(InvalidDN, schema.normalizeDN, DN.parse("cn=a+cn=b,ou=people"))


class StringRuleTests(unittest.TestCase):
    """
    Tests for the string matching rules and L{prepareString} (RFC 4518).
    """

    def test_caseIgnore(self) -> None:
        """
        caseIgnoreMatch ignores case, leading and trailing space, and the length
        of inner runs of space.
        """
        self.assertEqual(key("caseIgnoreMatch", b"  Alice \t  SMITH  "), "alice smith")
        self.assertEqual(key("caseIgnoreMatch", b"alice smith"), "alice smith")
        self.assertNotEqual(key("caseIgnoreMatch", b"alicesmith"), "alice smith")

    def test_unicode(self) -> None:
        """
        Values are NFKC-normalised and case-folded: full-width letters, a
        no-break space and the long s compare as their plain forms.
        """
        self.assertEqual(key("caseIgnoreMatch", "ＡＢＣ".encode()), "abc")
        self.assertEqual(key("caseIgnoreMatch", "a\u00a0b".encode()), "a b")
        self.assertEqual(
            key("caseIgnoreMatch", "Café".encode()), key("caseIgnoreMatch", "CAFE\u0301".encode())
        )

    def test_caseExact(self) -> None:
        """
        caseExactMatch keeps case but not insignificant spaces.
        """
        self.assertEqual(key("caseExactMatch", b" Alice  Smith "), "Alice Smith")
        self.assertNotEqual(key("caseExactMatch", b"alice"), key("caseExactMatch", b"Alice"))

    def test_notUTF8(self) -> None:
        """
        A value that is not UTF-8 is invalid for the Directory String rules.
        """
        self.assertRaises(InvalidValue, key, "caseIgnoreMatch", b"\xff")

    def test_ia5(self) -> None:
        """
        The IA5 rules take ASCII only; caseIgnoreIA5Match ignores case,
        caseExactIA5Match does not.
        """
        self.assertEqual(key("caseIgnoreIA5Match", b"Bob@Example.COM"), "bob@example.com")
        self.assertEqual(key("caseExactIA5Match", b" /Home/bob "), "/Home/bob")
        self.assertRaises(InvalidValue, key, "caseIgnoreIA5Match", "é@x".encode())

    def test_prepareString(self) -> None:
        """
        L{prepareString} folds case only when asked.
        """
        self.assertEqual(prepareString("  A\n B ", True), "a b")
        self.assertEqual(prepareString("  A\n B ", False), "A B")


class OtherRuleTests(unittest.TestCase):
    """
    Tests for the non-string matching rules.
    """

    def test_telephoneNumber(self) -> None:
        """
        telephoneNumberMatch ignores spaces and hyphens.
        """
        self.assertEqual(
            key("telephoneNumberMatch", b"+1 555-123-4567"),
            key("telephoneNumberMatch", b"+15551234567"),
        )
        self.assertNotEqual(
            key("telephoneNumberMatch", b"+1 555 1234"), key("telephoneNumberMatch", b"+1 555 1235")
        )

    def test_numericString(self) -> None:
        """
        numericStringMatch ignores spaces and takes digits only.
        """
        self.assertEqual(key("numericStringMatch", b" 12 34 "), "1234")
        for value in [b"", b"  ", b"12a", b"\xd9\xa1"]:
            self.assertRaises(InvalidValue, key, "numericStringMatch", value)

    def test_integer(self) -> None:
        """
        integerMatch takes RFC 4517 Integers: no sign but a minus, no leading
        zeros, no negative zero, no surrounding space (as slapd).
        """
        self.assertEqual(key("integerMatch", b"0"), 0)
        self.assertEqual(key("integerMatch", b"-42"), -42)
        self.assertEqual(
            key("integerMatch", b"123456789012345678901234567890"), 123456789012345678901234567890
        )
        for value in [
            b"",
            b"-",
            b"-0",
            b"007",
            b"+7",
            b" 7",
            b"7 ",
            b"1.0",
            b"1e3",
            b"0x10",
            b"1_000",
        ]:
            self.assertRaises(InvalidValue, key, "integerMatch", value)

    def test_integerOrdering(self) -> None:
        """
        integerOrderingMatch orders numerically, not as text.
        """
        self.assertLess(key("integerOrderingMatch", b"9"), key("integerOrderingMatch", b"10"))
        self.assertLess(key("integerOrderingMatch", b"-10"), key("integerOrderingMatch", b"-9"))

    def test_boolean(self) -> None:
        """
        booleanMatch takes exactly C{TRUE} and C{FALSE}.
        """
        self.assertIs(key("booleanMatch", b"TRUE"), True)
        self.assertIs(key("booleanMatch", b"FALSE"), False)
        for value in [b"true", b"True", b"1", b""]:
            self.assertRaises(InvalidValue, key, "booleanMatch", value)

    def test_generalizedTimeForms(self) -> None:
        """
        Minutes, seconds and a fraction are optional; a fraction applies to the
        last unit given; a comma may start it.
        """
        noon = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
        for value in [b"2024010112Z", b"202401011200Z", b"20240101120000Z", b"20240101120000.0Z"]:
            self.assertEqual(key("generalizedTimeMatch", value), noon, value)
        self.assertEqual(
            key("generalizedTimeMatch", b"2024010112.5Z"), noon + timedelta(minutes=30)
        )
        self.assertEqual(
            key("generalizedTimeMatch", b"202401011200.5Z"), noon + timedelta(seconds=30)
        )
        self.assertEqual(
            key("generalizedTimeMatch", b"20240101120000,25Z"), noon + timedelta(seconds=0.25)
        )

    def test_generalizedTimeZones(self) -> None:
        """
        A time with an offset is the UTC instant it names.
        """
        self.assertEqual(
            key("generalizedTimeMatch", b"20240101120000+0130"),
            key("generalizedTimeMatch", b"20240101103000Z"),
        )
        self.assertEqual(
            key("generalizedTimeMatch", b"20240101120000-05"),
            key("generalizedTimeMatch", b"20240101170000Z"),
        )
        self.assertEqual(
            key("generalizedTimeMatch", b"20240101010000+0200"),
            key("generalizedTimeMatch", b"20231231230000Z"),
        )

    def test_generalizedTimeOrderingAcrossZones(self) -> None:
        """
        generalizedTimeOrderingMatch orders instants, not text: 12:00+0100 is
        before 11:30Z.
        """
        self.assertLess(
            key("generalizedTimeOrderingMatch", b"20240101120000+0100"),
            key("generalizedTimeOrderingMatch", b"20240101113000Z"),
        )

    def test_leapSecond(self) -> None:
        """
        A leap second (seconds 60) is valid and is the start of the next minute.
        """
        self.assertEqual(
            key("generalizedTimeMatch", b"20161231235960Z"),
            datetime(2017, 1, 1, tzinfo=timezone.utc),
        )

    def test_generalizedTimeInvalid(self) -> None:
        """
        A time needs a zone and a valid date, hour and offset (slapd refuses
        C{+2400} and C{+0160}).
        """
        for value in [
            b"20240101120000",
            b"20240132120000Z",
            b"20240101250000Z",
            b"20240101120000.Z",
            b"20240101120000+2400",
            b"20240101120000+0160",
            b"20240101120000+1",
            b"2024-01-01T12:00:00Z",
        ]:
            self.assertRaises(InvalidValue, key, "generalizedTimeMatch", value)

    def test_distinguishedName(self) -> None:
        """
        distinguishedNameMatch compares normalised DNs; a string that is not a
        DN is invalid.
        """
        self.assertEqual(
            key("distinguishedNameMatch", b"UID=Bob , DC=Example"),
            key("distinguishedNameMatch", b"uid=bob,dc=example"),
        )
        self.assertRaises(InvalidValue, key, "distinguishedNameMatch", b"cn=a,")
        self.assertRaises(InvalidValue, key, "distinguishedNameMatch", b"fooBar=x")

    def test_uniqueMember(self) -> None:
        """
        uniqueMemberMatch compares the DN and the optional bit-string UID.
        """
        self.assertEqual(
            key("uniqueMemberMatch", b"CN=A,dc=x#'0101'B"),
            key("uniqueMemberMatch", b"cn=a,dc=x#'0101'B"),
        )
        self.assertNotEqual(
            key("uniqueMemberMatch", b"cn=a,dc=x#'0101'B"), key("uniqueMemberMatch", b"cn=a,dc=x")
        )

    def test_objectIdentifier(self) -> None:
        """
        objectIdentifierMatch compares OIDs, names resolved; an empty value is invalid.
        """
        self.assertEqual(
            key("objectIdentifierMatch", b"Person"), key("objectIdentifierMatch", b"2.5.6.6")
        )
        self.assertRaises(InvalidValue, key, "objectIdentifierMatch", b"")

    def test_uuid(self) -> None:
        """
        UUIDMatch ignores case and takes only the RFC 4122 string form.
        """
        self.assertEqual(
            key("UUIDMatch", b"597AE2F6-16A6-1027-98F4-ABCDEFABCDEF"),
            "597ae2f6-16a6-1027-98f4-abcdefabcdef",
        )
        self.assertRaises(InvalidValue, key, "UUIDMatch", b"597ae2f616a6102798f4abcdefabcdef")

    def test_octetString(self) -> None:
        """
        octetStringMatch compares bytes exactly.
        """
        self.assertEqual(key("octetStringMatch", b" Secret "), b" Secret ")

    def test_rulesTable(self) -> None:
        """
        L{RULES} holds each rule under its lower-case name and its OID, and
        describes it as RFC 4512 does.
        """
        rule = RULES["caseignorematch"]
        self.assertIs(RULES["2.5.13.2"], rule)
        self.assertEqual(rule.kind, "equality")
        self.assertEqual(
            rule.describe(),
            "( 2.5.13.2 NAME 'caseIgnoreMatch' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
        )
        self.assertNotIn("caseIgnoreMatch", RULES)


class SubstringPieceTests(unittest.TestCase):
    """
    Tests for L{substringPiece}: a space next to a wildcard is significant.
    """

    def piece(self, rule: str, value: bytes) -> object:
        """
        @return: the key of a substrings assertion piece under the named rule.
        """
        return substringPiece(RULES[rule.lower()], value)

    def test_noBoundarySpace(self) -> None:
        """
        A piece without spaces at its ends is normalised like a value.
        """
        self.assertEqual(self.piece("caseIgnoreSubstringsMatch", b"Bob  JONES"), "bob jones")

    def test_boundarySpaces(self) -> None:
        """
        Spaces at either end of a piece are kept as one.
        """
        self.assertEqual(self.piece("caseIgnoreSubstringsMatch", b"Bob  "), "bob ")
        self.assertEqual(self.piece("caseIgnoreSubstringsMatch", b"\t Jones"), " jones")
        self.assertEqual(self.piece("caseExactIA5SubstringsMatch", b" /Home "), " /Home ")

    def test_onlySpaces(self) -> None:
        """
        A piece of spaces only is one space.
        """
        self.assertEqual(self.piece("caseIgnoreSubstringsMatch", b"   "), " ")

    def test_spacelessRules(self) -> None:
        """
        Rules that ignore spaces altogether keep none.
        """
        self.assertEqual(self.piece("telephoneNumberSubstringsMatch", b" 555-12 "), "55512")
        self.assertEqual(self.piece("numericStringSubstringsMatch", b" 12 "), "12")

    def test_invalid(self) -> None:
        """
        A piece invalid for the rule is refused.
        """
        self.assertRaises(InvalidValue, self.piece, "caseIgnoreIA5SubstringsMatch", "é".encode())


class SoundexTests(unittest.TestCase):
    """
    Tests for L{soundex}, the key of approximate matching.
    """

    def test_knuthExamples(self) -> None:
        """
        The codes of Knuth's examples (TAOCP vol. 3) and the U.S. archives' rules:
        vowels separate letters of equal code, h and w do not.
        """
        for word, code in [
            ("robert", "r163"),
            ("rupert", "r163"),
            ("rubin", "r150"),
            ("ashcraft", "a261"),
            ("ashcroft", "a261"),
            ("tymczak", "t522"),
            ("pfister", "p236"),
            ("honeyman", "h555"),
            ("lee", "l000"),
            ("gutierrez", "g362"),
        ]:
            self.assertEqual(soundex(word), code, word)

    def test_similarSpellings(self) -> None:
        """
        Spellings that sound alike share a code.
        """
        self.assertEqual(soundex("smith"), soundex("smyth"))
        self.assertNotEqual(soundex("smith"), soundex("jones"))

    def test_noLetters(self) -> None:
        """
        A word without letters is its own key.
        """
        self.assertEqual(soundex("1234"), "1234")
        self.assertEqual(soundex(""), "")
