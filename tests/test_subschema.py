"""
Schema-driven clients and cn=Subschema: every published value follows the
RFC 4512 grammar strictly (field order included, as Apache Directory Studio's
parser requires), and ldap3 loads the schema with C{get_info=ALL} and uses it.
"""

from __future__ import annotations

import datetime
import re

import ldap3
import pytest
from ldap3.core.exceptions import LDAPAttributeError
from twisted.internet import task
from twisted.trial import unittest

from ldapd.directory import Directory
from ldapd.schema import Schema
from ldapd.testing import ServerTestsMixin

# RFC 4512 §1.4 and §4.1, with SP as one or more spaces and WSP as any.
_NUMERICOID = r"(?:0|[1-9]\d*)(?:\.(?:0|[1-9]\d*))+"
_DESCR = r"[A-Za-z][A-Za-z0-9-]*"
_OID = f"(?:{_DESCR}|{_NUMERICOID})"
_QDESCR = f"'{_DESCR}'"
_QDESCRS = f"(?:{_QDESCR}|\\( *{_QDESCR}(?: +{_QDESCR})* *\\))"
_QDSTRING = r"'(?:[^'\\]|\\27|\\5[Cc])+'"
_OIDS = f"(?:{_OID}|\\( *{_OID}(?: *\\$ *{_OID})* *\\))"
_EXTENSIONS = r"(?: +X-[A-Za-z_-]+ +(?:'[^']*'|\( *'[^']*'(?: +'[^']*')* *\)))*"


def _grammar(*fields: str) -> re.Pattern[str]:
    body = "".join(f"(?: +{f})?" for f in fields)
    return re.compile(f"\\( *{_NUMERICOID}{body}{_EXTENSIONS} *\\)")


_NAME, _DESC, _OBSOLETE = f"NAME +{_QDESCRS}", f"DESC +{_QDSTRING}", "OBSOLETE"

#: The grammar of each kind of value of cn=Subschema.
GRAMMARS = {
    "attributeTypes": _grammar(
        _NAME, _DESC, _OBSOLETE, f"SUP +{_OID}", f"EQUALITY +{_OID}", f"ORDERING +{_OID}",
        f"SUBSTR +{_OID}", f"SYNTAX +{_NUMERICOID}(?:\\{{\\d+\\}})?", "SINGLE-VALUE",
        "COLLECTIVE", "NO-USER-MODIFICATION",
        "USAGE +(?:userApplications|directoryOperation|distributedOperation|dSAOperation)",
    ),
    "objectClasses": _grammar(
        _NAME, _DESC, _OBSOLETE, f"SUP +{_OIDS}", "(?:ABSTRACT|STRUCTURAL|AUXILIARY)",
        f"MUST +{_OIDS}", f"MAY +{_OIDS}",
    ),
    "matchingRules": _grammar(_NAME, _DESC, _OBSOLETE, f"SYNTAX +{_NUMERICOID}"),
    "matchingRuleUse": _grammar(_NAME, _DESC, _OBSOLETE, f"APPLIES +{_OIDS}"),
    "ldapSyntaxes": _grammar(_DESC),
}


class GrammarTests(unittest.SynchronousTestCase):
    """
    Every value cn=Subschema publishes is a description in RFC 4512 form.
    """

    def test_grammar(self) -> None:
        """
        Each value of each schema attribute matches its RFC 4512 production,
        for the default schemas and for rfc2307bis.
        """
        for names in (None, ("core", "cosine", "inetorgperson", "rfc2307bis")):
            schema = Schema.standard() if names is None else Schema.standard(names=names)
            subschema = Directory([], schema=schema, reactor=task.Clock()).subschema.entry
            for attribute, grammar in GRAMMARS.items():
                values = subschema.get(attribute)
                self.assertTrue(values, attribute)
                for value in values:
                    self.assertRegex(value.decode("utf-8"), grammar, attribute)

    def test_grammarRefuses(self) -> None:
        """
        The grammar is strict: fields out of order do not match.
        """
        self.assertNotRegex("( 2.5.4.3 SUP name NAME 'cn' )", GRAMMARS["attributeTypes"])
        self.assertRegex("( 2.5.4.3 NAME 'cn' SUP name )", GRAMMARS["attributeTypes"])


@pytest.mark.integration
class LDAP3SchemaTests(ServerTestsMixin, unittest.SynchronousTestCase):
    """
    ldap3 reads the schema of the real server and checks names and formats
    values with it.
    """

    def setUp(self) -> None:
        super().setUp()
        assert self.server is not None
        self.ldapServer = ldap3.Server(self.server.url, get_info=ldap3.ALL)
        self.connection = ldap3.Connection(self.ldapServer, auto_bind=True)
        self.addCleanup(self.connection.unbind)

    def test_loaded(self) -> None:
        """
        C{get_info=ALL} loads every attribute type, object class, syntax,
        matching rule and matching rule use.
        """
        schema = self.ldapServer.schema
        self.assertIsNotNone(schema)
        self.assertIn("cn", schema.attribute_types)
        self.assertEqual(schema.attribute_types["commonName"].oid, "2.5.4.3")
        self.assertEqual(schema.object_classes["inetOrgPerson"].superior, ["organizationalPerson"])
        self.assertIn("1.3.6.1.4.1.1466.115.121.1.15", schema.ldap_syntaxes)
        self.assertIn("caseIgnoreMatch", schema.matching_rules)
        self.assertTrue(schema.matching_rule_uses)
        self.connection.search("cn=Subschema", "(objectClass=*)", ldap3.BASE,
                               attributes=["attributeTypes", "objectClasses", "createTimestamp"])
        entry = self.connection.response[0]["raw_attributes"]
        self.assertEqual(len(schema.attribute_types), len(entry["attributeTypes"]))
        self.assertEqual(len(schema.object_classes), len(entry["objectClasses"]))
        self.assertTrue(entry["createTimestamp"])

    def test_checkNames(self) -> None:
        """
        With the schema, ldap3 refuses attribute names the server does not
        define and formats values by their syntax.
        """
        checked = ldap3.Connection(self.ldapServer, auto_bind=True, check_names=True)
        self.addCleanup(checked.unbind)
        self.assertRaises(LDAPAttributeError, checked.search, "dc=example,dc=com",
                          "(uid=alice)", attributes=["noSuchAttribute"])
        checked.search("dc=example,dc=com", "(uid=alice)",
                       attributes=["uidNumber", "createTimestamp", "cn"])
        entry = checked.entries[0]
        self.assertEqual(entry.uidNumber.value, 10001)
        self.assertIsInstance(entry.createTimestamp.value, datetime.datetime)
        self.assertEqual(entry.cn.value, "Alice Anderson")
