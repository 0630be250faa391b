"""
Tests for L{ldapd.backends.memory}: the backend conformance suite, and what
is particular to the in-memory DIT (its indexes).
"""

from __future__ import annotations

import random
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
        Substring filters on indexed attributes are narrowed with trigrams,
        initial and final pieces of one character too; middle pieces too
        short for a trigram, and unindexed attributes, are not.
        """
        self.assertEqual(len(self.plan("(cn=*lic*)")), 1)
        self.assertEqual(len(self.plan("(cn=ali*)")), 1)
        self.assertEqual(len(self.plan("(cn=a*)")), 1)
        self.assertEqual(len(self.plan("(cn=b*e)")), 1)
        self.assertEqual(len(self.plan("(cn=*e)")), 2)
        self.assertIsNone(self.plan("(cn=*li*)"))
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


#: The characters of the random values: few, so that pieces often match,
#: with spaces (squeezed by the rules), case, a letter NFKC and case folding
#: change, and digits and dashes (dropped from telephone numbers).
_ALPHABET = "abcAB  1-2é"


class SubstringIndexTests(unittest.TestCase):
    """
    The substring index never leaves out an entry a substrings filter
    matches, whatever the pieces (initial, middle, final, short or long,
    combined), before and after modifies, renames, moves, deletes and
    rolled back writes; and after them it holds what an index built from
    the entries alone holds.
    """

    #: Enough entries that postings holding more than half of them hold
    #: more than the few always read, and are left to the filter.
    size = 700

    def setUp(self) -> None:
        self.random = random.Random(18)
        self.schema = Schema.standard()
        self.indexes = ["cn,sn,description,telephoneNumber sub", "objectClass eq"]
        suffix = self.schema.normalizeDN(DN.parse("dc=example,dc=com"))
        self.backend = MemoryBackend(suffix, self.schema, indexes=self.indexes)
        self.hooks = RecordingHooks()
        self.op = _internal()
        self.add("dc=example,dc=com", objectClass=[b"dcObject", b"organization"],
                 dc=[b"example"], o=[b"Example"])
        for ou in ("ou=a", "ou=b", "ou=team,ou=a"):
            self.add(f"{ou},dc=example,dc=com", objectClass=[b"organizationalUnit"],
                     ou=[ou.split(",")[0][3:].encode()])
        for n in range(self.size):
            parent = self.random.choice(("ou=a", "ou=b", "ou=team,ou=a"))
            name = self.name(n)
            self.add(f"cn={name},{parent},dc=example,dc=com",
                     objectClass=[b"person"], sn=[self.word().encode()],
                     cn=[name.encode()] + [self.word().encode()
                                           for _ in range(self.random.randrange(3))],
                     **self.optional())

    def name(self, n: object) -> str:
        """
        @return: an RDN value: a word and C{n}.
        """
        return f"{self.word()}{n}".strip()

    def word(self, most: int = 8) -> str:
        return "".join(self.random.choice(_ALPHABET) for _ in range(self.random.randint(1, most)))

    def optional(self) -> dict[str, list[bytes]]:
        """
        @return: random values of the attributes a person may lack.
        """
        values = {}
        if self.random.random() < 0.7:
            values["description"] = [self.word(20).encode()
                                     for _ in range(self.random.randint(1, 2))]
        if self.random.random() < 0.8:
            # One prefix: postings that hold most entries.
            values["telephoneNumber"] = [
                ("+1 555 " + "".join(self.random.choice("0123 -") for _ in range(5))).encode()]
        return values

    def add(self, dn: str, **attributes: list[bytes]) -> None:
        entry = Entry(DN.parse(dn), dict(attributes), self.schema)
        self.successResultOf(self.backend.add(self.op, entry, self.hooks))

    def people(self) -> list[Entry]:
        return [r.entry for r in self.backend._records.values() if r.entry.get("sn")]

    def randomFilter(self) -> str:
        """
        @return: a substrings filter, its pieces mostly taken from values
            the entries hold (so that it matches some), sometimes inside
            an And with an equality assertion.
        """
        attr = self.random.choice(("cn", "sn", "description", "telephoneNumber", "name"))
        holding = [e for e in self.people() if e.get(attr if attr != "name" else "sn")]
        value = self.random.choice(self.random.choice(holding).get(
            attr if attr != "name" else "sn")).decode()

        def piece() -> str:
            if self.random.random() < 0.2:
                return self.word(4)
            start = self.random.randrange(len(value))
            return value[start : start + self.random.randint(1, 5)]

        pieces = [piece() for _ in range(self.random.randint(1, 3))]
        initial = piece() if self.random.random() < 0.4 else ""
        final = piece() if self.random.random() < 0.4 else ""
        text = f"({attr}={initial}*{'*'.join(pieces)}*{final})"
        if self.random.random() < 0.2:
            text = f"(&(objectClass=person){text})"
        return text

    def assertFindsEveryMatch(self, count: int = 150) -> int:
        """
        Check that random filters' candidates hold every entry they match.

        @return: how many of the filters the index narrowed.
        """
        narrowed = 0
        for _ in range(count):
            text = self.randomFilter()
            f = compileFilter(parseFilter(text), self.schema)
            matching = {r.id for r in self.backend._records.values() if f.match(r.entry) is True}
            planned = self.backend._plan(f)
            if planned is not None:
                narrowed += 1
                self.assertEqual(matching - planned, set(), text)
        return narrowed

    def indexed(self, backend: MemoryBackend) -> dict[str, dict[str, set[DN]]]:
        """
        @return: the substring index of C{backend}, entries named by DN.
        """
        names = {r.id: ndn for ndn, r in backend._records.items()}
        return {oid: {gram: {names[i] for i in _postings(table, gram)} for gram in table}
                for oid, table in backend._substrings.items() if table}

    def assertIndexRebuilt(self) -> None:
        """
        The substring index holds what an index of the entries built anew
        holds: nothing stale, nothing missing.
        """
        fresh = MemoryBackend(self.backend.suffix, self.schema, indexes=self.indexes)
        for record in sorted(self.backend._records.values(), key=lambda r: len(r.entry.ndn)):
            self.successResultOf(fresh.add(self.op, record.entry, self.hooks))
        self.assertEqual(self.indexed(self.backend), self.indexed(fresh))

    def test_loaded(self) -> None:
        """
        On the entries as loaded, every match is a candidate, and most
        filters are narrowed.
        """
        self.assertGreater(self.assertFindsEveryMatch(), 75)

    def test_afterWrites(self) -> None:
        """
        After modifies (values added, deleted, replaced), renames (with
        and without the old RDN value kept), a subtree moved, deletes, and
        writes rolled back (alone, by a failing hook, and a whole batch),
        the index finds every match and holds exactly the entries' keys.
        """
        for _ in range(120):
            entry = self.random.choice(self.people())
            kind = self.random.choice(("modify", "modify", "rename", "delete", "failed", "batch"))
            if kind in ("modify", "failed", "batch"):
                mods = [Modification("replace", "description", (self.word(20).encode(),)),
                        Modification("add", "cn", (self.word().encode(),)),
                        Modification("delete", "sn"),
                        Modification("add", "sn", (self.word().encode(),))]
                mods = mods[self.random.randrange(3):]
                if kind == "modify":
                    self.successResultOf(self.backend.modify(self.op, entry.ndn, mods, self.hooks))
                elif kind == "failed":
                    self.hooks.failOn.add(("txn", "modify"))
                    self.failureResultOf(self.backend.modify(self.op, entry.ndn, mods, self.hooks))
                    self.hooks.failOn.clear()
                else:
                    batch = self.backend.batch()
                    self.successResultOf(batch.modify(self.op, entry.ndn, mods, self.hooks))
                    self.successResultOf(batch.delete(self.op, entry.ndn, self.hooks))
                    self.successResultOf(batch.rollback())
            elif kind == "rename":
                newDN = entry.dn.parent().child(DN.parse(f"cn={self.name(self.random.random())}").rdn)
                self.successResultOf(self.backend.rename(
                    self.op, entry.ndn, newDN, self.random.random() < 0.5, self.hooks))
            else:
                self.successResultOf(self.backend.delete(self.op, entry.ndn, self.hooks))
        team = self.schema.normalizeDN(DN.parse("ou=team,ou=a,dc=example,dc=com"))
        self.successResultOf(self.backend.rename(
            self.op, team, DN.parse("ou=team,ou=b,dc=example,dc=com"), True, self.hooks))
        self.assertIndexRebuilt()
        self.assertGreater(self.assertFindsEveryMatch(), 75)


class SubstringRuleTests(unittest.TestCase):
    """
    A substrings assertion is tested with its own type's rule, on the
    values of its subtypes too; the index narrows it only where the values
    were indexed with that rule.
    """

    def test_subtypeOfAnotherRule(self) -> None:
        """
        An assertion on a type whose subtype has a case-exact substrings
        rule under its case-ignoring one is not narrowed (the subtype's keys
        keep the case the assertion's have lost), and finds the entry; one
        on the subtype is narrowed.
        """
        schema = Schema.standard()
        schema.addAttributeType(
            "( 1.3.6.1.4.1.99999.18.1 NAME 'testName' EQUALITY caseIgnoreMatch "
            "SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )")
        schema.addAttributeType(
            "( 1.3.6.1.4.1.99999.18.2 NAME 'testExact' SUP testName "
            "SUBSTR caseExactSubstringsMatch )")
        suffix = schema.normalizeDN(DN.parse("dc=example,dc=com"))
        backend = MemoryBackend(suffix, schema, indexes=["testName,testExact sub"])
        hooks = RecordingHooks()
        self.successResultOf(backend.add(_internal(), Entry(DN.parse("dc=example,dc=com"), {
            "objectClass": [b"dcObject", b"organization", b"extensibleObject"],
            "dc": [b"example"], "o": [b"E"], "testExact": [b"ABCD"]}, schema), hooks))

        def compiled(text: str) -> Any:
            return compileFilter(parseFilter(text), schema)

        self.assertIsNone(backend._plan(compiled("(testName=*abc*)")))
        self.assertEqual(backend._plan(compiled("(testExact=*ABC*)")), {1})
        found: list[Entry] = []
        params = SearchParameters(suffix, Scope.SUB, compiled("(testName=*abc*)"))
        op = _internal()
        op.search = params
        self.successResultOf(backend.search(op, found.append))
        self.assertEqual([str(e.dn) for e in found], ["dc=example,dc=com"])
