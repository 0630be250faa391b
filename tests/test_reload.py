"""
Tests of reloading the configuration: what needs a restart
(L{ldapd.config.restartOnlyChange}), building a configuration that replaces
a running one (L{ldapd.config.buildConfig}'s C{previous}), the running
server's reload (L{ldapd.tap.LDAPService.reload}) and C{ldapd-admin reload}.
"""

from __future__ import annotations

import io
import os
import socket
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from ldaptor.protocols import pureldap
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from ldapd import admin
from ldapd.config import buildConfig, loadConfig, restartOnlyChange
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.operation import Connection
from ldapd.registry import ConfigError
from ldapd.tap import LDAPService
from ldapd.testing import EXAMPLE_LDIF, executeRequest
from ldapd.workers import CannotListen, rebind

SUFFIX = "dc=example,dc=com"

CONFIG = """
[server]
listen = ["tcp:0:interface=127.0.0.1"]
size_limit = {size_limit}
{server}

[[database]]
suffix = "dc=example,dc=com"
root_dn = "cn=admin,dc=example,dc=com"
root_password = "secret"
seed_ldif = "%s"

[[plugin]]
name = "test_reload:GATE"
hold = {hold}
""" % EXAMPLE_LDIF


def configText(size_limit: int = 500, hold: bool = False, server: str = "") -> str:
    """
    @return: L{CONFIG} with these settings.
    """
    return CONFIG.format(size_limit=size_limit, hold=str(hold).lower(), server=server)


class Gate:
    """
    A plugin whose C{pre_search} hook, when C{hold = true}, waits until the
    test releases it: a search under way while the server reloads.

    @cvar waiting: the Deferreds of the searches held, for the test to fire.
    """

    name = "gate"
    waiting: list[defer.Deferred[None]] = []

    def __init__(self, hold: bool) -> None:
        self.hold = hold

    def pre_search(self, op: Any, base: Any) -> defer.Deferred[None] | None:
        if not self.hold:
            return None
        d: defer.Deferred[None] = defer.Deferred()
        Gate.waiting.append(d)
        return d


class _GateFactory:
    """
    Builds L{Gate} from C{[[plugin]] name = "test_reload:GATE"} with C{hold}.
    """

    name = "gate"
    description = "Holds searches (tests)."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: Any) -> Gate:
        from ldapd.registry import ConfigTable

        return Gate(ConfigTable(table, context, {"hold"}).boolean("hold", False))


GATE = _GateFactory()

# The configuration names the plugin "test_reload:GATE": this module, under
# whatever name the test runner imported it.
sys.modules.setdefault("test_reload", sys.modules[__name__])


