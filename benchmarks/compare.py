"""
ldapd side by side with OpenLDAP's slapd and ldaptor's own server.

One run generates deterministic data (inetOrgPerson users with {SSHA}
passwords, groups), loads it into each server, and drives them in alternation
with the same load generator (benchmarks/_loadgen.py: pre-encoded requests,
several connections with a window of outstanding requests each). The server
is pinned to core 0 and the client to core 1 when `taskset` exists. For every
workload it prints the median of the rounds: operations per second, p50/p99
latency, the server's CPU microseconds per operation, its RSS, the client's
CPU use (two load generator processes by default, so that it is never the
bottleneck), failed operations, and the ratios ldapd/slapd and ldapd/ldaptor.

Workloads: an indexed equality search returning one full entry (search), a
simple bind on a persistent connection (bind), connect + bind + unbind per
operation (connect), an initial-substring search returning one entry
(substring), a modify replacing one attribute as the root DN (modify), and an
add followed by the delete of the same entry as the root DN (adddel, each
request one operation).

    python benchmarks/compare.py                         # 10,000 entries, 3 rounds of 5 s
    python benchmarks/compare.py --sizes 10000 100000 --servers ldapd slapd
    python benchmarks/compare.py --servers ldapd ldapd-sqlite ldapd-pg   # the sql backend
    python benchmarks/compare.py --large --servers ldapd-sqlite slapd   # and 1,000,000 entries
    python benchmarks/compare.py --servers ldapd-sqlite --workers 2 --server-cores 0,1 --client-cores 0,1

With --large, a run of 1,000,000 entries follows the others, for the sql
backends and slapd only (the in-memory servers are left out at that size);
the import alone takes about a quarter of an hour. With --workers N the sql
servers run N worker processes ([server] workers); the server's CPU and RSS
are then those of the supervisor and all its workers together.

ldapd's memory backend and slapd are given the same indexes: the memory
backend's default unless `--indexes` names others (in the form both take,
e.g. `--indexes "objectClass,uid,cn,mail,member eq"`, slapd's usual
equality indexes).

slapd comes from Debian's `slapd` package (`/usr/sbin/slapd`, `slapadd`);
servers that are not installed are left out with a note.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ldaptor.protocols import pureber, pureldap

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from ldapd.backends.memory import DEFAULT_INDEXES  # noqa: E402 (found through the path set above)

SUFFIX = "dc=example,dc=com"
ROOT_DN = "cn=admin,dc=example,dc=com"
SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")


def _freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ssha(password: bytes, salt: bytes) -> bytes:
    return b"{SSHA}" + base64.b64encode(hashlib.sha1(password + salt).digest() + salt)


def uid(i: int) -> str:
    return f"user{i:07d}"


def generate(size: int, path: Path) -> None:
    """
    Write the benchmark data: C{size} users under ou=people (password
    C{pw-<uid>}) and groups of 50 members under ou=groups.
    """
    with open(path, "w") as f:
        f.write(f"dn: {SUFFIX}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\n"
                "dc: example\no: Example\n\n")
        for ou in ("people", "groups"):
            f.write(f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n\n")
        for i in range(size):
            u = uid(i)
            password = _ssha(f"pw-{u}".encode(), i.to_bytes(4, "big") * 2).decode()
            f.write(
                f"dn: uid={u},ou=people,{SUFFIX}\nobjectClass: top\nobjectClass: person\n"
                f"objectClass: organizationalPerson\nobjectClass: inetOrgPerson\nuid: {u}\n"
                f"cn: User {i}\nsn: Surname{i % 1000}\ngivenName: Given{i % 500}\n"
                f"mail: {u}@example.com\nemployeeNumber: {i}\n"
                f"telephoneNumber: +1 555 {i % 10000:04d}\nuserPassword: {password}\n\n"
            )
        for g in range(max(1, size // 50)):
            members = "".join(
                f"member: uid={uid(i)},ou=people,{SUFFIX}\n" for i in range(g * 50, min(size, g * 50 + 50))
            )
            f.write(f"dn: cn=group{g:05d},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\n"
                    f"cn: group{g:05d}\n{members}\n")


def _message(request: object, messageId: int) -> str:
    return pureldap.LDAPMessage(request, id=messageId).toWire().hex()


def searchRequests(size: int, count: int = 512) -> list[str]:
    """
    Indexed equality searches, each returning one full entry.
    """
    return [
        _message(pureldap.LDAPSearchRequest(
            baseObject=SUFFIX,
            filter=pureldap.LDAPFilter_equalityMatch(
                attributeDesc=pureldap.LDAPAttributeDescription("uid"),
                assertionValue=pureldap.LDAPAssertionValue(uid((n * 7919) % size)))), n + 1)
        for n in range(count)
    ]


def bindRequests(size: int, count: int = 512) -> list[str]:
    """
    Simple binds as users with their {SSHA} passwords.
    """
    requests = []
    for n in range(count):
        u = uid((n * 104729) % size)
        requests.append(_message(pureldap.LDAPBindRequest(
            dn=f"uid={u},ou=people,{SUFFIX}", auth=f"pw-{u}"), n + 1))
    return requests


def substringRequests(size: int, count: int = 512) -> list[str]:
    """
    Substring searches on an initial part of mail (an autocompletion), each
    returning one full entry.
    """
    return [
        _message(pureldap.LDAPSearchRequest(
            baseObject=SUFFIX,
            filter=pureldap.LDAPFilter_substrings(
                type="mail",
                substrings=[pureldap.LDAPFilter_substrings_initial(uid((n * 7919) % size) + "@")])),
            n + 1)
        for n in range(count)
    ]


def modifyRequests(size: int, count: int = 512) -> list[str]:
    """
    Modify requests replacing one attribute (description) of a user.
    """
    return [
        _message(pureldap.LDAPModifyRequest(
            object=f"uid={uid((n * 7919) % size)},ou=people,{SUFFIX}",
            modification=[pureber.BERSequence([
                pureber.BEREnumerated(2),
                pureber.BERSequence([pureber.BEROctetString("description"),
                                     pureber.BERSet([pureber.BEROctetString(f"change {n}")])]),
            ])]),
            n + 1)
        for n in range(count)
    ]


def addDeleteRequests(size: int, count: int = 40_000) -> list[str]:
    """
    Pairs of requests: add a new user, then delete it. Each request is one
    operation of the workload. There are enough that no connection comes
    round to the pairs another connection is sending within a round (which
    would fail as adds of entries that exist, or deletes of entries that
    do not).
    """
    requests = []
    for n in range(count // 2):
        u = f"extra{n:07d}"
        dn = f"uid={u},ou=people,{SUFFIX}"
        attributes = [
            ("objectClass", ["top", "person", "organizationalPerson", "inetOrgPerson"]),
            ("uid", [u]), ("cn", [f"Extra {n}"]), ("sn", ["Extra"]), ("mail", [f"{u}@example.com"]),
        ]
        requests.append(_message(pureldap.LDAPAddRequest(entry=dn, attributes=[
            (pureber.BEROctetString(name), pureber.BERSet([pureber.BEROctetString(v) for v in values]))
            for name, values in attributes
        ]), len(requests) + 1))
        requests.append(_message(pureldap.LDAPDelRequest(entry=dn), len(requests) + 1))
    return requests


def rootBind() -> str:
    """
    A Bind as the root DN, with a message id the workloads do not use.
    """
    return _message(pureldap.LDAPBindRequest(dn=ROOT_DN, auth="secret"), 0x7FFF)


@dataclass(frozen=True)
class Workload:
    """
    What the load generator sends.

    @ivar requests: makes the requests for a number of entries.
    @ivar window: the requests outstanding on each connection.
    @ivar prelude: a request each connection sends before the measured ones.
    @ivar reconnect: whether each request has a connection of its own
        (connect, request, Unbind, close), one at a time per connection slot.
    @ivar pairs: whether the requests go in pairs, each connection ending a
        round on a whole pair (so that the next round finds no entry added
        and not deleted).
    """

    requests: Callable[[int], list[str]]
    window: int
    prelude: Callable[[], str] | None = None
    reconnect: bool = False
    pairs: bool = False


WORKLOADS: dict[str, Workload] = {
    "search": Workload(searchRequests, 16),
    "bind": Workload(bindRequests, 1),
    "connect": Workload(bindRequests, 1, reconnect=True),
    "substring": Workload(substringRequests, 16),
    "modify": Workload(modifyRequests, 4, prelude=rootBind),
    # One add and its delete in flight at a time, as they must be in order.
    "adddel": Workload(addDeleteRequests, 1, prelude=rootBind, pairs=True),
}


class Server:
    """
    One server under test, started in its own process.
    """

    name = ""

    def __init__(self, data: Path, work: Path, indexes: list[str], cores: str = "0",
                 workers: int = 1) -> None:
        """
        @param data: the LDIF to serve.
        @param work: a folder for the server's files.
        @param indexes: the indexes of the servers that take them, as
            C{"<types> <kinds>"} lines.
        @param cores: the cores it is pinned to (C{taskset -c}).
        @param workers: its processes, where it has C{[server] workers}.
        """
        self.data = data
        self.work = work
        self.indexes = indexes
        self.cores = cores
        self.workers = workers
        self.port = _freePort()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """
        Load the data, where the server needs that done before it starts.
        """

    def start(self, timeout: float = 600) -> None:
        self.prepare()
        log = open(self.work / f"{self.name}.log", "wb")
        # Started on its cores (taskset execs the server), so that every
        # thread and worker process it makes stays on them.
        pin = ["taskset", "-c", self.cores] if shutil.which("taskset") else []
        self.process = subprocess.Popen(pin + self.command(), stdout=log,
                                        stderr=subprocess.STDOUT,
                                        env=dict(os.environ, PYTHONPATH=str(ROOT)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.work / (self.name + '.log')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"{self.name} did not start within {timeout}s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pids(self) -> list[int]:
        """
        @return: the server's process and all its descendants (workers).
        """
        found = [self.pid]
        for pid in found:
            for task in Path(f"/proc/{pid}/task").iterdir():
                found.extend(int(c) for c in (task / "children").read_text().split())
        return found

    def cpuSeconds(self) -> float:
        total = 0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def rssMiB(self) -> float:
        total = 0
        for pid in self.pids():
            status = Path(f"/proc/{pid}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0])
        return total / 1024

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Ldapd(Server):
    name = "ldapd"

    def command(self) -> list[str]:
        config = self.work / "ldapd.toml"
        config.write_text(
            f'[server]\nlisten = ["tcp:{self.port}:interface=127.0.0.1"]\nsize_limit = 0\n\n'
            f'[[database]]\nsuffix = "{SUFFIX}"\nbackend = "memory"\nroot_dn = "{ROOT_DN}"\n'
            f'root_password = "{_ssha(b"secret", b"saltsalt").decode()}"\nseed_ldif = "{self.data}"\n'
            f"indexes = {json.dumps(self.indexes)}\n"
        )
        return [sys.executable, "-m", "twisted", "ldapd", "--config", str(config)]


class Slapd(Server):
    name = "slapd"

    def prepare(self) -> None:
        db = self.work / "slapd-db"
        db.mkdir(exist_ok=True)
        schema = "".join(f"include /etc/ldap/schema/{s}.schema\n"
                         for s in ("core", "cosine", "inetorgperson", "nis"))
        self.config = self.work / "slapd.conf"
        self.config.write_text(
            f"{schema}pidfile {self.work}/slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n"
            f"sizelimit unlimited\ndatabase mdb\nmaxsize 4294967296\nsuffix \"{SUFFIX}\"\n"
            f"rootdn \"{ROOT_DN}\"\nrootpw secret\ndirectory {db}\n"
            + "".join(f"index {name} {','.join(sorted(kinds))}\n"
                      for name, kinds in _indexesByType(self.indexes).items())
        )
        subprocess.run([str(SLAPADD), "-q", "-f", str(self.config), "-l", str(self.data)],
                       check=True, capture_output=True)

    def command(self) -> list[str]:
        return [str(SLAPD), "-d", "0", "-f", str(self.config), "-h", f"ldap://127.0.0.1:{self.port}/"]


def _indexesByType(lines: list[str]) -> dict[str, set[str]]:
    """
    @param lines: indexes as C{"<types> <kinds>"} lines, a type possibly in several.
    @return: the kinds of each type, as slapd wants them: one line a type.
    """
    kinds: dict[str, set[str]] = {}
    for line in lines:
        names, wanted = line.split()
        for name in names.split(","):
            kinds.setdefault(name, set()).update(wanted.split(","))
    return kinds


class Ldaptor(Server):
    name = "ldaptor"

    def command(self) -> list[str]:
        return [sys.executable, str(HERE / "_ldaptor_server.py"), str(self.port), str(self.data)]


class LdapdSQLite(Server):
    """
    ldapd on the sql backend with SQLite, loaded beforehand with
    `ldapd-admin import` (the bulk path), whose rate it prints.
    """

    name = "ldapd-sqlite"

    #: The backend's C{entry_cache}, where not its default.
    entryCache: int | None = None

    #: C{[server] cpu_affinity}: each process on one core of its own.
    cpuAffinity = False

    def url(self) -> str:
        return f"sqlite:///{self.work}/bench.db"

    def prepare(self) -> None:
        self.config = self.work / f"{self.name}.toml"
        self.config.write_text(
            f'[server]\nlisten = ["tcp:{self.port}:interface=127.0.0.1"]\nsize_limit = 0\n'
            f'workers = {self.workers}\ncpu_affinity = {str(self.cpuAffinity).lower()}\n\n'
            f'[[database]]\nsuffix = "{SUFFIX}"\nbackend = "sql"\nurl = "{self.url()}"\n'
            f'root_dn = "{ROOT_DN}"\nroot_password = "{_ssha(b"secret", b"saltsalt").decode()}"\n'
            + (f"entry_cache = {self.entryCache}\n" if self.entryCache is not None else "")
        )
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "ldapd.admin", "import", "-q", str(self.config),
                        str(self.data)], check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        elapsed = time.monotonic() - started
        entries = self.data.read_bytes().count(b"\ndn: ") + 1
        print(f"{self.name}: imported {entries} entries in {elapsed:.1f}s "
              f"({entries / elapsed:.0f} entries/s, process start included)")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "twisted", "ldapd", "--config", str(self.config)]


class LdapdPostgreSQL(LdapdSQLite):
    """
    ldapd on the sql backend with PostgreSQL (LDAPD_TEST_POSTGRESQL_URL), in
    a schema of its own that is dropped afterwards.
    """

    name = "ldapd-pg"

    def url(self) -> str:
        from sqlalchemy import create_engine, text

        base = os.environ["LDAPD_TEST_POSTGRESQL_URL"]
        self.schema = f"ldapd_bench_{os.getpid()}_{self.port}"
        self.engine = create_engine(base)
        with self.engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {self.schema}"))
        return f"{base}?options=-csearch_path%3D{self.schema}"

    def stop(self) -> None:
        super().stop()
        from sqlalchemy import text

        if not hasattr(self, "engine"):
            return
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {self.schema} CASCADE"))


#: The size of C{--large}, and the servers run at that size.
LARGE = 1_000_000
LARGE_SERVERS = ("ldapd-sqlite", "ldapd-pg", "slapd")

#: The servers on the sql backend, which C{--workers} applies to.
SQL_SERVERS = ("ldapd-sqlite", "ldapd-pg")

SERVERS = {"ldapd": Ldapd, "ldapd-sqlite": LdapdSQLite, "ldapd-pg": LdapdPostgreSQL,
           "slapd": Slapd, "ldaptor": Ldaptor}


def drive(server: Server, requestsFile: Path, seconds: float, connections: int,
          workload: Workload, clients: int = 1, cores: str = "1") -> dict[str, float]:
    """
    Run the load generator against a server: C{clients} processes, all
    pinned to C{cores}, sharing the C{connections} between them.

    @return: the operations and errors of all of them, their CPU seconds
        together, the mean of their median latencies and the largest of
        their 99th percentiles, with the server's CPU per operation and RSS.
    """
    pin = ["taskset", "-c", cores] if shutil.which("taskset") else []
    command = pin + [sys.executable, str(HERE / "_loadgen.py"), str(server.port), str(requestsFile),
                     "--seconds", str(seconds), "--window", str(workload.window)]
    if workload.prelude is not None:
        command += ["--prelude", workload.prelude()]
    if workload.reconnect:
        command.append("--reconnect")
    if workload.pairs:
        command.append("--pairs")
    shares = [connections // clients + (i < connections % clients) for i in range(clients)]
    before = server.cpuSeconds()
    processes = [
        subprocess.Popen(command + ["--connections", str(n), "--first", str(sum(shares[:i])),
                                    "--total", str(connections)], stdout=subprocess.PIPE, text=True)
        for i, n in enumerate(shares) if n
    ]
    outputs = []
    for p in processes:
        out, _ = p.communicate()
        if p.returncode:
            raise RuntimeError(f"the load generator failed against {server.name}")
        outputs.append(json.loads(out))
    cpu = server.cpuSeconds() - before
    operations = sum(o["operations"] for o in outputs)
    elapsed = max(o["seconds"] for o in outputs)
    return {
        "operations": operations,
        "errors": sum(o["errors"] for o in outputs),
        "seconds": elapsed,
        "ops_per_s": operations / elapsed,
        "p50_us": statistics.mean(o["p50_us"] for o in outputs),
        "p99_us": max(o["p99_us"] for o in outputs),
        "client_cpu_s": sum(o["client_cpu_s"] for o in outputs),
        "server_cpu_us": cpu / max(1, operations) * 1e6,
        "rss_mib": server.rssMiB(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000])
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=list(SERVERS))
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--clients", type=int, default=2,
                        help="load generator processes (all on core 1), sharing the connections")
    parser.add_argument("--indexes", nargs="+", default=list(DEFAULT_INDEXES),
                        help="the indexes of ldapd's memory backend and of slapd")
    parser.add_argument("--large", action="store_true",
                        help=f"also {LARGE:,} entries, for the sql backends and slapd")
    parser.add_argument("--workers", type=int, default=1,
                        help="[server] workers of the sql servers")
    parser.add_argument("--entry-cache", type=int,
                        help="entry_cache of the sql servers (0: every read decodes its rows)")
    parser.add_argument("--cpu-affinity", action="store_true",
                        help="[server] cpu_affinity for the sql servers: each process (each "
                             "worker) on one of the server cores")
    parser.add_argument("--server-cores", default="0", help="the servers' cores (taskset -c)")
    parser.add_argument("--client-cores", default="1", help="the load generator's cores")
    args = parser.parse_args()
    if args.large and LARGE not in args.sizes:
        args.sizes.append(LARGE)
    names = [n for n in args.servers if n != "slapd" or (SLAPD.exists() and SLAPADD.exists())]
    if len(names) != len(args.servers):
        print("note: slapd is not installed (Debian package slapd); left out")
    if "ldapd-pg" in names and not os.environ.get("LDAPD_TEST_POSTGRESQL_URL"):
        names.remove("ldapd-pg")
        print("note: LDAPD_TEST_POSTGRESQL_URL is not set; ldapd-pg left out")
    print(f"{os.cpu_count()} cores; servers pinned to cores {args.server_cores}, load generator "
          f"to cores {args.client_cores}" if shutil.which("taskset")
          else "taskset not found: processes not pinned")
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="ldapd-bench-") as tmp:
            work = Path(tmp)
            data = work / "data.ldif"
            generate(size, data)
            present = [n for n in names if size < LARGE or n in LARGE_SERVERS]
            servers = [SERVERS[n](data, work, args.indexes, args.server_cores,
                                  args.workers if n in SQL_SERVERS else 1) for n in present]
            for server in servers:
                if isinstance(server, LdapdSQLite):
                    server.entryCache = args.entry_cache
                    server.cpuAffinity = args.cpu_affinity
            results: dict[tuple[str, str], list[dict[str, float]]] = {}
            try:
                for server in servers:
                    started = time.monotonic()
                    server.start()
                    print(f"{server.name}: loaded {size} entries and listening in "
                          f"{time.monotonic() - started:.1f}s")
                for workload in args.workloads:
                    requestsFile = work / f"{workload}.hex"
                    requestsFile.write_text("\n".join(WORKLOADS[workload].requests(size)))
                    for _ in range(args.rounds):
                        for server in servers:
                            seconds = args.seconds if server.name != "ldaptor" else min(args.seconds, 3)
                            results.setdefault((workload, server.name), []).append(
                                drive(server, requestsFile, seconds, args.connections,
                                      WORKLOADS[workload], args.clients, args.client_cores))
            finally:
                for server in servers:
                    server.stop()
            report(size, args, present, results)


def report(size: int, args: argparse.Namespace, names: list[str],
           results: dict[tuple[str, str], list[dict[str, float]]]) -> None:
    print(f"\n{size} entries, median of {args.rounds} rounds, {args.connections} connections "
          f"from {args.clients} load generator processes; indexes {'; '.join(args.indexes)}")
    print(f"{'workload':<9} {'server':<12} {'ops/s':>9} {'p50 µs':>9} {'p99 µs':>9} "
          f"{'srv CPU µs/op':>14} {'RSS MiB':>8} {'client CPU %':>12} {'errors':>7}")
    medians: dict[tuple[str, str], dict[str, float]] = {}
    for (workload, name), rounds in results.items():
        m = {k: statistics.median(r[k] for r in rounds)
             for k in ("ops_per_s", "p50_us", "p99_us", "server_cpu_us", "rss_mib")}
        m["client_cpu"] = statistics.median(r["client_cpu_s"] / r["seconds"] * 100 for r in rounds)
        m["errors"] = sum(r["errors"] for r in rounds)
        medians[(workload, name)] = m
        print(f"{workload:<9} {name:<12} {m['ops_per_s']:>9.0f} {m['p50_us']:>9.0f} "
              f"{m['p99_us']:>9.0f} {m['server_cpu_us']:>14.1f} {m['rss_mib']:>8.0f} "
              f"{m['client_cpu']:>11.0f}% {m['errors']:>7.0f}")
    for workload in args.workloads:
        for name in names:
            mine = medians.get((workload, name))
            if not name.startswith("ldapd") or mine is None:
                continue
            for other in ("slapd", "ldaptor"):
                theirs = medians.get((workload, other))
                if theirs:
                    cpu = mine["server_cpu_us"] / theirs["server_cpu_us"]
                    print(f"{workload}: {name}/{other} throughput "
                          f"{mine['ops_per_s'] / theirs['ops_per_s']:.3f}, "
                          f"CPU per operation {cpu:.3g}x")


if __name__ == "__main__":
    main()
