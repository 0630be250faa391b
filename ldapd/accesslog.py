"""
The access log: one structured line per operation, with the request and its
result in the forms admins grep for in 389 Directory Server's access log::

    conn=3 op=2 SRCH base="ou=people,dc=example,dc=com" scope=2 filter="(uid=a*)" \
        attrs=ALL RESULT err=0 tag=101 nentries=5 etime=0.001204 \
        authzdn="uid=alice,ou=people,dc=example,dc=com" peer=127.0.0.1:40112

The line (L{ACCESS_LOG_FORMAT}) is the event's C{accessLine}, and every part
is also a field of the L{twisted.logger} event (C{conn}, C{msgid},
C{operation}, C{tag}, C{err}, C{nentries}, C{etime}, C{authzDN}, C{peer},
C{target} and per operation C{scope}, C{filter}, C{attributes}, C{newDN},
C{oid}), so that C{twist --log-format json} writes them as JSON.
Writes name the attributes they change, never their values; values
asserted on password attributes are replaced by C{***} in logged filters.
Quoted values have their control characters escaped (C{\\x0d}), so that a
client's DN or filter cannot end the line and forge another.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from ldapd.escaping import escapeControl, escapeFilterValue
from ldapd.operation import Operation

__all__ = ["ACCESS_LOG_FORMAT", "describeRequest", "filterText", "logResult"]

_log = Logger(namespace="ldapd.access")

#: The names slapd logs operations under.
_NAMES = {
    "bind": "BIND",
    "search": "SRCH",
    "compare": "CMP",
    "add": "ADD",
    "delete": "DEL",
    "modify": "MOD",
    "rename": "MODRDN",
    "extended": "EXT",
}

#: Attribute types whose values never appear in a logged filter (lower-cased).
_SECRET = frozenset({"userpassword", "authpassword", "2.5.4.35", "1.3.6.1.4.1.4203.1.3.4"})

_COMPARISONS = {
    "LDAPFilter_equalityMatch": "=",
    "LDAPFilter_greaterOrEqual": ">=",
    "LDAPFilter_lessOrEqual": "<=",
    "LDAPFilter_approxMatch": "~=",
}

#: The format of the access log line; the request's own fields follow it.
ACCESS_LOG_FORMAT = (
    "conn={conn} op={msgid} {operation}{details} RESULT err={err} tag={tag} "
    "nentries={nentries} etime={etime:.6f} authzdn={authzQuoted} peer={peer}"
)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def filterText(f: Any) -> str:
    """
    A decoded filter in RFC 4515 string form, for the log, with the values
    asserted on password attributes replaced by C{***}.

    @param f: an ldaptor C{LDAPFilter_*}.
    @return: the text.
    """
    kind = type(f).__name__
    if kind in ("LDAPFilter_and", "LDAPFilter_or"):
        return "(" + ("&" if kind == "LDAPFilter_and" else "|") + "".join(filterText(p) for p in f) + ")"
    if kind == "LDAPFilter_not":
        return f"(!{filterText(f.value)})"
    if kind == "LDAPFilter_present":
        return f"({_text(f.value)}=*)"

    def value(attribute: str, raw: Any) -> str:
        return "***" if attribute.split(";")[0].lower() in _SECRET else escapeFilterValue(raw)

    if kind in _COMPARISONS:
        attribute = _text(f.attributeDesc.value)
        return f"({attribute}{_COMPARISONS[kind]}{value(attribute, f.assertionValue.value)})"
    if kind == "LDAPFilter_substrings":
        attribute = _text(f.type)
        initial = final = ""
        middle = []
        for piece in f.substrings:
            text = value(attribute, piece.value)
            pieceKind = type(piece).__name__
            if pieceKind.endswith("initial"):
                initial = text
            elif pieceKind.endswith("final"):
                final = text
            else:
                middle.append(text)
        return f"({attribute}={initial}*{''.join(m + '*' for m in middle)}{final})"
    if kind == "LDAPFilter_extensibleMatch":
        attribute = _text(f.type.value) if f.type is not None else ""
        rule = f":{_text(f.matchingRule.value)}" if f.matchingRule is not None else ""
        dn = ":dn" if f.dnAttributes and f.dnAttributes.value else ""
        return f"({attribute}{dn}{rule}:={value(attribute, f.matchValue.value)})"
    return "(?)"


def describeRequest(name: str, request: Any) -> dict[str, Any]:
    """
    The fields that say what an operation asked for, without secrets.

    @param name: the operation's name (C{"search"}, C{"modify"}, ...).
    @param request: the ldaptor request.
    @return: C{target} and the operation's own fields.
    """
    if name == "search":
        return {
            "target": _text(request.baseObject),
            "scope": request.scope,
            "filter": filterText(request.filter),
            "attributes": [_text(a) for a in request.attributes],
        }
    if name == "bind":
        return {"target": _text(request.dn), "method": "SASL" if request.sasl else "simple"}
    if name == "compare":
        return {"target": _text(request.entry),
                "attributes": [_text(request.ava.attributeDesc.value)]}
    if name == "add":
        names = []
        for item in request.attributes:
            parts = getattr(item, "data", item)
            try:
                names.append(_text(parts[0].value))
            except (IndexError, TypeError, AttributeError):
                continue
        return {"target": _text(request.entry), "attributes": names}
    if name == "modify":
        names = []
        for change in request.modification or ():
            try:
                names.append(_text(change[1][0].value))
            except (IndexError, TypeError, AttributeError):
                continue
        return {"target": _text(request.object), "attributes": names}
    if name == "delete":
        return {"target": _text(request.value)}
    if name == "rename":
        return {"target": _text(request.entry), "newDN": _text(request.newrdn),
                "newSuperior": _text(request.newSuperior) if request.newSuperior else ""}
    return {"target": "", "oid": _text(getattr(request, "requestName", ""))}


def _quote(value: str) -> str:
    # A DN or filter may hold any character: a CR or LF in one would end
    # the line under cat and let the client write a forged line after it.
    return '"' + escapeControl(value.replace("\\", "\\\\").replace('"', '\\"')) + '"'


#: How each operation's request is written, 389-style: (field, label) pairs.
_REQUEST_PARTS = {
    "search": (("target", "base"), ("scope", "scope"), ("filter", "filter"), ("attributes", "attrs")),
    "bind": (("target", "dn"), ("method", "method")),
    "compare": (("target", "dn"), ("attributes", "attr")),
    "add": (("target", "dn"), ("attributes", "attrs")),
    "delete": (("target", "dn"),),
    "modify": (("target", "dn"), ("attributes", "attrs")),
    "rename": (("target", "dn"), ("newDN", "newrdn"), ("newSuperior", "newsuperior")),
    "extended": (("oid", "oid"),),
}


def _details(name: str, fields: dict[str, Any]) -> str:
    parts = []
    for key, label in _REQUEST_PARTS[name]:
        value = fields.get(key)
        if key == "attributes":
            value = " ".join(value) if value else ("ALL" if name == "search" else "")
            if value == "ALL":
                parts.append(" attrs=ALL")
                continue
        if value is None or value == "" and key != "target":
            continue
        parts.append(f" {label}={value}" if isinstance(value, int) else f" {label}={_quote(value)}")
    return "".join(parts)


def logResult(op: Operation, name: str, tag: int, code: int, nentries: int, etime: float,
              logger: Logger = _log) -> None:
    """
    Log one operation's result.

    @param op: the operation.
    @param name: its name (C{"search"}, ...).
    @param tag: the response's protocol op tag.
    @param code: the result code.
    @param nentries: the search entries sent.
    @param etime: the seconds it took.
    @param logger: where to log.
    """
    fields = describeRequest(name, op.request)
    identity = op.connection.identity if name == "bind" else op.identity
    authzDN = str(identity.dn) if identity.dn is not None else ""
    event = dict(
        conn=op.connection.id,
        msgid=op.messageId,
        operation=_NAMES[name],
        tag=tag,
        err=code,
        nentries=nentries,
        etime=etime,
        authzDN=authzDN,
        peer=op.connection.peer,
        **fields,
    )
    # The line is formatted here, by str.format, once: the logger's own
    # formatting of a format with a dozen fields (string.Formatter, in
    # Python) cost more than the search it described, and flattening them
    # all for a JSON log as much again.
    line = ACCESS_LOG_FORMAT.format(
        authzQuoted=_quote(authzDN), details=_details(name, fields), **event
    )
    logger.info("{accessLine}", accessLine=line, **event)
