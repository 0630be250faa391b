"""
Tests for L{ldapd._logging}: file log observers that write exactly what
Twisted's write, and C{twist ldapd} using them in place of Twisted's.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ldap3 import NONE, Server
from ldap3 import Connection as LDAPConnection
from twisted.application.twist._options import TwistOptions
from twisted.internet import task
from twisted.logger import (
    Logger,
    LogLevel,
    eventsFromJSONLogFile,
)
from twisted.logger import jsonFileLogObserver as twistedJSONFileLogObserver
from twisted.logger import textFileLogObserver as twistedTextFileLogObserver
from twisted.trial import unittest

from ldapd import _logging
from ldapd.accesslog import logResult
from ldapd.dn import DN
from ldapd.escaping import escapeControl
from ldapd.operation import Connection, Identity, Operation
from ldapd.requests import BindRequest, DeleteRequest, SearchRequest
from ldapd.testing import ServerProcess, parseFilter

SUFFIX = "dc=example,dc=com"
ALICE = "uid=alice,ou=people,dc=example,dc=com"

#: A configuration C{twist ldapd} accepts.
CONFIG = ('[server]\nlisten = ["tcp:{port}:interface=127.0.0.1"]\n[[database]]\n'
          f'suffix = "{SUFFIX}"\nbackend = "memory"\nroot_dn = "cn=admin,{SUFFIX}"\n'
          'root_password = "secret"\n')

#: A whole second, in 2023.
SECOND = 1700000000

#: Instants around the start of daylight saving time in New York and its end
#: in Lord Howe (half an hour), and their seconds' boundaries.
NEW_YORK_SPRING = 1710054000
LORD_HOWE_AUTUMN = 1712417400


class _Point:
    """
    An object logged with an attribute and a method.
    """

    x = 3

    def norm(self) -> int:
        return 5


class _Unprintable:
    """
    An object whose C{str} fails.
    """

    def __str__(self) -> str:
        raise ValueError("no text")


class _Source:
    """
    An object that logs with its own L{Logger}, as C{self._log}.
    """

    log = Logger()


def accessEvents() -> list[dict[str, Any]]:
    """
    @return: the events L{ldapd.accesslog.logResult} emits for a bind, a
        search (with a non-ASCII filter) and a delete.
    """
    events: list[dict[str, Any]] = []
    logger = Logger(namespace="ldapd.access", observer=events.append)
    connection = Connection("127.0.0.1:40112", task.Clock())
    bind = Operation(connection, 1, BindRequest(3, ALICE.encode(), b"alice-secret"))
    connection.identity = Identity(dn=DN.parse(ALICE))
    logResult(bind, "bind", 0x61, 0, 0, 0.000412, logger)
    search = Operation(connection, 2, SearchRequest(
        ("ou=people," + SUFFIX).encode(), 2, 0, 0, 0, False, parseFilter("(cn=Zoë*)"),
        (b"cn", b"mail")))
    logResult(search, "search", 0x65, 0, 5, 0.001204, logger)
    delete = Operation(connection, 3, DeleteRequest(("uid=nobody," + SUFFIX).encode()))
    logResult(delete, "delete", 0x6B, 32, 0, 0.0000123, logger)
    return events


def failureEvent() -> dict[str, Any]:
    """
    @return: an event logged by L{Logger.failure}, with a traceback.
    """
    events: list[dict[str, Any]] = []
    try:
        1 / 0  # noqa: B018 (the exception is the point)
    except ZeroDivisionError:
        Logger(namespace="ldapd.test", observer=events.append).failure(
            "cannot {verb}", verb="divide")
    return events[0]


def variedEvents() -> list[dict[str, Any]]:
    """
    @return: events that exercise every path of Twisted's formatting.
    """
    events: list[dict[str, Any]] = []
    logger = Logger(namespace="ldapd.test", observer=events.append)
    logger.info("{accessLine}", accessLine="first line\nsecond line")
    logger.error("plain\nmulti-line text")
    logger.info("braces {{escaped}}")
    logger.info("")
    logger.info("{empty}", empty="")
    logger.info("{x!r} and {y}", x="quoted", y=1)
    logger.info("{value:>8}|", value=42)
    logger.info("{point.x} {point.norm()} {items[1]}", point=_Point(), items=["a", "b"])
    logger.info("{number}", number=7)
    logger.info("{missing}")
    logger.info("{bad}", bad=_Unprintable())
    logger.info("{text} ⇒ {more}", text="naïve café", more="日本語")
    logger.info("{text}", text="naïve café ☃")
    logger.info("{data}", data=b"\xff\x00bytes")
    logger.info("{0}")
    logger.error("{error}", error=ValueError("boom"))
    _Source().log.info("{name}", name="with a source")
    events.append(failureEvent())
    base = dict(events[0])
    variants: list[dict[str, Any]] = [
        dict(base, log_system="ldapd.access#info worker=2"),
        dict(base, log_system=7),
        dict(base, log_time=None),
        dict(base, log_level=None),
        dict(base, log_level="custom"),
        dict(base, log_level=[]),
        {key: value for key, value in base.items() if key != "log_namespace"},
        {key: value for key, value in base.items() if key != "log_format"},
        dict(base, log_format=b"{accessLine} as bytes"),
        dict(base, log_format=None),
        dict(base, log_flattened={"accessLine!s:": "flattened earlier",
                                  "accessLine!:": "flattened earlier"}),
        dict(base, log_logger=None),
        dict(base, extra={1: "int key", (2, 3): "tuple key", "nested": [b"bytes"]}),
        dict(base, log_time=SECOND + 0.5),
        dict(base, log_time=SECOND),
        dict(base, log_time=-1.25),
        dict(base, log_time=float("nan")),
    ]
    return events + variants


def copyEvent(event: dict[str, Any]) -> dict[str, Any]:
    """
    @param event: a log event.
    @return: a copy of it that flattening does not share.
    """
    copied = dict(event)
    if isinstance(copied.get("log_flattened"), dict):
        copied["log_flattened"] = dict(copied["log_flattened"])
    return copied


def write(observerFactory: Callable[[Any], Any], events: list[dict[str, Any]],
          outFile: Any = None, copies: list[dict[str, Any]] | None = None) -> list[Any]:
    """
    Write C{events} with one observer, each event in its own copy.

    @param observerFactory: makes the observer, given the file.
    @param events: the events.
    @param outFile: the file; a new L{io.StringIO} by default.
    @param copies: where to keep the copies, as the observer left them.
    @return: for each event, what was written or the type of exception
        raised.
    """
    if outFile is None:
        outFile = io.StringIO()
    observer = observerFactory(outFile)
    outputs: list[Any] = []
    for event in events:
        start = outFile.tell()
        copied = copyEvent(event)
        if copies is not None:
            copies.append(copied)
        try:
            observer(copied)
        except Exception as e:  # noqa: BLE001 (what is raised is compared too)
            outputs.append(type(e))
        else:
            outFile.seek(start)
            outputs.append(outFile.read())
    return outputs


class _TimeZone:
    """
    Runs the tests in one local time zone (C{TZ}), restoring the previous
    one after.
    """

    def __init__(self, testCase: unittest.SynchronousTestCase, name: str) -> None:
        """
        @param testCase: the test that restores the time zone on cleanup.
        @param name: a C{TZ} value.
        """
        previous = os.environ.get("TZ")

        def restore() -> None:
            if previous is None:
                os.environ.pop("TZ", None)
            else:
                os.environ["TZ"] = previous
            time.tzset()

        testCase.addCleanup(restore)
        os.environ["TZ"] = name
        time.tzset()


class _CountingFile(io.StringIO):
    """
    A text file that counts its writes.
    """

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


class _RunningClock(task.Clock):
    """
    A clock with what L{_logging.BufferedFileLogObserver} uses of a reactor:
    whether it runs and its system event triggers (C{shutdown} fired by
    L{fireShutdown}).
    """

    running = True

    def __init__(self) -> None:
        super().__init__()
        self.triggers: list[tuple[str, str, Callable[[], None]]] = []

    def addSystemEventTrigger(self, phase: str, event: str, f: Callable[[], None]) -> None:
        self.triggers.append((phase, event, f))

    def fireShutdown(self) -> None:
        self.running = False
        for phase in ("before", "during", "after"):
            for p, event, f in self.triggers:
                if (p, event) == (phase, "shutdown"):
                    f()


def _event(text: str) -> dict[str, Any]:
    """
    @return: an event whose format is its text.
    """
    return {"log_format": text, "log_time": SECOND, "log_namespace": "test",
            "log_level": LogLevel.info}


class BufferedFileLogObserverTests(unittest.SynchronousTestCase):
    """
    L{_logging.BufferedFileLogObserver}: while its reactor runs, the events
    of one iteration are written together at its end; nothing is lost or
    reordered when it stops; a slow disk does not make it hold more.
    """

    def setUp(self) -> None:
        self.clock = _RunningClock()
        self.file = _CountingFile()
        self.observer = _logging.textFileLogObserver(self.file, None, reactor=self.clock)

    def lines(self) -> list[str]:
        return [line.split("] ", 1)[1] for line in self.file.getvalue().splitlines()]

    def test_oneWritePerIteration(self) -> None:
        """
        The events logged in one iteration are written with one write, once
        the iteration is over.
        """
        for n in range(3):
            self.observer(_event(f"event {n}"))
        self.assertEqual(self.file.getvalue(), "")
        self.clock.advance(0)
        self.assertEqual(self.lines(), ["event 0", "event 1", "event 2"])
        self.assertEqual(self.file.writes, 1)
        self.observer(_event("event 3"))
        self.clock.advance(0)
        self.assertEqual(self.lines()[-1], "event 3")
        self.assertEqual(self.file.writes, 2)

    def test_bounded(self) -> None:
        """
        Once C{maxBuffered} characters are kept, they are written at once.
        """
        observer = _logging.BufferedFileLogObserver(self.file, lambda e: e["log_format"] + "\n",
                                                    self.clock, maxBuffered=10)
        observer(_event("12345"))
        self.assertEqual(self.file.getvalue(), "")
        observer(_event("67890"))
        self.assertEqual(self.file.getvalue(), "12345\n67890\n")
        self.assertEqual(self.file.writes, 1)

    def test_shutdown(self) -> None:
        """
        What is kept when the reactor stops is written after its shutdown,
        and events logged once it has stopped are written at once, after
        it: nothing is lost on a clean stop.
        """
        self.observer(_event("before stop"))
        self.clock.fireShutdown()
        self.assertEqual(self.lines(), ["before stop"])
        self.observer(_event("after stop"))
        self.assertEqual(self.lines(), ["before stop", "after stop"])

    def test_loggedWhileWriting(self) -> None:
        """
        An event logged while the kept texts are being written, in the same
        thread (by a signal handler, as the reactor's SIGTERM handler logs
        that it shuts down), is written after them rather than waiting
        forever for the write to end.
        """
        write = self.file.write

        def interrupted(text: str) -> int:
            self.file.write = write  # type: ignore[method-assign]
            written = write(text)
            self.observer(_event("signal"))
            return written

        self.observer(_event("kept"))
        self.file.write = interrupted  # type: ignore[method-assign]
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(self.lines(), ["kept", "signal"])

    def test_notRunning(self) -> None:
        """
        Without a running reactor, or without a reactor, every event is
        written at once, as Twisted's observer does.
        """
        self.clock.running = False
        self.observer(_event("now"))
        self.assertEqual(self.lines(), ["now"])
        unbuffered = _logging.jsonFileLogObserver(self.file)
        unbuffered(_event("json"))
        self.assertIn('"log_format": "json"', self.file.getvalue())

    def test_otherThread(self) -> None:
        """
        An event from another thread is written at once, after the events
        kept before it.
        """
        import threading

        self.observer(_event("kept"))
        thread = threading.Thread(target=self.observer, args=(_event("from a thread"),))
        thread.start()
        thread.join()
        self.assertEqual(self.lines(), ["kept", "from a thread"])


class TextFileLogObserverTests(unittest.SynchronousTestCase):
    """
    L{_logging.textFileLogObserver} writes the bytes
    L{twisted.logger.textFileLogObserver} writes.
    """

    def assertSameText(self, events: list[dict[str, Any]], **kwargs: Any) -> None:
        """
        Both observers write the same text for C{events}, and the same bytes
        to a binary file.
        """

        def twisted(f: Any) -> Any:
            return twistedTextFileLogObserver(f, **kwargs)

        def ldapd(f: Any) -> Any:
            return _logging.textFileLogObserver(f, **kwargs)

        expected = write(twisted, events)
        self.assertEqual(write(ldapd, events), expected)
        self.assertEqual(write(ldapd, events, io.BytesIO()), write(twisted, events, io.BytesIO()))

    def test_accessEvents(self) -> None:
        """
        The access log's events are written as Twisted writes them, without
        and with a worker's C{log_system}.
        """
        events = accessEvents()
        self.assertEqual(len(events), 3)
        self.assertSameText(events)
        self.assertSameText([dict(e, log_system="ldapd.access#info worker=1") for e in events])

    def test_varied(self) -> None:
        """
        Failures with their traceback, multi-line messages, conversions,
        missing keys, non-ASCII text, bytes, events with no format or no
        time, and every other kind of event are written as Twisted writes
        them.
        """
        events = variedEvents()
        self.assertSameText(events)
        written = write(_logging.textFileLogObserver, events)
        self.assertIn("ZeroDivisionError", "".join(w for w in written if isinstance(w, str)))

    def test_secondBoundaries(self) -> None:
        """
        Timestamps on both sides of whole seconds, including those that
        round up to the next second, are written as Twisted writes them, in
        time zones with and without daylight saving time, across its
        changes.
        """
        base = accessEvents()[1]
        instants = []
        for start in (SECOND, NEW_YORK_SPRING, LORD_HOWE_AUTUMN):
            for offset in (-3601.0, -1.5, -1.0, -0.5, -0.0000004, -0.0000001, 0, 0.0000001,
                           0.25, 0.9999994, 0.9999996, 1.0, 1.75, 1800.0, 3600.5):
                instants.append(start + offset)
        events = [dict(base, log_time=instant) for instant in instants]
        for zone in ("UTC", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
                     "EST+5EDT,M3.2.0/2,M11.1.0/2"):
            _TimeZone(self, zone)
            self.assertSameText(events)

    def test_timeFormats(self) -> None:
        """
        Custom time formats, with sub-second parts or none, and no time
        format at all, are written as Twisted writes them.
        """
        base = accessEvents()[0]
        events = [dict(base, log_time=SECOND + fraction) for fraction in (0.1, 0.2, 1.3)]
        for timeFormat in (None, "%Y/%m/%d %H:%M:%S.%f", "%a %d %b %Y %H:%M:%S %Z",
                           "%H:%M:%S %%f", "%s", "%-H", "no directive", "trailing %"):
            self.assertSameText(events, timeFormat=timeFormat)

    def test_timeCached(self) -> None:
        """
        Twisted's C{formatTime} is called once a second for the default
        format, and for every event when the format has a sub-second part.
        """
        calls: list[float] = []
        formatTime = _logging.formatTime

        def counting(when: float, timeFormat: str | None) -> str:
            calls.append(when)
            return formatTime(when, timeFormat)

        self.patch(_logging, "formatTime", counting)
        base = accessEvents()[0]
        events = [dict(base, log_time=SECOND + fraction) for fraction in (0.1, 0.5, 0.9, 1.2)]
        write(_logging.textFileLogObserver, events)
        self.assertEqual(calls, [SECOND + 0.1, SECOND + 1.2])
        del calls[:]
        write(lambda f: _logging.textFileLogObserver(f, "%H:%M:%S.%f"), events)
        self.assertEqual(len(calls), 4)

    def test_fastPath(self) -> None:
        """
        Access events, and events whose format has no field, are written
        without Twisted's formatting; others with it.
        """
        formatted: list[dict[str, Any]] = []
        twistedFormat = _logging.formatEventAsClassicLogText

        def recording(event: dict[str, Any], formatTime: Any) -> str | None:
            formatted.append(event)
            return twistedFormat(event, formatTime=formatTime)

        self.patch(_logging, "formatEventAsClassicLogText", recording)
        events = accessEvents()
        write(_logging.textFileLogObserver, [*events, dict(events[0], log_format="no field")])
        self.assertEqual(formatted, [])
        write(_logging.textFileLogObserver, [failureEvent()])
        self.assertEqual(len(formatted), 1)

    def test_controlCharacters(self) -> None:
        """
        Every control character but the LF (followed by a TAB, as Twisted
        writes it) and the TAB of a multi-line entry is escaped, on the
        fast path and on Twisted's: a CR in a client's text cannot show a
        forged line under C{cat}, nor an escape sequence reach a terminal.
        """
        forged = "\r2026-12-07T12:00:00+0000 [ldapd.access#info] conn=1 op=1 BIND"
        base = accessEvents()[0]
        events = [
            dict(base, accessLine="x" + forged + "\x1b[2J\x00\x85\u2028 and\ta\nb"),
            dict(base, log_format="{x} {y}", x="x" + forged, y="\x1b[2J"),
            dict(failureEvent(), verb="divide" + forged),
        ]
        written = write(_logging.textFileLogObserver, events)
        expected = write(twistedTextFileLogObserver, events)
        for ours, theirs in zip(written, expected, strict=True):
            self.assertNotRegex(ours, "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
            self.assertEqual(ours, escapeControl(theirs, multiline=True))
        self.assertIn("x\\x0d2026-12-07T12:00:00+0000 [ldapd.access#info]", written[0])
        self.assertTrue(written[0].endswith(" and\ta\n\tb\n"))


class JSONFileLogObserverTests(unittest.SynchronousTestCase):
    """
    L{_logging.jsonFileLogObserver} writes the bytes
    L{twisted.logger.jsonFileLogObserver} writes.
    """

    def assertSameJSON(self, events: list[dict[str, Any]], **kwargs: Any) -> None:
        """
        Both observers write the same text for C{events}, the same bytes to
        a binary file, and leave the events flattened alike.
        """

        def twisted(f: Any) -> Any:
            return twistedJSONFileLogObserver(f, **kwargs)

        def ldapd(f: Any) -> Any:
            return _logging.jsonFileLogObserver(f, **kwargs)

        ours: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        self.assertEqual(write(ldapd, events, copies=ours), write(twisted, events, copies=theirs))
        self.assertEqual(write(ldapd, events, io.BytesIO()), write(twisted, events, io.BytesIO()))
        self.assertEqual([e.get("log_flattened") for e in ours],
                         [e.get("log_flattened") for e in theirs])

    def test_accessEvents(self) -> None:
        """
        The access log's events are written as Twisted writes them, with
        every field and the flattened line, without and with a worker's
        C{log_system}.
        """
        events = accessEvents()
        self.assertSameJSON(events)
        self.assertSameJSON([dict(e, log_system="ldapd.access#info worker=1") for e in events])
        [line] = write(_logging.jsonFileLogObserver, events[1:2])
        self.assertIn('"accessLine!s:"', line)
        self.assertIn('"filter": "(cn=Zo\\u00eb*)"', line)

    def test_oneField(self) -> None:
        """
        An event whose format is one field, whose text is written once for
        the field and both its flattened forms, is written as Twisted writes
        it whatever the text holds, and so is one whose field is not text.
        """
        base = accessEvents()[0]
        self.assertSameJSON([
            dict(base, accessLine='a "quoted\\" \\ line\n\twith \x00 \u2028 Zo\u00eb \U0001f600'),
            dict(base, accessLine=""),
            dict(base, log_format="{n\u00e9}", **{"n\u00e9": "x\"y"}),
            dict(base, log_format="{n}", n=12),
        ])

    def test_varied(self) -> None:
        """
        Failures, bytes, objects only Twisted's hook encodes, missing keys
        (which raise, as they do in Twisted's) and every other kind of event
        are written as Twisted writes them.
        """
        events = variedEvents()
        self.assertSameJSON(events)
        written = write(_logging.jsonFileLogObserver, events)
        self.assertIn(KeyError, written)
        self.assertIn(IndexError, written)

    def test_fastPath(self) -> None:
        """
        Access events are encoded without Twisted's C{eventAsJSON}; events
        with a failure are encoded by it.
        """
        encoded: list[dict[str, Any]] = []
        twistedEventAsJSON = _logging.eventAsJSON

        def recording(event: dict[str, Any]) -> str:
            encoded.append(event)
            return twistedEventAsJSON(event)

        self.patch(_logging, "eventAsJSON", recording)
        write(_logging.jsonFileLogObserver, accessEvents())
        self.assertEqual(encoded, [])
        write(_logging.jsonFileLogObserver, [failureEvent()])
        self.assertEqual(len(encoded), 1)

    def test_circular(self) -> None:
        """
        An event holding a reference cycle fails to encode with the
        ValueError Twisted's C{eventAsJSON} raises for it.
        """
        loop: list[Any] = []
        loop.append(loop)
        logged: list[dict[str, Any]] = []
        Logger(namespace="ldapd.test", observer=logged.append).info("{n}", n=1, loop=loop)
        [event] = logged
        self.assertRaises(ValueError, _logging.eventAsJSON, dict(event))
        self.assertRaises(ValueError, _logging._eventAsJSON, dict(event))

    def test_recordSeparator(self) -> None:
        """
        The record separator is written before each event, as Twisted
        writes it.
        """
        self.assertSameJSON(accessEvents(), recordSeparator="")

    def test_roundTrip(self) -> None:
        """
        What is written is read back by Twisted's C{eventsFromJSONLogFile}
        as the events Twisted's own observer writes.
        """
        candidates = accessEvents() + variedEvents()
        events = [event for event, written
                  in zip(candidates, write(twistedJSONFileLogObserver, candidates), strict=True)
                  if isinstance(written, str)]
        ours, theirs = io.StringIO(), io.StringIO()
        write(_logging.jsonFileLogObserver, events, ours)
        write(twistedJSONFileLogObserver, events, theirs)
        ours.seek(0)
        theirs.seek(0)
        loaded = list(eventsFromJSONLogFile(ours))
        self.assertEqual(len(loaded), len(events))
        self.assertEqual(
            [(e["log_level"], e.get("accessLine")) for e in loaded[:3]],
            [(LogLevel.info, event["accessLine"]) for event in events[:3]])
        self.assertEqual([repr(e) for e in loaded],
                         [repr(e) for e in eventsFromJSONLogFile(theirs)])


class TapObserverTests(unittest.SynchronousTestCase):
    """
    C{twist ldapd} writes its log with ldapd's observers where Twisted's
    would have been used.
    """

    def parse(self, arguments: list[str], factory: Any = None) -> TwistOptions:
        """
        Parse C{twist} options ending with C{ldapd --config} and a valid
        configuration.

        @param arguments: the options before C{ldapd}.
        @param factory: a C{fileLogObserverFactory} set before parsing.
        @return: the parsed options.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-logging-"))
        self.addCleanup(shutil.rmtree, folder, True)
        path = folder / "ldapd.toml"
        path.write_text(CONFIG.replace("{port}", "0"))
        options = TwistOptions()
        if factory is not None:
            options["fileLogObserverFactory"] = factory
        options.parseOptions([*arguments, "ldapd", "--config", str(path)])
        return options

    def test_json(self) -> None:
        """
        C{--log-format json} writes with L{_logging.jsonFileLogObserver}.
        """
        options = self.parse(["--log-format", "json"])
        self.assertIs(options["fileLogObserverFactory"].observer, _logging.jsonFileLogObserver)

    def test_text(self) -> None:
        """
        C{--log-format text} writes with L{_logging.textFileLogObserver}.
        """
        options = self.parse(["--log-format", "text"])
        self.assertIs(options["fileLogObserverFactory"].observer, _logging.textFileLogObserver)

    def test_default(self) -> None:
        """
        Without C{--log-format}, the format C{twist} chooses for the log
        file is written by ldapd's observer for it.
        """
        options = self.parse([])
        expected = {"json": _logging.jsonFileLogObserver, "text": _logging.textFileLogObserver}
        self.assertIs(options["fileLogObserverFactory"].observer, expected[options["logFormat"]])

    def test_otherLeftAlone(self) -> None:
        """
        An observer factory other than Twisted's is kept.
        """

        def custom(outFile: Any) -> Any:
            return twistedTextFileLogObserver(outFile)

        options = self.parse([], custom)
        self.assertIs(options["fileLogObserverFactory"], custom)


@pytest.mark.integration
class ServerLogTests(unittest.SynchronousTestCase):
    """
    The real C{twist ldapd --log-format text} writes its access lines in
    Twisted's text format.
    """

    def test_accessLines(self) -> None:
        """
        A bind and a search are logged as a timestamp, the namespace and
        level, and the access line.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-logging-"))
        self.addCleanup(shutil.rmtree, folder, True)
        server = ServerProcess(CONFIG, folder)
        server.start()
        self.addCleanup(server.stop)
        connection = LDAPConnection(
            Server(server.url, connect_timeout=5, get_info=NONE), f"cn=admin,{SUFFIX}", "secret",
            auto_bind=True, receive_timeout=10)
        connection.search(SUFFIX, "(objectClass=*)", attributes=["cn"])
        connection.unbind()
        deadline = time.monotonic() + 10
        while "SRCH" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = server.log()
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}"
        self.assertRegex(log, stamp + r" \[ldapd\.access#info\] conn=\d+ op=\d+ BIND "
                         rf'dn="cn=admin,{SUFFIX}" method="simple" RESULT err=0 tag=97 '
                         r"nentries=0 etime=\d+\.\d{6} ")
        self.assertRegex(log, stamp + r" \[ldapd\.access#info\] conn=\d+ op=\d+ SRCH "
                         rf'base="{SUFFIX}" scope=2 filter="\(objectClass=\*\)" attrs="cn" '
                         r"RESULT err=32 tag=101 nentries=0 ")
        self.assertRegex(log, stamp + r" \[ldapd\.tap\.LDAPService#info\] ldapd serving ")

    def test_forgedLine(self) -> None:
        """
        A search whose base DN holds a CR, then what looks like the access
        line of the root DN's bind, is logged on one line, the CR escaped:
        under C{cat} no line shows a bind that did not happen.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-logging-"))
        self.addCleanup(shutil.rmtree, folder, True)
        server = ServerProcess(CONFIG, folder)
        server.start()
        self.addCleanup(server.stop)
        forged = (f'2026-12-07T12:00:00+0000 [ldapd.access#info] conn=1 op=1 BIND '
                  f'dn="cn=admin,{SUFFIX}" method="simple" RESULT err=0 tag=97')
        connection = LDAPConnection(Server(server.url, connect_timeout=5, get_info=NONE),
                                    auto_bind=True, receive_timeout=10, check_names=False)
        for separator in ("\r", "\n", "\r\n", "\x1b[2K\r"):
            connection.search(f"ou=x{separator}{forged}", "(objectClass=*)")
        connection.unbind()
        deadline = time.monotonic() + 10
        while server.log().count("SRCH") < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        log = server.log()
        self.assertEqual(log.count("SRCH"), 4)
        self.assertNotRegex(log, "[\x00-\x08\x0b-\x1f\x7f]")
        for line in log.splitlines():
            self.assertFalse(line.lstrip().startswith("2026-12-07T12:00:00"), line)
        self.assertIn('base="ou=x\\x0d2026-12-07T12:00:00+0000', log)
        self.assertIn('base="ou=x\\x0a2026-12-07T12:00:00+0000', log)
