"""
What a server process counts as it runs, for C{cn=Monitor}
(L{ldapd.plugins.monitor}) and the Prometheus metrics (L{ldapd.metrics}).

The counters are plain integers that the protocol and the Directory
increment in the one place each event happens: a request decoded, an
operation over, a PDU written, a search entry or reference sent, a result
sent with the time the operation took. They cost an attribute increment
(or a dictionary's) each and are always kept; nothing is allocated per
operation for them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from typing import Any

__all__ = ["LATENCY_BUCKETS", "Histogram", "ServerStatistics"]

#: The upper bounds, in seconds, of the buckets the operations' times are
#: counted in (a last bucket takes any time).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)


class Histogram:
    """
    How many observations fell in each of L{LATENCY_BUCKETS}, and their sum.

    @ivar counts: the observations at most each bound and above the one
        before it; the last, those above every bound.
    @ivar sum: the sum of the observations.
    """

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """
        Count one observation.

        @param value: e.g. an operation's seconds.
        """
        self.counts[bisect_left(LATENCY_BUCKETS, value)] += 1
        self.sum += value


class ServerStatistics:
    """
    The counters of one server process. With C{[server] workers = N} each
    worker has its own, counting only the connections it accepted.

    @ivar started: the clock time (seconds since the epoch) the server started.
    @ivar initiated: requests received, by operation
        (L{ldapd.requests.Request.operation}: C{"search"}, C{"unbind"}, ...).
    @ivar completed: requests over (answered, abandoned, or, for Unbind and
        Abandon, carried out), by request class name.
    @ivar bytes: the bytes of the PDUs sent.
    @ivar pdus: the PDUs sent (every response, entry and reference).
    @ivar entries: the search result entries sent.
    @ivar referrals: the search result references sent.
    @ivar totalConnections: the connections accepted since start.
    @ivar connections: the open connections' protocols
        (L{ldapd.protocol.LDAPServerProtocol}), by connection id.
    @ivar throttledBinds: the binds refused unchecked by the bind throttle
        (L{ldapd.throttle}).
    @ivar listeners: the endpoint descriptions (C{tcp:10389:interface=...})
        the server listens on; empty for a Directory served another way.
    @ivar results: the results sent, by operation and result code.
    @ivar latency: the seconds from request to result, by operation
        (L{Histogram}).
    @ivar binds: the Bind results sent, by method (C{"simple"},
        C{"sasl"}) and result code.
    @ivar lockouts: the accounts the password policy locked
        (L{ldapd.plugins.ppolicy}).
    """

    __slots__ = ("binds", "bytes", "completed", "connections", "entries", "initiated", "latency",
                 "listeners", "lockouts", "pdus", "referrals", "results", "started",
                 "throttledBinds", "totalConnections")

    def __init__(self, started: float) -> None:
        """
        @param started: the clock time the server started.
        """
        self.started = started
        self.initiated: defaultdict[str, int] = defaultdict(int)
        self.completed: defaultdict[str, int] = defaultdict(int)
        self.bytes = 0
        self.pdus = 0
        self.entries = 0
        self.referrals = 0
        self.throttledBinds = 0
        self.totalConnections = 0
        self.connections: dict[int, Any] = {}
        self.listeners: list[str] = []
        self.results: defaultdict[tuple[str, int], int] = defaultdict(int)
        self.latency: defaultdict[str, Histogram] = defaultdict(Histogram)
        self.binds: defaultdict[tuple[str, int], int] = defaultdict(int)
        self.lockouts = 0

    def resultSent(self, operation: str, code: int, seconds: float,
                   bindMethod: str | None = None) -> None:
        """
        Count an operation's result and the time it took.

        @param operation: the operation (L{ldapd.requests.Request.operation}).
        @param code: the result code.
        @param seconds: from the request's arrival to its result.
        @param bindMethod: for a Bind, C{"simple"} or C{"sasl"}.
        """
        self.results[operation, code] += 1
        self.latency[operation].observe(seconds)
        if bindMethod is not None:
            self.binds[bindMethod, code] += 1
