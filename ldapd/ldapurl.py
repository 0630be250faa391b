"""
LDAP URLs (RFC 4516): C{ldap://host/dn?attributes?scope?filter?extensions},
as the C{memberURL} of a dynamic group names its members and a referral's
C{ref} names where to go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from ldapd.dn import DN
from ldapd.operation import Scope
from ldapd.requests import Filter, parseFilter

__all__ = ["SCOPE_NAMES", "InvalidLDAPURL", "LDAPURL", "parseLDAPURL", "splitURL"]

#: The name of each scope in a URL.
SCOPE_NAMES = {Scope.BASE: "base", Scope.ONE: "one", Scope.SUB: "sub"}

_SCOPES = {"": Scope.BASE, **{name: scope for scope, name in SCOPE_NAMES.items()}}

_URL = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?]*)(?:/(?P<dn>[^?]*))?")


def splitURL(text: str) -> tuple[str, str, str] | None:
    """
    @param text: a URL.
    @return: its C{scheme://host}, its DN (still %-escaped; empty when it
        names none) and what follows the DN (C{?...}, or nothing); C{None}
        when it has no C{scheme://}.
    """
    match = _URL.match(text)
    if match is None:
        return None
    return match.group("head"), match.group("dn") or "", text[match.end():]


class InvalidLDAPURL(ValueError):
    """
    A value is not an LDAP URL ldapd can search with.
    """


@dataclass(frozen=True)
class LDAPURL:
    """
    A parsed LDAP URL.

    @ivar host: the host and port, empty for this server.
    @ivar dn: the base DN.
    @ivar attributes: the attributes named, if any.
    @ivar scope: the scope (base when absent, RFC 4516 §2).
    @ivar filter: the filter (C{(objectClass=*)} when absent).
    """

    host: str
    dn: DN
    attributes: tuple[str, ...]
    scope: Scope
    filter: Filter


def parseLDAPURL(text: str) -> LDAPURL:
    """
    @param text: an LDAP URL.
    @return: its parts.
    @raise InvalidLDAPURL: if it is not one: another scheme, a bad DN, scope
        or filter, or a critical extension (which no search here honours).
    """
    split = splitURL(text)
    scheme, _, host = split[0].partition("://") if split is not None else ("", "", "")
    if split is None or scheme.lower() not in ("ldap", "ldaps", "ldapi"):
        raise InvalidLDAPURL(f"not an LDAP URL: {text!r}")
    _, dnText, rest = split
    parts = [dnText, *rest[1:].split("?")] if rest else [dnText]
    if len(parts) > 5:
        raise InvalidLDAPURL(f"too many parts: {text!r}")
    parts += [""] * (5 - len(parts))
    dnText, attributes, scope, filterText, extensions = (unquote(p) for p in parts)
    try:
        dn = DN.parse(dnText)
    except ValueError as e:
        raise InvalidLDAPURL(f"bad DN in {text!r}: {e}") from None
    if scope.lower() not in _SCOPES:
        raise InvalidLDAPURL(f"bad scope in {text!r}")
    try:
        parsed = parseFilter(filterText or "(objectClass=*)")
    except ValueError as e:
        raise InvalidLDAPURL(f"bad filter in {text!r}: {e}") from None
    if any(e.startswith("!") for e in extensions.split(",") if e):
        raise InvalidLDAPURL(f"critical extension in {text!r}")
    return LDAPURL(unquote(host), dn, tuple(a for a in attributes.split(",") if a),
                   _SCOPES[scope.lower()], parsed)