class RestartOnlyChangeTests(unittest.SynchronousTestCase):
    """
    L{restartOnlyChange} names the first change a running server cannot
    apply, and nothing for those it can.
    """

    base: dict[str, Any] = {
        "server": {"listen": ["tcp:1389"], "size_limit": 10},
        "database": [{"suffix": SUFFIX, "backend": "sql", "url": "sqlite:///a.db",
                      "root_dn": "cn=admin," + SUFFIX, "root_password": "x"}],
        "plugin": [{"name": "acl", "rules": ["to * by * read"]},
                   {"name": "changelog", "sid": 1}],
        "replica": [{"suffix": SUFFIX, "provider": "ldap://a"}],
    }

    def changed(self, section: str, index: int | None, key: str, value: Any) -> dict[str, Any]:
        """
        @return: a copy of L{base} with one key of one table changed
            (removed when C{value} is C{None}).
        """
        new = {k: ([dict(t) for t in v] if isinstance(v, list) else dict(v))
               for k, v in self.base.items()}
        table = new[section] if index is None else new[section][index]
        if value is None:
            del table[key]
        else:
            table[key] = value
        return new

    def test_same(self) -> None:
        """
        The same configuration needs no restart.
        """
        self.assertIsNone(restartOnlyChange(self.base, self.base))

    def test_runtimeChanges(self) -> None:
        """
        Limits, listeners, access rules and a database's root DN and
        password change without a restart, and so does writing out
        C{workers = 1}, the default.
        """
        for new in [
            self.changed("server", None, "size_limit", 2),
            self.changed("server", None, "listen", ["tcp:1389", "tcp:1390"]),
            self.changed("server", None, "workers", 1),
            self.changed("plugin", 0, "rules", ["to * by users read"]),
            self.changed("database", 0, "root_password", "y"),
            self.changed("database", 0, "root_dn", "cn=root," + SUFFIX),
        ]:
            self.assertIsNone(restartOnlyChange(self.base, new), new)

    def test_restartChanges(self) -> None:
        """
        A database's suffix, backend and backend settings, the number of
        workers, a replica's settings and the changelog's are named, with
        the old and new values where there is one.
        """
        cases = [
            (self.changed("database", 0, "suffix", "dc=other"), "database[0].suffix",
             "cannot change without a restart (was 'dc=example,dc=com', now 'dc=other')"),
            (self.changed("database", 0, "backend", "memory"), "database[0].backend", "restart"),
            (self.changed("database", 0, "url", "sqlite:///b.db"), "database[0].url", "restart"),
            (self.changed("database", 0, "indexes", ["cn eq"]), "database[0].indexes",
             "restart"),
            (self.changed("server", None, "workers", 2), "server.workers",
             "(was 1, now 2)"),
            (self.changed("server", None, "schema_files", ["x.schema"]), "server.schema_files",
             "restart"),
            (self.changed("replica", 0, "provider", "ldap://b"), "replica[0]", "restart"),
            (self.changed("plugin", 1, "sid", 2), "plugin[1]", "restart"),
        ]
        for new, key, problem in cases:
            change = restartOnlyChange(self.base, new)
            assert change is not None, key
            self.assertEqual(change[0], key)
            self.assertIn(problem, change[1])

    def test_tablesAddedOrRemoved(self) -> None:
        """
        Adding or removing a database, a replica or the changelog plugin
        needs a restart.
        """
        more = dict(self.base, database=[*self.base["database"], {"suffix": "dc=other"}])
        self.assertEqual(restartOnlyChange(self.base, more)[0], "database")  # type: ignore[index]
        noReplica = dict(self.base, replica=[])
        self.assertEqual(restartOnlyChange(self.base, noReplica)[0],  # type: ignore[index]
                         "replica[0]")
        noChangelog = dict(self.base, plugin=self.base["plugin"][:1])
        self.assertEqual(restartOnlyChange(self.base, noChangelog)[0],  # type: ignore[index]
                         "plugin")
        self.assertEqual(restartOnlyChange(noChangelog, self.base)[0],  # type: ignore[index]
                         "plugin[1]")


