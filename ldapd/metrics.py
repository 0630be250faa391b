"""
The server's counters in the Prometheus text format, over HTTP:
C{[metrics] listen = "tcp:9389:interface=127.0.0.1"} serves them at
C{/metrics}.

Nothing is counted here: every value is read, when a scrape asks, from what
the server keeps anyway, the counters C{cn=Monitor} shows
(L{ldapd.statistics.ServerStatistics}), the syncrepl consumers' state, the
changelogs' bounds and the sql backends' thread pools; the process's CPU
time, memory and file descriptors come from prometheus_client's process
collector (C{/proc}). The names follow Prometheus's conventions
(C{ldapd_operations_total{op="search",result="success"}}); C{docs/operations.md}
lists them all.

With C{[server] workers = N}, each worker serves its own metrics on the
N-th of N configured endpoints (L{ldapd.config}), and the supervising
process serves none: Prometheus scrapes each worker as a target of its own.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.process_collector import ProcessCollector
from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server

from ldapd import _version
from ldapd.directory import Directory
from ldapd.interfaces import IChangelog
from ldapd.results import resultName
from ldapd.statistics import LATENCY_BUCKETS

__all__ = ["MetricsCollector", "MetricsResource", "MetricsService", "metricsSite"]

_log = Logger()


class _Collected:
    """
    Metric families already gathered, in the shape C{generate_latest} writes
    (anything with a C{collect} method).
    """

    def __init__(self, metrics: Sequence[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


class MetricsCollector:
    """
    Reads a directory's counters and state as Prometheus metric families.

    @ivar directory: the L{Directory}.
    @ivar replicas: its syncrepl consumers
        (L{ldapd.syncrepl.consumer.SyncReplConsumer}).
    """

    def __init__(self, directory: Directory, replicas: Sequence[Any] = (),
                 process: Any = None, serving: Callable[[], bool] = lambda: True) -> None:
        """
        @param directory: the directory whose counters are read.
        @param replicas: the consumers whose state is read.
        @param serving: says whether the directory is open and the server
            accepts connections (until then, its databases are not read).
        @param process: what collects the process's metrics; prometheus_client's
            C{ProcessCollector} of this process by default (nothing where
            there is no C{/proc}).
        """
        self.directory = directory
        self.replicas = replicas
        self._process = process if process is not None else ProcessCollector(registry=None)
        self._serving = serving

    async def collect(self) -> list[Metric]:
        """
        @return: every metric family, as it is now.
        """
        serving = self._serving()
        metrics = self._counters()
        metrics.append(GaugeMetricFamily(
            "ldapd_serving", "1 once the databases are open and the listeners accept.",
            value=1 if serving else 0))
        metrics.extend(self._replication())
        if serving:
            metrics.extend(await self._changelogs())
        metrics.extend(self._sqlPools())
        metrics.extend(self._process.collect())
        return metrics

    async def render(self) -> bytes:
        """
        @return: every metric, in the Prometheus text format.
        """
        return generate_latest(_Collected(await self.collect()))  # type: ignore[arg-type]

    def _counters(self) -> list[Metric]:
        """
        @return: the families of L{ldapd.statistics.ServerStatistics}.
        """
        statistics = self.directory.statistics
        info = GaugeMetricFamily("ldapd_build_info", "The ldapd version running.",
                                 labels=["version"])
        info.add_metric([_version.__version__], 1)
        results = CounterMetricFamily(
            "ldapd_operations", "Operations answered, by operation and result code.",
            labels=["op", "result"])
        for (op, code), count in sorted(statistics.results.items()):
            results.add_metric([op, resultName(code)], count)
        initiated = CounterMetricFamily(
            "ldapd_operations_initiated", "Requests received, by operation (cn=Monitor's "
            "monitorOpInitiated).", labels=["op"])
        for op, count in sorted(statistics.initiated.items()):
            initiated.add_metric([op], count)
        completed = CounterMetricFamily(
            "ldapd_operations_completed", "Requests over: answered, abandoned, or carried out "
            "(cn=Monitor's monitorOpCompleted).", labels=["op"])
        for op, count in sorted(statistics.completed.items()):
            completed.add_metric([op], count)
        latency = HistogramMetricFamily(
            "ldapd_operation_duration_seconds",
            "Seconds from a request's arrival to its result, by operation.", labels=["op"])
        bounds = [*(repr(b) for b in LATENCY_BUCKETS), "+Inf"]
        for op, histogram in sorted(statistics.latency.items()):
            cumulative, total = [], 0
            for bound, count in zip(bounds, histogram.counts, strict=True):
                total += count
                cumulative.append((bound, total))
            latency.add_metric([op], cumulative, histogram.sum)
        binds = CounterMetricFamily(
            "ldapd_binds", "Bind results, by method (simple, sasl) and result code.",
            labels=["method", "result"])
        for (method, code), count in sorted(statistics.binds.items()):
            binds.add_metric([method, resultName(code)], count)
        return [
            info, results, initiated, completed, latency, binds,
            GaugeMetricFamily("ldapd_connections_current", "Connections open.",
                              value=len(statistics.connections)),
            CounterMetricFamily("ldapd_connections", "Connections accepted.",
                                value=statistics.totalConnections),
            CounterMetricFamily("ldapd_sent_bytes", "Bytes of the PDUs sent.",
                                value=statistics.bytes),
            CounterMetricFamily("ldapd_sent_pdus", "PDUs sent: responses, entries and references.",
                                value=statistics.pdus),
            CounterMetricFamily("ldapd_search_entries", "Search result entries sent.",
                                value=statistics.entries),
            CounterMetricFamily("ldapd_search_references", "Search result references sent.",
                                value=statistics.referrals),
            CounterMetricFamily("ldapd_ppolicy_lockouts",
                                "Accounts the password policy locked.", value=statistics.lockouts),
        ]

    def _replication(self) -> list[Metric]:
        """
        @return: each consumer's session state, the time of the newest
            change it committed, and how long after the provider made that
            change it was committed here.
        """
        if not self.replicas:
            return []
        labels = ["suffix", "provider"]
        state = GaugeMetricFamily(
            "ldapd_replica_state", "1 for the state each consumer is in, 0 for the others.",
            labels=[*labels, "state"])
        change = GaugeMetricFamily(
            "ldapd_replica_last_change_timestamp_seconds",
            "When the provider made the newest change the consumer has committed.", labels=labels)
        committed = GaugeMetricFamily(
            "ldapd_replica_last_commit_timestamp_seconds",
            "When the consumer committed that change.", labels=labels)
        lag = GaugeMetricFamily(
            "ldapd_replica_lag_seconds",
            "How long after the provider made that change the consumer committed it.",
            labels=labels)
        for replica in self.replicas:
            names = [str(replica.settings.suffix), replica.settings.provider.uri]
            for name in replica.STATES:
                state.add_metric([*names, name], 1 if replica.state == name else 0)
            if replica.lastChange is not None and replica.lastCommitted is not None:
                change.add_metric(names, replica.lastChange)
                committed.add_metric(names, replica.lastCommitted)
                lag.add_metric(names, max(0.0, replica.lastCommitted - replica.lastChange))
        return [state, change, committed, lag]

    async def _changelogs(self) -> list[Metric]:
        """
        @return: the first and last change numbers of each database's
            changelog, when the changelog plugin keeps them.
        """
        from ldapd.plugins.changelog import Changelog

        if not any(isinstance(p, Changelog) for p in self.directory.plugins.plugins):
            return []
        first = GaugeMetricFamily(
            "ldapd_changelog_first_change_number",
            "The number of the oldest change the changelog holds (0: empty).", labels=["suffix"])
        last = GaugeMetricFamily(
            "ldapd_changelog_last_change_number",
            "The number of the newest change the changelog holds (0: empty).", labels=["suffix"])
        for db in self.directory.configuredDatabases:
            if IChangelog.providedBy(db.backend):
                oldest, newest = await IChangelog(db.backend).changeBounds()
                first.add_metric([str(db.suffix)], oldest.number if oldest else 0)
                last.add_metric([str(db.suffix)], newest.number if newest else 0)
        return [first, last]

    def _sqlPools(self) -> list[Metric]:
        """
        @return: the size and use of each sql database's thread pool (a
            thread holds a database connection while it works).
        """
        from ldapd.backends.sql import SQLBackend

        pools = [(db.suffix, db.backend) for db in self.directory.configuredDatabases
                 if isinstance(db.backend, SQLBackend)]
        if not pools:
            return []
        size = GaugeMetricFamily("ldapd_sql_pool_size",
                                 "Database connections (and threads) the pool may use.",
                                 labels=["suffix"])
        busy = GaugeMetricFamily("ldapd_sql_pool_busy",
                                 "Database calls running, each on a connection.",
                                 labels=["suffix"])
        waiting = GaugeMetricFamily("ldapd_sql_pool_waiting",
                                    "Database calls waiting for a connection.", labels=["suffix"])
        for suffix, backend in pools:
            running, queued = backend.poolUse()
            size.add_metric([str(suffix)], backend.poolSize)
            busy.add_metric([str(suffix)], running)
            waiting.add_metric([str(suffix)], queued)
        return [size, busy, waiting]


class MetricsResource(resource.Resource):
    """
    C{GET /metrics}: the collector's metrics in the Prometheus text format.
    """

    isLeaf = True

    def __init__(self, collector: MetricsCollector) -> None:
        super().__init__()
        self.collector = collector

    def render_GET(self, request: Any) -> Any:
        d = defer.Deferred.fromCoroutine(self.collector.render())
        gone: list[Failure] = []
        # A scraper that gave up and closed the connection gets nothing.
        request.notifyFinish().addErrback(gone.append)

        def written(body: bytes) -> None:
            if not gone:
                request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
                request.write(body)
                request.finish()

        def failed(reason: Failure) -> None:
            _log.failure("metrics: cannot collect", reason)
            if not gone:
                request.setResponseCode(500)
                request.finish()

        d.addCallbacks(written, failed)
        return server.NOT_DONE_YET


class _QuietSite(server.Site):
    """
    A site that does not log each request: a scrape every few seconds
    would fill the server's log.
    """

    def log(self, request: Any) -> None:
        pass


def metricsSite(collector: MetricsCollector) -> server.Site:
    """
    @return: the HTTP site serving C{/metrics} (and nothing else).
    """
    root = resource.Resource()
    root.putChild(b"metrics", MetricsResource(collector))
    site = _QuietSite(root)
    site.displayTracebacks = False
    site.noisy = False
    return site


class MetricsService(service.Service):
    """
    Serves the metrics on one endpoint while it runs. The endpoint is
    listened on when the service starts, before the reactor runs: one that
    cannot be had stops start-up, as an LDAP listener does
    (L{ldapd.workers.listenOrExit}).
    """

    def __init__(self, description: str, collector: MetricsCollector,
                 reactor: Any = None) -> None:
        """
        @param description: a Twisted server endpoint string.
        @param collector: what is served.
        @param reactor: the reactor; the global one by default.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.description = description
        self.collector = collector
        self._port: Any = None

    def startService(self) -> None:
        from ldapd.workers import endpointOrExit, listenOrExit

        super().startService()
        endpoint = endpointOrExit(self.reactor, self.description, None)
        self._port = listenOrExit(endpoint, metricsSite(self.collector), self.description)
        self._port.startReading()

    def stopService(self) -> Any:
        super().stopService()
        port, self._port = self._port, None
        if port is not None:
            return port.stopListening()
        return None
