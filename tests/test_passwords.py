"""
Tests for L{ldapd.passwords}.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import shutil
import string
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
from argon2.low_level import Type, hash_secret
from ldaptor.protocols import pureldap
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest

from ldapd import passwords
from ldapd._codec import encodeSequence, octetString
from ldapd.backends.memory import MemoryBackend
from ldapd.config import ConfigError, loadConfig
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.extended import PASSWORD_MODIFY
from ldapd.ldif import parseLDIF
from ldapd.passwords import (
    SCHEMES,
    ExcessiveCost,
    PasswordLimits,
    PasswordVerifier,
    UnknownScheme,
    checkCost,
    generatePassword,
    hashPassword,
    isExpensive,
    verifierFor,
    verifyPassword,
)
from ldapd.protocol import LDAPServerFactory
from ldapd.schema import Schema
from ldapd.testing import EXAMPLE_LDIF, decodeResponses

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
except ImportError:
    crypt = None


def _b64(data: bytes) -> bytes:
    """
    Standard base64 with padding, as slapd writes digest schemes.

    @param data: The bytes to encode.
    @return: The encoded bytes.
    """
    return base64.b64encode(data)


def _ab64(data: bytes) -> bytes:
    """
    OpenLDAP pw-pbkdf2's "adapted base64", built here independently of the
    module under test.

    @param data: The bytes to encode.
    @return: Base64 with C{+} as C{.} and no padding.
    """
    return base64.b64encode(data).replace(b"+", b".").replace(b"=", b"")


def _pbkdf2Parts(stored: bytes, prefix: bytes) -> tuple[int, bytes, bytes]:
    """
    Split a stored PBKDF2 value into its fields.

    @param stored: A value produced by L{hashPassword}.
    @param prefix: The expected scheme prefix.
    @return: The rounds, decoded salt and decoded hash.
    """
    assert stored.startswith(prefix)
    rounds, salt, derived = stored[len(prefix) :].split(b"$")

    def decode(text: bytes) -> bytes:
        standard = text.replace(b".", b"+")
        return base64.b64decode(standard + b"=" * (-len(standard) % 4))

    return int(rounds), decode(salt), decode(derived)


class HashPasswordTests(unittest.TestCase):
    """
    Tests for L{hashPassword}.
    """

    def test_schemes(self) -> None:
        """
        L{SCHEMES} lists the schemes ldapd writes, default first-class
        choices included.
        """
        self.assertEqual(
            set(SCHEMES),
            {
                "{SSHA}",
                "{SSHA256}",
                "{SSHA512}",
                "{PBKDF2-SHA256}",
                "{PBKDF2-SHA512}",
                "{ARGON2}",
                "{CRYPT}",
            },
        )

    def test_roundTrip(self) -> None:
        """
        Every scheme in L{SCHEMES} produces a value carrying its prefix that
        verifies with the right password and not with a wrong one.
        """
        for scheme in SCHEMES:
            stored = hashPassword(b"correct horse", scheme)
            self.assertTrue(stored.startswith(scheme.encode("ascii")), stored)
            self.assertTrue(verifyPassword(stored, b"correct horse"), scheme)
            self.assertFalse(verifyPassword(stored, b"correct horsf"), scheme)

    def test_defaultIsArgon2id(self) -> None:
        """
        Without a scheme, the password is hashed with argon2id in OpenLDAP's
        pw-argon2 format and the documented parameters.
        """
        stored = hashPassword(b"secret")
        self.assertTrue(
            stored.startswith(b"{ARGON2}$argon2id$v=19$m=65536,t=3,p=4$"), stored
        )
        self.assertTrue(verifyPassword(stored, b"secret"))

    def test_caseInsensitiveScheme(self) -> None:
        """
        Scheme names are matched case-insensitively and the stored prefix is
        written in upper case.
        """
        stored = hashPassword(b"secret", "{ssha256}")
        self.assertTrue(stored.startswith(b"{SSHA256}"))
        self.assertTrue(verifyPassword(stored, b"secret"))

    def test_unknownScheme(self) -> None:
        """
        An unsupported or verify-only scheme name raises L{UnknownScheme},
        which is a L{ValueError}.
        """
        for scheme in ["{SHA}", "{MD5}", "{CLEARTEXT}", "SSHA", "", "{\u017fSHA}"]:
            exc = self.assertRaises(UnknownScheme, hashPassword, b"pw", scheme)
            self.assertIsInstance(exc, ValueError)

    def test_nonAsciiSchemeDoesNotAlias(self) -> None:
        """
        A non-ASCII scheme name whose Unicode upper case is a known scheme is
        not accepted.
        """
        self.assertEqual("{\u00dfHA}".upper(), "{SSHA}")
        self.assertRaises(UnknownScheme, hashPassword, b"pw", "{\u00dfHA}")

    def test_saltedDigestFormat(self) -> None:
        """
        C{{SSHA}} stores base64 of a SHA-1 digest followed by an 8-byte salt,
        and the digest is of the password followed by that salt.
        """
        stored = hashPassword(b"secret", "{SSHA}")
        decoded = base64.b64decode(stored[len(b"{SSHA}") :])
        self.assertEqual(len(decoded), 20 + 8)
        digest, salt = decoded[:20], decoded[20:]
        self.assertEqual(hashlib.sha1(b"secret" + salt).digest(), digest)

    def test_saltsDiffer(self) -> None:
        """
        Hashing the same password twice gives different stored values.
        """
        self.assertNotEqual(
            hashPassword(b"secret", "{SSHA512}"), hashPassword(b"secret", "{SSHA512}")
        )

    def test_pbkdf2SHA256Format(self) -> None:
        """
        C{{PBKDF2-SHA256}} writes 600000 rounds, a 16-byte salt and a 32-byte
        hash in adapted base64, and the hash is PBKDF2-HMAC-SHA256.
        """
        stored = hashPassword(b"secret", "{PBKDF2-SHA256}")
        self.assertNotIn(b"=", stored)
        self.assertNotIn(b"+", stored)
        rounds, salt, derived = _pbkdf2Parts(stored, b"{PBKDF2-SHA256}")
        self.assertEqual((rounds, len(salt)), (600000, 16))
        self.assertEqual(
            derived, hashlib.pbkdf2_hmac("sha256", b"secret", salt, rounds)
        )

    def test_pbkdf2SHA512Format(self) -> None:
        """
        C{{PBKDF2-SHA512}} writes 210000 rounds, a 16-byte salt and a 64-byte
        hash.
        """
        stored = hashPassword(b"secret", "{PBKDF2-SHA512}")
        rounds, salt, derived = _pbkdf2Parts(stored, b"{PBKDF2-SHA512}")
        self.assertEqual((rounds, len(salt), len(derived)), (210000, 16, 64))

    def test_cryptIsBcrypt(self) -> None:
        """
        C{{CRYPT}} hashes with bcrypt, C{$2b$} at cost 12.
        """
        stored = hashPassword(b"secret", "{CRYPT}")
        self.assertTrue(stored.startswith(b"{CRYPT}$2b$12$"), stored)
        self.assertEqual(len(stored), len(b"{CRYPT}") + 60)

    def test_cryptRejectsLongPassword(self) -> None:
        """
        C{{CRYPT}} refuses a password longer than the 72 bytes bcrypt uses
        rather than silently ignoring its tail; 72 bytes is accepted.
        """
        self.assertRaises(ValueError, hashPassword, b"a" * 73, "{CRYPT}")
        stored = hashPassword(b"a" * 72, "{CRYPT}")
        self.assertTrue(verifyPassword(stored, b"a" * 72))


class VerifyPasswordTests(unittest.TestCase):
    """
    Tests for L{verifyPassword}.
    """

    def test_cleartext(self) -> None:
        """
        A value without a scheme prefix is compared exactly.
        """
        self.assertTrue(verifyPassword(b"secret", b"secret"))
        self.assertFalse(verifyPassword(b"secret", b"Secret"))
        self.assertFalse(verifyPassword(b"secret", b"secret "))
        self.assertFalse(verifyPassword(b"secret", b"secre"))

    def test_cleartextBraceWithoutScheme(self) -> None:
        """
        A value starting with C{{} but with no closing brace is cleartext,
        as in slapd.
        """
        self.assertTrue(verifyPassword(b"{secret", b"{secret"))

    def test_emptyPassword(self) -> None:
        """
        An empty password never verifies, not even against an empty
        cleartext value.
        """
        self.assertFalse(verifyPassword(b"", b""))
        self.assertFalse(verifyPassword(b"{SHA}" + _b64(hashlib.sha1().digest()), b""))

    def test_unknownScheme(self) -> None:
        """
        A value with an unknown scheme never verifies, even with its own text
        as the password.
        """
        self.assertFalse(verifyPassword(b"{NOSUCH}secret", b"secret"))
        self.assertFalse(verifyPassword(b"{NOSUCH}secret", b"{NOSUCH}secret"))
        self.assertFalse(verifyPassword(b"{}secret", b"{}secret"))

    def test_hashedValueIsNotItsOwnPassword(self) -> None:
        """
        Presenting a stored hash as the password does not verify.
        """
        stored = hashPassword(b"secret", "{SSHA}")
        self.assertFalse(verifyPassword(stored, stored))

    def test_lowerCaseStoredScheme(self) -> None:
        """
        The scheme prefix of a stored value is matched case-insensitively.
        """
        stored = b"{ssha}" + _b64(hashlib.sha1(b"secret" + b"salt").digest() + b"salt")
        self.assertTrue(verifyPassword(stored, b"secret"))

    def test_sshaKnownAnswer(self) -> None:
        """
        C{{SSHA}} is base64(sha1(password + salt) + salt), checked against a
        value built by hand from a fixed salt.
        """
        salt = bytes(range(8))
        stored = b"{SSHA}" + _b64(hashlib.sha1(b"secret" + salt).digest() + salt)
        self.assertTrue(verifyPassword(stored, b"secret"))
        self.assertFalse(verifyPassword(stored, b"Secret"))

    def test_sshaLiteral(self) -> None:
        """
        A literal C{{SSHA}} value for "secret" with the 4-byte salt C{salt}
        verifies.
        """
        stored = b"{SSHA}gVK8WC9YyFT1gMsQHTGCgT3sSv5zYWx0"
        self.assertEqual(
            stored[6:],
            _b64(hashlib.sha1(b"secretsalt").digest() + b"salt"),
        )
        self.assertTrue(verifyPassword(stored, b"secret"))

    def test_saltedAnySaltLength(self) -> None:
        """
        Salted digest schemes accept salts of any non-empty length.
        """
        for length in (1, 4, 16, 64):
            salt = b"s" * length
            stored = b"{SSHA256}" + _b64(hashlib.sha256(b"pw" + salt).digest() + salt)
            self.assertTrue(verifyPassword(stored, b"pw"), length)

    def test_digestSchemes(self) -> None:
        """
        The verify-only unsalted and salted digest schemes compare against
        values built by hand.
        """
        salt = b"\x00\xffsalt"
        for scheme, name in [
            (b"{SHA}", "sha1"),
            (b"{SHA256}", "sha256"),
            (b"{SHA384}", "sha384"),
            (b"{SHA512}", "sha512"),
            (b"{MD5}", "md5"),
        ]:
            stored = scheme + _b64(hashlib.new(name, b"pw").digest())
            self.assertTrue(verifyPassword(stored, b"pw"), scheme)
            self.assertFalse(verifyPassword(stored, b"px"), scheme)
        for scheme, name in [
            (b"{SSHA}", "sha1"),
            (b"{SSHA256}", "sha256"),
            (b"{SSHA384}", "sha384"),
            (b"{SSHA512}", "sha512"),
            (b"{SMD5}", "md5"),
        ]:
            stored = scheme + _b64(hashlib.new(name, b"pw" + salt).digest() + salt)
            self.assertTrue(verifyPassword(stored, b"pw"), scheme)
            self.assertFalse(verifyPassword(stored, b"px"), scheme)

    def test_shaLiteral(self) -> None:
        """
        The well-known C{{SHA}} value of "password" verifies.
        """
        self.assertTrue(
            verifyPassword(b"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", b"password")
        )

    def test_pbkdf2SHA256KnownAnswer(self) -> None:
        """
        C{{PBKDF2-SHA256}} verifies the RFC 7914 section 11 vector (P
        "passwd", S "salt", c 1), truncated to 32 bytes, written by hand in
        pw-pbkdf2's format.
        """
        derived = bytes.fromhex(
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        )
        stored = b"{PBKDF2-SHA256}1$c2FsdA$" + _ab64(derived)
        self.assertTrue(verifyPassword(stored, b"passwd"))
        self.assertFalse(verifyPassword(stored, b"passwe"))

    def test_pbkdf2AdaptedBase64(self) -> None:
        """
        PBKDF2 salt and hash use C{.} for C{+} and no padding; a value built
        by hand whose salt encodes with C{+} verifies.
        """
        salt = b"\xfb\xef\xbe" * 5 + b"\xfb"
        self.assertIn(b"+", base64.b64encode(salt))
        derived = hashlib.pbkdf2_hmac("sha256", b"secret", salt, 1000)
        stored = b"{PBKDF2-SHA256}1000$" + _ab64(salt) + b"$" + _ab64(derived)
        self.assertIn(b".", stored)
        self.assertTrue(verifyPassword(stored, b"secret"))
        self.assertFalse(verifyPassword(stored, b"secreT"))

    def test_pbkdf2OtherDigests(self) -> None:
        """
        C{{PBKDF2}} and C{{PBKDF2-SHA1}} use SHA-1 and C{{PBKDF2-SHA512}} uses
        SHA-512, each with a digest-sized hash.
        """
        salt = b"0123456789abcdef"
        for scheme, name in [
            (b"{PBKDF2}", "sha1"),
            (b"{PBKDF2-SHA1}", "sha1"),
            (b"{PBKDF2-SHA512}", "sha512"),
        ]:
            derived = hashlib.pbkdf2_hmac(name, b"pw", salt, 10)
            stored = scheme + b"10$" + _ab64(salt) + b"$" + _ab64(derived)
            self.assertTrue(verifyPassword(stored, b"pw"), scheme)
            self.assertFalse(verifyPassword(stored, b"px"), scheme)

    def test_argon2KnownAnswer(self) -> None:
        """
        C{{ARGON2}} verifies the reference implementation's argon2i and
        argon2id test vectors for "password" and salt "somesalt".
        """
        for phc in [
            b"$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ"
            b"$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA",
            b"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ"
            b"$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        ]:
            self.assertTrue(verifyPassword(b"{ARGON2}" + phc, b"password"), phc)
            self.assertFalse(verifyPassword(b"{ARGON2}" + phc, b"Password"), phc)

    def test_argon2d(self) -> None:
        """
        C{{ARGON2}} also verifies argon2d hashes.
        """
        phc = hash_secret(b"pw", b"somesaltsomesalt", 1, 1024, 1, 32, Type.D)
        self.assertTrue(phc.startswith(b"$argon2d$"))
        self.assertTrue(verifyPassword(b"{ARGON2}" + phc, b"pw"))
        self.assertFalse(verifyPassword(b"{ARGON2}" + phc, b"px"))

    def test_bcryptKnownAnswer(self) -> None:
        """
        C{{CRYPT}} verifies the crypt_blowfish test vector under each of the
        C{$2a$}, C{$2b$} and C{$2y$} prefixes.
        """
        tail = b"$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
        for prefix in [b"$2a", b"$2b", b"$2y"]:
            stored = b"{CRYPT}" + prefix + tail
            self.assertTrue(verifyPassword(stored, b"U*U"), prefix)
            self.assertFalse(verifyPassword(stored, b"U*V"), prefix)

    def test_bcryptLongPassword(self) -> None:
        """
        A bcrypt value made elsewhere from a password longer than 72 bytes
        verifies with that password, as it would under crypt(3).
        """
        import bcrypt

        stored = b"{CRYPT}" + bcrypt.hashpw(b"a" * 72, bcrypt.gensalt(4))
        self.assertTrue(verifyPassword(stored, b"a" * 80))
        self.assertFalse(verifyPassword(stored, b"a" * 71))

    def test_cryptSHA(self) -> None:
        """
        Non-bcrypt C{{CRYPT}} values verify through the C{crypt} module,
        using the SHA-crypt specification's vectors.
        """
        if crypt is None:
            raise unittest.SkipTest("crypt module unavailable")
        vectors = [
            b"$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
            b"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNj"
            b"nQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
        ]
        for vector in vectors:
            if crypt.crypt("Hello world!", vector.decode("ascii")) != vector.decode():
                raise unittest.SkipTest("platform crypt(3) lacks SHA-crypt")
            self.assertTrue(verifyPassword(b"{CRYPT}" + vector, b"Hello world!"))
            self.assertFalse(verifyPassword(b"{CRYPT}" + vector, b"Hello world?"))

    def test_cryptNonUTF8Password(self) -> None:
        """
        A password that is not UTF-8 cannot be passed to the C{crypt} module
        and does not verify against a non-bcrypt value.
        """
        stored = b"{CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3u"
        self.assertFalse(verifyPassword(stored, b"\xff\xfe"))
        self.assertFalse(verifyPassword(stored, b"a\x00b"))

    def test_cryptModuleMissing(self) -> None:
        """
        Without the C{crypt} module, non-bcrypt C{{CRYPT}} values do not
        verify while bcrypt values still do.
        """
        self.patch(passwords, "_cryptModule", None)
        self.assertFalse(
            verifyPassword(
                b"{CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
                b"Hello world!",
            )
        )
        self.assertTrue(
            verifyPassword(
                b"{CRYPT}$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
                b"U*U",
            )
        )

    def test_malformedDigest(self) -> None:
        """
        Digest values with bad base64, a truncated or overlong digest, or an
        empty salt do not verify.
        """
        good = hashlib.sha1(b"pw").digest()
        salted = hashlib.sha1(b"pwsalt").digest()
        for stored in [
            b"{SHA}not base64!",
            b"{SHA}" + _b64(good)[:-2],
            b"{SHA}" + _b64(good[:-1]),
            b"{SHA}" + _b64(good + b"x"),
            b"{SHA}",
            b"{SSHA}%%%%",
            b"{SSHA}" + _b64(salted),
            b"{SSHA}" + _b64(salted[:10]),
            b"{SSHA512}" + _b64(b"short"),
            b"{SSHA}",
        ]:
            self.assertFalse(verifyPassword(stored, b"pw"), stored)

    def test_malformedPBKDF2(self) -> None:
        """
        PBKDF2 values with missing fields, bad or out-of-range rounds, bad
        adapted base64, an empty salt or a wrongly sized hash do not verify.
        """
        salt = b"0123456789abcdef"
        derived = hashlib.pbkdf2_hmac("sha256", b"pw", salt, 10)
        for stored in [
            b"{PBKDF2-SHA256}",
            b"{PBKDF2-SHA256}10",
            b"{PBKDF2-SHA256}10$" + _ab64(salt),
            b"{PBKDF2-SHA256}10$" + _ab64(salt) + b"$" + _ab64(derived) + b"$",
            b"{PBKDF2-SHA256}x$" + _ab64(salt) + b"$" + _ab64(derived),
            b"{PBKDF2-SHA256} 10$" + _ab64(salt) + b"$" + _ab64(derived),
            b"{PBKDF2-SHA256}-10$" + _ab64(salt) + b"$" + _ab64(derived),
            b"{PBKDF2-SHA256}0$" + _ab64(salt) + b"$" + _ab64(derived),
            b"{PBKDF2-SHA256}99999999999999999999$" + _ab64(salt) + b"$" + _ab64(derived),
            b"{PBKDF2-SHA256}10$!!$" + _ab64(derived),
            b"{PBKDF2-SHA256}10$" + _ab64(salt) + b"$" + _ab64(derived)[:-1],
            b"{PBKDF2-SHA256}10$$" + _ab64(derived),
            b"{PBKDF2-SHA256}10$" + _ab64(salt) + b"$" + _ab64(derived[:-1]),
            b"{PBKDF2-SHA512}10$" + _ab64(salt) + b"$" + _ab64(derived),
        ]:
            self.assertFalse(verifyPassword(stored, b"pw"), stored)

    def test_malformedArgon2(self) -> None:
        """
        Garbage and damaged PHC strings under C{{ARGON2}} do not verify.
        """
        for stored in [
            b"{ARGON2}",
            b"{ARGON2}garbage",
            b"{ARGON2}$argon2id$garbage",
            b"{ARGON2}$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$",
            b"{ARGON2}$argon2id$v=19$m=65536,t=3,p=4$!!$!!",
            b"{ARGON2}$argon2x$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$c29tZXNhbHQ",
            b"{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ"
            b"$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRP",
            b"{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ\xff",
        ]:
            self.assertFalse(verifyPassword(stored, b"password"), stored)

    def test_malformedCrypt(self) -> None:
        """
        Damaged bcrypt strings and too-short crypt settings under C{{CRYPT}}
        do not verify.
        """
        for stored in [
            b"{CRYPT}",
            b"{CRYPT}x",
            b"{CRYPT}*",
            b"{CRYPT}$2b$",
            b"{CRYPT}$2b$04$short",
            b"{CRYPT}$2b$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            b"{CRYPT}$2b$05$" + b"!" * 53,
            b"{CRYPT}$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe",
            b"{CRYPT}\xff\xfe",
        ]:
            self.assertFalse(verifyPassword(stored, b"U*U"), stored)


class IsExpensiveTests(unittest.TestCase):
    """
    Tests for L{isExpensive}.
    """

    def test_expensive(self) -> None:
        """
        Argon2, crypt and every PBKDF2 scheme are expensive, whatever the
        case of the prefix and whether or not the payload is valid.
        """
        for stored in [
            b"{ARGON2}$argon2id$...",
            b"{argon2}",
            b"{CRYPT}$2b$12$...",
            b"{Crypt}$6$...",
            b"{PBKDF2}1$a$b",
            b"{PBKDF2-SHA1}1$a$b",
            b"{PBKDF2-SHA256}1$a$b",
            b"{pbkdf2-sha512}1$a$b",
        ]:
            self.assertTrue(isExpensive(stored), stored)

    def test_cheap(self) -> None:
        """
        Plain and salted digests, cleartext and unknown schemes are cheap.
        """
        for stored in [
            b"{SHA}abc",
            b"{SSHA}abc",
            b"{SSHA512}abc",
            b"{MD5}abc",
            b"secret",
            b"",
            b"{NOSUCH}x",
            b"CRYPT}x",
        ]:
            self.assertFalse(isExpensive(stored), stored)

    def test_hashedSchemes(self) -> None:
        """
        isExpensive agrees with the stored values L{hashPassword} writes.
        """
        self.assertTrue(isExpensive(hashPassword(b"pw", "{CRYPT}")))
        self.assertFalse(isExpensive(hashPassword(b"pw", "{SSHA}")))


class GeneratePasswordTests(unittest.TestCase):
    """
    Tests for L{generatePassword}.
    """

    def test_defaultLength(self) -> None:
        """
        By default the password is 16 bytes long.
        """
        self.assertEqual(len(generatePassword()), 16)

    def test_length(self) -> None:
        """
        The password has the requested length.
        """
        for length in (1, 8, 64):
            self.assertEqual(len(generatePassword(length)), length)

    def test_invalidLength(self) -> None:
        """
        A length below 1 raises L{ValueError}.
        """
        self.assertRaises(ValueError, generatePassword, 0)
        self.assertRaises(ValueError, generatePassword, -1)

    def test_charset(self) -> None:
        """
        Passwords are printable ASCII without whitespace, drawn from letters,
        digits and symbols, with letters and digits all in use.
        """
        sample = b"".join(generatePassword(64) for _ in range(50)).decode("ascii")
        allowed = set(string.ascii_letters + string.digits + string.punctuation)
        self.assertLessEqual(set(sample), allowed)
        self.assertTrue(set(string.ascii_lowercase) & set(sample))
        self.assertTrue(set(string.ascii_uppercase) & set(sample))
        self.assertTrue(set(string.digits) & set(sample))
        self.assertFalse(set("\"'\\`") & set(sample))

    def test_random(self) -> None:
        """
        Successive passwords differ.
        """
        self.assertEqual(len({generatePassword() for _ in range(20)}), 20)

    def test_verifies(self) -> None:
        """
        A generated password can be hashed and verified.
        """
        password = generatePassword()
        self.assertTrue(verifyPassword(hashPassword(password, "{SSHA}"), password))


#: Stored values each asking far more work than the default limits allow;
#: well formed, but their hashes are made up (computing real ones would take
#: the time they are about).
BOMBS = {
    "bcrypt cost 16": b"{CRYPT}$2b$16$mjwHGhc3ztympQgPHeic4ekgi4Ld3S7fp4CHfxrgNcP7uL7Q3Oui",
    "PBKDF2 2^31-1 rounds": b"{PBKDF2-SHA256}2147483647$9B0n82vWaksHPA1NqA3Ngg"
    b"$DBhtfCvPsk4QxIFK65CeGDiA4MT/6O8Y5s.J8Y0KdGk",
    "argon2 256 MiB": b"{ARGON2}$argon2id$v=19$m=262144,t=3,p=4$skr8VRqW5A3CZ7AcdoPhEw"
    b"$22Eu5x1Mv3GzAiUpIQIiZsHtHXlC7UajsqZOddmpbjA",
    "sha512-crypt 999999999 rounds": b"{CRYPT}$6$rounds=999999999$saltstring$svn8UoSVapNtMuq1"
    b"ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
}

_EXAMPLE_LDIF = Path(__file__).parent.parent / "examples" / "data" / "example.ldif"


class CheckCostTests(unittest.TestCase):
    """
    Tests for L{checkCost} and the limits L{verifyPassword} applies.
    """

    def test_defaultsAcceptWhatLdapdHashes(self) -> None:
        """
        Every scheme L{hashPassword} writes, with its default parameters, is
        within the default limits.
        """
        for scheme in SCHEMES:
            checkCost(hashPassword(b"pw", scheme))

    def test_defaultsAcceptTheExampleData(self) -> None:
        """
        Every userPassword of the example LDIF is within the default limits.
        """
        with open(_EXAMPLE_LDIF, "rb") as f:
            values = [
                value for record in parseLDIF(f) for name, value in record.attributes
                if name.lower() == "userpassword"
            ]
        self.assertGreater(len(values), 5)
        for value in values:
            checkCost(value)

    def test_defaultsAcceptWhatSlapdHashes(self) -> None:
        """
        The values slapd's slappasswd makes by default (its argon2 module,
        sha512-crypt through crypt(3)) are within the default limits.
        """
        if shutil.which("slappasswd") is None:
            raise unittest.SkipTest("slappasswd not installed (Debian package slapd)")
        for args in (["-o", "module-load=argon2", "-h", "{ARGON2}"],
                     ["-h", "{CRYPT}", "-c", "$6$%.16s"]):
            made = subprocess.run(["slappasswd", *args, "-s", "x"], capture_output=True,
                                  timeout=30, check=False)
            if made.returncode:
                raise unittest.SkipTest(made.stderr.decode(errors="replace"))
            stored = made.stdout.strip()
            checkCost(stored)
            self.assertTrue(verifyPassword(stored, b"x"), stored)

    def test_bombsRefused(self) -> None:
        """
        Values over the limits are refused with a message naming the
        scheme, the parameter, its value and the setting that bounds it.
        """
        expected = {
            "bcrypt cost 16": "{CRYPT} bcrypt cost 16 is over the limit of 13 (bcrypt_cost)",
            "PBKDF2 2^31-1 rounds": "{PBKDF2-SHA256} PBKDF2 rounds 2147483647 is over the limit"
            " of 2000000 (pbkdf2_rounds)",
            "argon2 256 MiB": "{ARGON2} argon2 memory (KiB) 262144 is over the limit of 131072"
            " (argon2_memory)",
            "sha512-crypt 999999999 rounds": "{CRYPT} sha-crypt rounds 999999999 is over the"
            " limit of 1000000 (crypt_rounds)",
        }
        for name, stored in BOMBS.items():
            e = self.assertRaises(ExcessiveCost, checkCost, stored)
            self.assertEqual(str(e), expected[name])

    def test_argon2EachParameter(self) -> None:
        """
        argon2's passes and lanes are bounded as well as its memory.
        """
        base = b"{ARGON2}$argon2id$v=19$m=%d,t=%d,p=%d$c2FsdHNhbHQ$aGFzaGhhc2g"
        checkCost(base % (65536, 3, 4))
        self.assertIn("passes 11", str(self.assertRaises(
            ExcessiveCost, checkCost, base % (1024, 11, 1))))
        self.assertIn("lanes 9", str(self.assertRaises(
            ExcessiveCost, checkCost, base % (1024, 1, 9))))

    def test_unreadableCostRefused(self) -> None:
        """
        Values whose cost cannot be read are refused: argon2 parameters in
        another form (argon2's own parser might still hash with them), and
        crypt(3) methods whose cost ldapd does not read (yescrypt, scrypt,
        BSDi DES), or sha-crypt rounds not written as digits.
        """
        for stored in [
            b"{ARGON2}$argon2id$v=19$t=3,m=262144,p=4$c2FsdA$aGFzaA",
            b"{ARGON2}garbage",
            b"{CRYPT}$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
            b"{CRYPT}$7$CU..../....sAlt$hash",
            b"{CRYPT}_J9..saltabcdefghijk",
            b"{CRYPT}$6$rounds=+99999999$salt$hash",
        ]:
            self.assertRaises(ExcessiveCost, checkCost, stored)

    def test_cheapAndMalformedPass(self) -> None:
        """
        Cleartext, the fast digests, crypt's fixed-cost methods and
        malformed PBKDF2 values (never hashed) have no cost to bound.
        """
        for stored in [
            b"secret", b"{SSHA}abc", b"{NOSUCH}x", b"{CRYPT}$1$salt$hash",
            b"{CRYPT}abJnggxhB/yWI", b"{CRYPT}$6$salt$hash", b"{PBKDF2-SHA256}x$y",
        ]:
            checkCost(stored)

    def test_configuredLimits(self) -> None:
        """
        The limits are the caller's: a value within the default limits is
        refused under lower ones, and a bomb accepted under higher ones.
        """
        stored = hashPassword(b"pw", "{PBKDF2-SHA256}")
        self.assertRaises(ExcessiveCost, checkCost, stored, PasswordLimits(pbkdf2Rounds=1000))
        checkCost(BOMBS["bcrypt cost 16"], PasswordLimits(bcryptCost=16))

    def test_overLimitNeverHashed(self) -> None:
        """
        L{verifyPassword} refuses a value over the limits without hashing:
        the right password does not match it, and bcrypt is never called.
        """
        stored = b"{CRYPT}" + bcrypt.hashpw(b"pw", bcrypt.gensalt(5))
        self.assertTrue(verifyPassword(stored, b"pw"))
        calls = []
        self.patch(bcrypt, "checkpw", lambda *a: calls.append(a) or True)
        self.assertFalse(verifyPassword(stored, b"pw", PasswordLimits(bcryptCost=4)))
        self.assertEqual(calls, [])

    def test_bombsNeverHashed(self) -> None:
        """
        None of the bombs reaches a hash function under the default limits.
        """
        calls: list[Any] = []

        def record(*args: Any, **kwargs: Any) -> bool:
            calls.append(args)
            return True

        self.patch(bcrypt, "checkpw", record)
        self.patch(hashlib, "pbkdf2_hmac", record)
        self.patch(passwords, "_argon2Hasher", type("Hasher", (), {"verify": staticmethod(record)}))
        self.patch(passwords, "_cryptModule", None)
        for stored in BOMBS.values():
            self.assertFalse(verifyPassword(stored, b"pw"), stored)
        self.assertEqual(calls, [])


class _Thread:
    """
    A stand-in for the reactor's thread pool that runs nothing until told:
    each call is recorded with a Deferred the test fires.

    @ivar calls: the functions handed over, each with its Deferred.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[[], Any], defer.Deferred[Any]]] = []

    def __call__(self, f: Callable[[], Any]) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.calls.append((f, d))
        return d

    def finish(self, i: int = 0) -> None:
        """
        Run the C{i}th waiting call now and fire its Deferred with its
        result or its exception.
        """
        f, d = self.calls.pop(i)
        defer.maybeDeferred(f).chainDeferred(d)


