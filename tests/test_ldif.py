"""
Tests for L{ldapd.ldif}.
"""

import base64
import hashlib
import io
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.request import pathname2url

import argon2
import bcrypt
from twisted.trial import unittest

from ldapd.ldif import (
    LDIFRecord,
    LDIFSyntaxError,
    formatLDIF,
    formatLine,
    formatModification,
    parseLDIF,
)

EXAMPLE_LDIF = Path(__file__).resolve().parent.parent / "examples" / "data" / "example.ldif"


def parse(data: bytes, allowFileURLs: bool = False) -> list[LDIFRecord]:
    """
    Parse LDIF held in memory, reading it line by line as from a file.

    @param data: The LDIF.
    @param allowFileURLs: whether C{:<} values are read from files.

    @return: All of its records.
    """
    return list(parseLDIF(io.BytesIO(data), allowFileURLs))


class SyntaxErrorMixin:
    """
    Assertion helper for tests expecting L{LDIFSyntaxError}.
    """

    def assertSyntaxError(self, data: bytes, lineNumber: int, fragment: str) -> LDIFSyntaxError:
        """
        Assert that parsing C{data} fails at C{lineNumber} with a message
        containing C{fragment}.

        @param data: The LDIF to parse.
        @param lineNumber: The line the error must name.
        @param fragment: Text the error message must contain.

        @return: The error raised.
        """
        error = self.assertRaises(LDIFSyntaxError, parse, data)
        self.assertEqual(error.lineNumber, lineNumber, str(error))
        self.assertIn(fragment, error.message)
        return error


class LDIFSyntaxErrorTests(unittest.TestCase):
    """
    Tests for L{LDIFSyntaxError}.
    """

    def test_attributes(self) -> None:
        """
        The line number and message given to the constructor are kept as
        attributes.
        """
        error = LDIFSyntaxError(7, "bad thing")
        self.assertEqual((error.lineNumber, error.message), (7, "bad thing"))

    def test_str(self) -> None:
        """
        C{str()} of the error is C{"line N: message"}.
        """
        self.assertEqual(str(LDIFSyntaxError(12, "missing colon")), "line 12: missing colon")

    def test_valueError(self) -> None:
        """
        The error is a L{ValueError}, so callers validating input may catch
        either.
        """
        self.assertIsInstance(LDIFSyntaxError(1, "x"), ValueError)


