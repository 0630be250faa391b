"""
Faster equivalents of Twisted's file log observers, which C{twist ldapd}
uses in place of Twisted's own (see L{ldapd.tap.Options.postOptions}).

Every operation writes one access log line, and Twisted's observers spent
more on it than on a tenth of an indexed search: C{string.Formatter}
parsing the format in Python, a time zone and C{strftime} for every
timestamp, and for JSON the flattening of the format's fields and the
C{default} hook C{json.dumps} calls for the logger and the level. These
observers write the bytes Twisted's would, except that the text observer
escapes the control characters Twisted leaves as they are (all but the LF
and TAB of a multi-line entry: a CR in a client's DN would show a forged
line under C{cat}); they take a shorter way
for the events that are common (a format that is one plain field, as the
access log's C{"{accessLine}"}, or no field at all; a timestamp in a second
already formatted) and hand every other event to Twisted's own functions.

Twisted's observers also write and flush every event on its own, one
C{write()} system call per access log line. Given the reactor, ldapd's
buffer the events of one reactor iteration and write them with one call at
its end (L{BufferedFileLogObserver}): nothing waits longer than the iteration
that logged it, at most L{MAX_BUFFERED} characters are ever held (past that
the buffer is written at once, so a slow disk slows the server as an
unbuffered log would, rather than making it hold more), and a clean stop
writes everything (after the reactor's shutdown, and before any event logged
once it has stopped).
"""

from __future__ import annotations

import json.encoder
import math
import threading
from json import JSONEncoder
from typing import IO, Any, Callable, Mapping

from twisted.logger import (
    LogEvent,
    Logger,
    LogLevel,
    eventAsJSON,
    formatEventAsClassicLogText,
    formatTime,
    timeFormatRFC3339,
)
from twisted.logger._flatten import flattenEvent
from twisted.logger._json import objectSaveHook
from twisted.python.compat import ioType

from ldapd.escaping import escapeControl

__all__ = [
    "MAX_BUFFERED",
    "BufferedFileLogObserver",
    "TwistObserverFactory",
    "jsonFileLogObserver",
    "textFileLogObserver",
]

#: The most characters a L{BufferedFileLogObserver} holds before it writes.
MAX_BUFFERED = 64 * 1024

#: The C{strftime} directives whose output is the same all through a whole
#: second (in one time zone and locale); C{%f} and the platform's flags and
#: extensions are not among them.
_STEADY_DIRECTIVES = frozenset("aAbBcCdDeFgGhHIjmMnprRStTuUVwWxXyYzZ%")

#: Above this fraction of a second, C{datetime.fromtimestamp} may round a
#: timestamp up to the next second, so it is not formatted from the cache.
_LAST_CACHED_FRACTION = 0.999999

#: What Twisted's C{eventAsJSON} writes for a C{Logger} and for each level.
_LOGGER_JSON = objectSaveHook(Logger())
_LEVEL_JSON = {level: objectSaveHook(level) for level in LogLevel.iterconstants()}

#: C{json.dumps(..., skipkeys=True)} as C{eventAsJSON} calls it, without its
#: C{default}.
_encoder = JSONEncoder(skipkeys=True)

#: What C{_encoder.encode} makes for each call, made once (it holds no state
#: between calls, so threads may share it): the chunks of a value's JSON.
#: Without the check for circular references, which ends in RecursionError
#: instead of ValueError. C{None} without C{json}'s C accelerator.
_makeEncoder = getattr(json.encoder, "c_make_encoder", None)
_encodeString = json.encoder.encode_basestring_ascii
_chunks = _makeEncoder and _makeEncoder(
    None, _encoder.default, _encodeString, None,
    _encoder.key_separator, _encoder.item_separator, False, True, True)


def _steadyWithinSecond(timeFormat: str) -> bool:
    """
    @param timeFormat: a C{strftime} format.
    @return: whether C{timeFormat} formats every instant of a whole second
        to the same text.
    """
    characters = iter(timeFormat)
    for character in characters:
        if character == "%" and next(characters, None) not in _STEADY_DIRECTIVES:
            return False
    return True


def _singleField(logFormat: str) -> str | None:
    """
    @param logFormat: a log event's format.
    @return: the name of the field if C{logFormat} is one replacement field
        and nothing else, with a plain name and neither conversion nor
        format spec (C{"{accessLine}"}); otherwise C{None}.
    """
    if logFormat[:1] == "{" and logFormat[-1:] == "}":
        name = logFormat[1:-1]
        if name.isidentifier():
            return name
    return None


def _isLiteral(logFormat: str) -> bool:
    """
    @param logFormat: a log event's format.
    @return: whether C{logFormat} has no replacement field (nor escaped
        brace), so that it formats to itself.
    """
    return "{" not in logFormat and "}" not in logFormat


