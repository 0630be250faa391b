"""
How fast a slapd consumer converges on ldapd's syncrepl provider (SQLite,
C{changelog} plugin) side by side with OpenLDAP's own provider (back-mdb,
syncprov overlay): the same slapd consumer configuration, the same data,
the same changes.

Figures for each provider:

  - initial: from the consumer's launch until it holds the provider's entries;
  - burst: from the start of a burst of changes on the provider (one
    ldapmodify: adds, then modifies of the same entries) until the last
    change has reached the consumer; lag: the same, from the burst's end;
  - restart: the consumer stopped, a burst made, then from its launch until
    it has caught up (it resumes from its cookie: the changes since).

Every figure is checked by comparing both directories entry by entry.

    python benchmarks/syncprov.py --changes 1000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from benchmarks.syncrepl import changes, value, waitFor  # noqa: E402
from ldapd.testing import ServerProcess  # noqa: E402
from tests.test_syncconsumer import BASE, ldapmodify, slapdProvider, snapshot  # noqa: E402
from tests.test_syncprovider import providerConfig, slapdConsumer  # noqa: E402


def measure(provider: Any, count: int) -> dict[str, float]:
    """
    @param provider: a started provider.
    @return: the figures of a slapd consumer of it.
    """
    figures: dict[str, float] = {}
    consumer = slapdConsumer(provider.url, "refreshAndPersist")
    try:
        expected = snapshot(provider.url)
        started = time.monotonic()
        consumer.start()
        figures["initial"] = waitFor(lambda: snapshot(consumer.url) == expected) - started

        started = time.monotonic()
        done = ldapmodify(provider.url, changes("burst", count, "burst"))
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        ended = time.monotonic()
        marker = f"uid=burst0,ou=burst,{BASE}"
        arrived = waitFor(lambda: value(consumer.url, marker, "description") == [b"burst"])
        figures["burst"], figures["lag"] = arrived - started, arrived - ended
        if snapshot(consumer.url) != snapshot(provider.url):
            raise RuntimeError("the consumer differs from the provider after the burst")

        consumer.process.terminate()  # type: ignore[union-attr]
        consumer.process.wait()  # type: ignore[union-attr]
        done = ldapmodify(provider.url, changes("restart", count, "restart"))
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        expected = snapshot(provider.url)
        started = time.monotonic()
        consumer.start()
        figures["restart"] = waitFor(lambda: snapshot(consumer.url) == expected) - started
    finally:
        consumer.stop()
    return figures


def run(count: int) -> dict[str, dict[str, float]]:
    figures = {}
    ldapd = ServerProcess(providerConfig())
    ldapd.start()
    try:
        figures["ldapd (sqlite)"] = measure(ldapd, count)
    finally:
        ldapd.stop()
    slapd = slapdProvider()
    try:
        figures["slapd (mdb)"] = measure(slapd, count)
    finally:
        slapd.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1000, help="changes in each burst")
    options = parser.parse_args()
    if shutil.which("ldapmodify") is None:
        raise SystemExit("ldapmodify (ldap-utils) is needed")
    figures = run(options.changes)
    print(f"slapd consumer convergence by provider, {options.changes} changes per burst (seconds)")
    columns = ["initial", "burst", "lag", "restart"]
    print(f"{'provider':<16}" + "".join(f"{c:>10}" for c in columns))
    for name, values in figures.items():
        print(f"{name:<16}" + "".join(f"{values[c]:>10.2f}" for c in columns))


if __name__ == "__main__":
    main()
