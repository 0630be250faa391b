"""
A parser for schema descriptions in RFC 4512 form and for ldapd's schema files.

A schema file holds C{attributeTypes:} and C{objectClasses:} definitions, one per
line, continued on following lines that begin with white space; C{#} starts a
comment line. The same descriptions are what cn=Subschema publishes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

__all__ = ["SchemaError", "isAttributeDescription", "parseDescription", "readSchemaFile"]

_KEYSTRING = r"[A-Za-z][A-Za-z0-9-]*"
_NUMBER = r"(?:0|[1-9][0-9]*)"
_ATTRIBUTE_DESCRIPTION = re.compile(
    rf"(?:{_KEYSTRING}|{_NUMBER}(?:\.{_NUMBER})+)(?:;{_KEYSTRING})*\Z"
)


def isAttributeDescription(text: str) -> bool:
    """
    Whether C{text} is an attribute description as RFC 4512 §2.5 spells
    one: a C{descr} or C{numericoid}, then options, each a C{keystring}
    (a letter, then letters, digits and hyphens).

    Nothing else may name an attribute: a description is written verbatim
    into LDIF, logs and diagnostics, where a space, a colon or a line break
    would change the structure of what is written.

    @param text: the description, as a client or a file wrote it.
    @return: C{True} if it has that form.
    """
    return _ATTRIBUTE_DESCRIPTION.match(text) is not None


class SchemaError(ValueError):
    """
    A schema definition is malformed or refers to something undefined.

    @ivar where: C{"file:line"} of the definition, or C{""}.
    """

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


_LIST_KEYWORDS = {"NAME", "SUP", "MUST", "MAY", "APPLIES"}
_FLAG_KEYWORDS = {
    "OBSOLETE",
    "SINGLE-VALUE",
    "COLLECTIVE",
    "NO-USER-MODIFICATION",
    "ABSTRACT",
    "STRUCTURAL",
    "AUXILIARY",
}


def _tokens(text: str) -> Iterator[str]:
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()$":
            yield c
            i += 1
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise SchemaError("unterminated quoted string")
            yield text[i : end + 1]
            i = end + 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in "()$'":
                i += 1
            yield text[start:i]


def _unquote(token: str) -> str:
    if len(token) < 2 or token[0] != "'" or token[-1] != "'":
        raise SchemaError(f"expected a quoted string, got {token!r}")
    return token[1:-1].replace("\\27", "'").replace("\\5C", "\\").replace("\\5c", "\\")


def parseDescription(text: str) -> dict[str, Any]:
    """
    Parse one description of RFC 4512 §4.1: AttributeTypeDescription,
    ObjectClassDescription, and the others cn=Subschema publishes.

    @param text: the description, C{( oid KEYWORD value ... )}.
    @return: C{"OID"} mapped to the numeric OID, each list keyword (NAME, SUP,
        MUST, MAY, APPLIES) to a list of strings, each flag to C{True}, and every other
        keyword (DESC, EQUALITY, SYNTAX, USAGE, X-...) to its string value
        (typed C{Any}: the type of a value follows from its keyword).
    @raise SchemaError: if the text is not a description.
    """
    tokens = list(_tokens(text))
    if len(tokens) < 3 or tokens[0] != "(" or tokens[-1] != ")":
        raise SchemaError("a description must be enclosed in parentheses")
    body = tokens[1:-1]
    result: dict[str, Any] = {"OID": body[0]}
    i = 1
    while i < len(body):
        keyword = body[i]
        i += 1
        if keyword in _FLAG_KEYWORDS:
            result[keyword] = True
            continue
        if i >= len(body):
            raise SchemaError(f"{keyword} has no value")
        if body[i] == "(":
            end = body.index(")", i) if ")" in body[i:] else -1
            if end < 0:
                raise SchemaError(f"unbalanced parentheses after {keyword}")
            values = [v for v in body[i + 1 : end] if v != "$"]
            i = end + 1
        else:
            values = [body[i]]
            i += 1
        values = [_unquote(v) if v.startswith("'") else v for v in values]
        if keyword in _LIST_KEYWORDS or keyword.startswith("X-"):
            result[keyword] = values
        elif len(values) != 1:
            raise SchemaError(f"{keyword} takes one value")
        else:
            result[keyword] = values[0]
    return result


def readSchemaFile(path: Path) -> Iterator[tuple[str, str, str]]:
    """
    Read the definitions of a schema file.

    @param path: the file.
    @return: an iterator of C{(kind, description, "file:line")}, where kind is
        C{"attributeTypes"} or C{"objectClasses"}.
    @raise SchemaError: for a line that is neither a comment, a definition nor
        a continuation.
    """
    current: list[str] = []
    kind = ""
    start = 0
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace():
                if not current:
                    raise SchemaError("continuation line without a definition", f"{path}:{number}")
                current.append(line.strip())
                continue
            if current:
                yield kind, " ".join(current), f"{path}:{start}"
            key, sep, rest = line.partition(":")
            if not sep or key.strip().lower() not in ("attributetypes", "objectclasses"):
                raise SchemaError(
                    "expected 'attributeTypes:' or 'objectClasses:'", f"{path}:{number}"
                )
            kind = "attributeTypes" if key.strip().lower() == "attributetypes" else "objectClasses"
            current = [rest.strip()]
            start = number
    if current:
        yield kind, " ".join(current), f"{path}:{start}"
