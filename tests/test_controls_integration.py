"""
The request controls that change what an operation reads or writes, through
real clients against the real C{twist ldapd}, on the memory and sql
backends, and side by side with a private slapd: Assertion (RFC 4528),
Pre-Read and Post-Read (RFC 4527), Don't Use Copy (RFC 6171), Matched
Values (RFC 3876), Permissive Modify, Relax Rules, Session Tracking,
Subentries (RFC 3672), RFC 4529's C{@objectClass} attribute lists, and
filters on hasSubordinates and numSubordinates.

L{SlapdSideBySideTests} runs one battery of ldap-utils commands against
slapd and two ldapd servers (memory and sql) serving the example
organisation with the same access policy, and compares what each command
prints and its exit status: the entries, the entries of the pre-read and
post-read response controls, after normalising only what legitimately
differs between servers (the order of entries, attributes and values,
timestamps, entryUUIDs, CSNs, diagnostic messages). Where ldapd answers
differently on purpose, L{DOCUMENTED} says how and why.

The client tests (python-ldap, ldap3) check each control's effect on its
own, so that each fails if the control were ignored, with or without slapd.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

import ldap
import ldap3
import pytest
from ldap.controls import ValueLessRequestControl
from ldap.controls.libldap import AssertionControl, MatchedValuesControl
from ldap.controls.readentry import PostReadControl, PreReadControl
from ldap.controls.sessiontrack import SessionTrackingControl
from ldap.controls.simple import RelaxRulesControl
from twisted.trial import unittest

from ldapd.testing import (
    EXAMPLE_LDIF,
    SLAPD,
    ServerProcess,
    ServerTestsMixin,
    SlapdProcess,
    exampleConfig,
)

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "secret"
ALICE = f"uid=alice,{PEOPLE}"
DEVICE = f"cn=ctl1,{PEOPLE}"

PERMISSIVE_MODIFY = "1.2.840.113556.1.4.1413"
DONT_USE_COPY = "1.3.6.1.1.22"
SUBENTRIES = "1.3.6.1.4.1.4203.1.10.1"
#: The Subentries control's value: visibility TRUE.
VISIBLE = b"\x01\x01\xff"

#: slapd's access policy, the one of ldapd's example server (Debian's).
_SLAPD_ACCESS = """\
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"""

#: Values whose form, not content, is compared.
_VOLATILE = re.compile(
    r"\d{14}(\.\d{6})?Z(#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6})?|"
    r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}"
)

#: Operational attributes only ldapd has (docs/compatibility.md).
_ONE_SIDED = {"numsubordinates"}


def memoryConfig() -> str:
    """
    @return: the example configuration with the memory backend.
    """
    lines = [line for line in exampleConfig().splitlines()
             if not line.startswith(("url =", "indexes ="))]
    config = "\n".join(lines) + "\n"
    if 'backend = "sql"' not in config:
        raise ValueError("the example configuration no longer uses the sql backend")
    return config.replace('backend = "sql"', 'backend = "memory"')


#: An outcome: the exit status, and the entries printed by block
#: (C{"search"}, C{"preread"}, C{"postread"}): DN to attribute name to
#: sorted values.
Outcome = tuple[int, dict[str, dict[str, dict[str, list[str]]]]]


def parseOutput(status: int, output: str) -> Outcome:
    """
    Read what an ldap-utils command printed (with C{-o ldif-wrap=no}).

    @param status: its exit status.
    @param output: its standard output.
    @return: the outcome, normalised.
    """
    blocks: dict[str, dict[str, dict[str, list[str]]]] = {}
    block = "search"
    entry: dict[str, list[str]] | None = None
    for line in output.splitlines():
        marker = re.fullmatch(r"# ==> (\w+)", line)
        if marker:
            block, entry = marker.group(1), None
            continue
        if line.startswith("# <== "):
            block, entry = "search", None
            continue
        if not line.strip():
            entry = None
            continue
        if line.startswith(("#", " ", "control:", "modifying ", "adding ", "deleting ")):
            continue
        name, _, value = line.partition(":")
        value = value.lstrip(": ")
        if name == "dn":
            entry = blocks.setdefault(block, {}).setdefault(value.lower(), {})
            continue
        if entry is None or name.lower() in _ONE_SIDED:
            continue
        entry.setdefault(name.lower(), []).append(
            "<form ok>" if _VOLATILE.fullmatch(value) else value)
    for entries in blocks.values():
        for attributes in entries.values():
            for values in attributes.values():
                values.sort()
    return status, blocks


def run(url: str, program: str, *args: str, stdin: str = "", who: tuple[str, str] | None = (
        ROOT_DN, ROOT_PASSWORD)) -> Outcome:
    """
    Run an ldap-utils command against a server.

    @param who: the DN and password to bind with; C{None}: anonymous.
    """
    credentials = ["-D", who[0], "-w", who[1]] if who else []
    result = subprocess.run(
        [program, "-x", "-H", url, "-o", "ldif-wrap=no", *credentials, *args],
        input=stdin.encode("utf-8"), capture_output=True, timeout=30, check=False)
    return parseOutput(result.returncode, result.stdout.decode("utf-8"))


Step = Callable[[str], Outcome]


def search(*args: str, who: tuple[str, str] | None = (ROOT_DN, ROOT_PASSWORD)) -> Step:
    """
    An ldapsearch.
    """
    return lambda url: run(url, "ldapsearch", "-LLL", *args, who=who)


def modify(dn: str, body: str, *args: str, who: tuple[str, str] | None = (
        ROOT_DN, ROOT_PASSWORD)) -> Step:
    """
    One ldapmodify change record (C{body} after the DN).
    """
    return lambda url: run(url, "ldapmodify", *args, stdin=f"dn: {dn}\n{body}\n", who=who)


def compare(dn: str, assertion: str, *args: str) -> Step:
    """
    An ldapcompare as the root DN.
    """
    return lambda url: run(url, "ldapcompare", *args, dn, assertion)


def battery() -> list[tuple[str, str, Step, int]]:
    """
    @return: every step as C{(category, name, step, exit status ldapd must
        give)}, in the order they run. The status is checked on its own
        too: where it is not 0, the control was not ignored.
    """
    alice = (ALICE, "alice-secret")
    steps: list[tuple[str, str, Step, int]] = [
        ("read", "add with post-read", modify(
            DEVICE, "changetype: add\nobjectClass: device\ncn: ctl1\ndescription: one",
            "-e", "postread=cn,description"), 0),
        ("assertion", "search base false", search("-b", DEVICE, "-s", "base", "-e",
                                                  "assert=(cn=nope)", "1.1"), 122),
        ("assertion", "search base true", search("-b", DEVICE, "-s", "base", "-e",
                                                 "assert=(cn=ctl1)", "1.1"), 0),
        ("assertion", "search one, tested on the base", search(
            "-b", PEOPLE, "-s", "one", "-e", "assert=(cn=nope)", "1.1"), 122),
        ("assertion", "search of a missing base", search(
            "-b", f"uid=nobody,{PEOPLE}", "-s", "base", "-e", "assert=(cn=nope)", "1.1"), 32),
        ("assertion", "undefined", search("-b", DEVICE, "-s", "base", "-e",
                                          "assert=(nosuch=x)", "1.1"), 122),
        ("assertion", "not undefined", search("-b", DEVICE, "-s", "base", "-e",
                                              "assert=(!(nosuch=x))", "1.1"), 122),
        ("assertion", "anonymous on userPassword", search(
            "-b", ALICE, "-s", "base", "-e", "assert=(userPassword=*)", "1.1", who=None), 122),
        ("assertion", "anonymous on no userPassword", search(
            "-b", ALICE, "-s", "base", "-e", "assert=(!(userPassword=*))", "1.1", who=None), 122),
        ("assertion", "anonymous, true", search(
            "-b", ALICE, "-s", "base", "-e", "assert=(uid=alice)", "1.1", who=None), 0),
        ("assertion", "compare false", compare(DEVICE, "cn:ctl1", "-e", "assert=(cn=nope)"), 122),
        ("assertion", "compare true", compare(DEVICE, "cn:ctl1", "-e", "assert=(cn=ctl1)"), 6),
        ("assertion", "modify false", modify(
            DEVICE, "changetype: modify\nadd: description\ndescription: two",
            "-e", "assert=(description=nope)"), 122),
        ("assertion", "modify false changed nothing", search(
            "-b", DEVICE, "-s", "base", "description"), 0),
        ("assertion", "add false", modify(
            f"cn=ctl3,{PEOPLE}", "changetype: add\nobjectClass: device\ncn: ctl3",
            "-e", "assert=(cn=nope)"), 122),
        ("assertion", "add false added nothing", search(
            "-b", f"cn=ctl3,{PEOPLE}", "-s", "base", "1.1"), 32),
        ("read", "modify true, pre-read and post-read", modify(
            DEVICE, "changetype: modify\nadd: description\ndescription: two",
            "-e", "assert=(description=one)", "-e", "preread=description", "-e",
            "postread=description"), 0),
        ("read", "pre-read of everything", modify(
            DEVICE, "changetype: modify\nreplace: description\ndescription: three",
            "-e", "preread=*,+"), 0),
        ("read", "empty pre-read, post-read of none", modify(
            DEVICE, "changetype: modify\nreplace: description\ndescription: four",
            "-e", "preread", "-e", "postread=1.1"), 0),
        # slapd's answer to an @objectClass list in a Pre-Read control varies
        # from run to run (the attributes, or none), so it is not compared.
        ("read", "post-read of one attribute", modify(
            DEVICE, "changetype: modify\nreplace: description\ndescription: five",
            "-e", "postread=description"), 0),
        ("read", "critical pre-read of an add", modify(
            f"cn=ctl4,{PEOPLE}", "changetype: add\nobjectClass: device\ncn: ctl4",
            "-e", "!preread"), 12),
        ("permissive", "add an existing value", modify(
            DEVICE, "changetype: modify\nadd: description\ndescription: five",
            "-e", PERMISSIVE_MODIFY), 0),
        ("permissive", "add existing and new values", modify(
            DEVICE, "changetype: modify\nadd: description\ndescription: Five\ndescription: six",
            "-e", PERMISSIVE_MODIFY), 0),
        ("permissive", "delete a missing attribute", modify(
            DEVICE, "changetype: modify\ndelete: l", "-e", PERMISSIVE_MODIFY), 0),
        ("permissive", "delete a value of a missing attribute", modify(
            DEVICE, "changetype: modify\ndelete: l\nl: x", "-e", PERMISSIVE_MODIFY), 0),
        ("permissive", "delete a missing value", modify(
            DEVICE, "changetype: modify\ndelete: description\ndescription: nothere",
            "-e", f"!{PERMISSIVE_MODIFY}"), 0),
        ("permissive", "without the control", modify(
            DEVICE, "changetype: modify\nadd: description\ndescription: six"), 20),
        ("permissive", "the values", search("-b", DEVICE, "-s", "base", "description"), 0),
        ("relax", "add with operational attributes", modify(
            f"cn=ctl2,{PEOPLE}", "changetype: add\nobjectClass: device\ncn: ctl2\n"
            "createTimestamp: 20200101000000Z\nentryUUID: 00000000-0000-0000-0000-000000000009\n"
            "modifyTimestamp: 20200101000000Z\ncreatorsName: cn=x\nmodifiersName: cn=y",
            "-e", "relax"), 0),
        ("matched", "mail", search("-b", PEOPLE, "(uid=alice)", "-E", "mv=(mail=*)",
                                   "mail", "cn", "objectClass"), 0),
        ("matched", "object class and subclasses", search(
            "-b", PEOPLE, "(uid=alice)", "-E", "mv=(objectClass=person)", "objectClass"), 0),
        ("matched", "two items", search("-b", PEOPLE, "(uid=alice)", "-E",
                                        "mv=((objectClass=top)(cn=alice*))", "objectClass", "cn"), 0),
        ("matched", "critical, all attributes", search(
            "-b", PEOPLE, "(uid=alice)", "-E", "!mv=(cn=*ANDERSON)"), 0),
        ("matched", "options", search("-b", PEOPLE, "(uid=alice)", "-E", "mv=(cn;lang-en=*)", "cn"), 0),
        ("attributes", "@organizationalPerson", search("-b", PEOPLE, "(uid=alice)",
                                                       "@organizationalPerson"), 0),
        ("attributes", "@posixAccount and cn", search("-b", PEOPLE, "(uid=alice)",
                                                      "@posixAccount", "cn"), 0),
        ("attributes", "unknown class", search("-b", PEOPLE, "(uid=alice)", "@nosuch"), 0),
        ("recognised", "dontUseCopy on search", search(
            "-b", DEVICE, "-s", "base", "-E", "!dontUseCopy", "1.1"), 0),
        ("recognised", "dontUseCopy on compare", compare(DEVICE, "cn:ctl1", "-e",
                                                         f"!{DONT_USE_COPY}"), 6),
        ("recognised", "dontUseCopy on modify", modify(
            DEVICE, "changetype: modify\nreplace: l\nl: x", "-e", f"!{DONT_USE_COPY}"), 12),
        ("subordinates", "hasSubordinates=TRUE", search("-b", BASE, "(hasSubordinates=TRUE)",
                                                        "1.1"), 0),
        ("subordinates", "hasSubordinates=FALSE", search("-b", PEOPLE, "(hasSubordinates=FALSE)",
                                                         "1.1"), 0),
        ("subordinates", "under a not", search(
            "-b", BASE, "(&(objectClass=organizationalUnit)(!(hasSubordinates=TRUE)))", "1.1"), 0),
        ("subordinates", "in an or, with the attribute", search(
            "-b", BASE, "(|(hasSubordinates=TRUE)(uid=alice))", "hasSubordinates"), 0),
        ("subordinates", "paged", search("-b", BASE, "-E", "pr=2/noprompt",
                                         "(hasSubordinates=TRUE)", "1.1"), 0),
        ("subentries", "add", modify(
            f"cn=sub1,{PEOPLE}", "changetype: add\nobjectClass: subentry\ncn: sub1\n"
                                 "subtreeSpecification: {}"), 0),
        ("subentries", "add another", modify(
            f"cn=sub2,{PEOPLE}", "changetype: add\nobjectClass: subentry\ncn: sub2\n"
                                 'subtreeSpecification: { base "ou=x" }'), 0),
        ("subentries", "add with any specification", modify(
            f"cn=sub3,{PEOPLE}", "changetype: add\nobjectClass: subentry\ncn: sub3\n"
                                 "subtreeSpecification: garbage"), 0),
        ("subentries", "add without a specification", modify(
            f"cn=sub4,{PEOPLE}", "changetype: add\nobjectClass: subentry\ncn: sub4"), 65),
        ("subentries", "hidden from a subtree search", search("-b", BASE, "(cn=sub*)", "1.1"), 0),
        ("subentries", "hidden from a search for them", search(
            "-b", BASE, "(objectClass=subentry)", "1.1"), 0),
        ("subentries", "shown to a search of it", search("-b", f"cn=sub1,{PEOPLE}",
                                                         "-s", "base", "1.1"), 0),
        ("subentries", "hidden from a one-level search", search(
            "-b", PEOPLE, "-s", "one", "(cn=sub1)", "1.1"), 0),
        ("subentries", "only them with the control", search("-b", BASE, "-E", "subentries",
                                                            "(cn=*)", "1.1"), 0),
        ("subentries", "none of them with visibility false", search(
            "-b", BASE, "-E", "subentries=false", "(cn=sub*)", "1.1"), 0),
        ("subentries", "not its base with visibility false", search(
            "-b", f"cn=sub1,{PEOPLE}", "-s", "base", "-E", "subentries=false", "1.1"), 0),
        ("subentries", "no ordinary base with visibility true", search(
            "-b", ALICE, "-s", "base", "-E", "subentries=true", "1.1"), 0),
        ("subentries", "critical, with values", search("-b", BASE, "-E", "!subentries",
                                                       "subtreeSpecification"), 0),
        ("read", "delete with pre-read", modify(
            f"cn=ctl2,{PEOPLE}", "changetype: delete", "-e", "preread=cn", "-e",
            "assert=(cn=ctl2)"), 0),
        ("assertion", "rename false", modify(
            DEVICE, "changetype: modrdn\nnewrdn: cn=ctl9\ndeleteoldrdn: 1", "-e",
            "assert=(cn=nope)"), 122),
        ("read", "rename with pre-read and post-read", modify(
            DEVICE, "changetype: modrdn\nnewrdn: cn=ctl9\ndeleteoldrdn: 1", "-e", "preread=cn",
            "-e", "postread=cn,entryDN", "-e", "assert=(cn=ctl1)"), 0),
        ("assertion", "delete false", modify(
            f"cn=ctl9,{PEOPLE}", "changetype: delete", "-e", "assert=(cn=ctl1)"), 122),
    ]
    # Relax Rules: (step, attribute, value, who, status ldapd must give),
    # inserted before the add with operational attributes.
    relaxed = [
        ("createTimestamp", "createTimestamp", "20200101000000Z", None, 0),
        ("modifyTimestamp", "modifyTimestamp", "20200101000000Z", None, 0),
        ("creatorsName", "creatorsName", "cn=x", None, 0),
        ("entryUUID", "entryUUID", "00000000-0000-0000-0000-000000000001", None, 0),
        ("entryCSN", "entryCSN", "20200101000000.000000Z#000000#000#000000", None, 19),
        ("structuralObjectClass", "structuralObjectClass", "person", None, 19),
        ("hasSubordinates", "hasSubordinates", "TRUE", None, 19),
        ("without the control", "createTimestamp", "20210101000000Z", None, 19),
        ("not the root DN", "createTimestamp", "20200101000000Z", alice, 50),
        ("not the root DN, not manageable", "entryCSN",
         "20200101000000.000000Z#000000#000#000000", alice, 19),
    ]
    at = next(i for i, step in enumerate(steps) if step[1] == "add with operational attributes")
    steps[at:at] = [
        ("relax", name, modify(
            DEVICE, f"changetype: modify\nreplace: {attribute}\n{attribute}: {value}",
            *(() if name == "without the control" else ("-e", "relax")),
            who=who or (ROOT_DN, ROOT_PASSWORD)), status)
        for name, attribute, value, who, status in relaxed]
    steps.insert(at + len(relaxed), ("relax", "the values written", search(
        "-b", DEVICE, "-s", "base", "createTimestamp", "modifyTimestamp", "creatorsName",
        "modifiersName", "entryUUID"), 0))
    return steps


#: Where ldapd answers differently on purpose: the step's name mapped to
#: what ldapd gives, as a function of slapd's outcome.
DOCUMENTED: dict[str, Callable[[Outcome], Any]] = {
    # Deleting a value the attribute lacks is what the control lets pass
    # (Active Directory's definition, MS-ADTS 3.1.1.3.4.1.8); slapd 2.5
    # passes only a missing attribute, and answers noSuchAttribute (16).
    "delete a missing value": lambda outcome: (0, outcome[1]),
}


def _slapd(folder: Path) -> SlapdProcess:
    """
    A private slapd with the example data and ldapd's access policy.

    @raise unittest.SkipTest: if slapd is not installed.
    """
    if not SLAPD.is_file():
        raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
    data = folder / "example-slapd.ldif"
    data.write_text("\n".join(
        line for line in EXAMPLE_LDIF.read_text().splitlines()
        if not line.startswith(("#", "version:"))
    ).strip() + "\n")
    slapd = SlapdProcess(BASE, ROOT_DN, ROOT_PASSWORD, globalConfig="sizelimit 500\n")
    with open(slapd.configPath, "a") as config:
        config.write(_SLAPD_ACCESS)
    slapd.load(data)
    return slapd


@functools.cache
def outcomes() -> tuple[list[tuple[str, str, Step, int]], dict[str, list[Outcome]]]:
    """
    Run the battery once on slapd and on ldapd with each backend.

    @return: the steps, and each server's outcomes in step order.
    """
    steps = battery()
    folder = Path(tempfile.mkdtemp(prefix="ldapd-controls-"))
    servers: dict[str, Any] = {}
    try:
        servers["slapd"] = _slapd(folder)
        (folder / "memory").mkdir()
        (folder / "sql").mkdir()
        servers["memory"] = ServerProcess(memoryConfig(), folder / "memory")
        servers["sql"] = ServerProcess(exampleConfig(), folder / "sql")
        for server in servers.values():
            server.start()
        return steps, {name: [step(server.url) for _, _, step, _ in steps]
                       for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


class SlapdSideBySideTests(unittest.SynchronousTestCase):
    """
    ldapd, on the memory and the sql backend, gives what slapd gives for
    the same commands with the same controls on the same data.
    """

    def setUp(self) -> None:
        self.steps, self.outcomes = outcomes()

    def assertSame(self, category: str) -> None:
        """
        Each step of C{category} gives ldapd the exit status it must give,
        and on both backends the outcome slapd gives (or the documented one).
        """
        differences = []
        for i, (kind, name, _, status) in enumerate(self.steps):
            if kind != category:
                continue
            theirs = self.outcomes["slapd"][i]
            expected = DOCUMENTED[name](theirs) if name in DOCUMENTED else theirs
            for backend in ("memory", "sql"):
                ours = self.outcomes[backend][i]
                if ours[0] != status:
                    differences.append(f"{name} ({backend}): status {ours[0]}, not {status}")
                if ours != expected:
                    differences.append(f"{name} ({backend}):\n  slapd {expected}\n  ldapd {ours}")
        if differences:
            self.fail("\n".join(differences))

    def test_documented(self) -> None:
        """
        Each documented difference is exercised, and slapd still differs.
        """
        names = {name: i for i, (_, name, _, _) in enumerate(self.steps)}
        for name in DOCUMENTED:
            self.assertIn(name, names)
            self.assertNotEqual(self.outcomes["slapd"][names[name]],
                                self.outcomes["memory"][names[name]], name)

    def test_assertion(self) -> None:
        """
        A false assertion is assertionFailed (122) on search (tested on the
        base), compare, add, modify, rename and delete, and changes nothing;
        Undefined is not true; what a client may not read it may not test.
        """
        self.assertSame("assertion")

    def test_read(self) -> None:
        """
        Pre-read and post-read return the entry before and after add,
        modify, rename and delete, with the attributes selected as a
        search's.
        """
        self.assertSame("read")

    def test_permissive(self) -> None:
        """
        With Permissive Modify, adding a value there and deleting one not
        there succeed.
        """
        self.assertSame("permissive")

    def test_relax(self) -> None:
        """
        With Relax Rules the root DN writes the manageable operational
        attributes, and keeps the values it writes; no one else does.
        """
        self.assertSame("relax")

    def test_matched(self) -> None:
        """
        Matched Values returns only the values matching a filter item.
        """
        self.assertSame("matched")

    def test_attributes(self) -> None:
        """
        C{@objectClass} selects the class's attributes (RFC 4529).
        """
        self.assertSame("attributes")

    def test_recognised(self) -> None:
        """
        Don't Use Copy is recognised, critical, on search and compare.
        """
        self.assertSame("recognised")

    def test_subordinates(self) -> None:
        """
        Filters on hasSubordinates select the entries with children.
        """
        self.assertSame("subordinates")

    def test_subentries(self) -> None:
        """
        Subentries are hidden but from a search of their own, and shown
        alone with the Subentries control.
        """
        self.assertSame("subentries")


#: The access rules of the client tests: no one reads telephoneNumber, bob
#: may not read (nor test) hasSubordinates, only users see the service
#: accounts, everyone changes their own entry.
_RULES = """
[[plugin]]
name = "acl"
rules = [
  'to attrs=userPassword by self =wx by anonymous auth by * none',
  'to attrs=telephoneNumber by * none',
  'to attrs=hasSubordinates by dn.exact="uid=bob,ou=people,dc=example,dc=com" none by * read',
  'to dn.one="ou=services,dc=example,dc=com" by users read by * none',
  'to * by self write by * read',
]
"""


class ClientTestsMixin(ServerTestsMixin):
    """
    Each control through python-ldap and ldap3, against a server with the
    acl plugin: each test fails if the control is ignored.
    """

    def connect(self, who: str = ROOT_DN, password: str = ROOT_PASSWORD) -> Any:
        """
        @return: a python-ldap connection bound as C{who} (C{""}: anonymous).
        """
        assert self.server is not None
        connection = ldap.initialize(self.server.url)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 10)
        connection.simple_bind_s(who, password if who else "")
        self.addCleanup(connection.unbind_s)
        return connection

    def addDevice(self, connection: Any, cn: str, *extra: tuple[str, list[bytes]]) -> str:
        """
        Add a device under ou=people.

        @return: its DN.
        """
        dn = f"cn={cn},{PEOPLE}"
        connection.add_s(dn, [("objectClass", [b"device"]), ("cn", [cn.encode()]), *extra])
        return dn

    def test_assertion(self) -> None:
        """
        python-ldap's AssertionControl: a false assertion fails a modify
        with assertionFailed and changes nothing; a true one lets it
        through.
        """
        connection = self.connect()
        dn = self.addDevice(connection, "assert1", ("description", [b"one"]))
        change = [(ldap.MOD_REPLACE, "description", [b"two"])]
        with self.assertRaises(ldap.ASSERTION_FAILED):
            connection.modify_ext_s(dn, change, serverctrls=[
                AssertionControl(True, "(description=nope)")])
        self.assertEqual(connection.search_s(dn, ldap.SCOPE_BASE)[0][1]["description"], [b"one"])
        connection.modify_ext_s(dn, change, serverctrls=[AssertionControl(True, "(description=one)")])
        self.assertEqual(connection.search_s(dn, ldap.SCOPE_BASE)[0][1]["description"], [b"two"])
        with self.assertRaises(ldap.ASSERTION_FAILED):
            connection.delete_ext_s(dn, serverctrls=[AssertionControl(True, "(description=one)")])

    def test_assertionHidden(self) -> None:
        """
        An assertion on an attribute the client may not read is Undefined,
        true or negated: it learns nothing of the value.
        """
        connection = self.connect(ALICE, "alice-secret")
        for assertion in ("(telephoneNumber=*)", "(!(telephoneNumber=*))"):
            with self.assertRaises(ldap.ASSERTION_FAILED):
                connection.search_ext_s(ALICE, ldap.SCOPE_BASE, attrlist=["1.1"], serverctrls=[
                    AssertionControl(True, assertion)])
        connection.search_ext_s(ALICE, ldap.SCOPE_BASE, attrlist=["1.1"], serverctrls=[
            AssertionControl(True, "(uid=alice)")])

    def test_readEntry(self) -> None:
        """
        python-ldap's PreReadControl and PostReadControl: the entry before
        and after a modify, with the attributes asked for.
        """
        connection = self.connect()
        dn = self.addDevice(connection, "read1", ("description", [b"before"]))
        _, _, _, controls = connection.modify_ext_s(
            dn, [(ldap.MOD_REPLACE, "description", [b"after"])],
            serverctrls=[PreReadControl(True, ["description"]), PostReadControl(True, ["*", "+"])])
        read = {c.controlType: c for c in controls}
        pre, post = read[PreReadControl.controlType], read[PostReadControl.controlType]
        self.assertEqual((pre.dn, pre.entry), (dn, {"description": [b"before"]}))
        self.assertEqual(post.entry["description"], [b"after"])
        self.assertEqual(post.entry["entryDN"], [dn.encode()])
        self.assertEqual(post.entry["hasSubordinates"], [b"FALSE"])

    def test_readEntryAccess(self) -> None:
        """
        Pre-read returns only what the client may read: alice, changing her
        own entry, gets neither her telephoneNumber nor her userPassword.
        """
        connection = self.connect(ALICE, "alice-secret")
        _, _, _, controls = connection.modify_ext_s(
            ALICE, [(ldap.MOD_REPLACE, "description", [b"changed"])],
            serverctrls=[PreReadControl(True, ["*"])])
        entry = controls[0].entry
        self.assertEqual(entry["uid"], [b"alice"])
        self.assertNotIn("telephoneNumber", entry)
        self.assertNotIn("userPassword", entry)

    def test_permissiveModify(self) -> None:
        """
        With python-ldap's ValueLessRequestControl for Permissive Modify, an
        existing value added and a missing one deleted are no error; without
        it they are.
        """
        connection = self.connect()
        dn = self.addDevice(connection, "permissive1", ("description", [b"a"]))
        changes = [(ldap.MOD_ADD, "description", [b"a", b"b"]), (ldap.MOD_DELETE, "l", [b"x"])]
        with self.assertRaises(ldap.TYPE_OR_VALUE_EXISTS):
            connection.modify_ext_s(dn, changes)
        connection.modify_ext_s(dn, changes, serverctrls=[
            ValueLessRequestControl(PERMISSIVE_MODIFY, True)])
        self.assertEqual(sorted(connection.search_s(dn, ldap.SCOPE_BASE)[0][1]["description"]),
                         [b"a", b"b"])

    def test_relaxRules(self) -> None:
        """
        With python-ldap's RelaxRulesControl the root DN sets createTimestamp,
        and the modifyTimestamp it writes is kept; others get
        insufficientAccess.
        """
        connection = self.connect()
        dn = self.addDevice(connection, "relax1")
        changes = [(ldap.MOD_REPLACE, "createTimestamp", [b"20200101000000Z"]),
                   (ldap.MOD_REPLACE, "modifyTimestamp", [b"20210101000000Z"])]
        with self.assertRaises(ldap.CONSTRAINT_VIOLATION):
            connection.modify_ext_s(dn, changes)
        connection.modify_ext_s(dn, changes, serverctrls=[RelaxRulesControl(True)])
        entry = connection.search_s(dn, ldap.SCOPE_BASE, attrlist=["+"])[0][1]
        self.assertEqual(entry["createTimestamp"], [b"20200101000000Z"])
        self.assertEqual(entry["modifyTimestamp"], [b"20210101000000Z"])
        alice = self.connect(ALICE, "alice-secret")
        with self.assertRaises(ldap.INSUFFICIENT_ACCESS):
            alice.modify_ext_s(ALICE, changes[:1], serverctrls=[RelaxRulesControl(True)])

    def test_matchedValues(self) -> None:
        """
        python-ldap's MatchedValuesControl: only the matching values.
        """
        connection = self.connect()
        dn = self.addDevice(connection, "matched1", ("description", [b"red", b"green", b"blue"]))
        results = connection.search_ext_s(dn, ldap.SCOPE_BASE, attrlist=["description", "cn"],
                                          serverctrls=[MatchedValuesControl(True, "(description=*e*)")])
        self.assertEqual(sorted(results[0][1]["description"]), [b"blue", b"green", b"red"])
        results = connection.search_ext_s(dn, ldap.SCOPE_BASE, attrlist=["description", "cn"],
                                          serverctrls=[MatchedValuesControl(True, "(description=gr*)")])
        self.assertEqual(results[0][1], {"description": [b"green"]})

    def test_recognised(self) -> None:
        """
        Don't Use Copy and Session Tracking are understood, critical; the
        session is written to the access log.
        """
        connection = self.connect()
        results = connection.search_ext_s(ALICE, ldap.SCOPE_BASE, attrlist=["1.1"], serverctrls=[
            ValueLessRequestControl(DONT_USE_COPY, True)])
        self.assertEqual([dn for dn, _ in results], [ALICE])
        session = SessionTrackingControl("192.0.2.7", "app.example.com",
                                         "1.3.6.1.4.1.21008.108.63.1.3", "tracked-user")
        session.criticality = True
        connection.search_ext_s(ALICE, ldap.SCOPE_BASE, attrlist=["1.1"], serverctrls=[session])
        assert self.server is not None
        tracked = 'session="192.0.2.7 app.example.com tracked-user"'
        self.assertIn(tracked, self.server.log(containing=tracked))

    def test_subentries(self) -> None:
        """
        A subentry is left out of a subtree search, and alone returned with
        the Subentries control (through ldap3, as a raw control).
        """
        connection = self.connect()
        connection.add_s(f"cn=policy,{PEOPLE}", [
            ("objectClass", [b"subentry"]), ("cn", [b"policy"]), ("subtreeSpecification", [b"{}"])])
        assert self.server is not None
        client = ldap3.Connection(self.server.url, ROOT_DN, ROOT_PASSWORD, auto_bind=True)
        self.addCleanup(client.unbind)
        client.search(BASE, "(cn=*)", attributes=["cn"])
        self.assertNotIn(f"cn=policy,{PEOPLE}", [e.entry_dn for e in client.entries])
        client.search(BASE, "(cn=*)", attributes=["cn"],
                      controls=[(SUBENTRIES, True, VISIBLE)])
        self.assertEqual([e.entry_dn for e in client.entries], [f"cn=policy,{PEOPLE}"])

    def test_objectClassAttributes(self) -> None:
        """
        ldap3 asking for C{@posixAccount} gets the class's attributes.
        """
        assert self.server is not None
        client = ldap3.Connection(ldap3.Server(self.server.url, get_info=ldap3.NONE), ROOT_DN,
                                  ROOT_PASSWORD, auto_bind=True, check_names=False)
        self.addCleanup(client.unbind)
        client.search(PEOPLE, "(uid=alice)", attributes=["@posixAccount"])
        attributes = set(client.response[0]["raw_attributes"])
        self.assertTrue({"uidNumber", "homeDirectory", "loginShell"} <= attributes)
        self.assertNotIn("mail", attributes)

    def test_hasSubordinates(self) -> None:
        """
        ldap3's filter C{(hasSubordinates=TRUE)} finds the entries with
        children the client may see: ou=services only for users; none for
        bob, who may neither test nor read hasSubordinates (python-ldap);
        C{(numSubordinates>=5)} the entries with at least five.
        """
        assert self.server is not None

        def found(who: str | None, password: str | None, f: str) -> set[str]:
            client = ldap3.Connection(self.server.url, who, password, auto_bind=True)  # type: ignore[union-attr]
            self.addCleanup(client.unbind)
            client.search(BASE, f, attributes=["1.1"])
            return {e.entry_dn for e in client.entries}

        anonymous = found(None, None, "(hasSubordinates=TRUE)")
        self.assertIn(PEOPLE, anonymous)
        self.assertNotIn(f"ou=services,{BASE}", anonymous)
        self.assertIn(f"ou=services,{BASE}", found(ALICE, "alice-secret", "(hasSubordinates=TRUE)"))
        self.assertEqual(found(f"uid=bob,{PEOPLE}", "bob-secret", "(hasSubordinates=TRUE)"), set())
        bob = self.connect(f"uid=bob,{PEOPLE}", "bob-secret")
        self.assertEqual(bob.search_s(PEOPLE, ldap.SCOPE_BASE, attrlist=["hasSubordinates"]),
                         [(PEOPLE, {})])
        alice = self.connect(ALICE, "alice-secret")
        self.assertEqual(alice.search_s(PEOPLE, ldap.SCOPE_BASE, attrlist=["hasSubordinates"]),
                         [(PEOPLE, {"hasSubordinates": [b"TRUE"]})])
        self.assertEqual(found(ROOT_DN, ROOT_PASSWORD, "(numSubordinates>=5)"), {PEOPLE})


class MemoryClientTests(ClientTestsMixin, unittest.SynchronousTestCase):
    """
    The controls with the memory backend.
    """

    serverConfig = memoryConfig() + _RULES


class SQLClientTests(ClientTestsMixin, unittest.SynchronousTestCase):
    """
    The controls with the sql backend (SQLite).
    """

    serverConfig = exampleConfig() + _RULES
