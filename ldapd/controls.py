"""
The request controls ldapd's core carries out itself, as typed control
objects and their registrations (L{ldapd.extensions.ControlType}): Simple
Paged Results, ManageDsaIT (L{ldapd.naming}), Proxied Authorization
(L{ldapd.authz}), server-side sorting and VLV (L{ldapd.sorting}), the
transaction specification (L{ldapd.transactions}), and those that change
what an operation reads or writes (Assertion, Pre-Read and Post-Read, Don't
Use Copy, Matched Values, Permissive Modify, Relax Rules, Session Tracking,
Subentries). Plugins register theirs through the plugin host the same way.

Where each is carried out: the Assertion in L{ldapd.directory} (inside a
write's transaction) and L{ldapd.search}; Pre-Read and Post-Read, Relax
Rules and Permissive Modify in L{ldapd.directory}'s write pipeline;
Matched Values, Subentries, sorting and VLV in L{ldapd.search}. Don't Use
Copy and Session Tracking change nothing (ldapd keeps no copies; the session
is written to the access log).
"""

from __future__ import annotations

from dataclasses import dataclass

from ldaptor.protocols import pureber
from ldaptor.protocols.ldap import ldaperrors

from ldapd import transactions
from ldapd._codec import (
    Control,
    decodeFilters,
    decodeSequence,
    encodeSequence,
    integer,
    octetString,
)
from ldapd.authz import PROXIED_AUTHZ_CONTROL
from ldapd.extensions import ControlType
from ldapd.requests import And, Filter, Not, Or
from ldapd.sorting import SORT_REQUEST, VLV_REQUEST, decodeSortRequest, decodeVLVRequest

__all__ = [
    "ASSERTION",
    "BUILT_IN",
    "DONT_USE_COPY",
    "MANAGE_DSA_IT",
    "MATCHED_VALUES",
    "PAGED_RESULTS",
    "PERMISSIVE_MODIFY",
    "POST_READ",
    "PRE_READ",
    "RELAX_RULES",
    "SESSION_TRACKING",
    "SUBENTRIES",
    "Assertion",
    "AssertionFailed",
    "Flag",
    "ManageDsaIT",
    "MatchedValues",
    "PagedResults",
    "ReadEntry",
    "SessionTracking",
    "Subentries",
    "pagedResultsResponse",
]