class BuildConfigPreviousTests(unittest.SynchronousTestCase):
    """
    L{buildConfig} with C{previous} builds a directory over the running
    one's backends, and changes nothing of it.
    """

    def setUp(self) -> None:
        import tomllib

        self.parse = tomllib.loads
        self.path = Path(self.mktemp())
        self.old = buildConfig(self.parse(configText(size_limit=500)), self.path, reactor)

    def test_keepsBackendsAndState(self) -> None:
        """
        The new directory serves the same backend with the same schema; its
        statistics, CSN generator and change subscribers are the old one's;
        its plugins and limits are new.
        """
        new = buildConfig(self.parse(configText(size_limit=2)), self.path, reactor,
                          previous=self.old)
        oldDirectory, newDirectory = self.old.directory, new.directory
        self.assertIsNot(newDirectory, oldDirectory)
        self.assertIs(newDirectory.configuredDatabases[0].backend,
                      oldDirectory.configuredDatabases[0].backend)
        self.assertIs(newDirectory.schema, oldDirectory.schema)
        self.assertIs(newDirectory.statistics, oldDirectory.statistics)
        self.assertIs(newDirectory.csn, oldDirectory.csn)
        self.assertIs(newDirectory._subscribers, oldDirectory._subscribers)
        self.assertEqual((oldDirectory.limits.sizeLimit, newDirectory.limits.sizeLimit), (500, 2))
        self.assertIsNot(newDirectory.plugins.plugins[-1], oldDirectory.plugins.plugins[-1])

    def test_bindThrottleKept(self) -> None:
        """
        A reload that leaves C{bind_throttle} as it was keeps the throttle
        and its counts; one that changes it starts a new one.
        """
        throttle = "bind_throttle = { per_dn = 5 }\n"
        first = buildConfig(self.parse(configText(server=throttle)), self.path, reactor)
        same = buildConfig(self.parse(configText(size_limit=2, server=throttle)), self.path,
                           reactor, previous=first)
        self.assertIsNotNone(first.directory.bindThrottle)
        self.assertIs(same.directory.bindThrottle, first.directory.bindThrottle)
        other = buildConfig(self.parse(configText(server="bind_throttle = { per_dn = 6 }\n")),
                            self.path, reactor, previous=same)
        self.assertIsNot(other.directory.bindThrottle, first.directory.bindThrottle)
        self.assertEqual(other.directory.bindThrottle.settings.perDN, 6)

    def test_restartChangeRefused(self) -> None:
        """
        A change that needs a restart is a L{ConfigError} naming the file
        and the key.
        """
        data = self.parse(configText().replace(SUFFIX, "dc=example,dc=org"))
        e = self.assertRaises(ConfigError, buildConfig, data, self.path, reactor,
                              previous=self.old)
        self.assertTrue(str(e).startswith(f"{self.path}: database[0].suffix: cannot change "
                                          "without a restart"), str(e))

    def test_passwordLimitsWaitForOpen(self) -> None:
        """
        The password verifier, which every directory of the process shares,
        keeps the running limits until the new directory's plugins start.
        """
        verifier = self.old.directory.passwordVerifier
        before = verifier.limits
        new = buildConfig(
            self.parse(configText(server="password_limits = { bcrypt_cost = 5 }")),
            self.path, reactor, previous=self.old)
        self.assertIs(verifier.limits, before)
        self.successResultOf(new.directory.openPlugins())
        self.addCleanup(lambda: setattr(verifier, "limits", before))
        self.assertEqual(verifier.limits.bcryptCost, 5)


def search(base: str = SUFFIX) -> pureldap.LDAPSearchRequest:
    """
    @return: a subtree search for every entry below C{base}.
    """
    return pureldap.LDAPSearchRequest(
        baseObject=base.encode(), scope=2, filter=pureldap.LDAPFilter_present("objectClass"))


