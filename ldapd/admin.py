"""
C{ldapd-admin}: the administrator's command for what is done with the
server stopped, or beside it::

    ldapd-admin import CONFIG LDIF [--suffix DN] [--per-entry] [--continue] [--allow-file-urls]
    ldapd-admin export CONFIG [--suffix DN] [-o FILE|-]
    ldapd-admin hash [--scheme {SSHA}] [PASSWORD]
    ldapd-admin check-config CONFIG
    ldapd-admin reload CONFIG [--pid-file PATH]

C{import} and C{export} work on any backend through L{IBackend}, streaming
(one LDIF record in memory at a time) with a progress line on standard
error. C{import} takes slapcat's output as it is: like slapadd, it keeps the
operational attributes the file has (C{entryUUID}, C{creatorsName},
C{createTimestamp}, C{entryCSN}, C{structuralObjectClass}, ...) and adds
those it lacks. An attribute type the schema does not define is skipped, with
one warning per type naming it (slapadd would stop; a dump from a server with
more schema still loads, and the warning says what was left out). Values
given as C{attr:< file:///path} are refused unless C{--allow-file-urls} is
given: an LDIF file from elsewhere could otherwise copy any file the
command may read into the directory.
Attributes the server computes (C{hasSubordinates}, C{numSubordinates},
C{entryDN}, C{subschemaSubentry}) are not stored.

On a backend with a bulk path (the C{sql} backend's C{importEntries}),
entries go in through it, many per transaction (into an empty C{sql}
database as slapadd -q loads: its indexes built once at the end, and the
database marked incomplete until then, so that an import that is killed
leaves a database that the server and this command refuse, saying so,
until it is removed and loaded again); elsewhere, and with
C{--per-entry}, each is one add through the backend with the configured
plugins' transaction hooks. Either way entries may come before their
parent, as in slapcat's output after entries were moved (its order is that
of entry ids): they are held until their parent is loaded. Referral objects
and aliases are entries like any other (slapadd's view). With C{--continue}
an entry that cannot be loaded is skipped, with one line naming it and the
line its record starts on, and the others are loaded, each in a transaction
of its own; the exit status is then 1, as slapadd -c's.
"""

from __future__ import annotations

import argparse
import gc
import getpass
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ldaptor.protocols.ldap import ldaperrors
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet import defer, threads

from ldapd import passwords
from ldapd._files import openPrivate
from ldapd._pidfile import readPIDFile
from ldapd.backends.base import OrphanEntries
from ldapd.backends.sqlschema import SchemaVersionError
from ldapd.config import ServerConfig, loadConfig
from ldapd.csn import CSNGenerator
from ldapd.directory import Database
from ldapd.dn import DN
from ldapd.entry import Entry, SearchReference
from ldapd.filters import everything
from ldapd.ldif import formatLDIF, parseLDIF
from ldapd.operation import Identity, Scope, SearchParameters
from ldapd.registry import ConfigError
from ldapd.results import NoSuchObject
from ldapd.schema import Schema
from ldapd.stamping import stampNew

__all__ = ["Progress", "exportLDIF", "importLDIF", "main", "readEntries"]

#: Attributes the server computes when asked; never stored.
COMPUTED = frozenset({"hassubordinates", "numsubordinates", "entrydn", "subschemasubentry"})


class Progress:
    """
    A progress line on a terminal stream, redrawn after a carriage return:
    C{12345 entries} and the rate, C{4100/s}, two spaces apart.
    """

    def __init__(self, stream: IO[str], clock: Callable[[], float] = time.monotonic,
                 interval: float = 0.5) -> None:
        """
        @param stream: where to write (standard error).
        @param clock: the time source.
        @param interval: the fewest seconds between two updates.
        """
        self.stream = stream
        self.clock = clock
        self.interval = interval
        self.start = clock()
        self.last = -interval
        self.count = 0

    def update(self, count: int, final: bool = False) -> None:
        """
        Show C{count} entries done, at most every C{interval} seconds.

        @param final: write regardless of the interval, and end the line.
        """
        self.count = count
        now = self.clock()
        if not final and now - self.last < self.interval:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        self.stream.write(f"\r{count} entries  {count / elapsed:.0f}/s" + ("\n" if final else ""))
        self.stream.flush()


