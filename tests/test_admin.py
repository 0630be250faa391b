"""
Tests for L{ldapd.admin}, the C{ldapd-admin} command: LDIF import and export
(bulk and entry by entry, slapcat's output), password hashing and
configuration checks.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from ldaptor.protocols import pureber, pureldap
from sqlalchemy import create_engine
from twisted.internet import defer, reactor
from twisted.trial import unittest

from ldapd import passwords
from ldapd.admin import Progress, exportLDIF, importLDIF, main
from ldapd.backends import sqlschema
from ldapd.config import loadConfig
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.operation import Connection, Identity
from ldapd.testing import EXAMPLE_LDIF, childEnvironment, executeRequest

CONFIG = """
[server]
listen = ["tcp:10389:interface=127.0.0.1"]

[[database]]
suffix = "dc=example,dc=com"
backend = "%s"
root_dn = "cn=admin,dc=example,dc=com"
root_password = "{SSHA}C2pUNaGLoULyAX7LYIEvYFGdBUlgM9qL9SS4sA=="
"""

#: What OpenLDAP's slapcat writes: operational attributes, and one type
#: (from a schema ldapd does not load) that is skipped with a warning.
SLAPCAT = b"""\
dn: dc=example,dc=com
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example
dc: example
structuralObjectClass: organization
entryUUID: 6b6d1e8a-1c5e-103f-8f2b-8b0b5d1f6a01
creatorsName: cn=admin,dc=example,dc=com
createTimestamp: 20240101120000Z
entryCSN: 20240101120000.000000Z#000000#000#000000
modifiersName: cn=admin,dc=example,dc=com
modifyTimestamp: 20240101120000Z
contextCSN: 20240101120000.000000Z#000000#000#000000

dn: uid=ann,dc=example,dc=com
objectClass: inetOrgPerson
uid: ann
cn: Ann
sn: Example
sambaSID: S-1-5-21-1-2-3-1000
structuralObjectClass: inetOrgPerson
entryUUID: 6b6d1e8a-1c5e-103f-8f2b-8b0b5d1f6a02
creatorsName: cn=admin,dc=example,dc=com
createTimestamp: 20240101120001Z
entryCSN: 20240101120001.000000Z#000000#000#000000
modifiersName: cn=admin,dc=example,dc=com
modifyTimestamp: 20240101120001Z

