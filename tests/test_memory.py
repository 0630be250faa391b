"""
Tests for L{ldapd.backends.memory}: the backend conformance suite, and what
is particular to the in-memory DIT (its indexes).
"""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from ldapd.backends.memory import MemoryBackend, MemoryBackendFactory
from ldapd.dn import DN
from ldapd.filters import compileFilter
from ldapd.operation import Scope
from ldapd.registry import ConfigContext, ConfigError
from ldapd.schema import Schema
from ldapd.testing import BackendTestsMixin, parseFilter


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
        A substring index on an attribute without a substrings rule is refused.
        """
        e = self.assertRaises(ConfigError, MemoryBackendFactory.fromConfig,
                              {"substring_indexes": ["userPassword"]}, self.context())
        self.assertIn("database[0].substring_indexes", str(e))
