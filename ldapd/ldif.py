"""
Streaming reader and writer for the LDAP Data Interchange Format (RFC 2849).

L{parseLDIF} turns an iterable of raw lines, such as a file opened in binary
mode, into L{LDIFRecord} objects one record at a time.  Only the record being
read is held in memory, so seeding a directory from a file with a million
entries costs no more memory than seeding it from a file with one.

L{formatLDIF} writes one content record, choosing the base64 form for every
value that RFC 2849 does not allow to appear verbatim and folding long lines,
so that whatever it writes L{parseLDIF} reads back unchanged.

No part of this module needs Twisted or performs I/O of its own, apart from
reading the local files named by C{attr:< file:///path} values when the
caller allows it.
"""

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.request import url2pathname

from ldapd.schema.parser import isAttributeDescription

__all__ = [
    "LDIFSyntaxError",
    "LDIFRecord",
    "parseLDIF",
    "formatLDIF",
    "formatLine",
    "formatModification",
]

_CONTROL = re.compile(
    rb"([0-9]+(?:\.[0-9]+)*)(?: +(true|false))?(?:(:.*)| *)\Z",
    re.IGNORECASE | re.DOTALL,
)
_NOT_SAFE_CHAR = re.compile(rb"[^\x01-\x09\x0b\x0c\x0e-\x7f]")
_CHANGE_TYPES = frozenset({"add", "delete", "modify", "modrdn", "moddn"})
_MODIFY_OPERATIONS = frozenset({"add", "delete", "replace", "increment"})
# Attribute descriptions that formatLDIF refuses because parseLDIF would read
# them as part of the record's structure rather than as attribute values.
_RESERVED_DESCRIPTIONS = frozenset({"dn", "changetype", "control"})
_FOLD_COLUMN = 76


class LDIFSyntaxError(ValueError):
    """
    LDIF input does not follow RFC 2849.

    @ivar lineNumber: The 1-based number of the physical line where the
        offending (possibly folded) line starts.
    @ivar message: What is wrong, without the line number.
    """

    lineNumber: int
    message: str

    def __init__(self, lineNumber: int, message: str) -> None:
        """
        @param lineNumber: See L{LDIFSyntaxError.lineNumber}.
        @param message: See L{LDIFSyntaxError.message}.
        """
        super().__init__(lineNumber, message)
        self.lineNumber = lineNumber
        self.message = message

    def __str__(self) -> str:
        """
        @return: C{"line N: message"}.
        """
        return f"line {self.lineNumber}: {self.message}"


@dataclass(frozen=True)
class LDIFRecord:
    """
    One record of an LDIF file: either an entry's content or a change to apply.

    @ivar dn: The distinguished name the record is about, decoded from UTF-8.
    @ivar changetype: C{"content"} for a plain content record, otherwise the
        lower-cased change type: C{"add"}, C{"delete"}, C{"modify"},
        C{"modrdn"} or C{"moddn"}.
    @ivar attributes: For content and add records, the attribute descriptions
        (options included, spelled as in the file) paired with their raw
        values, in file order; empty for other records.
    @ivar modifications: For modify records, one
        C{(operation, attributeDescription, values)} triple per modification
        in file order, where operation is C{"add"}, C{"delete"}, C{"replace"}
        or C{"increment"}; empty for other records.
    @ivar newRDN: For modrdn and moddn records, the new RDN; otherwise
        C{None}.
    @ivar deleteOldRDN: For modrdn and moddn records, whether the old RDN
        values are to be removed; otherwise C{False}.
    @ivar newSuperior: For modrdn and moddn records that move the entry, the
        DN of its new parent; otherwise C{None}.
    @ivar controls: For change records, one C{(oid, criticality, value)}
        triple per C{control:} line, where value is C{None} when the line
        gives none.
    @ivar lineNumber: The number of the line holding the record's C{dn:}.
    """

    dn: str
    changetype: str
    attributes: tuple[tuple[str, bytes], ...] = ()
    modifications: tuple[tuple[str, str, tuple[bytes, ...]], ...] = ()
    newRDN: str | None = None
    deleteOldRDN: bool = False
    newSuperior: str | None = None
    controls: tuple[tuple[str, bool, bytes | None], ...] = ()
    lineNumber: int = 0


