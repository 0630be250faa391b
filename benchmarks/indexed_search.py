"""
How the cost of an indexed equality search grows with the directory's size.

For each size it fills a memory backend with generated inetOrgPerson entries,
serves it on a loopback port, and drives it with a small pipelined load
generator (pre-encoded requests, a window of outstanding requests on each
connection) in a child process, so that client and server do not share a
core's time slices unevenly; with `taskset` available the two are pinned to
different cores. It prints searches per second, the server's CPU time per
search, and the ratio of each size to the smallest.

    python benchmarks/indexed_search.py                   # 1,000 / 10,000 / 100,000 entries
    python benchmarks/indexed_search.py --sizes 1000 100000 --seconds 5
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from ldaptor.protocols import pureldap

_CLIENT = r"""
import socket, sys, time
port, seconds, window, payload_hex, count = sys.argv[1:]
requests = [bytes.fromhex(h) for h in payload_hex.split(",")]
s = socket.create_connection(("127.0.0.1", int(port)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
window, seconds = int(window), float(seconds)
done = sent = 0
buf = b""
start = time.perf_counter()
end = start + seconds
while True:
    while sent - done < window and time.perf_counter() < end:
        s.sendall(requests[sent % len(requests)]); sent += 1
    if done == sent:
        break
    buf += s.recv(1 << 20)
    # Count SearchResultDone messages (application tag 5 -> 0x65) by walking the PDUs.
    while len(buf) >= 2:
        first = buf[1]
        if first < 0x80:
            head, length = 2, first
        else:
            n = first & 0x7F
            if len(buf) < 2 + n:
                break
            head, length = 2 + n, int.from_bytes(buf[2:2 + n], "big")
        if len(buf) < head + length:
            break
        pdu, buf = buf[:head + length], buf[head + length:]
        idlen = pdu[head + 1]
        if pdu[head + 2 + idlen] == 0x65:
            done += 1
elapsed = time.perf_counter() - start
print(done, elapsed)
"""


def _serve(size: int, port: int, ready: int) -> None:
    """
    The server process: build the directory, listen, report readiness on a pipe.
    """
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    from ldapd.backends.memory import MemoryBackend
    from ldapd.directory import Database, Directory, Limits
    from ldapd.dn import DN
    from ldapd.entry import Entry
    from ldapd.protocol import LDAPServerFactory
    from ldapd.schema import Schema

    schema = Schema.standard()
    suffix = DN.parse("dc=example,dc=com")
    backend = MemoryBackend(schema.normalizeDN(suffix), schema, reactor)
    directory = Directory([Database(suffix, backend)], schema=schema, reactor=reactor,
                          limits=Limits(0, 0))
    op = directory.internalOperation()

    def add(dn: DN, attrs: dict[str, list[bytes]]) -> None:
        Deferred.fromCoroutine(directory.add(op, Entry(dn, attrs, schema)))

    people = DN.parse("ou=people,dc=example,dc=com")
    add(suffix, {"objectClass": [b"organization", b"dcObject"], "o": [b"Example"],
                 "dc": [b"example"]})
    add(people, {"objectClass": [b"organizationalUnit"], "ou": [b"people"]})
    rng = random.Random(size)
    for i in range(size):
        uid = f"user{i:07d}"
        add(people.child(DN.parse(f"uid={uid}").rdn), {
            "objectClass": [b"top", b"person", b"organizationalPerson", b"inetOrgPerson"],
            "uid": [uid.encode()], "cn": [f"User {i}".encode()], 
            "sn": [f"Surname{rng.randrange(1000)}".encode()],
            "mail": [f"{uid}@example.com".encode()], "employeeNumber": [str(i).encode()],
        })
    reactor.listenTCP(port, LDAPServerFactory(directory, reactor), interface="127.0.0.1")
    os.write(ready, b"ready")
    reactor.run()


def _requests(size: int, count: int = 256) -> str:
    rng = random.Random(0)
    encoded = []
    for i in range(count):
        uid = f"user{rng.randrange(size):07d}"
        request = pureldap.LDAPSearchRequest(
            baseObject="dc=example,dc=com",
            filter=pureldap.LDAPFilter_equalityMatch(
                attributeDesc=pureldap.LDAPAttributeDescription("uid"),
                assertionValue=pureldap.LDAPAssertionValue(uid)),
        )
        encoded.append(pureldap.LDAPMessage(request, id=i + 1).toWire().hex())
    return ",".join(encoded)


def _cpuSeconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(size: int, seconds: float, window: int) -> tuple[float, float, int]:
    """
    @return: searches per second, server CPU microseconds per search, server RSS in KiB.
    """
    port = _freePort()
    readFd, writeFd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(readFd)
        try:
            _serve(size, port, writeFd)
        finally:
            os._exit(0)
    os.close(writeFd)
    try:
        os.read(readFd, 5)
        pin = ["taskset", "-c", "1"] if shutil.which("taskset") and os.cpu_count() > 1 else []
        if pin:
            subprocess.run(["taskset", "-p", "-c", "0", str(pid)], capture_output=True)
        payload = _requests(size)
        cpuBefore = _cpuSeconds(pid)
        out = subprocess.run(pin + [sys.executable, "-c", _CLIENT, str(port), str(seconds),
                                    str(window), payload, "0"],
                             capture_output=True, text=True, check=True)
        cpu = _cpuSeconds(pid) - cpuBefore
        done, elapsed = out.stdout.split()
        rss = int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])
        return int(done) / float(elapsed), cpu / int(done) * 1e6, rss
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def _freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=16, help="outstanding requests")
    args = parser.parse_args()
    print(f"indexed equality search (uid=...), memory backend, window {args.window}, "
          f"{args.seconds:g}s per size, server pinned to core 0 and client to core 1 "
          f"when taskset exists")
    print(f"{'entries':>9} {'searches/s':>11} {'server CPU µs/search':>21} {'RSS MiB':>8} {'vs first':>9}")
    first = None
    for size in args.sizes:
        rate, cpu, rss = measure(size, args.seconds, args.window)
        first = first or cpu
        print(f"{size:>9} {rate:>11.0f} {cpu:>21.1f} {rss / 1024:>8.0f} {cpu / first:>8.2f}x")


if __name__ == "__main__":
    main()