"""


def configFile(backend: str, extra: str = "") -> Path:
    """
    @return: a configuration file in a new temporary folder.
    """
    folder = Path(tempfile.mkdtemp(prefix="ldapd-admin-"))
    path = folder / "ldapd.toml"
    path.write_text(CONFIG % backend + extra)
    return path


def sqlConfig(name: str = "dir.db") -> Path:
    """
    @return: a configuration of an sql database next to it.
    """
    return configFile("sql", f'url = "sqlite:///{name}"\n')


def admin(*args: str) -> subprocess.CompletedProcess[str]:
    """
    Run the real command in a child process.

    @return: its outcome, output decoded as it is (carriage returns kept).
    """
    result = subprocess.run([sys.executable, "-m", "ldapd.admin", *args], capture_output=True,
                            env=childEnvironment(), timeout=120, check=False)
    return subprocess.CompletedProcess(result.args, result.returncode,
                                       result.stdout.decode(), result.stderr.decode())


class ImportExportTests(unittest.TestCase):
    """
    Import and export on open databases, in the process.
    """

    async def roundTrip(self, path: Path, ldif: bytes, bulk: bool) -> tuple[bytes, list[str]]:
        config = loadConfig(path, reactor)
        db = config.directory.databases[0]
        warnings: list[str] = []
        await db.backend.open()
        try:
            count = await importLDIF(reactor, config, db, io.BytesIO(ldif).readlines(),
                                     bulk=bulk, warn=warnings.append)
            out = io.BytesIO()
            self.assertEqual(await exportLDIF(config, db, out), count)
        finally:
            await db.backend.close()
        return out.getvalue(), warnings

    def test_slapcat(self) -> Any:
        """
        slapcat's output imports with its operational attributes kept (as
        slapadd keeps them); a type the schema lacks is skipped with one
        warning naming it.
        """
        async def run() -> None:
            out, warnings = await self.roundTrip(sqlConfig(), SLAPCAT, True)
            self.assertIn(b"entryUUID: 6b6d1e8a-1c5e-103f-8f2b-8b0b5d1f6a02\n", out)
            self.assertIn(b"createTimestamp: 20240101120001Z\n", out)
            self.assertIn(b"entryCSN: 20240101120001.000000Z#000000#000#000000\n", out)
            self.assertIn(b"structuralObjectClass: inetOrgPerson\n", out)
            self.assertNotIn(b"sambaSID", out)
            self.assertEqual(len(warnings), 1)
            self.assertIn("sambaSID", warnings[0])

        return defer.Deferred.fromCoroutine(run())

    def test_bulkAndPerEntryAgree(self) -> Any:
        """
        The sql backend's bulk path and entry-by-entry adds (on the memory
        backend) load the same entries (each backend exports them in its
        own order, parents first); missing operational attributes
        are added to every entry.
        """
        async def run() -> None:
            ldif = EXAMPLE_LDIF.read_bytes()
            bulk, _ = await self.roundTrip(sqlConfig(), ldif, True)
            perEntry, _ = await self.roundTrip(configFile("memory"), ldif, False)

            def stable(data: bytes) -> list[list[bytes]]:
                return sorted(
                    [line for line in record.splitlines() if not line.startswith(
                        (b"entryUUID:", b"entryCSN:", b"createTimestamp:", b"modifyTimestamp:"))]
                    for record in data.split(b"\n\n"))

            self.assertEqual(stable(bulk), stable(perEntry))
            self.assertEqual(bulk.count(b"\nentryUUID: "), bulk.count(b"dn: "))

        return defer.Deferred.fromCoroutine(run())

    def test_badEntry(self) -> Any:
        """
        An entry the schema refuses stops the import with its line and DN.
        """
        async def run() -> None:
            ldif = SLAPCAT.replace(b"sn: Example\n", b"")
            try:
                await self.roundTrip(sqlConfig(), ldif, True)
            except ValueError as e:
                self.assertIn("uid=ann,dc=example,dc=com", str(e))
                self.assertIn("line 16", str(e))
            else:
                self.fail("no error")

        return defer.Deferred.fromCoroutine(run())

    def test_referralAndAlias(self) -> Any:
        """
        A referral object and an alias in slapcat's output are entries like
        any other: loaded by the bulk path and entry by entry, and exported
        as they were (C{ref}, C{aliasedObjectName}, their structural class).
        """
        async def run() -> None:
            for path, bulk in [(sqlConfig(), True), (configFile("memory"), False)]:
                out, _ = await self.roundTrip(path, SLAPCAT + REFERRAL_AND_ALIAS, bulk)
                self.assertIn(b"dn: ou=remote,dc=example,dc=com\n", out)
                self.assertIn(b"ref: ldap://other.example.net/ou=remote,dc=example,dc=net\n", out)
                self.assertIn(b"structuralObjectClass: referral\n", out)
                self.assertIn(b"aliasedObjectName: uid=ann,dc=example,dc=com\n", out)
                self.assertIn(b"structuralObjectClass: alias\n", out)

        return defer.Deferred.fromCoroutine(run())

    def test_continue(self) -> Any:
        """
        With C{skip}, an entry the schema refuses, one whose parent is
        missing and a duplicate are each left out with one line naming its
        DN and the line its record starts on; the others are loaded.
        """
        async def run() -> None:
            path = sqlConfig()
            config = loadConfig(path, reactor)
            db = config.directory.databases[0]
            skipped: list[str] = []
            await db.backend.open()
            try:
                count = await importLDIF(reactor, config, db,
                                         io.BytesIO(_WITH_BAD_ENTRIES).readlines(),
                                         warn=lambda m: None, skip=skipped.append)
                out = io.BytesIO()
                await exportLDIF(config, db, out)
            finally:
                await db.backend.close()
            self.assertEqual(count, 3)
            self.assertEqual(len(skipped), 3, skipped)
            self.assertTrue(skipped[0].startswith(
                "skipped line 11: uid=nosn,dc=example,dc=com: "), skipped)
            self.assertTrue(skipped[1].startswith(
                "skipped line 20: uid=ann,dc=example,dc=com: entryAlreadyExists"), skipped)
            # An entry is held until its parent comes (slapcat's order): one
            # whose parent never comes is skipped at the end.
            self.assertEqual(skipped[2], "skipped line 16: uid=orphan,ou=nowhere,dc=example,dc=com: "
                                         "the parent entry does not exist")
            for dn in (b"dc=example,dc=com", b"uid=ann,dc=example,dc=com",
                       b"uid=bea,dc=example,dc=com"):
                self.assertIn(b"dn: " + dn + b"\n", out.getvalue())
            self.assertNotIn(b"nosn", out.getvalue())
            self.assertNotIn(b"orphan", out.getvalue())

        return defer.Deferred.fromCoroutine(run())


#: A referral object and an alias, as slapcat writes them.
REFERRAL_AND_ALIAS = b"""\
dn: ou=remote,dc=example,dc=com
objectClass: referral
objectClass: extensibleObject
ou: remote
ref: ldap://other.example.net/ou=remote,dc=example,dc=net
structuralObjectClass: referral
entryUUID: 6b6d1e8a-1c5e-103f-8f2b-8b0b5d1f6a03

