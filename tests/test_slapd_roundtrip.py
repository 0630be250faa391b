"""
Round trips between ldapd and OpenLDAP's offline tools, both ways, on the
same data: C{slapcat} → C{ldapd-admin import}, and C{ldapd-admin export} →
C{slapadd}.

The data has what LDIF writers disagree on: UTF-8 names and values (base64),
values beginning with a space or a colon, lines long enough to be folded,
binary values, attribute options, a multi-valued RDN with an escaped comma,
and password hashes. Before the dump, the same writes are made on the
running server (ldapmodify): an entry moved under a newer one, so that
slapcat, which writes entries in the order of their ids, puts children
before their parent; renames and modifications, so that modifiersName,
modifyTimestamp and entryCSN differ from the creation's.

What is compared is every entry: its DN (normalised: slapd writes C{\\2C}
where ldapd writes C{\\,}), every user attribute with its values as bytes,
and the operational attributes a dump carries (entryUUID, creatorsName,
createTimestamp, modifiersName, modifyTimestamp, entryCSN,
structuralObjectClass); values of DN syntax are compared normalised.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from twisted.trial import unittest

from ldapd.dn import DN
from ldapd.ldif import parseLDIF
from ldapd.schema import Schema
from ldapd.testing import SLAPD, ServerProcess, SlapdProcess, childEnvironment

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "secret"
#: The DN syntax, whose values are compared normalised.
_DN_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.12"
#: The operational attributes both dumps must carry for every entry.
OPERATIONAL = ("entryuuid", "creatorsname", "createtimestamp", "modifiersname",
               "modifytimestamp", "entrycsn", "structuralobjectclass")

#: Jürgen Müller, and a JPEG header as a binary value.
DATA = f"""\
dn: {BASE}
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example Corp
dc: example

dn: ou=people,{BASE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{BASE}
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,{BASE}
objectClass: inetOrgPerson
uid: alice
cn: Alice Anderson
sn: Anderson
userPassword: {{SSHA}}oBj7gtpgr+3woyqUEULkHX9YGm5e6UYrShcluA==
description: a description long enough that every LDIF writer folds it: past
  seventy-six columns, and then some

dn:: Y249SsO8cmdlbiBNw7xsbGVyLG91PXBlb3BsZSxkYz1leGFtcGxlLGRjPWNvbQ==
objectClass: inetOrgPerson
cn:: SsO8cmdlbiBNw7xsbGVy
sn:: TcO8bGxlcg==
description:: IGxlYWRpbmcgc3BhY2U=
description:: OnN0YXJ0cyB3aXRoIGNvbG9u
description;lang-de:: R3LDvMOfZQ==
jpegPhoto:: /9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHR
 ofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/
telephoneNumber: +49 30 555 0100

dn: cn=a\\2Cb+uid=ab,ou=people,{BASE}
objectClass: inetOrgPerson
cn: a,b
uid: ab
sn: Comma
userPassword: {{SSHA256}}GASJaXVLrEszb/1h13iD+6qpK7QH89mboFdE2WpDYJzBoQZPQ9sQcQ==

dn: cn=staff,ou=groups,{BASE}
objectClass: groupOfNames
cn: staff
member: cn=a\\2Cb+uid=ab,ou=people,{BASE}
member: uid=alice,ou=people,{BASE}
"""

#: Writes made on the running server before the dump: the people move
#: under a newer entry, alice is renamed, two entries are modified.
WRITES = f"""\
dn: ou=staff,{BASE}
changetype: add
objectClass: organizationalUnit
ou: staff

dn: ou=people,{BASE}
changetype: modrdn
newrdn: ou=people
deleteoldrdn: 1
newsuperior: ou=staff,{BASE}

dn: uid=alice,ou=people,ou=staff,{BASE}
changetype: modrdn
newrdn: uid=alicia
deleteoldrdn: 0

dn: cn=staff,ou=groups,{BASE}
changetype: modify
replace: description
description:: w6lxdWlwZQ==

dn: ou=groups,{BASE}
changetype: modify
add: description
description: every group
"""

#: alice after the writes, and her password.
ALICE = f"uid=alicia,ou=people,ou=staff,{BASE}"
ALICE_PASSWORD = "alice-secret"

#: An ldapd configuration, a L{ServerProcess} template: an sql database in
#: its folder. ldapd-admin reads it with port 0.
CONFIG = f"""\
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]

