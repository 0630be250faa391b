"""
A real ldapd for an application's tests, in the test process: what the
pytest plugin (L{ldapd.pytest_plugin}) hands out as C{ldap_server}, usable
without pytest too.

  - L{LDAPTestServer}: a L{Directory<ldapd.directory.Directory>} built from a
    configuration (L{ldapd.config.buildConfig}), loaded with entries and
    listening on a free loopback port, with the controls a test needs:
    L{FaultInjector}'s failures and delays, dropped connections, and a
    L{ServerClock} the test moves.
  - L{ReactorThread}: a reactor of its own in a background thread, for
    tests whose own thread never runs one (plain, asyncio and trial tests).

Everything the server does happens on its reactor; a L{Runner} carries each
call of the test's there and waits for its result.
"""

from __future__ import annotations

import functools
import tomllib
from bisect import insort
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from threading import Thread, current_thread
from typing import Any, Callable, Iterable, Protocol, Sequence

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer, task
from twisted.internet.base import DelayedCall
from twisted.internet.interfaces import ITCPTransport
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import Logger
from twisted.python.failure import Failure

from ldapd import passwords
from ldapd.config import ServerConfig, buildConfig
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.ldif import LDIFRecord, parseLDIF
from ldapd.operation import Identity, Operation
from ldapd.protocol import LDAPServerFactory, LDAPServerProtocol
from ldapd.registry import ConfigError
from ldapd.requests import BindRequest

__all__ = [
    "DEFAULT_ROOT_DN",
    "DEFAULT_ROOT_PASSWORD",
    "DEFAULT_SUFFIX",
    "FaultInjector",
    "LDAPTestServer",
    "ReactorThread",
    "Runner",
    "ServerClock",
    "addEntries",
    "configFor",
    "readLDIF",
]

_log = Logger()

#: The suffix of the test server's database unless configured otherwise.
DEFAULT_SUFFIX = "dc=example,dc=com"
#: Its root DN.
DEFAULT_ROOT_DN = "cn=admin,dc=example,dc=com"
#: The root DN's password.
DEFAULT_ROOT_PASSWORD = "secret"


class Runner(Protocol):
    """
    Where a test server runs: a reactor, and a way to run a call on it from
    the test's code.
    """

    reactor: Any

    def call(self, f: Callable[..., Any], *args: Any) -> Any:
        """
        Run C{f(*args)} on the reactor and wait for its result.

        @return: its result; a Deferred's or coroutine's once it is there.
        @raise Exception: what C{f} raised, or its Deferred failed with.
        """


def _newReactor() -> Any:
    """
    @return: a new reactor of the platform's best kind, not installed as the
        global one (which other tests in the process, trial's among them,
        run and stop as they please).
    """
    try:
        from twisted.internet.epollreactor import EPollReactor
    except ImportError:
        from twisted.internet.selectreactor import SelectReactor

        return SelectReactor()
    return EPollReactor()  # type: ignore[no-untyped-call]


class ReactorThread:
    """
    A reactor of its own, running in a daemon thread until L{stop}.

    @ivar reactor: the reactor.
    """

    def __init__(self) -> None:
        self.reactor = _newReactor()
        self._thread = Thread(target=self.reactor.run, kwargs={"installSignalHandlers": False},
                              name="ldapd test reactor", daemon=True)
        self._thread.start()

    def call(self, f: Callable[..., Any], *args: Any) -> Any:
        """
        Run C{f(*args)} in the reactor's thread and wait for its result.

        @raise RuntimeError: if called from the reactor's thread, which
            would wait for itself.
        """
        if current_thread() is self._thread:
            raise RuntimeError("called from the test server's own reactor thread")
        return blockingCallFromThread(self.reactor, f, *args)

    def stop(self) -> None:
        """
        Stop the reactor (its thread pool with it) and wait for the thread.
        """
        self.reactor.callFromThread(self.reactor.stop)
        self._thread.join(30)


