"""
Tests for L{ldapd.schema.syntaxes}, the shipped schema files and
L{ldapd.csn}: what values each syntax takes (as slapd does), the choice
between nis and rfc2307bis, and the form of CSNs.
"""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ldaptor.protocols.ldap import ldaperrors
from twisted.trial import unittest

from ldapd.config import ConfigError, loadConfig
from ldapd.csn import CSNGenerator, formatCSN
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.schema import SYNTAXES, InvalidValue, Schema, SchemaError
from ldapd.schema.schema import STANDARD_SCHEMAS

S = "1.3.6.1.4.1.1466.115.121.1."

#: A self-signed X.509 certificate, DER.
CERTIFICATE = base64.b64decode(
    "MIIBczCCARmgAwIBAgIUF9DcZqpcTsl9Sx1fSsLRbzIyPYswCgYIKoZIzj0EAwIwDjEMMAoGA1UEAwwDem9lMCAX"
    "DTI2MTEyMTA2NTEzN1oYDzIxMjYxMDI4MDY1MTM3WjAOMQwwCgYDVQQDDAN6b2UwWTATBgcqhkjOPQIBBggqhkjO"
    "PQMBBwNCAAT6zARU8wnk29bQbN1M49LKadGaB5zDBX4EbLjc+HDPnOGyJWf2ieMYIkXgh0CQ+b3WpMFDoipMuE2B"
    "LiySaVIao1MwUTAdBgNVHQ4EFgQUX8hOmuddirD7uA5Cfw5hGotJmY4wHwYDVR0jBBgwFoAUX8hOmuddirD7uA5C"
    "fw5hGotJmY4wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA/qocsDb54h7pfZSGfWYOJdqSa6df"
    "ZCETrbQc+4cbY/gCIFu/qq+4XNFwGfNBPbNOioFpC8rEPGR7w2UsCp80F67+"
)

#: Per syntax: values it takes and values it refuses (slapd's verdicts).
VALUES = {
    "15": ([b"x", "Ünïcode".encode()], [b"", b"\xff\xfe"]),
    "26": ([b"", b"/home/alice", b"a@b"], ["jürgen".encode()]),
    "27": ([b"0", b"-5", b"10001"], [b"", b"010", b"-0", b"+5", b"ten", b"1.5"]),
    "7": ([b"TRUE", b"FALSE"], [b"true", b"yes", b""]),
    "12": ([b"", b"uid=a,dc=example", b"cn=a\\,b"], [b"not a dn", b"=x"]),
    "24": ([b"20261121065323Z", b"202611210653Z", b"2026112106Z", b"20261121065323.5+0130"],
           [b"20261321065323Z", b"2026-11-21", b"20261121065323"]),
    "50": ([b"+1 202 555 0101", b"+49 (30) 1234-5"], [b"", b"555#123", "☎".encode()]),
    "38": ([b"2.5.4.3", b"cn", b"x-my-name"], [b"2.5.", b"02.5", b"1cn", b""]),
    "44": ([b"Example Ltd.", b"a=b"], [b"", b"a@b", b"a_b"]),
    "36": ([b"123", b"12 34"], [b"", b"12a"]),
    "40": ([b"", b"\x00\xff"], []),
    "41": ([b"1 Main St$Springfield", b"a$$b", b"a\\24b$c\\5cd"], [b"", b"a\\41b", b"\xff"]),
    "11": ([b"DE", b"us"], [b"USA", b"D", b"D_"]),
    "28": ([b"\xff\xd8\xff\xe0", b""], []),
    "6": ([b"'0101'B", b"''B"], [b"0101", b"'012'B"]),
    "34": ([b"uid=a,dc=example#'01'B", b"uid=a,dc=example"], [b"nonsense#'01'B"]),
    "8": ([CERTIFICATE], [b"0\x00", b"\x30\x03\x02\x01\x01", CERTIFICATE[:-1]]),
}



def _temporaryFile(case: unittest.SynchronousTestCase, name: str = "test.schema") -> Path:
    """
    @return: the path of a file C{name} in a temporary folder removed after C{case}.
    """
    folder = tempfile.mkdtemp()
    case.addCleanup(shutil.rmtree, folder)
    return Path(folder) / name

