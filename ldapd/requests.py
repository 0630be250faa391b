"""
ldapd's own request types: what a client asked for, decoded once at the wire
edge (L{ldapd._codec.decodeMessage}) and read by the Directory, plugins and
backends.

Past the protocol layer nothing reads ldaptor's PDU classes: every request is
one of the immutable types here, its search filter a tree of the filter
types here (compiled against the schema by L{ldapd.filters.compileFilter}),
its controls L{RawControl}s until the Directory decodes them into the typed
control objects their registrations give (L{ldapd.extensions}).

Names (DNs, attribute descriptions) are kept as the bytes the client sent:
whether they are valid is decided where they are used, with the result code
the operation gives for it (invalidDNSyntax for a DN, for instance).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, ClassVar, NamedTuple, Union

from ldapd.escaping import escapeFilterValue

__all__ = [
    "ANY",
    "CANCEL",
    "FINAL",
    "INITIAL",
    "PASSWORD_MODIFY",
    "START_TLS",
    "WHO_AM_I",
    "AbandonRequest",
    "AddRequest",
    "And",
    "Approx",
    "BindRequest",
    "CancelRequest",
    "CompareRequest",
    "DeleteRequest",
    "Equality",
    "Extensible",
    "ExtendedRequest",
    "Filter",
    "GreaterOrEqual",
    "LessOrEqual",
    "Message",
    "ModifyDNRequest",
    "ModifyRequest",
    "Not",
    "Or",
    "PasswordModifyRequest",
    "Present",
    "RawControl",
    "Request",
    "SearchRequest",
    "StartTLSRequest",
    "Substrings",
    "UnbindRequest",
    "WhoAmIRequest",
    "InvalidFilter",
    "filterText",
    "parseFilter",
]


# Filters (RFC 4511 §4.5.1.7)


@dataclass(frozen=True, slots=True)
class And:
    """
    C{(&...)}: true when every part is.
    """

    parts: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """
    C{(|...)}: true when any part is.
    """

    parts: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """
    C{(!...)}.
    """

    part: Filter


@dataclass(frozen=True, slots=True)
class Present:
    """
    C{(attribute=*)}.
    """

    attribute: bytes


@dataclass(frozen=True, slots=True)
class Equality:
    """
    C{(attribute=value)}.
    """

    attribute: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class GreaterOrEqual:
    """
    C{(attribute>=value)}.
    """

    attribute: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class LessOrEqual:
    """
    C{(attribute<=value)}.
    """

    attribute: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Approx:
    """
    C{(attribute~=value)}.
    """

    attribute: bytes
    value: bytes


#: The kinds of a substring piece, as their context tags number them.
INITIAL, ANY, FINAL = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Substrings:
    """
    C{(attribute=initial*any*final)}.

    @ivar pieces: C{(kind, value)} pairs in the order the client sent them,
        C{kind} one of L{INITIAL}, L{ANY}, L{FINAL}: whether they are in a
        valid order is checked when the filter is compiled.
    """

    attribute: bytes
    pieces: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class Extensible:
    """
    C{(attribute:dn:rule:=value)}: an extensible match (RFC 4511 §4.5.1.7.7).
    """

    rule: bytes | None
    attribute: bytes | None
    value: bytes
    dnAttributes: bool = False


Filter = Union[And, Or, Not, Present, Equality, GreaterOrEqual, LessOrEqual, Approx,
               Substrings, Extensible]

_COMPARISONS: dict[type, str] = {Equality: "=", GreaterOrEqual: ">=", LessOrEqual: "<=",
                                 Approx: "~="}


def filterText(f: Filter, mask: Callable[[str], bool] = lambda attribute: False) -> str:
    """
    A filter in RFC 4515 string form.

    @param f: the filter.
    @param mask: called with an attribute description; when it returns
        C{True}, the values asserted on it are written C{***} (the access
        log does not write passwords).
    @return: the text.
    """
    if isinstance(f, (And, Or)):
        return "(" + ("&" if isinstance(f, And) else "|") + "".join(
            filterText(p, mask) for p in f.parts) + ")"
    if isinstance(f, Not):
        return f"(!{filterText(f.part, mask)})"
    if isinstance(f, Present):
        return f"({_decoded(f.attribute)}=*)"

    def value(attribute: str, raw: bytes) -> str:
        return "***" if mask(attribute) else escapeFilterValue(raw)

    if isinstance(f, Substrings):
        attribute = _decoded(f.attribute)
        initial = final = ""
        middle = []
        for kind, piece in f.pieces:
            text = value(attribute, piece)
            if kind == INITIAL:
                initial = text
            elif kind == FINAL:
                final = text
            else:
                middle.append(text)
        return f"({attribute}=" + "*".join([initial, *middle, final]) + ")"
    if isinstance(f, Extensible):
        attribute = _decoded(f.attribute) if f.attribute is not None else ""
        text = attribute + (":dn" if f.dnAttributes else "")
        if f.rule is not None:
            text += ":" + _decoded(f.rule)
        return f"({text}:={value(attribute, f.value)})"
    attribute = _decoded(f.attribute)
    return f"({attribute}{_COMPARISONS[type(f)]}{value(attribute, f.value)})"


class InvalidFilter(ValueError):
    """
    A filter's string form is not valid (RFC 4515).
    """


def parseFilter(text: str) -> Filter:
    """
    Parse a filter's string form (RFC 4515), as written in configuration
    (access rules, replication) and by tests. The outer parentheses may be
    left out, as OpenLDAP's C{ldap_str2filter} allows.

    @param text: the filter.
    @return: the filter.
    @raise InvalidFilter: saying where it is not valid.
    """
    text = text.strip()
    if not text.startswith("("):
        text = f"({text})"
    parser = _FilterParser(text)
    f = parser.filter()
    if parser.pos != len(text):
        raise InvalidFilter(f"unexpected {text[parser.pos:]!r} after the filter")
    return f


#: The two-character operators of a simple filter item, and their filters.
_OPERATORS: tuple[tuple[str, type[Approx | GreaterOrEqual | LessOrEqual]], ...] = (
    ("~=", Approx), (">=", GreaterOrEqual), ("<=", LessOrEqual))


class _FilterParser:
    """
    A recursive-descent parser of RFC 4515 filters.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _expect(self, char: str) -> None:
        if not self.text.startswith(char, self.pos):
            raise InvalidFilter(f"expected {char!r} at position {self.pos} of {self.text!r}")
        self.pos += 1

    def filter(self) -> Filter:
        self._expect("(")
        char = self.text[self.pos:self.pos + 1]
        if char in ("&", "|"):
            self.pos += 1
            parts = []
            while self.text.startswith("(", self.pos):
                parts.append(self.filter())
            f: Filter = And(tuple(parts)) if char == "&" else Or(tuple(parts))
        elif char == "!":
            self.pos += 1
            f = Not(self.filter())
        else:
            f = self._item()
        self._expect(")")
        return f

    def _item(self) -> Filter:
        end = self.text.find(")", self.pos)
        if end < 0:
            raise InvalidFilter(f"unterminated filter {self.text!r}")
        item = self.text[self.pos:end]
        self.pos = end
        at = item.find(":=")
        if at >= 0 and "=" not in item[:at]:
            return _extensible(item[:at], _unescape(item[at + 2:]))
        for operator, kind in _OPERATORS:
            at = item.find(operator)
            if at >= 0 and "=" not in item[:at]:
                return kind(_attribute(item[:at]), _unescape(item[at + 2:]))
        at = item.find("=")
        if at <= 0:
            raise InvalidFilter(f"not a filter item: {item!r}")
        attribute, text = _attribute(item[:at]), item[at + 1:]
        if text == "*":
            return Present(attribute)
        if "*" not in text:
            return Equality(attribute, _unescape(text))
        pieces = text.split("*")
        found: list[tuple[int, bytes]] = []
        if pieces[0]:
            found.append((INITIAL, _unescape(pieces[0])))
        found.extend((ANY, _unescape(p)) for p in pieces[1:-1] if p)
        if pieces[-1]:
            found.append((FINAL, _unescape(pieces[-1])))
        return Substrings(attribute, tuple(found))