class LDAPServiceReloadTests(unittest.TestCase):
    """
    L{LDAPService.reload} applies a valid configuration at once to the
    operations that start from then on, and nothing of an invalid one.
    """

    def setUp(self) -> None:
        folder = Path(self.mktemp())
        folder.mkdir()
        self.folder = folder
        self.path = folder / "ldapd.toml"
        self.path.write_text(configText())
        self.service = LDAPService(loadConfig(self.path, reactor), reactor)
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.logged: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            text = formatEvent(event)
            if text.startswith("reload:"):
                self.logged.append(text)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        Gate.waiting.clear()
        return self.service.whenServing()

    def run_search(self, base: str = SUFFIX) -> tuple[list[Any], defer.Deferred[None]]:
        """
        Start an anonymous search on the directory the factory serves now.

        @return: the responses as they come, and the search's Deferred.
        """
        return executeRequest(self.service.factory.directory, Connection("test", reactor),
                              search(base), 1)

    async def test_sizeLimit(self) -> None:
        """
        After the file's C{size_limit} is changed and the server reloads,
        a search gets the new limit, on a connection made before as on a
        new one; the backend is the same.
        """
        old = self.service.factory.directory
        connected = self.service.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        assert connected is not None
        responses, d = self.run_search()
        await d
        self.assertEqual(responses[-1].value.resultCode, 0)
        self.assertGreater(len(responses), 3)
        self.path.write_text(configText(size_limit=2))
        await self.service.reload()
        new = self.service.factory.directory
        self.assertIsNot(new, old)
        self.assertIs(connected.directory, new)
        self.assertIs(new.configuredDatabases[0].backend, old.configuredDatabases[0].backend)
        responses, d = self.run_search()
        await d
        self.assertEqual(len(responses), 3)
        self.assertEqual(responses[-1].value.resultCode, 4)
        self.assertEqual(self.logged, [f"reload: {self.path} applied"])

    async def test_inFlight(self) -> None:
        """
        A search under way when the server reloads finishes with the
        configuration it started with; the next one gets the new one.
        """
        self.path.write_text(configText(hold=True))
        await self.service.reload()
        responses, held = self.run_search()
        self.assertEqual(len(Gate.waiting), 1)
        self.path.write_text(configText(size_limit=1))
        await self.service.reload()
        Gate.waiting.pop().callback(None)
        await held
        self.assertEqual(responses[-1].value.resultCode, 0)
        self.assertGreater(len(responses), 3)
        responses, d = self.run_search()
        await d
        self.assertEqual(len(responses), 2)
        self.assertEqual(responses[-1].value.resultCode, 4)

    async def test_invalid(self) -> None:
        """
        A file that does not validate changes nothing, and is logged as one
        line naming the file, the key and the problem.
        """
        old = self.service.factory.directory
        self.path.write_text(configText().replace("size_limit = 500", "size_limit = -1"))
        await self.service.reload()
        self.assertIs(self.service.factory.directory, old)
        [line] = self.logged
        self.assertEqual(line, f"reload: {self.path}: server.size_limit: must not be negative; "
                               "nothing changed")

    async def test_restartNeeded(self) -> None:
        """
        A change of a database's suffix changes nothing, and the line names
        it as needing a restart.
        """
        old = self.service.factory.directory
        self.path.write_text(configText(size_limit=2).replace(SUFFIX, "dc=example,dc=org"))
        await self.service.reload()
        self.assertIs(self.service.factory.directory, old)
        [line] = self.logged
        self.assertIn(f"{self.path}: database[0].suffix: cannot change without a restart", line)
        self.assertTrue(line.endswith("; nothing changed"))

    async def test_listeners(self) -> None:
        """
        A listener added is opened, and closed once it is removed again; a
        listener that cannot be had changes nothing.
        """
        path = self.folder / "ldapi"
        self.path.write_text(configText().replace(
            'listen = ["tcp:0:interface=127.0.0.1"]',
            f'listen = ["tcp:0:interface=127.0.0.1", "unix:{path}"]'))
        await self.service.reload()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
        self.assertEqual(self.service.config.directory.statistics.listeners,
                         ["tcp:0:interface=127.0.0.1", f"unix:{path}"])
        self.path.write_text(configText())
        await self.service.reload()
        with socket.socket(socket.AF_UNIX) as client:
            self.assertRaises(OSError, client.connect, str(path))
        old = self.service.factory.directory
        self.path.write_text(configText().replace(
            'listen = ["tcp:0:interface=127.0.0.1"]',
            f'listen = ["tcp:0:interface=127.0.0.1", "unix:{self.folder}/missing/ldapi"]'))
        await self.service.reload()
        self.assertIs(self.service.factory.directory, old)
        self.assertIn(f"reload: {self.path}: server.listen: cannot listen on unix:{self.folder}"
                      "/missing/ldapi", self.logged[-1])

    async def test_changeFeed(self) -> None:
        """
        A subscriber to the running directory's changes (a persistent or
        syncrepl search under way) is told of the writes made through the
        directory that replaced it.
        """
        seen: list[Any] = []
        self.service.factory.directory.subscribe(seen.append)
        self.path.write_text(configText(size_limit=2))
        await self.service.reload()
        directory = self.service.factory.directory
        entry = Entry(DN.parse("ou=new," + SUFFIX),
                      [("objectClass", [b"organizationalUnit"]), ("ou", [b"new"])],
                      directory.schema)
        await directory.add(directory.internalOperation(), entry)
        self.assertEqual([str(change.new.dn) for change in seen], ["ou=new," + SUFFIX])

    async def test_connectionLimits(self) -> None:
        """
        The factory's connection limits and PDU sizes are the new ones, for
        the connections it accepts from then on.
        """
        self.path.write_text(configText(server="max_outstanding = 3\nmax_pdu_size = 4096"))
        await self.service.reload()
        self.assertEqual(self.service.factory.limits.maxOutstanding, 3)
        self.assertEqual(self.service.factory.maxPDUSize, 4096)


