"""
Extended operations: the table of those ldapd implements, by request OID.

A handler takes the L{ldapd.directory.Directory} and the L{Operation} and
returns (or fires a Deferred with) an L{ExtendedOutcome}. A request with an
OID not in the table gets protocolError, as RFC 4511 §4.12 asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ldaptor.protocols import pureber
from ldaptor.protocols.ldap import ldaperrors

from ldapd import passwords, tls
from ldapd._codec import decodeSequence, encodeSequence, octetString
from ldapd.dn import DN, InvalidDN
from ldapd.entry import Modification
from ldapd.operation import Operation
from ldapd.passwordcheck import CHANGE

if TYPE_CHECKING:
    from ldapd.directory import Directory

__all__ = [
    "CANCEL",
    "ExtendedOutcome",
    "HANDLERS",
    "PASSWORD_MODIFY",
    "SUPPORTED",
    "WHO_AM_I",
    "parseCancel",
    "parsePasswordModify",
]

WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"
PASSWORD_MODIFY = "1.3.6.1.4.1.4203.1.11.1"

#: Cancel (RFC 3909): carried out by the protocol, which holds the
#: connection's operations, not by a handler of the table.
CANCEL = "1.3.6.1.1.8"


@dataclass(frozen=True)
class ExtendedOutcome:
    """
    The successful result of an extended operation.

    @ivar name: the responseName, or C{None}.
    @ivar value: the response value, or C{None}.
    """

    name: bytes | None = None
    value: bytes | None = None


async def whoAmI(directory: Directory, op: Operation) -> ExtendedOutcome:
    """
    "Who am I?" (RFC 4532): the connection's authorization identity.
    """
    if op.request.requestValue is not None:
        raise ldaperrors.LDAPProtocolError("WhoAmI takes no request value")
    return ExtendedOutcome(value=op.identity.authzId.encode("utf-8"))


def parseCancel(value: bytes | None) -> int:
    """
    Decode a Cancel request value (RFC 3909 §2): C{SEQUENCE { cancelID
    MessageID }}.

    @param value: the request value, or C{None}.
    @return: the message id of the operation to cancel.
    @raise ldaperrors.LDAPProtocolError: if it cannot be decoded.
    """
    try:
        parts = decodeSequence(value or b"")
    except ValueError as e:
        raise ldaperrors.LDAPProtocolError(f"cancel: {e}") from None
    if len(parts) != 1 or type(parts[0]) is not pureber.BERInteger:
        raise ldaperrors.LDAPProtocolError("cancel: malformed request value")
    messageId = parts[0].value
    if not 0 <= messageId <= 2**31 - 1:
        raise ldaperrors.LDAPProtocolError("cancel: message id out of range")
    return messageId  # type: ignore[no-any-return]


def parsePasswordModify(value: bytes | None) -> tuple[bytes | None, bytes | None, bytes | None]:
    """
    Decode a Password Modify request value (RFC 3062 §2).

    @param value: the request value, or C{None}.
    @return: its userIdentity, oldPasswd and newPasswd, each C{None} when absent.
    @raise ldaperrors.LDAPProtocolError: if it cannot be decoded.
    """
    if value is None:
        return None, None, None
    try:
        parts = decodeSequence(value, tagged=(0x80, 0x81, 0x82))
    except ValueError as e:
        raise ldaperrors.LDAPProtocolError(f"password modify: {e}") from None
    fields: dict[int, bytes] = {}
    for part in parts:
        tag = part.tag & 0x1F if isinstance(part, pureber.BEROctetString) else -1
        if tag not in (0, 1, 2) or part.tag & 0xC0 != 0x80 or tag in fields:
            raise ldaperrors.LDAPProtocolError("password modify: malformed request value")
        fields[tag] = part.value
    return fields.get(0), fields.get(1), fields.get(2)


async def passwordModify(directory: Directory, op: Operation) -> ExtendedOutcome:
    """
    The Password Modify extended operation (RFC 3062): change a user's
    password, verifying the old one when given, generating a new one when
    none is given. The change is an ordinary Modify of C{userPassword} by the
    requester, so access control applies to it; the old password is checked
    through L{Directory.verifyPassword<ldapd.directory.Directory.verifyPassword>},
    so that a client that may not change the password gets the same answer
    whether its guess is right or wrong, and a wrong guess counts as a
    failure under the password policy.
    """
    if op.identity.anonymous and not op.internal:
        raise ldaperrors.LDAPStrongAuthRequired("only authenticated users may change passwords")
    userIdentity, oldPassword, newPassword = parsePasswordModify(op.request.requestValue)
    if userIdentity is not None:
        text = userIdentity.decode("utf-8", "replace")
        if text.startswith("dn:"):
            text = text[3:]
        try:
            ndn = directory.schema.normalizeDN(DN.parse(text))
        except InvalidDN:
            # slapd answers invalidAttributeSyntax here, not invalidDNSyntax.
            raise ldaperrors.LDAPInvalidAttributeSyntax("Invalid DN") from None
    elif op.identity.ndn is not None:
        ndn = op.identity.ndn
    else:
        raise ldaperrors.LDAPStrongAuthRequired("only authenticated users may change passwords")
    if oldPassword is not None:
        # Through the directory's one password check: access control first
        # (one answer, right or wrong, for a client that may not change this
        # password, and for an account that does not exist, as slapd
        # gives), then the password policy (locks, failures counted).
        try:
            await directory.verifyPassword(op, ndn, oldPassword, CHANGE)
        except ldaperrors.LDAPInvalidCredentials:
            raise ldaperrors.LDAPUnwillingToPerform("unwilling to verify old password") from None
    entry = await directory.get(op, ndn)
    generated = None
    if newPassword is None:
        generated = newPassword = passwords.generatePassword()
    try:
        stored = await directory.passwordVerifier.hash(newPassword, directory.passwordHash)
    except ValueError as e:
        raise ldaperrors.LDAPConstraintViolation(f"password modify: {e}") from None
    await directory.modify(op, entry.ndn, [Modification("replace", "userPassword", (stored,))])
    if generated is None:
        return ExtendedOutcome()
    return ExtendedOutcome(value=encodeSequence([octetString(generated, 0x80)]))


#: The extended operations ldapd implements, by request OID.
HANDLERS: dict[str, Callable[[Any, Operation], Awaitable[ExtendedOutcome]]] = {
    WHO_AM_I: whoAmI,
    PASSWORD_MODIFY: passwordModify,
    tls.START_TLS: tls.startTLS,
}

#: The extended operations the root DSE advertises: those of the table and
#: Cancel.
SUPPORTED = (*HANDLERS, CANCEL)