class ServerClock:
    """
    The reactor a test server's directory is given: the real one, whose
    time a test moves forward with L{advance}. Timed calls made through it
    (plugins' timers, delays, idle timeouts) run when their time comes by
    this clock, whether the real time passed or the test moved it, as
    C{twisted.internet.task.Clock}'s do; anything else is the real
    reactor's.

    Only the reactor's thread uses it.

    @ivar offset: how far the test has moved the clock, in seconds.
    """

    def __init__(self, reactor: Any) -> None:
        """
        @param reactor: the real reactor.
        """
        self._reactor = reactor
        self.offset = 0.0
        self._calls: list[DelayedCall] = []
        self._wakeup: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def seconds(self) -> float:
        """
        @return: the real reactor's time plus L{offset}.
        """
        return self._reactor.seconds() + self.offset  # type: ignore[no-any-return]

    def callLater(self, delay: float, f: Callable[..., object], *args: Any,
                  **kwargs: Any) -> DelayedCall:
        """
        Call C{f} when this clock reaches C{delay} seconds from now.
        """
        call = DelayedCall(self.seconds() + delay, f, args, kwargs, self._cancelled,
                           self._moved, seconds=self.seconds)
        insort(self._calls, call, key=DelayedCall.getTime)
        self._schedule()
        return call

    def getDelayedCalls(self) -> list[DelayedCall]:
        """
        @return: the calls not yet made.
        """
        return list(self._calls)

    def advance(self, seconds: float) -> None:
        """
        Move the clock forward, and make the calls whose time has come, in
        time order (and those they schedule, when theirs has come too).

        @raise ValueError: for a negative C{seconds}: time does not go back.
        """
        if seconds < 0:
            raise ValueError("the clock cannot go back")
        self.offset += seconds
        self._runDue()

    def stop(self) -> None:
        """
        Forget the calls not yet made.
        """
        self._calls.clear()
        self._schedule()

    def _cancelled(self, call: DelayedCall) -> None:
        if call in self._calls:
            self._calls.remove(call)
            self._schedule()

    def _moved(self, call: DelayedCall) -> None:
        self._calls.sort(key=DelayedCall.getTime)
        self._schedule()

    def _schedule(self) -> None:
        """
        Have the real reactor wake this clock up when its first call is due.
        """
        if self._wakeup is not None and self._wakeup.active():
            self._wakeup.cancel()
        self._wakeup = None
        if self._calls:
            wait = max(0.0, self._calls[0].getTime() - self.seconds())
            self._wakeup = self._reactor.callLater(wait, self._runDue)

    def _runDue(self) -> None:
        while self._calls and self._calls[0].getTime() <= self.seconds():
            call = self._calls.pop(0)
            call.called = 1
            try:
                call.func(*call.args, **call.kw)
            except Exception:
                _log.failure("timed call {call} failed", call=call)
        self._schedule()


#: The operations L{FaultInjector} acts on, each with the hook it uses.
_FAULT_HOOKS = {
    "bind": "bind",
    "search": "search",
    "compare": "compare",
    "add": "add",
    "delete": "delete",
    "modify": "modify",
    "rename": "rename",
    "extended": "extended",
}


