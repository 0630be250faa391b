"""
LDAP URLs (RFC 4516): C{ldap://host/dn?attributes?scope?filter?extensions},
as the C{memberURL} of a dynamic group names its members.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from ldapd.dn import DN
from ldapd.operation import Scope
from ldapd.requests import Filter, parseFilter

__all__ = ["InvalidLDAPURL", "LDAPURL", "parseLDAPURL"]

_SCOPES = {"": Scope.BASE, "base": Scope.BASE, "one": Scope.ONE, "sub": Scope.SUB}


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
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("ldap", "ldaps", "ldapi"):
        raise InvalidLDAPURL(f"not an LDAP URL: {text!r}")
    host, _, rest = rest.partition("/")
    parts = rest.split("?")
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
