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

from ldapd.gentime import formatTime, parseTime

__all__ = ["CSNGenerator", "csnTime", "formatCSN"]


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
