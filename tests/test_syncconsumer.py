"""
The syncrepl consumer (C{[[replica]]}) against real providers: the real
C{twist ldapd} replicating from a private OpenLDAP slapd with the syncprov
overlay, in both modes, through adds, modifies, deletes, renames with
newSuperior, a burst of 1,000 changes and kill -9 of either side; after
each step both directories are compared entry by entry (every user
attribute and entryUUID). Clients' writes to the replica get a referral to
the provider, or are chained to it. Configuration errors are one line each.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import ldap
from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer, protocol, task
from twisted.internet.task import Clock
from twisted.trial import unittest

from ldapd._codec import (
    Control,
    encodeIntermediateResponse,
    encodeMessage,
    encodeResult,
    encodeSearchEntry,
)
from ldapd._framing import Framer
from ldapd.backends._proxypool import UpstreamPool, parseUpstream
from ldapd.backends.memory import MemoryBackend
from ldapd.backends.sql import SQLBackend
from ldapd.changes import ADD as ADD_CHANGE
from ldapd.config import loadConfig
from ldapd.csn import csnTime
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.filters import compileFilter
from ldapd.metrics import MetricsCollector
from ldapd.operation import Connection, Identity, Scope, SearchParameters
from ldapd.registry import ConfigError
from ldapd.requests import BindRequest, SearchRequest
from ldapd.results import NoSuchObject
from ldapd.schema import Schema
from ldapd.syncrepl.codec import (
    ADD,
    MODIFY,
    NEW_COOKIE,
    PRESENT,
    REFRESH_AND_PERSIST,
    REFRESH_DELETE,
    REFRESH_ONLY,
    SYNC_DONE,
    SYNC_ID_SET,
    SYNC_INFO,
    SYNC_REQUEST,
    SYNC_STATE,
    SyncDone,
    SyncInfo,
    SyncState,
    decodeSyncRequest,
    uuidFromBytes,
    uuidToBytes,
)
from ldapd.syncrepl.consumer import ReplicaSettings, SyncReplConsumer
from ldapd.testing import (
    EXAMPLE_LDIF,
    SLAPD,
    SOURCE_ROOT,
    ServerProcess,
    SlapdProcess,
    executeRequest,
    parseFilter,
)

BASE = "dc=example,dc=com"
ROOT_DN = "cn=admin,dc=example,dc=com"
PASSWORD = "secret"

#: The provider's database directives: what slapd's syncprov needs.
SYNCPROV = (
    "index objectClass,entryCSN,entryUUID eq\n"
    "overlay syncprov\n"
    "syncprov-checkpoint 100 1\n"
    "syncprov-sessionlog 5000\n"
)

#: How long a consumer may take to converge in a test (a bound, not a target).
CONVERGE_SECONDS = 60


def exampleLDIF() -> Path:
    """
    @return: the example organisation as slapadd reads it (no C{version:}
        line, no comments).
    """
    path = Path(tempfile.mkdtemp(prefix="ldapd-syncrepl-")) / "example.ldif"
    lines = EXAMPLE_LDIF.read_text().splitlines()
    path.write_text("\n".join(line for line in lines if not line.startswith(("#", "version:"))).strip()
                    + "\n")
    return path


def slapdProvider() -> SlapdProcess:
    """
    @return: a started slapd holding the example organisation, with syncprov.
    """
    if not SLAPD.is_file():
        raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
    if not Path("/usr/lib/ldap/syncprov.la").is_file():
        raise unittest.SkipTest("slapd's syncprov module is not installed")
    slapd = SlapdProcess(BASE, ROOT_DN, PASSWORD, modules=["syncprov"], databaseConfig=SYNCPROV)
    slapd.load(exampleLDIF())
    slapd.start()
    return slapd


def consumerServer(provider: str, folder: Path, mode: str = "refreshAndPersist",
                   backend: str = "sql", extra: str = "",
                   indexes: Sequence[str] | None = None) -> ServerProcess:
    """
    @param provider: the provider's URL.
    @param folder: where the configuration (and the SQLite file) go.
    @param mode: the replica's mode; refreshOnly polls every half second.
    @param backend: C{"sql"} (SQLite) or C{"memory"}.
    @param extra: more keys of the C{[[replica]]} table.
    @param indexes: the sql backend's C{indexes}; its default if C{None}.
    @return: an ldapd consumer, not started.
    """
    database = f'url = "sqlite:///{folder / "replica.db"}"\n' if backend == "sql" else ""
    if indexes is not None:
        database += f"indexes = {json.dumps(list(indexes))}\n"
    interval = 'interval = "0.5s"\n' if mode == "refreshOnly" else ""
    return ServerProcess(f"""
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]

[[database]]
suffix = "{BASE}"
backend = "{backend}"
{database}root_dn = "{ROOT_DN}"
root_password = "{PASSWORD}"

