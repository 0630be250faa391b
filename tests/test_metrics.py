"""
Tests for L{ldapd.metrics}: the Prometheus metrics, read with
prometheus_client's own parser, from a real server driven by OpenLDAP's
clients; the statistics they are read from; C{[metrics]} in the
configuration.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, task
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from ldapd.config import buildConfig
from ldapd.metrics import MetricsCollector, MetricsResource
from ldapd.registry import ConfigError
from ldapd.results import resultName
from ldapd.statistics import LATENCY_BUCKETS, Histogram
from ldapd.testing import ServerProcess, exampleConfig, freePort

SUFFIX = "dc=example,dc=com"
ROOT = "cn=admin,dc=example,dc=com"
ALICE = "uid=alice,ou=people,dc=example,dc=com"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """
    @return: every sample of an exposition, by name and sorted labels, and
        every family's type, by family name.
    """
    samples: Samples = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples, types


class HistogramTests(unittest.SynchronousTestCase):
    """
    L{Histogram} counts each value in the first bucket whose bound it does
    not exceed.
    """

    def test_buckets(self) -> None:
        """
        A value equal to a bound is counted in that bound's bucket (Prometheus's
        C{le}); one above every bound in the last.
        """
        histogram = Histogram()
        for value in (0.0, LATENCY_BUCKETS[0], LATENCY_BUCKETS[0] * 1.5, 99.0):
            histogram.observe(value)
        self.assertEqual(histogram.counts[0], 2)
        self.assertEqual(histogram.counts[1], 1)
        self.assertEqual(histogram.counts[-1], 1)
        self.assertEqual(sum(histogram.counts), 4)
        self.assertAlmostEqual(histogram.sum, LATENCY_BUCKETS[0] * 2.5 + 99.0)

    def test_resultName(self) -> None:
        """
        Result codes are named as in RFC 4511's ASN.1, Cancel's too; a code
        without a name is its number.
        """
        self.assertEqual([resultName(c) for c in (0, 32, 49, 118, 4242)],
                         ["success", "noSuchObject", "invalidCredentials", "canceled", "4242"])


class _Replica:
    """
    A stand-in for L{ldapd.syncrepl.consumer.SyncReplConsumer}: the
    attributes the metrics read.
    """

    STATES = ("connecting", "refreshing", "persisting")

    class settings:
        suffix = "dc=example,dc=com"

        class provider:
            uri = "ldap://provider:389"

    def __init__(self, state: str, lastChange: float | None, lastCommitted: float | None) -> None:
        self.state = state
        self.lastChange = lastChange
        self.lastCommitted = lastCommitted


class _NoProcess:
    """
    A process collector with nothing to say, for tests that read only
    ldapd's own families.
    """

    def collect(self) -> list[Any]:
        return []


class CollectorTests(unittest.TestCase):
    """
    L{MetricsCollector} on a directory built from a configuration, in this
    process.
    """

    def collect(self, directory: Any, replicas: Any = ()) -> tuple[Samples, dict[str, str]]:
        collector = MetricsCollector(directory, replicas, process=_NoProcess())
        text = self.successResultOf(defer.Deferred.fromCoroutine(collector.render()))
        return parse(text.decode())

    def directory(self) -> Any:
        config = buildConfig({
            "server": {"listen": ["tcp:0"]},
            "database": [{"suffix": SUFFIX, "backend": "memory"}],
        }, None, task.Clock())
        return config.directory

    def test_counters(self) -> None:
        """
        What the statistics hold is what the metrics say: results by
        operation and named result code, binds by method, operation times
        as a histogram whose buckets add up, lockouts.
        """
        directory = self.directory()
        statistics = directory.statistics
        statistics.resultSent("search", 0, 0.002)
        statistics.resultSent("search", 32, 0.2)
        statistics.resultSent("bind", 49, 0.01, "simple")
        statistics.lockouts = 3
        samples, types = self.collect(directory)
        self.assertEqual(samples["ldapd_operations_total",
                                 (("op", "search"), ("result", "success"))], 1)
        self.assertEqual(samples["ldapd_operations_total",
                                 (("op", "search"), ("result", "noSuchObject"))], 1)
        self.assertEqual(samples["ldapd_binds_total",
                                 (("method", "simple"), ("result", "invalidCredentials"))], 1)
        self.assertEqual(types["ldapd_operation_duration_seconds"], "histogram")
        self.assertEqual(samples["ldapd_operation_duration_seconds_count", (("op", "search"),)], 2)
        self.assertEqual(samples["ldapd_operation_duration_seconds_bucket",
                                 (("le", "0.0025"), ("op", "search"))], 1)
        self.assertEqual(samples["ldapd_operation_duration_seconds_bucket",
                                 (("le", "0.25"), ("op", "search"))], 2)
        self.assertEqual(samples["ldapd_operation_duration_seconds_bucket",
                                 (("le", "+Inf"), ("op", "search"))], 2)
        self.assertAlmostEqual(
            samples["ldapd_operation_duration_seconds_sum", (("op", "search"),)], 0.202)
        self.assertEqual(samples["ldapd_ppolicy_lockouts_total", ()], 3)
        self.assertEqual(types["ldapd_connections_current"], "gauge")
        self.assertEqual(types["ldapd_connections"], "counter")
        self.assertNotIn("ldapd_replica_state", types)
        self.assertNotIn("ldapd_sql_pool_size", types)

    def test_replicas(self) -> None:
        """
        Each replica's state is a gauge of 1 among 0s; the lag is how long
        after the provider's change it was committed; a replica that has
        committed nothing has no times.
        """
        samples, _ = self.collect(self.directory(), [_Replica("persisting", 1000.0, 1002.5)])
        names = (("provider", "ldap://provider:389"), ("suffix", SUFFIX))

        def state(name: str) -> tuple[str, tuple[tuple[str, str], ...]]:
            return "ldapd_replica_state", tuple(sorted((*names, ("state", name))))

        self.assertEqual(samples[state("persisting")], 1)
        self.assertEqual(samples[state("refreshing")], 0)
        self.assertEqual(samples["ldapd_replica_lag_seconds", names], 2.5)
        self.assertEqual(samples["ldapd_replica_last_change_timestamp_seconds", names], 1000.0)
        samples, _ = self.collect(self.directory(), [_Replica("connecting", None, None)])
        self.assertNotIn(("ldapd_replica_lag_seconds", names), samples)
        self.assertEqual(samples[state("connecting")], 1)


class _SlowCollector:
    """
    A collector whose metrics come when the test gives them.
    """

    def __init__(self) -> None:
        self.result: defer.Deferred[bytes] = defer.Deferred()

    async def render(self) -> bytes:
        return await self.result


class ResourceTests(unittest.SynchronousTestCase):
    """
    L{MetricsResource} answers C{GET} once the metrics are collected.
    """

    def test_get(self) -> None:
        """
        The body is the exposition, with Prometheus's content type.
        """
        collector = _SlowCollector()
        request = DummyRequest([b"metrics"])
        self.assertEqual(MetricsResource(collector).render_GET(request), NOT_DONE_YET)
        self.assertEqual(request.finished, 0)
        collector.result.callback(b"ldapd_serving 1.0\n")
        self.assertEqual(request.written, [b"ldapd_serving 1.0\n"])
        self.assertEqual(request.finished, 1)
        self.assertTrue(request.responseHeaders.getRawHeaders(b"content-type")[0]
                        .startswith(b"text/plain; version="))

    def test_gone(self) -> None:
        """
        A scraper that closed the connection before the metrics were
        collected gets nothing, and nothing fails.
        """
        collector = _SlowCollector()
        request = DummyRequest([b"metrics"])
        MetricsResource(collector).render_GET(request)
        request.processingFailed(Failure(ConnectionDone()))
        collector.result.callback(b"ldapd_serving 1.0\n")
        self.assertEqual(request.written, [])


class ConfigTests(unittest.SynchronousTestCase):
    """
    C{[metrics] listen}: one endpoint per server process.
    """

    def build(self, metrics: Any, workers: int = 1, backend: str = "sql") -> Any:
        database: dict[str, Any] = {"suffix": SUFFIX, "backend": backend}
        if backend == "sql":
            database["url"] = "sqlite:///" + self.mktemp()
        return buildConfig({
            "server": {"listen": ["tcp:0"], "workers": workers},
            "database": [database],
            "metrics": metrics,
        }, Path("ldapd.toml"), task.Clock())

    def test_listen(self) -> None:
        """
        A string is the endpoint of a server of one process; a list gives
        one to each worker, in order.
        """
        self.assertEqual(self.build({"listen": "tcp:9389"}).metrics, ("tcp:9389",))
        self.assertEqual(self.build({"listen": ["tcp:9390", "tcp:9391"]}, workers=2).metrics,
                         ("tcp:9390", "tcp:9391"))
        self.assertEqual(self.build({}).metrics, ())

    def test_errors(self) -> None:
        """
        A wrong count for the workers, an invalid endpoint, a value that is
        not an endpoint or an unknown key stop start-up, naming the key.
        """
        for metrics, workers, problem in [
            ({"listen": "tcp:9389"}, 2, "1 endpoint(s) for 2 process(es)"),
            ({"listen": "nonsense:1"}, 1, "invalid endpoint 'nonsense:1'"),
            ({"listen": 9389}, 1, "must be an endpoint string, or a list of them"),
            ({"port": 9389}, 1, "port"),
        ]:
            with self.assertRaises(ConfigError) as caught:
                self.build(metrics, workers)
            self.assertIn("metrics", str(caught.exception))
            self.assertIn(problem, str(caught.exception))


def _ldap(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, timeout=60, check=check)


@pytest.mark.integration
class ServerTests(unittest.SynchronousTestCase):
    """
    The real server, with C{[metrics]}, the changelog and the monitor,
    driven by ldapsearch and friends; its metrics read over HTTP.
    """

    def setUp(self) -> None:
        self.metricsPort = freePort()
        config = exampleConfig() + (
            '\n[[plugin]]\nname = "changelog"\n\n[[plugin]]\nname = "monitor"\n\n'
            f'[metrics]\nlisten = "tcp:{self.metricsPort}:interface=127.0.0.1"\n')
        self.server = ServerProcess(config)
        self.server.start()
        self.addCleanup(self.server.stop)

    def scrape(self, path: str = "/metrics") -> tuple[str, str]:
        """
        @return: the body and content type of a GET of the metrics listener.
        """
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metricsPort}{path}",
                                    timeout=30) as response:
            return response.read().decode(), response.headers["content-type"]

    def test_counts(self) -> None:
        """
        After a search, binds that succeed and fail, a search of a missing
        base and a modify, the metrics count them by operation and result,
        time them, count the entries, the binds by outcome, the
        connections and the changelog's new change; the sql pool and the
        process are there; the search counters are cn=Monitor's.
        """
        # The LDAP port accepts (and connections wait) before the databases
        # are open; until then the metrics say so, and leave them unread.
        deadline = time.monotonic() + 30
        while True:
            before, _ = self.scrapeParsed()
            if before["ldapd_serving", ()] == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        url = self.server.url
        found = _ldap("ldapsearch", "-x", "-LLL", "-H", url, "-b", SUFFIX, "dn")
        entries = found.stdout.count("dn: ")
        self.assertGreater(entries, 10)
        _ldap("ldapwhoami", "-x", "-H", url, "-D", ALICE, "-w", "alice-secret")
        self.assertEqual(
            _ldap("ldapwhoami", "-x", "-H", url, "-D", ALICE, "-w", "wrong", check=False).returncode,
            49)
        self.assertEqual(_ldap("ldapsearch", "-x", "-H", url, "-b", "ou=nowhere," + SUFFIX,
                               check=False).returncode, 32)
        subprocess.run(["ldapmodify", "-x", "-H", url, "-D", ROOT, "-w", "secret"],
                       input=f"dn: {ALICE}\nchangetype: modify\nreplace: description\n"
                             "description: scraped\n",
                       capture_output=True, text=True, timeout=60, check=True)
        monitor = _ldap("ldapsearch", "-x", "-LLL", "-H", url, "-D", ROOT, "-w", "secret",
                        "-b", "cn=Search,cn=Operations,cn=Monitor", "-s", "base",
                        "monitorOpInitiated").stdout
        samples, text = self.scrapeParsed()

        def value(name: str, **labels: str) -> float:
            return samples[name, tuple(sorted(labels.items()))]

        self.assertEqual(value("ldapd_operations_total", op="search", result="success"), 2)
        self.assertEqual(value("ldapd_operations_total", op="search", result="noSuchObject"), 1)
        self.assertEqual(value("ldapd_operations_total", op="modify", result="success"), 1)
        self.assertEqual(value("ldapd_operations_total", op="extended", result="success"), 1)
        self.assertEqual(value("ldapd_binds_total", method="simple", result="success"), 5)
        self.assertEqual(value("ldapd_binds_total", method="simple",
                               result="invalidCredentials"), 1)
        self.assertEqual(value("ldapd_operation_duration_seconds_count", op="search"), 3)
        self.assertEqual(value("ldapd_operation_duration_seconds_bucket", op="search", le="+Inf"), 3)
        self.assertEqual(value("ldapd_search_entries_total"), entries + 1)
        self.assertEqual(value("ldapd_operations_initiated_total", op="unbind"), 6)
        # The searches' counter is cn=Monitor's, which counted its own read.
        self.assertIn(f"monitorOpInitiated: {int(value('ldapd_operations_initiated_total', op='search'))}",
                      monitor)
        # The start-up probe's connection and the clients' six.
        self.assertEqual(value("ldapd_connections_total"), 7)
        self.assertEqual(value("ldapd_connections_current"), 0)
        self.assertGreater(value("ldapd_sent_bytes_total"), 1000)
        self.assertEqual(value("ldapd_changelog_last_change_number", suffix=SUFFIX),
                         before["ldapd_changelog_last_change_number", (("suffix", SUFFIX),)] + 1)
        self.assertEqual(value("ldapd_sql_pool_size", suffix=SUFFIX), 4)
        self.assertEqual(value("ldapd_sql_pool_waiting", suffix=SUFFIX), 0)
        self.assertGreater(value("process_resident_memory_bytes"), 10_000_000)
        self.assertGreater(value("process_open_fds"), 5)
        self.assertGreater(value("process_cpu_seconds_total"), 0)
        self.assertIn("# TYPE ldapd_operations_total counter", text)
        # Scrapes are not logged.
        self.assertNotIn("/metrics", self.server.log())

    def scrapeParsed(self) -> tuple[Samples, str]:
        text, contentType = self.scrape()
        self.assertTrue(contentType.startswith("text/plain; version="), contentType)
        return parse(text)[0], text

    def test_onlyMetrics(self) -> None:
        """
        The listener serves C{/metrics} and nothing else.
        """
        with self.assertRaises(urllib.error.HTTPError) as caught:
            self.scrape("/")
        self.assertEqual(caught.exception.code, 404)


@pytest.mark.integration
class PortInUseTests(unittest.SynchronousTestCase):
    """
    A metrics listener that cannot be had stops start-up, as an LDAP one does.
    """

    def test_portInUse(self) -> None:
        """
        The server exits with status 1 and one line naming the listener.
        """
        import socket

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            server = ServerProcess(exampleConfig() + f'\n[metrics]\nlisten = "tcp:{port}:'
                                   'interface=127.0.0.1"\n')
            with self.assertRaises(RuntimeError) as caught:
                server.start()
        self.assertIn("exited with 1", str(caught.exception))
        self.assertIn(f"ldapd: cannot listen on tcp:{port}:interface=127.0.0.1:", server.log())


@pytest.mark.integration
class WorkersTests(unittest.SynchronousTestCase):
    """
    With C{[server] workers = 2}, each worker serves the metrics of the
    connections it accepted on an endpoint of its own.
    """

    def test_perWorker(self) -> None:
        """
        Both workers answer on their own ports; each counts only its own
        connections, and the two together count every one.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-metrics-"))
        self.addCleanup(shutil.rmtree, folder, True)
        ports = [freePort(), freePort()]
        server = ServerProcess(
            '[server]\nlisten = ["tcp:{port}:interface=127.0.0.1"]\nworkers = 2\n\n'
            '[[database]]\nsuffix = "dc=example,dc=com"\nbackend = "sql"\n'
            f'url = "sqlite:///{folder}/shared.db"\nseed_ldif = "{{example_ldif}}"\n\n'
            f'[metrics]\nlisten = ["tcp:{ports[0]}:interface=127.0.0.1", '
            f'"tcp:{ports[1]}:interface=127.0.0.1"]\n', folder)
        server.start()
        self.addCleanup(server.stop)

        def scrape(port: int) -> Samples:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                timeout=10) as response:
                        samples = parse(response.read().decode())[0]
                    if samples["ldapd_serving", ()] == 1:
                        return samples
                except OSError:
                    pass
                self.assertLess(time.monotonic(), deadline, f"no worker served on {port}")
                time.sleep(0.1)

        for port in ports:
            scrape(port)
        for _ in range(6):
            _ldap("ldapsearch", "-x", "-LLL", "-H", server.url, "-b", SUFFIX, "-s", "base", "dn")
        both = [scrape(port) for port in ports]
        searches = [s.get(("ldapd_operations_total", (("op", "search"), ("result", "success"))), 0)
                    for s in both]
        self.assertEqual(sum(searches), 6)
        # The start-up probe's connection, and the six clients'.
        self.assertEqual(sum(s["ldapd_connections_total", ()] for s in both), 7)
        for samples in both:
            self.assertGreater(samples["process_resident_memory_bytes", ()], 0)