class ParseContentTests(unittest.TestCase):
    """
    Tests for L{parseLDIF} reading content records.
    """

    def test_simple(self) -> None:
        """
        A content record gives its DN, changetype C{"content"}, attributes
        in file order with byte values, and the line number of its dn.
        """
        [record] = parse(b"dn: cn=a,dc=example\ncn: a\nobjectClass: top\ncn: b\n")
        self.assertEqual(
            record,
            LDIFRecord(
                dn="cn=a,dc=example",
                changetype="content",
                attributes=(("cn", b"a"), ("objectClass", b"top"), ("cn", b"b")),
                lineNumber=1,
            ),
        )

    def test_defaults(self) -> None:
        """
        A content record has no modifications, no rename fields and no
        controls.
        """
        [record] = parse(b"dn: cn=a\ncn: a\n")
        self.assertEqual(record.modifications, ())
        self.assertIsNone(record.newRDN)
        self.assertFalse(record.deleteOldRDN)
        self.assertIsNone(record.newSuperior)
        self.assertEqual(record.controls, ())

    def test_multipleRecords(self) -> None:
        """
        Records separated by one or more blank lines are returned in order,
        each with the line number of its own dn line.
        """
        records = parse(b"dn: cn=a\ncn: a\n\n\n\ndn: cn=b\ncn: b\n\ndn: cn=c\ncn: c\n\n")
        self.assertEqual([r.dn for r in records], ["cn=a", "cn=b", "cn=c"])
        self.assertEqual([r.lineNumber for r in records], [1, 6, 9])

    def test_empty(self) -> None:
        """
        Empty input, or input holding only comments, blank lines and a
        version line, has no records.
        """
        self.assertEqual(parse(b""), [])
        self.assertEqual(parse(b"# just a comment\n\n\nversion: 1\n\n# another\n"), [])

    def test_version(self) -> None:
        """
        A C{version: 1} line at the start is accepted whether or not a blank
        line separates it from the first record.
        """
        separate = parse(b"version: 1\n\ndn: cn=a\ncn: a\n")
        joined = parse(b"version: 1\ndn: cn=a\ncn: a\n")
        self.assertEqual([r.dn for r in separate + joined], ["cn=a", "cn=a"])
        self.assertEqual(separate[0].lineNumber, 3)
        self.assertEqual(joined[0].lineNumber, 2)

    def test_versionAfterComment(self) -> None:
        """
        Comments may precede the version line.
        """
        [record] = parse(b"# header\n#  more\nversion: 1\n\ndn: cn=a\ncn: a\n")
        self.assertEqual(record.dn, "cn=a")

    def test_comments(self) -> None:
        """
        Lines starting with C{#} are ignored anywhere, including inside a
        record.
        """
        [record] = parse(b"# top\ndn: cn=a\n# between\ncn: a\n#end\n")
        self.assertEqual(record.attributes, (("cn", b"a"),))

    def test_foldedComment(self) -> None:
        """
        A comment continued on following lines by folding is ignored as a
        whole, even when it is the first thing in the input.
        """
        [record] = parse(b"# a long\n comment: with a colon\n  and more\ndn: cn=a\ncn: a\n")
        self.assertEqual(record.lineNumber, 4)
        self.assertEqual(record.attributes, (("cn", b"a"),))

    def test_folding(self) -> None:
        """
        A line starting with a space continues the previous line: the line
        break and exactly one space are removed, so further spaces belong to
        the value.
        """
        [record] = parse(b"dn: cn=a\ndescription: abc\n def\n  ghi\n\n")
        self.assertEqual(record.attributes, (("description", b"abcdef ghi"),))

    def test_foldedDN(self) -> None:
        """
        The dn line may be folded too, even inside the keyword.
        """
        [record] = parse(b"d\n n: cn=a,\n dc=example\ncn: a\n")
        self.assertEqual(record.dn, "cn=a,dc=example")

    def test_crlf(self) -> None:
        """
        CRLF line endings are removed like LF ones, including within folded
        lines.
        """
        first, second = parse(
            b"version: 1\r\ndn: cn=a\r\ndescription: one\r\n two\r\n\r\ndn: cn=b\r\ncn: b \r\n"
        )
        self.assertEqual(first.attributes, (("description", b"onetwo"),))
        self.assertEqual(
            (second.dn, second.attributes, second.lineNumber), ("cn=b", (("cn", b"b "),), 6)
        )

    def test_linesWithoutTerminators(self) -> None:
        """
        Lines may be given without their line terminators, and the last line
        of a file needs none.
        """
        records = list(parseLDIF([b"dn: cn=a", b"cn: a", b"", b"dn: cn=b", b"cn: b"]))
        self.assertEqual([r.dn for r in records], ["cn=a", "cn=b"])

    def test_fillStripped(self) -> None:
        """
        Every space between the colon and a plain value is removed, as the
        FILL of RFC 2849's value-spec.
        """
        [record] = parse(b"dn:    cn=a\ncn:     a\n")
        self.assertEqual(record.dn, "cn=a")
        self.assertEqual(record.attributes, (("cn", b"a"),))

    def test_trailingSpacesKept(self) -> None:
        """
        Trailing spaces of a plain value are part of the value.
        """
        [record] = parse(b"dn: cn=a\ncn: a  \r\ncn: b \n")
        self.assertEqual(record.attributes, (("cn", b"a  "), ("cn", b"b ")))

    def test_emptyValue(self) -> None:
        """
        An attribute line with nothing, or only spaces, after the colon has
        an empty value.
        """
        [record] = parse(b"dn: cn=a\ndescription:\ndescription: \n")
        self.assertEqual(record.attributes, (("description", b""), ("description", b"")))

    def test_rawBytesKept(self) -> None:
        """
        Plain values are returned as the file's bytes, even when they are
        not ASCII.
        """
        [record] = parse("dn: cn=a\ncn: Jürgen\n".encode())
        self.assertEqual(record.attributes, (("cn", "Jürgen".encode()),))

    def test_colonInValue(self) -> None:
        """
        Only the first colon separates the attribute description from the
        value.
        """
        [record] = parse(b"dn: cn=a\nlabeledURI: http://example.com:8080/ x\n")
        self.assertEqual(record.attributes, (("labeledURI", b"http://example.com:8080/ x"),))

    def test_base64(self) -> None:
        """
        A value after C{::} is base64-decoded, with surrounding spaces
        ignored and folding removed first.
        """
        encoded = base64.b64encode(b"\x00binary\xff\n value ").decode()
        [record] = parse(
            f"dn: cn=a\njpegPhoto::  {encoded[:10]}\n {encoded[10:]} \ncn::\n".encode()
        )
        self.assertEqual(
            record.attributes, (("jpegPhoto", b"\x00binary\xff\n value "), ("cn", b""))
        )

    def test_base64DN(self) -> None:
        """
        A DN after C{dn::} is base64-decoded and then decoded as UTF-8.
        """
        dn = "cn=Jürgen Müller,dc=example"
        encoded = base64.b64encode(dn.encode("utf-8"))
        [record] = parse(b"dn:: " + encoded + b"\ncn: x\n")
        self.assertEqual(record.dn, dn)

    def test_plainUTF8DN(self) -> None:
        """
        A DN written as raw UTF-8 is decoded.
        """
        [record] = parse("dn: cn=Ålesund\ncn: Ålesund\n".encode())
        self.assertEqual(record.dn, "cn=Ålesund")

    def test_emptyDN(self) -> None:
        """
        An empty DN, as for the root DSE, is allowed.
        """
        [record] = parse(b"dn:\nobjectClass: top\n")
        self.assertEqual(record.dn, "")

    def test_attributeOptions(self) -> None:
        """
        Attribute descriptions keep their options and spelling.
        """
        [record] = parse(b"dn: cn=a\ncn;lang-en: a\nuserCertificate;binary:: AAE=\n2.5.4.3: b\n")
        self.assertEqual(
            record.attributes,
            (("cn;lang-en", b"a"), ("userCertificate;binary", b"\x00\x01"), ("2.5.4.3", b"b")),
        )

    def test_keywordsCaseInsensitive(self) -> None:
        """
        The C{dn} and C{version} keywords are recognised in any case.
        """
        [record] = parse(b"VERSION: 1\nDN: cn=a\ncn: a\n")
        self.assertEqual(record.dn, "cn=a")