class _TimeFormatter:
    """
    C{twisted.logger.formatTime} with one format, remembering the text of the
    last whole second it formatted when the format's output cannot change
    within a second. The time zone's offset is computed, as Twisted does,
    from the first timestamp of each second; offsets change on whole seconds.
    """

    def __init__(self, timeFormat: str | None) -> None:
        """
        @param timeFormat: the C{strftime} format, or C{None} for C{"-"}.
        """
        self._timeFormat = timeFormat
        self._cacheable = timeFormat is not None and _steadyWithinSecond(timeFormat)
        # One tuple, replaced whole, so that a thread never reads one
        # second's number with another's text.
        self._last: tuple[int, str] | None = None

    def __call__(self, when: float | None) -> str:
        """
        @param when: a timestamp, or C{None}.
        @return: what C{formatTime(when, timeFormat)} returns.
        """
        if self._cacheable and (type(when) is float or type(when) is int):
            try:
                second = math.floor(when)
            except (ValueError, OverflowError):
                return formatTime(when, self._timeFormat)
            if when - second < _LAST_CACHED_FRACTION:
                last = self._last
                if last is not None and last[0] == second:
                    return last[1]
                text = formatTime(when, self._timeFormat)
                self._last = (second, text)
                return text
        return formatTime(when, self._timeFormat)


class _TextFormatter:
    """
    C{twisted.logger.formatEventAsClassicLogText} with a L{_TimeFormatter},
    which formats events without a failure whose format is one plain field
    holding a C{str}, or no field at all, without C{string.Formatter}.
    """

    def __init__(self, timeFormat: str | None) -> None:
        """
        @param timeFormat: the C{strftime} format of the timestamps.
        """
        self._formatTime = _TimeFormatter(timeFormat)

    def _classic(self, event: LogEvent) -> str | None:
        """
        @param event: a log event.
        @return: what C{formatEventAsClassicLogText} makes of it, with its
            control characters escaped.
        """
        text = formatEventAsClassicLogText(event, formatTime=self._formatTime)
        return None if text is None else escapeControl(text, multiline=True)

    def __call__(self, event: LogEvent) -> str | None:
        """
        @param event: a log event.
        @return: the line C{formatEventAsClassicLogText} makes of it, or
            C{None} if it makes none, with every control character but
            the LF and TAB that continue an entry escaped.
        """
        logFormat = event.get("log_format")
        system = event.get("log_system")
        if (type(logFormat) is not str or "log_failure" in event or "log_flattened" in event
                or not (system is None or type(system) is str)):
            return self._classic(event)
        name = _singleField(logFormat)
        if name is not None:
            text = event.get(name)
            if type(text) is not str:
                return self._classic(event)
        elif _isLiteral(logFormat):
            text = logFormat
        else:
            return self._classic(event)
        if not text:
            return None
        if system is None:
            level = event.get("log_level")
            levelName = "-" if level is None else level.name
            system = f"{event.get('log_namespace', '-')}#{levelName}"
        line = f"{self._formatTime(event.get('log_time'))} [{system}] {text}"
        return _continued(line)


def _continued(line: str) -> str:
    """
    @param line: the text of one log entry.
    @return: the entry as Twisted writes it, each line after the first
        starting with a TAB, and its other control characters escaped: a
        CR, or any character a terminal acts on, in a client's DN would
        otherwise show a forged line, or rewrite the screen, under C{cat}.
    """
    return escapeControl(line, multiline=True).replace("\n", "\n\t") + "\n"


def _eventAsJSON(event: LogEvent) -> str:
    """
    C{twisted.logger.eventAsJSON}, which flattens an event whose format is
    one plain field itself, and encodes the event without C{json.dumps}'s
    C{default} hook when only its logger and level need one.

    @param event: a log event; flattened, as Twisted's function does.
    @return: the JSON text Twisted's function returns.
    """
    logFormat = event.get("log_format")
    name = None
    if type(logFormat) is str and "log_flattened" not in event:
        name = _singleField(logFormat)
    text = None
    if name is not None and name in event:
        value = event[name]
        event["log_flattened"] = {f"{name}!s:": str(value), f"{name}!:": value}
        if type(value) is str:
            text = value
    elif not (type(logFormat) is str and _isLiteral(logFormat)):
        flattenEvent(event)
    record = dict(event)
    try:
        if type(record.get("log_logger")) is Logger:
            record["log_logger"] = _LOGGER_JSON
        level = _LEVEL_JSON.get(record.get("log_level"))
        if level is not None:
            record["log_level"] = level
        if _chunks is None:
            return _encoder.encode(record)
        if text is None or name is None:
            return "".join(_chunks(record, 0))
        # The field's text (the access log line) is in the event three
        # times: as itself and as both flattened fields, which were added
        # last. Its JSON is made once for the two of them.
        del record["log_flattened"]
        head = "".join(_chunks(record, 0))
        encoded = _encodeString(text)
        return (f'{head[:-1]}, "log_flattened": {{{_encodeString(name + "!s:")}: {encoded}, '
                f'{_encodeString(name + "!:")}: {encoded}}}}}')
    except (TypeError, RecursionError):
        # Something else needs the hook (bytes, a failure, any object):
        # Twisted's function encodes it; the event is already flattened.
        return eventAsJSON(event)


