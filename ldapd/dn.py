"""
Distinguished names (RFC 4514): parsing, escaping and the tree relations between names.

This is the one place that knows the string form of a DN. ldaptor's
C{distinguishedname} module splits names on unescaped commas but neither decodes
hex pairs nor C{#}-hexstrings correctly, and it compares values with a bare
C{lower()}; ldapd therefore parses names itself. Normalisation (which needs the
schema's matching rules) lives in L{ldapd.schema}; this module is schema-free.
"""

from __future__ import annotations

import re
import sys
from typing import Iterable, Iterator, NamedTuple

__all__ = ["AVA", "RDN", "DN", "InvalidDN", "escapeValue"]


class InvalidDN(ValueError):
    """
    A string is not a distinguished name in RFC 4514 form.
    """


class AVA(NamedTuple):
    """
    One attribute type and value assertion of an RDN, such as C{cn=Alice}.

    @ivar type: the attribute type as written (a name or a numeric OID).
    @ivar value: the decoded value, with every escape resolved.
    """

    type: str
    value: str

    def __str__(self) -> str:
        return f"{self.type}={escapeValue(self.value)}"


_SPECIAL = frozenset('"+,;<>\\=')

#: Whether a value needs any escape below (most need none).
_NEEDS_ESCAPE = re.compile(r'["+,;<>\\=\x00-\x1f\x7f]|^[ #]| $')

_HEX = frozenset("0123456789abcdefABCDEF")


def escapeValue(value: str) -> str:
    """
    Escape an attribute value for use in the string form of a DN (RFC 4514 §2.4).

    @param value: the raw value.
    @return: the value with special characters, a leading space or C{#}, a
        trailing space and control characters escaped.
    """
    if not _NEEDS_ESCAPE.search(value):
        return value
    out = []
    last = len(value) - 1
    for i, c in enumerate(value):
        if c in _SPECIAL:
            out.append("\\" + c)
        elif (c == " " and (i == 0 or i == last)) or (c == "#" and i == 0):
            out.append("\\" + c)
        elif ord(c) < 0x20 or c == "\x7f":
            out.append("\\%02X" % ord(c))
        else:
            out.append(c)
    return "".join(out)


class RDN(tuple):
    """
    A relative distinguished name: one or more L{AVA}s joined by C{+}.
    """

    def __new__(cls, avas: Iterable[AVA]) -> RDN:
        avas = tuple(avas)
        if not avas:
            raise InvalidDN("an RDN needs at least one attribute value assertion")
        return super().__new__(cls, avas)

    def __str__(self) -> str:
        return "+".join(str(ava) for ava in self)

    def __repr__(self) -> str:
        return f"RDN({str(self)!r})"


#: One RDN of the common form: a single AVA, a descr type, and a value with no
#: character that the full parser (L{_Parser}) would treat specially: no
#: escapes, separators, quotes, NUL or surrogates, no leading C{#} and no
#: space at either end.
_PLAIN_CHARS = '^,+;\\\\"<>\\x00\\ud800-\\udfff'
_PLAIN_RDN = (rf"[A-Za-z][A-Za-z0-9-]*=[{_PLAIN_CHARS} #]"
              rf"(?:[{_PLAIN_CHARS}]*[{_PLAIN_CHARS} ])?")
_PLAIN_DN = re.compile(rf"{_PLAIN_RDN}(?:,{_PLAIN_RDN})*")