class ParseURLTests(unittest.TestCase):
    """
    Tests for L{parseLDIF} reading values from C{file:} URLs, when allowed.
    """

    def setUp(self) -> None:
        """
        Create a directory holding a value file.
        """
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory)
        self.path = os.path.join(self.directory, "photo data.bin")
        with open(self.path, "wb") as f:
            f.write(b"\x00\x01 file contents\n")
        self.url = "file://" + pathname2url(self.path)

    def test_fileURL(self) -> None:
        """
        A value after C{:<} is the contents of the file the URL names, with
        percent-escapes in the path decoded.
        """
        [record] = parse(f"dn: cn=a\njpegPhoto:< {self.url}\n".encode(), True)
        self.assertEqual(record.attributes, (("jpegPhoto", b"\x00\x01 file contents\n"),))

    def test_refusedByDefault(self) -> None:
        """
        Unless allowed, a C{:<} value is refused at its line, naming the
        attribute, and no file is read; so is a DN given as a URL, while a
        plain value that contains C{:<} is an ordinary value.
        """
        for data, lineNumber, name in [
            (f"dn: cn=a\ncn: a\njpegPhoto:< {self.url}\n", 3, "jpegPhoto"),
            (f"dn:< {self.url}\ncn: a\n", 1, "dn"),
            (f"dn: cn=a\nchangetype: modify\nadd: jpegPhoto\njpegPhoto:<{self.url}\n-\n", 4,
             "jpegPhoto"),
        ]:
            error = self.assertRaises(LDIFSyntaxError, parse, data.encode())
            self.assertEqual(error.lineNumber, lineNumber)
            self.assertEqual(
                error.message, f"{name}:< reads its value from a file, which is refused "
                "unless allowed (ldapd-admin import --allow-file-urls)")
        [record] = parse(b"dn: cn=a\ndescription: a:< b\n")
        self.assertEqual(record.attributes, (("description", b"a:< b"),))

    def test_localhostURL(self) -> None:
        """
        A C{file:} URL may name C{localhost} as its host.
        """
        url = "file://localhost" + pathname2url(self.path)
        [record] = parse(f"dn: cn=a\njpegPhoto:<{url}\n".encode(), True)
        self.assertEqual(record.attributes[0][1], b"\x00\x01 file contents\n")

    def test_otherScheme(self) -> None:
        """
        URLs with schemes other than C{file:} are refused.
        """
        error = self.assertRaises(
            LDIFSyntaxError, parse, b"dn: cn=a\ncn: a\njpegPhoto:< http://example.com/a.jpg\n",
            True,
        )
        self.assertEqual(error.lineNumber, 3)
        self.assertIn("only file: URLs", error.message)

    def test_remoteHost(self) -> None:
        """
        C{file:} URLs naming a remote host are refused.
        """
        error = self.assertRaises(
            LDIFSyntaxError, parse, b"dn: cn=a\njpegPhoto:< file://server/etc/x\n", True
        )
        self.assertEqual(error.lineNumber, 2)
        self.assertIn("remote host", error.message)

    def test_missingFile(self) -> None:
        """
        A C{file:} URL naming a file that cannot be read is a syntax error
        at that line.
        """
        url = "file://" + pathname2url(os.path.join(self.directory, "absent"))
        error = self.assertRaises(
            LDIFSyntaxError, parse, f"dn: cn=a\ncn: a\njpegPhoto:< {url}\n".encode(), True
        )
        self.assertEqual(error.lineNumber, 3)
        self.assertIn("cannot read", error.message)


class ParseChangeTests(unittest.TestCase):
    """
    Tests for L{parseLDIF} reading change records.
    """

    def test_add(self) -> None:
        """
        An add record gives its attributes like a content record.
        """
        [record] = parse(b"dn: cn=a\nchangetype: add\nobjectClass: top\ncn: a\n")
        self.assertEqual(record.changetype, "add")
        self.assertEqual(record.attributes, (("objectClass", b"top"), ("cn", b"a")))

    def test_changetypeCaseInsensitive(self) -> None:
        """
        The change type is recognised in any case and reported lower-cased.
        """
        [record] = parse(b"dn: cn=a\nChangeType: DELETE \n")
        self.assertEqual(record.changetype, "delete")

    def test_delete(self) -> None:
        """
        A delete record has only its DN.
        """
        [record] = parse(b"dn: cn=a\nchangetype: delete\n")
        self.assertEqual(record, LDIFRecord(dn="cn=a", changetype="delete", lineNumber=1))

    def test_modify(self) -> None:
        """
        A modify record gives one (operation, attribute, values) triple per
        block closed by C{-}, values decoded as elsewhere.
        """
        [record] = parse(
            b"dn: cn=a\n"
            b"changetype: modify\n"
            b"add: mail\n"
            b"mail: a@example.com\n"
            b"mail:: YkBleGFtcGxlLmNvbQ==\n"
            b"-\n"
            b"delete: description\n"
            b"-\n"
            b"delete: cn;lang-en\n"
            b"CN;LANG-EN: old \n"
            b"-\n"
            b"replace: sn\n"
            b"sn: New\n"
            b"- \n"
            b"increment: uidNumber\n"
            b"uidNumber: 1\n"
            b"-\n"
        )
        self.assertEqual(record.changetype, "modify")
        self.assertEqual(
            record.modifications,
            (
                ("add", "mail", (b"a@example.com", b"b@example.com")),
                ("delete", "description", ()),
                ("delete", "cn;lang-en", (b"old ",)),
                ("replace", "sn", (b"New",)),
                ("increment", "uidNumber", (b"1",)),
            ),
        )
        self.assertEqual(record.attributes, ())

    def test_modifyEmpty(self) -> None:
        """
        A modify record with no modifications is allowed.
        """
        [record] = parse(b"dn: cn=a\nchangetype: modify\n")
        self.assertEqual(record.modifications, ())

    def test_replaceWithNoValues(self) -> None:
        """
        A replace block with no values (removing the attribute) is allowed.
        """
        [record] = parse(b"dn: cn=a\nchangetype: modify\nreplace: description\n-\n")
        self.assertEqual(record.modifications, (("replace", "description", ()),))

    def test_modrdn(self) -> None:
        """
        A modrdn record gives the new RDN and whether to delete the old one.
        """
        [record] = parse(b"dn: cn=a,dc=x\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 1\n")
        self.assertEqual(
            (record.changetype, record.newRDN, record.deleteOldRDN, record.newSuperior),
            ("modrdn", "cn=b", True, None),
        )

    def test_moddnNewSuperior(self) -> None:
        """
        A moddn record may give a new superior; base64 forms of the new RDN
        and new superior are decoded as UTF-8.
        """
        newRDN = base64.b64encode("cn=Zoë".encode()).decode()
        superior = base64.b64encode("ou=Ünits,dc=x".encode()).decode()
        [record] = parse(
            f"dn: cn=a,dc=x\nchangetype: moddn\nnewrdn:: {newRDN}\n"
            f"deleteoldrdn: 0\nnewsuperior:: {superior}\n".encode()
        )
        self.assertEqual(
            (record.changetype, record.newRDN, record.deleteOldRDN, record.newSuperior),
            ("moddn", "cn=Zoë", False, "ou=Ünits,dc=x"),
        )

    def test_controls(self) -> None:
        """
        C{control:} lines before the changetype give (oid, criticality,
        value) triples; criticality defaults to false and the value to
        L{None}.
        """
        [record] = parse(
            b"dn: cn=a\n"
            b"control: 1.2.840.113556.1.4.805 true\n"
            b"control: 1.3.6.1.1.12\n"
            b"control: 1.2.3 false: plain value\n"
            b"control: 1.2.4 TRUE:: AAE=\n"
            b"control: 1.2.5:: AAI=\n"
            b"changetype: delete\n"
        )
        self.assertEqual(
            record.controls,
            (
                ("1.2.840.113556.1.4.805", True, None),
                ("1.3.6.1.1.12", False, None),
                ("1.2.3", False, b"plain value"),
                ("1.2.4", True, b"\x00\x01"),
                ("1.2.5", False, b"\x00\x02"),
            ),
        )

    def test_controlsOnModify(self) -> None:
        """
        Controls may precede any change type.
        """
        [record] = parse(
            b"dn: cn=a\ncontrol: 1.2.3 true\nchangetype: modify\nreplace: cn\ncn: b\n-\n"
        )
        self.assertEqual(record.controls, (("1.2.3", True, None),))
        self.assertEqual(record.modifications, (("replace", "cn", (b"b",)),))

    def test_mixedRecords(self) -> None:
        """
        Records of different kinds may follow one another, each with its own
        line number.
        """
        records = parse(
            b"version: 1\n\n"
            b"dn: cn=a\nchangetype: add\ncn: a\n\n"
            b"dn: cn=a\nchangetype: modify\nadd: sn\nsn: x\n-\n\n"
            b"dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 0\n\n"
            b"dn: cn=b\nchangetype: delete\n"
        )
        self.assertEqual(
            [(r.changetype, r.lineNumber) for r in records],
            [("add", 3), ("modify", 7), ("modrdn", 13), ("delete", 18)],
        )


