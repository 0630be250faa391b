"""
The access log: one structured line per operation, with the request and its
result in the forms admins grep for in 389 Directory Server's access log::

    conn=3 op=2 SRCH base="ou=people,dc=example,dc=com" scope=2 filter="(uid=a*)" \
        attrs=ALL RESULT err=0 tag=101 nentries=5 etime=0.001204 \
        authzdn="uid=alice,ou=people,dc=example,dc=com" peer=127.0.0.1:40112

The line (L{ACCESS_LOG_FORMAT}) is the event's C{accessLine}, and every part
is also a field of the C{twisted.logger} event (C{conn}, C{msgid},
C{operation}, C{tag}, C{err}, C{nentries}, C{etime}, C{authzDN}, C{peer},
C{target} and per operation C{scope}, C{filter}, C{attributes}, C{newDN},
C{oid}), so that C{twist --log-format json} writes them as JSON. An
operation with the Session Tracking control gets C{session} too: the
session's source address, name and tracking identifier as the client gave
them (C{session="192.0.2.7 app.example.com alice"}).
Writes name the attributes they change, never their values; values
asserted on password attributes are replaced by C{***} in logged filters.
Quoted values have their control characters escaped (C{\\x0d}), so that a
client's DN or filter cannot end the line and forge another.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from twisted.logger import Logger, LogLevel

from ldapd import requests
from ldapd.controls import SESSION_TRACKING
from ldapd.escaping import escapeControl
from ldapd.operation import Operation
from ldapd.requests import Filter

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

def _accessLine(event: Mapping[str, Any], details: str, authzQuoted: str) -> str:
    """
    @return: the access log line of an operation's event, with the
        request's details and the quoted authorization DN. Written out as
        an f-string: C{str.format}'s parsing of a format and its dozen
        keyword arguments took three times as long.
    """
    return (f"conn={event['conn']} op={event['msgid']} {event['operation']}{details} RESULT "
            f"err={event['err']} tag={event['tag']} nentries={event['nentries']} "
            f"etime={event['etime']:.6f} authzdn={authzQuoted} peer={event['peer']}")


class _Placeholder:
    """
    A field of the event that formats as its own C{str.format} field, so
    that L{_accessLine} writes out its format (L{ACCESS_LOG_FORMAT}).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __format__(self, spec: str) -> str:
        return "{" + self.name + (":" + spec if spec else "") + "}"


class _Placeholders(dict[str, _Placeholder]):
    def __missing__(self, name: str) -> _Placeholder:
        return _Placeholder(name)


#: The format of the access log line (L{_accessLine}'s, as C{str.format}
#: takes it); the request's own fields follow it.
ACCESS_LOG_FORMAT = _accessLine(_Placeholders(), "{details}", "{authzQuoted}")




def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def filterText(f: Filter) -> str:
    """
    A request's filter in RFC 4515 string form, for the log, with the
    values asserted on password attributes replaced by C{***}.

    @param f: the filter.
    @return: the text.
    """
    return requests.filterText(f, lambda attribute: attribute.split(";")[0].lower() in _SECRET)


def describeRequest(request: requests.Request) -> dict[str, Any]:
    """
    The fields that say what an operation asked for, without secrets.

    @param request: the request.
    @return: C{target} and the operation's own fields.
    """
    if isinstance(request, requests.SearchRequest):
        return {
            "target": _text(request.base),
            "scope": request.scope,
            "filter": filterText(request.filter),
            "attributes": [_text(a) for a in request.attributes],
        }
    if isinstance(request, requests.BindRequest):
        return {"target": _text(request.dn), "method": "SASL" if request.sasl else "simple"}
    if isinstance(request, requests.CompareRequest):
        return {"target": _text(request.dn), "attributes": [request.attribute]}
    if isinstance(request, requests.AddRequest):
        return {"target": _text(request.dn),
                "attributes": [description for description, _ in request.attributes]}
    if isinstance(request, requests.ModifyRequest):
        return {"target": _text(request.dn),
                "attributes": [description for _, description, _ in request.changes]}
    if isinstance(request, requests.DeleteRequest):
        return {"target": _text(request.dn)}
    if isinstance(request, requests.ModifyDNRequest):
        return {"target": _text(request.dn), "newDN": _text(request.newRDN),
                "newSuperior": _text(request.newSuperior) if request.newSuperior else ""}
    return {"target": "", "oid": getattr(request, "name", "")}


def _quote(value: str) -> str:
    # A DN or filter may hold any character: a CR or LF in one would end
    # the line under cat and let the client write a forged line after it.
    if '"' in value or "\\" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escapeControl(value) + '"'


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
    assert op.request is not None, "the server's own operations are not logged"
    fields = describeRequest(op.request)
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
    # The line is formatted here, once: the logger's own formatting of a
    # format with a dozen fields (string.Formatter, in Python) cost more
    # than the search it described, and flattening them all for a JSON log
    # as much again.
    line = _accessLine(event, _details(name, fields), _quote(authzDN))
    session = op.controls.get(SESSION_TRACKING)
    if session is not None:
        event["session"] = f"{session.sourceIP} {session.sourceName} {session.identifier}"
        line += f" session={_quote(event['session'])}"
    # What Logger.info makes of it, without its check that the level is
    # one of LogLevel's (which sorts them all, for every event).
    event.update(
        accessLine=line,
        log_logger=logger,
        log_level=LogLevel.info,
        log_namespace=logger.namespace,
        log_source=logger.source,
        log_format="{accessLine}",
        log_time=time.time(),
    )
    logger.observer(event)
