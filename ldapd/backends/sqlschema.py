"""
The database schema of the C{sql} backend, its versions and how a database
is brought up to date. The index configuration (slapd's C{index}), which
the memory backend shares, lives in L{ldapd.backends.base}.

Tables (their names carry the C{ldapd_} prefix):

  - C{meta}: C{(key, value)}: the schema C{version}, the C{suffix} the
    database holds and the C{indexes} it was indexed with.
  - C{entries}: one row per entry: C{id}, C{parent_id} (a foreign key, so the
    database itself refuses an orphan or the deletion of a parent), the
    normalised DN C{ndn} (unique), the DN as written, the materialised
    C{path} of ancestor ids and the attributes, serialised.
  - C{values}: the index: C{(entry_id, attr, kind, key)}, with C{kind} one of
    C{p} (presence), C{e} (equality: the value's normalised key), C{s}
    (substrings: the value normalised by the substrings rule) and C{l} (a
    substrings value too long to index, always a candidate).
  - C{changes}: the changelog (L{ldapd.interfaces.IChangelog}), one row per
    committed change: its C{number} (the primary key, never reused), C{csn},
    C{time} (C{YYYYmmddHHMMSS.ffffffZ}, UTC, so that text order is time
    order), C{kind}, C{target_dn}, C{entry_uuid}, the LDIF C{changes}, and
    C{new_rdn}, C{delete_old_rdn} and C{new_superior} for renames.
  - C{grams} (SQLite only): L{GRAMS}, an FTS5 trigram index of each entry's
    substring keys, by entry id.

The C{path} is C{/a/b/c/}: the ids from the suffix entry down to the entry,
each written as its hexadecimal length then its hexadecimal digits, so that
comparing paths as bytes compares the ids as numbers. A subtree is one range
of the path index (C{path >= p AND path < p'}), parents sort before their
children, and siblings in the order they were added. PostgreSQL compares the
path and keys with the C{C} collation, byte by byte, as SQLite does.

The version lives in C{meta}; L{upgrade} applies the missing steps of
L{MIGRATIONS} in order, in one transaction, when the backend opens.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from twisted.logger import Logger

from ldapd.backends.base import ALL_KINDS, IndexConfig

_log = Logger()

__all__ = [
    "ALL_KINDS",
    "changes",
    "beginBulkLoad",
    "endBulkLoad",
    "IMPORT_UNDER_WAY",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "IndexConfig",
    "SchemaVersionError",
    "encodeId",
    "entries",
    "fillGrams",
    "GRAMS",
    "GRAMS_OF_ENTRIES",
    "hasGrams",
    "lockForSetup",
    "meta",
    "metadata",
    "pathUpperBound",
    "readMeta",
    "upgrade",
    "values",
    "writeMeta",
]

_BINARY_TEXT = Text().with_variant(Text(collation="C"), "postgresql")

metadata = MetaData()

meta = Table(
    "ldapd_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

entries = Table(
    "ldapd_entries",
    metadata,
    # SQLite's rowid alias must be spelled INTEGER.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("parent_id", BigInteger, ForeignKey("ldapd_entries.id"), nullable=True),
    Column("ndn", _BINARY_TEXT, nullable=False, unique=True),
    Column("dn", Text, nullable=False),
    Column("path", _BINARY_TEXT, nullable=False),
    Column("attrs", Text, nullable=False),
    Index("ldapd_entries_path", "path"),
    Index("ldapd_entries_parent", "parent_id", "path"),
    sqlite_autoincrement=True,
)

values = Table(
    "ldapd_values",
    metadata,
    Column("entry_id", BigInteger, ForeignKey("ldapd_entries.id"), nullable=False),
    Column("attr", String(128), nullable=False),
    Column("kind", String(1), nullable=False),
    Column("key", _BINARY_TEXT, nullable=False),
    Index("ldapd_values_key", "attr", "kind", "key", "entry_id"),
)


changes = Table(
    "ldapd_changes",
    metadata,
    Column("number", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("csn", String(64), nullable=False),
    Column("time", String(32), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("target_dn", Text, nullable=False),
    Column("entry_uuid", String(64), nullable=False),
    Column("changes", LargeBinary, nullable=False),
    Column("new_rdn", Text, nullable=True),
    Column("delete_old_rdn", Boolean, nullable=True),
    Column("new_superior", Text, nullable=True),
    Index("ldapd_changes_time", "time"),
    # AUTOINCREMENT: SQLite never gives a number again, not even the
    # number of the newest change once it is trimmed.
    sqlite_autoincrement=True,
)


class SchemaVersionError(Exception):
    """
    The database was written by a newer ldapd, or for another suffix, or
    holds a bulk load that did not finish (L{IMPORT_UNDER_WAY}).
    """


def _createTables(conn: Connection) -> None:
    for table in (entries, values):
        table.create(conn, checkfirst=True)


def _createChangelog(conn: Connection) -> None:
    changes.create(conn, checkfirst=True)


#: On SQLite, the substring keys of each entry (its C{values} rows of kind
#: C{s}, one per line) in an FTS5 table with the trigram tokenizer, whose
#: rowid is the entry's id: the index of C{*any*} and C{*final} pieces,
#: which a B-tree of whole keys cannot serve (PostgreSQL's pg_trgm index on
#: C{values} does this there).
GRAMS = "ldapd_grams"


def hasGrams(conn: Connection) -> bool:
    """
    @return: whether the database has the L{GRAMS} table (an SQLite built
        without FTS5 has none).
    """
    return conn.dialect.name == "sqlite" and conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE name = ?", (GRAMS,)).first() is not None


#: Write the L{GRAMS} rows of the entries whose ids are in a range (from,
#: to, inclusive) from their substring keys; none may have one yet.
GRAMS_OF_ENTRIES = (
    f"INSERT INTO {GRAMS} (rowid, keys) SELECT entry_id, group_concat(key, char(10)) "
    f"FROM {values.name} WHERE kind = 's' AND entry_id BETWEEN ? AND ? GROUP BY entry_id")


def fillGrams(conn: Connection) -> None:
    """
    Write the whole L{GRAMS} table again from C{values}.
    """
    conn.exec_driver_sql(f"DELETE FROM {GRAMS}")
    conn.exec_driver_sql(GRAMS_OF_ENTRIES, (0, 2 ** 63 - 1))


def _createGrams(conn: Connection) -> None:
    if conn.dialect.name != "sqlite":
        return
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(
                f"CREATE VIRTUAL TABLE {GRAMS} USING fts5(keys, tokenize = 'trigram')")
    except OperationalError as e:
        _log.info("no FTS5 trigram tokenizer in this SQLite ({error}): substring indexes "
                  "are prefix indexes", error=str(e.orig).strip())
        return
    fillGrams(conn)


def _indexValuesByEntry(conn: Connection) -> None:
    conn.execute(text(f"CREATE INDEX IF NOT EXISTS ldapd_values_entry ON {values.name} (entry_id)"))


#: The C{meta} key present while a bulk load into an empty database runs
#: without its indexes (L{beginBulkLoad}): a database that has it was left
#: half-loaded by a load that never finished, and is refused.
IMPORT_UNDER_WAY = "import_under_way"

#: The secondary indexes of the entries and index tables, which a bulk load
#: into an empty database builds once at its end (slapadd -q's way): the
#: unique C{ndn} index stays, to find parents and refuse duplicates.
_LOAD_INDEXES = sorted((*entries.indexes, *values.indexes), key=lambda i: str(i.name))


def _foreignKeys() -> list[tuple[str, str, str]]:
    """
    @return: the foreign keys of the entries and index tables, each as its
        table, the constraint's name (PostgreSQL's default one, which the
        tables were created with) and its definition.
    """
    return [(table.name, f"{table.name}_{fk.parent.name}_fkey",
             f"FOREIGN KEY ({fk.parent.name}) REFERENCES {fk.column.table.name} ({fk.column.name})")
            for table in (entries, values) for fk in sorted(table.foreign_keys,
                                                            key=lambda fk: fk.parent.name)]


def beginBulkLoad(conn: Connection) -> None:
    """
    Begin a bulk load into an empty database: mark it as under way
    (L{IMPORT_UNDER_WAY}) and drop the secondary indexes and, on
    PostgreSQL, the foreign keys (SQLite's connection stops checking them).

    @param conn: a connection in a transaction, which excludes other writers.
    """
    writeMeta(conn, IMPORT_UNDER_WAY, "entries are being loaded without their indexes")
    for index in _LOAD_INDEXES:
        index.drop(conn, checkfirst=True)
    conn.execute(text("DROP INDEX IF EXISTS ldapd_values_entry"))
    if conn.dialect.name == "postgresql":
        for table, name, _ in _foreignKeys():
            conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}"))


def endBulkLoad(conn: Connection) -> None:
    """
    End a bulk load begun by L{beginBulkLoad}: build the indexes it dropped,
    as the migrations create them, check (PostgreSQL: add again) the
    foreign keys, and remove the mark.

    @param conn: a connection in a transaction.
    @raise ValueError: if a row's parent entry is missing (SQLite; on
        PostgreSQL the database raises an integrity error).
    """
    if conn.dialect.name == "postgresql":
        # Room to sort an index in memory (the default, 64 MB, spills a
        # million keys to disk), for this transaction only.
        conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    for index in _LOAD_INDEXES:
        index.create(conn, checkfirst=True)
    _indexValuesByEntry(conn)
    if conn.dialect.name == "postgresql":
        for table, name, definition in _foreignKeys():
            conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"))
    else:
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
        if broken is not None:
            raise ValueError(f"the load left a row of {broken[0]} without its entry {broken[2]}")
    conn.execute(meta.delete().where(meta.c.key == IMPORT_UNDER_WAY))


#: The steps from one version to the next: step C{n} brings a database at
#: version C{n - 1} to version C{n}. Version 0 is an empty database.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "entries and index tables", _createTables),
    (2, "index of the values by entry, for writes", _indexValuesByEntry),
    (3, "the changelog", _createChangelog),
    (4, "the trigram index of substring keys (SQLite)", _createGrams),
]

#: The version this code writes.
SCHEMA_VERSION = MIGRATIONS[-1][0]


def readMeta(conn: Connection) -> dict[str, str]:
    """
    @param conn: a connection in a transaction.
    @return: the C{meta} table as a dict (empty for a new database).
    """
    if not conn.dialect.has_table(conn, meta.name):
        return {}
    return {row.key: row.value for row in conn.execute(select(meta.c.key, meta.c.value))}


def writeMeta(conn: Connection, key: str, value: str) -> None:
    """
    Set one C{meta} value.

    @param conn: a connection in a transaction.
    """
    conn.execute(meta.delete().where(meta.c.key == key))
    conn.execute(meta.insert().values(key=key, value=value))


def upgrade(conn: Connection, suffix: str, target: int = SCHEMA_VERSION) -> list[int]:
    """
    Bring the database to version C{target}: create it if it is empty, or
    apply the missing steps in order. Call it in a transaction that excludes
    other writers (the caller locks), so that two processes opening one
    database at once do not both upgrade it.

    @param conn: a connection in a transaction.
    @param suffix: the normalised suffix the backend serves.
    @param target: the version to reach (tests build older databases).
    @return: the versions applied.
    @raise SchemaVersionError: if the database is newer than this code,
        holds another suffix, or an unfinished bulk load.
    """
    meta.create(conn, checkfirst=True)
    current = readMeta(conn)
    version = int(current.get("version", "0"))
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the database is at schema version {version}; this ldapd knows up to "
            f"{SCHEMA_VERSION}: upgrade ldapd"
        )
    if IMPORT_UNDER_WAY in current:
        raise SchemaVersionError(
            "the database holds an import that did not finish (ldapd-admin import was stopped "
            "before its end): it is incomplete; remove it and import again")
    stored = current.get("suffix")
    if stored is not None and stored != suffix:
        raise SchemaVersionError(f"the database holds {stored!r}, not {suffix!r}")
    if stored is None:
        writeMeta(conn, "suffix", suffix)
    applied = []
    for number, _, step in MIGRATIONS:
        if version < number <= target:
            step(conn)
            writeMeta(conn, "version", str(number))
            applied.append(number)
    return applied


def encodeId(id: int) -> str:
    """
    @param id: an entry id.
    @return: its order-preserving text form for paths: the number of
        hexadecimal digits, then the digits.
    """
    digits = f"{id:x}"
    return f"{len(digits):x}{digits}"


def pathUpperBound(path: str) -> str:
    """
    @param path: the path of an entry, ending with C{/}.
    @return: the smallest string greater than every path within its subtree.
    """
    return path[:-1] + "0"


def lockForSetup(conn: Connection) -> None:
    """
    Keep other processes from setting up or upgrading the database at the
    same time: a transaction-scoped advisory lock on PostgreSQL (SQLite's
    setup transaction is already exclusive).

    @param conn: a connection in a transaction.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(4242170389)"))