class ParseErrorTests(SyntaxErrorMixin, unittest.TestCase):
    """
    Tests for the errors L{parseLDIF} raises, and the lines they name.
    """

    def test_noDN(self) -> None:
        """
        A record that does not start with C{dn:} is an error at its first
        line.
        """
        self.assertSyntaxError(b"dn: cn=a\ncn: a\n\n# c\ncn: b\n", 5, "instead of dn")

    def test_noColon(self) -> None:
        """
        A line without a colon is an error at that line.
        """
        self.assertSyntaxError(b"dn: cn=a\ncn: a\nnonsense\n", 3, "no colon")

    def test_noColonFolded(self) -> None:
        """
        Errors in a folded line name the line where it starts.
        """
        self.assertSyntaxError(b"dn: cn=a\ncn: a\nnon\n sense\n", 3, "no colon")

    def test_invalidAttributeDescription(self) -> None:
        """
        An attribute description with characters RFC 4512 does not allow is
        an error.
        """
        self.assertSyntaxError(b"dn: cn=a\ncn : a\n", 2, "invalid attribute description")
        self.assertSyntaxError(b"dn: cn=a\n_cn: a\n", 2, "invalid attribute description")

    def test_badBase64(self) -> None:
        """
        Malformed base64 is an error at its line.
        """
        self.assertSyntaxError(b"dn: cn=a\ncn: a\ncn:: !!!notbase64\n", 3, "invalid base64")
        self.assertSyntaxError(b"dn: cn=a\ncn:: YWJ\n", 2, "invalid base64")

    def test_badBase64DN(self) -> None:
        """
        A malformed base64 DN is an error at the dn line.
        """
        self.assertSyntaxError(b"\n\ndn:: ***\ncn: a\n", 3, "invalid base64")

    def test_nonUTF8DN(self) -> None:
        """
        A DN that is not UTF-8, whether plain or base64, is an error.
        """
        self.assertSyntaxError(b"dn: cn=\xff\xfe\ncn: a\n", 1, "not valid UTF-8")
        encoded = base64.b64encode(b"cn=\xe9")
        self.assertSyntaxError(
            b"dn: cn=a\ncn: a\n\ndn:: " + encoded + b"\ncn: a\n", 4, "not valid UTF-8"
        )

    def test_nonUTF8NewRDN(self) -> None:
        """
        A new RDN that is not UTF-8 is an error at its line.
        """
        self.assertSyntaxError(
            b"dn: cn=a\nchangetype: modrdn\nnewrdn: cn=\xff\ndeleteoldrdn: 1\n",
            3,
            "not valid UTF-8",
        )

    def test_unknownChangetype(self) -> None:
        """
        An unknown change type is an error at the changetype line.
        """
        self.assertSyntaxError(b"dn: cn=a\nchangetype: rename\n", 2, "unknown changetype 'rename'")

    def test_unsupportedVersion(self) -> None:
        """
        A version other than 1 is an error.
        """
        self.assertSyntaxError(
            b"# c\nversion: 2\n\ndn: cn=a\ncn: a\n", 2, "unsupported LDIF version"
        )

    def test_versionLater(self) -> None:
        """
        A version line anywhere but at the start begins a record without a
        dn.
        """
        self.assertSyntaxError(b"dn: cn=a\ncn: a\n\nversion: 1\n", 4, "instead of dn")

    def test_continuationWithoutLine(self) -> None:
        """
        A continuation line at the start of the input or after a blank line
        is an error.
        """
        self.assertSyntaxError(b" cn: a\n", 1, "continuation line")
        self.assertSyntaxError(b"dn: cn=a\ncn: a\n\n cn: b\n", 4, "continuation line")

    def test_noAttributes(self) -> None:
        """
        A content or add record with no attributes is an error at its dn.
        """
        self.assertSyntaxError(b"dn: cn=a\ncn: a\n\ndn: cn=b\n", 4, "no attributes")
        self.assertSyntaxError(b"dn: cn=b\nchangetype: add\n", 1, "no attributes")

    def test_dnInsideRecord(self) -> None:
        """
        A second dn line in a record, usually a missing blank line, is an
        error at that line.
        """
        self.assertSyntaxError(b"dn: cn=a\ncn: a\ndn: cn=b\ncn: b\n", 3, "blank line")

    def test_lateChangetype(self) -> None:
        """
        A changetype line after attribute lines is an error.
        """
        self.assertSyntaxError(b"dn: cn=a\ncn: a\nchangetype: add\n", 3, "directly follow dn")

    def test_controlWithoutChangetype(self) -> None:
        """
        Controls in a record without a changetype are an error.
        """
        self.assertSyntaxError(b"dn: cn=a\ncontrol: 1.2.3\ncn: a\n", 3, "followed by a changetype")
        self.assertSyntaxError(b"dn: cn=a\ncontrol: 1.2.3\n", 2, "followed by a changetype")

    def test_malformedControl(self) -> None:
        """
        A control line without a numeric OID, or with a bad criticality, is
        an error.
        """
        self.assertSyntaxError(
            b"dn: cn=a\ncontrol: pagedResults\nchangetype: delete\n", 2, "malformed control"
        )
        self.assertSyntaxError(
            b"dn: cn=a\ncontrol: 1.2.3 yes\nchangetype: delete\n", 2, "malformed control"
        )

    def test_attributeInDelete(self) -> None:
        """
        An attribute line in a delete record is an error at that line.
        """
        self.assertSyntaxError(b"dn: cn=a\nchangetype: delete\ncn: a\n", 3, "delete record")

    def test_modifyUnknownOperation(self) -> None:
        """
        A modify block that does not start with add, delete, replace or
        increment is an error.
        """
        self.assertSyntaxError(b"dn: cn=a\nchangetype: modify\ncn: b\n-\n", 3, "expected add:")

    def test_modifyWrongAttribute(self) -> None:
        """
        A value for another attribute inside a modify block is an error at
        the value's line.
        """
        self.assertSyntaxError(
            b"dn: cn=a\nchangetype: modify\nreplace: cn\ncn: b\nsn: c\n-\n",
            5,
            "inside the replace of 'cn'",
        )

    def test_modifyUnterminated(self) -> None:
        """
        A modify block not closed by C{-} is an error at the block's first
        line.
        """
        self.assertSyntaxError(
            b"dn: cn=a\nchangetype: modify\nadd: sn\nsn: x\n-\nreplace: cn\ncn: b\n\n",
            6,
            "not closed",
        )

    def test_modifyStrayDash(self) -> None:
        """
        A C{-} line that closes no block is an error.
        """
        self.assertSyntaxError(
            b"dn: cn=a\nchangetype: modify\nadd: sn\n-\n-\n", 5, "does not close"
        )

    def test_modifyBadAttribute(self) -> None:
        """
        A modify block naming an invalid attribute description is an error.
        """
        self.assertSyntaxError(
            b"dn: cn=a\nchangetype: modify\nadd: s n\n-\n", 3, "invalid attribute description"
        )

    def test_modrdnMissingLines(self) -> None:
        """
        A modrdn record without newrdn or deleteoldrdn is an error at the
        changetype line.
        """
        self.assertSyntaxError(b"dn: cn=a\nchangetype: modrdn\n", 2, "no newrdn")
        self.assertSyntaxError(b"dn: cn=a\nchangetype: moddn\nnewrdn: cn=b\n", 2, "no deleteoldrdn")

    def test_modrdnWrongOrder(self) -> None:
        """
        Lines out of order, or extra lines, in a modrdn record are an error
        at the offending line.
        """
        self.assertSyntaxError(
            b"dn: cn=a\nchangetype: modrdn\ndeleteoldrdn: 1\nnewrdn: cn=b\n", 3, "expected newrdn:"
        )
        self.assertSyntaxError(
            b"dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 1\n"
            b"newsuperior: dc=x\ncn: b\n",
            6,
            "end of the record",
        )

    def test_badDeleteOldRDN(self) -> None:
        """
        A deleteoldrdn other than 0 or 1 is an error at its line.
        """
        self.assertSyntaxError(
            b"dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: yes\n", 4, "0 or 1"
        )


