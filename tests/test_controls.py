"""
The controls of L{ldapd.controls} in process: how their values are decoded,
and what the write pipeline and searches make of them where real clients
cannot show it (the Assertion tested inside the write's transaction). Their
behaviour through real clients, side by side with slapd, is in
C{tests/test_controls_integration.py}.
"""

from __future__ import annotations

from typing import Any

from ldaptor import ldapfilter
from ldaptor.protocols import pureber, pureldap
from twisted.trial import unittest

from ldapd import controls
from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.filters import And, Equality, Not, Or, compileFilter, loosened
from ldapd.operation import Operation
from ldapd.requests import Equality as EqualityRequest
from ldapd.requests import Present
from ldapd.schema import Schema
from ldapd.testing import DirectoryTestsMixin, executeRequest

ALICE = "uid=alice,ou=people,dc=example,dc=com"


def _filter(text: str) -> bytes:
    return ldapfilter.parseFilter(text).toWire()  # type: ignore[no-any-return]


class DecodingTests(unittest.SynchronousTestCase):
    """
    Each control's value is decoded to its typed object, or refused.
    """

    def decode(self, oid: str, value: bytes | None, critical: bool = True) -> Any:
        registered = {c.oid: c for c in controls.BUILT_IN}[oid]
        return registered.decode(value, critical)

    def test_assertion(self) -> None:
        """
        The Assertion control carries one filter, which it needs.
        """
        decoded = self.decode(controls.ASSERTION, _filter("(uid=alice)"))
        self.assertEqual(decoded, controls.Assertion(EqualityRequest(b"uid", b"alice"), True))
        self.assertRaises(ValueError, self.decode, controls.ASSERTION, None)
        self.assertRaises(ValueError, self.decode, controls.ASSERTION, b"\x04\x01x")
        self.assertRaises(ValueError, self.decode, controls.ASSERTION, _filter("(uid=a)") + b"\x00")

    def test_readEntry(self) -> None:
        """
        Pre-read and post-read carry a SEQUENCE OF attribute descriptions.
        """
        value = pureber.BERSequence([pureber.BEROctetString(b"cn"),
                                     pureber.BEROctetString(b"+")]).toWire()
        self.assertEqual(self.decode(controls.PRE_READ, value).attributes, ("cn", "+"))
        self.assertEqual(self.decode(controls.POST_READ, b"\x30\x00").attributes, ())
        self.assertRaises(ValueError, self.decode, controls.PRE_READ, None)
        self.assertRaises(ValueError, self.decode, controls.PRE_READ, b"\x30\x03\x02\x01\x01")

    def test_matchedValues(self) -> None:
        """
        Matched Values carries simple filter items: no and, or, not.
        """
        items = [ldapfilter.parseFilter("(mail=*)"), ldapfilter.parseFilter("(cn=a)")]
        decoded = self.decode(controls.MATCHED_VALUES, pureber.BERSequence(items).toWire())
        self.assertEqual(decoded.filters, (Present(b"mail"), EqualityRequest(b"cn", b"a")))
        nested = pureber.BERSequence([ldapfilter.parseFilter("(&(cn=a)(sn=b))")]).toWire()
        self.assertRaises(ValueError, self.decode, controls.MATCHED_VALUES, nested)
        self.assertRaises(ValueError, self.decode, controls.MATCHED_VALUES, b"\x30\x00")

    def test_subentries(self) -> None:
        """
        Subentries carries a BOOLEAN visibility.
        """
        self.assertTrue(self.decode(controls.SUBENTRIES, b"\x01\x01\xff").visibility)
        self.assertFalse(self.decode(controls.SUBENTRIES, b"\x01\x01\x00").visibility)
        self.assertRaises(ValueError, self.decode, controls.SUBENTRIES, None)
        self.assertRaises(ValueError, self.decode, controls.SUBENTRIES, b"\x02\x01\x01")

    def test_sessionTracking(self) -> None:
        """
        Session Tracking carries four strings.
        """
        value = pureber.BERSequence([pureber.BEROctetString(v) for v in (
            b"192.0.2.7", b"host", b"1.3.6.1.4.1.21008.108.63.1.3", b"bob")]).toWire()
        self.assertEqual(self.decode(controls.SESSION_TRACKING, value, False),
                         controls.SessionTracking("192.0.2.7", "host", "bob"))
        self.assertRaises(ValueError, self.decode, controls.SESSION_TRACKING, b"\x30\x00")

    def test_flags(self) -> None:
        """
        Don't Use Copy, Permissive Modify and Relax Rules take no value.
        """
        for oid in (controls.DONT_USE_COPY, controls.PERMISSIVE_MODIFY, controls.RELAX_RULES):
            self.assertEqual(self.decode(oid, None), controls.Flag(True))
            self.assertRaises(ValueError, self.decode, oid, b"\x01\x01\xff")


