"""
LDAP syntaxes (RFC 4517 §3.3): what a value of an attribute type may look like.

Each L{Syntax} has a validator that a value must pass before it is stored: an
Add or Modify with a value that fails is invalidAttributeSyntax (21), as in
slapd. The validators check the form only; what a value means for matching is
the matching rules' business (L{ldapd.schema.matching}), and a DN's attribute
types are checked when the schema normalises it. Syntaxes ldapd knows but does
not check (Guide, Teletex Terminal Identifier, certificates ...) accept any
value, as slapd accepts any value of a syntax without a validator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ldapd.gentime import isGeneralizedTime
from ldapd.schema.matching import InvalidValue

__all__ = ["SYNTAXES", "Syntax"]


@dataclass(frozen=True)
class Syntax:
    """
    An LDAP syntax.

    @ivar oid: the syntax's numeric OID.
    @ivar description: its name, e.g. C{Directory String}.
    @ivar validate: raises L{InvalidValue} for a value not of this syntax;
        C{None} when every value is accepted.
    @ivar humanReadable: whether values are text (published as
        C{X-NOT-HUMAN-READABLE 'TRUE'} when not).
    @ivar binaryTransfer: whether values are transferred with the C{;binary}
        option (RFC 4522), published as C{X-BINARY-TRANSFER-REQUIRED 'TRUE'}.
    """

    oid: str
    description: str
    validate: Callable[[bytes], None] | None = None
    humanReadable: bool = True
    binaryTransfer: bool = False

    def check(self, value: bytes) -> None:
        """
        @param value: a raw value.
        @raise InvalidValue: if it is not of this syntax.
        """
        if self.validate is not None:
            self.validate(value)

    def describe(self) -> str:
        """
        @return: the SyntaxDescription (RFC 4512 §4.1.5) of this syntax, with
            the extensions slapd publishes for binary syntaxes.
        """
        extensions = ""
        if self.binaryTransfer:
            extensions += " X-BINARY-TRANSFER-REQUIRED 'TRUE'"
        if not self.humanReadable:
            extensions += " X-NOT-HUMAN-READABLE 'TRUE'"
        return f"( {self.oid} DESC '{self.description}'{extensions} )"


def _utf8(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidValue("value is not valid UTF-8") from None


def _directoryString(value: bytes) -> None:
    if not value:
        raise InvalidValue("a Directory String is not empty")
    _utf8(value)


def _ia5String(value: bytes) -> None:
    if not value.isascii():
        raise InvalidValue("value is not an IA5 string")


#: The characters of a Printable String (RFC 4517 §3.2, and C{=} as slapd allows).
_PRINTABLE = re.compile(rb"[A-Za-z0-9'()+,\-./:?= ]+")


def _printableString(value: bytes) -> None:
    if not _PRINTABLE.fullmatch(value):
        raise InvalidValue("value is not a Printable String")


def _countryString(value: bytes) -> None:
    if len(value) != 2 or not _PRINTABLE.fullmatch(value):
        raise InvalidValue("value is not a two-letter country code")


def _numericString(value: bytes) -> None:
    if not re.fullmatch(rb"[0-9 ]+", value):
        raise InvalidValue("value is not a Numeric String")


def _integer(value: bytes) -> None:
    if not re.fullmatch(rb"0|-?[1-9][0-9]*", value):
        raise InvalidValue("value is not an integer")


def _boolean(value: bytes) -> None:
    if value not in (b"TRUE", b"FALSE"):
        raise InvalidValue("value is not TRUE or FALSE")


_OID = re.compile(rb"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+|[A-Za-z][A-Za-z0-9-]*")


def _oid(value: bytes) -> None:
    if not _OID.fullmatch(value):
        raise InvalidValue("value is not a numeric OID or a name")


def _distinguishedName(value: bytes) -> None:
    from ldapd.dn import DN, InvalidDN

    try:
        DN.parse(value)
    except InvalidDN as e:
        raise InvalidValue(str(e)) from None


def _nameAndOptionalUID(value: bytes) -> None:
    dnPart, sep, uid = value.rpartition(b"#")
    if sep and re.fullmatch(rb"'[01]*'B", uid):
        value = dnPart
    _distinguishedName(value)


def _bitString(value: bytes) -> None:
    if not re.fullmatch(rb"'[01]*'B", value):
        raise InvalidValue("value is not a Bit String")


def _generalizedTime(value: bytes) -> None:
    if not isGeneralizedTime(value):
        raise InvalidValue("value is not a GeneralizedTime")


def _postalAddress(value: bytes) -> None:
    # Lines separated by "$", with "$" and "\" escaped as \24 and \5C
    # (RFC 4517 §3.3.28). The RFC's lines are not empty, but slapd takes
    # empty ones ("a$$b"), and so does ldapd, so that data moves between them.
    _directoryString(value)
    for line in value.split(b"$"):
        for escape in re.findall(rb"\\(..?)", line):
            if escape.upper() not in (b"24", b"5C"):
                raise InvalidValue("invalid escape in a Postal Address")


def _derElements(data: bytes) -> list[tuple[int, bytes]]:
    """
    Split DER-encoded elements into C{(tag, content)} pairs.

    @raise InvalidValue: if C{data} is not a sequence of whole DER elements.
    """
    elements = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise InvalidValue("truncated DER element")
        tag, length = data[i], data[i + 1]
        i += 2
        if length & 0x80:
            size = length & 0x7F
            if not 0 < size <= 4 or i + size > len(data):
                raise InvalidValue("invalid DER length")
            length = int.from_bytes(data[i : i + size], "big")
            i += size
        if i + length > len(data):
            raise InvalidValue("truncated DER element")
        elements.append((tag, data[i : i + length]))
        i += length
    return elements


def _certificate(value: bytes) -> None:
    # The structure of an X.509 Certificate (RFC 5280 §4.1): a SEQUENCE of
    # the to-be-signed SEQUENCE, the signature algorithm and the signature.
    # The contents are not checked.
    outer = _derElements(value)
    if len(outer) != 1 or outer[0][0] != 0x30:
        raise InvalidValue("value is not a DER SEQUENCE")
    parts = _derElements(outer[0][1])
    if [tag for tag, _ in parts] != [0x30, 0x30, 0x03]:
        raise InvalidValue("value is not an X.509 certificate")


def _uuid(value: bytes) -> None:
    if not re.fullmatch(rb"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", value):
        raise InvalidValue("value is not a UUID")


def _csn(value: bytes) -> None:
    if not re.fullmatch(rb"\d{14}(?:\.\d{6})?Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6}", value):
        raise InvalidValue("value is not a CSN")


def _syntaxes() -> dict[str, Syntax]:
    s = "1.3.6.1.4.1.1466.115.121.1."
    table = [
        Syntax(s + "3", "Attribute Type Description", _directoryString),
        Syntax(s + "4", "Audio", humanReadable=False),
        Syntax(s + "5", "Binary", humanReadable=False),
        Syntax(s + "6", "Bit String", _bitString),
        Syntax(s + "7", "Boolean", _boolean),
        Syntax(s + "8", "Certificate", _certificate, humanReadable=False, binaryTransfer=True),
        Syntax(s + "9", "Certificate List", humanReadable=False, binaryTransfer=True),
        Syntax(s + "10", "Certificate Pair", humanReadable=False, binaryTransfer=True),
        Syntax(s + "11", "Country String", _countryString),
        Syntax(s + "12", "Distinguished Name", _distinguishedName),
        Syntax(s + "14", "Delivery Method"),
        Syntax(s + "15", "Directory String", _directoryString),
        Syntax(s + "16", "DIT Content Rule Description", _directoryString),
        Syntax(s + "17", "DIT Structure Rule Description", _directoryString),
        Syntax(s + "21", "Enhanced Guide"),
        Syntax(s + "22", "Facsimile Telephone Number"),
        Syntax(s + "23", "Fax", humanReadable=False),
        Syntax(s + "24", "Generalized Time", _generalizedTime),
        Syntax(s + "25", "Guide"),
        Syntax(s + "26", "IA5 String", _ia5String),
        Syntax(s + "27", "Integer", _integer),
        Syntax(s + "28", "JPEG", humanReadable=False),
        Syntax(s + "30", "Matching Rule Description", _directoryString),
        Syntax(s + "31", "Matching Rule Use Description", _directoryString),
        Syntax(s + "34", "Name And Optional UID", _nameAndOptionalUID),
        Syntax(s + "35", "Name Form Description", _directoryString),
        Syntax(s + "36", "Numeric String", _numericString),
        Syntax(s + "37", "Object Class Description", _directoryString),
        Syntax(s + "38", "OID", _oid),
        Syntax(s + "39", "Other Mailbox"),
        Syntax(s + "40", "Octet String"),
        Syntax(s + "41", "Postal Address", _postalAddress),
        Syntax(s + "44", "Printable String", _printableString),
        Syntax(s + "45", "SubtreeSpecification"),
        Syntax(s + "49", "Supported Algorithm", humanReadable=False, binaryTransfer=True),
        Syntax(s + "50", "Telephone Number", _printableString),
        Syntax(s + "51", "Teletex Terminal Identifier"),
        Syntax(s + "52", "Telex Number"),
        Syntax(s + "54", "LDAP Syntax Description", _directoryString),
        Syntax(s + "58", "Substring Assertion"),
        Syntax("1.3.6.1.1.1.0.0", "RFC2307 NIS Netgroup Triple"),
        Syntax("1.3.6.1.1.1.0.1", "RFC2307 Boot Parameter"),
        Syntax("1.3.6.1.1.15.1", "X.509 Certificate Exact Assertion"),
        Syntax("1.3.6.1.1.16.1", "UUID", _uuid),
        Syntax("1.3.6.1.4.1.4203.666.11.2.1", "CSN", _csn),
        Syntax("1.3.6.1.4.1.4203.666.2.7", "OpenLDAP authz"),
    ]
    return {syntax.oid: syntax for syntax in table}


#: Every syntax ldapd knows, by OID.
SYNTAXES: dict[str, Syntax] = _syntaxes()