_SLOW = b"{CRYPT}" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4))


class PasswordVerifierTests(unittest.TestCase):
    """
    Tests for L{PasswordVerifier}: slow verifications off the reactor, a
    bounded number at a time in all and per entry.
    """

    def setUp(self) -> None:
        self.thread = _Thread()
        self.verifier = PasswordVerifier(
            object(), PasswordLimits(maxConcurrent=2, maxPerEntry=1), self.thread)

    def test_cheapOnTheReactor(self) -> None:
        """
        Fast schemes and cleartext are checked at once, without a thread.
        """
        stored = [hashPassword(b"pw", "{SSHA}"), b"other"]
        self.assertTrue(self.successResultOf(self.verifier.verify(stored, b"pw", "a")))
        self.assertTrue(self.successResultOf(self.verifier.verify(stored, b"other", "a")))
        self.assertFalse(self.successResultOf(self.verifier.verify(stored, b"no", "a")))
        self.assertEqual(self.thread.calls, [])

    def test_slowInAThread(self) -> None:
        """
        A slow scheme is verified by the function handed to the thread,
        and the result is that of the verification.
        """
        right = self.verifier.verify([_SLOW], b"pw", "a")
        self.assertNoResult(right)
        self.thread.finish()
        self.assertTrue(self.successResultOf(right))
        wrong = self.verifier.verify([_SLOW], b"nope", "a")
        self.thread.finish()
        self.assertFalse(self.successResultOf(wrong))

    def test_concurrencyBounded(self) -> None:
        """
        No more than C{maxConcurrent} slow verifications run at once; the
        others wait and run in turn, in the order they came.
        """
        results = [self.verifier.verify([_SLOW], b"pw", name) for name in "abcd"]
        self.assertEqual(len(self.thread.calls), 2)
        self.thread.finish()
        self.assertTrue(self.successResultOf(results[0]))
        self.assertEqual(len(self.thread.calls), 2)
        self.thread.finish()
        self.thread.finish()
        self.thread.finish()
        self.assertEqual([self.successResultOf(d) for d in results[1:]], [True] * 3)
        self.assertEqual((self.verifier._slots.tokens, self.verifier._entries), (2, {}))

    def test_perEntryWaits(self) -> None:
        """
        A slow verification for an entry that already has C{maxPerEntry}
        of them running or queued waits for the entry's turn without
        queueing for the pool, so other entries' checks, even later ones,
        go first; nothing is refused.
        """
        first = self.verifier.verify([_SLOW], b"pw", "a")
        second = self.verifier.verify([_SLOW], b"pw", "a")
        other = self.verifier.verify([_SLOW], b"pw", "b")
        later = self.verifier.verify([_SLOW], b"nope", "c")
        self.assertEqual(len(self.thread.calls), 2)
        self.thread.finish(1)
        self.assertTrue(self.successResultOf(other))
        self.assertNoResult(second)
        self.thread.finish(1)
        self.assertFalse(self.successResultOf(later))
        self.assertNoResult(second)
        self.thread.finish()
        self.assertTrue(self.successResultOf(first))
        self.thread.finish()
        self.assertTrue(self.successResultOf(second))
        self.assertEqual((self.thread.calls, self.verifier._entries), ([], {}))

    def test_overLimitNotVerified(self) -> None:
        """
        A value over the limits is not handed to a thread at all: the
        answer is no at once, and a warning names the entry and the
        problem.
        """
        with capturedLogs() as events:
            result = self.verifier.verify([BOMBS["bcrypt cost 16"]], b"pw", "uid=x,dc=example")
        self.assertFalse(self.successResultOf(result))
        self.assertEqual(self.thread.calls, [])
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertIn("uid=x,dc=example", warnings[0]["log_format"].format(**warnings[0]))
        self.assertIn("bcrypt cost 16", warnings[0]["problem"])

    def test_waitingCancelled(self) -> None:
        """
        A verification cancelled while waiting for its turn gives up its
        place, and the ones after it still run.
        """
        running = [self.verifier.verify([_SLOW], b"pw", name) for name in "ab"]
        waiting = self.verifier.verify([_SLOW], b"pw", "c")
        after = self.verifier.verify([_SLOW], b"pw", "d")
        waiting.cancel()
        self.failureResultOf(waiting, defer.CancelledError)
        self.thread.finish()
        self.thread.finish()
        self.thread.finish()
        self.assertTrue(all(self.successResultOf(d) for d in running + [after]))

    def test_hash(self) -> None:
        """
        Hashing with a fast scheme happens at once; with a slow one, in the
        thread, taking its turn with the slow verifications; a password
        the scheme cannot hash fails the Deferred as L{hashPassword} raises.
        """
        fast = self.successResultOf(self.verifier.hash(b"pw", "{SSHA}"))
        self.assertTrue(verifyPassword(fast, b"pw"))
        self.assertEqual(self.thread.calls, [])
        running = [self.verifier.verify([_SLOW], b"pw", name) for name in "ab"]
        slow = self.verifier.hash(b"pw", "{CRYPT}")
        self.assertEqual(len(self.thread.calls), 2)
        self.thread.finish()
        self.thread.finish()
        self.thread.finish()
        self.assertTrue(all(self.successResultOf(d) for d in running))
        self.assertTrue(verifyPassword(self.successResultOf(slow), b"pw"))
        tooLong = self.verifier.hash(b"x" * 73, "{CRYPT}")
        self.thread.finish()
        self.failureResultOf(tooLong, ValueError)

    def test_verifierForReactor(self) -> None:
        """
        One verifier per reactor, so that every caller shares its limits.
        """
        reactor = object.__new__(type("FakeReactor", (), {}))
        self.assertIs(verifierFor(reactor), verifierFor(reactor))
        self.assertIsNot(verifierFor(reactor), verifierFor(object.__new__(type(reactor))))


