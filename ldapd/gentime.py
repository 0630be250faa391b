"""
LDAP GeneralizedTime (RFC 4517 §3.3.13), the one codec of the server's
timestamps: C{createTimestamp} and C{modifyTimestamp}, the password policy's
C{pwd*Time} attributes, C{changeTime}, C{monitorTimestamp}, the time of a
CSN, and the syntax and matching rules of the schema.

The server writes C{YYYYmmddHHMMSSZ}, in UTC, or C{YYYYmmddHHMMSS.uuuuuuZ}
with microseconds where slapd writes them (C{pwdFailureTime}, CSNs). It
reads every form the RFC allows: minutes and seconds optional, a fraction
of the last unit given (C{.} or C{,}), a leap second, and C{Z} or an offset
from UTC (C{+0100}, C{-0530}, C{+01}).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["InvalidTime", "formatTime", "isGeneralizedTime", "parseTime"]

_GRAMMAR = re.compile(
    r"(\d{4})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])([01]\d|2[0-3])"
    r"(?:([0-5]\d)([0-5]\d|60)?)?(?:[.,](\d+))?(Z|[+-](?:[01]\d|2[0-3])(?:[0-5]\d)?)"
)


class InvalidTime(ValueError):
    """
    A value is not a GeneralizedTime, or names no time C{datetime} can hold
    (the year 0000 of slapd's C{pwdAccountLockedTime: 000001010000Z}, say).
    """


def isGeneralizedTime(value: bytes | str) -> bool:
    """
    @param value: a value.
    @return: whether it has the form of a GeneralizedTime (the syntax
        check: the fields in their ranges, any year, any day up to 31).
    """
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return _GRAMMAR.fullmatch(text) is not None


def parseTime(value: bytes | str) -> datetime:
    """
    Read a GeneralizedTime.

    @param value: the value, in any of the forms RFC 4517 allows.
    @return: the time it names, in UTC, to the microsecond (a longer
        fraction is rounded), a leap second read as the first instant of
        the next minute.
    @raise InvalidTime: if it is not a GeneralizedTime, or names a date
        that does not exist or C{datetime} cannot hold.
    """
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        raise InvalidTime("not a GeneralizedTime")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    leap = second == "60"
    try:
        when = datetime(int(year), int(month), int(day), int(hour), int(minute or 0),
                        59 if leap else int(second or 0), tzinfo=UTC)
    except ValueError:
        raise InvalidTime("not a valid date and time") from None
    if leap:
        when += timedelta(seconds=1)
    if fraction:
        # The fraction is of the last unit given (RFC 4517: of an hour
        # when minutes are absent, of a minute when seconds are).
        unit = 3600 if minute is None else 60 if second is None else 1
        when += timedelta(seconds=unit * int(fraction) / 10 ** len(fraction))
    if zone != "Z":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5] or 0))
        when += -offset if zone[0] == "+" else offset
    return when


def formatTime(when: datetime | float, fraction: bool = False) -> bytes:
    """
    Write a time as the server stores it.

    @param when: a C{datetime} (one without a time zone is taken to be in
        UTC) or seconds since the epoch.
    @param fraction: whether to write the microseconds, as slapd does in
        C{pwdFailureTime} and CSNs.
    @return: C{YYYYmmddHHMMSSZ} or C{YYYYmmddHHMMSS.uuuuuuZ}, in UTC.
    """
    if isinstance(when, datetime):
        if when.tzinfo is not None:
            when = when.astimezone(UTC)
    else:
        when = datetime.fromtimestamp(when, UTC)
    if when.year < 1000:
        # strftime's %Y, which does not pad such years.
        text = f"{when:%Y%m%d%H%M%S.%fZ}" if fraction else f"{when:%Y%m%d%H%M%SZ}"
        return text.encode("ascii")
    # Every write stamps its time: formatting the fields is several times
    # cheaper than strftime.
    fields = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    if fraction:
        return b"%d%02d%02d%02d%02d%02d.%06dZ" % (*fields, when.microsecond)
    return b"%d%02d%02d%02d%02d%02dZ" % fields