def parseLDIF(lines: Iterable[bytes], allowFileURLs: bool = False) -> Iterator[LDIFRecord]:
    """
    Read LDIF records lazily from C{lines}.

    Each record is yielded as soon as the blank line ending it (or the end of
    the input) has been read, and nothing from earlier records is kept, so
    C{lines} may be arbitrarily long or even endless.  A leading
    C{version: 1} line, comments and folded lines are handled as RFC 2849
    describes; plain values keep their bytes exactly, trailing spaces
    included, with only the spaces between the colon and the value removed.

    @param lines: Physical lines of LDIF, each with or without its CRLF or LF
        terminator, as produced by iterating over a file opened in binary
        mode.
    @param allowFileURLs: whether C{attr:< file:///path} values are read
        from the named local files. Off by default: an LDIF file from
        elsewhere could otherwise copy any file the reader may read
        (C{/etc/shadow}, a TLS key) into the directory.

    @return: An iterator of the records in input order.

    @raise LDIFSyntaxError: When the input is not valid LDIF, naming the
        line at fault, or holds a URL value that is not allowed.  Records
        before that line have already been yielded.
    """
    record: list[tuple[int, bytes]] = []
    firstLine = True
    for lineNumber, line in _logicalLines(lines):
        # The search finds most lines have no value read from a file.
        if line is not None and not allowFileURLs and b":<" in line:
            rawName, _, rest = line.partition(b":")
            if rest.startswith(b"<"):
                raise LDIFSyntaxError(
                    lineNumber, f"{rawName.decode('utf-8', 'replace')}:< reads its value from a "
                    "file, which is refused unless allowed (ldapd-admin import --allow-file-urls)")
        if line is None:
            if record:
                yield _parseRecord(record)
                record = []
            continue
        if firstLine:
            firstLine = False
            name, rest = _splitLine(lineNumber, line)
            if name.lower() == "version":
                if _keyword(rest) != "1":
                    raise LDIFSyntaxError(
                        lineNumber, f"unsupported LDIF version {_keyword(rest)!r}"
                    )
                continue
        record.append((lineNumber, line))
    if record:
        yield _parseRecord(record)


def formatLDIF(dn: str, attributes: Iterable[tuple[str, Iterable[bytes]]]) -> bytes:
    """
    Write one LDIF content record, ending with the blank line that closes it.

    The DN and every value that is not an RFC 2849 SAFE-STRING (one that
    starts with a space, colon or C{<}, ends with a space, or contains NUL,
    CR, LF or any non-ASCII byte) are written base64-encoded after C{::}.
    Lines longer than 76 columns are folded.

    @param dn: The entry's distinguished name.
    @param attributes: Attribute descriptions paired with their values, in
        the order to write them.

    @return: The record as LF-terminated lines, which L{parseLDIF} reads back
        as the same C{dn} and attributes.

    @raise ValueError: When an attribute description is not a valid RFC 4512
        attribute description, is one of C{dn}, C{changetype} or C{control}
        (which LDIF reserves), or when no attribute has a value.
    """
    out = [_formatLine("dn", dn.encode("utf-8"))]
    for description, values in attributes:
        if _checkedDescription(description).lower() in _RESERVED_DESCRIPTIONS:
            raise ValueError(f"attribute description {description!r} is reserved in LDIF")
        out.extend(_formatLine(description, value) for value in values)
    if len(out) == 1:
        raise ValueError(f"content record for {dn!r} has no attribute values")
    out.append(b"\n")
    return b"".join(out)