class FaultInjector:
    """
    An operation plugin that makes clients' operations fail or wait, as a
    test asks: put before a test server's configured plugins, its C{pre_*}
    hooks run before theirs. The server's own operations are left alone.

    A bind is refused or delayed in C{pre_bind}, which every bind runs,
    anonymous, simple or SASL.
    """

    name = "faults"

    def __init__(self) -> None:
        self._failures: dict[str, deque[tuple[int, str]]] = {}
        self._delays: dict[str, float] = {}
        self._clock: Any = None
        # How many of each operation a delay holds now, and who waits for one.
        self._holding: dict[str, int] = {}
        self._waiting: dict[str, list[defer.Deferred[None]]] = {}

    def attach(self, host: Any) -> None:
        """
        Keep the directory's clock, which delays are timed by.
        """
        self._clock = host.reactor

    @staticmethod
    def _checked(operation: str) -> str:
        if operation not in _FAULT_HOOKS:
            raise ValueError(f"unknown operation {operation!r} (known: {', '.join(_FAULT_HOOKS)})")
        return operation

    def failNext(self, operation: str, resultCode: int, message: str = "") -> None:
        """
        Answer the next C{operation} with C{resultCode}; later ones go on as
        usual. Called several times, as many operations fail, in order.

        @param operation: C{"bind"}, C{"search"}, C{"compare"}, C{"add"},
            C{"delete"}, C{"modify"}, C{"rename"} or C{"extended"}.
        @param resultCode: an LDAP result code other than success (0).
        @param message: the diagnostic message sent with it.
        @raise ValueError: for an unknown operation or a result code of 0.
        """
        if not isinstance(resultCode, int) or resultCode <= 0:
            raise ValueError(f"a failure needs a result code above 0, not {resultCode!r}")
        queue = self._failures.setdefault(self._checked(operation), deque())
        queue.append((resultCode, message or f"{operation} failed by the test"))

    def setDelay(self, operation: str, seconds: float) -> None:
        """
        Hold every later C{operation} for C{seconds} of the directory's
        clock before it is carried out; 0 ends the delay.

        @raise ValueError: for an unknown operation or a negative delay.
        """
        if seconds < 0:
            raise ValueError("a delay cannot be negative")
        self._delays[self._checked(operation)] = seconds

    def whenHeld(self, operation: str) -> defer.Deferred[None]:
        """
        @return: a Deferred that fires once a client's C{operation} is
            held by a delay (at once if one is): a test that sent a request
            without waiting for its answer knows it has reached the server
            before it moves the clock.
        @raise ValueError: for an unknown operation.
        """
        if self._holding.get(self._checked(operation), 0):
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiting.setdefault(operation, []).append(waiter)
        return waiter

    def _held(self, operation: str, held: defer.Deferred[None]) -> None:
        """
        Count C{operation} held until C{held} ends, and wake who waits.
        """
        self._holding[operation] = self._holding.get(operation, 0) + 1

        def released(result: object) -> object:
            self._holding[operation] -= 1
            return result

        held.addBoth(released)
        for waiter in self._waiting.pop(operation, []):
            waiter.callback(None)

    def _apply(self, operation: str, op: Operation) -> defer.Deferred[None] | None:
        """
        Fail or delay one of the clients' operations, as asked.

        @return: C{None} to go on at once, or a Deferred that fires (or
            fails) when the delay is over.
        @raise ldaperrors.LDAPException: the failure asked for.
        """
        if op.internal:
            return None
        queued = self._failures.get(operation)
        failure = queued.popleft() if queued else None
        delay = self._delays.get(operation, 0)
        if delay:
            held = task.deferLater(self._clock, delay, _raise, failure)
            self._held(operation, held)
            # Abandon and Cancel stop an operation where it waits.
            op.onAbandon(held.cancel)
            return held.addErrback(_stopped, op)
        _raise(failure)
        return None

    def pre_bind(self, op: Operation, request: BindRequest) -> defer.Deferred[None] | None:
        return self._apply("bind", op)

    def pre_search(self, op: Operation, base: DN) -> defer.Deferred[None] | None:
        return self._apply("search", op)

    def pre_compare(self, op: Operation, ndn: DN, *args: Any) -> defer.Deferred[None] | None:
        return self._apply("compare", op)

    def pre_add(self, op: Operation, entry: Entry) -> defer.Deferred[None] | None:
        return self._apply("add", op)

    def pre_delete(self, op: Operation, ndn: DN) -> defer.Deferred[None] | None:
        return self._apply("delete", op)

    def pre_modify(self, op: Operation, modifications: Any, *args: Any) -> defer.Deferred[None] | None:
        return self._apply("modify", op)

    def pre_rename(self, op: Operation, ndn: DN, *args: Any) -> defer.Deferred[None] | None:
        return self._apply("rename", op)

    def pre_extended(self, op: Operation, name: str) -> defer.Deferred[None] | None:
        return self._apply("extended", op)


def _stopped(reason: Failure, op: Operation) -> None:
    """
    A delay was cut short: the operation ends as abandoned or canceled
    (L{Operation.check}).
    """
    if isinstance(reason.value, defer.CancelledError):
        op.check()
    reason.raiseException()


