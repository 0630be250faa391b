"""
The testing kit: what ldapd's own tests use, and third-party backends and
plugins can reuse.

  - L{BackendTestsMixin}: the conformance suite every L{IBackend} runs.
  - L{RecordingHooks}: an L{ITransactionHooks} fake that records its calls
    and can be told to fail.
  - L{ServerProcess}: the real C{twist ldapd} in a child process on a free
    loopback port, for tests that drive it with real clients;
    L{ServerTestsMixin} runs one for a whole test class.
  - L{DirectoryTestsMixin}: a L{ldapd.directory.Directory} with the example
    organisation and some plugins, on the memory backend or the sql backend
    (a SQLite file, or PostgreSQL), and client requests sent to it.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ldaptor.protocols import pureber
from ldaptor.protocols.ldap import ldaperrors
from zope.interface import implementer
from zope.interface.verify import verifyObject

from ldapd import requests
from ldapd._codec import lengthAt
from ldapd._resources import dataFolder
from ldapd.changes import MODIFY, RENAME, ChangeRecord
from ldapd.csn import formatCSN
from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.filters import compileFilter
from ldapd.interfaces import (
    IBackend,
    IChangelog,
    IChangelogTransaction,
    ITransaction,
    ITransactionHooks,
    IWriteBatch,
    IWriteBatches,
)
from ldapd.operation import Connection, Identity, Operation, Scope, SearchParameters
from ldapd.requests import Filter
from ldapd.results import NoSuchObject
from ldapd.schema import Schema

if TYPE_CHECKING:
    from typing import TypeVar

    from twisted.trial.unittest import TestCase

    _T = TypeVar("_T")

    class _TrialTestCase(TestCase):
        """
        trial's C{TestCase}, with types on the assertions the mixins call
        (trial's have none).
        """

        def assertEqual(self, first: _T, second: object, msg: str | None = None) -> _T: ...

        def assertTrue(self, condition: _T, msg: str | None = None) -> _T: ...

        def assertFalse(self, condition: _T, msg: str | None = None) -> _T: ...

else:
    # The mixins below are mixed into a trial TestCase, whose methods they call;
    # at run time they are plain classes, so that the TestCase comes in once.
    _TrialTestCase = object

__all__ = [
    "BackendTestsMixin",
    "DirectoryTestsMixin",
    "EXAMPLE_LDIF",
    "POSTGRESQL_ENV",
    "RecordingHooks",
    "SLAPD",
    "ServerProcess",
    "ServerTestsMixin",
    "SlapdProcess",
    "SlapdTestsMixin",
    "childEnvironment",
    "decodeResponse",
    "exampleConfig",
    "executeRequest",
    "freePort",
    "longFormLengths",
    "decodedRequest",
    "installDistribution",
    "parseFilter",
    "wireFilter",
    "postgresqlURL",
    "privatePostgreSQLSchema",
]

#: The root of the source tree (the folder holding C{ldapd/} and C{twisted/plugins/}).
SOURCE_ROOT = Path(__file__).resolve().parent.parent
#: The example configuration and data: the source tree's C{examples/}, which
#: an installed wheel carries as C{ldapd/examples/}.
_EXAMPLES = dataFolder("examples", "examples", "ldapd.toml")
#: The example organisation's LDIF.
EXAMPLE_LDIF = _EXAMPLES / "data" / "example.ldif"
#: The example configuration.
EXAMPLE_CONFIG = _EXAMPLES / "ldapd.toml"


def childEnvironment() -> dict[str, str]:
    """
    @return: this process's environment, for a child process that imports
        this C{ldapd} (the one that holds this module) wherever it runs.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), env.get("PYTHONPATH")]))
    return env


def freePort() -> int:
    """
    @return: a TCP port on 127.0.0.1 that was free a moment ago.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # type: ignore[no-any-return]


def parseFilter(text: str) -> Filter:
    """
    @param text: a filter in RFC 4515 string form.
    @return: the filter, as the protocol would deliver it.
    """
    return requests.parseFilter(text)


def wireFilter(text: str) -> Any:
    """
    @param text: a filter in RFC 4515 string form.
    @return: the filter in ldaptor's classes, for a request a test sends as
        a client.
    """
    from ldapd._codec import filterToLdaptor

    return filterToLdaptor(requests.parseFilter(text))


@implementer(ITransactionHooks)
class RecordingHooks:
    """
    Transaction hooks that record each call as C{(stage, operation, args)}.

    @ivar calls: the calls so far.
    @ivar failOn: C{(stage, operation)} pairs at which to raise
        C{LDAPUnwillingToPerform}, to test that a backend rolls back.
    @ivar onTxn: if set, called with C{(operation, txn, args)} in the txn
        stage, to test writes made through the transaction.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        self.failOn: set[tuple[str, str]] = set()
        self.onTxn: Any = None

    def _record(self, stage: str, operation: str, txn: ITransaction, args: tuple[Any, ...]) -> None:
        verifyObject(ITransaction, txn)
        self.calls.append((stage, operation, args))
        if stage == "txn" and self.onTxn is not None:
            self.onTxn(operation, txn, args)
        if (stage, operation) in self.failOn:
            raise ldaperrors.LDAPUnwillingToPerform(f"{stage} {operation} refused by test")

    def check(self, operation: str, op: Operation, txn: ITransaction, *args: Any) -> None:
        self._record("check", operation, txn, args)

    def txn(self, operation: str, op: Operation, txn: ITransaction, *args: Any) -> None:
        self._record("txn", operation, txn, args)


class _ChildServer:
    """
    A server in a child process on a free loopback port, stopped by its PID.

    @ivar port: the loopback port it listens on.
    @ivar url: C{ldap://127.0.0.1:<port>}.
    @ivar logPath: the file its output goes to.
    """

    #: The server's name, for error messages.
    name = ""

    port: int
    url: str
    logPath: Path
    process: "subprocess.Popen[bytes] | None"

    def _launch(self, command: list[str], timeout: float, env: dict[str, str] | None = None) -> None:
        """
        Start C{command} and wait until the port accepts connections.

        @raise RuntimeError: with the server's log, if it exits or does not
            listen within C{timeout} seconds.
        """
        with open(self.logPath, "wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen within {timeout}s:\n{self.log()}")

    def log(self, containing: str | None = None, timeout: float = 10.0, count: int = 1) -> str:
        """
        @param containing: text to wait for: the server writes its log once
            per reactor iteration, after the responses of that iteration
            went out, so a client that has its answer may read the log
            before the operation's line is there.
        @param timeout: the most seconds to wait for C{containing}.
        @param count: how many times C{containing} must be there (a line
            that a restarted process writes again).
        @return: what the server has logged so far: once it holds
            C{containing} C{count} times, or after C{timeout} seconds
            without.
        """
        text = self.logPath.read_text(errors="replace")
        deadline = time.monotonic() + timeout
        while (containing is not None and text.count(containing) < count
               and time.monotonic() < deadline):
            time.sleep(0.05)
            text = self.logPath.read_text(errors="replace")
        return text

    def _terminate(self) -> None:
        """
        Stop the process (SIGTERM, then SIGKILL after 10 seconds) and wait for it.
        """
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """
        Stop the server.
        """
        self._terminate()


