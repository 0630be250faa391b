"""
The extended operations ldapd's core carries out: "Who am I?" (RFC 4532),
Password Modify (RFC 3062), StartTLS (L{ldapd.tls}) and Cancel (RFC 3909,
carried out by the protocol, which holds the connection's operations), as
registrations (L{ldapd.extensions.ExtendedOperation}). Plugins and
third-party packages register theirs the same way.

An extended request nobody registered gets protocolError, as RFC 4511
§4.12 asks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ldaptor.protocols.ldap import ldaperrors

from ldapd import passwords, tls, transactions
from ldapd._codec import encodeSequence, octetString
from ldapd.dn import DN, InvalidDN
from ldapd.entry import Modification
from ldapd.extensions import ExtendedOperation, ExtendedOutcome
from ldapd.operation import Operation
from ldapd.passwordcheck import CHANGE
from ldapd.requests import (
    CANCEL,
    PASSWORD_MODIFY,
    START_TLS,
    WHO_AM_I,
    PasswordModifyRequest,
    WhoAmIRequest,
)

if TYPE_CHECKING:
    from ldapd.directory import Directory

__all__ = ["BUILT_IN", "passwordModify", "whoAmI"]


async def whoAmI(directory: Directory, op: Operation) -> ExtendedOutcome:
    """
    "Who am I?" (RFC 4532): the connection's authorization identity.
    """
    assert isinstance(op.request, WhoAmIRequest)
    if op.request.value is not None:
        raise ldaperrors.LDAPProtocolError("WhoAmI takes no request value")
    return ExtendedOutcome(value=op.identity.authzId.encode("utf-8"))


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
    request = op.request
    assert isinstance(request, PasswordModifyRequest)
    userIdentity, oldPassword, newPassword = (
        request.userIdentity, request.oldPassword, request.newPassword)
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
        stored = await directory.storedPassword(op, entry.ndn, newPassword)
    except ValueError as e:
        raise ldaperrors.LDAPConstraintViolation(f"password modify: {e}") from None
    await directory.modify(op, entry.ndn, [Modification("replace", "userPassword", (stored,))])
    if generated is None:
        return ExtendedOutcome()
    return ExtendedOutcome(value=encodeSequence([octetString(generated, 0x80)]))


#: The extended operations of ldapd's core, which every directory registers.
BUILT_IN = (
    ExtendedOperation(WHO_AM_I, whoAmI),
    ExtendedOperation(PASSWORD_MODIFY, passwordModify),
    ExtendedOperation(START_TLS, tls.startTLS),
    ExtendedOperation(CANCEL, None),
    transactions.START_OPERATION,
    transactions.END_OPERATION,
)