def formatLine(description: str, value: bytes) -> bytes:
    """
    Write one C{description: value} line of a record (of a change record,
    say), base64-encoded and folded as in L{formatLDIF}.

    @param description: the attribute description or keyword.
    @param value: the value.
    @return: one or more physical lines, each ending with LF.
    @raise ValueError: if C{description} is not an attribute description.
    """
    return _formatLine(description, value)


def formatModification(operation: str, description: str, values: Iterable[bytes]) -> bytes:
    """
    Write one mod-spec of a modify change record: C{operation: description},
    the values, and the closing C{-}.

    @param operation: C{"add"}, C{"delete"}, C{"replace"} or C{"increment"}.
    @param description: the attribute description.
    @param values: the values, each written as L{formatLine} writes it.
    @return: the lines, each ending with LF.
    @raise ValueError: if C{operation} is not one of those, or
        C{description} is not an attribute description.
    """
    if operation not in _MODIFY_OPERATIONS:
        raise ValueError(f"unknown modify operation {operation!r}")
    return (_formatLine(operation, _checkedDescription(description).encode("ascii"))
            + b"".join(_formatLine(description, v) for v in values) + b"-\n")


def _checkedDescription(description: str) -> str:
    """
    @param description: an attribute description or keyword to write.
    @return: C{description}.
    @raise ValueError: if it is not an attribute description, which could
        not be read back and could break the line it is written on.
    """
    if not isAttributeDescription(description):
        raise ValueError(f"invalid attribute description {description!r}")
    return description


