"""
Tests for what the server does around a bind's password check: the bind
throttle (L{ldapd.throttle}) and rehashing on bind
(L{ldapd.binding.Binder}), in a directory with the example organisation in
memory, on a L{task.Clock}.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ldaptor.protocols import pureldap
from twisted.internet import defer, task
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from ldapd import passwords
from ldapd.backends.memory import MemoryBackend
from ldapd.changes import MODIFY
from ldapd.config import buildConfig
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.entry import Modification
from ldapd.operation import Connection
from ldapd.plugins.changelog import Changelog
from ldapd.plugins.monitor import Monitor
from ldapd.plugins.ppolicy import PasswordPolicy
from ldapd.registry import ConfigError
from ldapd.schema import Schema
from ldapd.testing import EXAMPLE_LDIF, executeRequest, wireFilter
from ldapd.throttle import BindThrottle, BindThrottleSettings, addressKey

SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"
ROOT = f"cn=admin,{SUFFIX}"
ALICE = f"uid=alice,{PEOPLE}"
DAVE = f"uid=dave,{PEOPLE}"
HEIDI = f"uid=heidi,{PEOPLE}"


class AddressKeyTests(unittest.SynchronousTestCase):
    """
    L{addressKey}: what one client address is counted under.
    """

    def test_keys(self) -> None:
        """
        IPv4 addresses count alone, IPv6 ones by their /64, IPv4-mapped
        ones as their IPv4 address; a C{unix:} socket (no address) is not
        counted by address.
        """
        self.assertEqual(addressKey("192.0.2.7"), "192.0.2.7")
        self.assertEqual(addressKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64")
        self.assertEqual(addressKey("2001:db8:1:2::9"), addressKey("2001:db8:1:2:ffff::1"))
        self.assertNotEqual(addressKey("2001:db8:1:2::9"), addressKey("2001:db8:1:3::9"))
        self.assertEqual(addressKey("::ffff:192.0.2.7"), "192.0.2.7")
        self.assertIsNone(addressKey(None))


class BindThrottleTests(unittest.SynchronousTestCase):
    """
    L{BindThrottle}: buckets filled by failures, emptied by the clock.
    """

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1000)
        self.alice = DN.parse(ALICE)
        self.bob = DN.parse(f"uid=bob,{PEOPLE}")

    def test_perAddress(self) -> None:
        """
        The limit's worth of failures from one address refuses its next
        binds, whatever the DN; another address is not refused; after a
        minute's share of the limit one more try is allowed, after a
        minute all are.
        """
        throttle = BindThrottle(BindThrottleSettings(perAddress=3), self.clock)
        for _ in range(3):
            self.assertIsNone(throttle.refusal("192.0.2.1", self.alice))
            throttle.failed("192.0.2.1", self.alice)
        self.assertIn("192.0.2.1", throttle.refusal("192.0.2.1", self.bob) or "")
        self.assertIsNone(throttle.refusal("192.0.2.2", self.alice))
        self.clock.advance(19)
        self.assertIsNotNone(throttle.refusal("192.0.2.1", self.bob))
        self.clock.advance(1)
        self.assertIsNone(throttle.refusal("192.0.2.1", self.bob))
        throttle.failed("192.0.2.1", self.bob)
        self.assertIsNotNone(throttle.refusal("192.0.2.1", self.bob))
        self.clock.advance(60)
        self.assertIsNone(throttle.refusal("192.0.2.1", self.bob))
        self.assertEqual(throttle.tracked, 0)

    def test_perDN(self) -> None:
        """
        The limit's worth of failures against one DN, from any addresses,
        refuses its binds from every address (a C{unix:} socket's too); a
        success forgets them.
        """
        throttle = BindThrottle(BindThrottleSettings(perDN=2), self.clock)
        throttle.failed("192.0.2.1", self.alice)
        throttle.failed("192.0.2.2", self.alice)
        self.assertIsNotNone(throttle.refusal("192.0.2.3", self.alice))
        self.assertIsNotNone(throttle.refusal(None, self.alice))
        self.assertIsNone(throttle.refusal("192.0.2.3", self.bob))
        throttle.succeeded(self.alice)
        self.assertIsNone(throttle.refusal("192.0.2.3", self.alice))

    def test_successKeepsAddress(self) -> None:
        """
        A success does not forget the failures of its address: an attacker
        who knows one password cannot reset its count with it.
        """
        throttle = BindThrottle(BindThrottleSettings(perAddress=2, perDN=2), self.clock)
        throttle.failed("192.0.2.1", self.alice)
        throttle.failed("192.0.2.1", self.bob)
        throttle.succeeded(self.bob)
        self.assertIsNotNone(throttle.refusal("192.0.2.1", self.bob))

    def test_bounded(self) -> None:
        """
        A client failing from ever new addresses and as ever new DNs
        grows neither table past C{tracked}; the most recently failed
        keys are the ones kept.
        """
        throttle = BindThrottle(BindThrottleSettings(perAddress=1, perDN=1, tracked=50),
                                self.clock)
        for i in range(5000):
            throttle.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                            DN.parse(f"uid=u{i},{PEOPLE}"))
        self.assertEqual(throttle.tracked, 100)
        self.assertIsNotNone(throttle.refusal("10.0.19.135", self.alice))
        self.assertIsNone(throttle.refusal("10.0.0.1", self.alice))


class _CountingBackend(MemoryBackend):
    """
    A memory backend that counts the passwords it is asked to check.
    """

    checked = 0

    def authenticate(self, op: Any, ndn: DN, password: bytes) -> defer.Deferred[Any]:
        self.checked += 1
        return super().authenticate(op, ndn, password)


class DirectoryTestsBase(unittest.TestCase):
    """
    A directory with the example organisation in a counting memory
    backend, the changelog and monitor plugins, on a clock; binds come
    from one client address.
    """

    settings: dict[str, Any] = {}

    def makePlugins(self) -> list[Any]:
        self.changelog = Changelog(timedelta(days=1), 100000, sid=1, passwords="keep")
        return [self.changelog, Monitor()]

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        self.backend = _CountingBackend(self.schema.normalizeDN(suffix), self.schema, self.clock)
        self.directory = Directory(
            [Database(suffix, self.backend, DN.parse(ROOT), b"secret", EXAMPLE_LDIF)],
            self.makePlugins(), schema=self.schema, reactor=self.clock,
            passwordHash="{SSHA512}", **self.settings)
        self.successResultOf(self.directory.open())
        self.nextId = 1

    def bind(self, dn: str, password: str, address: str = "192.0.2.1") -> int:
        """
        @return: the result code of a simple bind on a new connection from
            C{address}.
        """
        connection = Connection(f"{address}:1234", self.clock)
        connection.address = address
        return self.execute(connection, pureldap.LDAPBindRequest(dn=dn, auth=password)
                            )[-1].value.resultCode

    def execute(self, connection: Connection, request: Any) -> list[Any]:
        responses, done = executeRequest(self.directory, connection, request, self.nextId)
        self.nextId += 1
        self.successResultOf(done)
        return responses

    def ndn(self, dn: str) -> DN:
        return self.schema.normalizeDN(DN.parse(dn))

    def entry(self, dn: str) -> Any:
        return self.successResultOf(self.backend.get(None, self.ndn(dn)))

    def records(self) -> list[Any]:
        return self.successResultOf(self.backend.changes(0, 1000))

    def wait(self, coroutine: Any) -> Any:
        return self.successResultOf(defer.Deferred.fromCoroutine(coroutine))


class ThrottledBindTests(DirectoryTestsBase):
    """
    Binds past the throttle's limits are refused with invalidCredentials,
    unchecked, logged, and counted in cn=Monitor.
    """

    settings = {"bindThrottle": BindThrottleSettings(perAddress=5, perDN=3)}

    def logged(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        return events

    def test_perDN(self) -> None:
        """
        After three wrong passwords for alice (from different addresses),
        her right password gets 49 without being checked, the refusal is
        logged, and bob is not affected; a minute later she binds.
        """
        events = self.logged()
        for i in range(3):
            self.assertEqual(self.bind(ALICE, "wrong", f"192.0.2.{10 + i}"), 49)
        checked = self.backend.checked
        self.assertEqual(self.bind(ALICE, "alice-secret", "192.0.2.20"), 49)
        self.assertEqual(self.backend.checked, checked)
        refusals = [e for e in events if "throttled" in e.get("log_format", "")]
        self.assertEqual(len(refusals), 1)
        self.assertEqual((refusals[0]["dn"], refusals[0]["peer"]),
                         (str(self.ndn(ALICE)), "192.0.2.20:1234"))
        self.assertEqual(self.bind(f"uid=bob,{PEOPLE}", "bob-secret", "192.0.2.20"), 0)
        self.clock.advance(60)
        self.assertEqual(self.bind(ALICE, "alice-secret", "192.0.2.20"), 0)
        self.assertEqual(self.backend.checked, checked + 2)

    def test_perAddress(self) -> None:
        """
        After five failures from one address, even the right password of
        another account from it gets 49, unchecked; from another address
        it binds.
        """
        for uid in ("bob", "carol", "dave", "heidi", "bob"):
            self.assertEqual(self.bind(f"uid={uid},{PEOPLE}", "wrong"), 49)
        checked = self.backend.checked
        self.assertEqual(self.bind(ALICE, "alice-secret"), 49)
        self.assertEqual(self.backend.checked, checked)
        self.assertEqual(self.bind(ALICE, "alice-secret", "192.0.2.99"), 0)

    def test_rootDN(self) -> None:
        """
        The root DN, whose password is in the configuration and which no
        password policy covers, is throttled too: its password is not
        verified once refused.
        """
        verifier = self.directory.passwordVerifier
        calls: list[Any] = []
        original = verifier.verify

        def verify(*args: Any) -> Any:
            calls.append(args)
            return original(*args)

        self.patch(verifier, "verify", verify)
        for i in range(3):
            self.assertEqual(self.bind(ROOT, "wrong", f"192.0.2.{i}"), 49)
        self.assertEqual(len(calls), 3)
        self.assertEqual(self.bind(ROOT, "secret", "192.0.2.50"), 49)
        self.assertEqual(len(calls), 3)

    def test_monitor(self) -> None:
        """
        Throttled binds are counted in C{cn=Throttled Binds,cn=Statistics,cn=Monitor}.
        """
        for _ in range(5):
            self.bind(ALICE, "wrong")
        self.assertEqual(self.directory.statistics.throttledBinds, 2)
        root = Connection("192.0.2.200:1", self.clock)
        self.execute(root, pureldap.LDAPBindRequest(dn=ROOT, auth="secret"))
        responses = self.execute(root, pureldap.LDAPSearchRequest(
            baseObject="cn=Throttled Binds,cn=Statistics,cn=Monitor", scope=0,
            filter=wireFilter("(objectClass=*)"), attributes=["monitorCounter"]))
        values = {bytes(k): [bytes(v) for v in vs] for k, vs in responses[0].value.attributes}
        self.assertEqual(values, {b"monitorCounter": [b"2"]})

    def test_notForChanges(self) -> None:
        """
        Only binds are throttled: the old password of a change is checked
        whatever the count (it is asked of a bound client).
        """
        for _ in range(3):
            self.bind(ALICE, "wrong", "192.0.2.77")
        from ldapd.passwordcheck import CHANGE
        identity = self.wait(self.directory.verifyPassword(
            self.directory.internalOperation(), self.ndn(ALICE), b"alice-secret", CHANGE))
        self.assertEqual(identity.ndn, self.ndn(ALICE))


class RehashTests(DirectoryTestsBase):
    """
    With C{rehashOnBind}, a successful bind stores a password held in
    another scheme anew in C{passwordHash}'s, as a write of its own.
    """

    settings = {"rehashOnBind": True}

    def test_rehashed(self) -> None:
        """
        alice's {SSHA} value becomes a {SSHA512} one that her password
        matches, in a modify stamped with a new entryCSN, modifyTimestamp
        and alice as modifiersName, which the changelog records.
        """
        before = self.entry(ALICE)
        records = len(self.records())
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        after = self.entry(ALICE)
        (stored,) = after.get("userPassword")
        self.assertTrue(stored.startswith(b"{SSHA512}"))
        self.assertTrue(passwords.verifyPassword(stored, b"alice-secret"))
        self.assertNotEqual(after.get("entryCSN"), before.get("entryCSN"))
        self.assertEqual(after.get("modifiersName"), (ALICE.encode(),))
        (record,) = self.records()[records:]
        self.assertEqual((record.kind, record.targetDN, record.csn),
                         (MODIFY, ALICE, after.get("entryCSN")[0]))
        self.assertIn(b"replace: userPassword\nuserPassword: {SSHA512}", record.changes)
        self.assertIn(b"replace: modifiersName\nmodifiersName: " + ALICE.encode(),
                      record.changes)
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(len(self.records()), records + 1)

    def test_cleartext(self) -> None:
        """
        A cleartext value is hashed.
        """
        self.assertEqual(self.bind(HEIDI, "heidi-secret"), 0)
        (stored,) = self.entry(HEIDI).get("userPassword")
        self.assertTrue(stored.startswith(b"{SSHA512}"))

    def test_unchanged(self) -> None:
        """
        Nothing is written for a value already in the scheme, for a failed
        bind, or for the root DN.
        """
        records = len(self.records())
        self.assertEqual(self.bind(DAVE, "dave-secret"), 0)
        self.assertEqual(self.bind(ALICE, "wrong"), 49)
        self.assertEqual(self.bind(ROOT, "secret"), 0)
        self.assertEqual(len(self.records()), records)

    def test_severalValues(self) -> None:
        """
        An entry with several userPassword values is left alone (389 DS
        also declines them): which one to replace is not known.
        """
        self.wait(self.directory.modify(self.directory.internalOperation(), self.ndn(ALICE), [
            Modification("add", "userPassword", (b"{SSHA}second",))]))
        before = self.entry(ALICE).get("userPassword")
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(self.entry(ALICE).get("userPassword"), before)

    def test_changedMeanwhile(self) -> None:
        """
        A password changed between the check and the rehash is kept: the
        delete of the old value fails and nothing is written; the bind
        succeeds.
        """
        directory = self.directory
        original = directory.storedPassword

        async def storedPassword(op: Any, ndn: DN, password: bytes, **kw: Any) -> bytes:
            await directory.modify(directory.internalOperation(), ndn, [
                Modification("replace", "userPassword", (b"{SSHA}changed",))])
            return await original(op, ndn, password, **kw)  # type: ignore[no-any-return]

        self.patch(directory, "storedPassword", storedPassword)
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(self.entry(ALICE).get("userPassword"), (b"{SSHA}changed",))

    def test_off(self) -> None:
        """
        Without C{rehashOnBind} nothing is written.
        """
        self.directory.rehashOnBind = False
        before = self.entry(ALICE).get("userPassword")
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        self.assertEqual(self.entry(ALICE).get("userPassword"), before)


class RehashPolicyTests(DirectoryTestsBase):
    """
    Rehashing with the password policy plugin: it is no password change
    to the policy, which records only the bind.
    """

    settings = {"rehashOnBind": True}

    def makePlugins(self) -> list[Any]:
        policy = PasswordPolicy(None, clock=self.clock, lastBind=True)
        return [*super().makePlugins(), policy]

    def test_noPasswordChange(self) -> None:
        """
        pwdChangedTime, pwdHistory and pwdReset are not touched; the bind
        is recorded (pwdLastSuccess).
        """
        self.assertEqual(self.bind(ALICE, "alice-secret"), 0)
        entry = self.entry(ALICE)
        self.assertTrue(entry.get("userPassword")[0].startswith(b"{SSHA512}"))
        for name in ("pwdChangedTime", "pwdHistory", "pwdReset"):
            self.assertEqual(entry.get(name), (), name)
        self.assertTrue(entry.get("pwdLastSuccess"))


class ConfigTests(unittest.SynchronousTestCase):
    """
    C{[server] rehash_on_bind} and C{[server] bind_throttle}.
    """

    def build(self, **server: Any) -> Directory:
        data = {
            "server": {"listen": ["tcp:0"], **server},
            "database": [{"suffix": SUFFIX, "backend": "memory"}],
        }
        return buildConfig(data, None, task.Clock()).directory

    def test_defaults(self) -> None:
        """
        Both are off by default, as in slapd and 389 DS's bind path.
        """
        directory = self.build()
        self.assertFalse(directory.rehashOnBind)
        self.assertIsNone(directory.bindThrottle)

    def test_set(self) -> None:
        """
        The keys set the directory's behaviour; C{tracked} has a default.
        """
        directory = self.build(rehash_on_bind=True, bind_throttle={"per_dn": 5})
        self.assertTrue(directory.rehashOnBind)
        assert directory.bindThrottle is not None
        self.assertEqual(directory.bindThrottle.settings,
                         BindThrottleSettings(perAddress=0, perDN=5, tracked=10_000))

    def test_errors(self) -> None:
        """
        A throttle that limits nothing, an unknown key and a negative
        limit are refused, naming the key.
        """
        for table, key in [({}, "bind_throttle.per_address"),
                           ({"per_ip": 3}, "per_ip"),
                           ({"per_dn": -1}, "bind_throttle.per_dn")]:
            with self.assertRaises(ConfigError) as caught:
                self.build(bind_throttle=table)
            self.assertIn(key, str(caught.exception))
