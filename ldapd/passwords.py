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

The deliberately slow schemes carry their own cost, which whoever writes
the value chooses; L{PasswordLimits} bounds it (L{checkCost}), so that a
stored value cannot make a bind take minutes or gigabytes, and
L{PasswordVerifier} runs their verifications off the reactor, a bounded
number at a time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import warnings
import weakref
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

import bcrypt
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError
from twisted.internet import defer, threads
from twisted.logger import Logger

__all__ = [
    "SCHEMES",
    "ExcessiveCost",
    "PasswordLimits",
    "PasswordVerifier",
    "UnknownScheme",
    "checkCost",
    "generatePassword",
    "hashPassword",
    "isExpensive",
    "isHashed",
    "schemeOf",
    "verifierFor",
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


class ExcessiveCost(ValueError):
    """
    A stored value asks more work of each verification than the
    L{PasswordLimits} allow, or does not say how much it asks.
    """


@dataclass(frozen=True)
class PasswordLimits:
    """
    The most work one password verification may take, per scheme, and how
    many slow verifications may run at once.

    The defaults accept what ldapd (argon2id m=65536 t=3 p=4, bcrypt 12,
    PBKDF2-SHA256 600,000 rounds) and slapd's modules (pw-pbkdf2's 10,000
    rounds, pw-argon2's defaults, crypt(3)'s sha-crypt default of 5,000
    rounds) produce by default, with room to raise them, and keep the
    memory of L{maxConcurrent} argon2 verifications to half a gigabyte.

    @ivar bcryptCost: the largest bcrypt cost (the log2 of its rounds) of
        a C{{CRYPT}$2b$} value.
    @ivar cryptRounds: the most rounds of a C{{CRYPT}} sha256-crypt or
        sha512-crypt (C{$5$}, C{$6$}) value.
    @ivar pbkdf2Rounds: the most rounds of a C{{PBKDF2*}} value.
    @ivar argon2Memory: the most memory (KiB, the C{m} parameter) of an
        C{{ARGON2}} value.
    @ivar argon2Time: the most passes (C{t}) of an C{{ARGON2}} value.
    @ivar argon2Parallelism: the most lanes (C{p}) of an C{{ARGON2}} value.
    @ivar maxConcurrent: how many slow verifications run at once in the
        whole server; others wait their turn.
    @ivar maxPerEntry: how many of them may be for one entry, running or
        waiting for a place; others wait for the entry's turn first.
    """

    bcryptCost: int = 13
    cryptRounds: int = 1_000_000
    pbkdf2Rounds: int = 2_000_000
    argon2Memory: int = 131_072
    argon2Time: int = 10
    argon2Parallelism: int = 8
    maxConcurrent: int = 4
    maxPerEntry: int = 2


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

    @param hashName: The C{hashlib} algorithm name.
    @param password: The password to hash.
    @return: base64 of C{digest(password + salt) + salt}.
    """
    salt = secrets.token_bytes(_SALT_LENGTH)
    digest = hashlib.new(hashName, password + salt).digest()
    return base64.b64encode(digest + salt)


def _hashPBKDF2(hashName: str, rounds: int, password: bytes) -> bytes:
    """
    Produce the payload of a C{{PBKDF2-*}} scheme.

    @param hashName: The C{hashlib} algorithm name used for HMAC.
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

    @param hashName: The C{hashlib} algorithm name.
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

    @param hashName: The C{hashlib} algorithm name.
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

    @param hashName: The C{hashlib} algorithm name used for HMAC.
    @param payload: The stored value after the scheme prefix.
    @param password: The candidate password.
    @return: Whether C{password} matches.
    @raise ValueError: If C{payload} is malformed.
    """
    rounds, salt, expected = _parsePBKDF2(hashName, payload)
    actual = hashlib.pbkdf2_hmac(hashName, password, salt, rounds)
    return hmac.compare_digest(actual, expected)


def _parsePBKDF2(hashName: str, payload: bytes) -> tuple[int, bytes, bytes]:
    """
    Read a C{{PBKDF2-*}} payload.

    @param hashName: The C{hashlib} algorithm name used for HMAC.
    @param payload: The stored value after the scheme prefix.
    @return: The rounds, the salt and the expected hash.
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
    return rounds, salt, expected


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


_ARGON2_PHC = re.compile(
    rb"\$argon2(?:id|i|d)\$(?:v=[0-9]{1,3}\$)?"
    rb"m=([0-9]{1,10}),t=([0-9]{1,10}),p=([0-9]{1,10})\$[^$]*\$[^$]*"
)
_BCRYPT_SETTING = re.compile(rb"\$2[abxy]\$([0-9]{2})\$")
_SHA_CRYPT = re.compile(rb"\$[56]\$(?:rounds=([0-9]{1,10})\$)?")
_SHA_CRYPT_DEFAULT_ROUNDS = 5000
_DES_CRYPT = re.compile(rb"[./0-9A-Za-z]{13}")


def _over(what: str, value: int, limit: int, key: str) -> None:
    """
    @raise ExcessiveCost: if C{value} is over C{limit}, naming the
        parameter and the setting (C{key}) that bounds it.
    """
    if value > limit:
        raise ExcessiveCost(f"{what} {value} is over the limit of {limit} ({key})")


def _costPBKDF2(hashName: str, payload: bytes, limits: PasswordLimits) -> None:
    """
    Bound the rounds of a C{{PBKDF2-*}} value.

    @raise ExcessiveCost: if they are over the limit.
    @raise ValueError: if C{payload} is malformed (and so never hashed).
    """
    rounds, _, _ = _parsePBKDF2(hashName, payload)
    _over("PBKDF2 rounds", rounds, limits.pbkdf2Rounds, "pbkdf2_rounds")


def _costArgon2(payload: bytes, limits: PasswordLimits) -> None:
    """
    Bound the memory, passes and lanes of an C{{ARGON2}} value.

    @raise ExcessiveCost: if one is over its limit, or the parameters
        cannot be read (argon2's own parser might still hash with them).
    """
    match = _ARGON2_PHC.fullmatch(payload)
    if match is None:
        raise ExcessiveCost("argon2 parameters not in the form $argon2id$v=19$m=...,t=...,p=...$")
    memory, passes, lanes = (int(g) for g in match.groups())
    _over("argon2 memory (KiB)", memory, limits.argon2Memory, "argon2_memory")
    _over("argon2 passes", passes, limits.argon2Time, "argon2_time")
    _over("argon2 lanes", lanes, limits.argon2Parallelism, "argon2_parallelism")


def _costCrypt(payload: bytes, limits: PasswordLimits) -> None:
    """
    Bound the cost of a C{{CRYPT}} value: bcrypt's cost, sha-crypt's
    rounds; MD5-crypt and DES cost little and always the same. Other
    methods (yescrypt, scrypt, BSDi DES, ...) have costs ldapd does not
    read, and are refused.

    @raise ExcessiveCost: if the cost is over its limit or unknown.
    """
    bcryptMatch = _BCRYPT_SETTING.match(payload)
    if bcryptMatch is not None:
        _over("bcrypt cost", int(bcryptMatch.group(1)), limits.bcryptCost, "bcrypt_cost")
        return
    shaMatch = _SHA_CRYPT.match(payload)
    if shaMatch is not None and (shaMatch.group(1) or not payload[3:].startswith(b"rounds=")):
        rounds = int(shaMatch.group(1) or _SHA_CRYPT_DEFAULT_ROUNDS)
        _over("sha-crypt rounds", rounds, limits.cryptRounds, "crypt_rounds")
        return
    if payload.startswith(b"$1$") or _DES_CRYPT.fullmatch(payload):
        return
    method = payload.split(b"$")[1] if payload.startswith(b"$") else payload[:1]
    raise ExcessiveCost(
        f"crypt method {method.decode('ascii', 'replace')!r} has a cost ldapd cannot bound "
        "(use bcrypt, sha256-crypt or sha512-crypt)"
    )


_COSTS: dict[str, Callable[[bytes, PasswordLimits], None]] = {
    "{PBKDF2}": partial(_costPBKDF2, "sha1"),
    "{PBKDF2-SHA1}": partial(_costPBKDF2, "sha1"),
    "{PBKDF2-SHA256}": partial(_costPBKDF2, "sha256"),
    "{PBKDF2-SHA512}": partial(_costPBKDF2, "sha512"),
    "{ARGON2}": _costArgon2,
    "{CRYPT}": _costCrypt,
}

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

_EXPENSIVE = frozenset(_COSTS)

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


def schemeOf(stored: bytes) -> str | None:
    """
    Say how a stored value is to be checked.

    @param stored: A C{userPassword} or C{root_password} value.
    @return: Its upper-cased C{{SCHEME}} prefix, or C{None} for a
        cleartext value (one without a C{{...}} prefix).
    @raise UnknownScheme: If the prefix names no scheme ldapd verifies:
        such a value never matches any password, and cannot be taken for
        cleartext either.
    """
    scheme, _ = _splitScheme(stored)
    if scheme is not None and scheme not in _VERIFIERS:
        raise UnknownScheme(
            f"unknown password scheme {scheme} (known: {', '.join(_VERIFIERS)})"
        )
    return scheme


def isHashed(value: bytes) -> bool:
    """
    Say whether a value written to C{userPassword} is already in a storage
    scheme (and is to be stored as given) rather than cleartext: whether it
    begins with the C{{SCHEME}} prefix of a scheme ldapd verifies (slapd's
    C{password-hash} and ppolicy ask the same of the schemes they know).

    @param value: a C{userPassword} value.
    @return: C{True} for a value in a known scheme.
    """
    scheme, _ = _splitScheme(value)
    return scheme in _VERIFIERS


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


def verifyPassword(
    stored: bytes, password: bytes, limits: PasswordLimits = PasswordLimits()
) -> bool:
    """
    Check a password against a stored C{userPassword} value.

    Malformed stored values and unknown schemes never match, so that a
    damaged entry cannot be bound to with its own stored text; nor do
    values whose cost is over C{limits} (L{checkCost}), which are not
    hashed at all.

    @param stored: A C{userPassword} value, with or without a scheme prefix.
    @param password: The candidate password.
    @param limits: The most work the verification may take.
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
        cost = _COSTS.get(scheme)
        if cost is not None:
            cost(payload, limits)
        return verifier(payload, password)
    except ValueError:
        return False


def checkCost(stored: bytes, limits: PasswordLimits = PasswordLimits()) -> None:
    """
    Check that verifying a password against a stored value takes no more
    work than C{limits} allow: what a write of C{userPassword} must pass,
    and what a bind checks before hashing anything.

    Cleartext values, the fast schemes and malformed values (which never
    match and are never hashed) pass.

    @param stored: A C{userPassword} value.
    @param limits: The most work allowed.
    @raise ExcessiveCost: If the value asks for more, or its scheme's
        parameters cannot be read, with a message saying which parameter
        and which limit.
    """
    scheme, payload = _splitScheme(stored)
    cost = _COSTS.get(scheme) if scheme is not None else None
    if cost is None:
        return
    try:
        cost(payload, limits)
    except ExcessiveCost as e:
        raise ExcessiveCost(f"{scheme} {e}") from None
    except ValueError:
        return


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


class PasswordVerifier:
    """
    Checks passwords against an entry's stored values the way every bind
    should: the fast schemes at once, on the reactor; the deliberately slow
    ones in the reactor's thread pool, never more than
    L{PasswordLimits.maxConcurrent} at a time in all, nor more than
    L{PasswordLimits.maxPerEntry} of those for one entry; and none whose
    cost is over the limits, which are logged and never hashed.

    A check beyond either limit waits its turn (first come, first served)
    rather than being refused: clients that bind many connections at once
    as one account (SSSD, web applications' pools) are not answered busy,
    and since a check waits for its entry's turn before it queues for the
    thread pool, clients hammering one account hold at most
    C{maxPerEntry} places and delay only that account's binds. Waiting is
    bounded by the connections: each has at most one bind in progress.

    @ivar limits: the L{PasswordLimits} in force; set it before checks are
        made (a L{ldapd.directory.Directory} does when it is built).
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        limits: PasswordLimits = PasswordLimits(),
        runInThread: Callable[..., defer.Deferred[Any]] | None = None,
    ) -> None:
        """
        @param reactor: the reactor, whose thread pool runs the slow
            verifications.
        @param limits: the limits.
        @param runInThread: calls a function off the reactor and returns a
            Deferred of its result; the reactor's thread pool by default
            (tests pass their own).
        """
        if runInThread is None:
            def runInThread(f: Callable[[], Any]) -> defer.Deferred[Any]:
                return threads.deferToThreadPool(reactor, reactor.getThreadPool(), f)
        self._runInThread = runInThread
        self._entries: dict[Hashable, defer.DeferredSemaphore] = {}
        self.limits = limits

    @property
    def limits(self) -> PasswordLimits:
        return self._limits

    @limits.setter
    def limits(self, limits: PasswordLimits) -> None:
        self._limits = limits
        self._slots = defer.DeferredSemaphore(limits.maxConcurrent)

    def verify(
        self, stored: Iterable[bytes], password: bytes, key: Hashable
    ) -> defer.Deferred[bool]:
        """
        Check a password against stored values.

        @param stored: the values (an entry's C{userPassword}, a root
            DN's configured password).
        @param password: the password given.
        @param key: whose the values are, for the per-entry limit and
            the log: a normalised DN, or, from a caller that does not know
            it, the stored value itself (which is then not logged).
        @return: a Deferred firing with whether one of C{stored} matches.
        """
        limits = self.limits
        cheap, costly = [], []
        for value in stored:
            if not isExpensive(value):
                cheap.append(value)
                continue
            try:
                checkCost(value, limits)
            except ExcessiveCost as e:
                self._log.warn(
                    "stored password{of} not verified: {problem}; "
                    "replace it, or raise [server.password_limits]",
                    of="" if isinstance(key, bytes) else f" of {key}", problem=str(e),
                )
                continue
            costly.append(value)
        if any(verifyPassword(v, password, limits) for v in cheap):
            return defer.succeed(True)
        if not costly:
            return defer.succeed(False)
        return defer.Deferred.fromCoroutine(self._verifySlowly(costly, password, key))

    def hash(
        self, password: bytes, scheme: str,
        hasher: Callable[[bytes, str], bytes] | None = None,
        slow: bool | None = None,
    ) -> defer.Deferred[bytes]:
        """
        Hash a password for storage: a slow scheme in the thread pool,
        taking its turn among the slow verifications, so that clients
        changing passwords neither stall the reactor nor jump the queue; a
        fast one at once. Every hash the server makes goes through here
        (Password Modify, the password policy's hashing of cleartext).

        @param password: the password.
        @param scheme: one of L{SCHEMES}.
        @param hasher: makes the stored form of C{password} in C{scheme}
            (L{hashPassword}, unless the caller has its own parameters).
        @param slow: whether C{hasher} is deliberately slow, for a
            C{scheme} that is not one of ldapd's (a backend's own format);
            by default, whether C{scheme} is one of ldapd's slow schemes.
        @return: a Deferred firing with the stored form, or failing as
            C{hasher} raises.
        """
        work = partial(hasher or hashPassword, password, scheme)
        if slow is None:
            slow = isExpensive(scheme.encode("ascii", "replace"))
        if not slow:
            return defer.maybeDeferred(work)
        return defer.Deferred.fromCoroutine(self._inThread(work))

    async def _verifySlowly(self, costly: list[bytes], password: bytes, key: Hashable) -> bool:
        limits = self.limits
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = defer.DeferredSemaphore(limits.maxPerEntry)
        try:
            await entry.acquire()
            try:
                return await self._inThread(
                    lambda: any(verifyPassword(v, password, limits) for v in costly)
                )
            finally:
                entry.release()
        finally:
            if entry.tokens == entry.limit and not entry.waiting:
                self._entries.pop(key, None)

    async def _inThread(self, work: Callable[[], Any]) -> Any:
        """
        Run slow work in the thread pool once one of the
        L{PasswordLimits.maxConcurrent} places is free.
        """
        slots = self._slots
        await slots.acquire()
        try:
            return await self._runInThread(work)
        finally:
            slots.release()


_verifiers: weakref.WeakKeyDictionary[Any, PasswordVerifier] = weakref.WeakKeyDictionary()


def verifierFor(reactor: Any) -> PasswordVerifier:
    """
    The password verifier of a reactor: the one every password check that
    may use the reactor's thread pool goes through (backends, root DNs,
    plugins), so that its limits hold for the pool as a whole.

    @param reactor: the reactor.
    @return: its verifier, made with the default limits the first time;
        a L{ldapd.directory.Directory} sets the limits it is configured with.
    """
    verifier = _verifiers.get(reactor)
    if verifier is None:
        verifier = _verifiers[reactor] = PasswordVerifier(reactor)
    return verifier


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
