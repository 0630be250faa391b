"""
Changelog storage (L{ldapd.interfaces.IChangelog}) for the shipped backends:
L{MemoryChangelog}, records in a list, and the functions the C{sql} backend
runs on its connections against the C{ldapd_changes} table
(L{ldapd.backends.sqlschema.changes}).

Both number changes so that number order is commit order: the memory
backend writes synchronously, SQLite serialises writers, and on PostgreSQL
L{appendSQL} takes a lock on the table that is held until the write commits.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from ldapd.backends.sqlschema import changes as changesTable
from ldapd.changes import ChangeRecord
from ldapd.gentime import formatTime, parseTime

__all__ = [
    "MemoryChangelog",
    "appendSQL",
    "boundsSQL",
    "readSQL",
    "trimSQL",
]

class MemoryChangelog:
    """
    The changelog of a memory backend: records in number order.
    """

    def __init__(self) -> None:
        self._records: list[ChangeRecord] = []
        self._last = 0

    def append(self, record: ChangeRecord) -> tuple[int, Callable[[], object]]:
        """
        Append a change, numbered after every number given before (also
        those of rolled-back changes, which are never given again).

        @return: the number it got, and the function that takes it back out.
        """
        self._last += 1
        self._records.append(dataclasses.replace(record, number=self._last))
        return self._last, self._records.pop

    def changes(self, after: int, limit: int) -> list[ChangeRecord]:
        """
        @return: up to C{limit} records numbered after C{after}.
        """
        start = bisect_right(self._records, after, key=lambda r: r.number)
        return self._records[start : start + limit]

    def bounds(self) -> tuple[ChangeRecord | None, ChangeRecord | None]:
        """
        @return: the first and last records, or C{(None, None)}.
        """
        if not self._records:
            return None, None
        return self._records[0], self._records[-1]

    def trim(self, before: datetime | None, keep: int | None) -> int:
        """
        Remove the records made before C{before} and all but the C{keep}
        newest, never the newest.

        @return: how many were removed.
        """
        records = self._records
        cut = max(0, len(records) - keep) if keep is not None else 0
        if before is not None:
            while cut < len(records) and records[cut].time < before:
                cut += 1
        cut = min(cut, len(records) - 1)
        if cut <= 0:
            return 0
        del records[:cut]
        return cut


def appendSQL(conn: Connection, record: ChangeRecord) -> int:
    """
    Insert a change in the transaction of C{conn}. On PostgreSQL the table is
    locked first (other writers wait until this transaction ends), so that
    numbers, which a sequence hands out, are committed in their order.

    @return: the number it got.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"LOCK TABLE {changesTable.name} IN EXCLUSIVE MODE")
    result = conn.execute(changesTable.insert().values(
        csn=record.csn.decode("ascii"),
        time=formatTime(record.time, fraction=True).decode("ascii"),
        kind=record.kind,
        target_dn=record.targetDN,
        entry_uuid=record.entryUUID.decode("ascii"),
        changes=record.changes,
        new_rdn=record.newRDN,
        delete_old_rdn=record.deleteOldRDN,
        new_superior=record.newSuperior,
    ))
    # SQLAlchemy gives no key only for statements that insert no row or many.
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the changelog's INSERT gave no change number")
    number: int = key[0]
    return number


def _record(row: Any) -> ChangeRecord:
    return ChangeRecord(
        number=row.number,
        csn=row.csn.encode("ascii"),
        time=parseTime(row.time),
        kind=row.kind,
        targetDN=row.target_dn,
        entryUUID=row.entry_uuid.encode("ascii"),
        changes=bytes(row.changes),
        newRDN=row.new_rdn,
        deleteOldRDN=row.delete_old_rdn,
        newSuperior=row.new_superior,
    )


def readSQL(conn: Connection, after: int, limit: int) -> list[ChangeRecord]:
    """
    @return: up to C{limit} committed records numbered after C{after}.
    """
    rows = conn.execute(select(changesTable).where(changesTable.c.number > after)
                        .order_by(changesTable.c.number).limit(limit))
    return [_record(row) for row in rows]


def boundsSQL(conn: Connection) -> tuple[ChangeRecord | None, ChangeRecord | None]:
    """
    @return: the first and last committed records, or C{(None, None)}.
    """
    first = conn.execute(select(changesTable).order_by(changesTable.c.number).limit(1)).first()
    if first is None:
        return None, None
    last = conn.execute(select(changesTable).order_by(changesTable.c.number.desc())
                        .limit(1)).first()
    return _record(first), _record(last)


def trimSQL(conn: Connection, before: datetime | None, keep: int | None) -> int:
    """
    Delete the records made before C{before} and all but the C{keep} newest,
    never the newest, in the transaction of C{conn}.

    @return: how many were deleted.
    """
    number = changesTable.c.number
    newest = conn.execute(select(func.max(number))).scalar()
    if newest is None:
        return 0
    cut = -1
    if keep is not None:
        # Numbers have gaps (rolled-back writes): the cut is counted in rows.
        kept = conn.execute(select(number).order_by(number.desc()).offset(keep).limit(1)).scalar()
        if kept is not None:
            cut = kept
    if before is not None:
        old = conn.execute(select(func.max(number)).where(
            changesTable.c.time < formatTime(before, fraction=True).decode("ascii"))).scalar()
        if old is not None:
            cut = max(cut, old)
    cut = min(cut, newest - 1)
    if cut < 0:
        return 0
    return conn.execute(delete(changesTable).where(number <= cut)).rowcount
