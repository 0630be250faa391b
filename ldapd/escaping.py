"""
Building filters and DNs from untrusted values.

An application that puts a user's input into a filter or a DN by string
concatenation lets that user rewrite the query: C{*)(uid=*))(|(uid=*} turns
C{(uid=<input>)} into a filter that matches everyone. Build them with these
helpers instead; they escape every value as RFC 4515 (filters) and RFC 4514
(DNs) require, so a value can only ever be a value. ldapd's own plugins and
its proxy backend use them too.

    >>> buildFilter("(&(uid={})(objectClass=person))", "*)(uid=*))(|(uid=*")
    '(&(uid=\\\\2a\\\\29\\\\28uid=\\\\2a\\\\29\\\\29\\\\28|\\\\28uid=\\\\2a)(objectClass=person))'
"""

from __future__ import annotations

import re
from typing import Callable

from ldapd.dn import escapeValue as _escapeDNText

__all__ = ["buildDN", "buildFilter", "escapeControl", "escapeDNValue", "escapeFilterValue"]

#: Every control character (C0, DEL, C1) and Unicode's line and paragraph
#: separators: what a terminal or a line-oriented reader may take for the
#: end of a line, or for a command.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: The same, but for LF and TAB, which a multi-line log entry keeps.
_CONTROL_BUT_LF_TAB = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")

_FILTER_SPECIAL = frozenset("*()\\\x00")
#: Any of those characters.
_FILTER_SPECIAL_ANY = re.compile("[" + re.escape("".join(sorted(_FILTER_SPECIAL))) + "]")


def escapeFilterValue(value: str | bytes) -> str:
    """
    Escape a value for an RFC 4515 filter string.

    @param value: the raw value; bytes that are not UTF-8 are escaped one by one.
    @return: the value with C{*}, C{(}, C{)}, C{\\} and NUL (and any byte of an
        invalid UTF-8 sequence) written as C{\\XX}.
    """
    if isinstance(value, str):
        raw = value.encode("utf-8")
    else:
        # A request's values, bytes already, are taken as they are.
        raw = value if type(value) is bytes else bytes(value)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(
            f"\\{b:02x}" if b >= 0x80 or chr(b) in _FILTER_SPECIAL else chr(b) for b in raw
        )
    # Most values (the access log writes every search's) have nothing to
    # escape.
    if _FILTER_SPECIAL_ANY.search(text) is None:
        return text
    return "".join(f"\\{ord(c):02x}" if c in _FILTER_SPECIAL else c for c in text)


def _controlEscape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escapeControl(text: str, multiline: bool = False) -> str:
    """
    Escape the control characters of untrusted text written into a
    line-oriented record (a log line, a diagnostic message), so that the
    text cannot end the line and forge the next one, nor send a terminal
    escape sequence to whoever reads the record.

    @param text: the text.
    @param multiline: whether to leave LF and TAB alone, for a writer that
        continues a record over lines of its own (a log entry's LF followed
        by a TAB).
    @return: C{text} with each such character written C{\\xNN} (or
        C{\\uNNNN}); other characters, backslashes included, unchanged.
    """
    # Every character either pattern matches is one str.isprintable()
    # refuses (categories Cc, Zl, Zp), and that check costs a fraction of
    # the search: the access log quotes two or three values per operation.
    if text.isprintable():
        return text
    pattern = _CONTROL_BUT_LF_TAB if multiline else _CONTROL
    if pattern.search(text) is None:
        return text
    return pattern.sub(_controlEscape, text)


def escapeDNValue(value: str | bytes) -> str:
    """
    Escape a value for an RFC 4514 DN string (one attribute value of an RDN).

    @param value: the raw value; bytes that are not UTF-8 are written as hex pairs.
    @return: the escaped value.
    """
    if isinstance(value, str):
        return _escapeDNText(value)
    try:
        return _escapeDNText(bytes(value).decode("utf-8"))
    except UnicodeDecodeError:
        return "".join(f"\\{b:02X}" for b in bytes(value))


def _fill(template: str, values: tuple[str | bytes, ...], escape: Callable[[str | bytes], str]) -> str:
    parts = template.split("{}")
    if len(parts) != len(values) + 1:
        raise ValueError(f"template has {len(parts) - 1} placeholders for {len(values)} values")
    out = [parts[0]]
    for value, part in zip(values, parts[1:], strict=True):
        out.append(escape(value))
        out.append(part)
    return "".join(out)


def buildFilter(template: str, *values: str | bytes) -> str:
    """
    Fill a trusted filter template's C{{}} placeholders with escaped values.

    @param template: the filter, with one C{{}} per value (no other braces).
    @param values: the untrusted values, in order.
    @return: the filter string.
    @raise ValueError: if the number of placeholders and values differ.
    """
    return _fill(template, values, escapeFilterValue)


def buildDN(template: str, *values: str | bytes) -> str:
    """
    Fill a trusted DN template's C{{}} placeholders with escaped values.

    @param template: the DN, with one C{{}} per value, each standing for a
        whole attribute value (C{"uid={},ou=people,dc=example,dc=com"}).
    @param values: the untrusted values, in order.
    @return: the DN string.
    @raise ValueError: if the number of placeholders and values differ.
    """
    return _fill(template, values, escapeDNValue)