dn: cn=ann-alias,dc=example,dc=com
objectClass: alias
objectClass: extensibleObject
cn: ann-alias
aliasedObjectName: uid=ann,dc=example,dc=com
structuralObjectClass: alias
entryUUID: 6b6d1e8a-1c5e-103f-8f2b-8b0b5d1f6a04

"""

#: Good entries among one without a required attribute (line 11), one
#: without its parent (line 16) and a duplicate (line 20).
_WITH_BAD_ENTRIES = b"""\
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: uid=ann,dc=example,dc=com
objectClass: account
uid: ann

dn: uid=nosn,dc=example,dc=com
objectClass: inetOrgPerson
uid: nosn
cn: No Surname

dn: uid=orphan,ou=nowhere,dc=example,dc=com
objectClass: account
uid: orphan

dn: uid=ann,dc=example,dc=com
objectClass: account
uid: ann

dn: uid=bea,dc=example,dc=com
objectClass: account
uid: bea
"""


#: The base entry and one person, as imported and seeded.
_BASE_AND_ANN = b"""\
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: uid=ann,dc=example,dc=com
objectClass: inetOrgPerson
uid: ann
cn: Ann
sn: Example
"""


class StampTests(unittest.TestCase):
    """
    An entry gets the same operational attributes however it comes in:
    imported, seeded from C{seed_ldif}, or added over the protocol (as
    slapadd stores what slapd's add does).
    """

    async def imported(self) -> Entry:
        config = loadConfig(configFile("memory"), reactor)
        db = config.directory.databases[0]
        await db.backend.open()
        await importLDIF(reactor, config, db, io.BytesIO(_BASE_AND_ANN).readlines(),
                         bulk=False, warn=self.fail)
        return await self.read(config.directory, "uid=ann,dc=example,dc=com")

    def seededConfig(self, ldif: bytes) -> Path:
        """
        @return: a configuration of a memory database seeded with C{ldif}.
        """
        folder = Path(tempfile.mkdtemp(prefix="ldapd-stamp-"))
        self.addCleanup(shutil.rmtree, folder)
        seed = folder / "seed.ldif"
        seed.write_bytes(ldif)
        return configFile("memory", f'seed_ldif = "{seed}"\n')

    async def seeded(self) -> Entry:
        config = loadConfig(self.seededConfig(_BASE_AND_ANN), reactor)
        await config.directory.open()
        return await self.read(config.directory, "uid=ann,dc=example,dc=com")

    async def added(self) -> Entry:
        config = loadConfig(self.seededConfig(_BASE_AND_ANN.split(b"\n\n")[0] + b"\n"), reactor)
        directory = config.directory
        await directory.open()
        connection = Connection("test", reactor)
        root = DN.parse("cn=admin,dc=example,dc=com")
        connection.identity = Identity(root, directory.schema.normalizeDN(root), isRoot=True)
        request = pureldap.LDAPAddRequest(entry="uid=bob,dc=example,dc=com", attributes=[
            (pureldap.LDAPAttributeDescription(name),
             pureber.BERSet([pureldap.LDAPAttributeValue(value)]))
            for name, value in (("objectClass", "inetOrgPerson"), ("uid", "bob"),
                                ("cn", "Bob"), ("sn", "Example"))])
        responses, done = executeRequest(directory, connection, request, 1)
        await done
        self.assertEqual(responses[-1].value.resultCode, 0)
        return await self.read(directory, "uid=bob,dc=example,dc=com")

    async def read(self, directory: Any, dn: str) -> Entry:
        return await directory.get(directory.internalOperation(),
                                   directory.schema.normalizeDN(DN.parse(dn)))

    def test_sameOperationalAttributes(self) -> Any:
        """
        An imported entry and a seeded one carry the same operational
        attribute types as one added over the protocol: creator, modifier,
        timestamps, entryUUID, entryCSN and structuralObjectClass.
        """
        async def run() -> None:
            def operational(entry: Entry) -> set[str]:
                return {a.type.name for a in entry if a.type.operational}

            added = await self.added()
            self.assertEqual(operational(added), {
                "creatorsName", "modifiersName", "createTimestamp", "modifyTimestamp",
                "entryUUID", "entryCSN", "structuralObjectClass"})
            imported, seeded = await self.imported(), await self.seeded()
            self.assertEqual(operational(imported), operational(added))
            self.assertEqual(operational(seeded), operational(added))
            self.assertEqual(imported.get("structuralObjectClass"), (b"inetOrgPerson",))
            self.assertEqual(imported.get("creatorsName"), (b"cn=admin,dc=example,dc=com",))

        return defer.Deferred.fromCoroutine(run())


class CommandTests(unittest.SynchronousTestCase):
    """
    The command line.
    """

    def test_roundTrip(self) -> None:
        """
        C{export} output imports into an empty database, and that database
        exports to the same bytes: an identical directory. Progress goes
        to standard error.
        """
        first = sqlConfig("first.db")
        result = admin("import", str(first), str(EXAMPLE_LDIF))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stderr, r"\r20 entries +\d+/s\n$")
        exported = first.parent / "first.ldif"
        result = admin("export", str(first), "-o", str(exported), "-q")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        second = sqlConfig("second.db")
        result = admin("import", "-q", str(second), str(exported))
        self.assertEqual(result.returncode, 0, result.stderr)
        result = admin("export", str(second), "-q")
        self.assertEqual(result.stdout, exported.read_text())
        result = admin("import", "-q", str(second), str(exported))
        self.assertEqual(result.returncode, 1)
        self.assertIn("already exists", result.stderr)

    def test_unfinishedImport(self) -> None:
        """
        A database left by an import that was stopped before its end is
        refused with a message saying so, by C{export} as by C{import},
        rather than served half-loaded.
        """
        config = sqlConfig()
        result = admin("import", "-q", str(config), str(EXAMPLE_LDIF))
        self.assertEqual(result.returncode, 0, result.stderr)
        engine = create_engine(f"sqlite:///{config.parent / 'dir.db'}")
        with engine.begin() as conn:
            # What the bulk load writes at its start and removes at its end.
            sqlschema.writeMeta(conn, sqlschema.IMPORT_UNDER_WAY, "")
        engine.dispose()
        for command in (["export", "-q", str(config)],
                        ["import", "-q", str(config), str(EXAMPLE_LDIF)]):
            result = admin(*command)
            self.assertEqual((result.returncode, result.stdout), (1, ""), result.stderr)
            self.assertIn("import that did not finish", result.stderr)
            self.assertNotIn("Traceback", result.stderr)

    def test_continue(self) -> None:
        """
        C{import --continue} loads what it can, with one line on standard
        error for each entry it skips (its line and DN) and a count, and
        exits with status 1; without it, the first bad entry stops the
        import (nothing of its chunk is loaded).
        """
        config = sqlConfig()
        ldif = config.parent / "in.ldif"
        ldif.write_bytes(_WITH_BAD_ENTRIES)
        result = admin("import", "-q", str(config), str(ldif))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("line 11: uid=nosn,dc=example,dc=com", result.stderr)
        self.assertEqual(admin("export", "-q", str(config)).stdout, "")
        result = admin("import", "-q", "--continue", str(config), str(ldif))
        self.assertEqual(result.returncode, 1, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual([line.split(":")[0] for line in lines],
                         ["skipped line 11", "skipped line 20", "skipped line 16",
                          "ldapd-admin"], result.stderr)
        self.assertEqual(lines[-1], "ldapd-admin: 3 entries skipped")
        exported = admin("export", "-q", str(config)).stdout
        self.assertEqual(exported.count("dn: "), 3, exported)

    def test_fileURLsRefused(self) -> None:
        """
        C{import} refuses an LDIF value read from a local file (C{:<}), with
        a line naming the LDIF line, and loads nothing; with
        C{--allow-file-urls} the file's contents are the value.
        """
        config = sqlConfig()
        secret = config.parent / "secret.txt"
        secret.write_bytes(b"root:$6$hash:19000:0:99999:7:::\n")
        ldif = config.parent / "in.ldif"
        ldif.write_text(
            "dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\n"
            "dc: example\no: Example\n\ndn: uid=ann,dc=example,dc=com\n"
            "objectClass: inetOrgPerson\nuid: ann\ncn: Ann\nsn: A\n"
            f"description:< file://{secret}\n")
        result = admin("import", "-q", str(config), str(ldif))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stderr, "\nldapd-admin: line 12: description:< reads its value "
                         "from a file, which is refused unless allowed (ldapd-admin import "
                         "--allow-file-urls)\n")
        self.assertEqual(admin("export", "-q", str(config)).stdout, "")
        result = admin("import", "-q", "--allow-file-urls", str(config), str(ldif))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("description:: " + base64.b64encode(secret.read_bytes()).decode(),
                      admin("export", "-q", str(config)).stdout)

    def test_exportToStandardOutput(self) -> None:
        """
        C{export -o -} writes to standard output, as without C{-o}, and
        creates no file named C{-}.
        """
        config = sqlConfig()
        result = admin("import", "-q", str(config), str(EXAMPLE_LDIF))
        self.assertEqual(result.returncode, 0, result.stderr)
        dashed = admin("export", "-q", str(config), "-o", "-")
        self.assertEqual((dashed.returncode, dashed.stderr), (0, ""))
        self.assertIn("dn: uid=alice,ou=people,dc=example,dc=com\n", dashed.stdout)
        self.assertEqual(dashed.stdout, admin("export", "-q", str(config)).stdout)
        self.assertFalse(Path("-").exists())

    def main(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    def test_hash(self) -> None:
        """
        C{hash} prints the password hashed in the scheme asked for; an
        unknown scheme is a usage error.
        """
        code, out, _ = self.main("hash", "--scheme", "{SSHA256}", "s3cret")
        self.assertEqual(code, 0)
        self.assertTrue(out.startswith("{SSHA256}"))
        self.assertTrue(passwords.verifyPassword(out.strip().encode(), b"s3cret"))
        code, _, err = self.main("hash", "--scheme", "{ROT13}", "x")
        self.assertEqual(code, 2)
        self.assertIn("unknown scheme", err)

    def test_checkConfig(self) -> None:
        """
        C{check-config} accepts a good configuration and names the key of a
        bad one, exiting with EX_CONFIG.
        """
        code, out, _ = self.main("check-config", str(sqlConfig()))
        self.assertEqual(code, 0)
        self.assertIn("OK (dc=example,dc=com)", out)
        bad = configFile("sql", 'url = "sqlite:///x.db"\npool_size = -1\n')
        code, _, err = self.main("check-config", str(bad))
        self.assertEqual(code, 78)
        self.assertIn("database[0].pool_size", err)


class ProgressTests(unittest.SynchronousTestCase):
    """
    The progress line.
    """

    def test_rate(self) -> None:
        """
        The line shows the count and the rate, at most once per interval,
        and the final one ends the line.
        """
        now = [100.0]
        out = io.StringIO()
        progress = Progress(out, lambda: now[0], interval=1.0)
        now[0] = 102.0
        progress.update(1000)
        now[0] = 102.5
        progress.update(1500)
        now[0] = 104.0
        progress.update(4000, final=True)
        self.assertEqual(out.getvalue(), "\r1000 entries  500/s\r4000 entries  1000/s\n")
