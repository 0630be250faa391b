"""
The benchmark harness (benchmarks/compare.py) run briefly, so that it keeps
working: a few hundred entries, one short round, every request answered
without error. Nothing here asserts a speed.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
from pathlib import Path

import pytest
from twisted.trial import unittest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import compare  # noqa: E402 (found through the path set above)
import inprocess  # noqa: E402

#: A short run on one core (a machine may have only one), ldapd beside the floor.
_BRIEF = ["--sizes", "300", "--rounds", "1", "--seconds", "0.5", "--server-cores", "0",
          "--client-cores", "0"]


def _rows(output: str, workloads: list[str]) -> dict[tuple[str, str], list[str]]:
    """
    @return: the table rows of a report, by workload and server.
    """
    rows = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 9 and fields[0] in workloads:
            rows[(fields[0], fields[1])] = fields[2:]
    return rows


def _run(arguments: list[str]) -> str:
    """
    @return: what C{compare.py} prints when run briefly with C{arguments}.
    """
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        compare.main(_BRIEF + arguments)
    return output.getvalue()


class TemplateTests(unittest.TestCase):
    """
    L{compare.Template}: the closed-loop requests the C load generator sends.
    """

    def test_request(self) -> None:
        """
        A template with a user's number and a message id written in is the
        request built for that user with that message id, for every
        closed-loop workload (a bind names the user twice).
        """
        for name, workload in compare.CLOSED_LOOP.items():
            template = compare.Template.of(workload)
            self.assertEqual(len(template.numbers), 2 if name == "bind" else 1)
            for number, messageId in ((1235, 1), (9_999_999, 127), (100, 64)):
                number %= 10**workload.digits
                self.assertEqual(template.request(number, messageId).hex(),
                                 compare._message(workload.build(compare.uid(number)), messageId))

    def test_piece(self) -> None:
        """
        The any workload's template carries four digits, as a piece of cn
        anywhere in the value: C{(cn=*1234*)}.
        """
        template = compare.Template.of(compare.CLOSED_LOOP["any"])
        self.assertEqual(template.digits, 4)
        self.assertIn(b"\x81\x041234", template.request(1234, 1))


class BaselineTests(unittest.TestCase):
    """
    L{compare._baseline}: what a variant of ldapd is reported against.
    """

    def test_baseline(self) -> None:
        """
        A server with a plugin is measured against ldapd, one with several
        workers against the same one with one worker; others have none.
        """
        self.assertEqual(
            [compare._baseline(n) for n in ("ldapd+acl", "ldapd-sqlite-w2", "ldapd-sqlite", "slapd")],
            ["ldapd", "ldapd-sqlite", "", ""])


@pytest.mark.integration
class HarnessTests(unittest.TestCase):
    """
    compare.py end to end, with ldapd and the floor server.
    """

    def test_closedLoopC(self) -> None:
        """
        The closed loop from the C load generator: every search and bind of
        ldapd and the floor is answered, none with an error, and the ratio
        of ldapd to the floor is reported.
        """
        if not (shutil.which("cc") or shutil.which("gcc")):
            raise unittest.SkipTest("no C compiler")
        output = _run(["--servers", "ldapd", "floor", "--connections", "2"])
        rows = _rows(output, ["search", "bind"])
        self.assertEqual(set(rows), {(w, s) for w in ("search", "bind") for s in ("ldapd", "floor")})
        for fields in rows.values():
            self.assertGreater(float(fields[0]), 0)
            self.assertEqual(fields[-1], "0")
        self.assertIn("CLOSED LOOP", output)
        self.assertIn("search: ldapd/floor throughput", output)

    def test_closedLoopPython(self) -> None:
        """
        The closed loop from the Python load generator, the cross-check: a
        search over every entry in random order, answered without error.
        """
        output = _run(["--servers", "ldapd", "--client", "python", "--workloads", "search",
                       "--connections", "2"])
        row = _rows(output, ["search"])[("search", "ldapd")]
        self.assertGreater(float(row[0]), 0)
        self.assertEqual(row[-1], "0")

    def test_plugins(self) -> None:
        """
        ldapd with a plugin (here ppolicy, with its default policy among the
        data) answers binds without error, and its cost is reported against
        ldapd's.
        """
        output = _run(["--servers", "ldapd", "ldapd+ppolicy", "--workloads", "bind",
                       "--connections", "2"])
        row = _rows(output, ["bind"])[("bind", "ldapd+ppolicy")]
        self.assertGreater(float(row[0]), 0)
        self.assertEqual(row[-1], "0")
        self.assertIn("bind: ldapd+ppolicy/ldapd throughput", output)

    def test_pipelined(self) -> None:
        """
        The pipelined mode, labelled as such, still runs.
        """
        output = _run(["--mode", "pipelined", "--servers", "ldapd", "--workloads", "search",
                       "--clients", "1"])
        self.assertIn("PIPELINED", output)
        self.assertEqual(_rows(output, ["search"])[("search", "ldapd")][-1], "0")


class InProcessTests(unittest.TestCase):
    """
    benchmarks/inprocess.py with a plugin: what it measures must succeed,
    or it measures refusals.
    """

    def test_siteRules(self) -> None:
        """
        Under the typical site's rules (C{acl-site}) the anonymous searches,
        the binds and an admin's modifies all succeed (L{inprocess.drive}
        raises otherwise), while another user's modifies are refused.
        """
        folder = Path(self.mktemp())
        folder.mkdir()
        compare.generate(60, folder / "data.ldif")
        directory = inprocess.build(folder / "data.ldif", "memory", folder, "acl-site")
        self.addCleanup(directory.close)
        for workload in ("search", "bind"):
            requests = [bytes.fromhex(h) for h in compare.closedLoopRequests(workload, 60, 1)]
            inprocess.drive(directory, requests, 60)
        modifies = [bytes.fromhex(h) for h in compare.modifyRequests(60, 20)]
        admin = compare.bindRequest(f"uid={compare.uid(0)},ou=people,{compare.SUFFIX}",
                                    f"pw-{compare.uid(0)}")
        inprocess.drive(directory, modifies, 20, bytes.fromhex(admin))
        user = compare.bindRequest(f"uid={compare.uid(1)},ou=people,{compare.SUFFIX}",
                                   f"pw-{compare.uid(1)}")
        self.assertRaises(RuntimeError, inprocess.drive, directory, modifies, 20,
                          bytes.fromhex(user))
