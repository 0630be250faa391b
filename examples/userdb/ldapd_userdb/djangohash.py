"""
Django's C{pbkdf2_sha256} password format, C{pbkdf2_sha256$<iterations>$<salt>$<hash>}
(the hash base64 of the 32-byte PBKDF2-HMAC-SHA256 of the password with the
salt's UTF-8 bytes), and its translation to and from ldapd's
C{{PBKDF2-SHA256}<iterations>$<salt>$<hash>} (salt and hash in "adapted
base64": C{.} for C{+}, no padding), which is the same function with the
same parameters written another way: binds are then verified by ldapd's
own password verifier, in its thread pool, within its cost limits.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import string

__all__ = ["ALGORITHM", "fromLDAP", "makePassword", "toLDAP"]

#: The algorithm name Django writes first.
ALGORITHM = "pbkdf2_sha256"

_LDAP_PREFIX = b"{PBKDF2-SHA256}"
_SALT_ALPHABET = string.ascii_letters + string.digits


def _ab64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=").replace(b"+", b".")


def _unab64(data: bytes) -> bytes:
    data = data.replace(b".", b"+")
    return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)


def makePassword(password: bytes, iterations: int, salt: str | None = None) -> str:
    """
    Hash a password as Django's C{make_password} does with its
    C{PBKDF2PasswordHasher}.

    @param password: the password.
    @param iterations: the PBKDF2 iterations.
    @param salt: the salt (22 random letters and digits by default, as Django's).
    @return: the stored form.
    """
    if salt is None:
        salt = "".join(secrets.choice(_SALT_ALPHABET) for _ in range(22))
    derived = hashlib.pbkdf2_hmac("sha256", password, salt.encode("utf-8"), iterations)
    return f"{ALGORITHM}${iterations}${salt}${base64.b64encode(derived).decode('ascii')}"


def toLDAP(stored: str) -> bytes | None:
    """
    @param stored: a password column's value.
    @return: the same hash as a C{userPassword} value ldapd verifies, or
        C{None} for anything else (Django's unusable C{!...} passwords,
        other hashers): such an account cannot bind.
    """
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != ALGORITHM or not parts[1].isdigit():
        return None
    try:
        derived = base64.b64decode(parts[3], validate=True)
    except binascii.Error:
        return None
    return b"%s%s$%s$%s" % (_LDAP_PREFIX, parts[1].encode("ascii"),
                            _ab64(parts[2].encode("utf-8")), _ab64(derived))


def fromLDAP(value: bytes) -> str | None:
    """
    The inverse of L{toLDAP}.

    @param value: a C{userPassword} value.
    @return: its Django form, or C{None} when it is not a C{{PBKDF2-SHA256}}
        value Django can hold (Django's salt is text without C{$}).
    """
    if not value.upper().startswith(_LDAP_PREFIX):
        return None
    parts = value[len(_LDAP_PREFIX):].split(b"$")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    try:
        salt = _unab64(parts[1]).decode("utf-8")
        derived = _unab64(parts[2])
    except (binascii.Error, UnicodeDecodeError):
        return None
    if "$" in salt or not salt.isprintable() or len(derived) != 32:
        return None
    return f"{ALGORITHM}${int(parts[0])}${salt}${base64.b64encode(derived).decode('ascii')}"
