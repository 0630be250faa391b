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

from ldapd import _logging
from ldapd.config import ServerConfig, loadConfig
from ldapd.protocol import LDAPServerFactory
from ldapd.registry import ConfigError
from ldapd.tls import TLSError, TLSServerEndpoint, serverEndpoint
from ldapd.workers import (
    AdoptedEndpoint,
    WorkerSupervisor,
    listenOrExit,
    parseSockets,
    pinToCPU,
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
        ["sockets", None, None, "(internal) A worker's inherited listeners: FD/FAMILY,..."],
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
        if (self["worker"] is None) != (self["sockets"] is None):
            raise usage.UsageError("--worker and --sockets go together")
        if self["worker"] is not None:
            try:
                self["worker"] = int(self["worker"])
                self["sockets"] = parseSockets(self["sockets"])
            except ValueError:
                raise usage.UsageError("--worker N --sockets FD/FAMILY,...") from None
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
    connections and starts the syncrepl consumers; on stop, stops them,
    closes the listeners and then the directory. While it runs, SIGHUP
    reloads what can change without a restart (L{reload}).
    """

    _log = Logger()

    def __init__(self, config: ServerConfig, reactor: Any = None,
                 endpoints: list[Any] | None = None) -> None:
        """
        @param config: the validated configuration.
        @param reactor: the reactor; the global one by default.
        @param endpoints: the endpoints to listen on, in place of those of
            C{config.listen} (a worker's inherited sockets).
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
        config.directory.statistics.listeners[:] = config.listen

    def startService(self) -> None:
        service.Service.startService(self)
        endpoints = self._endpoints
        if endpoints is None:
            endpoints = [serverEndpoint(self.reactor, description, self.config.tls)
                         for description in self.config.listen]
        self._ports = [listenOrExit(endpoint, self.factory, description)
                       for endpoint, description in zip(endpoints, self.config.listen, strict=True)]
        if hasattr(signal, "SIGHUP"):
            self._previousHangup = signal.signal(signal.SIGHUP, self._hangup)
        d = self.config.directory.open()
        d.addCallbacks(self._cbOpened, self._ebOpened)

    def _hangup(self, signum: int, frame: Any) -> None:
        # A signal handler may interrupt the reactor anywhere; the reload
        # runs in the reactor's own turn.
        self.reactor.callFromThread(self.reload)

    def reload(self) -> None:
        """
        Read the TLS certificate, key and CA files again, so that new
        connections use them; if they cannot be used, log why and keep the
        current ones.
        """
        if self.config.tls is None:
            self._log.info("reload: no TLS configured, nothing to reload")
            return
        try:
            self.config.tls.reload()
        except TLSError as e:
            self._log.error("reload: keeping the current certificate: {problem}", problem=str(e))
        else:
            self._log.info("reload: TLS certificate and key reloaded from {path}",
                           path=str(self.config.tls.settings.certificate))

    def _cbOpened(self, _: None) -> None:
        # What start-up made (the schema, the database engine, a memory
        # backend's entries) lives as long as the process: moved out of
        # the collector's generations, the full collections that requests'
        # garbage sets off no longer walk it. Measured: 10-15% less CPU per
        # search on the sql backend, and a p99 latency a third lower.
        gc.collect()
        gc.freeze()
        for port in self._ports:
            port.startReading()
        for consumer in self.config.replicas:
            consumer.setServiceParent(self)
        self._log.info("ldapd serving {suffixes} on {listen}",
                       suffixes=[str(db.suffix) for db in self.config.directory.databases],
                       listen=self.config.listen)

    def _ebOpened(self, reason: Any) -> None:
        self._log.failure("cannot open the directory", reason)
        self.reactor.stop()

    def stopService(self) -> Any:
        if self._previousHangup is not None:
            signal.signal(signal.SIGHUP, self._previousHangup)
            self._previousHangup = None
        ports, self._ports = self._ports, []
        d = defer.gatherResults([super().stopService()] + [
            defer.maybeDeferred(port.stopListening) for port in ports])
        d.addCallback(lambda _: self.config.directory.close())
        return d


def makeService(options: Options) -> service.Service:
    """
    @param options: the parsed options.
    @return: the service that runs the server: with C{[server] workers}
        above 1, the supervisor of the worker processes.
    """
    config: ServerConfig = options["server"]
    if options["worker"] is not None:
        tagLogsWithWorker(options["worker"])
    if config.cpuAffinity and (options["worker"] is not None or config.workers == 1):
        _log.info("running on CPU {cpu}", cpu=pinToCPU(options["worker"] or 1))
    if options["worker"] is not None:
        from twisted.internet import reactor

        endpoints = []
        for description, (fileno, family) in zip(config.listen, options["sockets"], strict=True):
            endpoint: Any = AdoptedEndpoint(reactor, fileno, family)
            if description.startswith("ssl:"):
                assert config.tls is not None
                endpoint = TLSServerEndpoint(endpoint, config.tls)
            endpoints.append(endpoint)
        return LDAPService(config, endpoints=endpoints)
    if config.workers > 1:
        return WorkerSupervisor(config, sys.argv[1:])
    return LDAPService(config)