[[replica]]
suffix = "{BASE}"
provider = "{provider}"
bind_dn = "{ROOT_DN}"
bind_password = "{PASSWORD}"
mode = "{mode}"
{interval}retry = "0.5s"
{extra}""", folder)


def snapshot(url: str) -> dict[str, dict[str, list[bytes]]]:
    """
    @return: every entry under the suffix, read as the root DN: its DN
        (lower case) to its user attributes and entryUUID (names in lower
        case, values sorted).
    """
    connection = ldap.initialize(url)
    try:
        connection.simple_bind_s(ROOT_DN, PASSWORD)
        results = connection.search_s(BASE, ldap.SCOPE_SUBTREE, "(objectClass=*)",
                                      ["*", "entryUUID"])
    finally:
        connection.unbind_s()
    return {
        dn.lower().replace(", ", ","): {name.lower(): sorted(values)
                                        for name, values in attributes.items()}
        for dn, attributes in results
    }


def ldapmodify(url: str, ldif: str) -> subprocess.CompletedProcess[str]:
    """
    Make changes with OpenLDAP's ldapmodify, as the root DN.

    @return: the finished process.
    """
    return subprocess.run(
        ["ldapmodify", "-x", "-H", url, "-D", ROOT_DN, "-w", PASSWORD],
        input=ldif, capture_output=True, text=True, check=False, timeout=120,
    )


def person(uid: str, parent: str = f"ou=people,{BASE}", **extra: str) -> str:
    """
    @return: the LDIF add record of an inetOrgPerson.
    """
    lines = [f"dn: uid={uid},{parent}", "changetype: add", "objectClass: inetOrgPerson",
             f"uid: {uid}", f"cn: {uid.title()} Test", "sn: Test"]
    lines += [f"{name}: {value}" for name, value in extra.items()]
    return "\n".join(lines) + "\n\n"


class ConsumerTestsMixin:
    """
    A slapd provider and an ldapd consumer for a test class, and the
    comparison of their contents.

    @cvar mode: the replica's mode.
    @cvar backend: the consumer's backend.
    @cvar extra: more keys of the C{[[replica]]} table.
    """

    mode = "refreshAndPersist"
    backend = "sql"
    extra = ""
    provider: SlapdProcess | ServerProcess
    consumer: ServerProcess
    folder: Path

    @classmethod
    def startProvider(cls) -> SlapdProcess | ServerProcess:
        """
        @return: the started provider: slapd with syncprov.
        """
        return slapdProvider()

    @classmethod
    def setUpClass(cls) -> None:
        cls.provider = cls.startProvider()
        cls.folder = Path(tempfile.mkdtemp(prefix="ldapd-replica-"))
        try:
            cls.consumer = consumerServer(cls.provider.url, cls.folder, cls.mode, cls.backend,
                                          cls.extra)
            cls.consumer.start()
        except BaseException:
            cls.provider.stop()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.consumer.stop()
        cls.provider.stop()
        shutil.rmtree(cls.folder, ignore_errors=True)

    def setUp(self) -> None:
        # trial does not call setUpClass (pytest does).
        cls = type(self)
        if "provider" not in cls.__dict__:
            cls.setUpClass()
            atexit.register(cls.tearDownClass)
        super().setUp()  # type: ignore[misc]

    def write(self, ldif: str) -> None:
        """
        Make changes on the provider.
        """
        done = ldapmodify(self.provider.url, ldif)
        self.assertEqual(done.returncode, 0, done.stderr)  # type: ignore[attr-defined]

    def assertConverged(self, least: int = 20) -> dict[str, Any]:
        """
        Wait (a bounded time) until the consumer holds exactly what the
        provider holds.

        @param least: the fewest entries the provider must hold.
        @return: the common content.
        """
        deadline = time.monotonic() + CONVERGE_SECONDS
        while True:
            expected = snapshot(self.provider.url)
            try:
                got = snapshot(self.consumer.url)
            except ldap.LDAPError:
                got = {}
            if got == expected:
                break
            if time.monotonic() > deadline:
                missing = sorted(set(expected) - set(got))[:5]
                extra = sorted(set(got) - set(expected))[:5]
                differ = [dn for dn in set(expected) & set(got) if expected[dn] != got[dn]][:3]
                self.fail(  # type: ignore[attr-defined]
                    f"not converged: missing {missing}, extra {extra}, differing "
                    f"{[(dn, expected[dn], got[dn]) for dn in differ]}\n"
                    f"{self.consumer.log()[-3000:]}")
            time.sleep(0.2)
        self.assertGreaterEqual(len(expected), least)  # type: ignore[attr-defined]
        for dn, attributes in expected.items():
            self.assertIn("entryuuid", attributes, dn)  # type: ignore[attr-defined]
        return expected


class ChangeTestsMixin(ConsumerTestsMixin):
    """
    The changes every mode must replicate.
    """

    def test_initialRefresh(self) -> None:
        """
        The consumer starts empty and copies the provider's entries, with
        their entryUUIDs.
        """
        self.assertConverged()

    def test_addModifyDelete(self) -> None:
        """
        Added entries appear, modified ones change (values added, replaced
        and removed), deleted ones go.
        """
        self.write(f"dn: ou=sync-amd,{BASE}\nchangetype: add\nobjectClass: organizationalUnit\n"
                   "ou: sync-amd\n\n"
                   + person("amd1", f"ou=sync-amd,{BASE}", mail="amd1@example.com")
                   + person("amd2", f"ou=sync-amd,{BASE}")
                   + person("amd3", f"ou=sync-amd,{BASE}"))
        content = self.assertConverged()
        self.assertIn(f"uid=amd1,ou=sync-amd,{BASE}", content)
        self.write(f"dn: uid=amd1,ou=sync-amd,{BASE}\nchangetype: modify\nreplace: sn\nsn: Changed\n"
                   "-\nadd: description\ndescription: one\ndescription: two\n-\ndelete: mail\n-\n\n"
                   f"dn: uid=amd2,ou=sync-amd,{BASE}\nchangetype: delete\n\n")
        content = self.assertConverged()
        self.assertEqual(content[f"uid=amd1,ou=sync-amd,{BASE}"]["sn"], [b"Changed"])
        self.assertNotIn(f"uid=amd2,ou=sync-amd,{BASE}", content)

    def test_renameNewSuperior(self) -> None:
        """
        A rename (new RDN, old value deleted) and a move of a subtree to a
        new superior keep the entries' entryUUIDs.
        """
        self.write(f"dn: ou=sync-from,{BASE}\nchangetype: add\nobjectClass: organizationalUnit\n"
                   f"ou: sync-from\n\ndn: ou=sync-to,{BASE}\nchangetype: add\n"
                   "objectClass: organizationalUnit\nou: sync-to\n\n"
                   + person("mover", f"ou=sync-from,{BASE}")
                   + person("renamed", f"ou=sync-from,{BASE}"))
        before = self.assertConverged()
        self.write(f"dn: uid=renamed,ou=sync-from,{BASE}\nchangetype: modrdn\nnewrdn: uid=newname\n"
                   "deleteoldrdn: 1\n\n"
                   f"dn: ou=sync-from,{BASE}\nchangetype: modrdn\nnewrdn: ou=sync-moved\n"
                   f"deleteoldrdn: 1\nnewsuperior: ou=sync-to,{BASE}\n\n")
        after = self.assertConverged()
        self.assertEqual(after[f"uid=mover,ou=sync-moved,ou=sync-to,{BASE}"]["entryuuid"],
                         before[f"uid=mover,ou=sync-from,{BASE}"]["entryuuid"])
        self.assertIn(f"uid=newname,ou=sync-moved,ou=sync-to,{BASE}", after)

    def test_referral(self) -> None:
        """
        A client's write to the replica gets a referral to the provider
        (resultCode 10), as from slapd's updateref: ldapmodify shows it,
        python-ldap raises REFERRAL; nothing changes.
        """
        done = ldapmodify(self.consumer.url, f"dn: uid=alice,ou=people,{BASE}\nchangetype: modify\n"
                                             "replace: sn\nsn: Local\n")
        self.assertEqual(done.returncode, 10, done.stdout + done.stderr)
        self.assertIn(f"{self.provider.url}/uid=alice,ou=people,{BASE}", done.stderr)
        connection = ldap.initialize(self.consumer.url)
        connection.set_option(ldap.OPT_REFERRALS, 0)
        connection.simple_bind_s(ROOT_DN, PASSWORD)
        self.assertRaises(ldap.REFERRAL, connection.delete_s, f"uid=bob,ou=people,{BASE}")
        connection.unbind_s()
        self.assertConverged()


class ResilienceTestsMixin(ConsumerTestsMixin):
    """
    A burst of changes, and either side killed.
    """

    def test_burst(self) -> None:
        """
        A burst of 1,000 changes (500 adds, then 500 modifies) made in one
        ldapmodify arrives complete.
        """
        parent = f"ou=sync-burst,{BASE}"
        ldif = f"dn: {parent}\nchangetype: add\nobjectClass: organizationalUnit\nou: sync-burst\n\n"
        ldif += "".join(person(f"burst{i}", parent) for i in range(500))
        ldif += "".join(f"dn: uid=burst{i},{parent}\nchangetype: modify\nreplace: sn\nsn: B{i}\n\n"
                        for i in range(499))
        self.write(ldif)
        content = self.assertConverged(520)
        self.assertEqual(content[f"uid=burst7,{parent}"]["sn"], [b"B7"])

    def test_providerKilled(self) -> None:
        """
        When the provider is killed (-9), the consumer logs the failure and
        retries until it is back, then catches up with what changed.
        """
        self.assertConverged()
        self.provider.process.kill()  # type: ignore[union-attr]
        self.provider.process.wait()  # type: ignore[union-attr]
        deadline = time.monotonic() + CONVERGE_SECONDS
        while "retrying in" not in self.consumer.log():
            self.assertLess(time.monotonic(), deadline, self.consumer.log()[-2000:])
            time.sleep(0.2)
        self.provider.start()
        self.write(person("afterkill") + f"dn: uid=carol,ou=people,{BASE}\nchangetype: modify\n"
                   "replace: title\ntitle: Survivor\n\n")
        content = self.assertConverged()
        self.assertEqual(content[f"uid=carol,ou=people,{BASE}"]["title"], [b"Survivor"])

    def test_consumerKilled(self) -> None:
        """
        A consumer killed (-9) resumes from the cookie it kept on its SQLite
        database: it asks with that cookie and applies only what changed
        while it was down, not the whole directory again.
        """
        self.write(person("beforekill"))
        self.assertConverged()
        self.consumer.process.kill()  # type: ignore[union-attr]
        self.consumer.process.wait()  # type: ignore[union-attr]
        self.write(person("whiledown1") + person("whiledown2")
                   + f"dn: uid=beforekill,ou=people,{BASE}\nchangetype: delete\n\n")
        self.consumer.start()
        self.assertConverged()
        log = self.consumer.log()
        self.assertRegex(log, r"refreshAndPersist from \S+, cookie rid=001,csn=")
        applied = [int(n) for n in re.findall(r"refresh done.*: (\d+) changes applied", log)]
        deleted = [int(n) for n in re.findall(r"(\d+) entries deleted", log)]
        self.assertTrue(applied, log)
        # The three changes made while it was down, and at most the last
        # one it had already applied (slapd resends the change its cookie
        # names): not the twenty or more entries of the directory.
        self.assertLessEqual(applied[0] + deleted[0], 4, log)


class PersistTests(ChangeTestsMixin, ResilienceTestsMixin, unittest.SynchronousTestCase):
    """
    refreshAndPersist into SQLite, from slapd.
    """


class LdapdProviderTests(ChangeTestsMixin, ResilienceTestsMixin, unittest.SynchronousTestCase):
    """
    refreshAndPersist into SQLite, from an ldapd provider (the changelog
    plugin on SQLite).
    """

    @classmethod
    def startProvider(cls) -> ServerProcess:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-provider-"))
        provider = ServerProcess(f"""
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]

