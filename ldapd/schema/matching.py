"""
Matching rules: the one normalisation of attribute values.

Every comparison ldapd makes between values — search filters, index keys,
Compare, duplicate-value checks on writes and DN equality — goes through the
rules here. A rule turns a raw value into a key; two values match when their
keys are equal, and ordering rules compare keys. A value that does not conform
to the rule's syntax raises L{InvalidValue}: in a filter that makes the
assertion Undefined (RFC 4511 §4.5.1.7), on a write it is invalidAttributeSyntax.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from ldapd.gentime import InvalidTime, parseTime

__all__ = [
    "InvalidValue",
    "MatchingRule",
    "RULES",
    "prepareString",
    "soundex",
    "substringPiece",
]


class InvalidValue(ValueError):
    """
    A value does not conform to the syntax a matching rule expects.
    """


@dataclass(frozen=True)
class MatchingRule:
    """
    A matching rule (RFC 4517).

    @ivar oid: the rule's numeric OID.
    @ivar name: the rule's name, e.g. C{caseIgnoreMatch}.
    @ivar kind: C{"equality"}, C{"ordering"} or C{"substr"}.
    @ivar syntax: the OID of the assertion syntax, published in cn=Subschema.
    @ivar normalize: maps a raw value to its key; raises L{InvalidValue}.
        DN-valued rules are bound to a schema by L{ldapd.schema.Schema}, which
        passes the schema as a second argument.
    @ivar needsSchema: whether C{normalize} takes the schema as second argument.
    """

    oid: str
    name: str
    kind: str
    syntax: str
    normalize: Callable[..., Any]
    needsSchema: bool = False

    def describe(self) -> str:
        """
        @return: the MatchingRuleDescription (RFC 4512 §4.1.3) of this rule.
        """
        return f"( {self.oid} NAME '{self.name}' SYNTAX {self.syntax} )"


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidValue("value is not valid UTF-8") from None


def prepareString(value: str, caseFold: bool) -> str:
    """
    Prepare a string for matching as RFC 4518 does, in the common subset slapd
    implements: Unicode NFKC, optional case folding, and insignificant space
    handling (leading and trailing space removed, inner runs of space as one).

    @param value: the string.
    @param caseFold: whether case is insignificant.
    @return: the prepared string.
    """
    value = unicodedata.normalize("NFKC", value)
    if caseFold:
        value = value.casefold()
    # Splitting at whitespace (what str.isspace calls space, as the
    # regular expression \s) drops it at both ends and between words alike.
    return " ".join(value.split())


def _caseIgnore(value: bytes) -> str:
    return prepareString(_text(value), True)


def _caseExact(value: bytes) -> str:
    return prepareString(_text(value), False)


def _ia5(value: bytes) -> str:
    if not value.isascii():
        raise InvalidValue("value is not an IA5 string")
    return " ".join(value.decode("ascii").split())


def _caseIgnoreIA5(value: bytes) -> str:
    return _ia5(value).lower()


def _numericString(value: bytes) -> str:
    text = value.decode("ascii", "replace").replace(" ", "")
    if not text.isdigit():
        raise InvalidValue("value is not a numeric string")
    return text


def _telephoneNumber(value: bytes) -> str:
    return _caseIgnore(value).replace(" ", "").replace("-", "")


def _integer(value: bytes) -> int:
    if not re.fullmatch(rb"0|-?[1-9][0-9]*", value):
        raise InvalidValue("value is not an integer")
    return int(value)


def _boolean(value: bytes) -> bool:
    if value == b"TRUE":
        return True
    if value == b"FALSE":
        return False
    raise InvalidValue("value is not TRUE or FALSE")


def _generalizedTime(value: bytes) -> datetime:
    try:
        return parseTime(value)
    except InvalidTime as e:
        raise InvalidValue(f"value is {e}") from None


def _octetString(value: bytes) -> bytes:
    return value


def _uuid(value: bytes) -> str:
    text = value.decode("ascii", "replace").lower()
    if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text):
        raise InvalidValue("value is not a UUID")
    return text


def _oid(value: bytes, schema: Any) -> str:
    text = value.decode("ascii", "replace").strip()
    if not text:
        raise InvalidValue("value is not an OID")
    return schema.resolveOID(text)


def _dn(value: bytes, schema: Any) -> str:
    from ldapd.dn import InvalidDN

    try:
        return schema.dnKey(value)  # type: ignore[no-any-return]
    except InvalidDN as e:
        raise InvalidValue(str(e)) from None


def _nameAndOptionalUID(value: bytes, schema: Any) -> tuple[str, str]:
    dnPart, sep, uid = value.rpartition(b"#")
    if not sep or not re.fullmatch(rb"'[01]*'B", uid):
        dnPart, uid = value, b""
    return _dn(dnPart, schema), uid.decode("ascii")


#: Substrings rules whose keys drop every space.
_SPACELESS_SUBSTRINGS = frozenset({"2.5.13.10", "2.5.13.21"})


def substringPiece(rule: MatchingRule, value: bytes) -> Any:
    """
    Normalise one piece of a substrings assertion.

    A space next to a wildcard is significant (RFC 4518 §2.6.1): C{(cn=* *)}
    asks for an inner space and C{(cn=bob *)} for a whole word C{bob}. The rule
    strips such spaces, as it does for values; one is kept at either end where
    the piece had any, except by the rules that ignore spaces altogether
    (numeric strings, telephone numbers).

    @param rule: a substrings rule.
    @param value: the raw piece.
    @return: the key to look for in the values' keys.
    @raise InvalidValue: if the piece does not conform to the rule.
    """
    key = rule.normalize(value)
    if rule.oid in _SPACELESS_SUBSTRINGS or not isinstance(key, str):
        return key
    text = unicodedata.normalize("NFKC", _text(value))
    if not key:
        return " " if text else key
    if text[0].isspace():
        key = " " + key
    if text[-1].isspace():
        key += " "
    return key


_DIRECTORY_STRING = "1.3.6.1.4.1.1466.115.121.1.15"
_IA5_STRING = "1.3.6.1.4.1.1466.115.121.1.26"
_SUBSTRING_ASSERTION = "1.3.6.1.4.1.1466.115.121.1.58"


def _rules() -> dict[str, MatchingRule]:
    s = "1.3.6.1.4.1.1466.115.121.1."
    table: list[tuple[str, str, str, str, Callable[..., Any], bool]] = [
        ("2.5.13.0", "objectIdentifierMatch", "equality", s + "38", _oid, True),
        ("2.5.13.1", "distinguishedNameMatch", "equality", s + "12", _dn, True),
        ("2.5.13.2", "caseIgnoreMatch", "equality", _DIRECTORY_STRING, _caseIgnore, False),
        ("2.5.13.3", "caseIgnoreOrderingMatch", "ordering", _DIRECTORY_STRING, _caseIgnore, False),
        ("2.5.13.4", "caseIgnoreSubstringsMatch", "substr", _SUBSTRING_ASSERTION, _caseIgnore, False),
        ("2.5.13.5", "caseExactMatch", "equality", _DIRECTORY_STRING, _caseExact, False),
        ("2.5.13.6", "caseExactOrderingMatch", "ordering", _DIRECTORY_STRING, _caseExact, False),
        ("2.5.13.7", "caseExactSubstringsMatch", "substr", _SUBSTRING_ASSERTION, _caseExact, False),
        ("2.5.13.8", "numericStringMatch", "equality", s + "36", _numericString, False),
        ("2.5.13.9", "numericStringOrderingMatch", "ordering", s + "36", _numericString, False),
        ("2.5.13.10", "numericStringSubstringsMatch", "substr", _SUBSTRING_ASSERTION, _numericString, False),
        ("2.5.13.11", "caseIgnoreListMatch", "equality", s + "41", _caseIgnore, False),
        ("2.5.13.12", "caseIgnoreListSubstringsMatch", "substr", _SUBSTRING_ASSERTION, _caseIgnore, False),
        ("2.5.13.13", "booleanMatch", "equality", s + "7", _boolean, False),
        ("2.5.13.14", "integerMatch", "equality", s + "27", _integer, False),
        ("2.5.13.15", "integerOrderingMatch", "ordering", s + "27", _integer, False),
        ("2.5.13.16", "bitStringMatch", "equality", s + "6", _octetString, False),
        ("2.5.13.17", "octetStringMatch", "equality", s + "40", _octetString, False),
        ("2.5.13.18", "octetStringOrderingMatch", "ordering", s + "40", _octetString, False),
        ("2.5.13.20", "telephoneNumberMatch", "equality", s + "50", _telephoneNumber, False),
        ("2.5.13.21", "telephoneNumberSubstringsMatch", "substr",
         _SUBSTRING_ASSERTION, _telephoneNumber, False),
        ("2.5.13.22", "presentationAddressMatch", "equality", s + "43", _octetString, False),
        ("2.5.13.23", "uniqueMemberMatch", "equality", s + "34", _nameAndOptionalUID, True),
        ("2.5.13.24", "protocolInformationMatch", "equality", s + "42", _octetString, False),
        ("2.5.13.27", "generalizedTimeMatch", "equality", s + "24", _generalizedTime, False),
        ("2.5.13.28", "generalizedTimeOrderingMatch", "ordering", s + "24", _generalizedTime, False),
        ("2.5.13.29", "integerFirstComponentMatch", "equality", s + "27", _caseExact, False),
        ("2.5.13.30", "objectIdentifierFirstComponentMatch", "equality", s + "38", _caseIgnore, False),
        ("2.5.13.34", "certificateExactMatch", "equality", "1.3.6.1.1.15.1", _octetString, False),
        ("2.5.13.31", "directoryStringFirstComponentMatch", "equality",
         _DIRECTORY_STRING, _caseIgnore, False),
        ("1.3.6.1.4.1.1466.109.114.1", "caseExactIA5Match", "equality", _IA5_STRING, _ia5, False),
        ("1.3.6.1.4.1.1466.109.114.2", "caseIgnoreIA5Match", "equality", _IA5_STRING, _caseIgnoreIA5, False),
        ("1.3.6.1.4.1.1466.109.114.3", "caseIgnoreIA5SubstringsMatch", "substr",
         _SUBSTRING_ASSERTION, _caseIgnoreIA5, False),
        ("1.3.6.1.4.1.4203.1.2.1", "caseExactIA5SubstringsMatch", "substr",
         _SUBSTRING_ASSERTION, _ia5, False),
        ("1.3.6.1.1.16.2", "UUIDMatch", "equality", "1.3.6.1.1.16.1", _uuid, False),
        ("1.3.6.1.1.16.3", "UUIDOrderingMatch", "ordering", "1.3.6.1.1.16.1", _uuid, False),
        ("1.3.6.1.4.1.4203.666.11.2.2", "CSNMatch", "equality",
         "1.3.6.1.4.1.4203.666.11.2.1", _caseExact, False),
        ("1.3.6.1.4.1.4203.666.11.2.3", "CSNOrderingMatch", "ordering",
         "1.3.6.1.4.1.4203.666.11.2.1", _caseExact, False),
        ("1.3.6.1.4.1.4203.666.4.12", "authzMatch", "equality",
         "1.3.6.1.4.1.4203.666.2.7", _caseExact, False),
    ]
    rules = {}
    for oid, name, kind, syntax, normalize, needsSchema in table:
        rule = MatchingRule(oid, name, kind, syntax, normalize, needsSchema)
        rules[name.lower()] = rules[oid] = rule
    return rules


#: Every matching rule ldapd implements, by lower-case name and by OID.
RULES: dict[str, MatchingRule] = _rules()


# Vowels (and y) code as 0: they separate letters of equal code and are then dropped;
# h and w are dropped at once, so letters of equal code around them merge.
_SOUNDEX = str.maketrans("bfpvcgjkqsxzdtlmnraeiouy", "111122222222334556000000", "hw")


def soundex(word: str) -> str:
    """
    The American Soundex code of a word (Knuth's definition: C{robert} and
    C{rupert} are C{r163}, C{tymczak} is C{t522}, C{ashcraft} is C{a261}), the
    phonetic key of approximate matching.

    @param word: one prepared (case-folded) word.
    @return: a four-character code, or the word itself when it has no letters.
    """
    letters = [c for c in word if "a" <= c <= "z"]
    if not letters:
        return word
    first = letters[0]
    code = []
    previous = first.translate(_SOUNDEX)
    for d in "".join(letters[1:]).translate(_SOUNDEX):
        if d != previous and d != "0":
            code.append(d)
        previous = d
    return (first + "".join(code) + "000")[:4]
