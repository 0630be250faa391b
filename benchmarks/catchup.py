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

  - ready: from its launch until it accepts connections;
  - caught up: from its launch until it holds the provider's entries with
    their C{entryCSN}s (polled every 20 ms), checked by comparing both
    directories entry by entry (DN, user attributes, entryUUID) afterwards.

The ldapd consumer's own figure (its log's C{refresh done in ... s}) is
printed too. Run from the repository, with slapd and ldap-utils installed::

    python benchmarks/catchup.py --changes 1000
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ldap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from benchmarks.syncrepl import slapdConsumer, waitFor  # noqa: E402
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


def csns(url: str) -> dict[str, list[bytes]]:
    """
    @return: the C{entryCSN} of every entry under the suffix, by DN (lower
        case); nothing while the server does not answer or has no suffix.
    """
    connection = ldap.initialize(url)
    try:
        connection.simple_bind_s(ROOT_DN, PASSWORD)
        found = connection.search_s(BASE, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["entryCSN"])
    except ldap.LDAPError:
        return {}
    finally:
        connection.unbind_s()
    return {dn.lower(): attributes.get("entryCSN", []) for dn, attributes in found}


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


def run(count: int, base: int) -> dict[str, dict[str, float]]:
    provider = slapdProvider()
    folder = Path(tempfile.mkdtemp(prefix="ldapd-bench-catchup-"))
    consumers: dict[str, Any] = {
        "ldapd (sql)": consumerServer(provider.url, folder),
        "slapd": slapdConsumer(provider.url),
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
        state = csns(provider.url)
        for name, consumer in consumers.items():
            started = time.monotonic()
            consumer.start()
            figures[name]["ready"] = time.monotonic() - started
            done = waitFor(lambda c=consumer: csns(c.url) == state)
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
    options = parser.parse_args()
    if shutil.which("ldapmodify") is None:
        raise SystemExit("ldapmodify (ldap-utils) is needed")
    figures = run(options.changes, options.base)
    print(f"syncrepl restart catch-up of {options.changes} changes (seconds)")
    columns = ["ready", "caught up", "own figure"]
    print(f"{'consumer':<16}" + "".join(f"{c:>12}" for c in columns))
    for name, values in figures.items():
        print(f"{name:<16}" + "".join(
            f"{values[c]:>12.2f}" if c in values else f"{'':>12}" for c in columns))


if __name__ == "__main__":
    main()