#: An attribute description (RFC 4512 §2.5): a name or OID, then options.
_DESCRIPTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*(;[A-Za-z0-9-]+)*\Z")


def _attribute(text: str) -> bytes:
    if not _DESCRIPTION.match(text):
        raise InvalidFilter(f"not an attribute description: {text!r}")
    return text.encode("utf-8")


def _extensible(left: str, value: bytes) -> Extensible:
    parts = left.split(":")
    attribute = parts[0] or None
    dnAttributes = False
    rule = None
    for part in parts[1:]:
        if part.lower() == "dn" and not dnAttributes and rule is None:
            dnAttributes = True
        elif part and rule is None:
            rule = part
        else:
            raise InvalidFilter(f"not an extensible match: {left!r}")
    if attribute is None and rule is None:
        raise InvalidFilter(f"an extensible match needs a type or a rule: {left!r}")
    return Extensible(None if rule is None else rule.encode("utf-8"),
                      None if attribute is None else _attribute(attribute), value, dnAttributes)


def _unescape(text: str) -> bytes:
    """
    An assertion value from its escaped form (C{\\XX} for each special octet).
    """
    raw = text.encode("utf-8")
    if b"\\" not in raw:
        return raw
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i:i + 1] == b"\\":
            try:
                out.append(int(raw[i + 1:i + 3], 16))
            except ValueError:
                raise InvalidFilter(f"bad escape in {text!r}") from None
            if len(raw[i + 1:i + 3]) != 2:
                raise InvalidFilter(f"bad escape in {text!r}")
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def _decoded(value: bytes) -> str:
    return value.decode("utf-8", "replace")


