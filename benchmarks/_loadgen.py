"""
A small, efficient LDAP load generator, run as its own process.

It sends pre-encoded requests (read from a file, one hex-encoded LDAPMessage
per line, in rotation; line N must have message id N, and the window must be
smaller than the number of lines) over several connections, keeping a window of
outstanding requests on each, and counts the final response of every request
(SearchResultDone, BindResponse, ModifyResponse, ...: any response whose
protocolOp is not a SearchResultEntry or SearchResultReference). It prints one
JSON line: operations, seconds, p50 and p99 latency in microseconds, and its
own CPU seconds, so that a benchmark can tell whether the client was the
bottleneck.

    python benchmarks/_loadgen.py PORT REQUESTS_FILE --seconds 5 --connections 4 --window 16
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import time

_PARTIAL = (0x64, 0x73)  # SearchResultEntry, SearchResultReference


class _Connection:
    def __init__(self, port: int, requests: list[bytes], window: int, offset: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.requests = requests
        self.window = window
        self.next = offset
        self.inFlight: dict[int, float] = {}
        self.buffer = bytearray()

    def fill(self, now: float, sending: bool) -> None:
        batch = []
        while sending and len(self.inFlight) < self.window:
            index = self.next % len(self.requests)
            batch.append(self.requests[index])
            self.next += 1
            self.inFlight[index + 1] = now
        if batch:
            self.sock.sendall(b"".join(batch))

    def read(self, latencies: list[float]) -> int:
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return 0
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data
        buf = self.buffer
        done = 0
        pos = 0
        now = time.perf_counter()
        while len(buf) - pos >= 2:
            first = buf[pos + 1]
            if first < 0x80:
                head, length = 2, first
            else:
                n = first & 0x7F
                if len(buf) - pos < 2 + n:
                    break
                head, length = 2 + n, int.from_bytes(buf[pos + 2 : pos + 2 + n], "big")
            if len(buf) - pos < head + length:
                break
            idLength = buf[pos + head + 1]
            tag = buf[pos + head + 2 + idLength]
            if tag not in _PARTIAL:
                messageId = int.from_bytes(buf[pos + head + 2 : pos + head + 2 + idLength], "big")
                latencies.append(now - self.inFlight.pop(messageId))
                done += 1
            pos += head + length
        del buf[:pos]
        return done


def run(port: int, requests: list[bytes], seconds: float, connections: int,
        window: int) -> dict[str, float]:
    """
    Drive the server and measure.
    """
    selector = selectors.DefaultSelector()
    conns = [_Connection(port, requests, window, i * 7919) for i in range(connections)]
    for c in conns:
        selector.register(c.sock, selectors.EVENT_READ, c)
    latencies: list[float] = []
    cpu0 = time.process_time()
    start = time.perf_counter()
    end = start + seconds
    done = 0
    for c in conns:
        c.fill(start, True)
    while True:
        now = time.perf_counter()
        sending = now < end
        if not sending and all(not c.inFlight for c in conns):
            break
        for key, _ in selector.select(timeout=1.0):
            c = key.data
            done += c.read(latencies)
            c.fill(time.perf_counter(), time.perf_counter() < end)
    elapsed = time.perf_counter() - start
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1e6 if latencies else 0.0

    return {
        "operations": done,
        "seconds": elapsed,
        "p50_us": percentile(0.50),
        "p99_us": percentile(0.99),
        "client_cpu_s": time.process_time() - cpu0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("requests")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=16)
    args = parser.parse_args()
    with open(args.requests) as f:
        requests = [bytes.fromhex(line.strip()) for line in f if line.strip()]
    result = run(args.port, requests, args.seconds, args.connections, args.window)
    result["pid"] = os.getpid()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