class _Port:
    """
    A listening port that records whether it was closed.
    """

    closed = False

    def stopListening(self) -> None:
        self.closed = True


class RebindTests(unittest.SynchronousTestCase):
    """
    L{rebind} keeps the running ports a configuration still has, binds
    those it adds, and on a failure closes what it bound.
    """

    def test_keepsAndBinds(self) -> None:
        """
        The ports come in the new order, the running ones kept; those no
        longer configured are returned to be closed.
        """
        a, b, c = _Port(), _Port(), _Port()
        ports, removed = rebind({"a": a, "b": b}, ["c", "a"], lambda d: {"c": c}[d])
        self.assertEqual((ports, removed), ([c, a], [b]))
        self.assertFalse(a.closed or b.closed or c.closed)

    def test_failure(self) -> None:
        """
        When one new listener cannot be had, the ones bound before it are
        closed and the error names the listener.
        """
        a, c = _Port(), _Port()

        def bind(description: str) -> _Port:
            if description == "d":
                raise CannotListen("Address already in use")
            return c

        e = self.assertRaises(CannotListen, rebind, {"a": a}, ["a", "c", "d"], bind)
        self.assertEqual(str(e), "cannot listen on d: Address already in use")
        self.assertTrue(c.closed)
        self.assertFalse(a.closed)


class AdminReloadTests(unittest.SynchronousTestCase):
    """
    C{ldapd-admin reload CONFIG} checks the file, then signals the process
    of the pid file.
    """

    def run_admin(self, *args: str) -> tuple[int, str]:
        """
        @return: the exit status and what was written to standard error.
        """
        err = io.StringIO()
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            status = admin.main(list(args))
        return status, err.getvalue()

    def write(self, server: str) -> Path:
        """
        @return: a configuration file with these C{[server]} lines.
        """
        folder = Path(self.mktemp())
        folder.mkdir()
        path = folder / "ldapd.toml"
        path.write_text(configText(server=server).replace("test_reload:GATE", "acl"
                                                           ).replace("hold = false", ""))
        return path

    def test_noPIDFile(self) -> None:
        """
        Without C{pid_file} or C{--pid-file}, it says which key to set.
        """
        status, err = self.run_admin("reload", str(self.write("")))
        self.assertEqual(status, os.EX_CONFIG)
        self.assertIn("server.pid_file: is not set", err)

    def test_invalid(self) -> None:
        """
        A configuration that does not validate is reported, and nothing is
        signalled.
        """
        path = self.write('pid_file = "ldapd.pid"\nmax_outstanding = 0')
        (path.parent / "ldapd.pid").write_text("999999999\n")
        status, err = self.run_admin("reload", str(path))
        self.assertEqual(status, os.EX_CONFIG)
        self.assertIn("server.max_outstanding: must be at least 1", err)

    def test_noProcess(self) -> None:
        """
        A pid file naming no running process is reported.
        """
        path = self.write('pid_file = "ldapd.pid"')
        (path.parent / "ldapd.pid").write_text("999999999\n")
        status, err = self.run_admin("reload", str(path))
        self.assertEqual(status, 1)
        self.assertIn("no process 999999999", err)

    def test_signals(self) -> None:
        """
        The process the pid file names gets SIGHUP.
        """
        import signal
        import subprocess

        child = subprocess.Popen(
            [sys.executable, "-c", "import signal, sys, time\n"
             "signal.signal(signal.SIGHUP, lambda *a: sys.exit(7))\n"
             "print('ready', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE)
        self.addCleanup(lambda: child.poll() is None and child.send_signal(signal.SIGKILL))
        self.addCleanup(child.wait)
        assert child.stdout is not None
        child.stdout.readline()
        path = self.write('pid_file = "ldapd.pid"')
        (path.parent / "ldapd.pid").write_text(f"{child.pid}\n")
        self.assertEqual(self.run_admin("reload", str(path))[0], 0)
        self.assertEqual(child.wait(timeout=30), 7)