class ServerProcess(_ChildServer):
    """
    The real server, C{twist ldapd --config ...}, in a child process.

    @ivar configPath: the configuration file it was started with.
    """

    name = "ldapd"

    def __init__(self, config: str, directory: Path | None = None) -> None:
        """
        @param config: the configuration as TOML text; C{{port}} and
            C{{example_ldif}} are replaced by the chosen port and the path
            of the example LDIF.
        @param directory: where to write the configuration; a new
            temporary folder by default.
        """
        self.port = freePort()
        self.url = f"ldap://127.0.0.1:{self.port}"
        folder = Path(directory or tempfile.mkdtemp(prefix="ldapd-test-"))
        self.configPath = folder / "ldapd.toml"
        self.configPath.write_text(
            config.replace("{port}", str(self.port)).replace("{example_ldif}", str(EXAMPLE_LDIF))
        )
        self.logPath = folder / "ldapd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        """
        Start the server and wait until it accepts connections.

        @raise RuntimeError: with the server's log, if it exits or does not
            listen within C{timeout} seconds.
        """
        self._launch(
            [sys.executable, "-m", "twisted", "--log-format", "text", "ldapd",
             "--config", str(self.configPath)],
            timeout,
            childEnvironment(),
        )


def exampleConfig() -> str:
    """
    @return: the example configuration (C{examples/ldapd.toml}: an sql
        database (SQLite, next to the written configuration) with the example
        organisation, root DN
        C{cn=admin,dc=example,dc=com} with password C{secret}) as a
        L{ServerProcess} template, listening on the chosen port.
    """
    text = EXAMPLE_CONFIG.read_text()
    for old, new in [("tcp:10389:", "tcp:{port}:"), ('"data/example.ldif"', '"{example_ldif}"')]:
        if old not in text:
            raise ValueError(f"{EXAMPLE_CONFIG} no longer contains {old}")
        text = text.replace(old, new)
    return text


class ServerTestsMixin:
    """
    One L{ServerProcess} for all the tests of a class, so that a class's
    tests share its start-up cost and see data no other class has written.

    Mix it into a C{twisted.trial.unittest.SynchronousTestCase}. pytest calls
    C{setUpClass} and C{tearDownClass}; trial does not, so there the first
    C{setUp} starts the server and it is stopped when the process exits.

    @cvar serverConfig: the L{ServerProcess} template; the example
        configuration when C{None}.
    @cvar server: the running server.
    """

    serverConfig: str | None = None
    server: ServerProcess | None = None

    @classmethod
    def startServer(cls) -> Any:
        """
        @return: the class's server, started.
        """
        config = cls.serverConfig if cls.serverConfig is not None else exampleConfig()
        server = ServerProcess(config)
        server.start()
        return server

    @classmethod
    def setUpClass(cls) -> None:
        """
        Start the class's server.
        """
        cls.server = cls.startServer()

    @classmethod
    def tearDownClass(cls) -> None:
        """
        Stop the class's server.
        """
        server = cls.__dict__.get("server")
        if server is not None:
            server.stop()
            cls.server = None

    def setUp(self) -> None:
        cls = type(self)
        if cls.__dict__.get("server") is None:
            cls.setUpClass()
            atexit.register(cls.tearDownClass)
        super().setUp()  # type: ignore[misc]


def _op(search: SearchParameters | None = None) -> Operation:
    from twisted.internet import reactor

    connection = Connection("test", reactor)
    connection.identity = Identity(isRoot=True)
    op = Operation(connection, 1, None)
    op.search = search
    return op


class BackendTestsMixin(_TrialTestCase):
    """
    The conformance suite of L{IBackend}, mixed into a trial C{TestCase}.

    The test case provides C{makeBackend(suffix, schema)}, returning an
    unopened backend for the normalised C{suffix}; the suite opens it, runs
    every operation against it, and closes it. Each test states one rule of
    the interface, so a third-party backend that passes the suite can be
    served by a Directory.
    """

    suffixText = "dc=example,dc=com"

    def makeBackend(self, suffix: DN, schema: Schema) -> Any:
        raise NotImplementedError("the test case must say how to build its backend")

    def setUp(self) -> Any:
        from twisted.internet import defer

        self.schema = Schema.standard()
        self.suffix = self.schema.normalizeDN(DN.parse(self.suffixText))
        self.backend = self.makeBackend(self.suffix, self.schema)
        self.hooks = RecordingHooks()
        d = self.backend.open()
        d.addCallback(lambda _: self.addCleanup(self.backend.close))
        d.addCallback(lambda _: defer.Deferred.fromCoroutine(self._populate()))
        return d

    def entry(self, dn: str, **attributes: Any) -> Entry:
        """
        @param dn: the entry's DN.
        @param attributes: attribute names and a value or list of values (str).
        @return: an entry of the test schema.
        """
        pairs = []
        for name, values in attributes.items():
            values = values if isinstance(values, list) else [values]
            pairs.append((name, [v.encode("utf-8") for v in values]))
        return Entry(DN.parse(dn), pairs, self.schema)

    def person(self, uid: str, parent: str = "ou=people,dc=example,dc=com", **extra: Any) -> Entry:
        """
        @return: an inetOrgPerson entry C{uid=<uid>} under C{parent}.
        """
        return self.entry(
            f"uid={uid},{parent}",
            objectClass=["top", "person", "organizationalPerson", "inetOrgPerson"],
            uid=uid, cn=f"{uid.title()} Example", sn="Example", **extra,
        )

    def suiteEntries(self) -> list[Entry]:
        """
        @return: the entries the suite's tests expect, which C{setUp} adds
            through the backend; a read-only backend's tests serve these
            and borrow the suite's tests of reads and binds.
        """
        return [
            self.entry(self.suffixText, objectClass=["top", "dcObject", "organization"],
                       dc="example", o="Example"),
            self.entry("ou=people,dc=example,dc=com", objectClass=["top", "organizationalUnit"],
                       ou="people"),
            self.entry("ou=groups,dc=example,dc=com", objectClass=["top", "organizationalUnit"],
                       ou="groups"),
            self.person("alice", mail="alice@example.com",
                        userPassword="{SSHA}pd2MzDfj4UMmvYEFD0zNBIpF4Xh1qaEf6LBz0g=="),
            self.person("bob", mail="bob@example.com", userPassword="bob-secret"),
            self.entry("cn=staff,ou=groups,dc=example,dc=com", objectClass=["top", "groupOfNames"],
                       cn="staff", member=["uid=alice,ou=people,dc=example,dc=com"]),
        ]

    async def _populate(self) -> None:
        for e in self.suiteEntries():
            await self.backend.add(_op(), e, RecordingHooks())

    def search(self, base: str, scope: Scope, filterText: str = "(objectClass=*)",
               source: Any = None) -> Any:
        """
        @param source: what to search (a write batch); the backend by default.
        @return: a Deferred firing with the DNs (text) the backend emits.
        """
        found: list[str] = []
        params = SearchParameters(
            self.schema.normalizeDN(DN.parse(base)), scope,
            compileFilter(parseFilter(filterText), self.schema),
        )
        source = self.backend if source is None else source
        d = source.search(_op(params), lambda e: found.append(str(e.dn)))
        return d.addCallback(lambda _: found)

    def assertNoSuchObject(self, failure: Any, matched: str | None) -> None:
        failure.trap(NoSuchObject)
        self.assertEqual(str(failure.value.matchedDN) if failure.value.matchedDN else None, matched)

    def ndn(self, text: str) -> DN:
        return self.schema.normalizeDN(DN.parse(text))

    # The interface

    def test_interface(self) -> None:
        """
        The backend provides L{IBackend}, and its suffix is the one it was built for.
        """
        self.assertTrue(verifyObject(IBackend, self.backend))
        self.assertEqual(self.backend.suffix, self.suffix)

    # Reads

    def test_get(self) -> Any:
        """
        C{get} returns the entry under its normalised DN, whatever the case
        and spacing of the name it was added with.
        """
        d = self.backend.get(_op(), self.ndn("UID=Alice, OU=People, DC=Example, DC=Com"))
        d.addCallback(lambda e: self.assertEqual(
            (str(e.dn), e.get("mail")),
            ("uid=alice,ou=people,dc=example,dc=com", (b"alice@example.com",)),
        ))
        return d

    def test_getMissing(self) -> Any:
        """
        C{get} of a missing entry fails with noSuchObject whose matched DN is
        the deepest existing superior.
        """
        d = self.backend.get(_op(), self.ndn("uid=zed,ou=nowhere,ou=people,dc=example,dc=com"))
        return d.addCallbacks(self.fail, lambda f: self.assertNoSuchObject(
            f, "ou=people,dc=example,dc=com"))

    def test_searchScopes(self) -> Any:
        """
        Base, one-level and subtree scopes return exactly their entries, parents first.
        """
        d = self.search("ou=people,dc=example,dc=com", Scope.BASE)
        d.addCallback(self.assertEqual, ["ou=people,dc=example,dc=com"])
        d.addCallback(lambda _: self.search("dc=example,dc=com", Scope.ONE))
        d.addCallback(lambda found: self.assertEqual(
            sorted(found), ["ou=groups,dc=example,dc=com", "ou=people,dc=example,dc=com"]))
        d.addCallback(lambda _: self.search("dc=example,dc=com", Scope.SUB))
        d.addCallback(lambda found: (
            self.assertEqual(len(found), 6),
            self.assertEqual(found[0], "dc=example,dc=com"),
            self.assertLess(found.index("ou=people,dc=example,dc=com"),
                            found.index("uid=alice,ou=people,dc=example,dc=com")),
        ))
        return d

    def test_searchFilters(self) -> Any:
        """
        Only entries matching the filter are emitted: equality (indexed or
        not), substrings, presence, and combinations.
        """
        cases = [
            ("(uid=ALICE)", ["uid=alice,ou=people,dc=example,dc=com"]),
            ("(mail=*@example.com)", ["uid=alice,ou=people,dc=example,dc=com",
                                      "uid=bob,ou=people,dc=example,dc=com"]),
            ("(cn=*lic*)", ["uid=alice,ou=people,dc=example,dc=com"]),
            ("(&(objectClass=inetOrgPerson)(!(uid=alice)))", ["uid=bob,ou=people,dc=example,dc=com"]),
            ("(|(ou=groups)(member=UID=Alice,OU=People,DC=example,DC=com))",
             ["ou=groups,dc=example,dc=com", "cn=staff,ou=groups,dc=example,dc=com"]),
            ("(description=*)", []),
        ]
        from twisted.internet import defer

        async def check() -> None:
            for text, expected in cases:
                found = await self.search("dc=example,dc=com", Scope.SUB, text)
                self.assertEqual(sorted(found), sorted(expected), text)

        return defer.Deferred.fromCoroutine(check())

    def test_searchMissingBase(self) -> Any:
        """
        A search under a missing base fails with noSuchObject and its matched DN.
        """
        d = self.search("ou=gone,dc=example,dc=com", Scope.SUB)
        return d.addCallbacks(self.fail, lambda f: self.assertNoSuchObject(f, "dc=example,dc=com"))

    def test_searchEmitRaises(self) -> Any:
        """
        An exception raised by C{emit} (a size limit, say) stops the search
        and is its failure.
        """
        class Stop(Exception):
            pass

        seen = []

        def emit(entry: Entry) -> None:
            seen.append(entry)
            raise Stop()

        params = SearchParameters(self.suffix, Scope.SUB,
                                  compileFilter(parseFilter("(objectClass=*)"), self.schema))
        d = self.backend.search(_op(params), emit)
        return d.addCallbacks(self.fail, lambda f: (f.trap(Stop), self.assertEqual(len(seen), 1)))

    def test_searchEmitSuspends(self) -> Any:
        """
        When C{emit} returns a Deferred, the backend emits nothing more until it fires.
        """
        from twisted.internet import defer

        seen: list[Entry] = []
        reached: defer.Deferred[None] = defer.Deferred()
        gate: defer.Deferred[None] = defer.Deferred()

        def emit(entry: Entry) -> Any:
            seen.append(entry)
            if len(seen) != 2:
                return None
            reached.callback(None)
            return gate

        params = SearchParameters(self.suffix, Scope.SUB,
                                  compileFilter(parseFilter("(objectClass=*)"), self.schema))
        d = self.backend.search(_op(params), emit)
        from twisted.internet import reactor, task

        def paused(_: Any) -> None:
            self.assertEqual(len(seen), 2)
            self.assertFalse(d.called)
            gate.callback(None)

        # Once the search is at the gate, give a backend that would not
        # wait a moment to emit more; however loaded the machine, a slow
        # backend can only emit fewer, never more.
        reached.addCallback(lambda _: task.deferLater(reactor, 0.05, lambda: None))
        return reached.addCallback(paused).addCallback(
            lambda _: d).addCallback(lambda _: self.assertEqual(len(seen), 6))

    # Writes

    def test_addExisting(self) -> Any:
        """
        Adding an entry that exists fails with entryAlreadyExists and calls no hook.
        """
        d = self.backend.add(_op(), self.person("alice"), self.hooks)
        return d.addCallbacks(self.fail, lambda f: (
            f.trap(ldaperrors.LDAPEntryAlreadyExists), self.assertEqual(self.hooks.calls, [])))

    def test_addWithoutParent(self) -> Any:
        """
        Adding an entry whose parent is missing fails with noSuchObject and the matched DN.
        """
        d = self.backend.add(_op(), self.person("x", "ou=gone,ou=people,dc=example,dc=com"),
                             self.hooks)
        return d.addCallbacks(self.fail, lambda f: self.assertNoSuchObject(
            f, "ou=people,dc=example,dc=com"))

    def test_addHooks(self) -> Any:
        """
        An add calls the check hooks, then the txn hooks, with the entry.
        """
        carol = self.person("carol")
        d = self.backend.add(_op(), carol, self.hooks)
        d.addCallback(lambda _: self.assertEqual(
            [(stage, name, [str(a.dn) for a in args]) for stage, name, args in self.hooks.calls],
            [("check", "add", [str(carol.dn)]), ("txn", "add", [str(carol.dn)])],
        ))
        d.addCallback(lambda _: self.backend.get(_op(), carol.ndn))
        return d

    def _assertRolledBack(self, stage: str, operation: str, write: Any, unchanged: Any) -> Any:
        self.hooks.failOn.add((stage, operation))
        d = write()
        d.addCallbacks(self.fail, lambda f: f.trap(ldaperrors.LDAPUnwillingToPerform))
        d.addCallback(lambda _: unchanged())
        return d

    def test_addRollback(self) -> Any:
        """
        When a txn hook fails, the added entry is not there, nor anything the
        hooks wrote through the transaction.
        """
        extra = self.person("extra")
        self.hooks.onTxn = lambda op, txn, args: txn.put(extra)
        d = self._assertRolledBack("txn", "add", lambda: self.backend.add(
            _op(), self.person("carol"), self.hooks), lambda: self.search(
            "ou=people,dc=example,dc=com", Scope.ONE))
        d.addCallback(lambda found: self.assertEqual(sorted(found), [
            "uid=alice,ou=people,dc=example,dc=com", "uid=bob,ou=people,dc=example,dc=com"]))
        return d

    def test_txnWrites(self) -> Any:
        """
        What a txn hook writes through the transaction commits with the write.
        """
        extra = self.person("extra")
        self.hooks.onTxn = lambda op, txn, args: txn.put(extra)
        d = self.backend.add(_op(), self.person("carol"), self.hooks)
        d.addCallback(lambda _: self.backend.get(_op(), extra.ndn))
        return d.addCallback(lambda e: self.assertEqual(str(e.dn), str(extra.dn)))

    def test_delete(self) -> Any:
        """
        Deleting a leaf removes it; deleting a non-leaf fails with
        notAllowedOnNonLeaf; deleting a missing entry fails with noSuchObject.
        """
        d = self.backend.delete(_op(), self.ndn("uid=bob,ou=people,dc=example,dc=com"), self.hooks)
        d.addCallback(lambda _: self.search("ou=people,dc=example,dc=com", Scope.ONE))
        d.addCallback(self.assertEqual, ["uid=alice,ou=people,dc=example,dc=com"])
        d.addCallback(lambda _: self.backend.delete(
            _op(), self.ndn("ou=people,dc=example,dc=com"), self.hooks))
        d.addCallbacks(self.fail, lambda f: f.trap(ldaperrors.LDAPNotAllowedOnNonLeaf))
        d.addCallback(lambda _: self.backend.delete(
            _op(), self.ndn("uid=bob,ou=people,dc=example,dc=com"), self.hooks))
        return d.addCallbacks(self.fail, lambda f: self.assertNoSuchObject(
            f, "ou=people,dc=example,dc=com"))

    def test_deleteRollback(self) -> Any:
        """
        When a txn hook fails, the deleted entry is still there and still found
        by its indexed attributes.
        """
        d = self._assertRolledBack("txn", "delete", lambda: self.backend.delete(
            _op(), self.ndn("uid=bob,ou=people,dc=example,dc=com"), self.hooks),
            lambda: self.search("dc=example,dc=com", Scope.SUB, "(uid=bob)"))
        return d.addCallback(self.assertEqual, ["uid=bob,ou=people,dc=example,dc=com"])

    def test_modify(self) -> Any:
        """
        A modify applies the changes, returns the new entry, and the indexes
        follow: the entry is found by its new value and not by its old one.
        """
        ndn = self.ndn("uid=alice,ou=people,dc=example,dc=com")
        d = self.backend.modify(_op(), ndn, [
            Modification("replace", "mail", (b"ALICE@corp.example",)),
            Modification("add", "description", (b"new",)),
        ], self.hooks)
        d.addCallback(lambda e: self.assertEqual(e.get("mail"), (b"ALICE@corp.example",)))
        d.addCallback(lambda _: self.search(self.suffixText, Scope.SUB, "(mail=alice@corp.example)"))
        d.addCallback(self.assertEqual, ["uid=alice,ou=people,dc=example,dc=com"])
        d.addCallback(lambda _: self.search(self.suffixText, Scope.SUB, "(mail=alice@example.com)"))
        d.addCallback(self.assertEqual, [])
        d.addCallback(lambda _: self.assertEqual([c[:2] for c in self.hooks.calls],
                                                 [("check", "modify"), ("txn", "modify")]))
        return d

    def test_modifyRollback(self) -> Any:
        """
        When a check hook fails, the entry keeps its old values.
        """
        ndn = self.ndn("uid=alice,ou=people,dc=example,dc=com")
        d = self._assertRolledBack("check", "modify", lambda: self.backend.modify(
            _op(), ndn, [Modification("replace", "mail", (b"x@y",))], self.hooks),
            lambda: self.backend.get(_op(), ndn))
        return d.addCallback(lambda e: self.assertEqual(e.get("mail"), (b"alice@example.com",)))

    def test_renameSubtree(self) -> Any:
        """
        Renaming an entry with children moves the whole subtree: the children
        are found under the new name and not under the old one.
        """
        ndn = self.ndn("ou=people,dc=example,dc=com")
        d = self.backend.rename(_op(), ndn, DN.parse("ou=staff,dc=example,dc=com"), True,
                                self.hooks)
        d.addCallback(lambda e: self.assertEqual(e.get("ou"), (b"staff",)))
        d.addCallback(lambda _: self.search("ou=staff,dc=example,dc=com", Scope.SUB, "(uid=*)"))
        d.addCallback(lambda found: self.assertEqual(sorted(found), [
            "uid=alice,ou=staff,dc=example,dc=com", "uid=bob,ou=staff,dc=example,dc=com"]))
        d.addCallback(lambda _: self.backend.get(_op(), self.ndn(
            "uid=alice,ou=people,dc=example,dc=com")))
        return d.addCallbacks(self.fail, lambda f: f.trap(NoSuchObject))

    def test_renameNewSuperior(self) -> Any:
        """
        Moving an entry under a new superior keeps or removes the old RDN
        value as asked, and refuses a missing superior or an existing target.
        """
        ndn = self.ndn("uid=bob,ou=people,dc=example,dc=com")
        d = self.backend.rename(_op(), ndn, DN.parse("uid=robert,ou=groups,dc=example,dc=com"),
                                False, self.hooks)
        d.addCallback(lambda e: self.assertEqual(sorted(e.get("uid")), [b"bob", b"robert"]))
        d.addCallback(lambda _: self.backend.rename(
            _op(), self.ndn("uid=alice,ou=people,dc=example,dc=com"),
            DN.parse("uid=alice,ou=nowhere,dc=example,dc=com"), True, self.hooks))
        d.addCallbacks(self.fail, lambda f: f.trap(NoSuchObject))
        d.addCallback(lambda _: self.backend.rename(
            _op(), self.ndn("uid=alice,ou=people,dc=example,dc=com"),
            DN.parse("uid=robert,ou=groups,dc=example,dc=com"), True, self.hooks))
        return d.addCallbacks(self.fail, lambda f: f.trap(ldaperrors.LDAPEntryAlreadyExists))

    def test_renameModifications(self) -> Any:
        """
        The server's own modifications given with a rename are applied to
        the renamed entry.
        """
        ndn = self.ndn("uid=bob,ou=people,dc=example,dc=com")
        d = self.backend.rename(_op(), ndn, DN.parse("uid=rob,ou=people,dc=example,dc=com"), True,
                                self.hooks, [Modification("replace", "description", (b"moved",))])
        d.addCallback(lambda e: self.assertEqual(e.get("description"), (b"moved",)))
        d.addCallback(lambda _: self.backend.get(_op(), self.ndn(
            "uid=rob,ou=people,dc=example,dc=com")))
        return d.addCallback(lambda e: self.assertEqual(
            (e.get("uid"), e.get("description")), ((b"rob",), (b"moved",))))

    def test_renameRollback(self) -> Any:
        """
        When a txn hook fails, a renamed subtree is back under its old name.
        """
        d = self._assertRolledBack("txn", "rename", lambda: self.backend.rename(
            _op(), self.ndn("ou=people,dc=example,dc=com"),
            DN.parse("ou=staff,dc=example,dc=com"), True, self.hooks),
            lambda: self.search(self.suffixText, Scope.SUB, "(uid=*)"))
        return d.addCallback(lambda found: self.assertEqual(sorted(found), [
            "uid=alice,ou=people,dc=example,dc=com", "uid=bob,ou=people,dc=example,dc=com"]))

    # The changelog, for backends that keep one

    def _changelog(self) -> Any:
        """
        @return: the backend, verified to provide L{IChangelog}.
        @raise twisted.trial.unittest.SkipTest: for a backend that keeps no changelog.
        """
        from twisted.trial.unittest import SkipTest

        if not IChangelog.providedBy(self.backend):
            raise SkipTest(f"{type(self.backend).__name__} keeps no changelog")
        verifyObject(IChangelog, self.backend)
        return self.backend

    def changeRecord(self, n: int, minute: int = 0) -> Any:
        """
        @param n: tells the record from others (its target and CSN).
        @param minute: the minute of its time, on 2026-01-01 UTC.
        @return: a L{ldapd.changes.ChangeRecord} of a modify, not yet numbered.
        """
        when = datetime(2026, 1, 1, 0, minute, 0, n, tzinfo=timezone.utc)
        return ChangeRecord(0, formatCSN(when), when, MODIFY, f"uid=u{n},{self.suffixText}",
                            f"00000000-0000-0000-0000-{n:012d}".encode(),
                            b"replace: description\ndescription: x\n-\n")

    def appendChanges(self, records: list[Any], fail: bool = False) -> Any:
        """
        Append records in the transaction of one modify.

        @param fail: make a later txn hook fail, so that the write rolls back.
        @return: a Deferred firing with the numbers they got (failing with
            unwillingToPerform if C{fail}).
        """
        numbers: list[int] = []

        def append(operation: str, txn: Any, args: Any) -> None:
            verifyObject(IChangelogTransaction, txn)
            numbers.extend(txn.appendChange(r) for r in records)

        self.hooks.onTxn = append
        if fail:
            self.hooks.failOn.add(("txn", "modify"))
        d = self.backend.modify(_op(), self.ndn("uid=bob,ou=people,dc=example,dc=com"),
                                [Modification("replace", "description", (b"x",))], self.hooks)
        return d.addCallback(lambda _: numbers)

    def test_changelogAppend(self) -> Any:
        """
        Appended changes are read back in number order, numbers increasing,
        with all their fields; C{after} and C{limit} select a window.
        """
        backend = self._changelog()
        records = [self.changeRecord(n) for n in range(1, 4)]
        renamed = self.changeRecord(4)
        renamed = dataclasses.replace(renamed, kind=RENAME, changes=b"", newRDN="uid=v4",
                                      deleteOldRDN=True, newSuperior="ou=groups,dc=example,dc=com")
        from twisted.internet import defer

        async def check() -> None:
            numbers = await self.appendChanges(records + [renamed])
            self.assertEqual(numbers, sorted(set(numbers)))
            self.assertEqual(await backend.changes(0, 10), [
                dataclasses.replace(r, number=n)
                for r, n in zip(records + [renamed], numbers, strict=True)])
            found = await backend.changes(numbers[0], 2)
            self.assertEqual([r.number for r in found], numbers[1:3])
            self.assertEqual(await backend.changes(numbers[-1], 10), [])
            later = await self.appendChanges([self.changeRecord(5)])
            self.assertGreater(later[0], numbers[-1])

        return defer.Deferred.fromCoroutine(check())

    def test_changelogBounds(self) -> Any:
        """
        C{changeBounds} gives C{(None, None)} for an empty changelog, then
        the first and the last record.
        """
        backend = self._changelog()
        d = backend.changeBounds()
        d.addCallback(self.assertEqual, (None, None))
        d.addCallback(lambda _: self.appendChanges([self.changeRecord(n) for n in range(1, 4)]))
        d.addCallback(lambda _: backend.changeBounds())
        return d.addCallback(lambda bounds: self.assertEqual(
            [r.targetDN.split(",")[0] for r in bounds], ["uid=u1", "uid=u3"]))

    def test_changelogRollback(self) -> Any:
        """
        A change appended by a write that rolls back is not kept.
        """
        backend = self._changelog()
        d = self.appendChanges([self.changeRecord(1)], fail=True)
        d.addCallbacks(self.fail, lambda f: f.trap(ldaperrors.LDAPUnwillingToPerform))
        d.addCallback(lambda _: backend.changes(0, 10))
        return d.addCallback(self.assertEqual, [])

    def test_changelogTrimByCount(self) -> Any:
        """
        Trimming to C{keep} records removes the oldest; trimming to none
        still keeps the newest.
        """
        backend = self._changelog()
        d = self.appendChanges([self.changeRecord(n) for n in range(1, 6)])
        d.addCallback(lambda _: backend.trimChanges(None, 2))
        d.addCallback(self.assertEqual, 3)
        d.addCallback(lambda _: backend.changes(0, 10))
        d.addCallback(lambda found: self.assertEqual(
            [r.targetDN.split(",")[0] for r in found], ["uid=u4", "uid=u5"]))
        d.addCallback(lambda _: backend.trimChanges(None, 0))
        d.addCallback(self.assertEqual, 1)
        d.addCallback(lambda _: backend.changeBounds())
        return d.addCallback(lambda bounds: self.assertEqual(
            [r.targetDN.split(",")[0] for r in bounds], ["uid=u5", "uid=u5"]))

    def test_changelogTrimByTime(self) -> Any:
        """
        Trimming by time removes the records made before it, but never the newest.
        """
        backend = self._changelog()
        d = self.appendChanges([self.changeRecord(n, minute=n) for n in range(1, 5)])
        d.addCallback(lambda _: backend.trimChanges(
            datetime(2026, 1, 1, 0, 3, tzinfo=timezone.utc), 100))
        d.addCallback(self.assertEqual, 2)
        d.addCallback(lambda _: backend.changes(0, 10))
        d.addCallback(lambda found: self.assertEqual(
            [r.targetDN.split(",")[0] for r in found], ["uid=u3", "uid=u4"]))
        d.addCallback(lambda _: backend.trimChanges(datetime(2100, 1, 1, tzinfo=timezone.utc), None))
        d.addCallback(self.assertEqual, 1)
        d.addCallback(lambda _: backend.changes(0, 10))
        return d.addCallback(lambda found: self.assertEqual(
            [r.targetDN.split(",")[0] for r in found], ["uid=u4"]))

    # Write batches

    def _batches(self) -> Any:
        """
        @return: the backend, if it offers write batches.
        @raise twisted.trial.unittest.SkipTest: for a backend that does not.
        """
        from twisted.trial.unittest import SkipTest

        if not IWriteBatches.providedBy(self.backend):
            raise SkipTest(f"{type(self.backend).__name__} offers no write batches")
        return self.backend

    async def _test_batchCommit(self) -> None:
        batch = self._batches().batch()
        verifyObject(IWriteBatch, batch)
        people = "ou=people,dc=example,dc=com"
        carol = self.person("carol")
        await batch.add(_op(), carol, self.hooks)
        self.assertEqual(str((await batch.get(_op(), carol.ndn)).dn), str(carol.dn))
        alice = self.ndn(f"uid=alice,{people}")
        await batch.modify(_op(), alice, [Modification("replace", "mail", (b"a@corp.example",))],
                           self.hooks)
        await batch.delete(_op(), self.ndn(f"uid=bob,{people}"), self.hooks)
        await batch.rename(_op(), carol.ndn, DN.parse(f"uid=carol2,{people}"), True, self.hooks)
        self.assertEqual(await self.search(self.suffixText, Scope.SUB, "(|(uid=carol*)(uid=bob)"
                                           "(mail=a@corp.example))", batch),
                         [f"uid=alice,{people}", f"uid=carol2,{people}"])
        await batch.commit()
        self.assertEqual(await self.search(people, Scope.ONE),
                         [f"uid=alice,{people}", f"uid=carol2,{people}"])
        self.assertEqual((await self.backend.get(_op(), alice)).get("mail"), (b"a@corp.example",))
        self.assertEqual([c[:2] for c in self.hooks.calls], [
            (stage, operation) for operation in ("add", "modify", "delete", "rename")
            for stage in ("check", "txn")])

    def test_batchCommit(self) -> Any:
        """
        A batch's writes (add, modify, delete, rename) are seen by its own
        reads (get, and searches through the indexes), call the hooks as
        the backend's, and are all there once it commits.
        """
        from twisted.internet import defer

        return defer.Deferred.fromCoroutine(self._test_batchCommit())

    async def _test_batchFailure(self) -> None:
        batch = self._batches().batch()
        people = "ou=people,dc=example,dc=com"
        await batch.add(_op(), self.person("carol"), self.hooks)
        failing = RecordingHooks()
        failing.onTxn = lambda op, txn, args: txn.put(self.person("extra"))
        failing.failOn.add(("txn", "add"))
        writes: list[Callable[[], Any]] = [
            lambda: batch.add(_op(), self.person("dave"), failing),
            lambda: batch.add(_op(), self.person("carol"), self.hooks),
            lambda: batch.add(_op(), self.person("x", f"ou=gone,{people}"), self.hooks),
        ]
        for write in writes:
            try:
                await write()
            except (ldaperrors.LDAPException, NoSuchObject):
                pass
            else:
                self.fail("the write succeeded")
        await batch.modify(_op(), self.ndn(f"uid=bob,{people}"),
                           [Modification("replace", "sn", (b"Later",))], self.hooks)
        await batch.commit()
        self.assertEqual(await self.search(people, Scope.ONE, "(|(uid=carol)(uid=dave)"
                                           "(uid=extra)(sn=Later))"),
                         [f"uid=bob,{people}", f"uid=carol,{people}"])

    def test_batchFailure(self) -> Any:
        """
        A write of a batch that fails (in a hook, or for an entry that
        exists, or a missing parent) is undone alone, with what its hooks
        wrote; the batch goes on, and commits the others.
        """
        from twisted.internet import defer

        return defer.Deferred.fromCoroutine(self._test_batchFailure())

    async def _test_batchRollback(self) -> None:
        batch = self._batches().batch()
        people = "ou=people,dc=example,dc=com"
        await batch.add(_op(), self.person("carol"), self.hooks)
        await batch.delete(_op(), self.ndn(f"uid=bob,{people}"), self.hooks)
        await batch.rollback()
        self.assertEqual(await self.search(people, Scope.ONE),
                         [f"uid=alice,{people}", f"uid=bob,{people}"])
        # The backend takes writes, and batches, again.
        await self.backend.add(_op(), self.person("dave"), self.hooks)
        batch = self.backend.batch()
        await batch.add(_op(), self.person("erin"), self.hooks)
        await batch.commit()
        self.assertEqual(len(await self.search(people, Scope.ONE)), 4)

    def test_batchRollback(self) -> Any:
        """
        A batch rolled back leaves nothing of its writes; the backend then
        takes writes and batches as before.
        """
        from twisted.internet import defer

        return defer.Deferred.fromCoroutine(self._test_batchRollback())

    async def _test_batchFindEqual(self) -> None:
        batch = self._batches().batch()
        people = "ou=people,dc=example,dc=com"
        await batch.add(_op(), self.person("carol", mail="Carol@Example.COM"), self.hooks)
        await batch.delete(_op(), self.ndn(f"uid=bob,{people}"), self.hooks)
        mail = self.schema.attributeType("mail")
        assert mail is not None
        keys = [self.schema.normalizeValue(mail, v) for v in
                (b"ALICE@example.com", b"bob@example.com", b"carol@example.com", b"x@example.com")]
        found = await batch.findEqual(_op(), mail, keys)
        self.assertEqual(sorted(str(e.dn) for e in found),
                         [f"uid=alice,{people}", f"uid=carol,{people}"])
        self.assertEqual(await batch.findEqual(_op(), mail, []), [])
        await batch.rollback()

    def test_batchFindEqual(self) -> Any:
        """
        C{findEqual} reads at once the entries holding any of several
        values (compared by the type's equality rule), each once, as the
        batch's writes left them.
        """
        from twisted.internet import defer

        return defer.Deferred.fromCoroutine(self._test_batchFindEqual())

    async def _test_batchPipeline(self) -> None:
        from twisted.internet import defer

        from ldapd.backends.base import WriteSkipped

        batch = self._batches().batch()
        people = "ou=people,dc=example,dc=com"
        failing = batch.add(_op(), self.person("alice"), self.hooks)
        reached = failing.called
        after = batch.add(_op(), self.person("carol"), self.hooks)
        failure = await defer.DeferredList([failing, after], consumeErrors=True)
        self.assertFalse(failure[0][0])
        failure[0][1].trap(ldaperrors.LDAPEntryAlreadyExists)
        if reached:
            # The failure was there before the next write was called: that
            # write was made.
            self.assertTrue(failure[1][0])
        else:
            self.assertFalse(failure[1][0])
            failure[1][1].trap(WriteSkipped)
        # Once the failure has reached the caller, writes are made again.
        await batch.add(_op(), self.person("dave"), self.hooks)
        await batch.commit()
        expected = [f"uid=alice,{people}", f"uid=bob,{people}", f"uid=dave,{people}"]
        if reached:
            expected.insert(2, f"uid=carol,{people}")
        self.assertEqual(await self.search(people, Scope.ONE), expected)

    def test_batchPipeline(self) -> Any:
        """
        A batch's writes may be called without awaiting each: a write
        called before an earlier one's failure reached the caller is not
        made (it fails with L{WriteSkipped}); those called after are.
        """
        from twisted.internet import defer

        return defer.Deferred.fromCoroutine(self._test_batchPipeline())

    def test_authenticate(self) -> Any:
        """
        C{authenticate} accepts the right password (hashed or cleartext) and
        fails with invalidCredentials for a wrong one or a missing entry.
        """
        alice = self.ndn("uid=alice,ou=people,dc=example,dc=com")
        d = self.backend.authenticate(_op(), alice, b"alice-secret")
        d.addCallback(lambda e: self.assertEqual(e.ndn, alice))
        d.addCallback(lambda _: self.backend.authenticate(
            _op(), self.ndn("uid=bob,ou=people,dc=example,dc=com"), b"bob-secret"))
        for ndn, password in [(alice, b"wrong"), (self.ndn("uid=zed,dc=example,dc=com"), b"x")]:
            d.addCallback(lambda _, n=ndn, p=password: self.backend.authenticate(_op(), n, p))
            d.addCallbacks(self.fail, lambda f: f.trap(ldaperrors.LDAPInvalidCredentials))
        return d


def _clientDecoder() -> Any:
    """
    @return: ldaptor's decoder of what a server sends, as its client uses it.
    """
    from ldaptor.protocols import pureber, pureldap

    return pureldap.LDAPBERDecoderContext_TopLevel(
        inherit=pureldap.LDAPBERDecoderContext_LDAPMessage(
            fallback=pureldap.LDAPBERDecoderContext(fallback=pureber.BERDecoderContext()),
            inherit=pureldap.LDAPBERDecoderContext(fallback=pureber.BERDecoderContext()),
        )
    )


def decodeResponse(data: bytes) -> Any:
    """
    Decode one LDAPMessage as a client would.

    @param data: exactly one encoded message.
    @return: ldaptor's C{pureldap.LDAPMessage}; its C{value} is the response.
    """
    from ldaptor.protocols import pureber

    message, used = pureber.berDecodeObject(_clientDecoder(), data)
    if used != len(data):
        raise ValueError("trailing bytes after the message")
    return message


def decodeResponses(data: bytes) -> list[Any]:
    """
    Decode what a server wrote as a client would.

    @param data: whole encoded messages, one after the other.
    @return: ldaptor's C{pureldap.LDAPMessage}s, in order.
    """
    from ldaptor.protocols import pureber

    decoder = _clientDecoder()
    messages = []
    while data:
        message, used = pureber.berDecodeObject(decoder, data)
        messages.append(message)
        data = data[used:]
    return messages


#: OpenLDAP's server, for tests that compare with it or proxy to it.
SLAPD = Path("/usr/sbin/slapd")


def longFormLengths(data: bytes) -> bytes:
    """
    Re-encode BER elements with every length, at every depth, in the
    four-octet long form: legal BER (X.690 §8.1.3.5) that some encoders
    write and a server must read as the minimal form.

    @param data: one or more BER elements.
    @return: the same elements, lengths in four octets.
    """
    out = []
    pos = 0
    while pos < len(data):
        identifier = data[pos]
        found = lengthAt(data, pos + 1)
        if found is None:
            raise ValueError("truncated BER element")
        length, start = found
        content = data[start : start + length]
        if identifier & 0x20:
            content = longFormLengths(content)
        out.append(bytes((identifier, 0x84)) + len(content).to_bytes(4, "big") + content)
        pos = start + length
    return b"".join(out)


def installDistribution(testCase: Any, name: str, entryPoints: str,
                        modules: dict[str, str] | None = None) -> None:
    """
    Install a distribution, as pip would, into a temporary folder on
    C{sys.path} for one test: its metadata, its entry points (registering
    a backend, plugin, control or extended operation by name) and its
    modules. The test's cleanup removes it all.

    @param testCase: the test (its C{addCleanup} is used).
    @param name: the distribution's name.
    @param entryPoints: the text of its C{entry_points.txt}.
    @param modules: the source of its modules, by module name.
    """
    folder = Path(tempfile.mkdtemp(prefix="ldapd-dist-"))
    testCase.addCleanup(shutil.rmtree, folder)
    info = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entryPoints)
    for module, source in (modules or {}).items():
        (folder / f"{module}.py").write_text(source)
        testCase.addCleanup(sys.modules.pop, module, None)
    sys.path.insert(0, str(folder))
    testCase.addCleanup(sys.path.remove, str(folder))


def decodedRequest(request: Any, controls: Any = None, messageId: int = 1) -> requests.Message:
    """
    A request as the server receives it: encoded by ldaptor, as a client
    sends it, then framed and decoded.

    @param request: an ldaptor request.
    @param controls: its controls, as ldaptor's C{LDAPMessage} takes them.
    @param messageId: its message ID.
    @return: the decoded message.
    @raise ValueError: if the server would refuse to decode it.
    """
    from ldaptor.protocols import pureldap

    from ldapd._framing import Framer

    framer = Framer()
    framer.feed(pureldap.LDAPMessage(request, controls=controls, id=messageId).toWire())
    message = framer.next()
    if not isinstance(message, requests.Message):
        raise ValueError(f"the request is refused: {message}")
    return message


def executeRequest(directory: Any, connection: Connection, request: Any, messageId: int,
                   controls: Any = None) -> tuple[list[Any], Any]:
    """
    Have a directory execute a request as it arrives from the wire: encoded,
    framed and decoded as the protocol would hand it over.

    @param directory: the L{ldapd.directory.Directory}.
    @param connection: the client's L{Connection}.
    @param request: an ldaptor request.
    @param messageId: its message ID.
    @param controls: its controls, as ldaptor's C{LDAPMessage} takes them.
    @return: the list the decoded responses are appended to as they are
        sent, and the Deferred of the execution.
    @raise ValueError: if the request is one the server could not decode.
    """
    from ldapd._codec import encodeMessage

    responses: list[Any] = []
    message = decodedRequest(request, controls, messageId)
    op = Operation(connection, message.messageId, message.request, message.controls)

    def reply(pdu: bytes, responseControls: Any = ()) -> None:
        responses.append(decodeResponse(encodeMessage(op.messageId, pdu, responseControls)))

    return responses, directory.execute(op, reply)


class SlapdProcess(_ChildServer):
    """
    A private OpenLDAP slapd: its own configuration and back-mdb database in a
    temporary folder, the standard schemas (core, cosine, inetOrgPerson,
    NIS), listening on a free loopback port, stopped by its PID.

    @ivar suffix: the database's suffix.
    @ivar rootDN: the database's root DN.
    @ivar rootPassword: its password.
    """

    name = "slapd"

    def __init__(
        self,
        suffix: str = "dc=example,dc=com",
        rootDN: str | None = None,
        rootPassword: str = "secret",
        schemaFolder: Path = Path("/etc/ldap/schema"),
        globalConfig: str = "",
        modules: Sequence[str] = (),
        databaseConfig: str = "",
    ) -> None:
        """
        @param suffix: the database's suffix.
        @param rootDN: the root DN; C{cn=admin,<suffix>} by default.
        @param rootPassword: the root DN's password.
        @param schemaFolder: where the standard schema files are.
        @param globalConfig: more slapd.conf global directives (TLS
            certificates, say), one a line.
        @param modules: more modules to load (C{syncprov}, say).
        @param databaseConfig: more directives of the database (indexes,
            overlays, C{syncrepl}), one a line.
        """
        self.port = freePort()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.suffix = suffix
        self.rootDN = rootDN or f"cn=admin,{suffix}"
        self.rootPassword = rootPassword
        self.folder = Path(tempfile.mkdtemp(prefix="slapd-test-"))
        (self.folder / "db").mkdir()
        schemas = "".join(
            f"include {schemaFolder / name}\n"
            for name in ("core.schema", "cosine.schema", "inetorgperson.schema", "nis.schema")
        )
        self.configPath = self.folder / "slapd.conf"
        self.configPath.write_text(
            schemas
            + globalConfig
            + f"pidfile {self.folder / 'slapd.pid'}\n"
            + "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
            + "".join(f"moduleload {name}\n" for name in modules)
            + "database mdb\nmaxsize 104857600\n"
            + f'suffix "{suffix}"\nrootdn "{self.rootDN}"\nrootpw {rootPassword}\n'
            + f"directory {self.folder / 'db'}\n"
            + databaseConfig
        )
        self.logPath = self.folder / "slapd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        """
        Start slapd in the foreground (so that its PID is the child's) and
        wait until it accepts connections.

        @raise RuntimeError: with its log, if it exits or does not listen in time.
        """
        self._launch([str(SLAPD), "-d", "0", "-f", str(self.configPath), "-h", self.url + "/"],
                     timeout)

    def load(self, ldif: Path, quick: bool = True) -> None:
        """
        Load an LDIF file into the (stopped) database with slapadd.

        @param ldif: the file.
        @param quick: whether slapadd skips its consistency checks (C{-q}).
        @raise twisted.trial.unittest.SkipTest: if slapadd may not read it
            (AppArmor confines Debian's slapd to some folders).
        @raise RuntimeError: with slapadd's message, if it fails otherwise.
        """
        from twisted.trial.unittest import SkipTest

        loaded = subprocess.run(
            [str(SLAPD.parent / "slapadd"), *(["-q"] if quick else []), "-f", str(self.configPath),
             "-l", str(ldif)],
            capture_output=True, check=False,
        )
        if loaded.returncode != 0:
            self.stop()
            message = loaded.stderr.decode(errors="replace")
            if "ermission denied" in message:
                raise SkipTest(f"slapadd may not read {ldif} (AppArmor?): {message}")
            raise RuntimeError(f"slapadd failed ({loaded.returncode}):\n{message}")

    def dump(self) -> bytes:
        """
        Read the database with slapcat (which back-mdb allows while slapd
        runs).

        @return: slapcat's LDIF: every entry with its operational
            attributes, in the order of entry ids.
        @raise RuntimeError: with slapcat's message, if it fails.
        """
        dumped = subprocess.run(
            [str(SLAPD.parent / "slapcat"), "-f", str(self.configPath)],
            capture_output=True, check=False,
        )
        if dumped.returncode != 0:
            raise RuntimeError(f"slapcat failed ({dumped.returncode}):\n"
                               + dumped.stderr.decode(errors="replace"))
        return dumped.stdout

    def loadExample(self) -> None:
        """
        Load the example organisation (L{EXAMPLE_LDIF}) into the (stopped)
        database, without the comments and version line slapadd refuses.
        """
        data = self.folder / "example.ldif"
        data.write_text("\n".join(
            line for line in EXAMPLE_LDIF.read_text().splitlines()
            if not line.startswith(("#", "version:"))
        ).strip() + "\n")
        self.load(data)

    def stop(self) -> None:
        """
        Stop slapd by its PID (SIGTERM, then SIGKILL after 10 seconds) and
        remove its folder.
        """
        self._terminate()
        shutil.rmtree(self.folder, ignore_errors=True)


class SlapdTestsMixin(ServerTestsMixin):
    """
    One private slapd holding the example organisation for all the tests of
    a class, as L{ServerTestsMixin} runs one ldapd (its C{server}): the same
    checks mixed into both show that ldapd's answers are slapd's.

    @cvar slapdDatabaseConfig: more directives of its database (C{access
        to ...} rules, say), one a line.
    """

    slapdDatabaseConfig = ""

    @classmethod
    def startServer(cls) -> Any:
        """
        @return: the class's slapd, started with the example data.
        @raise twisted.trial.unittest.SkipTest: if slapd is not installed.
        """
        from twisted.trial.unittest import SkipTest

        if not SLAPD.is_file():
            raise SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
        slapd = SlapdProcess(databaseConfig=cls.slapdDatabaseConfig)
        slapd.loadExample()
        slapd.start()
        return slapd

    @property
    def url(self) -> str:
        """
        The slapd's C{ldap://} URL.
        """
        assert self.server is not None
        return self.server.url


#: The environment variable naming a PostgreSQL database tests may use
#: (e.g. C{postgresql+psycopg://postgres@127.0.0.1:5432/test}).
POSTGRESQL_ENV = "LDAPD_TEST_POSTGRESQL_URL"


def postgresqlURL() -> str:
    """
    @return: the PostgreSQL URL tests may use, from L{POSTGRESQL_ENV}.
    @raise twisted.trial.unittest.SkipTest: saying so, when it is not set.
    """
    from twisted.trial.unittest import SkipTest

    url = os.environ.get(POSTGRESQL_ENV)
    if not url:
        raise SkipTest(f"{POSTGRESQL_ENV} is not set: no PostgreSQL server to test against")
    return url


def privatePostgreSQLSchema(testCase: Any) -> str:
    """
    Create a PostgreSQL schema of its own for one test, dropped (with all it
    holds) when the test ends, so that tests running at once never meet.

    @param testCase: the trial test case, for its cleanup.
    @return: a database URL whose connections use only that schema.
    @raise twisted.trial.unittest.SkipTest: without L{POSTGRESQL_ENV}.
    """
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    base = postgresqlURL()
    name = f"ldapd_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        engine.dispose()

    testCase.addCleanup(drop)
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{name}"


class DirectoryTestsMixin(_TrialTestCase):
    """
    A L{ldapd.directory.Directory} serving the example organisation (from
    L{EXAMPLE_LDIF}) through the plugins of C{makePlugins}, on the real
    reactor, and a connection bound as its root DN whose requests go
    through the Directory as they arrive from the wire (so that C{post_*}
    hooks run). Mix it into a C{twisted.trial.unittest.TestCase}; tests
    return Deferreds (or are C{async}).

    @cvar backend: C{"memory"}, C{"sqlite"} (the sql backend on a SQLite
        file in a temporary folder) or C{"postgresql"} (a private schema of
        the L{POSTGRESQL_ENV} database; skipped without it).
    @cvar suffix: the suffix of the example organisation.
    @cvar rootDN: its root DN.
    """

    backend = "memory"
    suffix = "dc=example,dc=com"
    rootDN = "cn=admin,dc=example,dc=com"

    def makePlugins(self, schema: Schema) -> list[Any]:
        """
        @param schema: the directory's schema.
        @return: the plugins of the directory, in order.
        """
        return []

    def directoryOptions(self) -> dict[str, Any]:
        """
        @return: further keyword arguments of the
            L{Directory<ldapd.directory.Directory>} (C{limits},
            C{authzPolicy}, ...); none by default.
        """
        return {}

    def makeBackend(self, suffix: DN, schema: Schema) -> Any:
        """
        @param suffix: the normalised suffix.
        @return: a backend of the kind C{backend} names.
        """
        from ldapd.backends.memory import MemoryBackend
        from ldapd.backends.sql import SQLBackend

        if self.backend == "memory":
            return MemoryBackend(suffix, schema)
        if self.backend == "sqlite":
            folder = tempfile.mkdtemp(prefix="ldapd-sql-")
            self.addCleanup(shutil.rmtree, folder, True)
            return SQLBackend(suffix, schema, f"sqlite:///{folder}/test.db")
        return SQLBackend(suffix, schema, privatePostgreSQLSchema(self))

    def setUp(self) -> Any:
        """
        Build and open the directory.

        @return: a Deferred that fires when it is open.
        """
        from ldapd.directory import Database, Directory

        self.schema = Schema.standard()
        suffix = DN.parse(self.suffix)
        self.directory = Directory(
            [Database(suffix, self.makeBackend(self.schema.normalizeDN(suffix), self.schema),
                      DN.parse(self.rootDN), b"secret", EXAMPLE_LDIF)],
            self.makePlugins(self.schema), schema=self.schema, **self.directoryOptions(),
        )
        from twisted.internet import reactor

        self.connection = Connection("test", reactor)
        self.connection.identity = Identity(DN.parse(self.rootDN), self.ndn(self.rootDN),
                                            isRoot=True)
        self._nextId = 1
        self.addCleanup(self.directory.close)
        return self.directory.open()

    def ndn(self, text: str) -> DN:
        """
        @return: the normalised form of the DN C{text}.
        """
        return self.schema.normalizeDN(DN.parse(text))

    async def request(self, request: Any, controls: Any = None) -> list[Any]:
        """
        Send a request on the test connection.

        @param request: an ldaptor request.
        @param controls: its controls, as ldaptor's C{LDAPMessage} takes them.
        @return: the decoded responses (ldaptor C{LDAPMessage}s).
        """
        responses, done = executeRequest(self.directory, self.connection, request, self._nextId,
                                         controls)
        self._nextId += 1
        await done
        return responses

    async def resultOf(self, request: Any) -> int:
        """
        @return: the result code of a request sent on the test connection.
        """
        return (await self.request(request))[-1].value.resultCode  # type: ignore[no-any-return]

    async def add(self, dn: str, attributes: Sequence[tuple[str, Sequence[bytes]]]) -> int:
        """
        @return: the result code of an Add of C{dn} with C{attributes}.
        """
        from ldaptor.protocols import pureldap

        return await self.resultOf(pureldap.LDAPAddRequest(entry=dn, attributes=[
            (pureldap.LDAPAttributeDescription(name),
             pureber.BERSet([pureldap.LDAPAttributeValue(v) for v in values]))
            for name, values in attributes]))

    async def modify(self, dn: str, *changes: tuple[str, str, Sequence[bytes]]) -> int:
        """
        @param changes: C{(operation, attribute, values)}, the operation
            C{"add"}, C{"delete"} or C{"replace"}.
        @return: the result code of a Modify of C{dn}.
        """
        from ldaptor.protocols import pureldap

        codes = {"add": 0, "delete": 1, "replace": 2}
        return await self.resultOf(pureldap.LDAPModifyRequest(object=dn, modification=[
            pureber.BERSequence([pureber.BEREnumerated(codes[operation]), pureber.BERSequence([
                pureldap.LDAPAttributeDescription(name),
                pureber.BERSet([pureldap.LDAPAttributeValue(v) for v in values])])])
            for operation, name, values in changes]))

    async def delete(self, dn: str) -> int:
        """
        @return: the result code of a Delete of C{dn}.
        """
        from ldaptor.protocols import pureldap

        return await self.resultOf(pureldap.LDAPDelRequest(entry=dn))

    async def rename(self, dn: str, newRDN: str, newSuperior: str | None = None) -> int:
        """
        @return: the result code of a ModifyDN of C{dn} (deleting the old RDN).
        """
        from ldaptor.protocols import pureldap

        return await self.resultOf(pureldap.LDAPModifyDNRequest(
            entry=dn, newrdn=newRDN, deleteoldrdn=True, newSuperior=newSuperior))

    async def read(self, dn: str) -> Entry | None:
        """
        @return: the entry of C{dn} as stored, or C{None}.
        """
        try:
            entry: Entry = await self.directory.get(self.directory.internalOperation(),
                                                    self.ndn(dn))
        except NoSuchObject:
            return None
        return entry

    async def values(self, dn: str, attribute: str) -> set[DN]:
        """
        @return: the values of a DN-valued attribute of C{dn}, normalised.
        """
        entry = await self.read(dn)
        assert entry is not None, dn
        return {self.ndn(v.decode("utf-8")) for v in entry.get(attribute)}
