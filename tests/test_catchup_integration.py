"""
Replicas of the real C{twist ldapd} (SQLite, changelog plugin) catching up
after outages while a writer keeps changing the provider, as issue 14 tried
it: an OpenLDAP slapd consumer and ldapd's own, refreshAndPersist, against
a seeded writer whose renames chain (C{uid=x} to C{uid=xr} to C{uid=xrr})
and who deletes renamed entries; the consumer stopped and resumed, killed
(-9) and resumed, the provider restarted and killed (-9), and a burst of
1,000 changes with 150 renames while the consumer is down. After each step
both directories are compared entry by entry (DN, every user attribute,
entryUUID) within a bounded wait.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import ldap
from twisted.trial import unittest

from test_syncconsumer import BASE, PASSWORD, ROOT_DN, ConsumerTestsMixin, person
from test_syncprovider import LdapdPairMixin, SlapdPairMixin

PEOPLE = f"ou=people,{BASE}"
ELSEWHERE = f"ou=catchup-elsewhere,{BASE}"
MOVING_RDN = "ou=catchup-moving"


class Writer:
    """
    A seeded writer on the provider, in a thread: adds, modifies, renames
    (chains of them: a renamed entry is often renamed again) and moves of
    people, moves of a unit with its people, deletes (mostly of renamed
    entries) and deletes followed by an add under the same name, about 80
    changes a second, going on through the provider's restarts.

    @ivar changes: how many changes it made.
    @ivar failures: how many of its changes failed (the provider down).
    """

    _writers = 0

    def __init__(self, url: str, seed: int) -> None:
        self.url = url
        self.rng = random.Random(seed)
        self.changes = 0
        self.failures = 0
        self._progress = threading.Condition()
        # Each writer's names are its own: one writer's people are never
        # named as an earlier one's were.
        Writer._writers += 1
        self._serial = Writer._writers * 10000
        self._live: list[str] = []
        self._moving = f"{MOVING_RDN},{BASE}"
        self._run = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._idle = threading.Event()
        self._thread.start()

    def resume(self) -> None:
        """
        Go on writing.
        """
        self._idle.clear()
        self._run.set()

    def writeMore(self, changes: int = 0, failures: int = 0, timeout: float = 120) -> bool:
        """
        Go on writing until it has made C{changes} more changes and seen
        C{failures} more fail: a test waits for writes, not for a time, which
        a busy machine stretches.

        @return: whether it did within C{timeout} seconds.
        """
        self.resume()
        with self._progress:
            goal = (self.changes + changes, self.failures + failures)
            return self._progress.wait_for(
                lambda: self.changes >= goal[0] and self.failures >= goal[1],
                timeout)

    def pause(self) -> None:
        """
        Stop writing, once the change under way is made.
        """
        self._run.clear()
        self._idle.wait(30)

    def close(self) -> None:
        """
        Stop the thread.
        """
        self._stop = True
        self._run.set()
        self._thread.join(30)

    def _connect(self) -> Any:
        connection = ldap.initialize(self.url)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 2)
        connection.simple_bind_s(ROOT_DN, PASSWORD)
        return connection

    def _reread(self, connection: Any) -> None:
        found = connection.search_s(BASE, ldap.SCOPE_SUBTREE, "(uid=cr*)", ["uid"])
        self._live = sorted(dn for dn, _ in found)
        [(self._moving, _)] = connection.search_s(BASE, ldap.SCOPE_SUBTREE,
                                                  f"({MOVING_RDN})", ["ou"])

    def _loop(self) -> None:
        connection = None
        while not self._stop:
            if not self._run.is_set():
                self._idle.set()
                self._run.wait()
                continue
            try:
                if connection is None:
                    connection = self._connect()
                    self._reread(connection)
                self._change(connection)
                with self._progress:
                    self.changes += 1
                    self._progress.notify_all()
            except ldap.LDAPError:
                # The provider restarting, or a change whose answer was
                # lost when it did: connect and look again.
                connection = None
                with self._progress:
                    self.failures += 1
                    self._progress.notify_all()
                time.sleep(0.1)
            time.sleep(0.0125)
        self._idle.set()

    def _change(self, connection: Any) -> None:
        rng = self.rng
        roll = rng.random()
        units = [PEOPLE, ELSEWHERE, self._moving]
        if roll < 0.3 or len(self._live) < 10:
            self._serial += 1
            dn = f"uid=cr{self._serial},{rng.choice(units)}"
            connection.add_s(dn, _person(b"cr%d" % self._serial))
            self._live.append(dn)
        elif roll < 0.48:
            connection.modify_s(rng.choice(self._live),
                                [(ldap.MOD_REPLACE, "description", [b"%d" % self.changes])])
        elif roll < 0.73:
            # Renames chain: the most recently renamed entries are the
            # likeliest to be renamed again.
            renamed = [dn for dn in self._live if dn.split(",")[0].endswith("r")]
            chain = renamed and rng.random() < 0.6
            dn = rng.choice(renamed[-5:]) if chain else rng.choice(self._live)
            rdn, parent = dn.split(",", 1)
            superior = rng.choice(units) if rng.random() < 0.15 else None
            if superior == parent:
                superior = None
            connection.rename_s(dn, rdn + "r", superior, delold=1)
            self._live.remove(dn)
            self._live.append(f"{rdn}r,{superior or parent}")
        elif roll < 0.78:
            # The unit moves with its people, some of whom were renamed.
            superior = BASE if self._moving.endswith(f",{ELSEWHERE}") else ELSEWHERE
            connection.rename_s(self._moving, MOVING_RDN, superior, delold=1)
            self._reread(connection)
        elif roll < 0.83:
            # Deleted and added again: the same name, another entryUUID.
            dn = rng.choice(self._live)
            connection.delete_s(dn)
            connection.add_s(dn, _person(dn.split(",")[0].split("=")[1].encode()))
        else:
            renamed = [dn for dn in self._live if dn.split(",")[0].endswith("r")]
            dn = rng.choice(renamed or self._live)
            connection.delete_s(dn)
            self._live.remove(dn)


def _person(uid: bytes) -> list[tuple[str, list[bytes]]]:
    """
    @return: the attributes of a person the writer adds.
    """
    return [("objectClass", [b"inetOrgPerson"]), ("uid", [uid]), ("cn", [b"Catch Up"]),
            ("sn", [b"Writer"])]


class CatchUpMixin(ConsumerTestsMixin):
    """
    The outages every consumer must come through, converged after each.

    @cvar namesTakenByRenames: whether the consumer, in a present phase,
        takes a rename into the name of an entry it holds that the phase
        will remove: ldapd's does (it removes what is not present when the
        present phase ends, and an entry found in the way); slapd's removes
        it only once the refresh is over, and refuses the rename first.
    """

    namesTakenByRenames = True

    def setUp(self) -> None:
        super().setUp()
        connection = ldap.initialize(self.provider.url)
        connection.simple_bind_s(ROOT_DN, PASSWORD)
        try:
            for rdn, parent in (("ou=catchup-elsewhere", BASE), (MOVING_RDN, BASE)):
                # An earlier test may have moved the unit.
                if not connection.search_s(BASE, ldap.SCOPE_SUBTREE, f"({rdn})", ["1.1"]):
                    connection.add_s(f"{rdn},{parent}", [("objectClass", [b"organizationalUnit"]),
                                                         ("ou", [rdn[3:].encode()])])
        finally:
            connection.unbind_s()
        self.writer = Writer(self.provider.url, 14)
        self.addCleanup(self.writer.close)

    def writeFor(self, changes: int = 0, failures: int = 0) -> None:
        """
        Let the writer make C{changes} more changes (and see C{failures}
        more fail), within a bounded wait.
        """
        self.assertTrue(self.writer.writeMore(changes, failures),
                        f"the writer made {self.writer.changes} changes")

    def converged(self) -> dict[str, Any]:
        """
        Pause the writer and wait for the consumer to hold what the
        provider holds.
        """
        self.writer.pause()
        return self.assertConverged()

    def restartConsumer(self, kill: bool) -> None:
        process = self.consumer.process
        assert process is not None
        process.kill() if kill else process.terminate()
        process.wait()

    def test_outagesWhileWriting(self) -> None:
        """
        While the writer writes, the consumer is stopped and resumed, then
        killed (-9) and resumed; the provider is restarted, then killed
        (-9) and started again: after each, the consumer converges.
        """
        self.writeFor(100)
        self.converged()
        for kill in (False, True):
            self.writeFor(50)
            self.restartConsumer(kill)
            self.writeFor(150)
            self.consumer.start()
            self.writeFor(50)
            self.converged()
        for kill in (False, True):
            self.writeFor(50)
            process = self.provider.process
            assert process is not None
            process.kill() if kill else process.terminate()
            process.wait()
            # Writes refused while it is down.
            self.writeFor(failures=2)
            self.provider.start()
            self.writeFor(100)
            self.converged()
        self.assertGreater(self.writer.changes, 300)

    def test_burstWhileDown(self) -> None:
        """
        A burst of 1,000 changes, 150 of them renames (chains of three, and
        renamed entries deleted), made while the consumer is down, arrives
        whole when it comes back.
        """
        self.converged()
        self.restartConsumer(kill=True)
        parent = f"ou=catchup-burst,{BASE}"
        ldif = f"dn: {parent}\nchangetype: add\nobjectClass: organizationalUnit\n"
        ldif += "ou: catchup-burst\n\n"
        ldif += "".join(person(f"b{i}", parent) for i in range(500))
        ldif += "".join(
            f"dn: uid=b{i},{parent}\nchangetype: modify\nreplace: sn\nsn: B{i}\n\n"
            for i in range(300)
        )
        for i in range(50):
            old = f"b{i}"
            for _ in range(3):
                ldif += (f"dn: uid={old},{parent}\nchangetype: modrdn\nnewrdn: uid={old}r\n"
                         "deleteoldrdn: 1\n\n")
                old += "r"
        ldif += "".join(f"dn: uid=b{i}rrr,{parent}\nchangetype: delete\n\n" for i in range(40))
        ldif += "".join(f"dn: uid=b{i},{parent}\nchangetype: delete\n\n" for i in range(400, 409))
        self.write(ldif)
        self.consumer.start()
        content = self.assertConverged(400)
        self.assertIn(f"uid=b45rrr,{parent}", content)
        self.assertNotIn(f"uid=b45,{parent}", content)
        self.assertNotIn(f"uid=b5rrr,{parent}", content)


    def test_presentPhaseAfterTrim(self) -> None:
        """
        When the changelog no longer covers the consumer's cookie (the
        provider restarted with the log trimmed to its last 50 changes
        while the consumer was down), the consumer is brought up to date
        through the present phase: renamed, deleted and re-added entries
        included, and (L{namesTakenByRenames}) a name deleted and then taken
        by a rename.
        """
        self.write(person("taken") + person("taker"))
        self.converged()
        self.restartConsumer(kill=True)
        self.writeFor(150)
        self.writer.pause()
        # More changes than the trimmed log keeps, however few the writer
        # made on a busy machine.
        ldif = "".join(f"dn: uid=taker,{PEOPLE}\nchangetype: modify\nreplace: description\n"
                       f"description: {i}\n\n" for i in range(60))
        # An entry deleted and added again under its name.
        ldif += f"dn: uid=alice,{PEOPLE}\nchangetype: delete\n\n" + person("alice")
        if self.namesTakenByRenames:
            # A name deleted, then taken by a rename of an entry the
            # consumer holds.
            ldif += (f"dn: uid=taken,{PEOPLE}\nchangetype: delete\n\n"
                     f"dn: uid=taker,{PEOPLE}\nchangetype: modrdn\nnewrdn: uid=taken\n"
                     "deleteoldrdn: 1\n\n")
        self.write(ldif)
        process = self.provider.process
        assert process is not None
        process.terminate()
        process.wait()
        config = self.provider.configPath.read_text()
        self.provider.configPath.write_text(config + "max_entries = 50\n")
        try:
            self.provider.start()
        finally:
            self.provider.configPath.write_text(config)
        before = self.provider.log().count("present refresh")
        self.consumer.start()
        self.assertConverged()
        self.assertGreater(self.provider.log().count("present refresh"), before)


class SlapdCatchUpTests(CatchUpMixin, SlapdPairMixin, unittest.SynchronousTestCase):
    """
    An OpenLDAP slapd consumer of ldapd.
    """

    namesTakenByRenames = False


class LdapdCatchUpTests(CatchUpMixin, LdapdPairMixin, unittest.SynchronousTestCase):
    """
    ldapd's own consumer (C{[[replica]]}, SQLite) of ldapd.
    """
