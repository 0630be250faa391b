"""
How clients authenticate beyond a simple bind: SASL EXTERNAL and PLAIN, the
rules that map a SASL identity to an entry, and the rule that keeps simple
binds off cleartext connections.

A SASL identity is a DN in slapd's forms, so that slapd's C{authz-regexp}
rules carry over:

  - a local (ldapi) client: C{gidNumber=<gid>+uidNumber=<uid>,cn=peercred,cn=external,cn=auth};
  - a TLS client certificate: its subject DN (RFC 4514 form, most specific
    first, e.g. C{cn=alice,ou=people,dc=example,dc=com});
  - a PLAIN user name: C{uid=<name>,cn=plain,cn=auth}.

Each L{IdentityMapping} is a regular expression on that text and a DN
template; the first that matches names the entry. An EXTERNAL identity no
rule maps is the authorization identity as it stands, as in slapd; a PLAIN
user name no rule maps authenticates no one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ldaptor.protocols.ldap import ldaperrors

from ldapd.authz import AuthorizationDenied
from ldapd.dn import DN, InvalidDN
from ldapd.escaping import buildDN
from ldapd.operation import Connection, Identity, Operation
from ldapd.patterns import InvalidPattern, compilePattern
from ldapd.registry import ConfigContext
from ldapd.requests import BindRequest
from ldapd.results import NoSuchObject
from ldapd.schema import InvalidValue, Schema

if TYPE_CHECKING:
    from ldapd.directory import Directory

__all__ = [
    "EXTERNAL",
    "PLAIN",
    "Authentication",
    "IdentityMapping",
    "externalIdentity",
    "mappingsFromConfig",
]

EXTERNAL = "EXTERNAL"
PLAIN = "PLAIN"

_REFERENCE = re.compile(r"\$(\d|\$)")


@dataclass(frozen=True)
class IdentityMapping:
    """
    One rule from a SASL identity to a DN (as slapd's C{authz-regexp}).

    @ivar pattern: searched for in the identity, case-insensitively (an
        RE2 pattern, L{ldapd.patterns.compilePattern}).
    @ivar template: the DN, where C{$1} to C{$9} are the pattern's groups
        and C{$$} is a dollar sign. The groups are copied as they appear in
        the identity, which is itself a DN, so their escapes carry over.
    """

    pattern: Any
    template: str

    @classmethod
    def compile(cls, pattern: str, template: str) -> IdentityMapping:
        """
        @raise ValueError: if the pattern is not a regular expression, or
            the template names a group it lacks.
        """
        try:
            compiled = compilePattern(pattern, ignoreCase=True)
        except InvalidPattern as e:
            raise ValueError(f"invalid regular expression: {e}") from None
        for reference in _REFERENCE.findall(template):
            if reference != "$" and int(reference) > compiled.groups:
                raise ValueError(f"${reference} names a group the expression does not have")
        return cls(compiled, template)

    def apply(self, identity: str) -> str | None:
        """
        @param identity: a SASL identity.
        @return: the DN (text) it maps to, or C{None} if the pattern does not match.
        """
        match = self.pattern.search(identity)
        if match is None:
            return None
        return _REFERENCE.sub(
            lambda m: "$" if m.group(1) == "$" else match.group(int(m.group(1))) or "",
            self.template,
        )


def mappingsFromConfig(value: Any, context: ConfigContext, key: str) -> list[IdentityMapping]:
    """
    Read a list of C{{ match = "regex", dn = "template" }} tables.

    @raise ConfigError: naming the entry that is wrong.
    """
    if not isinstance(value, list):
        raise context.error(key, 'must be a list of { match = "...", dn = "..." } tables')
    mappings = []
    for i, rule in enumerate(value):
        where = f"{key}[{i}]"
        if (
            not isinstance(rule, dict)
            or set(rule) != {"match", "dn"}
            or not all(isinstance(v, str) for v in rule.values())
        ):
            raise context.error(where, 'must be { match = "regex", dn = "DN template" }')
        try:
            mappings.append(IdentityMapping.compile(rule["match"], rule["dn"]))
        except ValueError as e:
            raise context.error(where, str(e)) from None
    return mappings


def externalIdentity(connection: Connection, schema: Schema) -> str | None:
    """
    The identity a connection establishes outside LDAP, which SASL EXTERNAL
    authenticates as: the TLS client certificate's subject, normalised as
    slapd does, or else the local client's user and group.

    @param connection: the connection.
    @param schema: the schema, to normalise a certificate's subject.
    @return: the identity as a DN string, or C{None} if there is none.
    """
    certificate = connection.peerCertificate
    if certificate is not None:
        try:
            subject = DN.parse(certificate.subject.rfc4514_string())
        except InvalidDN:
            return None
        try:
            return str(schema.normalizeDN(subject))
        except (InvalidDN, InvalidValue):
            # An attribute type the schema lacks: the subject as it is.
            return str(subject)
    if connection.peerCredentials is not None:
        uid, gid = connection.peerCredentials
        return f"gidNumber={gid}+uidNumber={uid},cn=peercred,cn=external,cn=auth"
    return None


def _confidential(connection: Connection) -> bool:
    return connection.secure or connection.local


class Authentication:
    """
    The server's authentication policy and its SASL mechanisms.

    @ivar mappings: the L{IdentityMapping}s, tried in order.
    @ivar requireTLSForSimpleBind: whether a simple bind with a password
        needs a TLS (or local) connection.
    """

    def __init__(
        self, mappings: Iterable[IdentityMapping] = (), requireTLSForSimpleBind: bool = False
    ) -> None:
        self.mappings = list(mappings)
        self.requireTLSForSimpleBind = requireTLSForSimpleBind

    def mechanisms(self, connection: Connection, schema: Schema) -> list[str]:
        """
        @param connection: the connection.
        @param schema: the directory's schema.
        @return: the SASL mechanisms a client may use on this connection
            now, for the root DSE's C{supportedSASLMechanisms}.
        """
        found = []
        if externalIdentity(connection, schema) is not None:
            found.append(EXTERNAL)
        if _confidential(connection):
            found.append(PLAIN)
        return found

    def checkSimpleBind(self, op: Operation) -> None:
        """
        Refuse a simple bind with a password on a cleartext connection when
        the policy asks for TLS.

        @raise ldaperrors.LDAPConfidentialityRequired: if it must be refused.
        """
        if self.requireTLSForSimpleBind and not _confidential(op.connection):
            raise ldaperrors.LDAPConfidentialityRequired(
                "confidentiality required: use StartTLS or ldaps"
            )

    def map(self, identity: str) -> DN | None:
        """
        @param identity: a SASL identity.
        @return: the DN the first matching rule gives, or C{None}.
        @raise ldaperrors.LDAPInvalidCredentials: if that DN is not valid.
        """
        for mapping in self.mappings:
            text = mapping.apply(identity)
            if text is not None:
                try:
                    return DN.parse(text)
                except InvalidDN:
                    raise ldaperrors.LDAPInvalidCredentials() from None
        return None

    async def bind(self, directory: Directory, op: Operation) -> Identity:
        """
        Carry out a SASL bind.

        @param directory: the directory, to find and verify entries.
        @param op: the Bind operation.
        @return: the connection's new identity.
        @raise ldaperrors.LDAPAuthMethodNotSupported: for a mechanism that
            is unknown or has nothing to authenticate on this connection.
        @raise ldaperrors.LDAPConfidentialityRequired: for PLAIN in the clear.
        @raise ldaperrors.LDAPInvalidCredentials: if authentication fails.
        @raise ldaperrors.LDAPInsufficientAccessRights: if the client asks
            for an authorization identity other than its own.
        """
        request = op.request
        assert isinstance(request, BindRequest)
        mechanism = (request.mechanism or "").upper()
        credentials = request.credentials or b""
        if mechanism == EXTERNAL:
            return await self._external(directory, op, credentials)
        if mechanism == PLAIN:
            return await self._plain(directory, op, credentials)
        raise ldaperrors.LDAPAuthMethodNotSupported("SASL mechanism not supported")

    async def _external(self, directory: Directory, op: Operation, authzId: bytes) -> Identity:
        identity = externalIdentity(op.connection, directory.schema)
        if identity is None:
            raise ldaperrors.LDAPAuthMethodNotSupported(
                "EXTERNAL needs a TLS client certificate or a local connection"
            )
        mapped = self.map(identity)
        if mapped is None:
            dn = DN.parse(identity)
            result = Identity(dn, directory.schema.normalizeDN(dn))
        else:
            result = await _entryIdentity(directory, mapped)
        return await _authorized(directory, _text(authzId), result, None, "external")

    async def _plain(self, directory: Directory, op: Operation, credentials: bytes) -> Identity:
        if not _confidential(op.connection):
            raise ldaperrors.LDAPConfidentialityRequired("PLAIN needs TLS")
        parts = credentials.split(b"\0")
        if len(parts) != 3 or not parts[1]:
            raise ldaperrors.LDAPInvalidCredentials("malformed PLAIN credentials")
        authzId, authcId, password = _text(parts[0]), _text(parts[1]), parts[2]
        user = None
        if authcId.startswith("dn:"):
            try:
                dn: DN | None = DN.parse(authcId[3:])
            except InvalidDN:
                raise ldaperrors.LDAPInvalidCredentials() from None
        else:
            user = authcId.removeprefix("u:")
            dn = self.map(buildDN("uid={},cn=plain,cn=auth", user))
        if dn is None or not password:
            raise ldaperrors.LDAPInvalidCredentials()
        result = await directory.verifyPassword(op, directory.schema.normalizeDN(dn), password)
        return await _authorized(directory, authzId, result, user, "plain")


async def _entryIdentity(directory: Directory, dn: DN) -> Identity:
    """
    @return: the identity of a mapped DN: a root DN, or an entry that exists.
    @raise ldaperrors.LDAPInvalidCredentials: if there is no such entry.
    """
    ndn = directory.schema.normalizeDN(dn)
    for db in directory.databases:
        if db.normalizedRootDN == ndn:
            return Identity(db.rootDN, ndn, isRoot=True)
    try:
        entry = await directory.get(directory.internalOperation(), ndn)
    except NoSuchObject:
        raise ldaperrors.LDAPInvalidCredentials() from None
    return Identity(entry.dn, entry.ndn)


async def _authorized(
    directory: Directory, authzId: str, identity: Identity, user: str | None, mechanism: str
) -> Identity:
    """
    The identity a SASL bind authorizes: the authenticated one, or the one
    it asks for when the server's C{authz_policy} lets it (L{ldapd.authz}).

    @param authzId: what the client asked for; empty for none.
    @param user: the PLAIN user name authenticated, if any.
    @param mechanism: the SASL mechanism, lower-case.
    @raise ldaperrors.LDAPInsufficientAccessRights: if the policy refuses.
    """
    if not authzId or (authzId.startswith("u:") and user is not None and authzId[2:] == user):
        return identity
    try:
        return await directory.authz.authorize(identity, authzId, mechanism)
    except AuthorizationDenied:
        raise ldaperrors.LDAPInsufficientAccessRights("authorization denied") from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)

