"""
What replication and change notification are built from: L{Change}, a
committed write as the L{ldapd.directory.Directory} announces it, and
L{ChangeRecord}, one change as a changelog (L{ldapd.interfaces.IChangelog})
keeps it.

The C{changelog} plugin turns the first into the second inside the write's
transaction; the syncrepl provider and persistent search read them; the
retro changelog C{cn=changelog} shows the records as entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ldapd.dn import DN
from ldapd.entry import Entry

__all__ = ["ADD", "Change", "ChangeRecord", "DELETE", "MODIFY", "RENAME"]

#: The kinds of change, as L{Change.kind} and L{ChangeRecord.kind} name them.
ADD, DELETE, MODIFY, RENAME = "add", "delete", "modify", "rename"


@dataclass(frozen=True)
class Change:
    """
    A write that has been committed, announced to the Directory's
    subscribers before its response is sent.

    @ivar kind: L{ADD}, L{DELETE}, L{MODIFY} or L{RENAME}.
    @ivar op: the operation that made it (C{op.internal} for the server's own).
    @ivar suffix: the normalised suffix of the database it was made in.
    @ivar old: the entry before the change; C{None} for an add.
    @ivar new: the entry after the change; C{None} for a delete.
    """

    kind: str
    op: Any
    suffix: DN
    old: Entry | None
    new: Entry | None


@dataclass(frozen=True)
class ChangeRecord:
    """
    One change in a changelog. Its fields are those of a retro changelog
    entry (draft-good-ldap-changelog, as 389-ds serves under C{cn=changelog}).

    @ivar number: the change number, increasing in commit order within one
        changelog; 0 in a record not yet appended.
    @ivar csn: the change's CSN (L{ldapd.csn}), the new C{entryCSN} of the entry.
    @ivar time: when the change was made, in UTC.
    @ivar kind: L{ADD}, L{DELETE}, L{MODIFY} or L{RENAME}.
    @ivar targetDN: the DN of the entry before the change (for an add, its DN).
    @ivar entryUUID: the C{entryUUID} of the entry.
    @ivar changes: the change as LDIF: the entry's attributes for an add, the
        modifications (C{replace: cn} ... C{-}) for a modify and for the
        server's own changes to a renamed entry; empty for a delete.
    @ivar newRDN: for a rename, the new RDN.
    @ivar deleteOldRDN: for a rename, whether the old RDN's values went.
    @ivar newSuperior: for a rename that moved the entry, the new parent's DN.
    """

    number: int
    csn: bytes
    time: datetime
    kind: str
    targetDN: str
    entryUUID: bytes
    changes: bytes = b""
    newRDN: str | None = None
    deleteOldRDN: bool | None = None
    newSuperior: str | None = None