class LazyParsingTests(unittest.TestCase):
    """
    Tests that L{parseLDIF} streams its input.
    """

    def endlessLDIF(self, consumed: list[int]) -> Iterator[bytes]:
        """
        Generate an endless LDIF file, counting the lines taken.

        @param consumed: A one-element list incremented for every line
            taken.

        @return: An endless iterator of lines.
        """
        yield b"version: 1\n"
        for n in itertools.count():
            for line in (
                f"dn: uid=u{n},dc=example\n".encode(),
                b"objectClass: account\n",
                f"uid: u{n}\n".encode(),
                b"\n",
            ):
                consumed[0] += 1
                yield line

    def test_endlessInput(self) -> None:
        """
        Records are produced as they are read, so the first few records of
        an endless input can be taken, and no more input than those records
        is consumed.
        """
        consumed = [0]
        records = list(itertools.islice(parseLDIF(self.endlessLDIF(consumed)), 3))
        self.assertEqual(
            [r.dn for r in records], ["uid=u0,dc=example", "uid=u1,dc=example", "uid=u2,dc=example"]
        )
        self.assertEqual(records[2].attributes, (("objectClass", b"account"), ("uid", b"u2")))
        self.assertEqual(consumed[0], 12)

    def test_recordsBeforeError(self) -> None:
        """
        Records before a syntax error are yielded before the error is
        raised.
        """
        records = parseLDIF(iter([b"dn: cn=a\n", b"cn: a\n", b"\n", b"broken\n"]))
        self.assertEqual(next(records).dn, "cn=a")
        error = self.assertRaises(LDIFSyntaxError, next, records)
        self.assertEqual(error.lineNumber, 4)


