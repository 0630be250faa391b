"""
Tests for L{ldapd.backends.memory}: the backend conformance suite, and what
is particular to the in-memory DIT (its indexes).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from ldapd.backends.memory import MemoryBackend, MemoryBackendFactory, _post, _postings, _unpost
from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.filters import compileFilter
from ldapd.operation import Connection, Operation, Scope, SearchParameters
from ldapd.registry import ConfigContext, ConfigError
from ldapd.schema import Schema
from ldapd.testing import BackendTestsMixin, RecordingHooks, parseFilter


class MemoryBackendTests(BackendTestsMixin, unittest.TestCase):
    """
    The in-memory backend passes the backend conformance suite.
    """

    def makeBackend(self, suffix: DN, schema: Schema) -> MemoryBackend:
        return MemoryBackend(suffix, schema)

    def plan(self, text: str) -> Any:
        return self.backend._plan(compileFilter(parseFilter(text), self.schema))

    def test_equalityIndexNarrows(self) -> None:
        """
        An equality filter is answered from the index: the candidates are
        exactly the matching entries, whatever the case of the value.
        """
        self.assertEqual(len(self.plan("(uid=ALICE)")), 1)
        self.assertEqual(len(self.plan("(&(objectClass=person)(uid=bob))")), 1)
        self.assertEqual(len(self.plan("(|(uid=alice)(uid=bob))")), 2)

    def test_objectClassIndexHasSuperclasses(self) -> None:
        """
        The objectClass index holds each class's superclasses, so that an
        assertion on a superclass finds entries that do not list it.
        """
        d = self.backend.add(self.backendOp(), self.entry(
            "uid=carol,ou=people,dc=example,dc=com", objectClass="inetOrgPerson", uid="carol",
            cn="Carol", sn="Example"), self.hooks)
        d.addCallback(lambda _: self.assertEqual(len(self.plan("(objectClass=person)")), 3))
        d.addCallback(lambda _: self.search(self.suffixText, Scope.SUB, "(objectClass=person)"))
        d.addCallback(lambda found: self.assertIn("uid=carol,ou=people,dc=example,dc=com", found))
        return d

    def test_substringIndexNarrows(self) -> None:
        """
        Substring filters on indexed attributes are narrowed with trigrams;
        pieces too short for a trigram, or unindexed attributes, are not.
        """
        self.assertEqual(len(self.plan("(cn=*lic*)")), 1)
        self.assertEqual(len(self.plan("(cn=ali*)")), 1)
        self.assertIsNone(self.plan("(cn=a*)"))
        self.assertIsNone(self.plan("(o=*xam*)"))

    def test_unindexable(self) -> None:
        """
        Negations, ordering and presence of objectClass scan every entry.
        """
        self.assertIsNone(self.plan("(!(uid=alice))"))
        self.assertIsNone(self.plan("(objectClass=*)"))
        self.assertIsNone(self.plan("(|(uid=alice)(!(uid=bob)))"))

    def test_unindexedType(self) -> None:
        """
        Assertions on types without an index of their kind scan every
        entry (the default indexes have no presence indexes, and no
        equality index on sn), and still find what matches.
        """
        self.assertIsNone(self.plan("(sn=example)"))
        self.assertIsNone(self.plan("(uid=*)"))
        self.assertEqual(len(self.plan("(&(sn=example)(uid=alice))")), 1)
        d = self.search(self.suffixText, Scope.SUB, "(&(sn=example)(uid=*))")
        d.addCallback(lambda found: self.assertEqual(sorted(found), [
            "uid=alice,ou=people,dc=example,dc=com", "uid=bob,ou=people,dc=example,dc=com"]))
        return d

    def test_indexFollowsWrites(self) -> None:
        """
        After a delete and a rename, the indexes no longer hold the old
        entries, and hold the renamed ones.
        """
        ndn = self.ndn("uid=bob,ou=people,dc=example,dc=com")
        d = self.backend.rename(self.backendOp(), ndn, DN.parse("uid=rob,ou=people,dc=example,dc=com"),
                                True, self.hooks)
        d.addCallback(lambda _: self.assertEqual(self.plan("(uid=bob)"), set()))
        d.addCallback(lambda _: self.assertEqual(len(self.plan("(uid=rob)")), 1))
        return d

    def test_indexFollowsRolledBackModify(self) -> None:
        """
        A Modify rolled back after its write (a transaction hook failed)
        leaves the indexes of the changed attribute as they were, and those
        of the others untouched.
        """
        ndn = self.ndn("uid=alice,ou=people,dc=example,dc=com")
        self.hooks.failOn.add(("txn", "modify"))
        self.failureResultOf(self.backend.modify(
            self.backendOp(), ndn, [Modification("replace", "mail", (b"x@y",))], self.hooks))
        self.assertEqual(self.plan("(mail=x@y)"), set())
        self.assertEqual(len(self.plan("(mail=alice@example.com)")), 1)
        self.assertEqual(len(self.plan("(mail=alice@*)")), 1)
        self.assertEqual(len(self.plan("(uid=alice)")), 1)

    def backendOp(self) -> Any:
        from ldapd.testing import _op

        return _op()

    def test_manyEntries(self) -> Any:
        """
        A search over more entries than one batch yields to the reactor and
        still returns every entry, in order.
        """
        from twisted.internet import defer

        d = defer.succeed(None)
        for i in range(600):
            d.addCallback(lambda _, i=i: self.backend.add(
                self.backendOp(), self.person(f"user{i:04d}"), self.hooks))
        d.addCallback(lambda _: self.search("ou=people,dc=example,dc=com", Scope.ONE, "(uid=user*)"))
        d.addCallback(lambda found: self.assertEqual(
            found, [f"uid=user{i:04d},ou=people,dc=example,dc=com" for i in range(600)]))
        return d


    def test_emitWaits(self) -> Any:
        """
        When sending an entry returns a Deferred, the search goes on with
        the next entries once it fires, and ends after them; what sending
        raises fails the search.
        """
        from ldapd.testing import _op

        params = SearchParameters(
            self.ndn("ou=people,dc=example,dc=com"), Scope.ONE,
            compileFilter(parseFilter("(objectClass=*)"), self.schema))
        found: list[str] = []
        gate: defer.Deferred[None] = defer.Deferred()

        def emit(entry: Any) -> Any:
            found.append(str(entry.dn))
            return gate if len(found) == 1 else None

        d = self.backend.search(_op(params), emit)
        self.assertNoResult(d)
        self.assertEqual(len(found), 1)
        gate.callback(None)
        self.successResultOf(d)
        self.assertGreater(len(found), 1)
        self.assertEqual(found, self.successResultOf(
            self.search("ou=people,dc=example,dc=com", Scope.ONE)))

        def failing(entry: Any) -> None:
            raise ValueError("stop")

        self.failureResultOf(self.backend.search(_op(params), failing), ValueError)


class MemoryBackendFactoryTests(unittest.TestCase):
    """
    The factory builds the backend from its configuration table.
    """

    def context(self) -> ConfigContext:
        schema = Schema.standard()
        return ConfigContext(None, "database[0]", schema, None,
                             schema.normalizeDN(DN.parse("dc=example,dc=com")))

    def test_unknownKey(self) -> None:
        """
        An unknown key is a configuration error naming it.
        """
        e = self.assertRaises(ConfigError, MemoryBackendFactory.fromConfig, {"url": "x"},
                              self.context())
        self.assertIn("database[0].url: unknown key", str(e))

    def test_badIndex(self) -> None:
        """
        A substring index on an attribute without a substrings rule is
        refused, naming the setting and the type.
        """
        e = self.assertRaises(ConfigError, MemoryBackendFactory.fromConfig,
                              {"indexes": ["userPassword sub"]}, self.context())
        self.assertIn("database[0].indexes", str(e))
        self.assertIn("userPassword has no substrings matching rule", str(e))

    def test_indexesNotAList(self) -> None:
        """
        C{indexes} must be a list of strings.
        """
        e = self.assertRaises(ConfigError, MemoryBackendFactory.fromConfig,
                              {"indexes": "uid eq"}, self.context())
        self.assertIn("database[0].indexes: must be a list", str(e))

    def test_indexes(self) -> None:
        """
        The configured indexes are those the backend keeps; without the
        key, slapd's usual equality indexes and substrings on the names
        clients complete.
        """
        uid = self.context().schema.attributeType("uid")
        configured = MemoryBackendFactory.fromConfig({"indexes": ["uid pres"]}, self.context())
        self.assertEqual(configured.indexes.kinds(uid.oid), {"pres"})
        default = MemoryBackendFactory.fromConfig({}, self.context())
        self.assertEqual(default.indexes.kinds(uid.oid), {"eq", "sub"})


class PostingsTests(unittest.TestCase):
    """
    Postings are a bare id for one entry and a sorted array of ids for more,
    whatever the order ids are added and removed in.
    """

    def test_postAndUnpost(self) -> None:
        """
        Ids added out of order, twice, and removed, leave the sorted ids;
        the last one left is a bare id again, and none removes the key.
        """
        table: dict[str, Any] = {}
        for i in (5, 3, 9, 3, 7, 1):
            _post(table, "k", i)
        self.assertEqual(list(_postings(table, "k")), [1, 3, 5, 7, 9])
        for i in (5, 1, 4, 9, 7):
            _unpost(table, "k", i)
        self.assertEqual(table, {"k": 3})
        self.assertEqual(_postings(table, "k"), (3,))
        _unpost(table, "k", 3)
        self.assertEqual(table, {})
        self.assertEqual(_postings(table, "k"), ())


def _internal() -> Operation:
    """
    @return: an operation the server issues itself.
    """
    return Operation(Connection("test", task.Clock()), 1, None, internal=True)


class CompactStorageTests(unittest.TestCase):
    """
    Stored entries share their superiors' RDNs and equal attributes, and
    stay equal to the entries given.
    """

    def setUp(self) -> Any:
        self.schema = Schema.standard()
        suffix = self.schema.normalizeDN(DN.parse("dc=example,dc=com"))
        self.backend = MemoryBackend(suffix, self.schema)
        self.hooks = RecordingHooks()
        op = _internal()
        d = defer.succeed(None)
        for dn, attributes in [
            ("dc=example,dc=com", {"objectClass": [b"dcObject", b"organization"], "dc": [b"example"],
                                   "o": [b"Example"]}),
            ("ou=People,dc=example,dc=com", {"objectClass": [b"organizationalUnit"], "ou": [b"People"]}),
            ("uid=a,ou=People,dc=example,dc=com", {"objectClass": [b"account"], "uid": [b"a"]}),
            ("uid=b,ou=People,dc=example,dc=com", {"objectClass": [b"account"], "uid": [b"b"]}),
        ]:
            entry = Entry(DN.parse(dn), attributes, self.schema)
            d.addCallback(lambda _, e=entry: self.backend.add(op, e, self.hooks))
        return d

    def stored(self, dn: str) -> Entry:
        return self.successResultOf(self.backend.get(_internal(), self.schema.normalizeDN(DN.parse(dn))))

    def test_namesShared(self) -> None:
        """
        Sibling entries hold their parent's RDNs, normalised and as written,
        as the same objects, and their names are still equal to their own.
        """
        a = self.stored("uid=a,ou=People,dc=example,dc=com")
        b = self.stored("uid=b,ou=People,dc=example,dc=com")
        people = self.stored("ou=People,dc=example,dc=com")
        self.assertEqual(str(a.dn), "uid=a,ou=People,dc=example,dc=com")
        self.assertEqual(a.ndn, self.schema.normalizeDN(DN.parse("uid=a,ou=people,dc=example,dc=com")))
        self.assertIs(a.ndn.rdns[1], people.ndn.rdns[0])
        self.assertIs(a.dn.rdns[1], b.dn.rdns[1])

    def test_valuesShared(self) -> None:
        """
        Equal values of different entries are one object; different ones
        are not.
        """
        a = self.stored("uid=a,ou=People,dc=example,dc=com")
        b = self.stored("uid=b,ou=People,dc=example,dc=com")
        self.assertIs(a.get("objectClass")[0], b.get("objectClass")[0])
        self.assertIsNot(a.get("uid")[0], b.get("uid")[0])
        self.assertEqual(b.get("uid"), (b"b",))


class ReindexTests(unittest.TestCase):
    """
    A modified entry's index keys are those of its new attributes, even
    when two descriptions of one type share a value.
    """

    def test_modifyKeepsSharedKeys(self) -> None:
        """
        Removing C{cn;lang-en: x} leaves C{cn: x} indexed (equality,
        presence and substrings); the new value is found and the removed
        one is not.
        """
        schema = Schema.standard()
        suffix = schema.normalizeDN(DN.parse("dc=example,dc=com"))
        backend = MemoryBackend(suffix, schema, indexes=["cn eq,pres,sub", "description eq"])
        hooks = RecordingHooks()
        op = _internal()
        top = Entry(DN.parse("dc=example,dc=com"),
                    {"objectClass": [b"dcObject", b"organization"], "dc": [b"example"], "o": [b"E"]},
                    schema)
        device = Entry(DN.parse("cn=xyz,dc=example,dc=com"),
                       {"objectClass": [b"device"], "cn": [b"xyz"], "cn;lang-en": [b"xyz", b"old"]},
                       schema)
        self.successResultOf(backend.add(op, top, hooks))
        self.successResultOf(backend.add(op, device, hooks))
        self.successResultOf(backend.modify(op, device.ndn, [
            Modification("delete", "cn;lang-en"), Modification("add", "description", (b"new",))],
            hooks))

        def plan(text: str) -> Any:
            return backend._plan(compileFilter(parseFilter(text), schema))

        self.assertEqual(len(plan("(cn=xyz)")), 1)
        self.assertEqual(len(plan("(cn=*)")), 1)
        self.assertEqual(len(plan("(cn=*yz)")), 1)
        self.assertEqual(len(plan("(cn=old)")), 0)
        self.assertEqual(len(plan("(description=new)")), 1)
