"""
Change sequence numbers: the values of C{entryCSN}.

A CSN names one change, in OpenLDAP's format so that tools that read slapd's
(syncrepl consumers, C{contextCSN} comparisons) read ldapd's:
C{YYYYmmddHHMMSS.uuuuuuZ#count#sid#mod}, the time in microseconds, a counter
(six hex digits) that orders changes made in the same microsecond, the server
ID (three hex digits) and a modification number (six hex digits). CSNs of one
generator are strictly increasing as strings.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Iterable, Mapping

from ldapd.gentime import formatTime, parseTime

__all__ = ["CSNGenerator", "csnSID", "csnTime", "csnVector", "formatCSN", "mergeCSNs", "newerThan"]


def formatCSN(when: datetime, count: int = 0, sid: int = 0, mod: int = 0) -> bytes:
    """
    @param when: the time of the change, in UTC.
    @param count: the change's number among those of the same microsecond.
    @param sid: the server ID.
    @param mod: the modification number.
    @return: the CSN.
    """
    return formatTime(when, fraction=True) + f"#{count:06x}#{sid:03x}#{mod:06x}".encode()


def csnTime(csn: bytes) -> datetime:
    """
    @param csn: a CSN (C{YYYYmmddHHMMSS[.uuuuuu]Z#...}, the microseconds
        optional as in OpenLDAP's older CSNs).
    @return: the time it names, in UTC.
    @raise ValueError: if it names no time.
    """
    return parseTime(csn.partition(b"#")[0])


def csnSID(csn: bytes) -> int | None:
    """
    @return: the server ID of a CSN, or C{None} if it is not one.
    """
    parts = csn.split(b"#")
    try:
        return int(parts[2], 16) if len(parts) == 4 else None
    except ValueError:
        return None


def mergeCSNs(values: Iterable[bytes], more: Iterable[bytes]) -> list[bytes]:
    """
    Merge two sets of context CSNs (C{contextCSN}, a cookie's C{csn}) as
    slapd keeps them: one value per server ID, the greatest.

    @param values: the CSNs held.
    @param more: CSNs to take in.
    @return: the greatest CSN of each server ID, ordered by server ID.
    """
    best: dict[int | None, bytes] = {}
    for csn in (*values, *more):
        sid = csnSID(csn)
        if sid not in best or csn > best[sid]:
            best[sid] = csn
    return [best[sid] for sid in sorted(best, key=lambda s: -1 if s is None else s)]


def csnVector(values: Iterable[bytes]) -> dict[int | None, bytes]:
    """
    @param values: context CSNs.
    @return: the greatest of each server ID, by server ID.
    """
    return {csnSID(csn): csn for csn in mergeCSNs((), values)}


def newerThan(csn: bytes, vector: Mapping[int | None, bytes]) -> bool:
    """
    @param csn: a change's CSN.
    @param vector: the greatest CSN held of each server ID.
    @return: whether C{csn} is newer than what the vector holds of its
        server ID (always, for a server ID it holds nothing of).
    """
    held = vector.get(csnSID(csn))
    return held is None or csn > held


class CSNGenerator:
    """
    Makes the CSNs of one server's changes. It may be called from several
    threads (the sql backend runs write hooks in its pool).

    @ivar sid: the server ID written into every CSN.
    """

    def __init__(self, sid: int = 0) -> None:
        """
        @param sid: the server ID (0 to 4095).
        """
        self.sid = sid
        self._last: datetime | None = None
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, when: datetime) -> bytes:
        """
        @param when: the time of the change, in UTC.
        @return: a CSN greater than every one this generator made before: a
            change in the same microsecond as the previous one (or, if the
            clock went back, earlier) gets the previous time and the next count.
        """
        with self._lock:
            if self._last is not None and when <= self._last:
                self._count += 1
            else:
                self._last = when
                self._count = 0
            return formatCSN(self._last, self._count, self.sid)
