"""
Password storage schemes for C{userPassword} values.

Stored values use the same C{{SCHEME}payload} forms as OpenLDAP's slapd and
its contrib modules (C{pw-sha2}, C{pw-pbkdf2}, C{pw-argon2}), so a directory
can be moved between slapd and ldapd without resetting passwords:

    - C{{SHA}}, C{{SHA256}}, C{{SHA384}}, C{{SHA512}}, C{{MD5}}: base64 of
      the unsalted digest (verification only).
    - C{{SSHA}}, C{{SSHA256}}, C{{SSHA384}}, C{{SSHA512}}, C{{SMD5}}: base64
      of C{digest(password + salt) + salt}.
    - C{{PBKDF2}}, C{{PBKDF2-SHA1}}, C{{PBKDF2-SHA256}}, C{{PBKDF2-SHA512}}:
      C{rounds$salt$hash} with salt and hash in "adapted base64" (C{.}
      instead of C{+}, no padding).
    - C{{ARGON2}}: a PHC string such as C{$argon2id$v=19$m=65536,t=3,p=4$...}.
    - C{{CRYPT}}: a crypt(3) string; bcrypt (C{$2a$}, C{$2b$}, C{$2y$}) is
      always supported, other methods only where the C{crypt} module exists.

A value without a C{{...}} prefix is a cleartext password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import warnings
from functools import partial
from types import ModuleType
from typing import Callable

import bcrypt
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError

__all__ = [
    "SCHEMES",
    "UnknownScheme",
    "generatePassword",
    "hashPassword",
    "isExpensive",
    "verifyPassword",
]

_cryptModule: ModuleType | None
try:
    # The module is deprecated (PEP 594) and gone in Python 3.13; it is only
    # needed to verify legacy non-bcrypt {CRYPT} values.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt as _cryptModule
except ImportError:
    _cryptModule = None


class UnknownScheme(ValueError):
    """
    The named password storage scheme is not one L{hashPassword} can produce.
    """


_SALT_LENGTH = 8
_PBKDF2_SALT_LENGTH = 16
# PKCS5_PBKDF2_HMAC takes a C int, and hashlib refuses anything larger.
_PBKDF2_MAX_ROUNDS = 2**31 - 1
_BCRYPT_ROUNDS = 12
# bcrypt only ever uses the first 72 bytes of a password.
_BCRYPT_MAX_LENGTH = 72
_BCRYPT_PREFIXES = (b"$2a$", b"$2b$", b"$2y$")

# Spelled out rather than taken from argon2-cffi's defaults so that stored
# values do not change silently when the library changes its defaults.
_argon2Hasher = PasswordHasher(
    time_cost=3,
    memory_cost=65536,
    parallelism=4,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)

_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "!#%+-.=@_"


def _ab64Encode(data: bytes) -> bytes:
    """
    Encode in the "adapted base64" used by OpenLDAP's pw-pbkdf2 and passlib.

    @param data: The bytes to encode.
    @return: Standard base64 with C{+} replaced by C{.} and no padding.
    """
    return base64.b64encode(data).rstrip(b"=").replace(b"+", b".")


def _ab64Decode(data: bytes) -> bytes:
    """
    Decode "adapted base64".

    @param data: Text produced by L{_ab64Encode}.
    @return: The decoded bytes.
    @raise ValueError: If C{data} is not valid adapted base64.
    """
    standard = data.replace(b".", b"+")
    return base64.b64decode(standard + b"=" * (-len(standard) % 4), validate=True)


def _hashSalted(hashName: str, password: bytes) -> bytes:
    """
    Produce the payload of a salted digest scheme such as C{{SSHA}}.

    @param hashName: The L{hashlib} algorithm name.
    @param password: The password to hash.
    @return: base64 of C{digest(password + salt) + salt}.
    """
    salt = secrets.token_bytes(_SALT_LENGTH)
    digest = hashlib.new(hashName, password + salt).digest()
    return base64.b64encode(digest + salt)


def _hashPBKDF2(hashName: str, rounds: int, password: bytes) -> bytes:
    """
    Produce the payload of a C{{PBKDF2-*}} scheme.

    @param hashName: The L{hashlib} algorithm name used for HMAC.
    @param rounds: The iteration count.
    @param password: The password to hash.
    @return: C{rounds$salt$hash} with salt and hash in adapted base64.
    """
    salt = secrets.token_bytes(_PBKDF2_SALT_LENGTH)
    derived = hashlib.pbkdf2_hmac(hashName, password, salt, rounds)
    return b"%d$%s$%s" % (rounds, _ab64Encode(salt), _ab64Encode(derived))


def _hashArgon2(password: bytes) -> bytes:
    """
    Produce the payload of the C{{ARGON2}} scheme.

    @param password: The password to hash.
    @return: An argon2id PHC string.
    """
    return _argon2Hasher.hash(password).encode("ascii")


def _hashBcrypt(password: bytes) -> bytes:
    """
    Produce the payload of the C{{CRYPT}} scheme using bcrypt.

    @param password: The password to hash.
    @return: A C{$2b$} bcrypt string.
    @raise ValueError: If C{password} is longer than bcrypt can use; hashing
        only a prefix of it would silently weaken the stored value.
    """
    if len(password) > _BCRYPT_MAX_LENGTH:
        raise ValueError(
            f"{{CRYPT}} (bcrypt) cannot hash passwords longer than "
            f"{_BCRYPT_MAX_LENGTH} bytes"
        )
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=_BCRYPT_ROUNDS, prefix=b"2b"))


def _verifyDigest(hashName: str, payload: bytes, password: bytes) -> bool:
    """
    Verify an unsalted digest scheme such as C{{SHA}}.

    @param hashName: The L{hashlib} algorithm name.
    @param payload: The stored value after the scheme prefix.
    @param password: The candidate password.
    @return: Whether C{password} matches.
    @raise ValueError: If C{payload} is malformed.
    """
    expected = base64.b64decode(payload, validate=True)
    actual = hashlib.new(hashName, password).digest()
    if len(expected) != len(actual):
        raise ValueError("stored digest has the wrong length")
    return hmac.compare_digest(actual, expected)


def _verifySalted(hashName: str, payload: bytes, password: bytes) -> bool:
    """
    Verify a salted digest scheme such as C{{SSHA}}, with a salt of any
    length.

    @param hashName: The L{hashlib} algorithm name.
    @param payload: The stored value after the scheme prefix.
    @param password: The candidate password.
    @return: Whether C{password} matches.
    @raise ValueError: If C{payload} is malformed.
    """
    decoded = base64.b64decode(payload, validate=True)
    hasher = hashlib.new(hashName)
    if len(decoded) <= hasher.digest_size:
        raise ValueError("stored value too short to hold digest and salt")
    expected, salt = decoded[: hasher.digest_size], decoded[hasher.digest_size :]
    hasher.update(password + salt)
    return hmac.compare_digest(hasher.digest(), expected)


def _verifyPBKDF2(hashName: str, payload: bytes, password: bytes) -> bool:
    """
    Verify a C{{PBKDF2-*}} scheme.

    @param hashName: The L{hashlib} algorithm name used for HMAC.
    @param payload: The stored value after the scheme prefix.
    @param password: The candidate password.
    @return: Whether C{password} matches.
    @raise ValueError: If C{payload} is malformed.
    """
    rawRounds, rawSalt, rawHash = payload.split(b"$")
    if not rawRounds.isdigit():
        raise ValueError("rounds is not a decimal number")
    rounds = int(rawRounds)
    if not 1 <= rounds <= _PBKDF2_MAX_ROUNDS:
        raise ValueError("rounds out of range")
    salt = _ab64Decode(rawSalt)
    expected = _ab64Decode(rawHash)
    if not salt or len(expected) != hashlib.new(hashName).digest_size:
        raise ValueError("salt or hash has the wrong length")
    actual = hashlib.pbkdf2_hmac(hashName, password, salt, rounds)
    return hmac.compare_digest(actual, expected)


def _verifyArgon2(payload: bytes, password: bytes) -> bool:
    """
    Verify the C{{ARGON2}} scheme; argon2i, argon2d and argon2id are all
    accepted.

    @param payload: The stored PHC string.
    @param password: The candidate password.
    @return: Whether C{password} matches.
    @raise ValueError: If C{payload} is not an argon2 PHC string.
    """
    try:
        return _argon2Hasher.verify(payload, password)
    except VerificationError:
        return False


def _verifyCrypt(payload: bytes, password: bytes) -> bool:
    """
    Verify the C{{CRYPT}} scheme.

    @param payload: The stored crypt(3) string.
    @param password: The candidate password.
    @return: Whether C{password} matches; C{False} for a non-bcrypt method
        when the C{crypt} module is unavailable.
    @raise ValueError: If C{payload} is malformed or C{password} cannot be
        passed to crypt(3).
    """
    if payload.startswith(_BCRYPT_PREFIXES):
        # crypt(3) and older bcrypt releases ignore everything past 72 bytes,
        # and values they stored must keep verifying.
        return bcrypt.checkpw(password[:_BCRYPT_MAX_LENGTH], payload)
    if _cryptModule is None:
        return False
    setting = payload.decode("ascii")
    if len(setting) < 2:
        raise ValueError("crypt setting too short")
    try:
        result = _cryptModule.crypt(password.decode("utf-8"), setting)
    except OSError:
        return False
    if result is None:
        return False
    return hmac.compare_digest(result.encode("ascii"), payload)


_HASHERS: dict[str, Callable[[bytes], bytes]] = {
    "{SSHA}": partial(_hashSalted, "sha1"),
    "{SSHA256}": partial(_hashSalted, "sha256"),
    "{SSHA512}": partial(_hashSalted, "sha512"),
    "{PBKDF2-SHA256}": partial(_hashPBKDF2, "sha256", 600_000),
    "{PBKDF2-SHA512}": partial(_hashPBKDF2, "sha512", 210_000),
    "{ARGON2}": _hashArgon2,
    "{CRYPT}": _hashBcrypt,
}

_VERIFIERS: dict[str, Callable[[bytes, bytes], bool]] = {
    "{SHA}": partial(_verifyDigest, "sha1"),
    "{SHA256}": partial(_verifyDigest, "sha256"),
    "{SHA384}": partial(_verifyDigest, "sha384"),
    "{SHA512}": partial(_verifyDigest, "sha512"),
    "{MD5}": partial(_verifyDigest, "md5"),
    "{SSHA}": partial(_verifySalted, "sha1"),
    "{SSHA256}": partial(_verifySalted, "sha256"),
    "{SSHA384}": partial(_verifySalted, "sha384"),
    "{SSHA512}": partial(_verifySalted, "sha512"),
    "{SMD5}": partial(_verifySalted, "md5"),
    "{PBKDF2}": partial(_verifyPBKDF2, "sha1"),
    "{PBKDF2-SHA1}": partial(_verifyPBKDF2, "sha1"),
    "{PBKDF2-SHA256}": partial(_verifyPBKDF2, "sha256"),
    "{PBKDF2-SHA512}": partial(_verifyPBKDF2, "sha512"),
    "{ARGON2}": _verifyArgon2,
    "{CRYPT}": _verifyCrypt,
}

_EXPENSIVE = frozenset(
    {
        "{PBKDF2}",
        "{PBKDF2-SHA1}",
        "{PBKDF2-SHA256}",
        "{PBKDF2-SHA512}",
        "{ARGON2}",
        "{CRYPT}",
    }
)

SCHEMES: tuple[str, ...] = tuple(_HASHERS)


def _splitScheme(stored: bytes) -> tuple[str | None, bytes]:
    """
    Separate a stored value into its scheme and payload.

    @param stored: A C{userPassword} value.
    @return: The upper-cased scheme including braces and the rest of the
        value, or C{None} and C{stored} itself for a cleartext value.
    """
    end = stored.find(b"}")
    if not stored.startswith(b"{") or end < 0:
        return None, stored
    # bytes.upper() folds ASCII only, unlike str.upper() which turns "ß" into
    # "SS", so no non-ASCII name can alias a known scheme.
    return stored[: end + 1].upper().decode("latin-1"), stored[end + 1 :]


def hashPassword(password: bytes, scheme: str = "{ARGON2}") -> bytes:
    """
    Hash a password for storage in C{userPassword}.

    @param password: The password to hash.
    @param scheme: One of L{SCHEMES}, compared case-insensitively.
    @return: The stored form, beginning with the upper-case C{{SCHEME}}
        prefix.
    @raise UnknownScheme: If C{scheme} is not one of L{SCHEMES}.
    @raise ValueError: If C{scheme} is C{{CRYPT}} and C{password} is longer
        than the 72 bytes bcrypt uses.
    """
    name = scheme.upper()
    if not scheme.isascii() or name not in _HASHERS:
        raise UnknownScheme(f"unsupported password scheme {scheme!r}")
    return name.encode("ascii") + _HASHERS[name](password)


def verifyPassword(stored: bytes, password: bytes) -> bool:
    """
    Check a password against a stored C{userPassword} value.

    Malformed stored values and unknown schemes never match, so that a
    damaged entry cannot be bound to with its own stored text.

    @param stored: A C{userPassword} value, with or without a scheme prefix.
    @param password: The candidate password.
    @return: C{True} if C{password} matches; C{False} otherwise, and always
        for an empty C{password}.
    """
    if not password:
        return False
    scheme, payload = _splitScheme(stored)
    if scheme is None:
        return hmac.compare_digest(stored, password)
    verifier = _VERIFIERS.get(scheme)
    if verifier is None:
        return False
    try:
        return verifier(payload, password)
    except ValueError:
        return False


def isExpensive(stored: bytes) -> bool:
    """
    Say whether verifying against a stored value is deliberately slow.

    Callers use this to verify such values in a thread pool rather than on
    the reactor thread.

    @param stored: A C{userPassword} value.
    @return: C{True} for the C{{ARGON2}}, C{{CRYPT}} and C{{PBKDF2*}}
        schemes.
    """
    scheme, _ = _splitScheme(stored)
    return scheme in _EXPENSIVE


def generatePassword(length: int = 16) -> bytes:
    """
    Generate a random password, as for an RFC 3062 Password Modify request
    that asks the server to choose the new password.

    @param length: The number of characters.
    @return: C{length} printable ASCII characters drawn from letters, digits
        and a few symbols that are easy to read and type.
    @raise ValueError: If C{length} is less than 1.
    """
    if length < 1:
        raise ValueError(f"password length must be positive, not {length}")
    return "".join(
        secrets.choice(_PASSWORD_ALPHABET) for _ in range(length)
    ).encode("ascii")