def readEntries(
    lines: Iterable[bytes], schema: Schema, creator: DN | None, warn: Callable[[str], object],
    allowFileURLs: bool = False, csn: CSNGenerator | None = None,
    skip: Callable[[str], object] | None = None,
) -> Iterator[Entry]:
    """
    The entries of an LDIF stream, as slapadd reads them: the operational
    attributes the file has are kept, missing ones are added (those an Add
    stores: L{stampNew}), unknown attribute types are skipped (C{warn} is
    told once per type), and each entry is checked against the schema.

    @param lines: the LDIF's lines.
    @param schema: the schema.
    @param creator: the DN recorded as creatorsName and modifiersName when
        the file has none (the database's root DN).
    @param warn: called with a message for each skipped type.
    @param allowFileURLs: whether C{attr:< file:///path} values are read
        (see L{parseLDIF}).
    @param csn: makes the C{entryCSN} of entries that have none (the
        server's, whose server ID it writes); one with server ID 0 by default.
    @param skip: when given, a record that is not an entry or that the
        schema refuses is left out, and C{skip} called with a line naming
        it, its line number and the reason, rather than raising.
    @raise ValueError: naming the line of a record that is not an entry, or
        of an entry the schema refuses, or of a URL value not allowed.
    """
    for _, entry in _numberedEntries(lines, schema, creator, warn, allowFileURLs, csn, skip):
        yield entry


def _numberedEntries(
    lines: Iterable[bytes], schema: Schema, creator: DN | None, warn: Callable[[str], object],
    allowFileURLs: bool, csn: CSNGenerator | None, skip: Callable[[str], object] | None,
) -> Iterator[tuple[int, Entry]]:
    """
    L{readEntries}' entries, each with the line number its record starts on.
    """
    skipped: set[str] = set()
    # Whether each attribute description met is stored: the records of a
    # file repeat a few descriptions, each looked up once.
    stored: dict[str, bool] = {}
    if csn is None:
        csn = CSNGenerator()
    for record in parseLDIF(lines, allowFileURLs):
        try:
            if record.changetype not in ("content", "add"):
                raise ValueError(
                    f"line {record.lineNumber}: a {record.changetype} record, not an entry")
            attributes: dict[str, list[bytes]] = {}
            for description, value in record.attributes:
                keep = stored.get(description)
                if keep is None:
                    name = description.split(";")[0]
                    at = schema.attributeType(name)
                    if at is None and name.lower() not in skipped:
                        skipped.add(name.lower())
                        warn(f"line {record.lineNumber}: attribute type {name} is not defined "
                             "in the schema: skipped in every entry")
                    keep = stored[description] = (at is not None
                                                  and at.name.lower() not in COMPUTED)
                if keep:
                    values = attributes.get(description)
                    if values is None:
                        attributes[description] = [value]
                    else:
                        values.append(value)
            try:
                dn = DN.parse(record.dn)
                # The layout of the record's descriptions is resolved once
                # for all the records that have them, as a store's rows.
                entry = Entry.fromStored(
                    dn, schema.normalizeDN(dn), schema, tuple(attributes),
                    tuple([v[0] if len(v) == 1 else tuple(v) for v in attributes.values()]))
                entry = stampNew(entry, creator, csn)
                entry.validate()
            except (ldaperrors.LDAPException, ValueError) as e:
                raise ValueError(f"line {record.lineNumber}: {record.dn}: {e}") from None
        except ValueError as e:
            if skip is None:
                raise
            skip(f"skipped {e}")
            continue
        yield record.lineNumber, entry