class FormatLDIFTests(unittest.TestCase):
    """
    Tests for L{formatLDIF}.
    """

    def assertRoundTrip(self, dn: str, attributes: list[tuple[str, list[bytes]]]) -> bytes:
        """
        Assert that the output of L{formatLDIF} parses back to the same DN
        and attributes.

        @param dn: The DN to write.
        @param attributes: The attributes to write.

        @return: The formatted record.
        """
        data = formatLDIF(dn, attributes)
        [record] = parse(data)
        self.assertEqual(record.dn, dn)
        self.assertEqual(record.changetype, "content")
        self.assertEqual(
            record.attributes,
            tuple((name, value) for name, values in attributes for value in values),
        )
        return data

    def test_simple(self) -> None:
        """
        Safe values are written verbatim, one line per value, and the record
        ends with a blank line.
        """
        self.assertEqual(
            formatLDIF("cn=a,dc=example", [("objectClass", [b"top", b"person"]), ("cn", [b"a"])]),
            b"dn: cn=a,dc=example\nobjectClass: top\nobjectClass: person\ncn: a\n\n",
        )

    def test_generatorValues(self) -> None:
        """
        Attributes and their values may be any iterables.
        """
        data = formatLDIF("cn=a", ((name, iter([b"x"])) for name in ("cn", "sn")))
        self.assertEqual(data, b"dn: cn=a\ncn: x\nsn: x\n\n")

    def test_emptyValue(self) -> None:
        """
        An empty value is written as the attribute description and a colon.
        """
        self.assertEqual(
            formatLDIF("cn=a", [("description", [b""])]), b"dn: cn=a\ndescription:\n\n"
        )

    def test_unsafeValuesBase64(self) -> None:
        """
        Values that start with a space, colon or C{<}, end with a space, or
        contain NUL, CR, LF or non-ASCII bytes are base64-encoded.
        """
        for value in [
            b" a",
            b":a",
            b"<a",
            b"a ",
            b"a\x00b",
            b"a\rb",
            b"a\nb",
            "é".encode(),
            b"\xff",
        ]:
            self.assertEqual(
                formatLDIF("cn=a", [("description", [value])]),
                b"dn: cn=a\ndescription:: " + base64.b64encode(value) + b"\n\n",
            )

    def test_safeValuesVerbatim(self) -> None:
        """
        Values whose unusual characters are allowed inside a SAFE-STRING are
        written verbatim.
        """
        for value in [b"a:b", b"a<b", b"a b", b"#a", b"-", b"a\tb", b"x::y"]:
            self.assertEqual(
                formatLDIF("cn=a", [("description", [value])]),
                b"dn: cn=a\ndescription: " + value + b"\n\n",
            )

    def test_unsafeDN(self) -> None:
        """
        A DN that is not a SAFE-STRING is written UTF-8 and base64-encoded.
        """
        dn = "cn=Zoë,dc=example"
        self.assertEqual(
            formatLDIF(dn, [("cn", [b"x"])]),
            b"dn:: " + base64.b64encode(dn.encode("utf-8")) + b"\ncn: x\n\n",
        )

    def test_folding(self) -> None:
        """
        Lines are folded so that no line exceeds 76 columns and every
        continuation line starts with a single space.
        """
        data = formatLDIF(
            "cn=a", [("description", [b"word " * 60 + b"end"]), ("jpegPhoto", [bytes(range(256))])]
        )
        lines = data.split(b"\n")
        self.assertTrue(all(len(line) <= 76 for line in lines))
        self.assertEqual(len(lines[1]), 76)
        self.assertTrue(lines[2].startswith(b" "))
        self.assertEqual(len(lines[2]), 76)

    def test_roundTripAwkwardValues(self) -> None:
        """
        Values with leading and trailing spaces, line breaks, UTF-8, binary
        data and folding-sensitive spacing parse back unchanged.
        """
        self.assertRoundTrip(
            "cn=Jürgen  Müller ,ou=Ünits,dc=example",
            [
                ("cn", [b"  leading", b"trailing  ", b" both ", b" ", b""]),
                (
                    "description",
                    [b"line one\nline two\r\n", b"tab\tand: colon", b"::", b"<file:///etc/passwd"],
                ),
                ("sn;lang-de", ["Müller".encode(), "日本語".encode()]),
                ("jpegPhoto", [bytes(range(256)) * 3, b"\x00", b"\xff\xfe"]),
                ("street", [b"x" * 74 + b"  y" + b" " * 75 + b"z", b" " * 200, b"a " * 100]),
                ("labeledURI", [b"#not a comment", b"- ", b"-"]),
            ],
        )

    def test_roundTripLongDN(self) -> None:
        """
        A DN long enough to be folded parses back unchanged, both when safe
        and when base64-encoded.
        """
        self.assertRoundTrip(",".join(f"ou=level{n}" for n in range(20)), [("ou", [b"level0"])])
        self.assertRoundTrip(",".join(f"ou=niveau é{n}" for n in range(20)), [("ou", [b"x"])])

    def test_roundTripEmptyDN(self) -> None:
        """
        An empty DN parses back as empty.
        """
        self.assertEqual(
            self.assertRoundTrip("", [("objectClass", [b"top"])]), b"dn:\nobjectClass: top\n\n"
        )

    def test_concatenatedRecords(self) -> None:
        """
        Formatted records can be concatenated into one file.
        """
        data = (
            b"version: 1\n\n"
            + formatLDIF("cn=a", [("cn", [b"a"])])
            + formatLDIF("cn=b", [("cn", [b"b "])])
        )
        self.assertEqual(
            [(r.dn, r.attributes) for r in parse(data)],
            [("cn=a", (("cn", b"a"),)), ("cn=b", (("cn", b"b "),))],
        )

    def test_invalidAttributeDescription(self) -> None:
        """
        An invalid attribute description is refused with L{ValueError}.
        """
        for name in ["c n", "cn:", "", "cn;", "é"]:
            self.assertRaises(ValueError, formatLDIF, "cn=a", [(name, [b"x"])])

    def test_reservedAttributeDescription(self) -> None:
        """
        Attribute descriptions LDIF uses for structure are refused with
        L{ValueError}.
        """
        for name in ["dn", "changetype", "Control"]:
            self.assertRaises(ValueError, formatLDIF, "cn=a", [(name, [b"x"])])

    def test_noValues(self) -> None:
        """
        A record with no attribute values is refused with L{ValueError},
        since it could not be read back.
        """
        self.assertRaises(ValueError, formatLDIF, "cn=a", [])
        self.assertRaises(ValueError, formatLDIF, "cn=a", [("cn", [])])

    def test_unsafeDNsBase64(self) -> None:
        """
        A DN holding a CR, LF or NUL, or starting with a space, colon or
        C{<}, is base64-encoded: no DN can end the C{dn:} line and start a
        forged one.
        """
        for dn in [
            "cn=a\n\ndn: cn=admins,dc=example,dc=com",
            "cn=a\r,dc=example",
            "cn=a\x00b",
            " cn=a",
            ":cn=a",
            "<cn=a",
            "cn=a ",
        ]:
            data = formatLDIF(dn, [("cn", [b"a"])])
            self.assertEqual(data, b"dn:: " + base64.b64encode(dn.encode()) + b"\ncn: a\n\n")
            self.assertEqual([r.dn for r in parse(data)], [dn])


