"""
Tests for L{ldapd.gentime}: the one GeneralizedTime codec.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from twisted.trial import unittest

from ldapd.gentime import InvalidTime, formatTime, isGeneralizedTime, parseTime

#: 2026-12-07 12:00:00 UTC.
NOON = datetime(2026, 12, 7, 12, tzinfo=UTC)


class FormatTimeTests(unittest.SynchronousTestCase):
    """
    L{formatTime} writes what the server stores: UTC, to the second, or to
    the microsecond where slapd writes a fraction.
    """

    def test_seconds(self) -> None:
        """
        Seconds since the epoch are written in UTC, the fraction dropped
        unless asked for.
        """
        seconds = NOON.timestamp() + 0.123456
        self.assertEqual(formatTime(seconds), b"20261207120000Z")
        self.assertEqual(formatTime(seconds, fraction=True), b"20261207120000.123456Z")

    def test_datetime(self) -> None:
        """
        A L{datetime} in another zone is written in UTC; one without a zone
        is taken to be in UTC already.
        """
        paris = NOON.astimezone(timezone(timedelta(hours=1)))
        self.assertEqual(formatTime(paris), b"20261207120000Z")
        self.assertEqual(formatTime(NOON.replace(tzinfo=None)), b"20261207120000Z")
        self.assertEqual(formatTime(NOON, fraction=True), b"20261207120000.000000Z")


class ParseTimeTests(unittest.SynchronousTestCase):
    """
    L{parseTime} reads every form RFC 4517 allows, in bytes or text.
    """

    def test_roundTrip(self) -> None:
        """
        What L{formatTime} writes, L{parseTime} reads back exactly, with or
        without the fraction.
        """
        when = NOON + timedelta(microseconds=654321)
        self.assertEqual(parseTime(formatTime(when, fraction=True)), when)
        self.assertEqual(parseTime(formatTime(when)), NOON)
        self.assertEqual(parseTime("20261207120000Z"), NOON)
        self.assertEqual(parseTime(b"20261207120000Z").tzinfo, UTC)

    def test_fractions(self) -> None:
        """
        A fraction (after C{.} or C{,}) is of the last unit given: a second,
        a minute without seconds, an hour without minutes; beyond the
        microsecond it is rounded.
        """
        self.assertEqual(parseTime(b"20261207120000.5Z"), NOON + timedelta(seconds=0.5))
        self.assertEqual(parseTime(b"20261207120000,25Z"), NOON + timedelta(seconds=0.25))
        self.assertEqual(parseTime(b"202612071200.5Z"), NOON + timedelta(seconds=30))
        self.assertEqual(parseTime(b"2026120712.5Z"), NOON + timedelta(minutes=30))
        self.assertEqual(parseTime(b"2026120712Z"), NOON)
        self.assertEqual(parseTime(b"20261207120000.1234567Z"),
                         NOON + timedelta(microseconds=123457))

    def test_offsets(self) -> None:
        """
        An offset from UTC (hours, or hours and minutes) is taken away.
        """
        self.assertEqual(parseTime(b"20261207130000+0100"), NOON)
        self.assertEqual(parseTime(b"20261207063000-0530"), NOON)
        self.assertEqual(parseTime(b"20261207140000+02"), NOON)
        self.assertEqual(parseTime(b"20261207120000.5-0000"), NOON + timedelta(seconds=0.5))

    def test_leapSecond(self) -> None:
        """
        A leap second is the first instant of the next minute.
        """
        self.assertEqual(parseTime(b"20261231235960Z"), datetime(2027, 1, 1, tzinfo=UTC))

    def test_invalid(self) -> None:
        """
        Anything else is L{InvalidTime} (a L{ValueError}): a wrong form, a
        field out of its range, a date that does not exist, a year
        L{datetime} cannot hold.
        """
        for value in [b"", b"20261207120000", b"2026120712000Z", b"20261307120000Z",
                      b"20261207240000Z", b"20261207126000Z", b"20261207120000+2400",
                      b"20261207120000.Z", b" 20261207120000Z", b"2026-12-07T12:00:00Z",
                      b"20260231120000Z", b"000001010000Z", "20261207120000Z\u00e9"]:
            with self.assertRaises(InvalidTime, msg=value):
                parseTime(value)
        self.assertTrue(issubclass(InvalidTime, ValueError))


class IsGeneralizedTimeTests(unittest.SynchronousTestCase):
    """
    L{isGeneralizedTime} is the syntax check: the form, with each field in
    its range, whatever the calendar says.
    """

    def test_form(self) -> None:
        """
        slapd's C{000001010000Z} (a lock that never ends) and a 31st of
        February have the form; a 13th month does not.
        """
        self.assertTrue(isGeneralizedTime(b"000001010000Z"))
        self.assertTrue(isGeneralizedTime(b"20260231120000Z"))
        self.assertTrue(isGeneralizedTime("20261207120000.123456-0530"))
        self.assertFalse(isGeneralizedTime(b"20261307120000Z"))
        self.assertFalse(isGeneralizedTime(b"20261207120000"))
