"""
How fast a syncrepl consumer converges: ldapd's (C{[[replica]]}, SQLite or
memory) side by side with OpenLDAP's slapd consumer (back-mdb, C{syncrepl}
directive), both in refreshAndPersist from the same slapd provider (syncprov).

Three figures for each consumer:

  - initial: from its launch until it holds the provider's entries;
  - burst: from the start of a burst of changes on the provider (one
    ldapmodify: adds, then modifies of the same entries) until the last
    change has arrived; lag: the same, from the burst's end (the provider
    sets the pace of a burst: both consumers keep up with it);
  - restart: the consumer stopped, more changes made, then from its launch
    until it has caught up (ldapd resumes from the contextCSN on its
    SQLite file; slapd from its own; a memory consumer reloads everything).

Every figure is checked by comparing both directories entry by entry.

    python benchmarks/syncrepl.py --changes 1000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import ldap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ldapd.testing import SlapdProcess
from tests.test_syncconsumer import (
    BASE,
    PASSWORD,
    ROOT_DN,
    consumerServer,
    ldapmodify,
    person,
    slapdProvider,
    snapshot,
)

#: The indexes of a slapd replica (slapd's documentation's example).
REPLICA_INDEXES = ("objectClass,entryCSN,entryUUID eq",)


def slapdConsumer(provider: str, indexes: Sequence[str] = REPLICA_INDEXES) -> SlapdProcess:
    """
    @param indexes: the database's C{index} directives, as ldapd's sql
        backend's C{indexes} (C{"attr,attr kinds"}).
    @return: a slapd consumer of C{provider}, not started.
    """
    return SlapdProcess(BASE, ROOT_DN, PASSWORD, modules=["syncprov"], databaseConfig=(
        "".join(f"index {line}\n" for line in indexes)
        + f'syncrepl rid=001 provider={provider} bindmethod=simple binddn="{ROOT_DN}" '
        f'credentials={PASSWORD} searchbase="{BASE}" type=refreshAndPersist '
        'retry="1 +" attrs="*,+"\n'
    ))


def value(url: str, dn: str, attribute: str) -> list[bytes]:
    """
    @return: the values of one attribute of one entry (none if it is absent).
    """
    connection = ldap.initialize(url)
    try:
        connection.simple_bind_s(ROOT_DN, PASSWORD)
        found = connection.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", [attribute])
    except ldap.LDAPError:
        return []
    finally:
        connection.unbind_s()
    return next(iter(found[0][1].values()), []) if found and found[0][1] else []


def waitFor(condition: Callable[[], bool], timeout: float = 300) -> float:
    """
    @return: the monotonic time at which C{condition()} first held.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("no convergence within the timeout")
        time.sleep(0.02)
    return time.monotonic()


def changes(prefix: str, count: int, marker: str) -> str:
    """
    @return: LDIF of C{count} changes: C{count // 2} adds under a new
        organizational unit, then modifies of those entries, the last one
        setting C{description} to C{marker}.
    """
    parent = f"ou={prefix},{BASE}"
    adds = count // 2
    ldif = f"dn: {parent}\nchangetype: add\nobjectClass: organizationalUnit\nou: {prefix}\n\n"
    ldif += "".join(person(f"{prefix}{i}", parent) for i in range(adds))
    ldif += "".join(f"dn: uid={prefix}{i},{parent}\nchangetype: modify\nreplace: sn\nsn: M{i}\n\n"
                    for i in range(count - adds - 2))
    ldif += (f"dn: uid={prefix}0,{parent}\nchangetype: modify\nreplace: description\n"
             f"description: {marker}\n\n")
    return ldif


def run(count: int, backend: str) -> dict[str, dict[str, float]]:
    provider = slapdProvider()
    folder = Path(tempfile.mkdtemp(prefix="ldapd-bench-syncrepl-"))
    consumers: dict[str, Any] = {
        f"ldapd ({backend})": consumerServer(provider.url, folder, backend=backend),
        "slapd": slapdConsumer(provider.url),
    }
    figures: dict[str, dict[str, float]] = {name: {} for name in consumers}
    try:
        expected = snapshot(provider.url)
        for name, consumer in consumers.items():
            started = time.monotonic()
            consumer.start()
            done = waitFor(lambda c=consumer: snapshot(c.url) == expected)
            figures[name]["initial"] = done - started

        def burst(step: str) -> tuple[float, float]:
            started = time.monotonic()
            result = ldapmodify(provider.url, changes(step, count, step))
            if result.returncode != 0:
                raise RuntimeError(result.stderr)
            return started, time.monotonic()

        marker = f"uid=burst0,ou=burst,{BASE}"
        started, ended = burst("burst")
        waiting = dict(consumers)
        deadline = time.monotonic() + 300
        while waiting:
            for name, consumer in list(waiting.items()):
                if value(consumer.url, marker, "description") == [b"burst"]:
                    done = time.monotonic()
                    figures[name]["burst"] = done - started
                    figures[name]["lag"] = done - ended
                    del waiting[name]
            if time.monotonic() > deadline:
                raise RuntimeError(f"no convergence of {', '.join(waiting)} after the burst")
            time.sleep(0.02)
        expected = snapshot(provider.url)
        for name, consumer in consumers.items():
            if snapshot(consumer.url) != expected:
                raise RuntimeError(f"{name} differs from the provider after the burst")

        for consumer in consumers.values():
            consumer.process.terminate()
            consumer.process.wait()
        burst("restart")
        expected = snapshot(provider.url)
        for name, consumer in consumers.items():
            # A refresh sends entries in the provider's order, not the
            # changes': only the whole content says it is complete.
            started = time.monotonic()
            consumer.start()
            done = waitFor(lambda c=consumer: snapshot(c.url) == expected)
            figures[name]["restart"] = done - started
    finally:
        for consumer in consumers.values():
            consumer.stop()
        provider.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1000, help="changes in each burst")
    parser.add_argument("--backend", choices=["sql", "memory"], default="sql",
                        help="the ldapd consumer's backend")
    options = parser.parse_args()
    if shutil.which("ldapmodify") is None:
        raise SystemExit("ldapmodify (ldap-utils) is needed")
    figures = run(options.changes, options.backend)
    print(f"syncrepl convergence, {options.changes} changes per burst (seconds)")
    columns = ["initial", "burst", "lag", "restart"]
    print(f"{'consumer':<16}" + "".join(f"{c:>10}" for c in columns))
    for name, values in figures.items():
        print(f"{name:<16}" + "".join(f"{values[c]:>10.2f}" for c in columns))


if __name__ == "__main__":
    main()
