"""
The request controls ldapd's core carries out itself: Simple Paged Results,
ManageDsaIT (L{ldapd.naming}) and Proxied Authorization (L{ldapd.authz}),
as typed control objects and their registrations
(L{ldapd.extensions.ControlType}). Plugins register theirs through the
plugin host the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldaptor.protocols import pureber

from ldapd._codec import Control, decodeSequence, encodeSequence, integer, octetString
from ldapd.authz import PROXIED_AUTHZ_CONTROL
from ldapd.extensions import ControlType

__all__ = [
    "BUILT_IN",
    "MANAGE_DSA_IT",
    "PAGED_RESULTS",
    "ManageDsaIT",
    "PagedResults",
    "pagedResultsResponse",
]

PAGED_RESULTS = "1.2.840.113556.1.4.319"
MANAGE_DSA_IT = "2.16.840.1.113730.3.4.2"


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


#: The operations ManageDsaIT applies to.
_MANAGE_DSA_IT_OPERATIONS = frozenset({"search", "compare", "add", "delete", "modify", "rename"})

#: The controls of ldapd's core, which every directory registers.
BUILT_IN = (
    ControlType(PAGED_RESULTS, _decodePagedResults, frozenset({"search"})),
    ControlType(MANAGE_DSA_IT, _decodeManageDsaIT, _MANAGE_DSA_IT_OPERATIONS),
    PROXIED_AUTHZ_CONTROL,
)


def pagedResultsResponse(cookie: bytes) -> Control:
    """
    @param cookie: the cookie for the next page; empty when the search is done.
    @return: the response control for a SearchResultDone.
    """
    return Control(PAGED_RESULTS, False, encodeSequence([integer(0), octetString(cookie)]))