class PermissiveTests(unittest.SynchronousTestCase):
    """
    A permissive modification adds only the values that are not there and
    deletes only those that are.
    """

    def setUp(self) -> None:
        self.schema = Schema.standard()
        self.entry = Entry(DN.parse("cn=x"), [("objectClass", [b"device"]), ("cn", [b"x"]),
                                              ("description", [b"a"])], self.schema)

    def test_add(self) -> None:
        """
        Existing values are left as they are, new ones added.
        """
        new = self.entry.modified([Modification("add", "description", (b"A", b"b"), True)])
        self.assertEqual(new.get("description"), (b"a", b"b"))
        same = self.entry.modified([Modification("add", "description", (b"a",), True)])
        self.assertEqual(same.get("description"), (b"a",))

    def test_delete(self) -> None:
        """
        Missing values and attributes are no error.
        """
        new = self.entry.modified([Modification("delete", "description", (b"a", b"z"), True),
                                   Modification("delete", "l", (), True)])
        self.assertEqual(new.get("description"), ())


class LoosenedTests(unittest.SynchronousTestCase):
    """
    L{loosened} leaves out assertions on given types so that the filter
    selects at least what the original does.
    """

    def setUp(self) -> None:
        self.schema = Schema.standard()
        has = self.schema.attributeType("hasSubordinates")
        assert has is not None
        self.types = frozenset({has})

    def compile(self, text: str) -> Any:
        from ldapd._codec import decodeFilters

        return compileFilter(decodeFilters(_filter(text))[0], self.schema)

    def test_untouched(self) -> None:
        """
        A filter without such assertions is returned as it is.
        """
        f = self.compile("(&(uid=a)(cn=b))")
        self.assertIs(loosened(f, self.types), f)

    def test_polarity(self) -> None:
        """
        An assertion is absolute true where it counts positively, absolute
        false under a Not.
        """
        f = loosened(self.compile("(&(uid=a)(hasSubordinates=TRUE)(!(hasSubordinates=FALSE)))"),
                     self.types)
        assert isinstance(f, And)
        self.assertIsInstance(f.parts[0], Equality)
        self.assertIsInstance(f.parts[1], And)
        self.assertEqual(f.parts[1].parts, [])  # type: ignore[attr-defined]
        assert isinstance(f.parts[2], Not)
        self.assertIsInstance(f.parts[2].part, Or)
        self.assertEqual(f.parts[2].part.parts, [])  # type: ignore[attr-defined]


class _ChangeFirst:
    """
    A plugin whose C{pre_modify} changes the description of the entry
    being modified, through the directory, before the client's write runs:
    what a concurrent write would do between a check made before the
    transaction and the write.
    """

    name = "changefirst"

    def attach(self, host: Any) -> None:
        self.directory = host.directory

    async def pre_modify(self, op: Operation, modifications: Any, ndn: DN) -> None:
        if op.internal:
            return
        await self.directory.modify(self.directory.internalOperation(), ndn, [
            Modification("replace", "description", (b"changed meanwhile",))])


class AssertionInTransactionMixin(DirectoryTestsMixin):
    """
    The Assertion control of a write is tested on the entry as the write's
    transaction has it, not as it was when the request arrived.
    """

    def makePlugins(self, schema: Schema) -> list[Any]:
        return [_ChangeFirst()]

    async def test_changedMeanwhile(self) -> None:
        """
        An assertion true of the entry when the modify arrives, false once
        another write changed it before the modify's transaction, fails
        the modify (122), which changes nothing.
        """
        before = await self.directory.get(self.directory.internalOperation(), self.ndn(ALICE))
        description = before.get("description")[0].decode()
        request = pureldap.LDAPModifyRequest(object=ALICE, modification=[
            pureber.BERSequence([pureber.BEREnumerated(2), pureber.BERSequence([
                pureldap.LDAPAttributeDescription("roomNumber"),
                pureber.BERSet([pureldap.LDAPAttributeValue(b"42")])])])])
        responses, done = executeRequest(self.directory, self.connection, request, 1, [
            (controls.ASSERTION, True, _filter(f"(description={description})"))])
        await done
        self.assertEqual(responses[-1].value.resultCode, 122)
        after = await self.directory.get(self.directory.internalOperation(), self.ndn(ALICE))
        self.assertEqual(after.get("roomNumber"), ())
        self.assertEqual(after.get("description"), (b"changed meanwhile",))


class MemoryAssertionInTransactionTests(AssertionInTransactionMixin, unittest.TestCase):
    """
    On the memory backend.
    """


class SQLiteAssertionInTransactionTests(AssertionInTransactionMixin, unittest.TestCase):
    """
    On the sql backend with SQLite.
    """

    backend = "sqlite"


class PostgreSQLAssertionInTransactionTests(AssertionInTransactionMixin, unittest.TestCase):
    """
    On the sql backend with PostgreSQL (skipped without it).
    """

    backend = "postgresql"