# Requests

#: StartTLS (RFC 4511 §4.14).
START_TLS = "1.3.6.1.4.1.1466.20037"

#: "Who am I?" (RFC 4532).
WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"

#: Password Modify (RFC 3062).
PASSWORD_MODIFY = "1.3.6.1.4.1.4203.1.11.1"

#: Cancel (RFC 3909).
CANCEL = "1.3.6.1.1.8"


class Request:
    """
    A request of a client.

    @cvar operation: the operation's name as plugins' hooks and the logs
        know it (C{"search"}, C{"modify"}, ...).
    @cvar responseTag: the BER tag of its final response, or C{None} for
        those that get none (Abandon, Unbind).
    @cvar abandonable: whether Abandon and Cancel can stop it (RFC 4511
        §4.11: not Bind, StartTLS or Cancel).
    """

    __slots__ = ()
    operation: ClassVar[str]
    responseTag: ClassVar[int | None]
    abandonable: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class BindRequest(Request):
    """
    A Bind (RFC 4511 §4.2).

    @ivar version: the protocol version the client asks for.
    @ivar dn: the name.
    @ivar password: the simple password, or C{None} for a SASL bind.
    @ivar mechanism: the SASL mechanism, or C{None} for a simple bind.
    @ivar credentials: the SASL credentials, or C{None}.
    """

    operation: ClassVar[str] = "bind"
    responseTag: ClassVar[int | None] = 0x61
    abandonable: ClassVar[bool] = False

    version: int
    dn: bytes
    password: bytes | None = b""
    mechanism: str | None = None
    credentials: bytes | None = None

    @property
    def sasl(self) -> bool:
        """
        Whether it is a SASL bind.
        """
        return self.mechanism is not None


@dataclass(frozen=True, slots=True)
class UnbindRequest(Request):
    """
    An Unbind (RFC 4511 §4.3).
    """

    operation: ClassVar[str] = "unbind"
    responseTag: ClassVar[int | None] = None


