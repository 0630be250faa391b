"""
Multi-supplier replication between real C{twist ldapd} processes (SQLite,
the changelog plugin with a C{sid} each, one C{[[replica]]} table with
C{multi_supplier = true} per peer): the first server is seeded, the others
start empty and take its tree; writers on every server at once; conflicting
writes made on two servers cut off from each other (each restarted with
its peers' addresses pointing nowhere) and resolved by CSN once they meet
again; one server killed (-9) while the others take writes, and restarted.
After each step every directory is compared entry by entry (DN, every user
attribute, entryUUID) within a bounded wait.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import ldap
from twisted.trial import unittest

from ldapd.csn import csnSID
from ldapd.testing import EXAMPLE_LDIF, SLAPD, ServerProcess, SlapdProcess, freePort
from test_catchup_integration import ELSEWHERE, MOVING_RDN, Writer
from test_syncconsumer import (
    BASE,
    CONVERGE_SECONDS,
    PASSWORD,
    ROOT_DN,
    SYNCPROV,
    ldapmodify,
    person,
    snapshot,
)
from test_syncprovider import _Consumer

PEOPLE = f"ou=people,{BASE}"


def supplierConfig(sid: int, folder: Path, peers: list[str], seed: bool,
                   kept: int | None = None) -> str:
    """
    @param sid: the server's ID.
    @param folder: where its SQLite file goes.
    @param peers: the URLs of the other suppliers.
    @param seed: whether it is seeded with the example organisation.
    @param kept: the most changelog records it keeps, if not the default.
    @return: its configuration, as a L{ServerProcess} template.
    """
    replicas = "".join(f"""
[[replica]]
suffix = "{BASE}"
provider = "{peer}"
bind_dn = "{ROOT_DN}"
bind_password = "{PASSWORD}"
multi_supplier = true
retry = "0.5s"
""" for peer in peers)
    return f"""
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]

[[database]]
suffix = "{BASE}"
backend = "sql"
url = "sqlite:///{folder / f"supplier{sid}.db"}"
root_dn = "{ROOT_DN}"
root_password = "{PASSWORD}"
{'seed_ldif = "{example_ldif}"' if seed else ""}

