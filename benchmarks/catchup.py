"""
How fast a restarted syncrepl consumer catches up: ldapd's (C{[[replica]]}
on SQLite) side by side with OpenLDAP's slapd consumer (back-mdb,
C{syncrepl} directive), both in refreshAndPersist from the same slapd
provider (syncprov, with a session log that covers the changes).

Both consumers first copy the provider's content and C{--base} more
entries; both are stopped; C{--changes} changes are made on the provider,
each to an entry of its own (60% adds of new entries, 30% modifies and 10%
deletes of the entries both already hold); then each consumer is started
again, one after the other, and timed:

  - ready: from its launch until it accepts connections (ldapd's modules
    compiled to bytecode at its first launch, as an installed ldapd's are);
  - caught up: from its launch until its suffix entry's C{contextCSN} (the
    cookie it saves once it has applied what the cookie covers) reaches the
    provider's, polled every 20 ms with a base search (cheap for both: a
    poll reading every entry would slow the consumer it measures); then
    both directories are compared entry by entry (DN, user attributes,
    entryUUID).

The ldapd consumer's own figure (its log's C{refresh done in ... s}) is
printed too. Both consumers keep the same indexes, which is most of a
consumer's work: with C{--indexes replica} those of slapd's replica example
(C{objectClass}, C{entryCSN}, C{entryUUID} equality); with C{--indexes
default} ldapd's sql backend's default (every attribute's equality and
presence, substrings of C{cn}, C{sn}, C{givenName}, C{uid}, C{mail} and
C{displayName}), which slapd gets by naming every attribute these entries
hold. Run from the repository, with slapd and ldap-utils installed::

    python benchmarks/catchup.py --changes 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ldap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from benchmarks.syncrepl import REPLICA_INDEXES, slapdConsumer, waitFor  # noqa: E402
from ldapd.backends.sql import DEFAULT_INDEXES  # noqa: E402
from tests.test_syncconsumer import (  # noqa: E402
    BASE,
    PASSWORD,
    ROOT_DN,
    consumerServer,
    ldapmodify,
    person,
    slapdProvider,
    snapshot,
)

#: Each C{--indexes} choice: ldapd's sql C{indexes}, and slapd's.
INDEXES = {
    "replica": (REPLICA_INDEXES, REPLICA_INDEXES),
    "default": (DEFAULT_INDEXES, (
        "objectClass,ou,entryUUID,entryCSN,creatorsName,modifiersName,createTimestamp,"
        "modifyTimestamp,structuralObjectClass eq,pres",
        "cn,sn,givenName,uid,mail,displayName eq,pres,sub",
    )),
}


def contextCSN(url: str) -> list[bytes]:
    """
    @return: the C{contextCSN} values of the suffix entry, sorted (none
        while the server does not answer or has no suffix).
    """
    connection = ldap.initialize(url)
    try:
        connection.simple_bind_s(ROOT_DN, PASSWORD)
        found = connection.search_s(BASE, ldap.SCOPE_BASE, "(objectClass=*)", ["contextCSN"])
    except ldap.LDAPError:
        return []
    finally:
        connection.unbind_s()
    return sorted(found[0][1].get("contextCSN", [])) if found else []


def content(url: str) -> dict[str, Any]:
    """
    @return: L{snapshot} of the server, or nothing while it has no suffix yet.
    """
    try:
        return snapshot(url)
    except ldap.LDAPError:
        return {}


def apply(url: str, ldif: str) -> None:
    """
    Make changes on the provider with ldapmodify.

    @raise RuntimeError: if it fails.
    """
    done = ldapmodify(url, ldif)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)


def run(count: int, base: int, indexes: str) -> dict[str, dict[str, float]]:
    ldapdIndexes, slapdIndexes = INDEXES[indexes]
    provider = slapdProvider()
    folder = Path(tempfile.mkdtemp(prefix="ldapd-bench-catchup-"))
    # An installed ldapd starts from compiled bytecode (pip compiles it);
    # where PYTHONDONTWRITEBYTECODE is set, every launch would compile the
    # server's modules again. They are compiled at the first launch, into
    # the benchmark's folder, not the source tree.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    consumers: dict[str, Any] = {
        "ldapd (sql)": consumerServer(provider.url, folder, indexes=ldapdIndexes),
        "slapd": slapdConsumer(provider.url, slapdIndexes),
    }
    figures: dict[str, dict[str, float]] = {name: {} for name in consumers}
    parent = f"ou=catchup,{BASE}"
    try:
        apply(provider.url, f"dn: {parent}\nchangetype: add\nobjectClass: organizationalUnit\n"
                            "ou: catchup\n\n"
                            + "".join(person(f"old{i}", parent) for i in range(base)))
        expected = snapshot(provider.url)
        for consumer in consumers.values():
            consumer.start()
            waitFor(lambda c=consumer: content(c.url) == expected)
        for consumer in consumers.values():
            consumer.process.terminate()
            consumer.process.wait()
        adds, modifies = count * 6 // 10, count * 3 // 10
        deletes = count - adds - modifies
        if modifies + deletes > base:
            raise SystemExit(f"--base must be at least {modifies + deletes}")
        apply(provider.url, "".join(person(f"new{i}", parent) for i in range(adds))
              + "".join(f"dn: uid=old{i},{parent}\nchangetype: modify\nreplace: sn\nsn: M{i}\n\n"
                        for i in range(modifies))
              + "".join(f"dn: uid=old{i},{parent}\nchangetype: delete\n\n"
                        for i in range(modifies, modifies + deletes)))
        expected = snapshot(provider.url)
        cookie = contextCSN(provider.url)
        for name, consumer in consumers.items():
            started = time.monotonic()
            consumer.start()
            figures[name]["ready"] = time.monotonic() - started
            done = waitFor(lambda c=consumer: contextCSN(c.url) >= cookie)
            figures[name]["caught up"] = done - started
            if snapshot(consumer.url) != expected:
                raise RuntimeError(f"{name} differs from the provider after catching up")
        refreshes = re.findall(r"refresh done[^\n]* in ([0-9.]+) s", consumers["ldapd (sql)"].log())
        figures["ldapd (sql)"]["own figure"] = float(refreshes[-1]) if refreshes else float("nan")
    finally:
        for consumer in consumers.values():
            consumer.stop()
        provider.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1000, help="changes while the consumers are down")
    parser.add_argument("--base", type=int, default=500, help="entries both consumers hold before")
    parser.add_argument("--indexes", choices=[*INDEXES, "both"], default="both",
                        help="the indexes both consumers keep")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each; their medians are printed")
    options = parser.parse_args()
    if shutil.which("ldapmodify") is None:
        raise SystemExit("ldapmodify (ldap-utils) is needed")
    columns = ["ready", "caught up", "own figure"]
    for indexes in INDEXES if options.indexes == "both" else [options.indexes]:
        rounds = [run(options.changes, options.base, indexes) for _ in range(options.rounds)]
        figures = {name: {c: statistics.median(r[name][c] for r in rounds)
                          for c in columns if c in values}
                   for name, values in rounds[0].items()}
        print(f"syncrepl restart catch-up of {options.changes} changes, {indexes} indexes "
              f"(seconds, median of {options.rounds})")
        print(f"{'consumer':<16}" + "".join(f"{c:>12}" for c in columns))
        for name, values in figures.items():
            print(f"{name:<16}" + "".join(
                f"{values[c]:>12.2f}" if c in values else f"{'':>12}" for c in columns))
        print("ldapd / slapd, caught up: "
              f"{figures['ldapd (sql)']['caught up'] / figures['slapd']['caught up']:.2f}")


if __name__ == "__main__":
    main()
