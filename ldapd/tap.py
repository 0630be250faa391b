"""
C{twist ldapd}: the command-line face of the server (as C{twisted.names.tap}).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from pathlib import Path
from typing import Any, ClassVar

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.logger import jsonFileLogObserver as twistedJSONFileLogObserver
from twisted.logger import textFileLogObserver as twistedTextFileLogObserver
from twisted.python import usage

from ldapd import _logging, systemd
from ldapd._pidfile import removePIDFile
from ldapd.balancing import WorkerChannel
from ldapd.config import ServerConfig, loadConfig
from ldapd.directory import SeedError
from ldapd.protocol import LDAPServerFactory
from ldapd.registry import ConfigError
from ldapd.tls import ServerTLS, TLSServerEndpoint, serverEndpoint
from ldapd.workers import (
    CannotListen,
    WorkerSupervisor,
    claimPIDFile,
    endpointOrExit,
    exitAfterShutdown,
    listenNow,
    listenOrExit,
    pinToCPU,
    rebind,
    reloadRefused,
    tagLogsWithWorker,
)

__all__ = ["LDAPService", "Options", "makeService"]

_log = Logger()

#: Twisted's file log observer factories, each with the equivalent used in its place.
_FASTER_OBSERVERS = (
    (twistedTextFileLogObserver, _logging.textFileLogObserver),
    (twistedJSONFileLogObserver, _logging.jsonFileLogObserver),
)


class Options(usage.Options):
    """
    The options of C{twist ldapd}.
    """

    synopsis = "--config PATH"
    longdesc = "Serve an LDAPv3 directory described by a TOML configuration file."
    optParameters: ClassVar[list[list[Any]]] = [
        ["config", "c", None, "The TOML configuration file."],
        ["worker", None, None, "(internal) Run as this worker of [server] workers."],
        ["channel", None, None, "(internal) A worker's inherited channel to its supervisor: FD."],
    ]

    def postOptions(self) -> None:
        """
        Load and validate the configuration, so that a bad one stops start-up
        with one line naming file, key and problem. A configuration error is
        not a usage error, so it is not followed by the usage text: the line
        goes to standard error and the process exits with C{EX_CONFIG} (78).

        Under C{twist}, whose options are this one's C{parent} and have
        chosen the log observer (C{--log-format}, or by whether the log is a
        terminal) before this runs, Twisted's text or JSON observer is
        replaced by ldapd's equivalent (L{ldapd._logging}), which writes the
        same lines faster, with one write per reactor iteration; C{twist}
        starts logging with it after the options are parsed. Any other
        observer is left alone.

        @raise usage.UsageError: if C{--config} is missing.
        @raise SystemExit: if the configuration is wrong.
        """
        if not self["config"]:
            raise usage.UsageError("--config is required")
        if (self["worker"] is None) != (self["channel"] is None):
            raise usage.UsageError("--worker and --channel go together")
        if self["worker"] is not None:
            try:
                self["worker"] = int(self["worker"])
                self["channel"] = int(self["channel"])
            except ValueError:
                raise usage.UsageError("--worker N --channel FD") from None
        try:
            self["server"] = loadConfig(Path(self["config"]))
        except ConfigError as e:
            sys.stderr.write(f"ldapd: {e}\n")
            raise SystemExit(os.EX_CONFIG) from None
        if self.parent is not None:
            factory = self.parent.get("fileLogObserverFactory")
            for twisted, faster in _FASTER_OBSERVERS:
                if factory is twisted:
                    self.parent["fileLogObserverFactory"] = _logging.TwistObserverFactory(
                        faster, self.parent)


class LDAPService(service.MultiService):
    """
    Listens on every configured endpoint (a listener that cannot be had
    stops start-up, L{listenOrExit}), opens the directory, then accepts
    connections, starts the syncrepl consumers and tells systemd it is
    ready (L{ldapd.systemd}); on stop, tells systemd so, stops the
    consumers, closes the listeners and then the directory. While it runs,
    SIGHUP reloads what can change without a restart (L{reload}).

    @ivar serving: whether the directory is open and the listeners accept.
    @ivar metrics: what reads the directory for C{[metrics]}, if configured
        (L{ldapd.metrics.MetricsCollector}): a reload hands it the new one.
    """

    _log = Logger()
    serving = False
    metrics: Any = None

    def __init__(self, config: ServerConfig, reactor: Any = None,
                 endpoints: list[Any] | None = None) -> None:
        """
        @param config: the validated configuration.
        @param reactor: the reactor; the global one by default.
        @param endpoints: the endpoints to listen on, in place of those of
            C{config.listen} (a worker's, on the connections its supervisor
            hands it).
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.config = config
        self.factory = LDAPServerFactory(
            config.directory, reactor, config.maxPDUSize, tls=config.tls,
            limits=config.connectionLimits, maxAnonymousPDUSize=config.maxAnonymousPDUSize,
            maxBufferedBytes=config.maxBufferedBytes,
        )
        self._previousHangup: Any = None
        self._endpoints = endpoints
        self._ports: list[Any] = []
        self._reloads = defer.DeferredLock()
        config.directory.statistics.listeners[:] = config.listen

    def startService(self) -> None:
        service.Service.startService(self)
        endpoints = self._endpoints
        if endpoints is None:
            endpoints = [endpointOrExit(self.reactor, description, self.config.tls)
                         for description in self.config.listen]
        self._ports = [listenOrExit(endpoint, self.factory, description)
                       for endpoint, description in zip(endpoints, self.config.listen, strict=True)]
        if self._endpoints is None:
            # Once the listeners are had: a server that could not start
            # leaves no pid file naming it.
            claimPIDFile(self.config)
        if hasattr(signal, "SIGHUP"):
            self._previousHangup = signal.signal(signal.SIGHUP, self._hangup)
        # A reload waits until the directory is open.
        self._reloads.acquire()
        d = self.config.directory.open()
        d.addCallbacks(self._cbOpened, self._ebOpened)

    def whenServing(self) -> defer.Deferred[None]:
        """
        @return: a Deferred that fires once the directory is open and the
            listeners accept, and no reload is under way.
        """
        return self._reloads.run(lambda: None)

    def _hangup(self, signum: int, frame: Any) -> None:
        # A signal handler may interrupt the reactor anywhere; the reload
        # runs in the reactor's own turn.
        self.reactor.callFromThread(self.reload)

    def reload(self) -> defer.Deferred[None]:
        """
        Read the configuration file again, validate all of it as start-up
        does, and apply it at once: a new directory (the same backends,
        with access rules, limits, plugins, SASL mappings and password
        settings built afresh from the file) takes the running one's place
        for every operation that starts from then on, while those under way
        finish with the one they started with; new connections get the new
        connection limits and TLS (the certificate files are read again);
        listeners added are opened and those removed closed (a worker
        leaves its listeners to the parent, L{WorkerSupervisor.reload}).

        A file that does not validate, a change that needs a restart
        (L{ldapd.config.restartOnlyChange}) or a new listener that cannot
        be had changes nothing, and is logged as one line naming the file,
        the key and the problem.

        @return: a Deferred that fires when the reload is over; it never
            fails. Reloads run one after the other.
        """
        return self._reloads.run(lambda: defer.Deferred.fromCoroutine(self._reload()))

    async def _reload(self) -> None:
        old = self.config
        if old.path is None:
            self._log.warn("reload: the configuration was not read from a file: nothing to reload")
            return
        try:
            new = loadConfig(old.path, self.reactor, previous=old)
        except ConfigError as e:
            reloadRefused(self._log, str(e))
            return
        tls: ServerTLS | None
        if old.tls is not None and new.tls is not None:
            # The running ssl: listeners and connections hold this one.
            tls = old.tls
        else:
            tls = new.tls
        worker = self._endpoints is not None
        listen = old.listen if worker else new.listen

        def bind(description: str) -> Any:
            return listenNow(serverEndpoint(self.reactor, description, tls), self.factory)

        try:
            ports, removed = rebind(dict(zip(old.listen, self._ports, strict=True)), listen, bind)
        except CannotListen as e:
            reloadRefused(self._log, f"{old.path}: server.listen: {e}")
            return
        try:
            await new.directory.openPlugins()
        except Exception:
            self._log.failure("reload: {path}: the plugins failed to start; nothing changed",
                              path=str(old.path))
            for port in ports:
                if port not in self._ports:
                    port.stopListening()
            await new.directory.closePlugins()
            old.directory.passwordVerifier.limits = old.directory.passwordLimits
            return
        self._apply(new, tls, listen, ports)
        await defer.gatherResults([defer.maybeDeferred(port.stopListening) for port in removed])
        self._log.info("reload: {path} applied", path=str(old.path))
        if new.tls is not None:
            self._log.info("reload: TLS certificate and key reloaded from {path}",
                           path=str(new.tls.settings.certificate))
        await old.directory.closePlugins()

    def _apply(self, new: ServerConfig, tls: ServerTLS | None, listen: list[str], ports: list[Any]) -> None:
        """
        Put a reloaded configuration in place, all in one turn of the
        reactor: the operations that start from then on get all of it.
        """
        if tls is not None and new.tls is not None and tls is not new.tls:
            tls.adopt(new.tls)
            new.tls = tls
        factory = self.factory
        factory.directory = new.directory
        factory.tls = new.tls
        factory.limits = new.connectionLimits
        factory.maxPDUSize = new.maxPDUSize
        factory.maxAnonymousPDUSize = new.maxAnonymousPDUSize
        factory.budget.limit = new.maxBufferedBytes
        for consumer in new.replicas:
            consumer.directory = new.directory
        if self.metrics is not None:
            self.metrics.directory = new.directory
        for port in ports:
            if port not in self._ports:
                port.startReading()
        new.listen = listen
        new.directory.statistics.listeners[:] = listen
        self.config, self._ports = new, ports

    def _cbOpened(self, _: None) -> None:
        # What start-up made (the schema, the database engine, a memory
        # backend's entries) lives as long as the process: moved out of
        # the collector's generations, the full collections that requests'
        # garbage sets off no longer walk it. Measured: 10-15% less CPU per
        # search on the sql backend, and a p99 latency a third lower. Only
        # the young generations are collected first: a full collection
        # walks all of start-up's ~77,000 objects (40 ms, a twentieth of a
        # replica's start and catch-up) to find some ten more garbage
        # objects than they hold.
        gc.collect(1)
        gc.freeze()
        for port in self._ports:
            port.startReading()
        self.serving = True
        for consumer in self.config.replicas:
            consumer.setServiceParent(self)
        self._log.info("ldapd serving {suffixes} on {listen}",
                       suffixes=[str(db.suffix) for db in self.config.directory.databases],
                       listen=self.config.listen)
        systemd.notify("READY=1")
        self._reloads.release()

    def _ebOpened(self, reason: Any) -> None:
        # The listeners are had but not accepting: a server that cannot open
        # its directory must not stay up with clients waiting on them. It
        # stops with status 1 and the reason on one line, as when a
        # listener cannot be had (systemd sees the failure), once the
        # reactor has stopped the service (closing the listeners and the
        # pid file). Start-up can fail before the reactor runs.
        if reason.check(SeedError):
            problem = reason.getErrorMessage()
        else:
            self._log.failure("cannot open the directory", reason)
            problem = f"{reason.type.__name__}: {reason.getErrorMessage()}"
        self._log.critical("cannot open the directory: {problem}", problem=problem)
        self.reactor.addSystemEventTrigger("after", "shutdown", exitAfterShutdown,
                                           f"cannot open the directory: {problem}")
        self.reactor.callWhenRunning(self.reactor.stop)

    def stopService(self) -> Any:
        self.serving = False
        systemd.notify("STOPPING=1")
        if self._previousHangup is not None:
            signal.signal(signal.SIGHUP, self._previousHangup)
            self._previousHangup = None
        ports, self._ports = self._ports, []
        if self._endpoints is None and self.config.pidFile is not None:
            removePIDFile(self.config.pidFile)
        d = defer.gatherResults([super().stopService()] + [
            defer.maybeDeferred(port.stopListening) for port in ports])
        d.addCallback(lambda _: self.config.directory.close())
        return d


