"""
The bulk import: `ldapd-admin import` into the sql backend (SQLite, and
PostgreSQL when LDAPD_TEST_POSTGRESQL_URL names a server) beside OpenLDAP's
`slapadd -q` (back-mdb) on the same generated LDIF (compare.py's data:
inetOrgPerson users with {SSHA} passwords, and groups of 50 members).

Each run is a fresh database (a new SQLite file; a new PostgreSQL schema,
dropped afterwards; a new mdb folder) and a new process, whose wall-clock
time, process start included, gives the rate; and whose CPU time (user and
system, process start included; not PostgreSQL's server processes) gives
the entries per CPU second, the figure to compare on a busy machine. The ldapd databases have the
sql backend's default indexes (every type eq,pres; cn, sn, givenName, uid,
mail, displayName sub); slapd has those the memory backend has by default
(objectClass, uid, cn, mail, member, entryUUID eq; uid, cn, mail sub).

    python benchmarks/bulk_import.py                        # 10,000 users, 3 rounds
    python benchmarks/bulk_import.py --sizes 10000 100000 --rounds 1
    python benchmarks/bulk_import.py --targets sqlite slapd
    python benchmarks/bulk_import.py --tree ../main      # another checkout's ldapd, for before/after
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from compare import ROOT_DN, SLAPADD, SUFFIX, _indexesByType, _ssha, generate  # noqa: E402

from ldapd.backends.memory import DEFAULT_INDEXES  # noqa: E402

TARGETS = ("sqlite", "postgresql", "slapd")


def _ldapdConfig(folder: Path, url: str) -> Path:
    config = folder / "ldapd.toml"
    config.write_text(
        '[server]\nlisten = ["tcp:10389:interface=127.0.0.1"]\n\n'
        f'[[database]]\nsuffix = "{SUFFIX}"\nbackend = "sql"\nurl = "{url}"\n'
        f'root_dn = "{ROOT_DN}"\nroot_password = "{_ssha(b"secret", b"saltsalt").decode()}"\n')
    return config


#: The source tree whose ldapd is run (--tree).
TREE = ROOT


#: The CPU seconds (user and system) of each command _timed ran, in order.
CPU: list[float] = []


def _timed(command: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    # In the tree's folder: `python -m` puts the working folder first on
    # the path, before PYTHONPATH.
    subprocess.run(command, check=True, cwd=TREE, env=dict(os.environ, PYTHONPATH=str(TREE)))
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return elapsed


def importSQLite(folder: Path, ldif: Path) -> float:
    """
    @return: the seconds of one import into a new SQLite file.
    """
    db = folder / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    config = _ldapdConfig(folder, f"sqlite:///{db}")
    return _timed([sys.executable, "-m", "ldapd.admin", "import", "-q", str(config), str(ldif)])


def importPostgreSQL(folder: Path, ldif: Path) -> float:
    """
    @return: the seconds of one import into a new schema of the
        LDAPD_TEST_POSTGRESQL_URL database.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    base = os.environ["LDAPD_TEST_POSTGRESQL_URL"]
    schema = f"ldapd_import_{os.getpid()}"
    engine = create_engine(base, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        config = _ldapdConfig(folder, f"{base}?options=-csearch_path%3D{schema}")
        return _timed([sys.executable, "-m", "ldapd.admin", "import", "-q", str(config),
                       str(ldif)])
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def importSlapd(folder: Path, ldif: Path) -> float:
    """
    @return: the seconds of one C{slapadd -q} into a new mdb database.
    """
    db = folder / "slapd-db"
    shutil.rmtree(db, ignore_errors=True)
    db.mkdir()
    config = folder / "slapd.conf"
    config.write_text(
        "".join(f"include /etc/ldap/schema/{s}.schema\n"
                for s in ("core", "cosine", "inetorgperson", "nis"))
        + "modulepath /usr/lib/ldap\nmoduleload back_mdb\ndatabase mdb\nmaxsize 4294967296\n"
        f'suffix "{SUFFIX}"\nrootdn "{ROOT_DN}"\nrootpw secret\ndirectory {db}\n'
        + "".join(f"index {name} {','.join(sorted(kinds))}\n"
                  for name, kinds in _indexesByType(list(DEFAULT_INDEXES)).items()))
    return _timed([str(SLAPADD), "-q", "-f", str(config), "-l", str(ldif)])


RUNS = {"sqlite": importSQLite, "postgresql": importPostgreSQL, "slapd": importSlapd}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000], help="users")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--tree", type=Path, default=ROOT,
                        help="the source tree of the ldapd to run (this one by default)")
    args = parser.parse_args(argv)
    global TREE
    TREE = args.tree.resolve()
    targets = [t for t in args.targets
               if (t != "postgresql" or os.environ.get("LDAPD_TEST_POSTGRESQL_URL"))
               and (t != "slapd" or SLAPADD.exists())]
    for size in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-import-"))
        try:
            ldif = folder / "data.ldif"
            generate(size, ldif)
            entries = ldif.read_bytes().count(b"\ndn: ") + 1
            for target in targets:
                del CPU[:]
                seconds = [RUNS[target](folder, ldif) for _ in range(args.rounds)]
                best, median = min(seconds), statistics.median(seconds)
                cpu = statistics.median(CPU)
                print(f"{size} users ({entries} entries)  {target:<10}  "
                      f"median {median:6.2f} s  {entries / median:8.0f} entries/s  "
                      f"(best {entries / best:.0f}/s, {args.rounds} rounds)  "
                      f"CPU {cpu:6.2f} s  {entries / cpu:8.0f} entries/CPU s", flush=True)
        finally:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