class SyntaxTests(unittest.SynchronousTestCase):
    """
    Tests for L{ldapd.schema.syntaxes.SYNTAXES}.
    """

    def test_values(self) -> None:
        """
        Each checked syntax takes the values slapd takes and refuses the
        others with L{InvalidValue}.
        """
        for number, (good, bad) in VALUES.items():
            syntax = SYNTAXES[S + number]
            for value in good:
                syntax.check(value)
            for value in bad:
                self.assertRaises(InvalidValue, syntax.check, value)

    def test_uuidAndCSN(self) -> None:
        """
        entryUUID and entryCSN values are checked for their form.
        """
        SYNTAXES["1.3.6.1.1.16.1"].check(b"8c7f9cb4-6e2a-43e7-97eb-60a92674809d")
        self.assertRaises(InvalidValue, SYNTAXES["1.3.6.1.1.16.1"].check, b"8c7f9cb4")
        csn = SYNTAXES["1.3.6.1.4.1.4203.666.11.2.1"]
        csn.check(b"20261121064159.336766Z#000000#000#000000")
        self.assertRaises(InvalidValue, csn.check, b"20261121064159Z")

    def test_describe(self) -> None:
        """
        A syntax describes itself as an RFC 4512 SyntaxDescription, with
        slapd's extensions for binary syntaxes.
        """
        self.assertEqual(SYNTAXES[S + "15"].describe(), f"( {S}15 DESC 'Directory String' )")
        self.assertEqual(
            SYNTAXES[S + "8"].describe(),
            f"( {S}8 DESC 'Certificate' X-BINARY-TRANSFER-REQUIRED 'TRUE' X-NOT-HUMAN-READABLE 'TRUE' )",
        )

    def test_everySyntaxKnown(self) -> None:
        """
        Every syntax the shipped schema files use is known, so that
        cn=Subschema describes it.
        """
        for names in (("core", "cosine", "inetorgperson", "nis", "ppolicy", "dyngroup"),
                      ("core", "cosine", "inetorgperson", "rfc2307bis")):
            schema = Schema.standard(names=names)
            for at in schema.attributeTypes:
                self.assertIn(at.syntax, SYNTAXES, at.name)

    def test_checkValue(self) -> None:
        """
        L{Schema.checkValue} checks the syntax before the equality rule: an
        empty description, valid for caseIgnoreMatch, is not a Directory String.
        """
        schema = Schema.standard()
        description = schema.attributeType("description")
        self.assertEqual(schema.checkValue(description, b" A  B "), "a b")
        self.assertRaises(InvalidValue, schema.checkValue, description, b"")


