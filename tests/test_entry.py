"""
Tests for L{ldapd.entry}: entries and attributes, and the rules of Modify
(RFC 4511 §4.6, RFC 4525) and ModifyDN (RFC 4511 §4.9) with the result codes
slapd gives.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ldaptor.protocols.ldap import ldaperrors
from twisted.trial import unittest

from ldapd.dn import DN, InvalidDN
from ldapd.entry import Attribute, Entry, Modification, parseDescription
from ldapd.schema import InvalidValue, Schema

#: Built once: the standard schema is immutable in these tests.
SCHEMA = Schema.standard()

NO_SUCH_ATTRIBUTE = 16
UNDEFINED_ATTRIBUTE_TYPE = 17
CONSTRAINT_VIOLATION = 19
ATTRIBUTE_OR_VALUE_EXISTS = 20
INVALID_ATTRIBUTE_SYNTAX = 21
NAMING_VIOLATION = 64
OBJECT_CLASS_VIOLATION = 65
NOT_ALLOWED_ON_RDN = 67
PROTOCOL_ERROR = 2


def makeEntry(dn: str, **attributes: Any) -> Entry:
    """
    Build an entry of the standard schema.

    @param dn: its name.
    @param attributes: descriptions mapped to a value or a list of values, as text.
    @return: the entry.
    """
    items = []
    for name, value in attributes.items():
        values = value if isinstance(value, list) else [value]
        items.append((name, [v.encode() for v in values]))
    return Entry(DN.parse(dn), items, SCHEMA)


def alice(**extra: Any) -> Entry:
    """
    @param extra: attributes to add or replace.
    @return: a valid inetOrgPerson and posixAccount entry named by uid.
    """
    attributes: dict[str, Any] = {
        "objectClass": ["top", "inetOrgPerson", "posixAccount"],
        "uid": "alice",
        "cn": "Alice Smith",
        "sn": "Smith",
        "uidNumber": "1000",
        "gidNumber": "100",
        "homeDirectory": "/home/alice",
        "telephoneNumber": "+1 555-123-4567",
        "description": ["one", "two"],
        "seeAlso": "cn=X,dc=Example,dc=COM",
    }
    attributes.update(extra)
    return makeEntry("uid=alice,ou=people,dc=example,dc=com", **attributes)


def person(dn: str, **extra: Any) -> Entry:
    """
    @param dn: the entry's name.
    @param extra: attributes to add or replace.
    @return: a valid inetOrgPerson entry.
    """
    attributes: dict[str, Any] = {
        "objectClass": ["inetOrgPerson"],
        "cn": "Alice Smith",
        "sn": "Smith",
        "uid": "alice",
    }
    attributes.update(extra)
    return makeEntry(dn, **attributes)


def mod(operation: str, description: str, *values: str | bytes) -> Modification:
    """
    @return: a modification with the values encoded as UTF-8.
    """
    return Modification(
        operation, description, tuple(v.encode() if isinstance(v, str) else v for v in values)
    )



def _temporaryFile(case: unittest.SynchronousTestCase) -> Path:
    """
    @return: the path of a schema file in a temporary folder removed after C{case}.
    """
    folder = tempfile.mkdtemp()
    case.addCleanup(shutil.rmtree, folder)
    return Path(folder) / "test.schema"

class ResultCodeMixin:
    """
    Assertions on the LDAP errors entries raise.
    """

    def assertResult(self, code: int, f: Any, *args: Any) -> ldaperrors.LDAPException:
        """
        Assert that calling C{f} raises an LDAP error with result code C{code}.

        @return: the error.
        """
        error = self.assertRaises(ldaperrors.LDAPException, f, *args)  # type: ignore[attr-defined]
        self.assertEqual(error.resultCode, code, error.message)  # type: ignore[attr-defined]
        return error


class ParseDescriptionTests(ResultCodeMixin, unittest.TestCase):
    """
    Tests for L{parseDescription}.
    """

    def test_options(self) -> None:
        """
        The type is resolved by any name and the options are lower-cased and sorted.
        """
        at, options = parseDescription(SCHEMA, "commonName;Lang-EN;X-Other")
        self.assertIs(at, SCHEMA.attributeType("cn"))
        self.assertEqual(options, ("lang-en", "x-other"))

    def test_perSchema(self) -> None:
        """
        A description resolves in each schema to that schema's type, the
        second time as the first; one a schema does not define is refused
        each time, though another schema resolved it.
        """
        other = Schema.standard()
        self.assertIs(parseDescription(SCHEMA, "cn")[0], SCHEMA.attributeType("cn"))
        self.assertIs(parseDescription(other, "cn")[0], other.attributeType("cn"))
        self.assertIs(parseDescription(other, "cn")[0], other.attributeType("cn"))
        parseDescription(SCHEMA, "uid")
        bare = Schema()
        for _ in range(2):
            self.assertRaises(ldaperrors.LDAPUndefinedAttributeType, parseDescription, bare, "uid")

    def test_binaryOption(self) -> None:
        """
        The binary option goes with the types whose syntax requires binary
        transfer (RFC 4522), such as userCertificate.
        """
        at, options = parseDescription(SCHEMA, "userCertificate;BINARY")
        self.assertIs(at, SCHEMA.attributeType("userCertificate"))
        self.assertEqual(options, ("binary",))

    def test_binaryOptionRefused(self) -> None:
        """
        The binary option on a type whose syntax does not require it is an
        undefined attribute description (RFC 4522 §2), as in slapd.
        """
        self.assertRaises(
            ldaperrors.LDAPUndefinedAttributeType, parseDescription, SCHEMA, "jpegPhoto;binary"
        )

    def test_emptyOption(self) -> None:
        """
        An empty option (a trailing C{;}, or C{;;}) is undefinedAttributeType
        (17) with slapd's message.
        """
        for description in ("cn;", "cn;;lang-en"):
            error = self.assertResult(UNDEFINED_ATTRIBUTE_TYPE, parseDescription, SCHEMA, description)
            self.assertIn("zero length option is invalid", error.message)

    def test_inappropriateCharacters(self) -> None:
        """
        A description that is not a descr or numericoid followed by
        keystring options (RFC 4512 §2.5) is undefinedAttributeType (17)
        with slapd's message, with its control characters escaped: line
        breaks, spaces, colons and the like can never reach an LDIF
        file or a log through a description.
        """
        for description in (
            "description;x-note\n\ndn: cn=admins,dc=example,dc=com\nchangetype: modify",
            "description;x-\r", "description;x y", "description;x_y", "description;-x",
            "description;x.y", "description;x:", "descr iption", "-description",
            "02.5.4.13", "2.5.4.13.", "description\x00", "description;é",
        ):
            error = self.assertResult(UNDEFINED_ATTRIBUTE_TYPE, parseDescription, SCHEMA, description)
            self.assertIn("AttributeDescription contains inappropriate characters", error.message)
            self.assertNotRegex(error.message, "[\x00-\x1f]")

    def test_numericOID(self) -> None:
        """
        A numericoid with keystring options names the type.
        """
        at, options = parseDescription(SCHEMA, "2.5.4.13;X-Note-2")
        self.assertIs(at, SCHEMA.attributeType("description"))
        self.assertEqual(options, ("x-note-2",))

    def test_undefined(self) -> None:
        """
        An undefined type is undefinedAttributeType (17).
        """
        error = self.assertResult(UNDEFINED_ATTRIBUTE_TYPE, parseDescription, SCHEMA, "fooBar;x")
        self.assertIn("fooBar", error.message)


class AttributeTests(unittest.TestCase):
    """
    Tests for L{Attribute}.
    """

    def test_description(self) -> None:
        """
        The description is the primary name followed by the options.
        """
        cn = SCHEMA.attributeType("cn")
        self.assertEqual(Attribute(cn, ("lang-en",), [b"x"]).description, "cn;lang-en")
        self.assertEqual(Attribute(cn, (), [b"x"]).description, "cn")

    def test_keys(self) -> None:
        """
        Each value is keyed by its equality key; a value invalid for the rule
        is keyed by its bytes.
        """
        uidNumber = SCHEMA.attributeType("uidNumber")
        attr = Attribute(uidNumber, (), [b"7", b"bad"])
        self.assertEqual(attr.keys(SCHEMA), {7: b"7", b"bad": b"bad"})

    def test_values(self) -> None:
        """
        The values are a tuple however many there are.
        """
        cn = SCHEMA.attributeType("cn")
        self.assertEqual(Attribute(cn, (), [b"x"]).values, (b"x",))
        self.assertEqual(Attribute(cn, (), iter([b"x", b"y"])).values, (b"x", b"y"))


class LayoutTests(unittest.TestCase):
    """
    Entries with the same attribute descriptions share one layout, and read
    the same whatever layout they have.
    """

    def test_shared(self) -> None:
        """
        Two entries with the same descriptions in the same order have one
        layout; an entry with other descriptions has another.
        """
        a = makeEntry("uid=a,dc=example,dc=com", objectClass="account", uid="a")
        b = makeEntry("uid=b,dc=example,dc=com", objectClass="account", uid="b")
        c = makeEntry("uid=c,dc=example,dc=com", objectClass="account", uid="c", host="h")
        self.assertIs(a._layout, b._layout)
        self.assertIsNot(a._layout, c._layout)

    def test_read(self) -> None:
        """
        An entry's attributes are read in the order written, by exact
        description and through subtypes, and a changed entry does not
        change the one it came from.
        """
        entry = makeEntry("cn=x,dc=example,dc=com", objectClass=["device", "top"], cn="x",
                          **{"cn;lang-en": ["y", "z"]})
        self.assertEqual([(a.description, a.values) for a in entry], [
            ("objectClass", (b"device", b"top")), ("cn", (b"x",)), ("cn;lang-en", (b"y", b"z"))])
        name = SCHEMA.attributeType("name")
        self.assertEqual([a.values for a in entry.matching(name)], [(b"x",), (b"y", b"z")])
        cn = SCHEMA.attributeType("cn")
        self.assertEqual(entry.attribute(cn, ("lang-en",)).values, (b"y", b"z"))
        self.assertEqual(entry.get("CN;Lang-EN"), (b"y", b"z"))
        changed = entry.modified([Modification("delete", "cn;lang-en")])
        self.assertEqual(entry.get("cn;lang-en"), (b"y", b"z"))
        self.assertEqual(changed.get("cn;lang-en"), ())

    def test_bounded(self) -> None:
        """
        The table of layouts is emptied when full; entries made before keep
        their layouts, and new ones are shared again.
        """
        from ldapd import entry as module

        self.patch(module, "_MAX_LAYOUTS", 2)
        self.patch(module, "_LAYOUTS", {})
        made = [makeEntry("cn=x,dc=example,dc=com", objectClass="device", cn="x", **{name: "v"})
                for name in ("l", "ou", "description", "seeAlso")]
        self.assertLessEqual(len(module._LAYOUTS), 2)
        self.assertEqual([e.get("cn") for e in made], [(b"x",)] * 4)
        again = makeEntry("cn=y,dc=example,dc=com", objectClass="device", cn="y", seeAlso="v")
        self.assertIs(again._layout, made[-1]._layout)

    def test_fromStored(self) -> None:
        """
        L{Entry.fromStored} makes the entry a store wrote, sharing the layout
        of entries with the same descriptions; descriptions that are one
        attribute are merged, attributes without values left out, and an
        undefined type refused, as L{Entry.__init__} does.
        """
        dn = DN.parse("cn=x,dc=example,dc=com")
        entry = makeEntry("cn=x,dc=example,dc=com", objectClass=["device", "top"], cn="x")
        stored = Entry.fromStored(dn, entry.ndn, SCHEMA, ("objectClass", "cn"),
                                  ((b"device", b"top"), b"x"))
        self.assertIs(stored._layout, entry._layout)
        self.assertEqual(stored.get("objectClass"), (b"device", b"top"))
        self.assertEqual(stored.dn, dn)
        merged = Entry.fromStored(dn, entry.ndn, SCHEMA, ("objectClass", "cn", "CN", "l"),
                                  (b"device", b"x", (b"y", b"z"), ()))
        self.assertEqual([(a.description, a.values) for a in merged],
                         [("objectClass", (b"device",)), ("cn", (b"x", b"y", b"z"))])
        self.assertRaises(ldaperrors.LDAPUndefinedAttributeType, Entry.fromStored,
                          dn, entry.ndn, SCHEMA, ("objectClass", "nosuch"), (b"device", b"v"))

    def test_changedTypes(self) -> None:
        """
        The types that differ between two entries are those with a
        description added, removed or given other values, and only those.
        """
        entry = makeEntry("cn=x,dc=example,dc=com", objectClass="device", cn="x",
                          **{"cn;lang-en": "y"}, description="d", l="here")
        changed = entry.modified([Modification("delete", "cn;lang-en"),
                                  Modification("replace", "description", (b"e",)),
                                  Modification("add", "seeAlso", (b"cn=y",))])
        self.assertEqual({at.name for at in entry.changedTypes(changed)},
                         {"cn", "description", "seeAlso"})
        self.assertEqual(entry.changedTypes(entry.copy()), set())


class EntryTests(ResultCodeMixin, unittest.TestCase):
    """
    Tests for reading an L{Entry}.
    """

    def test_names(self) -> None:
        """
        An entry keeps its DN as given and its normalised DN.
        """
        entry = person("UID=Alice , OU=People,DC=Example,DC=Com")
        self.assertEqual(str(entry.dn), "UID=Alice,OU=People,DC=Example,DC=Com")
        self.assertEqual(str(entry.ndn), "uid=alice,ou=people,dc=example,dc=com")

    def test_mergesDescriptions(self) -> None:
        """
        Repeated descriptions, under any name of the type, are merged in order.
        """
        entry = Entry(
            DN.parse("cn=a"), [("cn", [b"a"]), ("commonName", [b"b"]), ("CN", [b"c"])], SCHEMA
        )
        self.assertEqual(entry.get("cn"), (b"a", b"b", b"c"))
        self.assertEqual([a.description for a in entry], ["cn"])

    def test_undefinedType(self) -> None:
        """
        An undefined attribute type is undefinedAttributeType (17).
        """
        self.assertResult(
            UNDEFINED_ATTRIBUTE_TYPE, Entry, DN.parse("cn=a"), {"fooBar": [b"x"]}, SCHEMA
        )

    def test_noValues(self) -> None:
        """
        A description given without values adds no attribute: an attribute
        always has a value, so it cannot satisfy a required type or C{(sn=*)}.
        """
        entry = Entry(DN.parse("cn=a"), [("cn", [b"a"]), ("sn", [])], SCHEMA)
        self.assertEqual([a.description for a in entry], ["cn"])
        self.assertEqual(entry.matching(SCHEMA.attributeType("sn")), [])

    def test_undefinedTypeInDN(self) -> None:
        """
        A DN that cannot be normalised is refused.
        """
        self.assertRaises(InvalidDN, Entry, DN.parse("fooBar=a"), {}, SCHEMA)

    def test_get(self) -> None:
        """
        L{Entry.get} returns the values of exactly that description: any name
        of the type, options in any order and case, no subtypes.
        """
        entry = person("cn=a", **{"cn;lang-en": "English", "cn;x-b;lang-en": "both"})
        self.assertEqual(entry.get("commonName"), (b"Alice Smith",))
        self.assertEqual(entry.get("CN;LANG-EN"), (b"English",))
        self.assertEqual(entry.get("cn;lang-en;X-B"), (b"both",))
        self.assertEqual(entry.get("name"), ())
        self.assertEqual(entry.get("fooBar"), ())

    def test_matching(self) -> None:
        """
        L{Entry.matching} finds the attributes of a type and its subtypes with
        at least the options asked for (RFC 4512 §2.5).
        """
        entry = person("cn=a", givenName="Alice", **{"cn;lang-en": "English"})
        name = SCHEMA.attributeType("name")
        cn = SCHEMA.attributeType("cn")
        self.assertEqual(
            sorted(a.description for a in entry.matching(name)),
            ["cn", "cn;lang-en", "givenName", "sn"],
        )
        self.assertEqual([a.description for a in entry.matching(cn, ("lang-en",))], ["cn;lang-en"])
        self.assertEqual(entry.matching(cn, ("lang-de",)), [])

    def test_hasValue(self) -> None:
        """
        L{Entry.hasValue} compares with the equality rule, through subtypes.
        """
        entry = alice()
        self.assertTrue(entry.hasValue(SCHEMA.attributeType("cn"), b"  alice   SMITH"))
        self.assertTrue(entry.hasValue(SCHEMA.attributeType("name"), b"smith"))
        self.assertTrue(entry.hasValue(SCHEMA.attributeType("telephoneNumber"), b"+15551234567"))
        self.assertTrue(entry.hasValue(SCHEMA.attributeType("seeAlso"), b"CN=x, dc=example,dc=com"))
        self.assertFalse(entry.hasValue(SCHEMA.attributeType("cn"), b"Bob"))
        self.assertRaises(InvalidValue, entry.hasValue, SCHEMA.attributeType("uidNumber"), b"x")

    def test_objectClasses(self) -> None:
        """
        L{Entry.objectClasses} is the set of lower-cased values.
        """
        self.assertEqual(alice().objectClasses(), {"top", "inetorgperson", "posixaccount"})

    def test_copies(self) -> None:
        """
        L{Entry.copy} is independent of the original; L{Entry.withDN} keeps the
        attributes under a new, normalised name; L{Entry.without} drops types.
        """
        entry = alice()
        copy = entry.copy()
        self.assertEqual(copy.ndn, entry.ndn)
        moved = entry.withDN(DN.parse("UID=Alice,OU=Staff,DC=Example,DC=Com"))
        self.assertEqual(str(moved.ndn), "uid=alice,ou=staff,dc=example,dc=com")
        self.assertEqual(moved.get("cn"), entry.get("cn"))
        hidden = entry.without({SCHEMA.attributeType("userPassword"), SCHEMA.attributeType("cn")})
        self.assertEqual(hidden.get("cn"), ())
        self.assertEqual(entry.get("cn"), (b"Alice Smith",))


class ShapeTests(unittest.TestCase):
    """
    What a search and an access check read of an entry by its layout:
    L{Entry.shape}, L{Entry.selected}, L{Entry.hasAnyOf}, L{Entry.without}.
    """

    def test_shapeShared(self) -> None:
        """
        Entries with the same descriptions in the same order have the same
        shape; another order or another attribute, another shape.
        """
        self.assertIs(alice().shape, alice(cn="Other").shape)
        self.assertIsNot(alice().shape, alice(mail="a@example.com").shape)

    def test_selected(self) -> None:
        """
        L{Entry.selected} gives the values at the positions asked for, one
        value as a tuple too, under the descriptions given; or no values.
        """
        entry = alice()
        positions = [i for i, (at, _) in enumerate(entry.descriptions)
                     if at.name in ("cn", "description")]
        chosen = entry.selected([(i, b"d%d" % i) for i in positions])
        self.assertEqual(chosen, [(b"d%d" % positions[0], (b"Alice Smith",)),
                                  (b"d%d" % positions[1], (b"one", b"two"))])
        self.assertEqual(entry.selected([(positions[0], b"cn")], typesOnly=True), [(b"cn", ())])

    def test_without(self) -> None:
        """
        L{Entry.without} keeps the other attributes, with their options, in
        their order, as a new entry whose layout lookups work; L{Entry.hasAnyOf}
        tells whether there is anything to leave out.
        """
        entry = alice(**{"cn;lang-fr": "Alice", "userPassword": "secret"})
        password = SCHEMA.attributeType("userPassword")
        cn = SCHEMA.attributeType("cn")
        self.assertTrue(entry.hasAnyOf({password}))
        kept = entry.without({password})
        self.assertFalse(kept.hasAnyOf({password}))
        self.assertTrue(kept.hasAnyOf({cn}))
        self.assertEqual([a.description for a in kept],
                         [a.description for a in entry if a.type is not password])
        self.assertEqual(kept.get("cn;lang-fr"), (b"Alice",))
        self.assertEqual(kept.get("userPassword"), ())
        self.assertEqual(kept.dn, entry.dn)
        self.assertEqual(entry.get("userPassword"), (b"secret",))

    def test_withoutSameLayout(self) -> None:
        """
        Entries of one layout left without the same frozen set of types
        share the layout they get, each keeping its own values; a set
        that leaves nothing out keeps the entry's layout.
        """
        password = SCHEMA.attributeType("userPassword")
        types = frozenset({password})
        first = alice(userPassword="one").without(types)
        second = alice(userPassword="two", cn="Alice Jones").without(types)
        self.assertIs(first.shape, second.shape)
        self.assertEqual(first.get("cn"), (b"Alice Smith",))
        self.assertEqual(second.get("cn"), (b"Alice Jones",))
        self.assertEqual(second.get("userPassword"), ())
        plain = alice()
        self.assertIs(plain.without(types).shape, plain.shape)


class ValidateTests(ResultCodeMixin, unittest.TestCase):
    """
    Tests for L{Entry.validate}.
    """

    def test_valid(self) -> None:
        """
        A well-formed entry passes.
        """
        alice().validate()

    def test_noObjectClass(self) -> None:
        """
        An entry without objectClass is an objectClassViolation (65).
        """
        entry = makeEntry("cn=a", cn="a", sn="b")
        self.assertResult(OBJECT_CLASS_VIOLATION, entry.validate)

    def test_missingRDNValue(self) -> None:
        """
        The RDN's value must be one of the entry's values: namingViolation (64).
        """
        entry = person("uid=bob,dc=example")
        error = self.assertResult(NAMING_VIOLATION, entry.validate)
        self.assertIn("'uid'", error.message)

    def test_rdnValueByMatchingRule(self) -> None:
        """
        The RDN's value is found with the equality rule: case and spaces do not matter.
        """
        person("cn=ALICE  SMITH+uid=ALICE,dc=example").validate()

    def test_namingBeforeObjectClasses(self) -> None:
        """
        A missing RDN value is reported before a missing required attribute, as
        slapd does.
        """
        entry = makeEntry("uid=bob,dc=example", objectClass="inetOrgPerson", cn="Bob")
        self.assertResult(NAMING_VIOLATION, entry.validate)

    def test_invalidSyntax(self) -> None:
        """
        A value invalid for its syntax is invalidAttributeSyntax (21).
        """
        error = self.assertResult(INVALID_ATTRIBUTE_SYNTAX, alice(uidNumber="x").validate)
        self.assertEqual(error.message, "uidNumber: value #0 invalid per syntax")

    def test_emptyValues(self) -> None:
        """
        An empty Directory String or Telephone Number is invalid (21); an empty
        IA5 String (mail) or octet string is not, as slapd has it.
        """
        self.assertResult(INVALID_ATTRIBUTE_SYNTAX, alice(description="").validate)
        self.assertResult(INVALID_ATTRIBUTE_SYNTAX, alice(telephoneNumber="").validate)
        alice(mail="", userPassword="").validate()

    def test_duplicateValues(self) -> None:
        """
        Two values with the same equality key are attributeOrValueExists (20).
        """
        error = self.assertResult(
            ATTRIBUTE_OR_VALUE_EXISTS, alice(description=["x", " X "]).validate
        )
        self.assertEqual(error.message, "description: value #0 provided more than once")

    def test_singleValued(self) -> None:
        """
        Two values of a single-valued type are a constraintViolation (19).
        """
        self.assertResult(CONSTRAINT_VIOLATION, alice(uidNumber=["1", "2"]).validate)

    def test_objectClassRules(self) -> None:
        """
        A required attribute missing or a disallowed one present is an
        objectClassViolation (65).
        """
        entry = makeEntry("uid=alice", objectClass="inetOrgPerson", uid="alice", cn="Alice")
        self.assertResult(OBJECT_CLASS_VIOLATION, entry.validate)
        self.assertResult(OBJECT_CLASS_VIOLATION, person("uid=alice", dc="x").validate)


class ShapeCacheTests(ResultCodeMixin, unittest.TestCase):
    """
    What is kept for entries of one shape (L{Entry.extended}'s layouts, the
    object class checks passed) gives what computing it each time gives.
    """

    def test_extended(self) -> None:
        """
        An entry extended with attributes is the entry made from all of them,
        the second time (from the kept layout) as the first.
        """
        for name in ("a", "b"):
            entry = makeEntry(f"uid={name},dc=example,dc=com", objectClass="account", uid=name)
            extended = entry.extended([("host", (b"h",)), ("description", (b"x", b"y"))])
            whole = makeEntry(f"uid={name},dc=example,dc=com", objectClass="account", uid=name,
                              host="h", description=["x", "y"])
            self.assertIs(extended.shape, whole.shape)
            self.assertEqual([(a.description, a.values) for a in extended],
                             [(a.description, a.values) for a in whole])

    def test_extendedMerges(self) -> None:
        """
        An added description the entry has (in another spelling) merges
        with it, as L{Entry.__init__} merges repeated descriptions.
        """
        entry = makeEntry("uid=a,dc=example,dc=com", objectClass="account", uid="a")
        for _ in range(2):
            extended = entry.extended([("UID", (b"b",))])
            self.assertEqual(extended.get("uid"), (b"a", b"b"))

    def test_classChecksBySameShape(self) -> None:
        """
        After an entry passes the object class check, another of the same
        layout with other object classes is checked for itself, and one
        that fails fails again.
        """
        good = person("cn=a,dc=example,dc=com", cn="a")
        bad = person("cn=b,dc=example,dc=com", cn="b", objectClass=["organizationalUnit"])
        self.assertIs(good.shape, bad.shape)
        for _ in range(2):
            good.checkObjectClasses()
            self.assertResult(OBJECT_CLASS_VIOLATION, bad.checkObjectClasses)
        self.assertResult(
            ldaperrors.LDAPObjectClassModsProhibited.resultCode,
            good.checkObjectClasses, b"organizationalUnit")


class ModifyAddTests(ResultCodeMixin, unittest.TestCase):
    """
    Tests for the add operation of L{Entry.modified}.
    """

    def test_add(self) -> None:
        """
        Added values follow the existing ones; the original entry is unchanged.
        """
        entry = alice()
        new = entry.modified([mod("add", "description", "three"), mod("add", "mail", "a@b")])
        self.assertEqual(new.get("description"), (b"one", b"two", b"three"))
        self.assertEqual(new.get("mail"), (b"a@b",))
        self.assertEqual(entry.get("description"), (b"one", b"two"))
        self.assertEqual(entry.get("mail"), ())
        self.assertEqual(new.ndn, entry.ndn)

    def test_existingValue(self) -> None:
        """
        A value equal by the matching rule to an existing one is
        attributeOrValueExists (20), numbered within the request as slapd does.
        """
        error = self.assertResult(
            ATTRIBUTE_OR_VALUE_EXISTS, alice().modified, [mod("add", "cn", "new", "alice  SMITH")]
        )
        self.assertEqual(error.message, "modify/add: cn: value #1 already exists")

    def test_existingTelephoneNumber(self) -> None:
        """
        telephoneNumberMatch finds C{+15551234567} equal to C{+1 555-123-4567}.
        """
        self.assertResult(
            ATTRIBUTE_OR_VALUE_EXISTS,
            alice().modified,
            [mod("add", "telephoneNumber", "+15551234567")],
        )

    def test_existingDN(self) -> None:
        """
        DN-valued attributes compare normalised DNs.
        """
        self.assertResult(
            ATTRIBUTE_OR_VALUE_EXISTS,
            alice().modified,
            [mod("add", "seeAlso", "CN=x , dc=example,dc=com")],
        )

    def test_duplicateInRequest(self) -> None:
        """
        The same value twice in one add is attributeOrValueExists (20).
        """
        error = self.assertResult(
            ATTRIBUTE_OR_VALUE_EXISTS, alice().modified, [mod("add", "description", "x", "X")]
        )
        self.assertEqual(error.message, "description: value #0 provided more than once")

    def test_singleValued(self) -> None:
        """
        A second value for a single-valued type is a constraintViolation (19).
        """
        self.assertResult(CONSTRAINT_VIOLATION, alice().modified, [mod("add", "uidNumber", "7")])
        self.assertResult(
            CONSTRAINT_VIOLATION,
            alice().modified,
            [mod("add", "employeeNumber", "1"), mod("add", "displayName", "a", "b")],
        )

    def test_invalidSyntax(self) -> None:
        """
        A value invalid for its syntax is invalidAttributeSyntax (21), numbered
        within the request.
        """
        error = self.assertResult(
            INVALID_ATTRIBUTE_SYNTAX, alice().modified, [mod("add", "seeAlso", "cn=ok", "foo=bar")]
        )
        self.assertEqual(error.message, "seeAlso: value #1 invalid per syntax")

    def test_noValues(self) -> None:
        """
        An add without values is a protocolError (2), as slapd answers.
        """
        self.assertResult(PROTOCOL_ERROR, alice().modified, [mod("add", "description")])

    def test_undefinedType(self) -> None:
        """
        An undefined type is undefinedAttributeType (17).
        """
        self.assertResult(UNDEFINED_ATTRIBUTE_TYPE, alice().modified, [mod("add", "fooBar", "x")])

    def test_options(self) -> None:
        """
        A description with options is an attribute of its own.
        """
        new = alice().modified([mod("add", "description;lang-en", "one")])
        self.assertEqual(new.get("description;lang-en"), (b"one",))
        self.assertEqual(new.get("description"), (b"one", b"two"))


class ModifyDeleteTests(ResultCodeMixin, unittest.TestCase):
    """
    Tests for the delete operation of L{Entry.modified}.
    """

    def test_deleteAttribute(self) -> None:
        """
        A delete without values removes the attribute.
        """
        new = alice().modified([mod("delete", "description")])
        self.assertEqual(new.get("description"), ())

    def test_missingAttribute(self) -> None:
        """
        Deleting an absent attribute is noSuchAttribute (16).
        """
        self.assertResult(NO_SUCH_ATTRIBUTE, alice().modified, [mod("delete", "mail")])

    def test_deleteValue(self) -> None:
        """
        A value is found with the equality rule and the stored spelling removed.
        """
        new = alice().modified([mod("delete", "description", "  ONE ")])
        self.assertEqual(new.get("description"), (b"two",))
        new = alice().modified([mod("delete", "seeAlso", "cn=x,dc=example,dc=com")])
        self.assertEqual(new.get("seeAlso"), ())

    def test_deleteLastValue(self) -> None:
        """
        Deleting every value removes the attribute.
        """
        new = alice().modified([mod("delete", "description", "one", "two")])
        self.assertEqual(new.get("description"), ())
        self.assertEqual([a for a in new if a.description == "description"], [])

    def test_missingValue(self) -> None:
        """
        Deleting an absent value is noSuchAttribute (16).
        """
        self.assertResult(
            NO_SUCH_ATTRIBUTE, alice().modified, [mod("delete", "description", "three")]
        )

    def test_invalidValue(self) -> None:
        """
        Deleting a value invalid for the syntax is invalidAttributeSyntax (21),
        as slapd checks a request's values first.
        """
        error = self.assertResult(
            INVALID_ATTRIBUTE_SYNTAX, alice().modified, [mod("delete", "gidNumber", "abc")]
        )
        self.assertEqual(error.message, "gidNumber: value #0 invalid per syntax")

    def test_sameValueTwice(self) -> None:
        """
        Naming one value twice in a delete is not an error.
        """
        new = alice().modified([mod("delete", "description", "one", "ONE")])
        self.assertEqual(new.get("description"), (b"two",))

    def test_objectClass(self) -> None:
        """
        Deleting objectClass is an objectClassViolation (65).
        """
        error = self.assertResult(
            OBJECT_CLASS_VIOLATION, alice().modified, [mod("delete", "objectClass")]
        )
        self.assertEqual(error.message, "no objectClass attribute")

    def test_requiredAttribute(self) -> None:
        """
        Deleting a required attribute is an objectClassViolation (65).
        """
        self.assertResult(OBJECT_CLASS_VIOLATION, alice().modified, [mod("delete", "sn")])

    def test_rdnValue(self) -> None:
        """
        Removing the RDN's value is notAllowedOnRDN (67, RFC 4511 §4.6), before
        object class rules are checked (uid is also required by posixAccount).
        """
        for change in [
            mod("delete", "uid"),
            mod("delete", "uid", "ALICE"),
            mod("replace", "uid", "bob"),
        ]:
            error = self.assertResult(NOT_ALLOWED_ON_RDN, alice().modified, [change])
            self.assertIn("'uid'", error.message)

    def test_rdnValueMultiValued(self) -> None:
        """
        Each AVA of a multi-valued RDN is protected.
        """
        entry = person("uid=alice+cn=Alice Smith,dc=example", cn=["Alice Smith", "Alice"])
        self.assertResult(NOT_ALLOWED_ON_RDN, entry.modified, [mod("delete", "cn", "alice smith")])
        entry.modified([mod("delete", "cn", "Alice")])

    def test_rdnValueReplaced(self) -> None:
        """
        Deleting the RDN's value and adding it back in one request is allowed.
        """
        new = alice().modified([mod("delete", "uid"), mod("add", "uid", "Alice", "ally")])
        self.assertEqual(new.get("uid"), (b"Alice", b"ally"))


class ModifyReplaceTests(ResultCodeMixin, unittest.TestCase):
    """
    Tests for the replace operation of L{Entry.modified}.
    """

    def test_replace(self) -> None:
        """
        Replace sets exactly the given values.
        """
        new = alice().modified([mod("replace", "description", "x", "y")])
        self.assertEqual(new.get("description"), (b"x", b"y"))

    def test_replaceWithNothing(self) -> None:
        """
        Replace without values removes the attribute, and is no error when it
        is absent.
        """
        new = alice().modified([mod("replace", "description"), mod("replace", "mail")])
        self.assertEqual(new.get("description"), ())

    def test_duplicates(self) -> None:
        """
        Duplicate values are attributeOrValueExists (20).
        """
        self.assertResult(
            ATTRIBUTE_OR_VALUE_EXISTS, alice().modified, [mod("replace", "description", "a", "A")]
        )

    def test_singleValued(self) -> None:
        """
        Two values of a single-valued type are a constraintViolation (19).
        """
        self.assertResult(
            CONSTRAINT_VIOLATION, alice().modified, [mod("replace", "gidNumber", "7", "8")]
        )

    def test_invalidSyntax(self) -> None:
        """
        Values invalid for the syntax are invalidAttributeSyntax (21), as slapd
        refuses C{-0}, C{007}, C{+7} and C{ 7} for an Integer.
        """
        for value in ["x", "-0", "007", "+7", " 7"]:
            self.assertResult(
                INVALID_ATTRIBUTE_SYNTAX, alice().modified, [mod("replace", "gidNumber", value)]
            )

    def test_undefinedType(self) -> None:
        """
        Replacing an undefined type, even with nothing, is undefinedAttributeType (17).
        """
        self.assertResult(UNDEFINED_ATTRIBUTE_TYPE, alice().modified, [mod("replace", "fooBar")])

    def test_notAllowed(self) -> None:
        """
        A type no object class allows is an objectClassViolation (65).
        """
        self.assertResult(OBJECT_CLASS_VIOLATION, alice().modified, [mod("replace", "dc", "x")])


class ModifyIncrementTests(ResultCodeMixin, unittest.TestCase):
    """
    Tests for Modify-Increment (RFC 4525) in L{Entry.modified}.
    """

    def test_increment(self) -> None:
        """
        Every value is increased by the amount, which may be negative.
        """
        self.assertEqual(
            alice().modified([mod("increment", "uidNumber", "5")]).get("uidNumber"), (b"1005",)
        )
        self.assertEqual(
            alice().modified([mod("increment", "uidNumber", "-1001")]).get("uidNumber"), (b"-1",)
        )

    def test_options(self) -> None:
        """
        Only the attribute of exactly the description given is incremented.
        """
        entry = alice(**{"uidNumber;x-a": "5"}).modified([mod("increment", "uidNumber;X-A", "1")])
        self.assertEqual(entry.get("uidNumber;x-a"), (b"6",))
        self.assertEqual(entry.get("uidNumber"), (b"1000",))

    def test_absent(self) -> None:
        """
        Incrementing an absent integer attribute is noSuchAttribute (16).
        """
        entry = alice(objectClass=["inetOrgPerson", "posixAccount", "shadowAccount"])
        self.assertResult(NO_SUCH_ATTRIBUTE, entry.modified, [mod("increment", "shadowMax", "5")])

    def test_notInteger(self) -> None:
        """
        Incrementing a type that is not an integer is a constraintViolation (19),
        even when the type is absent, as slapd checks the request first.
        """
        self.assertResult(
            CONSTRAINT_VIOLATION, alice().modified, [mod("increment", "description", "5")]
        )
        self.assertResult(
            CONSTRAINT_VIOLATION, alice().modified, [mod("increment", "employeeNumber", "5")]
        )

    def test_invalidAmount(self) -> None:
        """
        An amount that is not an integer is invalidAttributeSyntax (21), even
        when the attribute is absent.
        """
        entry = alice(objectClass=["inetOrgPerson", "posixAccount", "shadowAccount"])
        self.assertResult(
            INVALID_ATTRIBUTE_SYNTAX, entry.modified, [mod("increment", "uidNumber", "x")]
        )
        self.assertResult(
            INVALID_ATTRIBUTE_SYNTAX, entry.modified, [mod("increment", "shadowMax", "x")]
        )

    def test_valueCount(self) -> None:
        """
        An increment needs exactly one value: protocolError (2) otherwise.
        """
        self.assertResult(PROTOCOL_ERROR, alice().modified, [mod("increment", "uidNumber")])
        self.assertResult(
            PROTOCOL_ERROR, alice().modified, [mod("increment", "uidNumber", "1", "2")]
        )


class ModifyTests(ResultCodeMixin, unittest.TestCase):
    """
    Tests for L{Entry.modified} as a whole.
    """

    def test_inOrder(self) -> None:
        """
        Modifications apply in order: a value added and then deleted is gone.
        """
        new = alice().modified([mod("add", "mail", "a@b"), mod("delete", "mail", "A@B")])
        self.assertEqual(new.get("mail"), ())

    def test_allOrNothing(self) -> None:
        """
        A failing modification leaves the entry as it was.
        """
        entry = alice()
        self.assertResult(
            NO_SUCH_ATTRIBUTE,
            entry.modified,
            [mod("replace", "description", "new"), mod("delete", "mail")],
        )
        self.assertEqual(entry.get("description"), (b"one", b"two"))

    def test_unknownOperation(self) -> None:
        """
        An unknown operation is a protocolError (2).
        """
        self.assertResult(PROTOCOL_ERROR, alice().modified, [mod("frobnicate", "description", "x")])

    def test_keepsName(self) -> None:
        """
        The modified entry keeps the DN and the normalised DN.
        """
        entry = alice()
        new = entry.modified([mod("replace", "description", "x")])
        self.assertEqual((new.dn, new.ndn), (entry.dn, entry.ndn))


class RenameTests(ResultCodeMixin, unittest.TestCase):
    """
    Tests for L{Entry.renamed} (ModifyDN, RFC 4511 §4.9).
    """

    def test_keepOldRDN(self) -> None:
        """
        Without deleteOldRDN the new RDN's value is added and the old one kept.
        """
        entry = person("uid=alice,dc=example")
        new = entry.renamed(DN.parse("uid=alicia,dc=example"), False)
        self.assertEqual(new.get("uid"), (b"alice", b"alicia"))
        self.assertEqual(str(new.dn), "uid=alicia,dc=example")
        self.assertEqual(str(new.ndn), "uid=alicia,dc=example")
        self.assertEqual(entry.get("uid"), (b"alice",))
        self.assertEqual(str(entry.dn), "uid=alice,dc=example")

    def test_deleteOldRDN(self) -> None:
        """
        With deleteOldRDN the old RDN's value is removed.
        """
        new = person("uid=alice,dc=example").renamed(DN.parse("uid=alicia,dc=example"), True)
        self.assertEqual(new.get("uid"), (b"alicia",))

    def test_otherType(self) -> None:
        """
        Renaming to another attribute type adds a value to that type.
        """
        entry = person("uid=alice,dc=example")
        new = entry.renamed(DN.parse("cn=Ally,dc=example"), True)
        self.assertEqual(new.get("cn"), (b"Alice Smith", b"Ally"))
        self.assertEqual(new.get("uid"), ())

    def test_valueAlreadyPresent(self) -> None:
        """
        A new RDN value already present under another spelling is not added twice.
        """
        new = person("uid=alice,dc=example").renamed(DN.parse("cn=ALICE  SMITH,dc=example"), False)
        self.assertEqual(new.get("cn"), (b"Alice Smith",))

    def test_caseChange(self) -> None:
        """
        With deleteOldRDN, a rename that only changes case stores the new
        spelling (as slapd); without, the old spelling stays.
        """
        entry = person("uid=alice,dc=example")
        self.assertEqual(
            entry.renamed(DN.parse("uid=ALICE,dc=example"), True).get("uid"), (b"ALICE",)
        )
        self.assertEqual(
            entry.renamed(DN.parse("uid=ALICE,dc=example"), False).get("uid"), (b"alice",)
        )

    def test_multiValuedToSingle(self) -> None:
        """
        Leaving a multi-valued RDN deletes exactly the values of the AVAs that
        are not kept, whatever order the RDN was written in.
        """
        entry = person("uid=alice+cn=Alice Smith,dc=example", cn=["Alice Smith", "Alice"])
        new = entry.renamed(DN.parse("uid=alice,dc=example"), True)
        self.assertEqual(new.get("uid"), (b"alice",))
        self.assertEqual(new.get("cn"), (b"Alice",))
        entry = person("cn=Alice Smith+uid=alice,dc=example")
        new = entry.renamed(DN.parse("cn=Alice Smith,dc=example"), True)
        self.assertEqual(new.get("cn"), (b"Alice Smith",))
        self.assertEqual(new.get("uid"), ())

    def test_singleToMultiValued(self) -> None:
        """
        Renaming to a multi-valued RDN adds each of its values and keeps the
        old value the new RDN repeats.
        """
        new = person("uid=alice,dc=example").renamed(
            DN.parse("uid=alice+sn=Jones,dc=example"), True
        )
        self.assertEqual(new.get("uid"), (b"alice",))
        self.assertEqual(new.get("sn"), (b"Smith", b"Jones"))

    def test_move(self) -> None:
        """
        A move under a new parent keeps the attributes.
        """
        entry = person("uid=alice,ou=a,dc=example")
        new = entry.renamed(DN.parse("uid=alice,ou=b,dc=example"), True)
        self.assertEqual(new.get("uid"), (b"alice",))
        self.assertEqual(str(new.ndn), "uid=alice,ou=b,dc=example")

    def test_singleValued(self) -> None:
        """
        Keeping the old value of a single-valued naming attribute is a
        constraintViolation (19); deleting it is fine.
        """
        entry = makeEntry(
            "uidNumber=1000,dc=example",
            objectClass=["account", "posixAccount"],
            uid="alice",
            cn="Alice",
            uidNumber="1000",
            gidNumber="1",
            homeDirectory="/",
        )
        self.assertResult(
            CONSTRAINT_VIOLATION, entry.renamed, DN.parse("uidNumber=2000,dc=example"), False
        )
        new = entry.renamed(DN.parse("uidNumber=2000,dc=example"), True)
        self.assertEqual(new.get("uidNumber"), (b"2000",))

    def test_invalidNewRDN(self) -> None:
        """
        An undefined type or an invalid value in the new RDN is an invalid DN,
        as slapd answers invalidDNSyntax.
        """
        entry = alice()
        self.assertRaises(InvalidDN, entry.renamed, DN.parse("fooBar=x,dc=example"), True)
        self.assertRaises(InvalidDN, entry.renamed, DN.parse("uidNumber=abc,dc=example"), True)

    def test_objectClassRules(self) -> None:
        """
        A rename that leaves the entry without a required attribute, or adds
        one no class allows, is an objectClassViolation (65), as slapd checks.
        """
        entry = alice()
        self.assertResult(
            OBJECT_CLASS_VIOLATION, entry.renamed, DN.parse("cn=Ally,dc=example"), True
        )
        self.assertResult(OBJECT_CLASS_VIOLATION, entry.renamed, DN.parse("dc=x,dc=example"), False)


class ObsoleteTests(unittest.SynchronousTestCase):
    """
    OBSOLETE attribute types and object classes are refused in new data
    (RFC 4512 §4.1), with slapd's codes.
    """

    def setUp(self) -> None:
        path = _temporaryFile(self)
        path.write_text(
            "attributeTypes: ( 1.3.6.1.4.1.99999.7.1.1 NAME 'oldAttr' OBSOLETE\n"
            "  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n"
            "objectClasses: ( 1.3.6.1.4.1.99999.7.2.1 NAME 'oldClass' OBSOLETE\n"
            "  SUP top AUXILIARY MAY oldAttr )\n"
            "objectClasses: ( 1.3.6.1.4.1.99999.7.2.2 NAME 'newClass' SUP top AUXILIARY MAY oldAttr )\n"
        )
        self.schema = Schema.standard([path])

    def entry(self, **attributes: Any) -> Entry:
        values = {"objectClass": [b"device"], "cn": [b"x"]}
        values.update({k: [v.encode() for v in vs] for k, vs in attributes.items()})
        return Entry(DN.parse("cn=x,dc=example,dc=com"), values, self.schema)

    def test_addAttribute(self) -> None:
        """
        An entry with an obsolete attribute is constraintViolation (19).
        """
        entry = self.entry(objectClass=["device", "newClass"], oldAttr=["v"])
        error = self.assertRaises(ldaperrors.LDAPConstraintViolation, entry.checkObsolete)
        self.assertIn("oldAttr: attribute is obsolete", str(error))

    def test_addClass(self) -> None:
        """
        An entry with an obsolete class is objectClassViolation (65).
        """
        entry = self.entry(objectClass=["device", "oldClass"])
        error = self.assertRaises(ldaperrors.LDAPObjectClassViolation, entry.checkObsolete)
        self.assertIn("objectClass 'oldClass' is OBSOLETE", str(error))

    def test_modify(self) -> None:
        """
        A Modify may not add an obsolete attribute or class, but existing
        obsolete values may be deleted.
        """
        entry = self.entry(objectClass=["device", "newClass"])
        self.assertRaises(ldaperrors.LDAPConstraintViolation, entry.modified,
                          [Modification("add", "oldAttr", (b"v",))])
        self.assertRaises(ldaperrors.LDAPObjectClassViolation, entry.modified,
                          [Modification("add", "objectClass", (b"oldClass",))])
        old = self.entry(objectClass=["device", "newClass"], oldAttr=["v"])
        self.assertEqual(old.modified([Modification("delete", "oldAttr")]).get("oldAttr"), ())