[[plugin]]
name = "changelog"
sid = {sid}
{f"max_entries = {kept}" if kept is not None else ""}
{replicas}"""


def unit(ou: str) -> str:
    """
    @return: the LDIF of the add of an organizational unit below the suffix.
    """
    return f"dn: ou={ou},{BASE}\nchangetype: add\nobjectClass: organizationalUnit\nou: {ou}\n\n"


def replace(uid: str, attribute: str, value: str) -> str:
    """
    @return: the LDIF of a replace of one attribute of a person.
    """
    return (f"dn: uid={uid},{PEOPLE}\nchangetype: modify\nreplace: {attribute}\n"
            f"{attribute}: {value}\n\n")


class SupplierWriter(Writer):
    """
    The catch-up tests' writer (adds, modifies, chains of renames, moves
    between units, deletes, deletes followed by an add of the same name,
    moves of a unit with its people) on one supplier, with people of its
    own; it also replaces the C{description} of one person every writer
    changes. So writers on several suppliers conflict: on one attribute, on
    the name of the unit they all move, and on entries added or moved below
    that unit while another server moves it.
    """

    def _reread(self, connection: Any) -> None:
        super()._reread(connection)
        self._live = [dn for dn in self._live
                      if int(dn.split(",")[0][len("uid=cr"):].rstrip("r")) // 10000
                      == self._serial // 10000]

    def _change(self, connection: Any) -> None:
        if self.rng.random() < 0.1:
            connection.modify_s(f"uid=shared,{PEOPLE}", [
                (ldap.MOD_REPLACE, "description", [b"%s %d" % (self.url.encode(), self.changes)])])
        else:
            super()._change(connection)


def _replicationLog(server: ServerProcess) -> str:
    """
    @return: what a server logged of replication.
    """
    return "".join(line for line in server.log().splitlines(keepends=True)
                   if "syncrepl" in line or "Traceback" in line or "Error" in line)


class SuppliersMixin:
    """
    C{count} ldapd suppliers of one another, the first seeded.

    @cvar count: how many.
    """

    count = 2
    servers: list[ServerProcess]
    folder: Path

    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = Path(tempfile.mkdtemp(prefix="ldapd-suppliers-"))
        cls.servers = []
        for i in range(cls.count):
            (cls.folder / str(i)).mkdir()
            cls.servers.append(ServerProcess("", cls.folder / str(i)))
        cls.configure(partitioned=False)
        try:
            for server in cls.servers:
                server.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def configure(cls, partitioned: bool, kept: int | None = None) -> None:
        """
        Write every server's configuration: naming its peers, or (cut off)
        a port nothing listens on in their place.

        @param kept: the most changelog records the first server keeps, if
            not the default.
        """
        nowhere = f"ldap://127.0.0.1:{freePort()}"
        for i, server in enumerate(cls.servers):
            peers = [nowhere if partitioned else other.url
                     for other in cls.servers if other is not server]
            config = supplierConfig(i + 1, cls.folder / str(i), peers, seed=i == 0,
                                    kept=kept if i == 0 else None)
            server.configPath.write_text(config.replace("{port}", str(server.port)).replace(
                "{example_ldif}", str(EXAMPLE_LDIF)))

    @classmethod
    def tearDownClass(cls) -> None:
        for server in cls.servers:
            server.stop()
        shutil.rmtree(cls.folder, ignore_errors=True)

    def setUp(self) -> None:
        # trial does not call setUpClass (pytest does).
        cls = type(self)
        if "servers" not in cls.__dict__:
            cls.setUpClass()
            self.addCleanup(cls.tearDownClass)
        super().setUp()  # type: ignore[misc]

    def write(self, server: ServerProcess, ldif: str) -> None:
        """
        Make changes on one server, as the root DN.
        """
        done = ldapmodify(server.url, ldif)
        self.assertEqual(done.returncode, 0, done.stderr)  # type: ignore[attr-defined]

    def restartAll(self, partitioned: bool, kept: int | None = None) -> None:
        """
        Restart every server, cut off from the others or not.

        @param kept: the most changelog records the first server keeps (its
            log trimmed to them as it starts), if not the default.
        """
        for server in self.servers:
            # A slapd's stop removes its folder: it is terminated only.
            server._terminate()
        type(self).configure(partitioned, kept)
        for server in self.servers:
            server.start()

    def writeMore(self, writers: list[SupplierWriter], changes: int) -> None:
        """
        Let each writer make C{changes} more changes (they write side by
        side), within a bounded wait.
        """
        for writer in writers:
            self.assertTrue(writer.writeMore(changes),  # type: ignore[attr-defined]
                            f"{writer.url}: {writer.changes} changes")

    def assertConverged(self, least: int = 20) -> dict[str, Any]:
        """
        Wait (a bounded time) until every server holds the same entries.

        @param least: the fewest entries they must hold.
        @return: the common content.
        """
        deadline = time.monotonic() + CONVERGE_SECONDS
        while True:
            contents = []
            for server in self.servers:
                try:
                    contents.append(snapshot(server.url))
                except ldap.LDAPError:
                    contents.append({})
            if all(content == contents[0] for content in contents):
                break
            if time.monotonic() > deadline:
                first = contents[0]
                report = []
                for server, content in zip(self.servers[1:], contents[1:], strict=True):
                    differing = [(dn, first[dn], content[dn]) for dn in set(first) & set(content)
                                 if first[dn] != content[dn]]
                    report.append(
                        f"{server.url}: missing {sorted(set(first) - set(content))[:5]}, extra "
                        f"{sorted(set(content) - set(first))[:5]}, differing {differing[:3]}")
                self.fail("not converged:\n" + "\n".join(report) + "\n"  # type: ignore[attr-defined]
                          + "\n".join(_replicationLog(s)[-3000:] for s in self.servers))
            time.sleep(0.2)
        self.assertGreaterEqual(len(contents[0]), least)  # type: ignore[attr-defined]
        for dn, attributes in contents[0].items():
            self.assertIn("entryuuid", attributes, dn)  # type: ignore[attr-defined]
        return contents[0]


class TwoSuppliersTests(SuppliersMixin, unittest.SynchronousTestCase):
    """
    Two suppliers.
    """

    def test_conflicts(self) -> None:
        """
        The second server starts empty and takes the first's tree. Cut off
        from each other, both take conflicting writes; once they meet
        again: a replace of one attribute made on both has the later value
        everywhere; one DN added on both is one entry everywhere, the
        later; a modify of an entry deleted on the other is dropped; a
        rename on one and a modify on the other both take effect, and so
        do modifies of different attributes; an entry added on one below a
        unit the other renamed is placed under its new name, one added
        below a unit the other deleted is deleted with it.
        """
        a, b = self.servers
        self.write(a, person("doomed") + person("mover") + person("both") + unit("moving")
                   + unit("gone"))
        self.assertConverged()
        self.restartAll(partitioned=True)
        self.write(a, replace("alice", "description", "from a")
                   + person("twin", description="added on a")
                   + f"dn: uid=doomed,{PEOPLE}\nchangetype: delete\n\n"
                   + f"dn: uid=mover,{PEOPLE}\nchangetype: modrdn\nnewrdn: uid=moved\n"
                     "deleteoldrdn: 1\n\n"
                   + replace("both", "mail", "both@a.example.com")
                   + f"dn: ou=moving,{BASE}\nchangetype: modrdn\nnewrdn: ou=moved\n"
                     "deleteoldrdn: 1\n\n"
                   + f"dn: ou=gone,{BASE}\nchangetype: delete\n\n")
        self.write(b, replace("alice", "description", "from b")
                   + person("twin", description="added on b")
                   + replace("doomed", "sn", "Late")
                   + replace("mover", "description", "modified on b")
                   + replace("both", "telephoneNumber", "+1 555 0100")
                   + person("child", f"ou=moving,{BASE}") + person("orphan", f"ou=gone,{BASE}"))
        self.restartAll(partitioned=False)
        content = self.assertConverged()
        self.assertEqual(content[f"uid=alice,{PEOPLE}"]["description"], [b"from b"])
        self.assertEqual(content[f"uid=twin,{PEOPLE}"]["description"], [b"added on b"])
        self.assertNotIn(f"uid=doomed,{PEOPLE}", content)
        self.assertNotIn(f"uid=mover,{PEOPLE}", content)
        self.assertEqual(content[f"uid=moved,{PEOPLE}"]["description"], [b"modified on b"])
        self.assertEqual(content[f"uid=both,{PEOPLE}"]["mail"], [b"both@a.example.com"])
        self.assertEqual(content[f"uid=both,{PEOPLE}"]["telephonenumber"], [b"+1 555 0100"])
        self.assertIn("added here and on a supplier at once", a.log() + b.log())
        self.assertIn(f"uid=child,ou=moved,{BASE}", content)
        self.assertNotIn(f"ou=gone,{BASE}", content)
        self.assertNotIn(f"uid=orphan,ou=gone,{BASE}", content)
        # b's changelog records a's delete with a's CSN (sid 1), as its
        # origin made it; the delete of the entry added below the unit a
        # deleted is b's own (sid 2).
        self.assertEqual(self.deleteSIDs(1), {f"uid=doomed,{PEOPLE}": 1, f"ou=gone,{BASE}": 1,
                                              f"uid=orphan,ou=gone,{BASE}": 2})
        # No change goes back to the server it came from: holding all of
        # b's own changes, a (sid 1) is sent none of a's by b; a consumer of
        # another sid holding the same is sent those.
        connection = ldap.initialize(b.url)
        connection.simple_bind_s(ROOT_DN, PASSWORD)
        [(_, suffix)] = connection.search_s(BASE, ldap.SCOPE_BASE, attrlist=["contextCSN"])
        connection.unbind_s()
        [ofB] = [csn for csn in suffix["contextCSN"] if csn.split(b"#")[2] == b"002"]

        def sent(sid: int) -> list[str]:
            consumer = _Consumer(b.url)
            consumer.simple_bind_s(ROOT_DN, PASSWORD)
            consumer.cookie = f"rid=009,sid={sid:03x},csn={ofB.decode()}"
            consumer.refreshOnly()
            consumer.unbind_s()
            return [told for told in consumer.told if told.startswith("entry")]

        self.assertEqual(sent(1), [])
        self.assertIn(f"entry uid=moved,{PEOPLE}", sent(9))


    def test_presentPhase(self) -> None:
        """
        When a supplier's changelog no longer covers the other's cookie
        (trimmed while they were cut off), the present phase it sends
        removes an entry it deleted, even one the other changed meanwhile
        (the delete wins, as it does from the changelog), and keeps one the
        other added meanwhile.
        """
        a, b = self.servers
        self.write(a, person("condemned"))
        self.assertConverged()
        self.restartAll(partitioned=True)
        self.write(a, f"dn: uid=condemned,{PEOPLE}\nchangetype: delete\n\n" + "".join(
            replace("alice", "description", f"a{n}") for n in range(5)))
        self.write(b, replace("condemned", "description", "changed on b")
                   + person("addedonb"))
        before = a.log().count("present refresh")
        self.restartAll(partitioned=False, kept=2)
        content = self.assertConverged()
        self.assertGreater(a.log().count("present refresh"), before)
        self.assertNotIn(f"uid=condemned,{PEOPLE}", content)
        self.assertIn(f"uid=addedonb,{PEOPLE}", content)
        self.assertEqual(content[f"uid=alice,{PEOPLE}"]["description"], [b"a4"])

    def deleteSIDs(self, server: int) -> dict[str, int]:
        """
        @return: the server ID of the CSN of each delete in a server's
            changelog, by target DN (the last, for a DN deleted twice).
        """
        connection = sqlite3.connect(self.folder / str(server) / f"supplier{server + 1}.db")
        try:
            rows = connection.execute(
                "SELECT target_dn, csn FROM ldapd_changes WHERE kind = 'delete' ORDER BY number"
            ).fetchall()
        finally:
            connection.close()
        return {dn: csnSID(csn.encode()) for dn, csn in rows}


class ThreeSuppliersTests(SuppliersMixin, unittest.SynchronousTestCase):
    """
    Three suppliers.
    """

    count = 3

    def test_writersEverywhereAndKill(self) -> None:
        """
        Writers on all three servers at once, some of their writes
        conflicting, converge; the third is killed (-9) while the others
        take writes, and once restarted converges; no change goes back to
        the server it came from.
        """
        self.write(self.servers[0], person("shared") + unit(ELSEWHERE.split(",")[0][3:])
                   + unit(MOVING_RDN[3:]))
        self.assertConverged()
        writers = [SupplierWriter(server.url, 21 + i) for i, server in enumerate(self.servers)]
        for writer in writers:
            self.addCleanup(writer.close)
            writer.resume()
        self.writeMore(writers, 70)
        for writer in writers:
            writer.pause()
        self.assertConverged()
        victim = self.servers[2].process
        assert victim is not None
        self.writeMore(writers[:2], 25)
        victim.kill()
        victim.wait()
        self.writeMore(writers[:2], 50)
        self.servers[2].start()
        self.writeMore(writers[:2], 25)
        for writer in writers[:2]:
            writer.pause()
        self.assertConverged()
        self.assertGreater(sum(writer.changes for writer in writers), 200)


class SlapdSupplierTests(SuppliersMixin, unittest.SynchronousTestCase):
    """
    An ldapd supplier and an OpenLDAP slapd one (C{multiprovider on},
    syncprov, C{serverID 2}), replicating to each other; slapd is seeded,
    ldapd starts empty.
    """

    @classmethod
    def setUpClass(cls) -> None:
        if not SLAPD.is_file() or not Path("/usr/lib/ldap/syncprov.la").is_file():
            raise unittest.SkipTest("slapd with its syncprov module is not installed")
        cls.folder = Path(tempfile.mkdtemp(prefix="ldapd-slapd-suppliers-"))
        ldapd = ServerProcess("", cls.folder)
        syncrepl = (f"syncrepl rid=001 provider={ldapd.url} bindmethod=simple "
                    f'binddn="{ROOT_DN}" credentials={PASSWORD} searchbase="{BASE}" '
                    'type=refreshAndPersist retry="1 +" timeout=5\nmultiprovider on\n')
        slapd = SlapdProcess(BASE, ROOT_DN, PASSWORD, modules=["syncprov"],
                             globalConfig="serverID 2\n",
                             databaseConfig=SYNCPROV + syncrepl)
        cls.servers = [ldapd, slapd]  # type: ignore[list-item]
        cls.configure(partitioned=False)
        try:
            slapd.loadExample()
            slapd.start()
            ldapd.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def configure(cls, partitioned: bool, kept: int | None = None) -> None:
        """
        Write both servers' configurations: each naming the other, or (cut
        off) a port nothing listens on in its place.
        """
        ldapd, slapd = cls.servers
        nowhere = f"ldap://127.0.0.1:{freePort()}"
        ldapd.configPath.write_text(supplierConfig(
            1, cls.folder, [nowhere if partitioned else slapd.url], seed=False, kept=kept)
            .replace("{port}", str(ldapd.port)))
        config = slapd.configPath.read_text()
        provider = config.split("syncrepl rid=001 provider=", 1)[1].split(" ", 1)[0]
        slapd.configPath.write_text(config.replace(
            f"provider={provider} ", f"provider={nowhere if partitioned else ldapd.url} "))

    def test_partition(self) -> None:
        """
        Cut off from each other, both take writes, some conflicting; once
        they meet again they converge, by slapd's rule where slapd decides
        (the later entry): a replace of one attribute made on both, an
        entry added on each, a rename on one and a modify on the other, a
        delete on one of an entry the other left alone.
        """
        ldapd, slapd = self.servers
        self.write(ldapd, person("mover") + person("gone") + person("keeper"))
        self.assertConverged()
        self.restartAll(partitioned=True)
        self.write(ldapd, replace("alice", "description", "from ldapd")
                   + person("onldapd")
                   + f"dn: uid=mover,{PEOPLE}\nchangetype: modrdn\nnewrdn: uid=moved\n"
                     "deleteoldrdn: 1\n\n"
                   + f"dn: uid=gone,{PEOPLE}\nchangetype: delete\n\n")
        self.write(slapd, replace("alice", "description", "from slapd")
                   + person("onslapd")
                   + replace("keeper", "description", "changed on slapd"))
        self.restartAll(partitioned=False)
        content = self.assertConverged()
        self.assertEqual(content[f"uid=alice,{PEOPLE}"]["description"], [b"from slapd"])
        self.assertIn(f"uid=onldapd,{PEOPLE}", content)
        self.assertIn(f"uid=onslapd,{PEOPLE}", content)
        self.assertIn(f"uid=moved,{PEOPLE}", content)
        self.assertNotIn(f"uid=mover,{PEOPLE}", content)
        self.assertNotIn(f"uid=gone,{PEOPLE}", content)
        self.assertEqual(content[f"uid=keeper,{PEOPLE}"]["description"], [b"changed on slapd"])

    def test_pair(self) -> None:
        """
        ldapd takes slapd's tree; writes on both at once, a replace of one
        attribute on both among them, converge (to slapd's rule: the later
        entry); ldapd killed (-9) while slapd takes writes, and slapd
        stopped while ldapd takes writes, converge once restarted.
        """
        ldapd, slapd = self.servers
        self.assertConverged()
        writes = [threading.Thread(target=self.write, args=(server, "".join(
            person(f"{name}{n}") for n in range(20)) + replace("alice", "description", name)))
            for server, name in ((ldapd, "ldapd"), (slapd, "slapd"))]
        for thread in writes:
            thread.start()
        for thread in writes:
            thread.join(60)
        content = self.assertConverged(60)
        self.assertIn(content[f"uid=alice,{PEOPLE}"]["description"], ([b"ldapd"], [b"slapd"]))
        process = ldapd.process
        assert process is not None
        process.kill()
        process.wait()
        self.write(slapd, person("whileldapddown") + replace("bob", "description", "slapd alone"))
        ldapd.start()
        content = self.assertConverged()
        self.assertEqual(content[f"uid=bob,{PEOPLE}"]["description"], [b"slapd alone"])
        slapd._terminate()
        self.write(ldapd, person("whileslapddown") + replace("bob", "description", "ldapd alone"))
        slapd.start()
        content = self.assertConverged()
        self.assertEqual(content[f"uid=bob,{PEOPLE}"]["description"], [b"ldapd alone"])
        self.assertIn(f"uid=whileslapddown,{PEOPLE}", content)