class BufferedFileLogObserver:
    """
    C{twisted.logger.FileLogObserver}, which writes each event's text as it
    comes, except that while its reactor runs the texts of the events
    logged in the reactor's thread are kept and written together once the
    reactor is done with the current iteration (a C{callLater(0)}), or at
    once when L{MAX_BUFFERED} characters are kept.

    Events from other threads than the one it is made in (the reactor's),
    and every event while the reactor is not running (before it starts,
    after it stops), are written at once, after what is kept: the file has
    the events in the order they came.
    """

    def __init__(self, outFile: IO[Any], formatEvent: Callable[[LogEvent], str | None],
                 reactor: Any = None, maxBuffered: int = MAX_BUFFERED) -> None:
        """
        @param outFile: a file-like object, of text or else of UTF-8 bytes.
        @param formatEvent: makes an event's text, or C{None} for none.
        @param reactor: the reactor whose iterations the writes follow; with
            C{None}, every event is written and flushed at once, as
            Twisted's observer does.
        @param maxBuffered: the most characters kept before a write.
        """
        self._outFile = outFile
        self._encoding = "utf-8" if ioType(outFile) is not str else None
        self.formatEvent = formatEvent
        self._reactor = reactor
        self._maxBuffered = maxBuffered
        self._kept: list[str] = []
        self._size = 0
        self._scheduled = False
        self._watchingShutdown = False
        self._reactorThread = threading.get_ident()
        # Held while the kept texts change or are written, as events may
        # come from any thread; reentrant, as a signal handler (SIGTERM's
        # "shutting down") may log in the reactor's thread while a write
        # holds it, which would otherwise wait for itself forever.
        self._lock = threading.RLock()

    def __call__(self, event: LogEvent) -> None:
        """
        Write an event, or keep it for the end of the reactor's iteration.

        @param event: an event.
        """
        text = self.formatEvent(event)
        if not text:
            return
        reactor = self._reactor
        with self._lock:
            if (reactor is None or not reactor.running
                    or threading.get_ident() != self._reactorThread):
                self._kept.append(text)
                self._writeKept()
                return
            self._kept.append(text)
            self._size += len(text)
            if self._size >= self._maxBuffered:
                self._writeKept()
                return
            if self._scheduled:
                return
            self._scheduled = True
            if not self._watchingShutdown:
                self._watchingShutdown = True
                reactor.addSystemEventTrigger("after", "shutdown", self.flush)
        reactor.callLater(0, self.flush)

    def flush(self) -> None:
        """
        Write what is kept.
        """
        with self._lock:
            self._scheduled = False
            self._writeKept()

    def _writeKept(self) -> None:
        """
        Write and flush the kept texts; the lock is held.
        """
        if not self._kept:
            return
        text = "".join(self._kept)
        self._kept.clear()
        self._size = 0
        if self._encoding is None:
            self._outFile.write(text)
        else:
            self._outFile.write(text.encode(self._encoding))
        self._outFile.flush()


def textFileLogObserver(outFile: IO[Any], timeFormat: str | None = timeFormatRFC3339,
                        reactor: Any = None) -> BufferedFileLogObserver:
    """
    C{twisted.logger.textFileLogObserver}, faster.

    @param outFile: a file-like object, of text or else of UTF-8 bytes.
    @param timeFormat: the C{strftime} format of the timestamps, or C{None}
        for C{"-"}.
    @param reactor: the reactor whose iterations the writes follow
        (L{BufferedFileLogObserver}); C{None} writes every event at once.
    @return: a file log observer writing what Twisted's writes.
    """
    return BufferedFileLogObserver(outFile, _TextFormatter(timeFormat), reactor)


def jsonFileLogObserver(outFile: IO[Any], recordSeparator: str = "\x1e",
                        reactor: Any = None) -> BufferedFileLogObserver:
    """
    C{twisted.logger.jsonFileLogObserver}, faster.

    @param outFile: a file-like object, of text or else of UTF-8 bytes.
    @param recordSeparator: what comes before each event's JSON.
    @param reactor: the reactor whose iterations the writes follow
        (L{BufferedFileLogObserver}); C{None} writes every event at once.
    @return: a file log observer writing what Twisted's writes.
    """
    return BufferedFileLogObserver(
        outFile, lambda event: f"{recordSeparator}{_eventAsJSON(event)}\n", reactor
    )


class TwistObserverFactory:
    """
    A C{fileLogObserverFactory} for C{twist}'s options: one of this module's
    observers, given the reactor C{twist} has installed by the time it
    starts logging (after every option is parsed).

    @ivar observer: L{textFileLogObserver} or L{jsonFileLogObserver}.
    """

    def __init__(self, observer: Callable[..., BufferedFileLogObserver],
                 options: Mapping[str, Any]) -> None:
        """
        @param observer: the observer to make.
        @param options: C{twist}'s options, where C{"reactor"} is found.
        """
        self.observer = observer
        self._options = options

    def __call__(self, outFile: IO[Any]) -> BufferedFileLogObserver:
        """
        @param outFile: the log file.
        @return: the observer, writing on the reactor's iterations.
        """
        return self.observer(outFile, reactor=self._options.get("reactor"))