def _database(config: ServerConfig, suffix: str | None) -> Database:
    databases = config.directory.databases
    if suffix is None:
        if len(databases) != 1:
            raise ConfigError("the configuration has several databases: choose one with --suffix")
        return databases[0]
    schema = config.directory.schema
    wanted = schema.normalizeDN(DN.parse(suffix))
    for db in databases:
        if db.normalizedSuffix == wanted:
            return db
    raise ConfigError(f"no database has the suffix {suffix}")


async def importLDIF(
    reactor: Any, config: ServerConfig, db: Database, lines: Iterable[bytes],
    progress: Progress | None = None, bulk: bool = True, warn: Callable[[str], object] = print,
    allowFileURLs: bool = False, skip: Callable[[str], object] | None = None,
) -> int:
    """
    Load an LDIF stream into an open database.

    @param reactor: the reactor.
    @param config: the configuration (for the schema and plugin chain).
    @param db: the database, whose backend is open.
    @param lines: the LDIF's lines.
    @param progress: shows how far it is.
    @param bulk: use the backend's bulk path when it has one.
    @param warn: called with each warning.
    @param allowFileURLs: whether C{attr:< file:///path} values are read
        from this machine's files; refused by default.
    @param skip: when given (C{--continue}), each entry is added in a
        transaction of its own, and one that cannot be (a record that is
        not an entry, refused by the schema, a duplicate, without its
        parent) is left out and C{skip} called with one line naming it,
        its line number and the reason; otherwise the first such entry
        stops the import.
    @return: the number of entries loaded.
    """
    directory = config.directory
    entries = _numberedEntries(lines, directory.schema, db.rootDN, warn, allowFileURLs,
                               directory.csn, skip)
    report = progress.update if progress is not None else None
    importer = getattr(db.backend, "importEntries", None)
    if bulk and skip is None and importer is not None:

        def chunkLoaded(count: int) -> None:
            gc.collect()
            if report is not None:
                report(count)

        # The load makes millions of objects, none of them in a cycle: the
        # collector's automatic passes over those of the chunk being made
        # would cost a sixth of the load. It is off while the load runs, and
        # collects after each chunk instead (past what start-up made, which
        # is frozen), so that memory stays bounded all the same.
        collecting = gc.isenabled()
        gc.disable()
        gc.freeze()
        try:
            count: int = await threads.deferToThread(
                importer, (entry for _, entry in entries), chunkLoaded)
        finally:
            gc.unfreeze()
            if collecting:
                gc.enable()
    else:
        op = directory.internalOperation()
        op.identity = Identity(db.rootDN, db.normalizedRootDN, isRoot=True)
        count = 0
        orphans = OrphanEntries()
        # The line of each entry held for its parent, for --continue.
        lineOf: dict[int, int] = {}
        # Parsing is interleaved with the adds: one entry in memory at a
        # time, but for those read before their parent.
        for lineNumber, entry in entries:
            lineOf[id(entry)] = lineNumber
            ready = [entry]
            while ready:
                entry = ready.pop()
                try:
                    await db.backend.add(op, entry, directory.plugins)
                except NoSuchObject:
                    orphans.hold(entry)
                    continue
                except (ldaperrors.LDAPException, ValueError) as e:
                    if skip is None:
                        raise
                    skip(f"skipped line {lineOf.pop(id(entry))}: {entry.dn}: {e}")
                    continue
                del lineOf[id(entry)]
                ready.extend(orphans.released(entry.ndn))
                count += 1
                if report is not None:
                    report(count)
        if skip is None:
            orphans.check()
        for entry in orphans.remaining():
            assert skip is not None
            skip(f"skipped line {lineOf[id(entry)]}: {entry.dn}: the parent entry does not exist")
    if progress is not None:
        progress.update(count, final=True)
    return count


