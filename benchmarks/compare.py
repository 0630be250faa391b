"""
ldapd side by side with OpenLDAP's slapd, 389 Directory Server, the Twisted
floor and ldaptor's own server.

One run generates deterministic data (inetOrgPerson users with {SSHA}
passwords, groups), loads it into each server, and drives them in alternation
with the same load generator. The server is pinned to core 0 and the client
to core 1 when `taskset` exists. For every workload it prints the median of
the rounds: operations per second, p50/p99 latency, the server's CPU
microseconds per operation (from /proc, user + system, of the server's
processes), its RSS, the client's CPU use (so that one can see it is not the
bottleneck), failed operations, and the ratios of ldapd to slapd, 389 DS,
the floor and ldaptor.

Two modes:

- closed (the default, what users see): every connection has one request
  outstanding, as SSSD, nslcd, PAM and web applications' LDAP logins do, and
  every request names a user drawn at random from all of them. The load
  generator is benchmarks/_cloadgen.c, built with the C compiler at run time
  (`--client python` uses benchmarks/_loadgen.py with a window of 1 instead,
  as a cross-check). Workloads search, bind, substring, any, initial, final,
  pieces; servers ldapd (memory, its access log written as JSON to a file,
  as under systemd),
  ldapd-nolog (the same, the log lines made but not written: slapd runs
  without its stats log), slapd, 389ds and floor (benchmarks/_floor_server.py:
  a Twisted protocol answering every request with a fixed result, the least
  Twisted allows), and ldapd+acl, ldapd+acl-site, ldapd+ppolicy, ldapd+ppolicy-nolastbind,
  ldapd+ppolicy-lastbind60, ldapd+memberof, ldapd+changelog, ldapd+monitor
  (ldapd with that plugin alone, configured as a site would: PLUGINS), each
  also reported against ldapd: what the plugin costs an operation.
- pipelined (`--mode pipelined`, flattering: many responses share a reactor
  wake-up and every one comes from a cache): benchmarks/_loadgen.py,
  pre-encoded requests, several connections with a window of outstanding
  requests each, cycling through 512 distinct requests.

Workloads: an indexed equality search returning one full entry (search), a
simple bind on a persistent connection (bind), connect + bind + unbind per
operation (connect), an initial-substring search returning one entry
(substring), a modify replacing one attribute as the root DN (modify), and an
add followed by the delete of the same entry as the root DN (adddel, each
request one operation); closed loop only, a search for four digits anywhere
in cn, `(cn=*1234*)`, as address books send (any), and the same digits as
the other pieces a substring index serves: `(cn=User 1234*)` (initial),
`(cn=*1234)` (final) and `(cn=us*er*1234)` (pieces).

    python benchmarks/compare.py                         # closed loop, 10,000 entries, 3 rounds of 5 s
    python benchmarks/compare.py --mode pipelined        # the pipelined load
    python benchmarks/compare.py --sizes 10000 100000 --servers ldapd slapd
    python benchmarks/compare.py --servers ldapd ldapd-sqlite ldapd-pg   # the sql backend
    python benchmarks/compare.py --large --servers ldapd-sqlite slapd   # and 1,000,000 entries
    python benchmarks/compare.py --servers ldapd-sqlite --workers 1 2 --server-cores 0,1 --client-cores 0,1
    python benchmarks/compare.py --servers ldapd ldapd+acl ldapd+ppolicy   # what plugins cost
    python benchmarks/compare.py --servers ldapd ldapd-sqlite slapd --workloads any

With --large, a run of 1,000,000 entries follows the others, for the sql
backends and slapd only (the in-memory servers are left out at that size);
the import alone takes about a quarter of an hour. With --workers N the sql
servers run N worker processes ([server] workers); the server's CPU and RSS
are then those of the supervisor and all its workers together. With several
numbers (--workers 1 2) each sql server runs once with each, in alternation,
those with N > 1 named NAME-wN and reported against NAME.

ldapd's memory backend and slapd are given the same indexes: the memory
backend's default unless `--indexes` names others (in the form both take,
e.g. `--indexes "objectClass,uid,cn,mail,member eq"`, slapd's usual
equality indexes).

slapd comes from Debian's `slapd` package (`/usr/sbin/slapd`, `slapadd`),
389 DS from `389-ds-base` (`dscreate`, `ns-slapd`); servers that are not
installed are left out with a note.
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
NS_SLAPD = Path("/usr/sbin/ns-slapd")
DS389_DEFAULTS = Path("/usr/share/dirsrv/inf/defaults.inf")


def _freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int, timeout: float) -> bool:
    """
    Whether a server answers a search: a server may listen before its data
    is loaded (ldapd opens its directory after it binds its ports), and a
    round measured then would measure the loading.

    @return: whether a base search of the suffix got its final response
        within C{timeout} seconds.
    @raise OSError: if nothing listens.
    """
    request = pureldap.LDAPMessage(pureldap.LDAPSearchRequest(
        baseObject=SUFFIX, scope=0, filter=pureldap.LDAPFilter_present("objectClass")), id=1)
    with socket.create_connection(("127.0.0.1", port), timeout=max(1.0, timeout)) as s:
        s.sendall(request.toWire())
        received = b""
        while not _finalResponse(received):
            data = s.recv(1 << 16)
            if not data:
                return False
            received += data
    return True


def _finalResponse(received: bytes) -> bool:
    """
    @return: whether C{received} holds a response that is not a search
        result entry (the search's final one).
    """
    pos = 0
    while len(received) - pos >= 2:
        first = received[pos + 1]
        head, length = 2, first
        if first & 0x80:
            head = 2 + (first & 0x7F)
            length = int.from_bytes(received[pos + 2 : pos + head], "big")
        if len(received) - pos < head + length:
            return False
        op = pos + head + 2 + received[pos + head + 1]
        if received[op] not in (0x64, 0x73):
            return True
        pos += head + length
    return False


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


def _searchUid(u: str) -> object:
    """
    An indexed equality search for one user, returning its full entry.
    """
    return pureldap.LDAPSearchRequest(
        baseObject=SUFFIX,
        filter=pureldap.LDAPFilter_equalityMatch(
            attributeDesc=pureldap.LDAPAttributeDescription("uid"),
            assertionValue=pureldap.LDAPAssertionValue(u)))


def _searchCN(*pieces: object) -> object:
    """
    A substrings search on cn from the suffix, returning full entries.
    """
    return pureldap.LDAPSearchRequest(
        baseObject=SUFFIX, filter=pureldap.LDAPFilter_substrings(type="cn", substrings=list(pieces)))


def searchRequests(size: int, count: int = 512) -> list[str]:
    """
    Indexed equality searches, each returning one full entry.
    """
    return [_message(_searchUid(uid((n * 7919) % size)), n + 1) for n in range(count)]


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


#: The digits of a user's number in C{uid}.
DIGITS = len(uid(0)) - len("user")


@dataclass(frozen=True)
class Template:
    """
    One request of a closed-loop workload, for a load generator that writes a
    random entry number into it before each send.

    @ivar wire: the encoded LDAPMessage, for entry 0, with message id 1.
    @ivar messageId: the offset of the message id's one content byte.
    @ivar numbers: the offsets of the digits of the user's number.
    @ivar digits: how many digits each number has (zero-padded).
    """

    wire: bytes
    messageId: int
    numbers: tuple[int, ...]
    digits: int = DIGITS

    @classmethod
    def of(cls, workload: ClosedLoop) -> Template:
        """
        @return: the template of C{workload}'s request, the offsets of its
            numbers found as the bytes that differ between the request for
            the user with all its digits 0 and the one with all 9.
        """
        wire = pureldap.LDAPMessage(workload.build(uid(0)), id=1).toWire()
        nines = pureldap.LDAPMessage(workload.build(uid(10**workload.digits - 1)), id=1).toWire()
        head = 2 if wire[1] < 0x80 else 2 + (wire[1] & 0x7F)
        assert wire[head : head + 3] == b"\x02\x01\x01", "message id 1 right after the header"
        assert len(wire) == len(nines), "numbers of a fixed width"
        numbers = []
        at = 0
        while at < len(wire):
            if wire[at] == nines[at]:
                at += 1
                continue
            assert wire[at : at + workload.digits] == b"0" * workload.digits
            assert nines[at : at + workload.digits] == b"9" * workload.digits
            numbers.append(at)
            at += workload.digits
        return cls(wire, head + 2, tuple(numbers), workload.digits)

    def request(self, number: int, messageId: int) -> bytes:
        """
        @return: the request for entry C{number} (below 10 to the power of
            its digits), with C{messageId} (1..127).
        """
        wire = bytearray(self.wire)
        digits = f"{number:0{self.digits}d}".encode()
        for at in self.numbers:
            wire[at : at + len(digits)] = digits
        wire[self.messageId] = messageId
        return bytes(wire)


@dataclass(frozen=True)
class ClosedLoop:
    """
    A closed-loop workload: one request outstanding on each connection, each
    for a user drawn at random from all of them.

    @ivar build: makes the request naming a user (from its uid).
    @ivar digits: how many of the last digits of the user's number the
        request carries (a piece of it, for a search by part of a name: the
        users drawn from 10 to the power of that at most).
    """

    build: Callable[[str], object]
    digits: int = DIGITS


#: The closed-loop workloads.
CLOSED_LOOP: dict[str, ClosedLoop] = {
    "search": ClosedLoop(_searchUid),
    "bind": ClosedLoop(
        lambda u: pureldap.LDAPBindRequest(dn=f"uid={u},ou=people,{SUFFIX}", auth=f"pw-{u}")),
    "substring": ClosedLoop(lambda u: pureldap.LDAPSearchRequest(
        baseObject=SUFFIX,
        filter=pureldap.LDAPFilter_substrings(
            type="mail", substrings=[pureldap.LDAPFilter_substrings_initial(u + "@")]))),
    # (cn=*1234*), what address books and admin consoles send: four digits
    # anywhere in a user's cn ("User 1234"). At 10,000 entries, 9 in 10 match
    # one user and the others (0000-0999) none; at 100,000 each matches ~20.
    "any": ClosedLoop(lambda u: _searchCN(pureldap.LDAPFilter_substrings_any(u[-4:])), digits=4),
    # The same four digits as the other pieces a substring index serves:
    # (cn=User 1234*), (cn=*1234) and (cn=us*er*1234).
    "initial": ClosedLoop(lambda u: _searchCN(
        pureldap.LDAPFilter_substrings_initial("User " + u[-4:])), digits=4),
    "final": ClosedLoop(lambda u: _searchCN(pureldap.LDAPFilter_substrings_final(u[-4:])), digits=4),
    "pieces": ClosedLoop(lambda u: _searchCN(
        pureldap.LDAPFilter_substrings_initial("us"), pureldap.LDAPFilter_substrings_any("er"),
        pureldap.LDAPFilter_substrings_final(u[-4:])), digits=4),
}


def bindRequest(dn: str, password: str) -> str:
    """
    A Bind, with a message id the workloads do not use.
    """
    return _message(pureldap.LDAPBindRequest(dn=dn, auth=password), 0x7FFF)


def rootBind() -> str:
    """
    A Bind as the root DN.
    """
    return bindRequest(ROOT_DN, "secret")


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
        @param workers: its processes, where it has C{[server] workers}; its
            name ends in C{-wN} when there are several.
        """
        if workers > 1:
            self.name = f"{self.name}-w{workers}"
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
                if _answers(self.port, deadline - time.monotonic()):
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

    def seed(self) -> Path:
        """
        @return: the LDIF its database is seeded with.
        """
        return self.data

    def config(self) -> str:
        """
        @return: its configuration file's text.
        """
        return (
            f'[server]\nlisten = ["tcp:{self.port}:interface=127.0.0.1"]\nsize_limit = 0\n\n'
            f'[[database]]\nsuffix = "{SUFFIX}"\nbackend = "memory"\nroot_dn = "{ROOT_DN}"\n'
            f'root_password = "{_ssha(b"secret", b"saltsalt").decode()}"\nseed_ldif = "{self.seed()}"\n'
            f"indexes = {json.dumps(self.indexes)}\n"
        )

    def command(self) -> list[str]:
        config = self.work / f"{self.name}.toml"
        config.write_text(self.config())
        return [sys.executable, "-m", "twisted", "ldapd", "--config", str(config)]


@dataclass(frozen=True)
class Plugin:
    """
    A plugin as a deployment configures it, for the servers C{ldapd+LABEL}.

    @ivar name: the plugin's name.
    @ivar table: the keys of its C{[[plugin]]} table, as TOML lines.
    @ivar entries: LDIF of the entries it needs, added to the data.
    """

    name: str
    table: str = ""
    entries: str = ""


#: A default password policy with lockout and expiry, as most sites set one.
_PPOLICY = (
    f"dn: ou=policies,{SUFFIX}\nobjectClass: organizationalUnit\nou: policies\n\n"
    f"dn: cn=default,ou=policies,{SUFFIX}\nobjectClass: device\nobjectClass: pwdPolicy\n"
    "cn: default\npwdAttribute: userPassword\npwdMaxAge: 7776000\npwdExpireWarning: 604800\n"
    "pwdInHistory: 5\npwdCheckQuality: 1\npwdMinLength: 8\npwdMaxFailure: 5\n"
    "pwdLockout: TRUE\npwdLockoutDuration: 900\npwdFailureCountInterval: 900\n"
    "pwdGraceAuthNLimit: 3\npwdMustChange: TRUE\npwdAllowUserChange: TRUE\n\n")

def _rulesTable(rules: tuple[str, ...]) -> str:
    """
    @return: the acl plugin's C{rules} key for C{rules}, as TOML.
    """
    return "rules = [\n" + "".join(f"    '{rule}',\n" for rule in rules) + "]\n"


#: The group whose members manage the whole directory, in L{SITE_ACL}.
ADMINS = f"cn=admins,ou=groups,{SUFFIX}"

#: The service account that reads everything but passwords (what nslcd or
#: SSSD bind as), in L{SITE_ACL}; its password is C{reader-secret}.
READER = f"cn=reader,ou=services,{SUFFIX}"

#: The rules of a typical slapd deployment (slapd.access(5)): users read
#: their own entry and change their password; the admins group manages
#: everything; the service account reads everything but passwords;
#: anonymous clients bind, and search and read a few attributes (which
#: users read of each other too); nothing else.
SITE_ACL = (
    f'to attrs=userPassword by group="{ADMINS}" manage by self =wx by anonymous auth by * none',
    f'to * by group="{ADMINS}" manage by dn.exact="{READER}" read by self read by * break',
    f'to dn.subtree="{SUFFIX}" attrs=entry,objectClass,uid,cn,sn,givenName,mail by * read',
    "to * by * none",
)

#: The entries L{SITE_ACL} names: the admins group (its one member the
#: first user) and the service account.
_SITE_ACL_ENTRIES = (
    f"dn: {ADMINS}\nobjectClass: groupOfNames\ncn: admins\nmember: uid={uid(0)},ou=people,{SUFFIX}\n\n"
    f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n\n"
    f"dn: {READER}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
    f"cn: reader\nuserPassword: {_ssha(b'reader-secret', b'readsalt').decode()}\n\n")

#: The plugins measured one at a time on ldapd (memory), each as server
#: C{ldapd+LABEL}: what each costs a search and a bind beside C{ldapd}.
PLUGINS: dict[str, Plugin] = {
    # The rules of a directory that lets everyone read its people but not
    # their passwords, and its users their contact details; a group writes
    # them (slapd.access(5), as tests/test_acl_integration.py has them).
    "acl": Plugin("acl", _rulesTable((
        "to attrs=userPassword by self =wx by anonymous auth by * none",
        f'to dn.children="ou=people,{SUFFIX}" attrs=mail,telephoneNumber by self write '
        f'by group="cn=group00000,ou=groups,{SUFFIX}" write by users read by * none',
        f'to dn.subtree="ou=groups,{SUFFIX}" by users read by * none',
        "to * by self write by users read by anonymous read",
    ))),
    # A typical deployment's rules: SITE_ACL.
    "acl-site": Plugin("acl", _rulesTable(SITE_ACL), _SITE_ACL_ENTRIES),
    # Its default records pwdLastSuccess, a write at every successful bind.
    "ppolicy": Plugin(
        "ppolicy", f'default_policy = "cn=default,ou=policies,{SUFFIX}"\nuse_lockout = true\n',
        _PPOLICY),
    # Without that write (slapd's default: no lastbind).
    "ppolicy-nolastbind": Plugin(
        "ppolicy", f'default_policy = "cn=default,ou=policies,{SUFFIX}"\nuse_lockout = true\n'
        "last_bind = false\n", _PPOLICY),
    # pwdLastSuccess written at most once a minute for each account
    # (slapd's lastbind_precision): a user's binds within the minute after
    # its recorded one write nothing.
    "ppolicy-lastbind60": Plugin(
        "ppolicy", f'default_policy = "cn=default,ou=policies,{SUFFIX}"\nuse_lockout = true\n'
        "last_bind_precision = 60\n", _PPOLICY),
    # Every user is in one group of 50: each gets its group's DN.
    "memberof": Plugin("memberof"),
    "changelog": Plugin("changelog"),
    "monitor": Plugin("monitor"),
}


class LdapdPlugin(Ldapd):
    """
    ldapd (memory) with one plugin of L{PLUGINS} added.
    """

    #: Its key in L{PLUGINS}.
    plugin = ""

    def seed(self) -> Path:
        entries = PLUGINS[self.plugin].entries
        if not entries:
            return self.data
        seed = self.work / f"{self.name}.ldif"
        seed.write_text(self.data.read_text() + entries)
        return seed

    def config(self) -> str:
        plugin = PLUGINS[self.plugin]
        return super().config() + f'\n[[plugin]]\nname = "{plugin.name}"\n' + plugin.table


class LdapdNoLog(Ldapd):
    """
    ldapd (memory) whose access log lines are made but not written
    (C{twist --log-level warn}), beside slapd's figures, which are without
    its C{stats} log.
    """

    name = "ldapd-nolog"

    def command(self) -> list[str]:
        command = super().command()
        return command[:3] + ["--log-level", "warn"] + command[3:]


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


class Floor(Server):
    """
    The floor: a Twisted protocol that answers every request with a fixed
    result (benchmarks/_floor_server.py), what Twisted alone allows.
    """

    name = "floor"

    def command(self) -> list[str]:
        return [sys.executable, str(HERE / "_floor_server.py"), str(self.port)]


class Ds389(Server):
    """
    389 Directory Server (Debian's C{389-ds-base}): an instance made with
    C{dscreate from-file} under the work folder, with no systemd. lib389
    reads its paths from C{$PREFIX/share/dirsrv/inf/defaults.inf}, so a copy
    of Debian's with every C{/etc}, C{/run} and C{/var} path moved under the
    work folder puts the whole instance there; the data goes in with
    C{ns-slapd ldif2db} and the server runs in the foreground (C{-d 0}).

    Its access log is off, as slapd's C{stats} log is; the upgrade of
    password hashes on bind (C{nsslapd-enable-upgrade-hash}, on by default,
    rewrites an C{{SSHA}} password as PBKDF2 at its first bind, a write
    and ~40 ms of hashing at every later one) is off, so that binds check
    the same C{{SSHA}} values as the other servers. It has its default
    indexes (uid, cn, mail, ... equality; cn, mail, ... substring).
    """

    name = "389ds"
    instance = "bench"

    def prepare(self) -> None:
        prefix = self.work / "389"
        inf = prefix / "share/dirsrv/inf"
        inf.mkdir(parents=True, exist_ok=True)
        moved = []
        for line in DS389_DEFAULTS.read_text().splitlines():
            key, separator, value = line.partition(" = ")
            if value.startswith(("/etc", "/run", "/var", "/dev/shm", "/tmp")):
                value = f"{prefix}{value}"
            elif key in ("user", "group"):
                value = _userName() if key == "user" else _groupName()
            elif key == "with_systemd":
                value = "0"
            moved.append(f"{key} = {value}" if separator else line)
        (inf / "defaults.inf").write_text("\n".join(moved) + "\n")
        shutil.copytree("/etc/dirsrv", prefix / "etc/dirsrv", dirs_exist_ok=True)
        answers = prefix / "instance.inf"
        answers.write_text(
            "[general]\nfull_machine_name = localhost\nstart = False\n"
            f"[slapd]\ninstance_name = {self.instance}\nport = {self.port}\nsecure_port = 0\n"
            f"self_sign_cert = False\nroot_password = Secret-123\nuser = {_userName()}\n"
            f"group = {_groupName()}\n"
            f"[backend-userroot]\nsuffix = {SUFFIX}\ncreate_suffix_entry = False\n"
        )
        env = dict(os.environ, PREFIX=str(prefix))
        subprocess.run(["dscreate", "from-file", str(answers)], check=True, capture_output=True,
                       env=env)
        self.configDir = prefix / f"etc/dirsrv/slapd-{self.instance}"
        dse = self.configDir / "dse.ldif"
        dse.write_text(dse.read_text().replace(
            "dn: cn=config\n",
            "dn: cn=config\nnsslapd-accesslog-logging-enabled: off\n"
            "nsslapd-enable-upgrade-hash: off\n", 1))
        subprocess.run([str(NS_SLAPD), "ldif2db", "-D", str(self.configDir), "-n", "userroot",
                        "-i", str(self.data)], check=True, capture_output=True, env=env)
        self.pidFile = prefix / "run/dirsrv" / f"slapd-{self.instance}.pid"

    def command(self) -> list[str]:
        return [str(NS_SLAPD), "-D", str(self.configDir), "-i", str(self.pidFile), "-d", "0"]


def _userName() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _groupName() -> str:
    import grp

    return grp.getgrgid(os.getgid()).gr_name


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
        return f"sqlite:///{self.work}/{self.name}.db"

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

SERVERS: dict[str, type[Server]] = {
    "ldapd": Ldapd, "ldapd-nolog": LdapdNoLog, "ldapd-sqlite": LdapdSQLite,
    "ldapd-pg": LdapdPostgreSQL, "slapd": Slapd, "389ds": Ds389, "floor": Floor,
    "ldaptor": Ldaptor,
    **{f"ldapd+{plugin}": type(f"Ldapd_{plugin}", (LdapdPlugin,),
                               {"name": f"ldapd+{plugin}", "plugin": plugin})
       for plugin in PLUGINS},
}


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


def compileLoadGenerator(work: Path) -> Path | None:
    """
    Build benchmarks/_cloadgen.c, the closed-loop load generator in C.

    @return: the program, or C{None} without a C compiler.
    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    program = work / "cloadgen"
    subprocess.run([compiler, "-O2", "-o", str(program), str(HERE / "_cloadgen.c")], check=True)
    return program


def closedLoopRequests(workload: str, size: int, seed: int) -> list[str]:
    """
    The requests of the Python load generator's closed loop (a cross-check
    of the C one): one for every entry, in a random order, line N with
    message id N.
    """
    import random

    numbers = list(range(size))
    random.Random(seed).shuffle(numbers)
    return [_message(CLOSED_LOOP[workload].build(uid(n)), i + 1) for i, n in enumerate(numbers)]


def driveClosedLoop(server: Server, template: Template, size: int, seconds: float,
                    connections: int, program: Path | None, cores: str = "1",
                    seed: int = 1, requestsFile: Path | None = None) -> dict[str, float]:
    """
    Run a closed-loop load against a server: C{connections} connections each
    with one request outstanding, each request for an entry drawn at random
    from all C{size}, from the C load generator C{program} (or, without it,
    from the Python one, window 1, over C{requestsFile}).

    @return: as L{drive}.
    """
    pin = ["taskset", "-c", cores] if shutil.which("taskset") else []
    if program is not None:
        command = pin + [str(program), str(server.port), str(seconds), str(connections),
                         str(min(size, 10**template.digits)), str(seed), template.wire.hex(),
                         str(template.digits),
                         str(template.messageId)] + [str(n) for n in template.numbers]
    else:
        assert requestsFile is not None
        command = pin + [sys.executable, str(HERE / "_loadgen.py"), str(server.port),
                         str(requestsFile), "--seconds", str(seconds), "--window", "1",
                         "--connections", str(connections)]
    before = server.cpuSeconds()
    process = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if process.returncode:
        raise RuntimeError(f"the load generator failed against {server.name}")
    cpu = server.cpuSeconds() - before
    out = json.loads(process.stdout)
    return {
        "operations": out["operations"],
        "errors": out["errors"],
        "seconds": out["seconds"],
        "ops_per_s": out["operations"] / out["seconds"],
        "p50_us": out["p50_us"],
        "p99_us": out["p99_us"],
        "client_cpu_s": out["client_cpu_s"],
        "server_cpu_us": cpu / max(1, out["operations"]) * 1e6,
        "rss_mib": server.rssMiB(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("closed", "pipelined"), default="closed",
                        help="closed: one request outstanding per connection, over all entries "
                             "(the headline); pipelined: a window of requests per connection "
                             "cycling through 512 of them")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000])
    parser.add_argument("--servers", nargs="+", choices=list(SERVERS),
                        help="default: ldapd ldapd-nolog slapd 389ds floor (closed); "
                             "ldapd ldapd-sqlite ldapd-pg slapd ldaptor (pipelined)")
    parser.add_argument("--workloads", nargs="+",
                        choices=[*WORKLOADS, *(w for w in CLOSED_LOOP if w not in WORKLOADS)],
                        help="default: search bind (closed); all (pipelined)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int,
                        help="default: 8 (closed), 4 (pipelined)")
    parser.add_argument("--clients", type=int, default=2,
                        help="pipelined: load generator processes (all on core 1), sharing the "
                             "connections")
    parser.add_argument("--client", choices=("c", "python"), default="c",
                        help="closed: the load generator, benchmarks/_cloadgen.c (built with cc) "
                             "or benchmarks/_loadgen.py with a window of 1, as a cross-check")
    parser.add_argument("--indexes", nargs="+", default=list(DEFAULT_INDEXES),
                        help="the indexes of ldapd's memory backend and of slapd")
    parser.add_argument("--large", action="store_true",
                        help=f"also {LARGE:,} entries, for the sql backends and slapd")
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="[server] workers of the sql servers; with several numbers, each "
                             "sql server runs once with each (named NAME-wN for N > 1)")
    parser.add_argument("--entry-cache", type=int,
                        help="entry_cache of the sql servers (0: every read decodes its rows)")
    parser.add_argument("--cpu-affinity", action="store_true",
                        help="[server] cpu_affinity for the sql servers: each process (each "
                             "worker) on one of the server cores")
    parser.add_argument("--server-cores", default="0", help="the servers' cores (taskset -c)")
    parser.add_argument("--client-cores", default="1", help="the load generator's cores")
    args = parser.parse_args(argv)
    closed = args.mode == "closed"
    if args.servers is None:
        args.servers = (["ldapd", "ldapd-nolog", "slapd", "389ds", "floor"] if closed
                        else ["ldapd", "ldapd-sqlite", "ldapd-pg", "slapd", "ldaptor"])
    if args.workloads is None:
        args.workloads = ["search", "bind"] if closed else list(WORKLOADS)
    if closed and not set(args.workloads) <= set(CLOSED_LOOP):
        parser.error(f"the closed loop has the workloads {', '.join(CLOSED_LOOP)}")
    if not closed and not set(args.workloads) <= set(WORKLOADS):
        parser.error(f"the pipelined load has the workloads {', '.join(WORKLOADS)}")
    if args.connections is None:
        args.connections = 8 if closed else 4
    if args.large and LARGE not in args.sizes:
        args.sizes.append(LARGE)
    names = list(args.servers)
    installed = {"slapd": SLAPD.exists() and SLAPADD.exists(),
                 "389ds": NS_SLAPD.exists() and DS389_DEFAULTS.exists() and bool(shutil.which("dscreate"))}
    for name, package in (("slapd", "slapd"), ("389ds", "389-ds-base")):
        if name in names and not installed[name]:
            names.remove(name)
            print(f"note: {name} is not installed (Debian package {package}); left out")
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
            program = compileLoadGenerator(work) if closed and args.client == "c" else None
            if closed and program is None:
                print("note: closed loop from the Python load generator"
                      + (" (no C compiler found)" if args.client == "c" else ""))
            present = [n for n in names if size < LARGE or n in LARGE_SERVERS]
            servers = [SERVERS[n](data, work, args.indexes, args.server_cores, workers)
                       for n in present for workers in (args.workers if n in SQL_SERVERS else [1])]
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
                    if closed:
                        template = Template.of(CLOSED_LOOP[workload])
                        if program is None:
                            requestsFile.write_text("\n".join(closedLoopRequests(workload, size, 1)))
                    else:
                        requestsFile.write_text("\n".join(WORKLOADS[workload].requests(size)))
                    for round in range(args.rounds):
                        for server in servers:
                            seconds = args.seconds if server.name != "ldaptor" else min(args.seconds, 3)
                            if closed:
                                result = driveClosedLoop(server, template, size, seconds,
                                                         args.connections, program,
                                                         args.client_cores, round + 1,
                                                         requestsFile)
                            else:
                                result = drive(server, requestsFile, seconds, args.connections,
                                               WORKLOADS[workload], args.clients,
                                               args.client_cores)
                            results.setdefault((workload, server.name), []).append(result)
            finally:
                for server in servers:
                    server.stop()
            report(size, args, [server.name for server in servers], results)


def report(size: int, args: argparse.Namespace, names: list[str],
           results: dict[tuple[str, str], list[dict[str, float]]]) -> None:
    if args.mode == "closed":
        print(f"\n{size} entries, CLOSED LOOP (one request outstanding per connection, each for an "
              f"entry drawn at random from all {size}), {args.connections} connections, "
              f"{'C' if args.client == 'c' else 'Python'} load generator; median of {args.rounds} "
              f"rounds; indexes {'; '.join(args.indexes)}")
    else:
        print(f"\n{size} entries, PIPELINED (a window of requests per connection over 512 distinct "
              f"requests), median of {args.rounds} rounds, {args.connections} connections "
              f"from {args.clients} load generator processes; indexes {'; '.join(args.indexes)}")
    print(f"{'workload':<9} {'server':<24} {'ops/s':>9} {'p50 µs':>9} {'p99 µs':>9} "
          f"{'srv CPU µs/op':>14} {'RSS MiB':>8} {'client CPU %':>12} {'errors':>7}")
    medians: dict[tuple[str, str], dict[str, float]] = {}
    for (workload, name), rounds in results.items():
        m = {k: statistics.median(r[k] for r in rounds)
             for k in ("ops_per_s", "p50_us", "p99_us", "server_cpu_us", "rss_mib")}
        m["client_cpu"] = statistics.median(r["client_cpu_s"] / r["seconds"] * 100 for r in rounds)
        m["errors"] = sum(r["errors"] for r in rounds)
        medians[(workload, name)] = m
        print(f"{workload:<9} {name:<24} {m['ops_per_s']:>9.0f} {m['p50_us']:>9.0f} "
              f"{m['p99_us']:>9.0f} {m['server_cpu_us']:>14.1f} {m['rss_mib']:>8.0f} "
              f"{m['client_cpu']:>11.0f}% {m['errors']:>7.0f}")
    for workload in args.workloads:
        for name in names:
            mine = medians.get((workload, name))
            if not name.startswith("ldapd") or mine is None:
                continue
            for other in ("slapd", "389ds", "floor", "ldaptor"):
                theirs = medians.get((workload, other))
                if theirs:
                    cpu = mine["server_cpu_us"] / theirs["server_cpu_us"]
                    print(f"{workload}: {name}/{other} throughput "
                          f"{mine['ops_per_s'] / theirs['ops_per_s']:.3f}, "
                          f"CPU per operation {cpu:.3g}x")
            base = medians.get((workload, _baseline(name)))
            if base:
                print(f"{workload}: {name}/{_baseline(name)} throughput "
                      f"{mine['ops_per_s'] / base['ops_per_s']:.3f}, CPU per operation "
                      f"{mine['server_cpu_us'] - base['server_cpu_us']:+.1f} µs")


def _baseline(name: str) -> str:
    """
    @return: the server a variant is measured against: C{ldapd} for
        C{ldapd+PLUGIN}, C{NAME} (one worker) for C{NAME-wN}; else C{""}.
    """
    if "+" in name:
        return name.partition("+")[0]
    head, separator, workers = name.rpartition("-w")
    return head if separator and workers.isdigit() else ""


if __name__ == "__main__":
    main()