PAGED_RESULTS = "1.2.840.113556.1.4.319"
MANAGE_DSA_IT = "2.16.840.1.113730.3.4.2"
#: RFC 4528.
ASSERTION = "1.3.6.1.1.12"
#: RFC 4527.
PRE_READ = "1.3.6.1.1.13.1"
POST_READ = "1.3.6.1.1.13.2"
#: RFC 6171.
DONT_USE_COPY = "1.3.6.1.1.22"
#: RFC 3876.
MATCHED_VALUES = "1.2.826.0.1.3344810.2.3"
#: Active Directory's LDAP_SERVER_PERMISSIVE_MODIFY_OID, as slapd has it.
PERMISSIVE_MODIFY = "1.2.840.113556.1.4.1413"
#: draft-zeilenga-ldap-relax.
RELAX_RULES = "1.3.6.1.4.1.4203.666.5.12"
#: draft-wahl-ldap-session.
SESSION_TRACKING = "1.3.6.1.4.1.21008.108.63.1"
#: RFC 3672.
SUBENTRIES = "1.3.6.1.4.1.4203.1.10.1"


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
    ManageDsaIT (RFC 3296): treat referral objects as ordinary entries
    (L{ldapd.naming}); the proxy backend forwards the control upstream.
    """

    criticality: bool = False


class AssertionFailed(ldaperrors.LDAPException):
    """
    The Assertion control's filter is not true of the operation's target
    (RFC 4528 §3): assertionFailed (122), and the operation has no effect.
    """

    resultCode = 122
    name = b"assertionFailed"


@dataclass(frozen=True)
class Flag:
    """
    A control without a value whose presence is all it says (Don't Use
    Copy, Permissive Modify, Relax Rules).
    """

    criticality: bool = False


@dataclass(frozen=True)
class Assertion:
    """
    The Assertion control (RFC 4528): the operation goes ahead only if the
    filter is true of its target entry.

    @ivar filter: the filter, as decoded (L{ldapd.requests.Filter}).
    """

    filter: Filter
    criticality: bool = False


@dataclass(frozen=True)
class ReadEntry:
    """
    The Pre-Read or Post-Read control (RFC 4527): the target entry before
    or after the write, with the attributes selected as a search's.

    @ivar attributes: the attribute selection (empty: all user attributes).
    """

    attributes: tuple[str, ...]
    criticality: bool = False


@dataclass(frozen=True)
class MatchedValues:
    """
    The Matched Values control (RFC 3876): only the values of a search's
    results that match one of the filters are returned.

    @ivar filters: the ValuesReturnFilter's simple filter items.
    """

    filters: tuple[Filter, ...]
    criticality: bool = False


@dataclass(frozen=True)
class Subentries:
    """
    The Subentries control (RFC 3672 §3): with C{visibility} true, a
    search returns only subentries; false, only ordinary entries.
    """

    visibility: bool
    criticality: bool = False


@dataclass(frozen=True)
class SessionTracking:
    """
    The Session Tracking control (draft-wahl-ldap-session): who the client
    acts for, which ldapd only writes to its access log.

    @ivar sourceIP: the session's source address, as the client gives it.
    @ivar sourceName: the session's source name.
    @ivar identifier: the session's tracking identifier (a user name, say).
    """

    sourceIP: str
    sourceName: str
    identifier: str
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


def _decodeFlag(value: bytes | None, critical: bool) -> Flag:
    if value is not None:
        raise ValueError("the control takes no value")
    return Flag(critical)


def _decodeAssertion(value: bytes | None, critical: bool) -> Assertion:
    if value is None:
        raise ValueError("the assertion control needs a filter")
    return Assertion(decodeFilters(value)[0], critical)


def _decodeReadEntry(value: bytes | None, critical: bool) -> ReadEntry:
    if value is None:
        raise ValueError("the read entry control needs an attribute selection")
    parts = decodeSequence(value)
    if any(not isinstance(p, pureber.BEROctetString) for p in parts):
        raise ValueError("the attribute selection is not SEQUENCE OF LDAPString")
    return ReadEntry(tuple(p.value.decode("utf-8", "replace") for p in parts), critical)


def _decodeMatchedValues(value: bytes | None, critical: bool) -> MatchedValues:
    if value is None:
        raise ValueError("the matched values control needs a filter")
    filters = decodeFilters(value, sequence=True)
    # A filter item is a simple one (RFC 3876 §2): no and, or, not.
    if not filters or any(isinstance(f, (And, Or, Not)) for f in filters):
        raise ValueError("not a ValuesReturnFilter")
    return MatchedValues(tuple(filters), critical)


def _decodeSubentries(value: bytes | None, critical: bool) -> Subentries:
    if value is None:
        raise ValueError("the subentries control needs a visibility")
    try:
        decoded, used = pureber.berDecodeObject(pureber.BERDecoderContext(), value)
    except Exception:
        decoded, used = None, 0
    if not isinstance(decoded, pureber.BERBoolean) or used != len(value):
        raise ValueError("the subentries visibility is not a BOOLEAN")
    return Subentries(bool(decoded.value), critical)


def _decodeSessionTracking(value: bytes | None, critical: bool) -> SessionTracking:
    if value is None:
        raise ValueError("the session tracking control needs a value")
    parts = decodeSequence(value)
    if len(parts) != 4 or any(not isinstance(p, pureber.BEROctetString) for p in parts):
        raise ValueError("not a SEQUENCE of four strings")
    ip, name, _, identifier = (p.value.decode("utf-8", "replace") for p in parts)
    return SessionTracking(ip, name, identifier, critical)


#: The operations ManageDsaIT (and the Assertion, RFC 4528 §3) apply to.
_MANAGE_DSA_IT_OPERATIONS = frozenset({"search", "compare", "add", "delete", "modify", "rename"})

#: The writes, to which Relax Rules applies.
_WRITES = frozenset({"add", "delete", "modify", "rename"})

#: The controls of ldapd's core, which every directory registers.
BUILT_IN = (
    ControlType(PAGED_RESULTS, _decodePagedResults, frozenset({"search"})),
    ControlType(MANAGE_DSA_IT, _decodeManageDsaIT, _MANAGE_DSA_IT_OPERATIONS),
    # Carried out by the search module (ldapd.sorting), as paged results are.
    ControlType(SORT_REQUEST, decodeSortRequest, frozenset({"search"})),
    ControlType(VLV_REQUEST, decodeVLVRequest, frozenset({"search"})),
    transactions.SPECIFICATION_CONTROL,
    ControlType(ASSERTION, _decodeAssertion, _MANAGE_DSA_IT_OPERATIONS),
    # RFC 4527 §3.1 and §3.2: no pre-read of an added entry, no post-read
    # of a deleted one; slapd refuses them critical (12), as here.
    ControlType(PRE_READ, _decodeReadEntry, frozenset({"delete", "modify", "rename"})),
    ControlType(POST_READ, _decodeReadEntry, frozenset({"add", "modify", "rename"})),
    ControlType(DONT_USE_COPY, _decodeFlag, frozenset({"search", "compare"})),
    ControlType(MATCHED_VALUES, _decodeMatchedValues, frozenset({"search"})),
    ControlType(PERMISSIVE_MODIFY, _decodeFlag, frozenset({"modify"})),
    ControlType(RELAX_RULES, _decodeFlag, _WRITES),
    ControlType(SESSION_TRACKING, _decodeSessionTracking,
                _MANAGE_DSA_IT_OPERATIONS | {"bind", "extended"}),
    ControlType(SUBENTRIES, _decodeSubentries, frozenset({"search"})),
    PROXIED_AUTHZ_CONTROL,
)


def pagedResultsResponse(cookie: bytes, size: int = 0) -> Control:
    """
    @param cookie: the cookie for the next page; empty when the search is done.
    @param size: the server's estimate of the entries left (0: unknown).
    @return: the response control for a SearchResultDone.
    """
    return Control(PAGED_RESULTS, False, encodeSequence([integer(size), octetString(cookie)]))