[[database]]
suffix = "{BASE}"
backend = "sql"
url = "sqlite:///{folder / "provider.db"}"
root_dn = "{ROOT_DN}"
root_password = "{PASSWORD}"
seed_ldif = "{{example_ldif}}"

[[plugin]]
name = "changelog"
""", folder)
        provider.start()
        return provider


class LdapdProviderRefreshOnlyTests(ChangeTestsMixin, unittest.SynchronousTestCase):
    """
    refreshOnly into the memory backend, from an ldapd provider.
    """

    mode = "refreshOnly"
    backend = "memory"
    startProvider = LdapdProviderTests.startProvider


class RefreshOnlyTests(ChangeTestsMixin, unittest.SynchronousTestCase):
    """
    refreshOnly every half second into the memory backend, from slapd.
    """

    mode = "refreshOnly"
    backend = "memory"


class ChainTests(ConsumerTestsMixin, unittest.SynchronousTestCase):
    """
    C{chain_writes = true}: clients' writes to the replica are made on the
    provider, after the local access rules allowed them, and come back by
    replication.
    """

    extra = "chain_writes = true\n"

    def test_chained(self) -> None:
        """
        Writes the replica's root DN makes (modify, add, rename, delete) go
        to the provider, are answered with its result and replicated back.
        """
        self.assertConverged()
        done = ldapmodify(self.consumer.url, f"dn: uid=dave,ou=people,{BASE}\nchangetype: modify\n"
                                             "replace: title\ntitle: Chained\n\n"
                          + person("chained") + person("doomed"))
        self.assertEqual(done.returncode, 0, done.stderr)
        # Reads are local: a write that needs an earlier one (a rename
        # reads its entry) waits until that has come back.
        self.assertConverged()
        done = ldapmodify(self.consumer.url, f"dn: uid=chained,ou=people,{BASE}\n"
                                             "changetype: modrdn\nnewrdn: uid=chained2\n"
                                             f"deleteoldrdn: 1\n\ndn: uid=doomed,ou=people,{BASE}\n"
                                             "changetype: delete\n\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        provider = snapshot(self.provider.url)
        self.assertEqual(provider[f"uid=dave,ou=people,{BASE}"]["title"], [b"Chained"])
        self.assertIn(f"uid=chained2,ou=people,{BASE}", provider)
        self.assertNotIn(f"uid=doomed,ou=people,{BASE}", provider)
        self.assertConverged()

    def test_providerError(self) -> None:
        """
        The provider's error comes back to the client as it was.
        """
        done = ldapmodify(self.consumer.url, person("alice"))
        self.assertEqual(done.returncode, 68, done.stderr)

    def test_anonymousRefused(self) -> None:
        """
        An anonymous write is refused locally, before anything is forwarded.
        """
        connection = ldap.initialize(self.consumer.url)
        self.assertRaises(ldap.STRONG_AUTH_REQUIRED, connection.delete_s,
                          f"uid=bob,ou=people,{BASE}")
        self.assertIn(f"uid=bob,ou=people,{BASE}", snapshot(self.provider.url))


class CascadeTests(ConsumerTestsMixin, unittest.SynchronousTestCase):
    """
    A replica with the changelog plugin is a provider in turn: replicated
    writes are recorded in its changelog, so a second ldapd consumer of it
    follows the slapd at the top.
    """

    extra = '\n[[plugin]]\nname = "changelog"\n'

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        try:
            (cls.folder / "second").mkdir()
            cls.second = consumerServer(cls.consumer.url, cls.folder / "second", backend="memory")
            cls.second.start()
        except BaseException:
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.second.stop()
        super().tearDownClass()

    def test_cascade(self) -> None:
        """
        Adds, modifies, renames and deletes on slapd reach the second
        consumer, entryUUIDs included.
        """
        self.write(person("cascade1") + person("cascade2")
                   + f"dn: uid=cascade1,ou=people,{BASE}\nchangetype: modrdn\n"
                   "newrdn: uid=cascaded\ndeleteoldrdn: 1\n\n"
                   f"dn: uid=cascade2,ou=people,{BASE}\nchangetype: delete\n\n"
                   f"dn: uid=eve,ou=people,{BASE}\nchangetype: modify\nreplace: title\n"
                   "title: Cascaded\n\n")
        self.assertConverged()
        self.consumer = self.second
        content = self.assertConverged()
        self.assertIn(f"uid=cascaded,ou=people,{BASE}", content)


class ReplicaDirectoryTests(unittest.SynchronousTestCase):
    """
    What a replica database changes in the Directory, in this process: the
    referral, and replicated writes.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.schema = Schema.standard()
        suffix = DN.parse(BASE)
        self.ndn = self.schema.normalizeDN(suffix)
        self.backend = MemoryBackend(self.ndn, self.schema, reactor)
        self.directory = Directory([Database(suffix, self.backend)], schema=self.schema,
                                   reactor=reactor)
        provider = parseUpstream("ldap://provider.example.com:1389")
        consumer = SyncReplConsumer(self.directory, ReplicaSettings(suffix, provider),
                                    UpstreamPool([provider], reactor), reactor)
        self.directory.databases[0].replica = consumer
        self.successResultOf(self.directory.open())
        op = self.directory.internalOperation()
        self.successResultOf(defer.Deferred.fromCoroutine(self.directory.add(op, Entry(
            suffix, [("objectClass", [b"organization", b"dcObject"]), ("o", [b"E"]),
                     ("dc", [b"example"])], self.schema))))

    def request(self, request: Any, identity: Identity) -> Any:
        connection = Connection("127.0.0.1:1", Clock())
        connection.identity = identity
        responses, done = executeRequest(self.directory, connection, request, 1)
        self.successResultOf(done)
        return responses[-1].value

    def test_referral(self) -> None:
        """
        An authenticated client's write gets referral (10); an anonymous one
        strongAuthRequired, as slapd answers; the server's own writes
        (above, the suffix) are local.
        """
        root = Identity(DN.parse(ROOT_DN), self.schema.normalizeDN(DN.parse(ROOT_DN)), True)
        response = self.request(pureldap.LDAPDelRequest(entry=BASE), root)
        # (The URI on the wire: PersistTests.test_referral.)
        self.assertEqual(response.resultCode, 10)
        response = self.request(pureldap.LDAPDelRequest(entry=BASE), Identity())
        self.assertEqual(response.resultCode, 8)

    def test_writeReplicated(self) -> None:
        """
        A replicated write keeps the provider's operational attributes as
        they are, runs the transaction hooks and is announced to subscribers.
        """
        changes: list[Any] = []
        self.directory.subscribe(changes.append)
        operational = [("entryUUID", [b"11111111-2222-4333-8444-555555555555"]),
                       ("entryCSN", [b"20200101000000.000000Z#000000#001#000000"]),
                       ("creatorsName", [b"cn=someone,dc=provider"]),
                       ("createTimestamp", [b"20200101000000Z"])]
        entry = Entry(DN.parse(f"ou=copied,{BASE}"),
                      [("objectClass", [b"organizationalUnit"]), ("ou", [b"copied"])]
                      + operational, self.schema)
        op = self.directory.internalOperation()
        self.successResultOf(defer.Deferred.fromCoroutine(self.directory.writeReplicated(
            op, ADD_CHANGE, entry.ndn, lambda backend, hooks: backend.add(op, entry, hooks))))
        stored = self.successResultOf(self.backend.get(op, entry.ndn))
        for name, values in operational:
            self.assertEqual(list(stored.get(name)), values)
        self.assertEqual([(c.kind, c.new.ndn) for c in changes], [(ADD_CHANGE, entry.ndn)])


