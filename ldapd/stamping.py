"""
The operational attributes the server stamps on what it writes.

Every write records who made it, when, and its change sequence number
(L{stampWrite}); a new entry also records its creator, creation time,
entryUUID and structural object class (L{stampNew}). Add, the seeding of an
empty database from C{seed_ldif} and C{ldapd-admin import} all stamp new
entries through L{stampNew}, so that an entry carries the same operational
attributes however it came in, as slapd's add and slapadd store the same.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from ldapd.csn import CSNGenerator
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.gentime import formatTime

__all__ = ["stampNew", "stampWrite"]


def stampWrite(
    who: DN | None, csn: CSNGenerator, when: datetime | None = None
) -> list[tuple[str, list[bytes]]]:
    """
    The operational attributes every write sets.

    @param who: the DN of the identity writing (C{None}: anonymous or the
        server itself, recorded as the empty DN).
    @param csn: makes the write's C{entryCSN}.
    @param when: the time of the write, in UTC; now by default.
    @return: C{modifiersName}, C{modifyTimestamp} and C{entryCSN}, with
        their values.
    """
    if when is None:
        when = datetime.now(timezone.utc)
    return [
        ("modifiersName", [str(who or "").encode("utf-8")]),
        ("modifyTimestamp", [formatTime(when)]),
        ("entryCSN", [csn(when)]),
    ]


def _uuid4() -> bytes:
    """
    @return: a random (version 4) UUID's text, as C{str(uuid.uuid4())}
        writes it, made without a C{uuid.UUID} object: an import stamps
        one on every entry.
    """
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".encode("ascii")


def stampNew(entry: Entry, who: DN | None, csn: CSNGenerator) -> Entry:
    """
    A new entry with the operational attributes it lacks: C{creatorsName},
    C{createTimestamp}, C{entryUUID}, C{structuralObjectClass} (when its
    classes have one) and those of L{stampWrite}. Those it has are kept, as
    slapadd keeps an LDIF file's.

    @param entry: the entry as given.
    @param who: the DN of its creator (C{None}: the empty DN).
    @param csn: makes its C{entryCSN}.
    @return: the stamped entry, not yet checked against the schema.
    """
    stamp = stampWrite(who, csn)
    operational = [
        ("creatorsName", stamp[0][1]),
        ("createTimestamp", stamp[1][1]),
        ("entryUUID", [_uuid4()]),
        *stamp,
    ]
    structural = entry.structuralClass()
    if structural is not None:
        operational.append(("structuralObjectClass", [structural.name.encode()]))
    return entry.extended([(name, values) for name, values in operational
                           if not entry.get(name)])
