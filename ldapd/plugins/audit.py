"""
The C{audit} plugin: every successful write, appended to a file as an LDIF
change record, as slapd's auditlog overlay writes them::

    # modify 1763709420 uid=bob,ou=people,dc=example,dc=com IP=127.0.0.1:40112 conn=3
    dn: uid=alice,ou=people,dc=example,dc=com
    changetype: modify
    replace: mail
    mail: alice@example.org
    -
    # end modify 1763709420

Unlike slapd's, it never writes a password: the values of C{userPassword}
and C{authPassword} are replaced by a comment line saying how many there were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from zope.interface import implementer

from ldapd._files import openPrivate
from ldapd.escaping import escapeControl
from ldapd.interfaces import IOperationPlugin
from ldapd.ldif import formatLine
from ldapd.operation import Operation
from ldapd.registry import ConfigTable
from ldapd.requests import AddRequest, DeleteRequest, ModifyDNRequest, ModifyRequest

__all__ = ["AuditLog", "AuditLogFactory"]

_SECRET = frozenset({"userpassword", "authpassword", "2.5.4.35", "1.3.6.1.4.1.4203.1.3.4"})


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _values(description: str, values: Sequence[bytes]) -> list[bytes]:
    """
    The lines of one attribute's values, or a comment instead of secret ones.
    """
    if description.split(";")[0].lower() in _SECRET:
        return [_comment(f"{description}: {len(values)} value(s) not logged")] if values else []
    return [formatLine(description, value) for value in values]


def _comment(text: str) -> bytes:
    """
    A comment line; the names and addresses in it are the client's, so no
    character of theirs may end the line and start a forged record.
    """
    return f"# {escapeControl(text)}\n".encode()


def changeRecord(op: Operation, name: str, when: int) -> bytes:
    """
    The audit record of a successful write.

    @param op: the write.
    @param name: C{"add"}, C{"delete"}, C{"modify"} or C{"rename"}.
    @param when: the time, in seconds since the epoch.
    @return: the record, comments included, ending with a blank line.
    """
    request = op.request
    who = str(op.identity.dn) if op.identity.dn is not None else ""
    header = _comment(f"{name} {when} {who} IP={op.connection.peer} conn={op.connection.id}")
    lines: list[bytes] = []
    if isinstance(request, AddRequest):
        dn = _text(request.dn)
        lines.append(formatLine("changetype", b"add"))
        for description, values in request.attributes:
            lines.extend(_values(description, values))
    elif isinstance(request, DeleteRequest):
        dn = _text(request.dn)
        lines.append(formatLine("changetype", b"delete"))
    elif isinstance(request, ModifyRequest):
        dn = _text(request.dn)
        lines.append(formatLine("changetype", b"modify"))
        for operation, description, values in request.changes:
            lines.append(formatLine(operation, description.encode()))
            lines.extend(_values(description, values))
            lines.append(b"-\n")
    else:
        assert isinstance(request, ModifyDNRequest)
        dn = _text(request.dn)
        lines.append(formatLine("changetype", b"modrdn"))
        lines.append(formatLine("newrdn", request.newRDN))
        lines.append(formatLine("deleteoldrdn", b"1" if request.deleteOldRDN else b"0"))
        if request.newSuperior is not None:
            lines.append(formatLine("newsuperior", request.newSuperior))
    return (header + formatLine("dn", dn.encode("utf-8")) + b"".join(lines)
            + _comment(f"end {name} {when}") + b"\n")


@implementer(IOperationPlugin)
class AuditLog:
    """
    Appends each successful add, delete, modify and rename to a file.
    """

    name = "audit"

    def __init__(self, path: Path, clock: Any) -> None:
        """
        @param path: the file, created if needed and appended to.
        @param clock: an C{IReactorTime}, for the records' times.
        """
        self.path = path
        self.clock = clock

    def _write(self, op: Operation, name: str, resultCode: int) -> None:
        if resultCode != 0 or op.internal:
            return
        record = changeRecord(op, name, int(self.clock.seconds()))
        # Opened for each record, so that the file can be rotated.
        with openPrivate(self.path, append=True) as f:
            f.write(record)

    def post_add(self, op: Operation, resultCode: int) -> None:
        """
        Record a successful add.
        """
        self._write(op, "add", resultCode)

    def post_delete(self, op: Operation, resultCode: int) -> None:
        """
        Record a successful delete.
        """
        self._write(op, "delete", resultCode)

    def post_modify(self, op: Operation, resultCode: int) -> None:
        """
        Record a successful modify.
        """
        self._write(op, "modify", resultCode)

    def post_rename(self, op: Operation, resultCode: int) -> None:
        """
        Record a successful rename.
        """
        self._write(op, "rename", resultCode)


class AuditLogFactory:
    """
    Builds L{AuditLog} from C{[[plugin]] name = "audit"} with C{file} (a
    path, relative to the configuration file).
    """

    name = "audit"
    description = "Every successful write appended to a file as LDIF, without passwords."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: Any) -> AuditLog:
        """
        @param table: the plugin's configuration.
        @param context: the L{ldapd.registry.ConfigContext}.
        @raise ldapd.registry.ConfigError: when C{file} is missing or its
            folder does not exist.
        """
        path = context.resolvePath(
            ConfigTable(table, context, {"file"}).required("file", str, "a path"))
        if not path.parent.is_dir():
            raise context.error("file", f"no such folder: {path.parent}")
        reactor = context.reactor
        if reactor is None:
            from twisted.internet import reactor
        return AuditLog(path, reactor)