def loadReplicaConfig(case: unittest.SynchronousTestCase, database: str, rest: str) -> Any:
    """
    Load a configuration of one database of the example suffix, in a
    folder removed when the test ends.

    @param database: the keys of its C{[[database]]} table but C{suffix}.
    @param rest: the tables that follow it.
    @return: the loaded configuration.
    """
    folder = Path(tempfile.mkdtemp(prefix="ldapd-replica-config-"))
    case.addCleanup(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "ldapd.toml"
    path.write_text(f'[server]\nlisten = ["tcp:0"]\n\n[[database]]\nsuffix = "{BASE}"\n'
                    f"{database}\n{rest}")
    return loadConfig(path)


class ConfigTests(unittest.SynchronousTestCase):
    """
    A wrong C{[[replica]]} table stops start-up with one line naming the
    file, the key and the problem.
    """

    def load(self, replica: str, database: str = 'backend = "memory"\n') -> Any:
        return loadReplicaConfig(self, database, f"[[replica]]\n{replica}")

    def assertProblem(self, replica: str, key: str, problem: str,
                      database: str = 'backend = "memory"\n') -> None:
        with self.assertRaises(ConfigError) as caught:
            self.load(replica, database)
        message = str(caught.exception)
        self.assertIn(f"ldapd.toml: replica[0].{key}: ", message)
        self.assertIn(problem, message)
        self.assertNotIn("\n", message)

    def test_valid(self) -> None:
        """
        A valid table makes its database a replica with the settings given,
        and the defaults a slapd admin expects (rid, C{*,+}, subtree).
        """
        config = self.load(f'suffix = "{BASE}"\nprovider = "ldap://provider.example.com"\n'
                           f'bind_dn = "{ROOT_DN}"\nbind_password = "x"\nmode = "refreshOnly"\n'
                           'interval = "2s"\nretry = "5s"\n')
        (consumer,) = config.replicas
        settings = consumer.settings
        self.assertEqual((settings.provider.host, settings.provider.port), ("provider.example.com", 389))
        self.assertEqual((settings.interval, settings.retry, settings.rid), (2.0, 5.0, 1))
        self.assertEqual(settings.attributes, ("*", "+"))
        self.assertIs(config.directory.databases[0].replica, consumer)
        self.assertIsNone(consumer.chain)
        referral = consumer.referral(config.directory.schema.normalizeDN(DN.parse(f"cn=a b,{BASE}")))
        self.assertEqual(referral.uris, (f"ldap://provider.example.com/cn=a%20b,{BASE}",))

    def test_example(self) -> None:
        """
        The example configuration, C{examples/replica.toml}, builds a replica
        of the example organisation that refers writes.
        """
        config = loadConfig(SOURCE_ROOT / "examples" / "replica.toml")
        (consumer,) = config.replicas
        self.assertEqual(consumer.settings.provider.uri, "ldap://127.0.0.1:10389")
        self.assertIsNone(consumer.chain)

    def test_problems(self) -> None:
        """
        Unknown keys, missing and bad values, and a suffix no database has.
        """
        good = f'suffix = "{BASE}"\nprovider = "ldap://p"\n'
        cases = [
            (good + "bogus = 1\n", "bogus", "unknown key"),
            ('provider = "ldap://p"\n', "suffix", "is required"),
            ('suffix = "dc=other"\nprovider = "ldap://p"\n', "suffix", "no [[database]]"),
            (f'suffix = "{BASE}"\n', "provider", "is required"),
            (f'suffix = "{BASE}"\nprovider = "http://p"\n', "provider", "ldap://"),
            (good + 'mode = "push"\n', "mode", "is not one of"),
            (good + 'interval = "2s"\n', "interval", "refreshOnly"),
            (good + 'retry = "soon"\n', "retry", "not a duration"),
            (good + "retry = 0\n", "retry", "more than 0"),
            (good + "rid = 1000\n", "rid", "0 to 999"),
            (good + 'rid = "1"\n', "rid", "must be an integer"),
            (good + 'filter = "(bad"\n', "filter", "not a valid filter"),
            (good + 'scope = "tree"\n', "scope", "is not one of"),
            (good + "attrs = []\n", "attrs", "non-empty list"),
            (good + 'bind_dn = "cn=x"\n', "bind_password", "go together"),
            (good + "chain_writes = 1\n", "chain_writes", "boolean"),
            (good + 'starttls = true\nprovider = "ldaps://p"\n', "provider", "StartTLS"),
        ]
        for replica, key, problem in cases:
            if replica.count("provider =") == 2:
                replica = replica.replace('provider = "ldap://p"\n', "", 1)
            with self.subTest(key=key, problem=problem):
                self.assertProblem(replica, key, problem)

    def test_proxyDatabase(self) -> None:
        """
        A replica's database must keep its entries: a proxy is refused.
        """
        self.assertProblem(f'suffix = "{BASE}"\nprovider = "ldap://p"\n', "suffix", "not proxy them",
                           'backend = "proxy"\nupstreams = ["ldap://u"]\n')

    def test_twice(self) -> None:
        """
        Two replicas of one database are refused.
        """
        with self.assertRaises(ConfigError) as caught:
            self.load(f'suffix = "{BASE}"\nprovider = "ldap://p"\n\n[[replica]]\n'
                      f'suffix = "{BASE}"\nprovider = "ldap://q"\n')
        self.assertIn("replica[1].suffix: two [[replica]] tables", str(caught.exception))


class _ScriptedProvider(protocol.Protocol):
    """
    A provider that answers binds and plays, for each sync search, the next
    script of its factory: a list of C{(protocolOp, controls)} pairs, the
    last one the SearchResultDone (or none, to stay in the persist stage).
    """

    def connectionMade(self) -> None:
        self.framer = Framer()

    def dataReceived(self, data: bytes) -> None:
        self.framer.feed(data)
        while (message := self.framer.next()) is not None:
            request = message.request
            if isinstance(request, BindRequest):
                self.transport.write(encodeMessage(message.messageId, encodeResult(0x61, 0)))
            elif isinstance(request, SearchRequest):
                controls = {oid: value for oid, _, value in message.controls}
                self.factory.requests.append(decodeSyncRequest(controls[SYNC_REQUEST]))
                script = self.factory.scripts.pop(0) if self.factory.scripts else []
                for op, responseControls in script:
                    self.transport.write(encodeMessage(message.messageId, op, responseControls))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Refusing:
    """
    A plugin whose C{check_add} hook records the RDN of each entry added and
    refuses those in C{refused}: a write that fails inside the backend's
    transaction.
    """

    name = "refusing"

    def __init__(self) -> None:
        self.refused: set[str] = set()
        self.seen: list[str] = []

    def check_add(self, op: Any, txn: Any, entry: Entry) -> None:
        rdn = str(entry.dn).split(",")[0]
        self.seen.append(rdn)
        if rdn in self.refused:
            raise ldaperrors.LDAPUnwillingToPerform("refused")


def _uuid(n: int) -> bytes:
    return uuidToBytes(f"00000000-0000-4000-8000-{n:012d}")


def _entry(dn: str, n: int, state: int = ADD, cookie: bytes | None = None,
           **attributes: str) -> tuple[bytes, list[Control]]:
    """
    @return: a SearchResultEntry with its Sync State control: an
        organizationalUnit or an inetOrgPerson (by the RDN), entryUUID C{n}.
    """
    rdn = dn.split(",")[0]
    name, _, value = rdn.partition("=")
    if name == "dc":
        pairs = [("objectClass", [b"dcObject", b"organization"]), ("o", [b"Example"])]
    elif name == "ou":
        pairs = [("objectClass", [b"organizationalUnit"])]
    else:
        pairs = [("objectClass", [b"inetOrgPerson"]), ("cn", [value.encode()]), ("sn", [b"S"])]
    pairs.append((name, [value.encode()]))
    pairs.append(("entryUUID", [uuidFromBytes(_uuid(n)).encode()]))
    pairs.extend((k, [v.encode()]) for k, v in attributes.items())
    body = encodeSearchEntry(dn.encode(), [(k.encode(), vs) for k, vs in pairs])
    return body, [Control(SYNC_STATE, False, SyncState(state, _uuid(n), cookie).encode())]


def _done(cookie: bytes | None, refreshDeletes: bool = False, code: int = 0
          ) -> tuple[bytes, list[Control]]:
    return (encodeResult(0x65, code),
            [Control(SYNC_DONE, False, SyncDone(cookie, refreshDeletes).encode())])


def _info(info: SyncInfo) -> tuple[bytes, list[Control]]:
    return encodeIntermediateResponse(SYNC_INFO.encode(), info.encode()), []


def _cookie(second: int) -> bytes:
    return f"rid=007,csn=20250101000{second:03d}.000000Z#000000#000#000000".encode()


class ScriptedProviderTests(unittest.TestCase):
    """
    The consumer in this process against a scripted provider, for what a
    well-behaved slapd never does: children before parents, a change that
    cannot be applied, present and delete phases of a chosen shape, and
    e-syncRefreshRequired.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        factory = protocol.ServerFactory.forProtocol(_ScriptedProvider)
        factory.scripts = []
        factory.requests = []
        self.factory = factory
        self.port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        schema = Schema.standard()
        suffix = DN.parse(BASE)
        self.backend = self.makeBackend(schema.normalizeDN(suffix), schema)
        self.refusing = _Refusing()
        self.directory = Directory([Database(suffix, self.backend)], [self.refusing],
                                   schema=schema, reactor=reactor)
        self.schema = schema

    def makeBackend(self, suffix: DN, schema: Schema) -> Any:
        """
        @return: the consumer's backend: a memory backend.
        """
        return MemoryBackend(suffix, schema, self.reactor)

    def start(self, mode: int = REFRESH_ONLY) -> defer.Deferred[None]:
        """
        Open the directory and start a consumer of the scripted provider.
        """
        provider = parseUpstream(f"ldap://127.0.0.1:{self.port.getHost().port}")
        settings = ReplicaSettings(DN.parse(BASE), provider, mode=mode, interval=0.05,
                                   retry=0.05, rid=7)
        pool = UpstreamPool([provider], self.reactor, size=1, timeout=5)
        self.consumer = SyncReplConsumer(self.directory, settings, pool, self.reactor)

        def started(_: None) -> None:
            self.consumer.startService()
            self.addCleanup(self.consumer.stopService)

        return self.directory.open().addCallback(started)

    async def until(self, condition: Any) -> None:
        """
        Wait (boundedly) until C{condition()} is true.
        """
        deadline = time.monotonic() + 10
        while not condition():
            self.assertLess(time.monotonic(), deadline, "condition never held")
            await task.deferLater(self.reactor, 0.02, lambda: None)

    async def content(self) -> dict[str, bytes]:
        """
        @return: every local entry's normalised DN and entryUUID.
        """
        op = self.directory.internalOperation()
        op.search = SearchParameters(self.schema.normalizeDN(DN.parse(BASE)), Scope.SUB,
                                     compileFilter(parseFilter("(objectClass=*)"), self.schema))
        found: dict[str, bytes] = {}

        def emit(entry: Any) -> None:
            found[str(entry.ndn)] = entry.get("entryUUID")[0]

        try:
            await self.backend.search(op, emit)
        except NoSuchObject:
            pass
        return found

    async def contextCSN(self) -> tuple[bytes, ...]:
        entry = await self.directory.get(self.directory.internalOperation(),
                                         self.schema.normalizeDN(DN.parse(BASE)))
        return entry.get("contextCSN")

    @defer.inlineCallbacks
    def test_childBeforeParent(self) -> Any:
        """
        An entry that comes before its parent waits for it, and the cookie
        is saved once both are in.
        """
        self.factory.scripts.append([
            _entry(f"uid=kid,ou=people,{BASE}", 3),
            _entry(f"ou=people,{BASE}", 2),
            _entry(BASE, 1),
            _done(_cookie(1)),
        ])
        yield self.start()
        yield defer.Deferred.fromCoroutine(self.until(lambda: len(self.factory.requests) >= 2))
        content = yield defer.Deferred.fromCoroutine(self.content())
        self.assertEqual(len(content), 3)
        self.assertEqual(content[f"uid=kid,ou=people,{BASE}"], uuidFromBytes(_uuid(3)).encode())
        csns = yield defer.Deferred.fromCoroutine(self.contextCSN())
        self.assertEqual(csns, (_cookie(1).split(b"csn=")[1],))
        self.assertIsNone(self.factory.requests[0].cookie)
        self.assertEqual(self.factory.requests[1].cookie, b"rid=007," + _cookie(1).split(b",")[1])

    @defer.inlineCallbacks
    def test_failedChangeRestarts(self) -> Any:
        """
        A change that cannot be applied (an undefined attribute type here)
        ends the session; the next one starts from the last saved cookie,
        and nothing after it was kept as done.
        """
        self.factory.scripts.append([
            _entry(BASE, 1),
            _entry(f"ou=people,{BASE}", 2),
            _info(SyncInfo(NEW_COOKIE, _cookie(1))),
            _entry(f"uid=bad,ou=people,{BASE}", 3, noSuchType="x"),
            _done(_cookie(2)),
        ])
        self.factory.scripts.append([_entry(f"uid=good,ou=people,{BASE}", 4),
                                     _done(_cookie(3), refreshDeletes=True)])
        yield self.start()
        yield defer.Deferred.fromCoroutine(self.until(lambda: len(self.factory.requests) >= 3))
        self.assertEqual([r.cookie for r in self.factory.requests[:3]],
                         [None, b"rid=007," + _cookie(1).split(b",")[1],
                          b"rid=007," + _cookie(3).split(b",")[1]])
        content = yield defer.Deferred.fromCoroutine(self.content())
        self.assertEqual(sorted(content), sorted([BASE, f"ou=people,{BASE}",
                                                  f"uid=good,ou=people,{BASE}"]))

    @defer.inlineCallbacks
    def test_failedWriteStopsPipeline(self) -> Any:
        """
        Among many changes applied as a pipeline, a write that fails in
        the backend's transaction ends the session: the changes before it
        are kept, it and those after it are not (their writes are not
        even tried), and the next session starts from the last saved
        cookie.
        """
        self.refusing.refused.add("uid=p60")
        people = [_entry(f"uid=p{i},ou=people,{BASE}", 100 + i) for i in range(120)]
        self.factory.scripts.append([_entry(BASE, 1), _entry(f"ou=people,{BASE}", 2), *people,
                                     _done(_cookie(1))])
        self.factory.scripts.append([_done(_cookie(2), refreshDeletes=True)])
        yield self.start()
        yield defer.Deferred.fromCoroutine(self.until(lambda: len(self.factory.requests) >= 3))
        self.assertIsNone(self.factory.requests[1].cookie)
        content = yield defer.Deferred.fromCoroutine(self.content())
        self.assertEqual(sorted(content), sorted(
            [BASE, f"ou=people,{BASE}"] + [f"uid=p{i},ou=people,{BASE}" for i in range(60)]))
        tried = [rdn for rdn in self.refusing.seen if rdn.startswith("uid=")]
        self.assertEqual(tried[:60], [f"uid=p{i}" for i in range(60)])
        self.assertEqual(set(tried[60:]), {"uid=p60"})

    @defer.inlineCallbacks
    def test_pipelineRecovers(self) -> Any:
        """
        A pipeline's add that meets an entry of another entryUUID under its
        name gives that entry the provider's content, and the changes after
        it are applied (again, after their writes were not made); a
        syncIdSet of deletes removes leaves and a subtree alike.
        """
        self.factory.scripts.append([
            _entry(BASE, 1), _entry(f"ou=people,{BASE}", 2), _entry(f"uid=x,ou=people,{BASE}", 50),
            _entry(f"ou=gone,{BASE}", 3), _entry(f"uid=a,ou=gone,{BASE}", 4),
            _entry(f"uid=leaf,{BASE}", 5), _done(_cookie(1)),
        ])
        self.factory.scripts.append([
            _info(SyncInfo(SYNC_ID_SET, refreshDeletes=True, syncUUIDs=(_uuid(3), _uuid(5)))),
            *[_entry(f"uid=p{i},ou=people,{BASE}", 100 + i) for i in range(10)],
            _entry(f"uid=x,ou=people,{BASE}", 51, mail="x@example.com"),
            *[_entry(f"uid=p{i},ou=people,{BASE}", 100 + i) for i in range(10, 20)],
            _done(_cookie(2), refreshDeletes=True),
        ])
        yield self.start()
        yield defer.Deferred.fromCoroutine(self.until(lambda: len(self.factory.requests) >= 3))
        content = yield defer.Deferred.fromCoroutine(self.content())
        self.assertEqual(content, {
            BASE: uuidFromBytes(_uuid(1)).encode(),
            f"ou=people,{BASE}": uuidFromBytes(_uuid(2)).encode(),
            f"uid=x,ou=people,{BASE}": uuidFromBytes(_uuid(51)).encode(),
            **{f"uid=p{i},ou=people,{BASE}": uuidFromBytes(_uuid(100 + i)).encode()
               for i in range(20)},
        })
        csns = yield defer.Deferred.fromCoroutine(self.contextCSN())
        self.assertEqual(csns, (_cookie(2).split(b"csn=")[1],))

    @defer.inlineCallbacks
    def test_phases(self) -> Any:
        """
        The present phase deletes what the provider did not name (children
        first); a syncIdSet of deletes deletes; entries keep their UUIDs
        through a rename.
        """
        self.factory.scripts.append([
            _entry(BASE, 1), _entry(f"ou=people,{BASE}", 2), _entry(f"ou=gone,{BASE}", 5),
            _entry(f"uid=a,ou=gone,{BASE}", 6), _entry(f"uid=b,ou=people,{BASE}", 7),
            _entry(f"uid=c,ou=people,{BASE}", 8),
            _done(_cookie(1)),
        ])
        self.factory.scripts.append([
            _entry(BASE, 1, PRESENT), _entry(f"ou=people,{BASE}", 2, PRESENT),
            _info(SyncInfo(SYNC_ID_SET, refreshDeletes=False, syncUUIDs=(_uuid(7), _uuid(8)))),
            _done(_cookie(2)),
        ])
        self.factory.scripts.append([
            _info(SyncInfo(SYNC_ID_SET, refreshDeletes=True, syncUUIDs=(_uuid(7),))),
            _entry(f"uid=renamed,{BASE}", 8, MODIFY),
            _done(_cookie(3), refreshDeletes=True),
        ])
        yield self.start()
        yield defer.Deferred.fromCoroutine(self.until(lambda: len(self.factory.requests) >= 4))
        content = yield defer.Deferred.fromCoroutine(self.content())
        self.assertEqual(content, {
            BASE: uuidFromBytes(_uuid(1)).encode(),
            f"ou=people,{BASE}": uuidFromBytes(_uuid(2)).encode(),
            f"uid=renamed,{BASE}": uuidFromBytes(_uuid(8)).encode(),
        })

    @defer.inlineCallbacks
    def test_staleOccupant(self) -> Any:
        """
        In a present phase, an entry renamed onto the name of one deleted
        on the provider replaces it (with its subtree) instead of failing.
        """
        self.factory.scripts.append([
            _entry(BASE, 1), _entry(f"ou=x,{BASE}", 10), _entry(f"uid=old,ou=x,{BASE}", 12),
            _entry(f"ou=y,{BASE}", 11), _done(_cookie(1)),
        ])
        self.factory.scripts.append([
            _entry(BASE, 1, PRESENT), _entry(f"ou=x,{BASE}", 11, MODIFY), _done(_cookie(2)),
        ])
        yield self.start()
        yield defer.Deferred.fromCoroutine(self.until(lambda: len(self.factory.requests) >= 3))
        content = yield defer.Deferred.fromCoroutine(self.content())
        self.assertEqual(content, {BASE: uuidFromBytes(_uuid(1)).encode(),
                                   f"ou=x,{BASE}": uuidFromBytes(_uuid(11)).encode()})

    @defer.inlineCallbacks
    def test_refreshRequired(self) -> Any:
        """
        e-syncRefreshRequired (4096) makes the consumer ask again without a
        cookie, and the full refresh's present phase removes what is gone.
        """
        self.factory.scripts.append([_entry(BASE, 1), _entry(f"ou=old,{BASE}", 2),
                                     _done(_cookie(1))])
        self.factory.scripts.append([_done(None, code=4096)])
        self.factory.scripts.append([_entry(BASE, 1), _done(_cookie(5))])
        yield self.start()
        yield defer.Deferred.fromCoroutine(self.until(lambda: len(self.factory.requests) >= 4))
        self.assertIsNone(self.factory.requests[2].cookie)
        content = yield defer.Deferred.fromCoroutine(self.content())
        self.assertEqual(sorted(content), [BASE])

    @defer.inlineCallbacks
    def test_persist(self) -> Any:
        """
        refreshAndPersist: after the refresh (a Sync Info refreshDelete with
        refreshDone), each change is applied as it comes, and its cookie saved.
        The consumer says it is persisting, and when the provider made the
        change it committed last, which the metrics show.
        """
        self.factory.scripts.append([
            _entry(BASE, 1),
            _info(SyncInfo(REFRESH_DELETE, _cookie(1), refreshDone=True)),
            _entry(f"ou=later,{BASE}", 2, cookie=_cookie(2)),
        ])
        yield self.start(REFRESH_AND_PERSIST)
        deadline = time.monotonic() + 10
        while True:
            try:
                csns = yield defer.Deferred.fromCoroutine(self.contextCSN())
            except NoSuchObject:
                csns = ()
            if csns == (_cookie(2).split(b"csn=")[1],):
                break
            self.assertLess(time.monotonic(), deadline, "the cookie was never saved")
            yield task.deferLater(self.reactor, 0.02, lambda: None)
        content = yield defer.Deferred.fromCoroutine(self.content())
        self.assertEqual(sorted(content), sorted([BASE, f"ou=later,{BASE}"]))
        self.assertEqual(len(self.factory.requests), 1)
        self.assertEqual(self.consumer.state, "persisting")
        made = csnTime(_cookie(2).split(b"csn=")[1]).timestamp()
        self.assertEqual(self.consumer.lastChange, made)
        assert self.consumer.lastCommitted is not None
        self.assertGreaterEqual(self.consumer.lastCommitted, made)
        text = yield defer.Deferred.fromCoroutine(
            MetricsCollector(self.directory, [self.consumer]).render())
        self.assertIn(f'ldapd_replica_state{{provider="{self.consumer.settings.provider.uri}",'
                      f'state="persisting",suffix="{BASE}"}} 1.0', text.decode())


class SQLiteScriptedProviderTests(ScriptedProviderTests):
    """
    The scripted provider's tests with the consumer's database on SQLite,
    written in batches of one transaction.
    """

    def makeBackend(self, suffix: DN, schema: Schema) -> Any:
        """
        @return: an sql backend on a SQLite file of its own.
        """
        folder = tempfile.mkdtemp(prefix="ldapd-replica-")
        self.addCleanup(shutil.rmtree, folder, True)
        backend = SQLBackend(suffix, schema, f"sqlite:///{folder}/replica.db", self.reactor)
        self.addCleanup(backend.close)
        return backend

    @defer.inlineCallbacks
    def test_batched(self) -> Any:
        """
        A refresh of many entries, received faster than they are applied
        (on SQLite, in a thread), is applied in a few batches of writes,
        not one transaction each; the cookie is written in the batch of the
        last changes, before it commits.
        """
        batches: list[list[str]] = []
        begin = self.backend.batch

        def batch() -> Any:
            made = begin()
            calls: list[str] = []
            batches.append(calls)
            for name in ("add", "modify", "commit"):
                method = getattr(made, name)

                def recording(*args: Any, _name: str = name, _method: Any = method) -> Any:
                    calls.append(_name)
                    return _method(*args)

                setattr(made, name, recording)
            return made

        self.backend.batch = batch  # type: ignore[method-assign]
        people = [_entry(f"uid=p{i},ou=people,{BASE}", 100 + i) for i in range(200)]
        self.factory.scripts.append([_entry(BASE, 1), _entry(f"ou=people,{BASE}", 2),
                                     *people, _done(_cookie(1))])
        yield self.start()
        yield defer.Deferred.fromCoroutine(self.until(lambda: len(self.factory.requests) >= 2))
        content = yield defer.Deferred.fromCoroutine(self.content())
        self.assertEqual(len(content), 202)
        writes = [calls for calls in batches if "add" in calls]
        self.assertLess(len(writes), 50)
        self.assertTrue(all(calls[-1] == "commit" for calls in writes))
        # The cookie (a modify of the suffix) after the last add, before the commit.
        self.assertEqual(writes[-1][-2:], ["modify", "commit"])
        csns = yield defer.Deferred.fromCoroutine(self.contextCSN())
        self.assertEqual(csns, (_cookie(1).split(b"csn=")[1],))
