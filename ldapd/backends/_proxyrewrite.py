"""
DN rewriting between a proxy's local suffix and its upstream's suffix, as
slapd's rwm overlay does with C{rwm-suffixmassage}.

A name is rewritten when it lies within the suffix it comes from; every
other name (the root DSE, C{cn=Subschema}, a DN of another tree) passes
unchanged. Besides entry names, the rewriter handles the values of
attributes whose syntax holds a DN (Distinguished Name and Name and
Optional UID, by the local schema), LDAP URLs (referrals), and the
assertion values of filters.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from urllib.parse import quote, unquote

from ldapd.dn import DN, InvalidDN
from ldapd.requests import (
    And,
    Approx,
    Equality,
    Extensible,
    Filter,
    GreaterOrEqual,
    LessOrEqual,
    Not,
    Or,
)
from ldapd.schema import AttributeType, InvalidValue, Schema

__all__ = ["DN_SYNTAXES", "SuffixRewriter"]

_DN_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.12"
_NAME_AND_OPTIONAL_UID = "1.3.6.1.4.1.1466.115.121.1.34"

#: The syntaxes whose values are (or start with) a DN.
DN_SYNTAXES = frozenset({_DN_SYNTAX, _NAME_AND_OPTIONAL_UID})

_UID_SUFFIX = re.compile(r"#'[01]*'B$")
_URL = re.compile(r"^(ldaps?|ldapi)://([^/?]*)(?:/([^?]*))?(\?.*)?$", re.IGNORECASE)
_REFERENCE_ATTRIBUTES = frozenset({"2.16.840.1.113730.3.1.34"})  # ref (RFC 3296)


class SuffixRewriter:
    """
    Rewrites names between a local suffix and a remote one.

    @ivar local: the local suffix (normalised).
    @ivar remote: the remote suffix, as configured.
    @ivar identity: whether the two suffixes are the same (nothing to rewrite).
    """

    def __init__(self, local: DN, remote: DN, schema: Schema) -> None:
        """
        @param local: the normalised local suffix.
        @param remote: the upstream's suffix.
        @param schema: the local schema, which says which attributes hold DNs.
        """
        self.local = local
        self.remote = remote
        self.schema = schema
        self._normalized = {
            "local": local,
            "remote": schema.normalizeDN(remote),
        }
        self.identity = self._normalized["remote"] == local

    def _move(self, dn: DN, source: str) -> DN | None:
        """
        @return: C{dn} moved from the C{source} suffix to the other, or
            C{None} if it is not within it.
        """
        base = self._normalized[source]
        try:
            inside = self.schema.normalizeDN(dn).isWithin(base)
        except InvalidDN:
            inside = False
        if not inside:
            return None
        target = self.remote if source == "local" else self.local
        return DN(dn.rdns[: len(dn) - len(base)] + target.rdns)

    def toRemote(self, dn: DN) -> DN:
        """
        @param dn: a local name.
        @return: the upstream's name for it (C{dn} itself if it is not
            within the local suffix).
        """
        if self.identity:
            return dn
        moved = self._move(dn, "local")
        return dn if moved is None else moved

    def toLocal(self, dn: DN) -> DN | None:
        """
        @param dn: an upstream name.
        @return: the local name, or C{None} if it is not within the remote suffix.
        """
        if self.identity:
            try:
                inside = self.schema.normalizeDN(dn).isWithin(self.local)
            except InvalidDN:
                inside = False
            return dn if inside else None
        return self._move(dn, "remote")

    def isDNValued(self, at: AttributeType) -> bool:
        """
        @return: whether C{at}'s values are DNs (or URLs naming one) to rewrite.
        """
        return at.syntax in DN_SYNTAXES or at.oid in _REFERENCE_ATTRIBUTES

    def value(self, at: AttributeType, value: bytes, toRemote: bool) -> bytes:
        """
        Rewrite one value of a DN-valued attribute.

        @param at: the attribute type (see L{isDNValued}).
        @param value: the raw value.
        @param toRemote: the direction: local to remote, or remote to local.
        @return: the rewritten value; one that is not a DN within the source
            suffix is returned unchanged.
        """
        if self.identity:
            return value
        if at.oid in _REFERENCE_ATTRIBUTES:
            return self.url(value, toRemote)
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return value
        uid = ""
        if at.syntax == _NAME_AND_OPTIONAL_UID:
            found = _UID_SUFFIX.search(text)
            if found is not None:
                text, uid = text[: found.start()], found.group()
        try:
            dn = DN.parse(text)
        except InvalidDN:
            return value
        moved = self._move(dn, "local" if toRemote else "remote")
        if moved is None:
            return value
        return (str(moved) + uid).encode("utf-8")

    def url(self, value: bytes, toRemote: bool) -> bytes:
        """
        Rewrite the DN of an LDAP URL (RFC 4516), as in a referral.

        @param value: the URL.
        @param toRemote: the direction.
        @return: the URL with its DN rewritten, or unchanged.
        """
        if self.identity:
            return value
        text = value.decode("utf-8", "replace")
        found = _URL.match(text)
        if found is None or not found.group(3):
            return value
        try:
            dn = DN.parse(unquote(found.group(3)))
        except InvalidDN:
            return value
        moved = self._move(dn, "local" if toRemote else "remote")
        if moved is None:
            return value
        rest = found.group(4) or ""
        path = quote(str(moved), safe="=,+;")
        return f"{found.group(1)}://{found.group(2)}/{path}{rest}".encode("utf-8")

    def attributeValues(self, at: AttributeType, values: list[bytes], toRemote: bool) -> list[bytes]:
        """
        @return: C{values} rewritten if C{at} is DN-valued, else unchanged.
        """
        if self.identity or not self.isDNValued(at):
            return values
        return [self.value(at, v, toRemote) for v in values]

    def suffixEntry(self, attributes: list[tuple[str, list[bytes]]], toRemote: bool
                    ) -> list[tuple[str, list[bytes]]]:
        """
        The attributes of the suffix entry itself, whose RDN changes with
        the rewriting: the values of the source suffix's RDN are replaced by
        those of the target's (C{dc: example} becomes C{dc: corp}).

        @param attributes: attribute descriptions and values of the entry
            named by the source suffix.
        @param toRemote: the direction.
        @return: the attributes for the other side.
        """
        if self.identity:
            return attributes
        source, target = (self.local, self.remote) if toRemote else (self.remote, self.local)
        if not source or not target:
            return attributes
        drop = set()
        for ava in source.rdn:
            at = self.schema.attributeType(ava.type)
            if at is not None:
                drop.add((at.oid, self._key(at, ava.value.encode("utf-8"))))
        out = []
        for description, values in attributes:
            at = self.schema.attributeType(description.split(";")[0])
            if at is not None:
                values = [v for v in values if (at.oid, self._key(at, v)) not in drop]
            out.append((description, values))
        for ava in target.rdn:
            out.append((ava.type, [ava.value.encode("utf-8")]))
        return out

    def _key(self, at: AttributeType, value: bytes) -> Any:
        try:
            return self.schema.normalizeValue(at, value)
        except InvalidValue:
            return value

    def filterToRemote(self, f: Filter) -> Filter:
        """
        Rewrite the DN assertion values of a request's filter.

        @param f: the filter.
        @return: the filter for the upstream.
        """
        if self.identity:
            return f
        if isinstance(f, (And, Or)):
            return type(f)(tuple(self.filterToRemote(p) for p in f.parts))
        if isinstance(f, Not):
            return Not(self.filterToRemote(f.part))
        if isinstance(f, (Equality, GreaterOrEqual, LessOrEqual, Approx, Extensible)):
            if f.attribute is None:
                return f
            at = self._type(f.attribute)
            if at is None or not self.isDNValued(at):
                return f
            return dataclasses.replace(f, value=self.value(at, f.value, True))
        return f

    def _type(self, description: bytes) -> AttributeType | None:
        name = description.decode("utf-8", "replace")
        return self.schema.attributeType(name.split(";")[0])