@dataclass(frozen=True, slots=True)
class SearchRequest(Request):
    """
    A Search (RFC 4511 §4.5.1).

    @ivar base: the base DN.
    @ivar scope: 0 (base), 1 (one level), 2 (subtree); any other value is
        refused when the search runs.
    @ivar derefAliases: 0 to 3.
    @ivar sizeLimit: the client's size limit; 0 for none.
    @ivar timeLimit: the client's time limit in seconds; 0 for none.
    @ivar typesOnly: whether only attribute types are wanted.
    @ivar filter: the filter.
    @ivar attributes: the attribute selection, as sent.
    """

    operation: ClassVar[str] = "search"
    responseTag: ClassVar[int | None] = 0x65

    base: bytes
    scope: int
    derefAliases: int
    sizeLimit: int
    timeLimit: int
    typesOnly: bool
    filter: Filter
    attributes: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class ModifyRequest(Request):
    """
    A Modify (RFC 4511 §4.6).

    @ivar changes: C{(operation, description, values)}: C{operation} one of
        C{"add"}, C{"delete"}, C{"replace"}, C{"increment"}.
    """

    operation: ClassVar[str] = "modify"
    responseTag: ClassVar[int | None] = 0x67

    dn: bytes
    changes: tuple[tuple[str, str, tuple[bytes, ...]], ...]


@dataclass(frozen=True, slots=True)
class AddRequest(Request):
    """
    An Add (RFC 4511 §4.7).

    @ivar attributes: C{(description, values)}, each with at least one value.
    """

    operation: ClassVar[str] = "add"
    responseTag: ClassVar[int | None] = 0x69

    dn: bytes
    attributes: tuple[tuple[str, tuple[bytes, ...]], ...]


@dataclass(frozen=True, slots=True)
class DeleteRequest(Request):
    """
    A Delete (RFC 4511 §4.8).
    """

    operation: ClassVar[str] = "delete"
    responseTag: ClassVar[int | None] = 0x6B

    dn: bytes


@dataclass(frozen=True, slots=True)
class ModifyDNRequest(Request):
    """
    A Modify DN (RFC 4511 §4.9).
    """

    operation: ClassVar[str] = "rename"
    responseTag: ClassVar[int | None] = 0x6D

    dn: bytes
    newRDN: bytes
    deleteOldRDN: bool
    newSuperior: bytes | None = None


@dataclass(frozen=True, slots=True)
class CompareRequest(Request):
    """
    A Compare (RFC 4511 §4.10).
    """

    operation: ClassVar[str] = "compare"
    responseTag: ClassVar[int | None] = 0x6F

    dn: bytes
    attribute: str
    value: bytes


@dataclass(frozen=True, slots=True)
class AbandonRequest(Request):
    """
    An Abandon (RFC 4511 §4.11).
    """

    operation: ClassVar[str] = "abandon"
    responseTag: ClassVar[int | None] = None

    messageId: int


@dataclass(frozen=True, slots=True)
class ExtendedRequest(Request):
    """
    An Extended request (RFC 4511 §4.12) ldapd's codec does not know: its
    registered handler (L{ldapd.extensions}) decodes the value.
    """

    operation: ClassVar[str] = "extended"
    responseTag: ClassVar[int | None] = 0x78

    name: str
    value: bytes | None = None


@dataclass(frozen=True, slots=True)
class StartTLSRequest(ExtendedRequest):
    """
    StartTLS (RFC 4511 §4.14).
    """

    abandonable: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class WhoAmIRequest(ExtendedRequest):
    """
    "Who am I?" (RFC 4532).
    """


@dataclass(frozen=True, slots=True)
class CancelRequest(ExtendedRequest):
    """
    Cancel (RFC 3909).

    @ivar messageId: the message id of the operation to cancel.
    """

    abandonable: ClassVar[bool] = False

    messageId: int = 0


@dataclass(frozen=True, slots=True)
class PasswordModifyRequest(ExtendedRequest):
    """
    Password Modify (RFC 3062): each field C{None} when absent.
    """

    userIdentity: bytes | None = None
    oldPassword: bytes | None = None
    newPassword: bytes | None = None


class RawControl(NamedTuple):
    """
    A request control as the client sent it, before the Directory decodes
    it with its registration.
    """

    oid: str
    critical: bool
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Message:
    """
    One decoded request PDU.
    """

    messageId: int
    request: Request
    controls: tuple[RawControl, ...] = ()
