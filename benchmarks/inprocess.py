"""
The cost of one request inside the server, without sockets: a Directory on the
memory backend (or, with C{--backend sqlite}, the sql backend on a SQLite
file, its database calls made inline rather than in its thread pool), loaded
with the benchmark's generated data, and one LDAPServerProtocol on an
in-memory transport fed pre-encoded requests. It prints the microseconds per
request, of wall clock and of the process's CPU (the best of five runs; CPU
time matters less on a shared machine), or with C{--profile} the functions
that take the most time (cProfile). With C{--log} (or C{--log json}), the
access log is written (to /dev/null) as C{twist ldapd --log-format text} (or
C{json}) writes it to its standard output, with the observer the server uses
in place of Twisted's (L{ldapd._logging}); without it, the log events go
nowhere.

    python benchmarks/inprocess.py --size 10000 --workload search
    python benchmarks/inprocess.py --workload bind --profile
    python benchmarks/inprocess.py --backend sqlite --workload modify
    python benchmarks/inprocess.py --workload adddel --log
    python benchmarks/inprocess.py --workload search --log json
    python benchmarks/inprocess.py --workload search --closed --log json   # every entry, random order
    python benchmarks/inprocess.py --workload any --closed    # (cn=*1234*), closed loop only (as
                                                              # initial, final and pieces)

With C{--callgrind}, run under C{valgrind --tool=callgrind --collect-atstart=no}, it
collects only while it serves C{--count} requests for entries the warm-up did not
read, then dumps: the dump's total instructions divided by the count is the cost of
one request, deterministic where CPU times on a shared machine are not (it builds a
small library with C{cc} and valgrind's C{callgrind.h} to toggle the collection):

    valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=cg.%p \
        python benchmarks/inprocess.py --closed --size 2000 --count 300 --log json --callgrind
    grep totals: cg.*.1        # instructions of the 300 requests

C{--plugin} runs one of C{compare.py}'s PLUGINS as its server C{ldapd+PLUGIN} does,
and several workloads measured in one run each make a dump (search, bind, then the
modifies of an admin under the acl plugin's typical rules: dumps 1, 2 and 3):

    valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=cg.%p \
        python benchmarks/inprocess.py --closed --size 2000 --count 300 --log json --callgrind \
        --workload search bind modify --plugin acl-site \
        --bind uid=user0000000,ou=people,dc=example,dc=com pw-user0000000
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import pstats
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogBeginner

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _loadgen
import compare

from ldapd._logging import jsonFileLogObserver, textFileLogObserver
from ldapd.admin import readEntries
from ldapd.backends.memory import MemoryBackend
from ldapd.backends.sql import SQLBackend
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.limits import Limits
from ldapd.protocol import LDAPServerFactory
from ldapd.registry import PLUGINS, ConfigContext, lookup
from ldapd.schema import Schema

#: The log observer of each C{--log} format, as C{twist ldapd} uses them.
_OBSERVERS = {"text": textFileLogObserver, "json": jsonFileLogObserver}


class _Clock(task.Clock):
    """
    A clock that tells the real time (for etimes and deadlines), or with
    C{frozen} the time it was made at, and runs only what it is given to
    run at once (a long search's turn to let others in, L{pump}): timers
    never fire during a run.

    Under callgrind, where a run takes a time that depends on the machine's
    load, the frozen clock keeps what is done every so many seconds (the
    acl plugin's reload of stored rules) out of the count, so that the
    count is the same on every run.
    """

    def __init__(self, frozen: bool = False) -> None:
        super().__init__()
        self._soon: list[Any] = []
        self._frozen = time.monotonic() if frozen else None

    def seconds(self) -> float:
        return time.monotonic() if self._frozen is None else self._frozen

    def callLater(self, delay: float, callable: Any, *args: Any, **kw: Any) -> Any:
        call = super().callLater(delay, callable, *args, **kw)
        if delay == 0:
            self._soon.append(call)
        return call

    def pump(self) -> None:
        """
        Run the calls given to run at once, and those they give.
        """
        while self._soon:
            call = self._soon.pop(0)
            if call.active():
                self.calls.remove(call)
                call.called = 1
                call.func(*call.args, **call.kw)


class _InlineSQLBackend(SQLBackend):
    """
    The sql backend with its database calls made in the caller's thread, so
    that a request's whole cost is one thread's (and cProfile sees it). Its
    writes come one at a time, so each is a transaction of its own, as a
    lone write is under group commit.
    """

    def _call(self, f: Any, *args: Any) -> defer.Deferred[Any]:
        return defer.maybeDeferred(f, *args)

    def _write(self, work: Any) -> defer.Deferred[Any]:
        return self._call(self._transact, work)


def build(data: Path, backend: str, folder: Path, plugin: str | None = None,
          frozen: bool = False) -> Directory:
    """
    @param data: the LDIF to load.
    @param backend: C{memory} or C{sqlite}.
    @param folder: where the SQLite file goes.
    @param plugin: the key in L{compare.PLUGINS} of a plugin to run, as
        C{compare.py}'s server C{ldapd+PLUGIN} runs it (its entries added
        to the data), or C{None}.
    @param frozen: whether its clock stands still (L{_Clock}).
    @return: an open directory serving the data.
    """
    schema = Schema.standard()
    suffix = DN.parse(compare.SUFFIX)
    clock = _Clock(frozen)
    plugins = []
    if plugin is not None:
        table = compare.PLUGINS[plugin]
        if table.entries:
            with open(data, "a") as f:
                f.write(table.entries)
        context = ConfigContext(None, "plugin[0]", schema, clock)
        plugins.append(lookup(PLUGINS, table.name, context, "name").fromConfig(
            tomllib.loads(table.table), context))
    root = {"rootDN": DN.parse(compare.ROOT_DN), "rootPassword": b"secret"}
    if backend == "memory":
        database = Database(suffix, MemoryBackend(schema.normalizeDN(suffix), schema, clock),
                            seedLDIF=data, **root)
    else:
        sql = _InlineSQLBackend(schema.normalizeDN(suffix), schema, f"sqlite:///{folder}/bench.db",
                                clock)
        sql._setUp()
        sql._cbOpenInline(None)
        with open(data, "rb") as f:
            sql.importEntries(readEntries(f, schema, root["rootDN"], print))
        database = Database(suffix, sql, **root)
    directory = Directory([database], schema=schema, limits=Limits(sizeLimit=0), reactor=clock,
                          plugins=plugins)
    directory.open()
    return directory


def drive(directory: Directory, requests: list[bytes], count: int,
          prelude: bytes | None = None) -> tuple[float, float]:
    """
    Feed C{count} requests, one at a time, to a new connection.

    @param prelude: a request sent first, unmeasured (the root DN's Bind).
    @return: the microseconds each took, of wall clock and of this
        process's CPU (they differ by the time spent waiting for the disk).
    @raise RuntimeError: if any request did not succeed: a failed request
        is no measure of the cost of one that does.
    """
    factory = LDAPServerFactory(directory, reactor=directory.reactor)
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport()
    protocol.makeConnection(transport)
    if prelude is not None:
        protocol.dataReceived(prelude)
        directory.reactor.pump()
        transport.clear()
    started = time.perf_counter()
    cpu = time.process_time()
    done = 0
    clock = directory.reactor
    for n in range(count):
        protocol.dataReceived(requests[n % len(requests)])
        clock.pump()
        if n % 64 == 63:
            done += _finished(transport)
    elapsed = (time.perf_counter() - started, time.process_time() - cpu)
    done += _finished(transport)
    if done != count:
        raise RuntimeError(f"{count - done} of {count} requests failed or got no response")
    return elapsed[0] / count * 1e6, elapsed[1] / count * 1e6


def _finished(transport: StringTransport) -> int:
    """
    Count the operations the responses written so far finish with success,
    and clear them.
    """
    buf = transport.value()
    transport.clear()
    done = pos = 0
    while pos < len(buf):
        first = buf[pos + 1]
        head, length = 2, first
        if first & 0x80:
            head = 2 + (first & 0x7F)
            length = int.from_bytes(buf[pos + 2 : pos + head], "big")
        op = pos + head + 2 + buf[pos + head + 1]
        if buf[op] not in _loadgen._PARTIAL:
            done += _loadgen._resultCode(bytearray(buf), op) == 0
        pos += head + length
    return done


#: Turns callgrind's collection on (zeroing what it counted) and off (dumping it).
_TOGGLES = r"""#include <valgrind/callgrind.h>
void on(void) { CALLGRIND_ZERO_STATS; CALLGRIND_TOGGLE_COLLECT; }
void off(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS; }
"""


def callgrindToggles(folder: Path) -> tuple[Any, Any]:
    """
    @return: functions that turn callgrind's collection on and off (and
        dump), from a library built in C{folder}; outside valgrind they do
        nothing.
    """
    source = folder / "toggles.c"
    source.write_text(_TOGGLES)
    library = folder / "toggles.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    toggles = ctypes.CDLL(str(library))
    return toggles.on, toggles.off


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--backend", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--workload", nargs="+", default=["search"],
                        choices=sorted((compare.WORKLOADS.keys() | compare.CLOSED_LOOP.keys())
                                       - {"connect"}),
                        help="one or more, measured in turn on the same directory (with "
                             "--callgrind, each in a dump of its own, numbered in this order); "
                             "the closed loop's own (any, initial, final, pieces: substring "
                             "searches on cn) go with --closed only")
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--closed", action="store_true",
                        help="the closed loop's requests: one for every entry, in random order "
                             "(search, bind, substring), rather than 512 that repeat (modify "
                             "and adddel, which the closed loop has not, keep theirs)")
    parser.add_argument("--plugin", choices=sorted(compare.PLUGINS),
                        help="run this plugin as compare.py's server ldapd+PLUGIN does")
    parser.add_argument("--bind", nargs=2, metavar=("DN", "PASSWORD"),
                        help="bind as DN first, unmeasured (in place of the root DN the "
                             "modify and adddel workloads bind as; a user's password is "
                             "pw-<uid>)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="the profile's order (pstats)")
    parser.add_argument("--lines", type=int, default=30, help="the profile's functions shown")
    parser.add_argument("--callgrind", action="store_true",
                        help="under valgrind --tool=callgrind --collect-atstart=no: collect only "
                             "while COUNT requests for entries not read before are served (the "
                             "server's clock standing still)")
    parser.add_argument("--log", nargs="?", const="text", choices=sorted(_OBSERVERS),
                        help="write the access log to /dev/null, as text (default) or JSON")
    args = parser.parse_args()
    if args.log:
        sink = open("/dev/null", "w")  # noqa: SIM115 (open for the life of the process)
        globalLogBeginner.beginLoggingTo([_OBSERVERS[args.log](sink)], redirectStandardIO=False)
    measured = []
    for name in args.workload:
        workload = compare.WORKLOADS.get(name)
        prelude = None
        if workload is not None and workload.prelude is not None:
            prelude = bytes.fromhex(workload.prelude() if args.bind is None
                                    else compare.bindRequest(*args.bind))
        if args.closed and name in compare.CLOSED_LOOP:
            hexes = compare.closedLoopRequests(name, args.size, 1)
        elif workload is None:
            parser.error(f"the {name} workload goes with --closed")
        else:
            hexes = workload.requests(args.size)
        measured.append((name, [bytes.fromhex(h) for h in hexes], prelude))
    with tempfile.TemporaryDirectory(prefix="ldapd-inprocess-") as tmp:
        data = Path(tmp) / "data.ldif"
        compare.generate(args.size, data)
        directory = build(data, args.backend, Path(tmp), args.plugin, frozen=args.callgrind)
        toggles = callgrindToggles(Path(tmp)) if args.callgrind else None
        try:
            for dump, (name, requests, prelude) in enumerate(measured, 1):
                _measure(args, directory, name, requests, prelude, toggles, dump)
        finally:
            # The sql backend's thread pool would keep the process alive.
            directory.close()


def _measure(args: argparse.Namespace, directory: Directory, name: str, requests: list[bytes],
             prelude: bytes | None, toggles: tuple[Any, Any] | None, dump: int) -> None:
    """
    Measure one workload as C{args} say, and print what was found.

    @param toggles: with C{--callgrind}, L{callgrindToggles}.
    @param dump: the number of the callgrind dump it makes.
    """
    if toggles is not None:
        on, off = toggles
        drive(directory, requests[args.count:] or requests, 500, prelude)
        on()
        drive(directory, requests, args.count, prelude)
        off()
        print(f"collected {args.count} {name} requests in dump {dump}: its total "
              f"instructions / {args.count} is the cost of one")
        return
    drive(directory, requests, 500, prelude)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(drive, directory, requests, args.count, prelude)
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.lines)
        return
    wall, cpu = min(drive(directory, requests, args.count, prelude) for _ in range(5))
    print(f"{name} on {args.backend}: {wall:.1f} µs per request, {cpu:.1f} µs of CPU, "
          f"at {args.size} entries (best of 5)")


if __name__ == "__main__":
    main()
