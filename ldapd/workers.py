"""
C{[server] workers = N}: N server processes sharing the listeners, for more
than one core (CPython runs one thread at a time).

The parent (L{WorkerSupervisor}) binds every listener itself and starts the
workers: C{twist ldapd --config PATH --worker N --channel FD} (with the log
options the parent was given), each inheriting its end of a channel to the
parent. The parent accepts every connection and hands it over the channel
to the worker that holds the fewest (least connections,
L{ldapd.balancing}); the worker serves it as if it had accepted it. Left to
the kernel (every worker accepting on the inherited listening socket), a
pool of connections opened at once landed 7/1 or 5/3 on two workers, and
with one request outstanding per connection the busier worker set the
pace. The parent restarts a worker that dies (the new one starts at zero
connections and takes the next ones), reloads the configuration on SIGHUP
(L{WorkerSupervisor.reload}: checked by the parent, then applied by every
worker), and stops them all when it stops. A worker tags every log line it
writes with its number, so that access log lines of different workers are
told apart.

Every worker opens the same databases, so this is for backends that several
processes share (C{sql}); the configuration refuses it for C{memory}.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, Callable, Iterable, NoReturn, Sequence

from twisted.application import service
from twisted.internet import defer, error, protocol
from twisted.logger import ILogObserver, Logger, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from ldapd import systemd
from ldapd._pidfile import removePIDFile, writePIDFile
from ldapd.balancing import ConnectionBalancer, channelPair
from ldapd.config import ServerConfig, loadConfig
from ldapd.registry import ConfigError
from ldapd.tls import serverEndpoint

__all__ = ["CannotListen", "WorkerSupervisor", "claimPIDFile", "cpuFor", "endpointOrExit",
           "exitAtStart", "listenNow", "listenOrExit", "pinToCPU", "tagLogsWithWorker"]

#: Seconds before a worker that died is started again.
RESTART_DELAY = 1.0

#: Seconds a stopping worker is given before it is killed.
STOP_TIMEOUT = 30.0


class CannotListen(Exception):
    """
    An endpoint could not listen; the message says why.
    """


def listenNow(endpoint: Any, factory: Any) -> Any:
    """
    Listen on an endpoint now, without accepting yet: the endpoints ldapd
    builds (C{tcp:}, C{ssl:}, C{unix:}, a worker's handed connections) listen
    synchronously.

    @param endpoint: the server endpoint.
    @param factory: the protocol factory.
    @return: the listening port, not reading.
    @raise CannotListen: saying why it could not (C{Address already in use}).
    """
    result: list[Any] = []
    endpoint.listen(factory).addBoth(result.append)
    if not result or isinstance(result[0], Failure):
        reason = result[0].value if result else "the endpoint did not listen at once"
        socketError = getattr(reason, "socketError", None)
        raise CannotListen(getattr(socketError, "strerror", None) or str(reason))
    port = result[0]
    port.stopReading()
    return port


def exitAtStart(problem: str) -> NoReturn:
    """
    Stop start-up at once with one line on standard error.

    @param problem: what went wrong (C{cannot listen on ...: ...}).
    @raise SystemExit: with status 1, after writing C{ldapd: PROBLEM}.
    """
    sys.stderr.write(f"ldapd: {problem}\n")
    raise SystemExit(1)


def exitAfterShutdown(problem: str) -> NoReturn:
    """
    End a process whose start-up failed once the reactor is running: with
    status 1 and one line on standard error, as L{exitAtStart} does before
    it runs. Called by the reactor's C{after shutdown} trigger, once the
    services have stopped: C{SystemExit} would be caught by the reactor,
    so the process ends here, its standard streams flushed. The line goes
    to the process's own standard error, which C{twist} has redirected
    into the log by then.

    @param problem: what went wrong.
    """
    sys.stdout.flush()
    stderr = sys.__stderr__
    if stderr is not None:
        stderr.write(f"ldapd: {problem}\n")
        stderr.flush()
    os._exit(1)


def claimPIDFile(config: ServerConfig) -> None:
    """
    Write the process ID to C{[server] pid_file}, if set, or stop start-up.

    @raise SystemExit: if it cannot be written (L{exitAtStart}).
    """
    if config.pidFile is None:
        return
    try:
        writePIDFile(config.pidFile)
    except OSError as e:
        exitAtStart(f"cannot write the pid file {config.pidFile}: {e.strerror}")


def endpointOrExit(reactor: Any, description: str, tls: Any) -> Any:
    """
    Build a listener's endpoint (L{serverEndpoint}), or stop the process as
    L{listenOrExit} does: the configuration checked the string, but a
    C{systemd:} listener's socket is there only when systemd started the
    process with it.

    @param reactor: the reactor.
    @param description: the listener as configured.
    @param tls: the server's TLS, or C{None}.
    @return: the endpoint.
    @raise SystemExit: with status 1, after writing
        C{ldapd: cannot listen on DESCRIPTION: REASON} to standard error.
    """
    try:
        return serverEndpoint(reactor, description, tls)
    except ValueError as e:
        exitAtStart(f"cannot listen on {description}: {e}")
    except LookupError:
        # Twisted's systemd: parser looks the socket up in LISTEN_FDS.
        exitAtStart(f"cannot listen on {description}: systemd passed no such socket (is the "
                    "server started by its socket unit?)")


def listenOrExit(endpoint: Any, factory: Any, description: str) -> Any:
    """
    Listen on an endpoint now, without accepting yet (the caller starts
    reading when it is ready to serve), as slapd binds its listeners before
    it starts its databases. A listener that cannot be had (a port in use,
    a missing folder) stops the process at once with one line naming it,
    rather than leaving a server that runs without it.

    For the services of C{twist ldapd}, whose C{startService} runs before
    the reactor: the endpoints ldapd builds (C{tcp:}, C{ssl:}, C{unix:},
    a worker's handed connections) listen synchronously.

    @param endpoint: the server endpoint.
    @param factory: the protocol factory.
    @param description: the listener as configured, for the message.
    @return: the listening port, not reading.
    @raise SystemExit: with status 1, after writing
        C{ldapd: cannot listen on DESCRIPTION: REASON} to standard error.
    """
    try:
        return listenNow(endpoint, factory)
    except CannotListen as e:
        exitAtStart(f"cannot listen on {description}: {e}")


def rebind(ports: dict[str, Any], wanted: Sequence[str],
           bind: Callable[[str], Any]) -> tuple[list[Any], list[Any]]:
    """
    The listening ports of a reloaded configuration: those of the running
    server that it keeps, and new ones for the listeners it adds. Either
    every new listener is had, or none is kept.

    @param ports: the running ports, by listener as configured.
    @param wanted: the listeners of the new configuration, in order.
    @param bind: listens on one listener (not reading yet), or raises
        L{CannotListen}.
    @return: the ports of C{wanted}, in order (the new ones not reading),
        and the running ports it no longer has.
    @raise CannotListen: naming the listener and why, once the ports bound
        here are closed again.
    """
    bound: list[Any] = []
    kept: list[Any] = []
    for description in wanted:
        if description in ports:
            kept.append(ports[description])
            continue
        try:
            port = bind(description)
        except CannotListen as e:
            for port in bound:
                port.stopListening()
            raise CannotListen(f"cannot listen on {description}: {e}") from None
        bound.append(port)
        kept.append(port)
    return kept, [port for description, port in ports.items() if description not in wanted]


def reloadRefused(log: Logger, problem: str) -> None:
    """
    Log the one line of a reload that changed nothing.

    @param log: the service's logger.
    @param problem: naming the file, the key and what is wrong with it.
    """
    log.error("reload: {problem}; nothing changed", problem=problem)


def cpuFor(number: int, allowed: Iterable[int]) -> int:
    """
    @param number: a worker's number (1 for a server of one process).
    @param allowed: the CPUs the server may run on.
    @return: the one CPU that worker runs on: the workers take the allowed
        CPUs in turn.
    """
    cpus = sorted(allowed)
    return cpus[(number - 1) % len(cpus)]


def pinToCPU(number: int) -> int:
    """
    Run this process on one CPU, L{cpuFor} its worker number
    (C{[server] cpu_affinity}).

    A Python server's threads (the reactor's, and a backend's pool) take
    turns on one interpreter lock; when the scheduler spreads them over
    several cores, every hand-over wakes another core and the lock's cache
    lines travel. On a 2-core machine one sql process on both cores spent
    about 230 µs of CPU per search, against about 150 µs on one core.

    Call it before the process starts threads: Linux sets the calling
    thread's affinity, and threads started later inherit it.

    @param number: the worker's number (1 for a server of one process).
    @return: the CPU.
    """
    cpu = cpuFor(number, os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def tagLogsWithWorker(number: int) -> None:
    """
    Make every log event of this process name the worker: its C{log_system}
    (which the text log shows in brackets) becomes C{namespace#level
    worker=N}. Call it before logging starts, so that this observer sees
    each event before the ones that write it.

    @param number: the worker's number.
    """

    @implementer(ILogObserver)
    def tag(event: dict[str, Any]) -> None:
        if event.get("log_system", "-") == "-":
            level = event.get("log_level")
            name = level.name if level is not None else "-"
            event["log_system"] = f"{event.get('log_namespace', '-')}#{name} worker={number}"

    globalLogPublisher.addObserver(tag)


class _WorkerProtocol(protocol.ProcessProtocol):
    def __init__(self, supervisor: WorkerSupervisor, number: int) -> None:
        self.supervisor = supervisor
        self.number = number
        self.pid: int | None = None
        self.ended: defer.Deferred[None] = defer.Deferred()
        # Its channel, in the balancer.
        self.link: Any = None
        # Stopped to be replaced (a reload that changed the listeners).
        self.replaced = False

    def processEnded(self, reason: Failure) -> None:
        self.supervisor._workerEnded(self, reason)
        self.ended.callback(None)


class _RefuseConnections(protocol.Factory):
    """
    The factory of the parent's own listening ports, which never read: the
    balancer accepts on their sockets.
    """

    noisy = False

    def buildProtocol(self, addr: Any) -> None:
        return None


class WorkerSupervisor(service.Service):
    """
    Binds the listeners and runs C{workers} server processes on them.

    @ivar workers: the running workers' process transports, by number.
    """

    _log = Logger()

    def __init__(self, config: ServerConfig, arguments: list[str], reactor: Any = None,
                 restartDelay: float = RESTART_DELAY) -> None:
        """
        @param config: the validated configuration.
        @param arguments: the arguments of C{python -m twisted} that started
            this process (its log options, C{ldapd --config PATH}): a
            worker is started with them and its C{--worker} options.
        @param reactor: the reactor; the global one by default.
        @param restartDelay: seconds before a worker that died is restarted.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.config = config
        self.arguments = arguments
        self.restartDelay = restartDelay
        self.workers: dict[int, Any] = {}
        self._protocols: dict[int, _WorkerProtocol] = {}
        self._ports: list[Any] = []
        self._balancer = ConnectionBalancer(reactor)
        self._previousHangup: Any = None
        self._reloads = defer.DeferredLock()

    def startService(self) -> None:
        """
        Bind the listeners, open and close the directory once, then start
        the workers.

        Opening it here creates or upgrades the databases' tables and loads
        C{seed_ldif} into an empty database before any worker runs: workers
        started at once on an empty database would race to seed it, and one
        that started first would serve it empty while another seeds it.
        """
        super().startService()
        self._ports = [listenOrExit(self._endpoint(description), _RefuseConnections(), description)
                       for description in self.config.listen]
        # Nothing is accepted before a worker says it takes connections.
        self._balancer.listen(zip(self.config.listen, self._ports, strict=True))
        claimPIDFile(self.config)
        if hasattr(signal, "SIGHUP"):
            self._previousHangup = signal.signal(signal.SIGHUP, self._hangup)
        d = self.config.directory.open()
        d.addCallback(lambda _: self.config.directory.close())
        d.addCallbacks(self._cbPrepared, self._ebPrepared)

    def _cbPrepared(self, _: Any) -> None:
        if self.running:
            for number in range(1, self.config.workers + 1):
                self._spawn(number)
            # The listeners are bound and the databases ready: a connection
            # waits in the backlog until a worker takes it.
            systemd.notify("READY=1")

    def _ebPrepared(self, reason: Failure) -> None:
        self._log.failure("cannot open the directory", reason)
        self.reactor.stop()

    def _endpoint(self, description: str) -> Any:
        """
        The endpoint of one listener: an C{ssl:} listener is bound as TCP,
        and the workers speak TLS on it.
        """
        kind, _, rest = description.partition(":")
        return serverEndpoint(self.reactor, "tcp:" + rest if kind == "ssl" else description, None)

    def _spawn(self, number: int) -> None:
        ours, theirs = channelPair()
        argv = [sys.executable, "-m", "twisted", *self.arguments,
                "--worker", str(number), "--channel", str(theirs.fileno())]
        fds: dict[int, Any] = {0: 0, 1: 1, 2: 2, theirs.fileno(): theirs.fileno()}
        worker = _WorkerProtocol(self, number)
        self._protocols[number] = worker
        # systemd hears from this process only (NotifyAccess=main).
        env = {k: v for k, v in os.environ.items() if k != systemd.NOTIFY_SOCKET}
        try:
            self.workers[number] = self.reactor.spawnProcess(
                worker, sys.executable, argv, env=env, childFDs=fds)
        except BaseException:
            ours.close()
            raise
        finally:
            # Held here, the worker's end would outlive the worker.
            theirs.close()
        worker.pid = self.workers[number].pid
        worker.link = self._balancer.add(number, ours, self.config.listen)
        self._log.info("started worker {number} (pid {pid})", number=number, pid=worker.pid)

    def _workerEnded(self, worker: _WorkerProtocol, reason: Failure) -> None:
        del self.workers[worker.number], self._protocols[worker.number]
        if worker.link is not None:
            self._balancer.remove(worker.link)
        if not self.running:
            return
        if worker.replaced:
            self._log.info("worker {number} (pid {pid}) stopped; starting its replacement",
                           number=worker.number, pid=worker.pid)
            self._spawn(worker.number)
            return
        self._log.error("worker {number} (pid {pid}) ended ({why}); restarting it in {delay}s",
                        number=worker.number, pid=worker.pid, why=reason.getErrorMessage(),
                        delay=self.restartDelay)
        self.reactor.callLater(self.restartDelay, self._restart, worker.number)

    def _restart(self, number: int) -> None:
        if self.running and number not in self.workers:
            self._spawn(number)

    def _hangup(self, signum: int, frame: Any) -> None:
        self.reactor.callFromThread(self.reload)

    def reload(self) -> defer.Deferred[None]:
        """
        Read the configuration file again and, if it is valid and changes
        nothing that needs a restart (L{ldapd.config.restartOnlyChange}),
        have every worker apply it: each reloads on SIGHUP as a server of
        one process does (L{ldapd.tap.LDAPService.reload}). Otherwise log
        one line naming the file, the key and the problem, and signal no
        worker.

        A running worker serves the listeners it was started with (an
        C{ssl:} one with its TLS), so a change of C{listen} cannot reach
        it: the parent binds the new listeners and accepts on them, then
        replaces the workers one at a time (each stopped, then started
        again with the new listeners; connections to it are closed), then
        closes the listeners no longer configured. Until it is replaced, a
        worker gets connections only from the listeners it knows.

        @return: a Deferred that fires when it is done; it never fails.
        """
        return self._reloads.run(lambda: defer.Deferred.fromCoroutine(self._reload()))

    async def _reload(self) -> None:
        old = self.config
        assert old.path is not None
        try:
            new = loadConfig(old.path, self.reactor, previous=old)
        except ConfigError as e:
            reloadRefused(self._log, str(e))
            return
        if new.listen == old.listen:
            self.config = new
            self.signalWorkers("HUP")
            return
        try:
            ports, removed = rebind(
                dict(zip(old.listen, self._ports, strict=True)), new.listen,
                lambda d: listenNow(self._endpoint(d), _RefuseConnections()))
        except CannotListen as e:
            reloadRefused(self._log, f"{old.path}: server.listen: {e}")
            return
        self.config, self._ports = new, ports
        self._balancer.listen(zip(new.listen, ports, strict=True))
        self._log.info("reload: {path}: replacing the workers for the listeners {listen}",
                       path=str(old.path), listen=new.listen)
        for number in sorted(self._protocols):
            worker = self._protocols.get(number)
            if worker is None or not self.running:
                continue
            worker.replaced = True
            ended = worker.ended
            self.signalWorker(number, "TERM")
            await ended
        await defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in removed])

    def signalWorkers(self, name: str) -> None:
        """
        Send every running worker a signal.

        @param name: the signal's name without C{SIG} (C{"HUP"}, C{"TERM"}).
        """
        for number in list(self.workers):
            self.signalWorker(number, name)

    def signalWorker(self, number: int, name: str) -> None:
        """
        Send one worker a signal, if it runs.

        @param number: the worker's number.
        @param name: the signal's name without C{SIG}.
        """
        transport = self.workers.get(number)
        if transport is None:
            return
        try:
            transport.signalProcess(name)
        except error.ProcessExitedAlready:
            pass

    def stopService(self) -> defer.Deferred[Any]:
        """
        Stop every worker (SIGTERM; SIGKILL after L{STOP_TIMEOUT} seconds),
        then close the listeners.
        """
        super().stopService()
        systemd.notify("STOPPING=1")
        if self._previousHangup is not None:
            signal.signal(signal.SIGHUP, self._previousHangup)
            self._previousHangup = None
        self._balancer.listen([])
        ended = [w.ended for w in self._protocols.values()]
        self.signalWorkers("TERM")
        kill = self.reactor.callLater(STOP_TIMEOUT, self.signalWorkers, "KILL")

        def _cbStopped(_: Any) -> Any:
            if kill.active():
                kill.cancel()
            if self.config.pidFile is not None:
                removePIDFile(self.config.pidFile)
            self._balancer.close()
            return defer.gatherResults([defer.maybeDeferred(p.stopListening)
                                        for p in self._ports])

        return defer.gatherResults(ended).addCallback(_cbStopped)
