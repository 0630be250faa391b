"""
Who may act as whom: proxied authorization (RFC 4370) and a SASL
authorization identity, under slapd's C{authz-policy}.

C{[server] authz_policy} is one of:

  - C{"none"} (the default): nobody but a root DN assumes another identity;
  - C{"to"}: the authenticated entry's C{authzTo} values name whom it may
    become;
  - C{"from"}: the target entry's C{authzFrom} values name who may become it;
  - C{"any"}: either; C{"all"}: both.

Each value is one of slapd's forms: C{dn:} or C{dn.exact:} a DN,
C{dn.regex:} a regular expression on the normalised DN (case-insensitive),
C{dn.subtree:}, C{dn.children:}, C{dn.onelevel:} a DN whose scope holds
the name, C{u:} a user name mapped to a DN through C{sasl_map} (the
identity C{uid=<name>,cn=auth}, as slapd's). A root DN may always assume
any identity; anyone may drop to anonymous (an empty authzId or C{dn:}).

The control's operation runs as the identity assumed: access rules,
limits, the password policy and the access log see it
(L{Operation.identity<ldapd.operation.Operation.identity>}), while
L{Operation.authenticatedIdentity<ldapd.operation.Operation.authenticatedIdentity>}
keeps who asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ldaptor.protocols.ldap import ldaperrors

from ldapd.dn import DN, InvalidDN
from ldapd.escaping import buildDN
from ldapd.extensions import ControlType
from ldapd.operation import ANONYMOUS, Identity
from ldapd.patterns import InvalidPattern, compilePattern
from ldapd.results import NoSuchObject

if TYPE_CHECKING:
    from ldapd.directory import Directory

__all__ = [
    "AuthorizationDenied",
    "AuthzPolicy",
    "POLICIES",
    "PROXIED_AUTHZ",
    "PROXIED_AUTHZ_CONTROL",
    "ProxiedAuthz",
]

PROXIED_AUTHZ = "2.16.840.1.113730.3.4.18"

#: The values of C{authz_policy}.
POLICIES = ("none", "to", "from", "any", "all")

_ORDERED = re.compile(r"^\{\d+\}")
_SCOPED = {"dn.subtree": "subtree", "dn.children": "children", "dn.onelevel": "one",
           "dn.base": "base", "dn.exact": "base", "dn": "base"}


class AuthorizationDenied(ldaperrors.LDAPException):
    """
    authorizationDenied (123, RFC 4370): the identity asked for may not be
    assumed.
    """

    resultCode = 123
    name = b"authorizationDenied"


@dataclass(frozen=True)
class ProxiedAuthz:
    """
    The Proxied Authorization v2 control (RFC 4370).

    @ivar authzId: the identity to act as (C{dn:...}, C{u:...}, or empty
        for anonymous).
    @ivar criticality: always true: RFC 4370 makes it critical.
    """

    authzId: str
    criticality: bool = True


def _decodeProxiedAuthz(value: bytes | None, critical: bool) -> ProxiedAuthz:
    if not critical:
        raise ValueError("proxied authorization criticality of FALSE not allowed")
    if value is None:
        raise ValueError("proxied authorization control value absent")
    try:
        return ProxiedAuthz(value.decode("utf-8"), critical)
    except UnicodeDecodeError:
        raise ValueError("the authzId is not UTF-8") from None


#: The registration of the control: every operation but Bind, Unbind,
#: Abandon (RFC 4370 §3).
PROXIED_AUTHZ_CONTROL = ControlType(
    PROXIED_AUTHZ, _decodeProxiedAuthz,
    frozenset({"search", "compare", "add", "delete", "modify", "rename", "extended"}))


class AuthzPolicy:
    """
    Decides whether one identity may act as another (slapd's
    C{authz-policy}), for the proxied authorization control and SASL
    authorization identities.

    @ivar policy: one of L{POLICIES}.
    """

    def __init__(self, directory: Directory, policy: str = "none",
                 mapUser: Callable[[str], DN | None] | None = None) -> None:
        """
        @param directory: the directory whose entries hold the rules.
        @param policy: one of L{POLICIES}.
        @param mapUser: maps a SASL identity (C{uid=<name>,cn=auth}) to a
            DN (the C{sasl_map} rules), for C{u:} forms.
        @raise ValueError: for an unknown policy.
        """
        if policy not in POLICIES:
            raise ValueError(f"unknown authz_policy {policy!r}")
        self._directory = directory
        self.policy = policy
        self._mapUser = mapUser or (lambda identity: None)

    def _user(self, name: str, mechanism: str | None = None) -> DN | None:
        template = "uid={},cn=auth" if mechanism is None else f"uid={{}},cn={mechanism},cn=auth"
        try:
            return self._mapUser(buildDN(template, name))
        except ldaperrors.LDAPException:
            return None

    def _target(self, authzId: str, mechanism: str | None) -> DN:
        """
        @return: the DN an authzId names; the empty DN for anonymous.
        @raise AuthorizationDenied: if it names none.
        """
        if authzId in ("", "dn:"):
            return DN()
        try:
            if authzId.startswith("dn:"):
                return DN.parse(authzId[3:])
        except InvalidDN:
            pass
        if authzId.startswith("u:"):
            mapped = self._user(authzId[2:], mechanism)
            if mapped is not None:
                return mapped
        raise AuthorizationDenied("authzId mapping failed")

    async def authorize(self, authenticated: Identity, authzId: str,
                        mechanism: str | None = None) -> Identity:
        """
        The identity C{authenticated} acts as when it asks for C{authzId}.

        @param mechanism: the SASL mechanism of a bind's authorization
            identity, whose C{u:} names are C{uid=<name>,cn=<mechanism>,cn=auth}
            (as slapd's); C{None} for the control's (C{uid=<name>,cn=auth}).

        @raise AuthorizationDenied: if the policy refuses.
        """
        if authenticated.anonymous:
            raise AuthorizationDenied("anonymous proxied authorization not allowed")
        target = self._target(authzId, mechanism)
        if not target:
            return ANONYMOUS
        directory = self._directory
        ndn = directory.schema.normalizeDN(target)
        identity = Identity(target, ndn, isRoot=any(
            db.normalizedRootDN == ndn for db in directory.databases))
        if ndn == authenticated.ndn:
            return authenticated
        if authenticated.isRoot:
            return identity
        policy = self.policy
        allowedTo = policy in ("to", "any", "all") and await self._rules(
            authenticated.ndn, "authzTo", ndn)
        if policy == "any" and allowedTo:
            return identity
        allowedFrom = policy in ("from", "any", "all") and authenticated.ndn is not None \
            and await self._rules(ndn, "authzFrom", authenticated.ndn)
        if allowedFrom and (allowedTo or policy != "all") or allowedTo and policy == "to":
            return identity
        raise AuthorizationDenied("not authorized to assume identity")

    async def _rules(self, holder: DN | None, attribute: str, subject: DN) -> bool:
        """
        @return: whether a value of C{attribute} on the entry C{holder}
            names C{subject}.
        """
        if holder is None or self._directory.databaseFor(holder) is None:
            return False
        try:
            entry = await self._directory.get(self._directory.internalOperation(), holder)
        except NoSuchObject:
            return False
        return any(self._matches(value.decode("utf-8", "replace"), subject)
                   for value in entry.get(attribute))

    def _matches(self, rule: str, subject: DN) -> bool:
        """
        @return: whether one C{authzTo}/C{authzFrom} value names C{subject}
            (normalised); forms ldapd does not know name no one.
        """
        rule = _ORDERED.sub("", rule.strip())
        kind, sep, value = rule.partition(":")
        if not sep:
            return False
        kind = kind.lower()
        schema = self._directory.schema
        if kind == "u":
            mapped = self._user(value)
            return mapped is not None and schema.normalizeDN(mapped) == subject
        if kind == "dn.regex":
            try:
                pattern = compilePattern(value, ignoreCase=True)
            except InvalidPattern:
                return False
            return pattern.search(str(subject)) is not None
        style = _SCOPED.get(kind)
        if style is None:
            return False
        try:
            base = schema.normalizeDN(DN.parse(value))
        except (InvalidDN, ValueError):
            return False
        return subject.inScope(base, style)