async def exportLDIF(config: ServerConfig, db: Database, out: IO[bytes],
                     progress: Progress | None = None) -> int:
    """
    Write every entry of an open database as LDIF, parents first, with
    every attribute (operational ones included).

    @return: the number of entries written.
    """
    directory = config.directory
    op = directory.internalOperation()
    op.search = SearchParameters(db.normalizedSuffix, Scope.SUB,
                                 everything(directory.schema))
    count = 0

    def emit(entry: Entry | SearchReference) -> None:
        nonlocal count
        if isinstance(entry, SearchReference):
            raise ValueError(f"{db.suffix}: the backend sent a reference, not an entry")
        out.write(formatLDIF(str(entry.dn), [(a.description, a.values) for a in entry]))
        count += 1
        if progress is not None:
            progress.update(count)

    await db.backend.search(op, emit)
    if progress is not None:
        progress.update(count, final=True)
    return count


#: What makes a command fail with its message, rather than a traceback.
_FAILURES = (ldaperrors.LDAPException, SQLAlchemyError, OSError, ValueError, SchemaVersionError)


def _withBackend(config: ServerConfig, db: Database, work: Callable[[], Any]) -> int:
    """
    Open the database's backend, run C{work} on the reactor, close it.

    @return: the process's exit status.
    """
    from twisted.internet import task

    status = 0

    async def run(reactor: Any) -> None:
        nonlocal status
        try:
            await db.backend.open()
        except _FAILURES as e:
            # A database that cannot be opened: of a newer ldapd, or left
            # half-loaded by an import that was stopped.
            sys.stderr.write(f"ldapd-admin: {e}\n")
            status = 1
            return
        try:
            await work()
        except _FAILURES as e:
            sys.stderr.write(f"\nldapd-admin: {e}\n")
            status = 1
        finally:
            await db.backend.close()

    try:
        task.react(lambda reactor: defer.Deferred.fromCoroutine(run(reactor)))
    except SystemExit as e:
        if e.code:
            return int(e.code) if isinstance(e.code, int) else 1
    return status


