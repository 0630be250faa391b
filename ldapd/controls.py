"""
Request controls: the table of the controls ldapd understands, by OID.

An unknown control marked critical fails the operation with
unavailableCriticalExtension (12); an unknown non-critical one is ignored
(RFC 4511 §4.1.11). A known control whose value cannot be decoded is a
protocolError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ldaptor.protocols import pureber
from ldaptor.protocols.ldap import ldaperrors

from ldapd._codec import Control, decodeSequence, encodeSequence, integer, octetString
from ldapd.syncrepl.codec import (
    PERSISTENT_SEARCH,
    SYNC_REQUEST,
    decodePersistentSearch,
    decodeSyncRequest,
)

__all__ = [
    "MANAGE_DSA_IT",
    "PAGED_RESULTS",
    "PASSWORD_POLICY",
    "ManageDsaIT",
    "PagedResults",
    "PasswordPolicyRequest",
    "SUPPORTED",
    "decodeControls",
    "pagedResultsResponse",
]

PAGED_RESULTS = "1.2.840.113556.1.4.319"
MANAGE_DSA_IT = "2.16.840.1.113730.3.4.2"
PASSWORD_POLICY = "1.3.6.1.4.1.42.2.27.8.5.1"


@dataclass(frozen=True)
class PagedResults:
    """
    The Simple Paged Results control (RFC 2696).

    @ivar size: the page size the client asks for.
    @ivar cookie: empty on the first request, then the server's last cookie.
    @ivar criticality: whether the client marked it critical.
    """

    size: int
    cookie: bytes
    criticality: bool = False


@dataclass(frozen=True)
class ManageDsaIT:
    """
    ManageDsaIT (RFC 3296): treat referral objects as ordinary entries.
    ldapd's own backends store them as such anyway; the proxy backend
    forwards the control upstream.
    """

    criticality: bool = False


def _decodePagedResults(value: bytes | None, critical: bool) -> PagedResults:
    if value is None:
        raise ValueError("the paged results control needs a value")
    parts = decodeSequence(value)
    if (
        len(parts) != 2
        or not isinstance(parts[0], pureber.BERInteger)
        or not isinstance(parts[1], pureber.BEROctetString)
        or parts[0].value < 0
    ):
        raise ValueError("paged results value is not SEQUENCE { INTEGER, OCTET STRING }")
    return PagedResults(parts[0].value, parts[1].value, critical)


def _decodeManageDsaIT(value: bytes | None, critical: bool) -> ManageDsaIT:
    if value is not None:
        raise ValueError("ManageDsaIT takes no value")
    return ManageDsaIT(critical)


@dataclass(frozen=True)
class PasswordPolicyRequest:
    """
    The Password Policy request control (draft-behera-ldap-password-policy
    §6.1): the client wants the password policy response control. The
    C{ppolicy} plugin answers it.
    """

    criticality: bool = False


def _decodePasswordPolicy(value: bytes | None, critical: bool) -> PasswordPolicyRequest:
    if value is not None:
        raise ValueError("passwordPolicyRequest control value not absent")
    return PasswordPolicyRequest(critical)


@dataclass(frozen=True)
class _Known:
    decode: Callable[[bytes | None, bool], object]
    operations: frozenset[str]


#: The controls ldapd supports: OID to decoder and the operations it applies to.
SUPPORTED: dict[str, _Known] = {
    # The operations slapd's ppolicy overlay takes it on.
    PASSWORD_POLICY: _Known(
        _decodePasswordPolicy,
        frozenset({"LDAPBindRequest", "LDAPAddRequest", "LDAPModifyRequest", "LDAPExtendedRequest"}),
    ),
    PAGED_RESULTS: _Known(_decodePagedResults, frozenset({"LDAPSearchRequest"})),
    # The Directory refuses a critical one when no syncrepl provider serves
    # the database (no changelog plugin), as slapd does without syncprov.
    SYNC_REQUEST: _Known(decodeSyncRequest, frozenset({"LDAPSearchRequest"})),
    PERSISTENT_SEARCH: _Known(decodePersistentSearch, frozenset({"LDAPSearchRequest"})),
    MANAGE_DSA_IT: _Known(
        _decodeManageDsaIT,
        frozenset(
            {
                "LDAPSearchRequest",
                "LDAPCompareRequest",
                "LDAPAddRequest",
                "LDAPDelRequest",
                "LDAPModifyRequest",
                "LDAPModifyDNRequest",
            }
        ),
    ),
}


def decodeControls(raw: list[tuple] | None, operation: str) -> dict[str, object]:
    """
    Decode the controls of a request.

    @param raw: ldaptor's C{(oid, criticality, value)} tuples, or C{None}.
    @param operation: the request's class name, e.g. C{"LDAPSearchRequest"}.
    @return: the decoded controls the operation should honour, by OID.
    @raise ldaperrors.LDAPUnavailableCriticalExtension: for a critical control
        that is unknown or does not apply to the operation.
    @raise ldaperrors.LDAPProtocolError: for a control given twice or with a
        value that cannot be decoded.
    """
    decoded: dict[str, object] = {}
    for oid, criticality, value in raw or ():
        oid = oid.decode("utf-8", "replace") if isinstance(oid, bytes) else str(oid)
        critical = bool(criticality)
        known = SUPPORTED.get(oid)
        if known is None or operation not in known.operations:
            if critical:
                raise ldaperrors.LDAPUnavailableCriticalExtension(
                    "critical extension is not recognized"
                )
            continue
        if oid in decoded:
            raise ldaperrors.LDAPProtocolError(f"control {oid} given more than once")
        try:
            decoded[oid] = known.decode(value, critical)
        except ValueError as e:
            raise ldaperrors.LDAPProtocolError(f"control {oid}: {e}") from None
    return decoded


def pagedResultsResponse(cookie: bytes) -> Control:
    """
    @param cookie: the cookie for the next page; empty when the search is done.
    @return: the response control for a SearchResultDone.
    """
    return Control(PAGED_RESULTS, False, encodeSequence([integer(0), octetString(cookie)]))