class SchemaFilesTests(unittest.SynchronousTestCase):
    """
    Tests for the shipped schema files and their selection.
    """

    def test_default(self) -> None:
        """
        By default the standard schema has RFC 2307's structural posixGroup,
        the password policy and the dynamic groups.
        """
        schema = Schema.standard()
        self.assertEqual(schema.objectClass("posixGroup").kind, "STRUCTURAL")
        self.assertEqual(schema.objectClass("pwdPolicy").kind, "AUXILIARY")
        self.assertTrue(schema.attributeType("pwdChangedTime").noUserModification)
        self.assertTrue(schema.attributeType("pwdChangedTime").operational)
        self.assertIs(schema.attributeType("memberURL").sup, schema.attributeType("labeledURI"))
        self.assertIsNone(schema.objectClass("automount"))

    def test_rfc2307bis(self) -> None:
        """
        rfc2307bis in place of nis makes posixGroup auxiliary (so that it
        combines with groupOfNames) and adds the automount classes.
        """
        schema = Schema.standard(names=("core", "cosine", "inetorgperson", "rfc2307bis"))
        group = schema.objectClass("posixGroup")
        self.assertEqual(group.kind, "AUXILIARY")
        self.assertEqual([at.name for at in group.must], ["gidNumber"])
        self.assertEqual(schema.objectClass("automount").kind, "STRUCTURAL")
        self.assertIsNone(schema.objectClass("pwdPolicy"))

    def test_rfc2307bisGroup(self) -> None:
        """
        With rfc2307bis, one entry can be a groupOfNames and a posixGroup;
        with nis, two structural chains are an objectClassViolation.
        """
        values = {"objectClass": [b"groupOfNames", b"posixGroup"], "cn": [b"staff"],
                  "gidNumber": [b"10000"], "member": [b"uid=alice,dc=example,dc=com"]}
        dn = DN.parse("cn=staff,dc=example,dc=com")
        bis = Schema.standard(names=("core", "cosine", "inetorgperson", "rfc2307bis"))
        Entry(dn, values, bis).validate()
        self.assertEqual(Entry(dn, values, bis).structuralClass(), bis.objectClass("groupOfNames"))
        self.assertRaises(ldaperrors.LDAPObjectClassViolation,
                          Entry(dn, values, Schema.standard()).validate)

    def test_bothNIS(self) -> None:
        """
        nis and rfc2307bis cannot be loaded together: they define the same
        OIDs, which is reported with the file and line.
        """
        error = self.assertRaises(
            SchemaError, Schema.standard, names=("core", "cosine", "nis", "rfc2307bis")
        )
        self.assertRegex(error.where, r"rfc2307bis\.schema:\d+$")

    def test_unknownName(self) -> None:
        """
        A schema name that is not shipped is refused, naming the known ones.
        """
        error = self.assertRaises(SchemaError, Schema.standard, names=("core", "samba"))
        self.assertIn("'samba'", str(error))
        self.assertIn("rfc2307bis", str(error))
        self.assertIn("rfc2307bis", STANDARD_SCHEMAS)

    def test_unknownSyntax(self) -> None:
        """
        An attribute type with a syntax ldapd does not know is a broken
        definition, reported with its file and line, as slapd refuses it.
        """
        path = _temporaryFile(self)
        path.write_text("# test\nattributeTypes: ( 1.3.6.1.4.1.99999.1 NAME 'odd'\n  SYNTAX 1.2.3.4 )\n")
        error = self.assertRaises(SchemaError, Schema().loadFile, path)
        self.assertEqual(error.where, f"{path}:2")
        self.assertIn("unknown syntax 1.2.3.4", str(error))

    def _config(self, server: str) -> Path:
        path = _temporaryFile(self, "ldapd.toml")
        path.write_text(
            f'[server]\nlisten = ["tcp:0"]\n{server}\n'
            '[[database]]\nsuffix = "dc=example,dc=com"\nbackend = "memory"\n'
        )
        return path

    def test_config(self) -> None:
        """
        C{[server] schema} chooses the shipped schemas.
        """
        config = loadConfig(self._config('schema = ["core", "cosine", "inetorgperson", "rfc2307bis"]'))
        self.assertEqual(config.directory.schema.objectClass("posixGroup").kind, "AUXILIARY")

    def test_configUnknown(self) -> None:
        """
        An unknown name in C{[server] schema} stops start-up naming the key.
        """
        error = self.assertRaises(ConfigError, loadConfig, self._config('schema = ["core", "nope"]'))
        self.assertIn("schema", str(error))
        self.assertIn("'nope'", str(error))


class CSNTests(unittest.SynchronousTestCase):
    """
    Tests for L{ldapd.csn}.
    """

    def test_format(self) -> None:
        """
        A CSN has OpenLDAP's form: time with microseconds, count, server ID
        and modification number in hex.
        """
        when = datetime(2026, 11, 21, 6, 41, 59, 336766, tzinfo=timezone.utc)
        self.assertEqual(formatCSN(when, 10, 1), b"20261121064159.336766Z#00000a#001#000000")

    def test_increasing(self) -> None:
        """
        CSNs of one generator increase, even for changes in the same
        microsecond or when the clock goes back.
        """
        generate = CSNGenerator(sid=3)
        when = datetime(2026, 1, 1, tzinfo=timezone.utc)
        csns = [generate(when), generate(when), generate(when - timedelta(seconds=1)),
                generate(when + timedelta(microseconds=1))]
        self.assertEqual(csns, sorted(csns))
        self.assertEqual(len(set(csns)), 4)
        self.assertEqual(csns[2], b"20260101000000.000000Z#000002#003#000000")
        for csn in csns:
            self.assertTrue(re.fullmatch(rb"\d{14}\.\d{6}Z#[0-9a-f]{6}#003#000000", csn))