class FormatLineTests(unittest.TestCase):
    """
    Tests for L{formatLine} and L{formatModification}, with which change
    records (the audit log's, the changelog's C{changes}) are written.
    """

    def test_unsafeValueBase64(self) -> None:
        """
        A value holding a line break is base64-encoded.
        """
        value = b"x\n\ndn: cn=admins\nchangetype: modify"
        self.assertEqual(formatLine("description", value),
                         b"description:: " + base64.b64encode(value) + b"\n")

    def test_invalidDescription(self) -> None:
        """
        A description that is not one (RFC 4512 §2.5), such as one holding
        a line break, is refused with L{ValueError} rather than written.
        """
        for name in ["description;x-note\n\ndn: cn=admins", "cn;x\r", "c n", "cn:", "", "cn;"]:
            self.assertRaises(ValueError, formatLine, name, b"x")
            self.assertRaises(ValueError, formatModification, "replace", name, [b"x"])

    def test_modification(self) -> None:
        """
        A mod-spec is the operation line, the values and C{-}; it reads
        back as the modification it describes.
        """
        spec = formatModification("replace", "description;lang-en", [b"a", b" b"])
        self.assertEqual(
            spec,
            b"replace: description;lang-en\ndescription;lang-en: a\n"
            b"description;lang-en:: " + base64.b64encode(b" b") + b"\n-\n",
        )
        [record] = parse(b"dn: cn=a\nchangetype: modify\n" + spec)
        self.assertEqual(record.modifications, (("replace", "description;lang-en", (b"a", b" b")),))

    def test_unknownOperation(self) -> None:
        """
        An operation that is not one of modify's is refused with
        L{ValueError}.
        """
        self.assertRaises(ValueError, formatModification, "dn", "cn", [b"x"])


def checkSaltedSHA(stored: str, password: bytes) -> bool:
    """
    Check a password against an C{{SSHA}}, C{{SSHA256}} or C{{SSHA512}}
    value: base64 of the digest of password and salt, followed by the salt.

    @param stored: The userPassword value.
    @param password: The password to check.

    @return: Whether it matches.
    """
    scheme, _, encoded = stored[1:].partition("}")
    algorithm = {"SSHA": "sha1", "SSHA256": "sha256", "SSHA512": "sha512"}[scheme]
    raw = base64.b64decode(encoded)
    size = hashlib.new(algorithm).digest_size
    digest, salt = raw[:size], raw[size:]
    return bool(salt) and hashlib.new(algorithm, password + salt).digest() == digest


def adaptedBase64Decode(text: str) -> bytes:
    """
    Decode the adapted base64 of OpenLDAP's pw-pbkdf2 module.

    @param text: C{.} for C{+}, no padding.

    @return: The decoded bytes.
    """
    text = text.replace(".", "+")
    return base64.b64decode(text + "=" * (-len(text) % 4))


