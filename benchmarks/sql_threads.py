"""
Why the sql backend runs large reads in a thread pool: the cost of the
thread hop against what the reactor gains.

On a SQLite file loaded with generated people, in one process, it measures
indexed equality searches per second, and the longest time the reactor goes
without running a 1 ms timer while an unindexed search scans every entry,
once as shipped (a small read in the reactor's thread, a larger one handed
to the thread pool: L{SQLBackend._readNow}; on PostgreSQL, every read in the
pool) and once with every batch read called inline in the reactor thread.
It also prints the bulk import rate.

    python benchmarks/sql_threads.py --size 10000
    python benchmarks/sql_threads.py --url 'postgresql+psycopg://postgres@127.0.0.1/test?options=-csearch_path%3Dbench'
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

from twisted.internet import defer, task

from ldapd.backends.sql import SQLBackend, _Cursor
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.filters import compileFilter
from ldapd.operation import Scope, SearchParameters
from ldapd.schema import Schema
from ldapd.testing import _op, parseFilter

SUFFIX = "dc=example,dc=com"


def people(schema: Schema, size: int) -> Any:
    yield Entry(DN.parse(SUFFIX), [("objectClass", [b"domain"]), ("dc", [b"example"])], schema)
    yield Entry(DN.parse(f"ou=people,{SUFFIX}"),
                [("objectClass", [b"organizationalUnit"]), ("ou", [b"people"])], schema)
    for i in range(size):
        uid = f"user{i:07d}"
        yield Entry(DN.parse(f"uid={uid},ou=people,{SUFFIX}"), [
            ("objectClass", [b"inetOrgPerson"]), ("uid", [uid.encode()]),
            ("cn", [f"User {i}".encode()]), ("sn", [f"Surname{i % 1000}".encode()]),
            ("mail", [f"{uid}@example.com".encode()])], schema)


async def search(backend: SQLBackend, schema: Schema, text: str, inline: bool) -> int:
    f = compileFilter(parseFilter(text), schema)
    params = SearchParameters(backend.suffix, Scope.SUB, f)
    found = []
    if not inline:
        await backend.search(_op(params), found.append)
        return len(found)
    cursor = _Cursor(params.base, params.scope, backend.plan(f))
    while not cursor.done:
        found.extend(backend._fetchBatch(cursor, f))
    return len(found)


class Stall:
    """
    The longest time between two ticks of a timer.
    """

    def __init__(self) -> None:
        self.longest = 0.0
        self.last = time.perf_counter()

    def tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.last)
        self.last = now


async def main(reactor: Any, size: int, count: int, url: str | None) -> None:
    schema = Schema.standard()
    if url is None:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='ldapd-bench-')}/bench.db"
    backend = SQLBackend(schema.normalizeDN(DN.parse(SUFFIX)), schema, url, reactor)
    await backend.open()
    started = time.perf_counter()
    loaded = await backend._call(backend.importEntries, people(schema, size))
    elapsed = time.perf_counter() - started
    print(f"imported {loaded} entries in {elapsed:.1f}s: {loaded / elapsed:.0f} entries/s")
    for inline in (False, True):
        how = "all inline" if inline else "as shipped"
        started = time.perf_counter()
        for n in range(count):
            await search(backend, schema, f"(uid=user{(n * 7919) % size:07d})", inline)
        rate = count / (time.perf_counter() - started)
        stall = Stall()
        ticker = task.LoopingCall(stall.tick)
        ticker.start(0.001)
        started = time.perf_counter()
        await search(backend, schema, "(description=*nothing*)", inline)
        scan = time.perf_counter() - started
        stall.tick()
        ticker.stop()
        print(f"{how}: {rate:7.0f} indexed searches/s; full scan of {size} entries "
              f"{scan:.2f}s, longest reactor stall {stall.longest * 1000:.0f} ms")
    await backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--searches", type=int, default=2000)
    parser.add_argument("--url", help="an empty database (a new SQLite file by default)")
    args = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(
        main(reactor, args.size, args.searches, args.url)))