def _commandImport(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

    config = loadConfig(Path(args.config), reactor)
    db = _database(config, args.suffix)

    skipped = 0

    def skip(message: str) -> None:
        nonlocal skipped
        skipped += 1
        # Below the progress line, which is redrawn after it.
        sys.stderr.write(f"{'' if args.quiet else chr(10)}{message}\n")

    async def work() -> None:
        with open(args.ldif, "rb") as f:
            await importLDIF(reactor, config, db, f, None if args.quiet else Progress(sys.stderr),
                             bulk=not args.per_entry,
                             warn=lambda m: sys.stderr.write(f"warning: {m}\n"),
                             allowFileURLs=args.allow_file_urls,
                             skip=skip if args.keep_going else None)

    status = _withBackend(config, db, work)
    if skipped:
        # As slapadd -c: the entries that could be loaded are, and the
        # status says some could not.
        sys.stderr.write(f"ldapd-admin: {skipped} entries skipped\n")
        return status or 1
    return status


def _commandExport(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

    config = loadConfig(Path(args.config), reactor)
    db = _database(config, args.suffix)

    async def work() -> None:
        progress = None if args.quiet else Progress(sys.stderr)
        if args.output in (None, "-"):
            await exportLDIF(config, db, sys.stdout.buffer, progress)
            sys.stdout.buffer.flush()
            return
        with openPrivate(args.output) as f:
            await exportLDIF(config, db, f, progress)

    return _withBackend(config, db, work)


def _commandHash(args: argparse.Namespace) -> int:
    scheme = args.scheme.upper()
    if scheme not in passwords.SCHEMES:
        sys.stderr.write(f"ldapd-admin: unknown scheme {args.scheme} "
                         f"(known: {', '.join(passwords.SCHEMES)})\n")
        return 2
    if args.password is not None:
        password = args.password
    elif sys.stdin.isatty():
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            sys.stderr.write("ldapd-admin: the passwords differ\n")
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    print(passwords.hashPassword(password.encode("utf-8"), scheme).decode("ascii"))
    return 0


def _commandCheckConfig(args: argparse.Namespace) -> int:
    config = loadConfig(Path(args.config))
    suffixes = ", ".join(str(db.suffix) for db in config.directory.databases)
    print(f"{args.config}: OK ({suffixes})")
    return 0


def _commandReload(args: argparse.Namespace) -> int:
    """
    Check the configuration as the server will, then send the server
    SIGHUP: it reads the file again and applies it, or logs why not (what
    needs a restart is known only to the running server, which compares
    the file with what it runs). A configuration that does not validate is
    reported here and no signal is sent.
    """
    config = loadConfig(Path(args.config))
    pidFile = Path(args.pid_file) if args.pid_file is not None else config.pidFile
    if pidFile is None:
        raise ConfigError(f"{args.config}: server.pid_file: is not set, so the server's process "
                          "cannot be found: set it, or give --pid-file")
    pid = readPIDFile(pidFile)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        sys.stderr.write(f"ldapd-admin: no process {pid} (from {pidFile}): is the server "
                         "running?\n")
        return 1
    print(f"{args.config}: OK; sent SIGHUP to process {pid} (from {pidFile}): the server logs "
          "whether it applied the configuration")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ldapd-admin", description="Administer ldapd.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("import", help="load an LDIF file (slapcat output works)")
    p.add_argument("config", help="the server's TOML configuration")
    p.add_argument("ldif", help="the LDIF file")
    p.add_argument("--suffix", help="the database to load (when there are several)")
    p.add_argument("--per-entry", action="store_true",
                   help="add entries one by one through the plugins' hooks")
    p.add_argument("--allow-file-urls", action="store_true",
                   help="read 'attr:< file:///path' values from this machine's files "
                   "(refused by default)")
    p.add_argument("-c", "--continue", dest="keep_going", action="store_true",
                   help="skip an entry that cannot be loaded (with a line naming it) rather "
                   "than stop; each entry is then its own transaction, as with --per-entry")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(run=_commandImport)
    p = commands.add_parser("export", help="write a database as LDIF")
    p.add_argument("config", help="the server's TOML configuration")
    p.add_argument("--suffix", help="the database to write (when there are several)")
    p.add_argument("-o", "--output", help="the file to write, created mode 0600 (standard "
                   "output by default, or with -)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(run=_commandExport)
    p = commands.add_parser("hash", help="hash a password for userPassword or root_password")
    p.add_argument("password", nargs="?", help="the password (asked for, or read from "
                   "standard input, when not given)")
    p.add_argument("--scheme", default="{SSHA}", help="the scheme, e.g. {SSHA} or {ARGON2}")
    p.set_defaults(run=_commandHash)
    p = commands.add_parser("check-config", help="validate a configuration file")
    p.add_argument("config", help="the TOML configuration")
    p.set_defaults(run=_commandCheckConfig)
    p = commands.add_parser("reload", help="check a configuration and have the running server "
                            "apply it (SIGHUP)")
    p.add_argument("config", help="the server's TOML configuration")
    p.add_argument("--pid-file", help="the server's pid file, when not [server] pid_file "
                   "(twistd --pidfile)")
    p.set_defaults(run=_commandReload)
    return parser


def main(argv: list[str] | None = None) -> int:
    """
    Run C{ldapd-admin}.

    @param argv: the arguments (C{sys.argv[1:]} by default).
    @return: the exit status: 0, 1 for a failed command, 2 for bad usage,
        78 (C{EX_CONFIG}) for a bad configuration.
    """
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as e:
        sys.stderr.write(f"ldapd-admin: {e}\n")
        return os.EX_CONFIG
    except (OSError, ValueError) as e:
        sys.stderr.write(f"ldapd-admin: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
