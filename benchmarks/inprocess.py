"""
The cost of one request inside the server, without sockets: a Directory on the
memory backend, loaded with the benchmark's generated data, and one
LDAPServerProtocol on an in-memory transport fed pre-encoded requests. It
prints the CPU microseconds per request (the best of five runs; CPU time of
the process, so that other processes on a shared machine matter less), or with
C{--profile} the functions that take the most time (cProfile). With
C{--log}, the access log is written (to /dev/null) as C{twist ldapd} writes
it to its standard output; without it, the log events go nowhere.

    python benchmarks/inprocess.py --size 10000 --workload search
    python benchmarks/inprocess.py --workload bind --profile
    python benchmarks/inprocess.py --workload adddel --log
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogBeginner, textFileLogObserver

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare

from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory, Limits
from ldapd.dn import DN
from ldapd.protocol import LDAPServerFactory
from ldapd.schema import Schema


class _Clock(task.Clock):
    """
    A clock that tells the real time (for etimes and deadlines) and runs
    nothing it is given: timers never fire during a run.
    """

    def seconds(self) -> float:
        return time.monotonic()


def build(data: Path) -> Directory:
    """
    @param data: the LDIF to load.
    @return: an open directory serving it from the memory backend.
    """
    schema = Schema.standard()
    suffix = DN.parse(compare.SUFFIX)
    clock = _Clock()
    directory = Directory(
        [Database(suffix, MemoryBackend(schema.normalizeDN(suffix), schema, clock), seedLDIF=data,
                  rootDN=DN.parse(compare.ROOT_DN), rootPassword=b"secret")],
        schema=schema, limits=Limits(sizeLimit=0), reactor=clock,
    )
    directory.open()
    return directory


def drive(directory: Directory, requests: list[bytes], count: int, prelude: bytes = b"") -> float:
    """
    Feed C{count} requests, one at a time, to a new connection.

    @param prelude: a request the connection sends first, not measured
        (the root DN's Bind of the write workloads).
    @return: the CPU microseconds each took.
    """
    factory = LDAPServerFactory(directory, reactor=directory.reactor)
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport()
    protocol.makeConnection(transport)
    if prelude:
        protocol.dataReceived(prelude)
    started = time.process_time()
    for n in range(count):
        protocol.dataReceived(requests[n % len(requests)])
        if n % 64 == 0:
            transport.clear()
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--workload", choices=["search", "bind", "substring", "modify", "adddel"],
                        default="search")
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--log", action="store_true", help="write the access log to /dev/null")
    args = parser.parse_args()
    if args.log:
        sink = open("/dev/null", "w")  # noqa: SIM115 (open for the life of the process)
        globalLogBeginner.beginLoggingTo([textFileLogObserver(sink)], redirectStandardIO=False)
    with tempfile.TemporaryDirectory(prefix="ldapd-inprocess-") as tmp:
        data = Path(tmp) / "data.ldif"
        compare.generate(args.size, data)
        directory = build(data)
    workload = compare.WORKLOADS[args.workload]
    requests = [bytes.fromhex(h) for h in workload.requests(args.size)]
    prelude = bytes.fromhex(workload.prelude()) if workload.prelude is not None else b""
    drive(directory, requests, 500, prelude)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(drive, directory, requests, args.count, prelude)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    best = min(drive(directory, requests, args.count, prelude) for _ in range(5))
    print(f"{args.workload}: {best:.1f} CPU µs per request at {args.size} entries (best of 5)")


if __name__ == "__main__":
    main()