def makeService(options: Options) -> service.Service:
    """
    @param options: the parsed options.
    @return: the service that runs the server: with C{[server] workers}
        above 1, the supervisor of the worker processes; with C{[metrics]},
        the server's with the metrics' (L{_withMetrics}).
    """
    config: ServerConfig = options["server"]
    if options["worker"] is not None:
        return _withMetrics(_makeService(options), config, options["worker"])
    if config.workers > 1:
        return WorkerSupervisor(config, sys.argv[1:])
    return _withMetrics(_makeService(options), config, 1)


def _withMetrics(server: LDAPService, config: ServerConfig, number: int) -> service.Service:
    """
    @param server: the service of one server process.
    @param config: the configuration.
    @param number: the process's worker number (1 for a server of one process).
    @return: C{server} and, when C{[metrics]} is configured, the service of
        this process's metrics listener, started before it (its endpoint is
        bound when the LDAP listeners are, and a server is not ready for
        systemd before it).
    """
    if not config.metrics:
        return server
    from ldapd.metrics import MetricsCollector, MetricsService

    both = service.MultiService()
    collector = MetricsCollector(config.directory, config.replicas,
                                 serving=lambda: server.serving)
    MetricsService(config.metrics[number - 1], collector).setServiceParent(both)
    server.metrics = collector
    server.setServiceParent(both)
    return both


def _makeService(options: Options) -> LDAPService:
    """
    @return: the service of one server process: the only one, or a worker.
    """
    config: ServerConfig = options["server"]
    if options["worker"] is not None:
        tagLogsWithWorker(options["worker"])
    if config.cpuAffinity and (options["worker"] is not None or config.workers == 1):
        _log.info("running on CPU {cpu}", cpu=pinToCPU(options["worker"] or 1))
    if options["worker"] is not None:
        from twisted.internet import reactor

        channel = WorkerChannel(reactor, options["channel"])
        endpoints = []
        for index, description in enumerate(config.listen):
            endpoint: Any = channel.endpoint(index)
            if description.startswith("ssl:"):
                assert config.tls is not None
                endpoint = TLSServerEndpoint(endpoint, config.tls)
            endpoints.append(endpoint)
        return LDAPService(config, endpoints=endpoints)
    return LDAPService(config)