def _raise(failure: tuple[int, str] | None) -> None:
    """
    Raise the LDAP error of C{(resultCode, message)}, if any.
    """
    if failure is not None:
        raise ldaperrors.get(*failure)


@functools.cache
def _rootPasswordHash() -> str:
    """
    @return: L{DEFAULT_ROOT_PASSWORD}, hashed (a cleartext one is warned about).
    """
    return passwords.hashPassword(DEFAULT_ROOT_PASSWORD.encode(), "{SSHA}").decode()


def configFor(toml: str | None, where: str) -> dict[str, Any]:
    """
    The configuration of a test server: the default one (one memory
    database, L{DEFAULT_SUFFIX}, its root DN L{DEFAULT_ROOT_DN} with the
    password L{DEFAULT_ROOT_PASSWORD}) with what C{toml} sets: its
    C{[server]} keys over the default's, its C{[[database]]} tables instead
    of the default one, its C{[[plugin]]} and C{[[replica]]} tables.

    @param toml: a configuration in ldapd's TOML form, or C{None}.
    @param where: what holds it, for errors.
    @return: the configuration as C{tomllib} would read it.
    @raise ConfigError: if C{toml} is not valid TOML.
    """
    data: dict[str, Any] = {
        # Checked as any configuration is; the test server listens on its own.
        "server": {"listen": ["tcp:0:interface=127.0.0.1"]},
        "database": [{"suffix": DEFAULT_SUFFIX, "backend": "memory", "root_dn": DEFAULT_ROOT_DN,
                      "root_password": _rootPasswordHash()}],
    }
    if toml is None:
        return data
    try:
        given = tomllib.loads(toml)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML: {e}") from None
    server = given.pop("server", {})
    data["server"] = {**data["server"], **server} if isinstance(server, dict) else server
    data.update(given)
    return data


@functools.lru_cache(maxsize=64)
def _parsed(text: bytes) -> tuple[LDIFRecord, ...]:
    return tuple(parseLDIF(text.splitlines(keepends=True)))


def readLDIF(source: str | Path, folder: Path | None = None) -> tuple[LDIFRecord, ...]:
    """
    Read LDIF, parsing the same text once however many tests load it.

    @param source: LDIF text (a string with a line break), or the path of
        an LDIF file (a C{Path}, or a string without one).
    @param folder: where a relative path is taken from.
    @return: its records.
    @raise ValueError: if it is not valid LDIF (L{ldapd.ldif.LDIFSyntaxError}).
    @raise OSError: if the file cannot be read.
    """
    if isinstance(source, str) and "\n" in source:
        return _parsed(source.encode("utf-8"))
    path = Path(source)
    if folder is not None and not path.is_absolute():
        path = folder / path
    return _parsed(path.read_bytes())


_SUFFIX_ENTRIES = {
    "dc": ("dcObject", "organization"),
    "o": ("organization",),
    "ou": ("organizationalUnit",),
}


async def addEntries(directory: Any, records: Iterable[LDIFRecord], suffixes: bool = False) -> int:
    """
    Add LDIF entries to a directory as each database's root DN, as seed data
    is added: through the plugins' hooks.

    @param directory: the open L{ldapd.directory.Directory}.
    @param records: the entries, parents before children.
    @param suffixes: whether to add first, for each configured database
        whose suffix entry C{records} lack, a suffix entry (for a C{dc}, C{o}
        or C{ou} suffix: C{dc=example,dc=com} is a dcObject organization).
    @return: how many entries were added.
    @raise ValueError: naming the line of a record that is not an entry.
    """
    schema = directory.schema
    entries = []
    for record in records:
        if record.changetype not in ("content", "add"):
            raise ValueError(f"line {record.lineNumber}: a {record.changetype} record, not an entry")
        entries.append(Entry(DN.parse(record.dn),
                             [(name, (value,)) for name, value in record.attributes], schema))
    if suffixes:
        present = {entry.ndn for entry in entries}
        entries[:0] = [_suffixEntry(db.suffix, schema) for db in directory.configuredDatabases
                       if db.normalizedSuffix not in present and db.suffix.rdn[0].type.lower()
                       in _SUFFIX_ENTRIES]
    op = directory.internalOperation()
    for entry in entries:
        db = directory.databaseFor(entry.ndn)
        if db is not None and db.rootDN is not None:
            op.identity = Identity(db.rootDN, db.normalizedRootDN, isRoot=True)
        await directory.add(op, entry)
    return len(entries)