class DN:
    """
    An immutable distinguished name: a sequence of L{RDN}s, the entry's own RDN first.

    Equality and hashing compare the RDNs exactly as they are stored; compare two
    names for LDAP equality by comparing their normalised forms
    (L{ldapd.schema.Schema.normalizeDN}).
    """

    __slots__ = ("rdns", "_text")

    rdns: tuple[RDN, ...]

    def __init__(self, rdns: Iterable[RDN] = ()) -> None:
        """
        @param rdns: the RDNs, leaf first.
        """
        self.rdns = tuple(rdns)
        self._text: str | None = None

    @classmethod
    def parse(cls, text: str | bytes) -> DN:
        """
        Parse the string form of a DN.

        Spaces around the separators are accepted, as slapd does, and so is the
        LDAPv2 C{;} separator; values may use hex pairs and the C{#} hexstring form.

        @param text: the DN, as text or as UTF-8 bytes.
        @return: the parsed name; the empty string is the root (zero RDNs).
        @raise InvalidDN: if C{text} is not a DN.
        """
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidDN("DN is not valid UTF-8") from None
        if _PLAIN_DN.fullmatch(text):
            # The names stored and asked for are almost all of this form,
            # which splitting parses exactly as the full parser would.
            dn = cls.__new__(cls)
            dn.rdns = tuple([
                tuple.__new__(RDN, (AVA(sys.intern(name), value),))
                for name, _, value in [rdn.partition("=") for rdn in text.split(",")]
            ])
            dn._text = None
            return dn
        return cls(_Parser(text).parse())

    def __str__(self) -> str:
        text = self._text
        if text is None:
            # Most RDNs are one AVA whose value needs no escape: written
            # without a call of RDN.__str__ and AVA.__str__ for each (a
            # search result's name is made this way from its RDNs).
            parts = []
            for rdn in self.rdns:
                if len(rdn) == 1:
                    name, value = rdn[0]
                    if _NEEDS_ESCAPE.search(value):
                        value = escapeValue(value)
                    parts.append(f"{name}={value}")
                else:
                    parts.append(str(rdn))
            text = self._text = ",".join(parts)
        return text

    def __repr__(self) -> str:
        return f"DN({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DN):
            return NotImplemented
        return self.rdns == other.rdns

    def __hash__(self) -> int:
        return hash(self.rdns)

    def __len__(self) -> int:
        return len(self.rdns)

    def __bool__(self) -> bool:
        return bool(self.rdns)

    def __iter__(self) -> Iterator[RDN]:
        return iter(self.rdns)

    @property
    def rdn(self) -> RDN:
        """
        The entry's own RDN.

        @raise InvalidDN: for the root DN, which has none.
        """
        if not self.rdns:
            raise InvalidDN("the root DN has no RDN")
        return self.rdns[0]

    def parent(self) -> DN:
        """
        @return: the name of the immediate superior; the root DN's parent is the root.
        """
        return DN(self.rdns[1:])

    def child(self, rdn: RDN) -> DN:
        """
        @param rdn: the RDN of the child.
        @return: the name of C{rdn} directly below this one.
        """
        return DN((rdn,) + self.rdns)

    def isWithin(self, other: DN) -> bool:
        """
        Whether this name is C{other} or lies below it, comparing RDNs exactly
        (use normalised names for LDAP semantics).

        @param other: the possible ancestor.
        """
        n = len(other.rdns)
        return n == 0 or (len(self.rdns) >= n and self.rdns[-n:] == other.rdns)

    def inScope(self, base: DN, style: str) -> bool:
        """
        Whether this name lies in a scope around C{base}, as slapd's
        C{dn.<style>} selectors and the search scopes name them (compare
        normalised names).

        @param base: the scope's base.
        @param style: C{"base"} (the base itself), C{"one"} (its children),
            C{"subtree"} (the base and all below it) or C{"children"} (all
            below it, not the base).
        @raise ValueError: for another style.
        """
        if style == "base":
            return self == base
        if style == "one":
            return len(self.rdns) == len(base.rdns) + 1 and self.isWithin(base)
        if style == "subtree":
            return self.isWithin(base)
        if style == "children":
            return len(self.rdns) > len(base.rdns) and self.isWithin(base)
        raise ValueError(f"unknown scope style {style!r}")

    def relativeTo(self, ancestor: DN) -> tuple[RDN, ...]:
        """
        @param ancestor: a name this one lies within.
        @return: the RDNs between this name and C{ancestor}, leaf first.
        """
        return self.rdns[: len(self.rdns) - len(ancestor.rdns)]

    def moved(self, oldBase: DN, newBase: DN) -> DN:
        """
        @param oldBase: a name this one lies within.
        @param newBase: the name replacing C{oldBase}.
        @return: this name with its C{oldBase} suffix replaced by C{newBase}.
        """
        return DN(self.relativeTo(oldBase) + newBase.rdns)