class ExampleLDIFTests(unittest.TestCase):
    """
    Tests for the example directory in C{examples/data/example.ldif}.
    """

    def setUp(self) -> None:
        """
        Parse the example file.
        """
        with EXAMPLE_LDIF.open("rb") as f:
            self.records = list(parseLDIF(f))
        self.entries = {r.dn: r for r in self.records}

    def values(self, dn: str, attribute: str) -> list[bytes]:
        """
        Get the values of an attribute of an example entry.

        @param dn: The entry's DN.
        @param attribute: The attribute type, matched case-insensitively.

        @return: Its values in file order.
        """
        return [v for name, v in self.entries[dn].attributes if name.lower() == attribute.lower()]

    def password(self, uid: str, ou: str = "people") -> str:
        """
        Get the single userPassword of an example account.

        @param uid: The account's uid.
        @param ou: The organisational unit holding it.

        @return: The stored userPassword value.
        """
        [value] = self.values(f"uid={uid},ou={ou},dc=example,dc=com", "userPassword")
        return value.decode("ascii")

    def test_entries(self) -> None:
        """
        The file holds 20 content records with distinct DNs, the suffix
        first.
        """
        self.assertEqual(len(self.records), 20)
        self.assertEqual(len(self.entries), 20)
        self.assertTrue(all(r.changetype == "content" for r in self.records))
        self.assertEqual(self.records[0].dn, "dc=example,dc=com")

    def test_parentBeforeChild(self) -> None:
        """
        Every entry but the suffix follows its parent.
        """
        seen = {self.records[0].dn}
        for record in self.records[1:]:
            self.assertIn(record.dn.split(",", 1)[1], seen, record.dn)
            seen.add(record.dn)

    def test_rdnValuePresent(self) -> None:
        """
        Every entry holds its RDN's value in the RDN's attribute.
        """
        for record in self.records:
            attribute, value = record.dn.split(",", 1)[0].split("=")
            self.assertIn(value.encode(), self.values(record.dn, attribute), record.dn)

    def test_users(self) -> None:
        """
        The eight users are inetOrgPerson and posixAccount entries with the
        mandatory attributes of both, uid numbers from 10001 and example.com
        mail addresses.
        """
        uids = ["alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi"]
        for number, uid in enumerate(uids, 10001):
            dn = f"uid={uid},ou=people,dc=example,dc=com"
            self.assertEqual(
                set(self.values(dn, "objectClass")),
                {b"top", b"person", b"organizationalPerson", b"inetOrgPerson", b"posixAccount"},
            )
            for attribute in [
                "cn",
                "sn",
                "givenName",
                "employeeNumber",
                "homeDirectory",
                "loginShell",
            ]:
                self.assertEqual(len(self.values(dn, attribute)), 1, (dn, attribute))
            self.assertEqual(self.values(dn, "uid"), [uid.encode()])
            self.assertEqual(self.values(dn, "mail"), [f"{uid}@example.com".encode()])
            self.assertEqual(self.values(dn, "uidNumber"), [str(number).encode()])
            self.assertEqual(self.values(dn, "gidNumber"), [b"10000"])

    def test_groups(self) -> None:
        """
        The groupOfNames groups list existing users as members, and the
        posixGroup lists every user.
        """
        people = "ou=people,dc=example,dc=com"
        expected = {
            "admins": ["alice"],
            "developers": ["bob", "carol", "dave"],
            "staff": ["alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi"],
        }
        for cn, uids in expected.items():
            dn = f"cn={cn},ou=groups,dc=example,dc=com"
            self.assertIn(b"groupOfNames", self.values(dn, "objectClass"))
            self.assertEqual(
                self.values(dn, "member"), [f"uid={u},{people}".encode() for u in uids]
            )
            self.assertEqual(len(self.values(dn, "description")), 1)
            for member in self.values(dn, "member"):
                self.assertIn(member.decode(), self.entries)
        posix = "cn=users,ou=posix,ou=groups,dc=example,dc=com"
        self.assertEqual(self.values(posix, "objectClass"), [b"top", b"posixGroup"])
        self.assertEqual(self.values(posix, "gidNumber"), [b"10000"])
        self.assertEqual(self.values(posix, "memberUid"), [u.encode() for u in expected["staff"]])

    def test_services(self) -> None:
        """
        The service accounts are account and simpleSecurityObject entries
        with a description.
        """
        for uid in ["mail-gateway", "nextcloud", "sssd"]:
            dn = f"uid={uid},ou=services,dc=example,dc=com"
            self.assertEqual(
                self.values(dn, "objectClass"), [b"top", b"account", b"simpleSecurityObject"]
            )
            self.assertEqual(len(self.values(dn, "description")), 1)

    def test_saltedSHAPasswords(self) -> None:
        """
        The {SSHA}, {SSHA256} and {SSHA512} passwords are the documented
        C{<uid>-secret} passwords, in the documented schemes.
        """
        accounts = [
            ("alice", "people", "{SSHA}"),
            ("bob", "people", "{SSHA}"),
            ("carol", "people", "{SSHA256}"),
            ("dave", "people", "{SSHA512}"),
            ("mail-gateway", "services", "{SSHA}"),
            ("nextcloud", "services", "{SSHA}"),
            ("sssd", "services", "{SSHA}"),
        ]
        for uid, ou, scheme in accounts:
            stored = self.password(uid, ou)
            self.assertTrue(stored.startswith(scheme), stored)
            self.assertTrue(checkSaltedSHA(stored, f"{uid}-secret".encode()), uid)
            self.assertFalse(checkSaltedSHA(stored, b"wrong"), uid)

    def test_cleartextPassword(self) -> None:
        """
        heidi's password is stored in cleartext.
        """
        self.assertEqual(self.password("heidi"), "heidi-secret")

    def test_pbkdf2Password(self) -> None:
        """
        eve's password is in OpenLDAP's {PBKDF2-SHA256} format with 10000
        rounds.
        """
        scheme, salt, digest = self.password("eve").split("$")
        self.assertEqual(scheme, "{PBKDF2-SHA256}10000")
        expected = hashlib.pbkdf2_hmac("sha256", b"eve-secret", adaptedBase64Decode(salt), 10000)
        self.assertEqual(adaptedBase64Decode(digest), expected)

    def test_argon2Password(self) -> None:
        """
        frank's password is an argon2id PHC string with the cheap test
        parameters.
        """
        stored = self.password("frank")
        self.assertTrue(stored.startswith("{ARGON2}$argon2id$v=19$m=1024,t=2,p=1$"), stored)
        self.assertTrue(argon2.PasswordHasher().verify(stored[len("{ARGON2}") :], "frank-secret"))

    def test_bcryptPassword(self) -> None:
        """
        grace's password is a cost-6 bcrypt hash in the {CRYPT} scheme.
        """
        stored = self.password("grace")
        self.assertTrue(stored.startswith("{CRYPT}$2b$06$"), stored)
        self.assertTrue(bcrypt.checkpw(b"grace-secret", stored[len("{CRYPT}") :].encode()))