def _logicalLines(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """
    Unfold physical lines into logical lines, dropping comments.

    @param lines: Physical lines, with or without line terminators.

    @return: An iterator of C{(lineNumber, line)} pairs, where lineNumber is
        that of the first physical line and line is C{None} for a blank line.

    @raise LDIFSyntaxError: When a continuation line has no line to continue.
    """
    # The logical line being read, and its pieces when it is folded (most
    # lines are not: they are yielded as they were read).
    pending: bytes | None = None
    pieces: list[bytes] | None = None
    start = 0
    inComment = False
    for lineNumber, raw in enumerate(lines, 1):
        if raw[-1:] == b"\n":
            raw = raw[:-2] if raw[-2:-1] == b"\r" else raw[:-1]
        first = raw[:1]
        if first == b" ":
            if pending is not None:
                if pieces is None:
                    pieces = [pending]
                pieces.append(raw[1:])
            elif not inComment:
                raise LDIFSyntaxError(
                    lineNumber, "continuation line does not follow a line it could continue"
                )
            continue
        if pending is not None:
            yield start, pending if pieces is None else b"".join(pieces)
            pending = pieces = None
        inComment = first == b"#"
        if not raw:
            yield lineNumber, None
        elif not inComment:
            pending = raw
            start = lineNumber
    if pending is not None:
        yield start, pending if pieces is None else b"".join(pieces)


def _splitLine(lineNumber: int, line: bytes) -> tuple[str, bytes]:
    """
    Split a logical line at its first colon.

    @param lineNumber: The line's number, for errors.
    @param line: The unfolded line.

    @return: The attribute description or keyword before the colon, and
        everything after the colon (the value-spec without its colon).

    @raise LDIFSyntaxError: When there is no colon or the part before it is
        not an attribute description.
    """
    name, colon, rest = line.partition(b":")
    if not colon:
        raise LDIFSyntaxError(lineNumber, "expected 'attribute: value' but found no colon")
    text = _DESCRIPTIONS.get(name)
    if text is None:
        text = name.decode("ascii", "replace")
        if not isAttributeDescription(text):
            raise LDIFSyntaxError(lineNumber, f"invalid attribute description {text!r}")
        if len(_DESCRIPTIONS) >= _MAX_DESCRIPTIONS:
            _DESCRIPTIONS.clear()
        _DESCRIPTIONS[name] = text
    return text, rest


#: The attribute descriptions L{_splitLine} read, by their bytes: a file
#: repeats a few dozen on every record. Emptied when full.
_DESCRIPTIONS: dict[bytes, str] = {}
_MAX_DESCRIPTIONS = 1024


def _decodeValue(lineNumber: int, spec: bytes) -> bytes:
    """
    Decode the value-spec following an attribute description's colon.

    @param lineNumber: The line's number, for errors.
    @param spec: What followed the colon: C{" value"}, C{": base64"} or
        C{"< URL"}.

    @return: The value's bytes.

    @raise LDIFSyntaxError: When the base64 is malformed or the URL cannot be
        read.
    """
    if spec.startswith(b":"):
        try:
            return base64.b64decode(spec[1:].strip(b" "), validate=True)
        except binascii.Error as e:
            raise LDIFSyntaxError(lineNumber, f"invalid base64 value: {e}") from e
    if spec.startswith(b"<"):
        return _readURL(lineNumber, spec[1:].strip(b" "))
    return spec.lstrip(b" ")


def _readURL(lineNumber: int, url: bytes) -> bytes:
    """
    Fetch the value named by a C{file:} URL.

    @param lineNumber: The line's number, for errors.
    @param url: The URL as written in the file.

    @return: The file's contents.

    @raise LDIFSyntaxError: When the URL is not a local C{file:} URL or the
        file cannot be read.
    """
    text = url.decode("ascii", "replace")
    parts = urlsplit(text)
    if parts.scheme.lower() != "file":
        raise LDIFSyntaxError(
            lineNumber, f"unsupported URL {text!r}: only file: URLs are supported"
        )
    if parts.netloc not in ("", "localhost"):
        raise LDIFSyntaxError(lineNumber, f"file URL {text!r} names a remote host")
    try:
        with open(url2pathname(parts.path), "rb") as f:
            return f.read()
    except OSError as e:
        raise LDIFSyntaxError(lineNumber, f"cannot read {text!r}: {e.strerror}") from e


def _decodeText(lineNumber: int, spec: bytes, what: str) -> str:
    """
    Decode a value-spec holding a DN or RDN.

    @param lineNumber: The line's number, for errors.
    @param spec: What followed the colon.
    @param what: What the value is, for errors.

    @return: The value as text.

    @raise LDIFSyntaxError: When the value is malformed or not UTF-8.
    """
    try:
        return _decodeValue(lineNumber, spec).decode("utf-8")
    except UnicodeDecodeError as e:
        raise LDIFSyntaxError(lineNumber, f"{what} is not valid UTF-8") from e


def _keyword(spec: bytes) -> str:
    """
    Read a value-spec holding a keyword, such as a change type.

    @param spec: What followed the colon.

    @return: The keyword, without surrounding spaces and lower-cased, since
        RFC 2849's ABNF literals are case-insensitive.
    """
    return spec.strip(b" ").decode("ascii", "replace").lower()


def _parseRecord(lines: list[tuple[int, bytes]]) -> LDIFRecord:
    """
    Parse the logical lines of one record.

    @param lines: C{(lineNumber, line)} pairs, comments already removed.

    @return: The record.

    @raise LDIFSyntaxError: When the record is malformed.
    """
    dnLine, first = lines[0]
    name, rest = _splitLine(dnLine, first)
    if name.lower() != "dn":
        raise LDIFSyntaxError(dnLine, f"record starts with {name!r} instead of dn")
    dn = _decodeText(dnLine, rest, "DN")
    position = 1
    controls = []
    while position < len(lines):
        lineNumber, line = lines[position]
        name, rest = _splitLine(lineNumber, line)
        if name.lower() != "control":
            break
        controls.append(_parseControl(lineNumber, rest))
        position += 1

    changetype = "content"
    changeLine = lines[position - 1][0]
    if position < len(lines):
        changeLine, line = lines[position]
        name, rest = _splitLine(changeLine, line)
        if name.lower() == "changetype":
            changetype = _keyword(rest)
            if changetype not in _CHANGE_TYPES:
                raise LDIFSyntaxError(changeLine, f"unknown changetype {changetype!r}")
            position += 1
    if controls and changetype == "content":
        raise LDIFSyntaxError(changeLine, "control lines must be followed by a changetype")

    body = lines[position:]
    if changetype in ("content", "add"):
        attributes = _parseAttributes(body)
        if not attributes:
            raise LDIFSyntaxError(dnLine, f"record for {dn!r} has no attributes")
        return LDIFRecord(
            dn, changetype, attributes=attributes, controls=tuple(controls), lineNumber=dnLine
        )
    if changetype == "delete":
        if body:
            raise LDIFSyntaxError(body[0][0], "delete record must not contain attribute lines")
        return LDIFRecord(dn, changetype, controls=tuple(controls), lineNumber=dnLine)
    if changetype == "modify":
        return LDIFRecord(
            dn,
            changetype,
            modifications=_parseModifications(body),
            controls=tuple(controls),
            lineNumber=dnLine,
        )
    newRDN, deleteOldRDN, newSuperior = _parseModDN(changeLine, changetype, body)
    return LDIFRecord(
        dn,
        changetype,
        newRDN=newRDN,
        deleteOldRDN=deleteOldRDN,
        newSuperior=newSuperior,
        controls=tuple(controls),
        lineNumber=dnLine,
    )


def _parseControl(lineNumber: int, spec: bytes) -> tuple[str, bool, bytes | None]:
    """
    Parse what follows C{control:}.

    @param lineNumber: The line's number, for errors.
    @param spec: What followed the colon: an OID, an optional criticality
        and an optional value-spec.

    @return: C{(oid, criticality, value)}, value being C{None} if absent.

    @raise LDIFSyntaxError: When the control is malformed.
    """
    match = _CONTROL.match(spec.lstrip(b" "))
    if match is None:
        raise LDIFSyntaxError(lineNumber, "malformed control line")
    oid, criticality, valueSpec = match.groups()
    value = None if valueSpec is None else _decodeValue(lineNumber, valueSpec[1:])
    return oid.decode("ascii"), (criticality or b"").lower() == b"true", value


def _parseAttributes(lines: list[tuple[int, bytes]]) -> tuple[tuple[str, bytes], ...]:
    """
    Parse the attribute lines of a content or add record.

    @param lines: The record's lines after its dn and changetype.

    @return: C{(attributeDescription, value)} pairs in order.

    @raise LDIFSyntaxError: When a line is not an attribute line or is one
        of the structural lines that cannot appear there.
    """
    attributes: list[tuple[str, bytes]] = []
    append = attributes.append
    for lineNumber, line in lines:
        name, rest = _splitLine(lineNumber, line)
        if len(name) in (2, 10):
            lowered = name.lower()
            if lowered == "dn":
                raise LDIFSyntaxError(
                    lineNumber, "dn inside a record; records must be separated by a blank line"
                )
            if lowered == "changetype":
                raise LDIFSyntaxError(lineNumber,
                                      "changetype must directly follow dn and controls")
        # _decodeValue's common case, a plain value, inline.
        append((name, rest.lstrip(b" ") if rest[:1] not in _ENCODED
                else _decodeValue(lineNumber, rest)))
    return tuple(attributes)


#: The first bytes of value-specs that are not plain values (base64, URL).
_ENCODED = frozenset({b":", b"<"})


def _parseModifications(
    lines: list[tuple[int, bytes]],
) -> tuple[tuple[str, str, tuple[bytes, ...]], ...]:
    """
    Parse the body of a modify record: mod-specs, each closed by C{-}.

    @param lines: The record's lines after its changetype.

    @return: C{(operation, attributeDescription, values)} triples in order.

    @raise LDIFSyntaxError: When a modification has an unknown operation,
        a value for a different attribute, or no closing C{-}.
    """
    modifications = []
    remaining = iter(lines)
    for lineNumber, line in remaining:
        if line.rstrip(b" ") == b"-":
            raise LDIFSyntaxError(lineNumber, "'-' does not close a modification")
        name, rest = _splitLine(lineNumber, line)
        operation = name.lower()
        if operation not in _MODIFY_OPERATIONS:
            raise LDIFSyntaxError(
                lineNumber,
                f"expected add:, delete:, replace: or increment: in modify record, found {name!r}",
            )
        description = rest.strip(b" ").decode("ascii", "replace")
        if not isAttributeDescription(description):
            raise LDIFSyntaxError(lineNumber, f"invalid attribute description {description!r}")
        values = []
        for valueLine, line in remaining:
            if line.rstrip(b" ") == b"-":
                break
            name, rest = _splitLine(valueLine, line)
            if name.lower() != description.lower():
                raise LDIFSyntaxError(
                    valueLine, f"value for {name!r} inside the {operation} of {description!r}"
                )
            values.append(_decodeValue(valueLine, rest))
        else:
            raise LDIFSyntaxError(
                lineNumber, f"{operation} of {description!r} is not closed by a '-' line"
            )
        modifications.append((operation, description, tuple(values)))
    return tuple(modifications)


def _parseModDN(
    changeLine: int, changetype: str, lines: list[tuple[int, bytes]]
) -> tuple[str, bool, str | None]:
    """
    Parse the body of a modrdn or moddn record.

    @param changeLine: The number of the changetype line, for errors about
        missing lines.
    @param changetype: C{"modrdn"} or C{"moddn"}, for errors.
    @param lines: The record's lines after its changetype.

    @return: C{(newRDN, deleteOldRDN, newSuperior)}.

    @raise LDIFSyntaxError: When newrdn or deleteoldrdn is missing or
        malformed, or other lines are present.
    """
    expected = ["newrdn", "deleteoldrdn", "newsuperior"]
    found: dict[str, tuple[int, bytes]] = {}
    for lineNumber, line in lines:
        name, rest = _splitLine(lineNumber, line)
        if not expected or name.lower() != expected[0]:
            want = f"{expected[0]}:" if expected else "the end of the record"
            raise LDIFSyntaxError(
                lineNumber, f"expected {want} in {changetype} record, found {name!r}"
            )
        found[expected.pop(0)] = (lineNumber, rest)
    for required in ("newrdn", "deleteoldrdn"):
        if required not in found:
            raise LDIFSyntaxError(changeLine, f"{changetype} record has no {required}:")
    newRDN = _decodeText(*found["newrdn"], "newrdn")
    deleteLine, deleteSpec = found["deleteoldrdn"]
    deleteOldRDN = _keyword(deleteSpec)
    if deleteOldRDN not in ("0", "1"):
        raise LDIFSyntaxError(deleteLine, f"deleteoldrdn must be 0 or 1, not {deleteOldRDN!r}")
    newSuperior = None
    if "newsuperior" in found:
        newSuperior = _decodeText(*found["newsuperior"], "newsuperior")
    return newRDN, deleteOldRDN == "1", newSuperior


def _formatLine(description: str, value: bytes) -> bytes:
    """
    Write one attribute line, base64-encoding and folding as needed.

    @param description: The attribute description.
    @param value: The value.

    @return: One or more physical lines, each ending with LF.

    @raise ValueError: When C{description} is not an attribute description.
    """
    name = _checkedDescription(description).encode("ascii")
    if not value:
        line = name + b":"
    elif (
        value.startswith((b" ", b":", b"<")) or value.endswith(b" ") or _NOT_SAFE_CHAR.search(value)
    ):
        line = name + b":: " + base64.b64encode(value)
    else:
        line = name + b": " + value
    chunks = [line[:_FOLD_COLUMN]]
    chunks.extend(
        b" " + line[i : i + _FOLD_COLUMN - 1]
        for i in range(_FOLD_COLUMN, len(line), _FOLD_COLUMN - 1)
    )
    return b"\n".join(chunks) + b"\n"