def _suffixEntry(suffix: DN, schema: Any) -> Entry:
    """
    @return: the entry of a C{dc}, C{o} or C{ou} suffix.
    """
    ava = suffix.rdn[0]
    kind = ava.type.lower()
    attributes: list[tuple[str, Sequence[bytes]]] = [
        ("objectClass", [b"top", *(name.encode() for name in _SUFFIX_ENTRIES[kind])]),
        (ava.type, [ava.value.encode("utf-8")]),
    ]
    if kind == "dc":
        attributes.append(("o", [ava.value.encode("utf-8")]))
    return Entry(suffix, attributes, schema)


class _TrackingFactory(LDAPServerFactory):
    """
    An L{LDAPServerFactory} that knows its open connections, to drop them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: dict[LDAPServerProtocol, list[defer.Deferred[None]]] = {}

    def buildProtocol(self, addr: Any) -> LDAPServerProtocol | None:
        p = super().buildProtocol(addr)
        if p is not None:
            self.connections[p] = []
        return p

    def connectionClosed(self, p: LDAPServerProtocol) -> None:
        super().connectionClosed(p)
        for waiting in self.connections.pop(p, ()):
            waiting.callback(None)

    def dropAll(self) -> defer.Deferred[Any]:
        """
        Close every open connection at once, without a Notice of
        Disconnection, as a crashed server or a network failure would.

        @return: a Deferred that fires when they are all closed.
        """
        closed = []
        for p, waiting in list(self.connections.items()):
            d: defer.Deferred[None] = defer.Deferred()
            waiting.append(d)
            closed.append(d)
            ITCPTransport(p.transport).abortConnection()
        return defer.gatherResults(closed)


@dataclass
class _Serving:
    """
    What a running test server holds on its reactor.
    """

    config: ServerConfig
    clock: ServerClock
    factory: _TrackingFactory
    port: Any


class LDAPTestServer:
    """
    A real ldapd in the test process: a directory built from a
    configuration, loaded with entries, listening on a free port of
    127.0.0.1, run on a L{Runner}'s reactor. Its methods may be called
    from the test's thread: they run on the reactor and wait there.

    @ivar url: C{ldap://127.0.0.1:PORT}.
    @ivar port: the port.
    @ivar suffix: the suffix of its first database.
    @ivar root_dn: that database's root DN.
    @ivar root_password: the root DN's password; C{None} when the
        configuration gives only its hash.
    @ivar directory: the L{ldapd.directory.Directory}, whose methods are
        to be called on the reactor (see L{call}).
    @ivar clock: the directory's clock, which the test moves with
        C{clock.advance(seconds)}.
    """

    def __init__(self, runner: Runner, config: dict[str, Any], path: Path | None = None,
                 records: Sequence[LDIFRecord] = ()) -> None:
        """
        Build, fill and start the server.

        @param runner: where it runs.
        @param config: its configuration (L{configFor}).
        @param path: the file its configuration stands for, which errors
            name and relative paths in it are taken from.
        @param records: the entries it starts with, besides each database's
            suffix entry.
        @raise ConfigError: for a configuration that is wrong.
        """
        self._runner = runner
        self._faults = FaultInjector()
        self._serving: _Serving = runner.call(self._start, config, path, records)
        directory = self._serving.config.directory
        self.directory = directory
        self.port: int = self._serving.port.getHost().port
        self.url = f"ldap://127.0.0.1:{self.port}"
        first = directory.configuredDatabases[0]
        self.suffix = str(first.suffix)
        self.root_dn = str(first.rootDN) if first.rootDN is not None else None
        self.root_password = _cleartextRootPassword(config)
        self.clock = _ClockControl(runner, self._serving.clock)

    async def _start(self, data: dict[str, Any], path: Path | None,
                     records: Sequence[LDIFRecord]) -> _Serving:
        reactor = self._runner.reactor
        clock = ServerClock(reactor)
        config = buildConfig(data, path, clock, plugins=[self._faults])
        directory = config.directory
        await directory.open()
        try:
            await addEntries(directory, records, suffixes=True)
            factory = _TrackingFactory(
                directory, clock, config.maxPDUSize, config.tls, config.connectionLimits,
                config.maxAnonymousPDUSize, config.maxBufferedBytes)
            port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        except BaseException:
            await directory.close()
            clock.stop()
            raise
        return _Serving(config, clock, factory, port)

    def call(self, f: Callable[..., Any], *args: Any) -> Any:
        """
        Run C{f(*args)} on the server's reactor (where its directory's
        methods must be called) and wait for its result.

        @return: the result; a Deferred's or coroutine's once it is there.
        """
        return self._runner.call(f, *args)

    def add_ldif(self, ldif: str | Path) -> int:
        """
        Add entries, as the root DN, through the plugins.

        @param ldif: LDIF text, or the path of an LDIF file.
        @return: how many entries were added.
        """
        return self.call(addEntries, self.directory, readLDIF(ldif))  # type: ignore[no-any-return]

    def fail_next(self, operation: str, result_code: int, message: str = "") -> None:
        """
        Answer the next C{operation} of a client with C{result_code}; later
        ones succeed again (L{FaultInjector.failNext}).
        """
        self.call(self._faults.failNext, operation, result_code, message)

    def delay(self, operation: str, seconds: float) -> None:
        """
        Hold every later C{operation} of the clients for C{seconds} of the
        server's clock; 0 ends the delay (L{FaultInjector.setDelay}).
        """
        self.call(self._faults.setDelay, operation, seconds)

    def wait_held(self, operation: str, timeout: float = 30.0) -> None:
        """
        Wait until a client's C{operation} is held by L{delay}: one sent
        without waiting for its answer may not have reached the server yet
        (L{FaultInjector.whenHeld}).

        @param timeout: the most seconds of the real reactor's to wait.
        @raise defer.TimeoutError: if none is held by then.
        """
        self.call(lambda: self._faults.whenHeld(operation).addTimeout(timeout, self._runner.reactor))

    def drop_connections(self) -> int:
        """
        Close every client connection at once, as a network failure would;
        the server goes on listening.

        @return: how many connections were closed.
        """
        factory = self._serving.factory

        async def drop() -> int:
            count = len(factory.connections)
            await factory.dropAll()
            return count

        return self.call(drop)  # type: ignore[no-any-return]

    def stop(self) -> None:
        """
        Stop listening, drop the connections and close the directory.
        """
        self.call(self._stop)

    async def _stop(self) -> None:
        serving = self._serving
        await serving.port.stopListening()
        await serving.factory.dropAll()
        try:
            await serving.config.directory.close()
        finally:
            serving.clock.stop()


def _cleartextRootPassword(config: dict[str, Any]) -> str | None:
    """
    @return: the cleartext password of the first database's root DN: the
        default one's, or one the configuration gives without a scheme.
    """
    databases = config.get("database")
    first = databases[0] if isinstance(databases, list) and databases else {}
    stored = first.get("root_password") if isinstance(first, dict) else None
    if stored == _rootPasswordHash():
        return DEFAULT_ROOT_PASSWORD
    if not isinstance(stored, str):
        return None
    try:
        cleartext = passwords.schemeOf(stored.encode("utf-8")) is None
    except passwords.UnknownScheme:
        cleartext = False
    return stored if cleartext else None


class _ClockControl:
    """
    A test server's L{ServerClock} as the test's thread moves it.
    """

    def __init__(self, runner: Runner, clock: ServerClock) -> None:
        self._runner = runner
        self._clock = clock

    def advance(self, seconds: float) -> None:
        """
        Move the server's clock forward by C{seconds}, making the timed
        calls that come due (L{ServerClock.advance}).
        """
        self._runner.call(self._clock.advance, seconds)

    def seconds(self) -> float:
        """
        @return: the server's time.
        """
        return self._runner.call(self._clock.seconds)  # type: ignore[no-any-return]