[[database]]
suffix = "{BASE}"
backend = "sql"
url = "sqlite:///directory.db"
root_dn = "{ROOT_DN}"
root_password = "{ROOT_PASSWORD}"
"""


def admin(*args: str) -> None:
    """
    Run the real C{ldapd-admin} in a child process.

    @raise AssertionError: with its output, if it fails.
    """
    import sys

    result = subprocess.run([sys.executable, "-m", "ldapd.admin", *args], capture_output=True,
                            env=childEnvironment(), timeout=120, check=False)
    if result.returncode != 0:
        raise AssertionError(f"ldapd-admin {' '.join(args)}: {result.returncode}\n"
                             + result.stderr.decode(errors="replace"))


def client(command: str, url: str, *args: str, stdin: str | None = None,
           dn: str = ROOT_DN, password: str = ROOT_PASSWORD) -> str:
    """
    Run one of OpenLDAP's clients with a simple bind.

    @return: its standard output.
    """
    result = subprocess.run([command, "-x", "-H", url, "-D", dn, "-w", password, *args],
                            input=stdin, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise AssertionError(f"{command}: {result.returncode}\n{result.stderr}")
    return result.stdout


def entries(ldif: bytes, schema: Schema) -> dict[DN, dict[str, set[Any]]]:
    """
    @return: each entry of an LDIF dump by normalised DN: its attributes by
        lower-case description, with their values (those of DN syntax
        normalised), in the dump's order.
    """
    found: dict[DN, dict[str, set[Any]]] = {}
    for record in parseLDIF(ldif.splitlines(keepends=True)):
        attributes: dict[str, set[Any]] = {}
        for description, value in record.attributes:
            at = schema.attributeType(description.split(";")[0])
            key: Any = value
            if at is not None and at.syntax == _DN_SYNTAX:
                key = schema.normalizeDN(DN.parse(value.decode("utf-8")))
            attributes.setdefault(description.lower(), set()).add(key)
        found[schema.normalizeDN(DN.parse(record.dn))] = attributes
    return found


class RoundTripMixin:
    """
    The comparisons, for a C{unittest.TestCase}.
    """

    schema = Schema.standard()

    def assertSameEntries(self, expected: bytes, got: bytes) -> None:
        """
        Both dumps hold the same entries, with the same attributes and
        values, every entry with its operational attributes.
        """
        case: Any = self
        want, have = entries(expected, self.schema), entries(got, self.schema)
        case.assertEqual(sorted(map(str, have)), sorted(map(str, want)))
        for ndn, attributes in want.items():
            case.assertEqual(have[ndn], attributes, str(ndn))
            for name in OPERATIONAL:
                case.assertIn(name, attributes, str(ndn))

    def assertParentsFirst(self, dump: bytes) -> None:
        """
        Every entry of a dump comes after its parent.
        """
        case: Any = self
        seen: set[DN] = set()
        for ndn in entries(dump, self.schema):
            if ndn != self.schema.normalizeDN(DN.parse(BASE)):
                case.assertIn(ndn.parent(), seen, str(ndn))
            seen.add(ndn)


def _requireSlapd() -> None:
    if not SLAPD.is_file() or shutil.which("ldapmodify") is None:
        raise unittest.SkipTest(f"{SLAPD} and ldap-utils are needed")


class SlapcatToLdapdTests(RoundTripMixin, unittest.TestCase):
    """
    slapd's data, dumped by slapcat, loaded by C{ldapd-admin import} and
    served by ldapd.
    """

    dump: bytes = b""

    @classmethod
    def setUpClass(cls) -> None:
        _requireSlapd()
        slapd = SlapdProcess()
        try:
            data = slapd.folder / "data.ldif"
            data.write_text(DATA)
            slapd.load(data)
            slapd.start()
            client("ldapmodify", slapd.url, stdin=WRITES)
            cls.dump = slapd.dump()
        finally:
            slapd.stop()

    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ldapd-roundtrip-"))
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.config = self.folder / "ldapd.toml"
        self.config.write_text(CONFIG.replace("{port}", "0"))
        self.dumpFile = self.folder / "slapcat.ldif"
        self.dumpFile.write_bytes(self.dump)

    def exported(self) -> bytes:
        """
        @return: what C{ldapd-admin export} writes of the database.
        """
        out = self.folder / "export.ldif"
        admin("export", str(self.config), "-q", "-o", str(out))
        return out.read_bytes()

    def test_childrenFirst(self) -> None:
        """
        slapcat writes the moved entries before their new parent: the
        imports below load such a file.
        """
        self.assertRaises(self.failureException, self.assertParentsFirst, self.dump)

    def test_bulk(self) -> None:
        """
        The bulk import (the sql backend's) loads slapcat's file as it is:
        the export holds the same entries, operational attributes included,
        parents first.
        """
        admin("import", str(self.config), str(self.dumpFile), "-q")
        exported = self.exported()
        self.assertSameEntries(self.dump, exported)
        self.assertParentsFirst(exported)

    def test_perEntry(self) -> None:
        """
        The import entry by entry, through the plugins' hooks, loads it too.
        """
        admin("import", str(self.config), str(self.dumpFile), "-q", "--per-entry")
        self.assertSameEntries(self.dump, self.exported())

    def test_served(self) -> None:
        """
        The real server on the imported database authenticates a moved,
        renamed account with its password (ldapwhoami) and finds entries by
        their UTF-8 values.
        """
        admin("import", str(self.config), str(self.dumpFile), "-q")
        server = ServerProcess(CONFIG, self.folder)
        server.start()
        self.addCleanup(server.stop)
        self.assertEqual(client("ldapwhoami", server.url, dn=ALICE, password=ALICE_PASSWORD),
                         f"dn:{ALICE}\n")
        found = client("ldapsearch", server.url, "-LLL", "-b", BASE, "(sn=Müller)", "dn")
        self.assertIn("dn:: ", found)


class LdapdToSlapaddTests(RoundTripMixin, unittest.TestCase):
    """
    ldapd's data, written by clients of the real server and dumped by
    C{ldapd-admin export}, loaded by slapadd and served by slapd.
    """

    export: bytes = b""

    @classmethod
    def setUpClass(cls) -> None:
        _requireSlapd()
        folder = Path(tempfile.mkdtemp(prefix="ldapd-roundtrip-"))
        try:
            config = folder / "ldapd.toml"
            config.write_text(CONFIG.replace("{port}", "0"))
            data = folder / "data.ldif"
            data.write_text(DATA)
            admin("import", str(config), str(data), "-q")
            server = ServerProcess(CONFIG, folder)
            server.start()
            try:
                client("ldapmodify", server.url, stdin=WRITES)
            finally:
                server.stop()
            out = folder / "export.ldif"
            admin("export", str(config), "-q", "-o", str(out))
            cls.export = out.read_bytes()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def loaded(self, quick: bool) -> SlapdProcess:
        """
        @return: a slapd whose database slapadd loaded from the export.
        """
        slapd = SlapdProcess()
        self.addCleanup(slapd.stop)
        data = slapd.folder / "export.ldif"
        data.write_bytes(self.export)
        slapd.load(data, quick=quick)
        return slapd

    def test_exported(self) -> None:
        """
        The export has every entry, parents first, with its operational
        attributes, and the writes made through the server.
        """
        self.assertParentsFirst(self.export)
        exported = entries(self.export, self.schema)
        alice = exported[self.schema.normalizeDN(DN.parse(ALICE))]
        self.assertEqual(alice["uid"], {b"alice", b"alicia"})
        self.assertEqual(alice["modifiersname"], {self.schema.normalizeDN(DN.parse(ROOT_DN))})
        groups = exported[self.schema.normalizeDN(DN.parse(f"ou=groups,{BASE}"))]
        self.assertEqual(groups["description"], {b"every group"})

    def test_slapadd(self) -> None:
        """
        slapadd, with its checks, loads the export; slapcat gives back the
        same entries.
        """
        slapd = self.loaded(quick=False)
        self.assertSameEntries(self.export, slapd.dump())

    def test_slapaddQuick(self) -> None:
        """
        slapadd -q loads it too.
        """
        slapd = self.loaded(quick=True)
        self.assertSameEntries(self.export, slapd.dump())

    def test_served(self) -> None:
        """
        slapd on the loaded database authenticates the moved, renamed
        account with the password hash ldapd kept.
        """
        slapd = self.loaded(quick=True)
        slapd.start()
        self.assertEqual(client("ldapwhoami", slapd.url, dn=ALICE, password=ALICE_PASSWORD),
                         f"dn:{ALICE}\n")