class PasswordConfigTests(unittest.SynchronousTestCase):
    """
    C{[server.password_limits]} and C{root_password} in the configuration
    file.
    """

    def load(self, server: str = "", database: str = "") -> Any:
        """
        Load a configuration with C{server} added to C{[server]} and
        C{database} to its one database, on a reactor of its own.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-limits-"))
        self.addCleanup(shutil.rmtree, folder)
        self.path = folder / "ldapd.toml"
        self.path.write_text(f'[server]\nlisten = ["tcp:10389"]\n{server}\n'
                             f'[[database]]\nsuffix = "dc=example,dc=com"\n{database}\n')
        self.reactor = Clock()
        return loadConfig(self.path, self.reactor)

    def test_defaults(self) -> None:
        """
        Without the table, the directory's verifier has the default limits.
        """
        config = self.load()
        self.assertIs(config.directory.passwordVerifier, verifierFor(self.reactor))
        self.assertEqual(config.directory.passwordVerifier.limits, PasswordLimits())

    def test_keys(self) -> None:
        """
        Each key sets its limit.
        """
        config = self.load(
            "password_limits = { bcrypt_cost = 10, crypt_rounds = 5000, pbkdf2_rounds = 20000, "
            "argon2_memory = 4096, argon2_time = 2, argon2_parallelism = 1, max_concurrent = 3, "
            "max_per_entry = 1 }")
        self.assertEqual(config.directory.passwordVerifier.limits, PasswordLimits(
            bcryptCost=10, cryptRounds=5000, pbkdf2Rounds=20000, argon2Memory=4096, argon2Time=2,
            argon2Parallelism=1, maxConcurrent=3, maxPerEntry=1))

    def test_errors(self) -> None:
        """
        Unknown keys, values that are not positive integers and a root
        password over the limits stop start-up, naming the key.
        """
        rootDN = 'root_dn = "cn=admin,dc=example,dc=com"\n'
        for server, database, key, problem in [
            ("password_limits = { colour = 1 }", "", "server.password_limits.colour",
             "unknown key"),
            ("password_limits = { bcrypt_cost = 0 }", "", "server.password_limits.bcrypt_cost",
             "must be at least 1"),
            ('password_limits = { argon2_memory = "a lot" }', "",
             "server.password_limits.argon2_memory", "must be an integer"),
            ("", rootDN + f'root_password = "{BOMBS["argon2 256 MiB"].decode()}"',
             "database[0].root_password", "argon2 memory (KiB) 262144 is over the limit"),
        ]:
            with self.assertRaises(ConfigError) as caught:
                self.load(server, database)
            self.assertIn(key, str(caught.exception))
            self.assertIn(problem, str(caught.exception))

    def test_rootPasswordCleartext(self) -> None:
        """
        A cleartext root password is warned about, including one that
        begins with C{{} but names no scheme (no closing brace), which binds
        as cleartext; a hashed one is not. One naming an unknown scheme is
        refused.
        """
        rootDN = 'root_dn = "cn=admin,dc=example,dc=com"\n'
        for password, warned in [("secret", True), ("{secret", True),
                                 ("{SSHA}C2pUNaGLoULyAX7LYIEvYFGdBUlgM9qL9SS4sA==", False)]:
            with capturedLogs() as events:
                self.load(database=rootDN + f'root_password = "{password}"')
            messages = [e["log_format"].format(**e) for e in events
                        if e["log_level"] == LogLevel.warn and "cleartext" in e["log_format"]]
            expected = [(f"database[0].root_password in {self.path} is cleartext; store a hash "
                         "(ldapd-admin hash)")]
            self.assertEqual(messages, expected if warned else [], password)
        with self.assertRaises(ConfigError) as caught:
            self.load(database=rootDN + 'root_password = "{secret}"')
        self.assertIn("database[0].root_password: unknown password scheme {SECRET}",
                      str(caught.exception))


class PasswordVerifierHasherTests(unittest.TestCase):
    """
    L{PasswordVerifier.hash} with a caller's own hasher (the password
    policy's argon2 parameters) runs it as it runs L{hashPassword}.
    """

    def setUp(self) -> None:
        self.thread = _Thread()
        self.verifier = PasswordVerifier(object(), PasswordLimits(maxConcurrent=1), self.thread)
        self.calls: list[tuple[bytes, str]] = []

    def hasher(self, password: bytes, scheme: str) -> bytes:
        self.calls.append((password, scheme))
        return hashPassword(password, scheme)

    def test_fast(self) -> None:
        """
        A fast scheme is hashed at once by the hasher given.
        """
        stored = self.successResultOf(self.verifier.hash(b"pw", "{SSHA}", self.hasher))
        self.assertTrue(verifyPassword(stored, b"pw"))
        self.assertEqual((self.calls, self.thread.calls), ([(b"pw", "{SSHA}")], []))

    def test_slowTakesItsTurn(self) -> None:
        """
        A slow scheme is hashed in the thread, once a place among the slow
        verifications is free.
        """
        running = self.verifier.verify([_SLOW], b"pw", "a")
        hashed = self.verifier.hash(b"pw", "{CRYPT}", self.hasher)
        self.assertEqual((len(self.thread.calls), self.calls), (1, []))
        self.thread.finish()
        self.assertTrue(self.successResultOf(running))
        self.assertEqual(len(self.thread.calls), 1)
        self.thread.finish()
        self.assertTrue(verifyPassword(self.successResultOf(hashed), b"pw"))
        self.assertEqual(self.calls, [(b"pw", "{CRYPT}")])


class _ThreadedClock(Clock):
    """
    A clock with a real thread pool, whose results come back through
    L{callFromThread} into a queue the test runs on its own thread.

    @ivar pool: the thread pool.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pool = ThreadPool(1, 1, "ldapd-test")
        self.pool.start()
        self._fromThreads: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.Queue()

    def getThreadPool(self) -> ThreadPool:
        return self.pool

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        self._fromThreads.put((f, args))

    def runUntil(self, done: Callable[[], bool]) -> None:
        """
        Run the calls from threads until C{done()} is true.
        """
        while not done():
            f, args = self._fromThreads.get(timeout=60)
            f(*args)


class PasswordModifyOffTheReactorTests(unittest.SynchronousTestCase):
    """
    Password Modify hashes the new password with the directory's scheme
    in the reactor's thread pool, never on the reactor's thread.
    """

    def test_argon2InThreadPool(self) -> None:
        """
        The argon2 hash of a new password is made on a thread of the pool;
        the answer is success, and the stored value is that hash.
        """
        reactor = _ThreadedClock()
        self.addCleanup(reactor.pool.stop)
        schema = Schema.standard()
        suffix = DN.parse("dc=example,dc=com")
        directory = Directory(
            [Database(suffix, MemoryBackend(schema.normalizeDN(suffix), schema, reactor),
                      DN.parse("cn=admin,dc=example,dc=com"), b"secret", EXAMPLE_LDIF)],
            schema=schema, passwordHash="{ARGON2}", reactor=reactor,
        )
        self.successResultOf(directory.open())
        hashed: list[tuple[threading.Thread, bytes]] = []

        def recording(password: bytes, scheme: str) -> bytes:
            stored = original(password, scheme)
            hashed.append((threading.current_thread(), stored))
            return stored

        original = passwords.hashPassword
        self.patch(passwords, "hashPassword", recording)
        transport = StringTransport()
        protocol = LDAPServerFactory(directory, reactor).buildProtocol(
            IPv4Address("TCP", "127.0.0.1", 10389))
        protocol.makeConnection(transport)
        alice = b"uid=alice,ou=people,dc=example,dc=com"
        protocol.dataReceived(
            pureldap.LDAPMessage(pureldap.LDAPBindRequest(
                dn=alice, auth=b"alice-secret"), id=1).toWire()
            + pureldap.LDAPMessage(pureldap.LDAPExtendedRequest(
                requestName=PASSWORD_MODIFY,
                requestValue=encodeSequence([octetString(b"new-secret", 0x82)])), id=2).toWire())
        reactor.runUntil(lambda: len(decodeResponses(transport.value())) == 2)
        bound, changed = decodeResponses(transport.value())
        self.assertEqual((bound.value.resultCode, changed.value.resultCode), (0, 0))
        [(thread, stored)] = hashed
        self.assertIsNot(thread, threading.current_thread())
        self.assertTrue(thread.name.startswith("PoolThread-ldapd-test"), thread.name)
        self.assertTrue(stored.startswith(b"{ARGON2}"))
        protocol.dataReceived(pureldap.LDAPMessage(pureldap.LDAPBindRequest(
            dn=alice, auth=b"new-secret"), id=3).toWire())
        reactor.runUntil(lambda: len(decodeResponses(transport.value())) == 3)
        self.assertEqual(decodeResponses(transport.value())[-1].value.resultCode, 0)