class _Parser:
    """
    A single-pass RFC 4514 parser over one string.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> InvalidDN:
        return InvalidDN(f"invalid DN {self.text!r}: {why} at position {self.pos}")

    def skipSpaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def parse(self) -> list[RDN]:
        if not self.text:
            return []
        rdns = []
        while True:
            avas = [self.parseAVA()]
            while self.pos < len(self.text) and self.text[self.pos] == "+":
                self.pos += 1
                avas.append(self.parseAVA())
            rdns.append(RDN(avas))
            if self.pos == len(self.text):
                return rdns
            if self.text[self.pos] not in ",;":
                raise self.fail("expected ',' or '+'")
            self.pos += 1

    def parseAVA(self) -> AVA:
        self.skipSpaces()
        start = self.pos
        text = self.text
        while self.pos < len(text) and (text[self.pos].isalnum() or text[self.pos] in "-."):
            self.pos += 1
        # Interned: stored names repeat a handful of types.
        attrType = sys.intern(text[start : self.pos])
        if not attrType or not _validType(attrType):
            raise self.fail("bad attribute type")
        self.skipSpaces()
        if self.pos >= len(text) or text[self.pos] != "=":
            raise self.fail("expected '='")
        self.pos += 1
        self.skipSpaces()
        if self.pos < len(text) and text[self.pos] == "#":
            return AVA(attrType, self.parseHexString())
        return AVA(attrType, self.parseString())

    def parseHexString(self) -> str:
        self.pos += 1
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] in _HEX:
            self.pos += 1
        digits = text[start : self.pos]
        if not digits or len(digits) % 2:
            raise self.fail("bad hexstring")
        self.skipSpaces()
        return _decodeBERString(bytes.fromhex(digits), self)

    def parseString(self) -> str:
        text = self.text
        raw = bytearray()
        # Length of raw up to the last escaped or non-space character, so that
        # unescaped trailing spaces are dropped but escaped ones are kept.
        keep = 0
        while self.pos < len(text):
            c = text[self.pos]
            if c in ",;+":
                break
            if c == "\\":
                self.pos += 1
                if self.pos >= len(text):
                    raise self.fail("dangling escape")
                c = text[self.pos]
                if c in _HEX and self.pos + 1 < len(text) and text[self.pos + 1] in _HEX:
                    raw.append(int(text[self.pos : self.pos + 2], 16))
                    self.pos += 2
                elif c in _SPECIAL or c in " #":
                    raw += c.encode("utf-8")
                    self.pos += 1
                else:
                    raise self.fail("bad escape")
                keep = len(raw)
                continue
            if c in '"<>' or c == "\x00":
                raise self.fail(f"unescaped {c!r}")
            if "\ud800" <= c <= "\udfff":
                # A lone surrogate (from text decoded with surrogateescape).
                raise self.fail("value is not UTF-8")
            raw += c.encode("utf-8")
            self.pos += 1
            if c != " ":
                keep = len(raw)
        try:
            return bytes(raw[:keep]).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("value is not UTF-8") from None


def _validType(attrType: str) -> bool:
    """
    Whether C{attrType} is a descr (keystring) or a numericoid (RFC 4512 §1.4).
    """
    if not attrType.isascii():
        return False
    if attrType[0].isdigit():
        parts = attrType.split(".")
        return all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts)
    return attrType[0].isalpha() and "." not in attrType


def _decodeBERString(encoded: bytes, parser: _Parser) -> str:
    """
    Decode the BER value of a C{#}-hexstring, accepting the string types.
    """
    if len(encoded) < 2 or encoded[0] not in (0x04, 0x0C, 0x13, 0x16, 0x14):
        raise parser.fail("hexstring is not a BER-encoded string")
    length = encoded[1]
    offset = 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(encoded[2 : 2 + n], "big")
        offset = 2 + n
    content = encoded[offset:]
    if len(content) != length:
        raise parser.fail("hexstring length does not match its content")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise parser.fail("hexstring value is not UTF-8") from None
