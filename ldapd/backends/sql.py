"""
The C{sql} backend: the DIT in a relational database through SQLAlchemy
Core: SQLite (embedded; WAL, C{synchronous=FULL}) or PostgreSQL (psycopg 3;
several ldapd processes may share one database).

The tables are described in L{ldapd.backends.sqlschema}. Database calls run
in the backend's own thread pool, so the reactor never waits for the disk or
the network; hooks of a write run there too, inside the write's database
transaction, with an L{ITransaction} on the same connection. The exception
is a small read on SQLite (L{SQLBackend._readNow}): one that the database
does in a few thousand steps is done in the reactor's thread, since handing
it to a pool thread and its result back costs several times the read.

Searches are planned from the compiled filter: equality, presence and
substring assertions on indexed types become candidate-id queries on the
C{values} table (C{AND} intersects, C{OR} unites, anything else leaves the
scope to be scanned), restricted to the scope by the C{path} index. Rows are
read in batches, in path order (parents first), and every candidate is
confirmed with the filter's own C{match}: the index only narrows. Every read
asks the database, so what another process commits is seen at once (decoded
entries are kept, L{_EntryCache}, but only served for the same row text).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from ldaptor.protocols.ldap import ldaperrors
from sqlalchemy import (
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from ldapd._cache import LRU
from ldapd._files import createPrivate
from ldapd.backends import changelog, sqlschema
from ldapd.backends.base import (
    BatchWrites,
    OrphanEntries,
    WriteSkipped,
    checkPassword,
    holdingAny,
)
from ldapd.backends.sqlschema import (
    GRAMS,
    GRAMS_OF_ENTRIES,
    IndexConfig,
    encodeId,
    entries,
    pathUpperBound,
    values,
)
from ldapd.changes import ChangeRecord
from ldapd.dn import DN
from ldapd.entry import Attribute, Entry, Modification
from ldapd.filters import OBJECT_CLASS, And, Equality, Filter, Or, Present, Substrings
from ldapd.interfaces import (
    IBackend,
    IChangelog,
    IChangelogTransaction,
    ITransactionHooks,
    IWriteBatch,
    IWriteBatches,
)
from ldapd.operation import Operation, Scope
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.results import NoSuchObject
from ldapd.schema import AttributeType, InvalidValue, Schema

__all__ = ["DEFAULT_INDEXES", "SQLBackend", "SQLBackendFactory"]

#: The indexes unless configured: equality and presence on every type (as
#: the memory backend), substrings on the names people search by.
DEFAULT_INDEXES = ("* eq,pres", "cn,sn,givenName,uid,mail,displayName sub")

#: Rows read from the database at a time, in a search.
DEFAULT_BATCH = 500

#: Entries kept decoded, by default: a directory's busy entries (the users
#: and groups its clients look up again and again) in a few tens of MiB.
DEFAULT_ENTRY_CACHE = 10_000

#: Keys longer than this are stored as their SHA-256 (equality), or as a
#: "too long" marker (substrings), to keep index rows small.
_MAX_KEY = 256

#: How often a PostgreSQL write is tried when it loses a deadlock or a
#: serialisation conflict with another process.
_ATTEMPTS = 5

#: The most writes committed together on SQLite (L{SQLBackend._write}).
_GROUP = 64

#: The most values in one statement's C{IN} list (SQLite takes 999
#: parameters at most before version 3.32).
_IN_LIST = 500

#: About the most virtual machine steps SQLite may take for a read done in
#: the reactor's thread (L{SQLBackend._readNow}) before it is interrupted
#: and the read is done again in a pool thread. An entry read by DN or
#: through an equality or substring key that finds a few entries takes a
#: few hundred; a batch of a scan, or a key that finds thousands, many
#: more. A step is tens of nanoseconds: the reactor is held up for well
#: under a millisecond by a read that is then handed off.
_INLINE_STEPS = 2000

#: The steps between two calls of the progress handler that counts them
#: (SQLite calls it each time a statement's count of steps, which goes on
#: growing while the statement is reused, passes a multiple of this).
_STEPS_TICK = 500

#: The SQLite result codes (primary) on which a read in the reactor's
#: thread is handed to a pool thread: interrupted (over L{_INLINE_STEPS})
#: and busy or locked (the reactor does not wait for a lock).
_HAND_OFF = frozenset({sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

_log = Logger()

#: The SQLite settings of every connection that a bulk load changes
#: (L{_LOAD_PRAGMAS}), and puts back when it ends.
_PRAGMAS = ("synchronous=FULL", "foreign_keys=ON")

#: A bulk load's SQLite settings: no sync (a load that dies leaves a
#: database marked incomplete anyway), foreign keys checked once at the
#: end. The page cache stays SQLite's 2 MiB: a larger one (16 or 64 MiB)
#: made a load of 40,000 entries no faster, and held that much more memory
#: while its indexes were built.
_LOAD_PRAGMAS = ("synchronous=OFF", "foreign_keys=OFF")

#: The columns of an entry row (L{_Row}), for a table aliased C{e}.
_ROW_COLUMNS = "e.id, e.path, e.dn, e.ndn, e.attrs"

_SELECT_ROW = f"SELECT {_ROW_COLUMNS} FROM {entries.name} e WHERE e.ndn = ?"


def _marks(n: int) -> str:
    """
    @return: C{n} parameter marks, for an C{IN} list.
    """
    return ", ".join("?" * n)


def _keyText(key: Any) -> str:
    """
    The text an equality key is indexed under: typed, so that keys of
    different types never meet, and hashed when long or not storable.
    """
    if isinstance(key, str):
        text = "s" + key
    elif isinstance(key, bytes):
        text = "b" + key.hex()
    else:
        text = "r" + repr(key)
    if len(text) > _MAX_KEY or "\x00" in text:
        text = "h" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return text


#: The characters of a substring piece an FTS5 query looks for (four
#: trigrams): a longer piece is tested by the filter on the candidates.
_GRAM_PHRASE = 6


def _substringText(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def _successor(prefix: str) -> str | None:
    """
    @return: the smallest string greater than every string starting with
        C{prefix}, or C{None} if there is none.
    """
    while prefix:
        last = ord(prefix[-1]) + 1
        if 0xD800 <= last <= 0xDFFF:
            last = 0xE000
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(last)
        prefix = prefix[:-1]
    return None


def _likeEscape(piece: str) -> str:
    return piece.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def encodeAttributes(entry: Entry) -> str:
    """
    Serialise an entry's attributes as JSON text (raw bytes kept exactly
    through the C{surrogateescape} error handler).

    @param entry: the entry.
    @return: the text stored in C{entries.attrs}.
    """
    return _JSON.encode(
        [[d, [v.decode("utf-8", "surrogateescape") for v in vs]] for d, vs in entry.describedValues()])


#: json.dumps' encoder with L{encodeAttributes}' separators, made once (the
#: function makes one at each call given them).
_JSON = json.JSONEncoder(separators=(",", ":"))


def decodeAttributes(text: str) -> tuple[tuple[str, ...], tuple[bytes | tuple[bytes, ...], ...]]:
    """
    @param text: what L{encodeAttributes} stored.
    @return: the attribute descriptions, and each one's raw values as
        L{Entry.fromStored} takes them (one value bare).
    """
    pairs = json.loads(text)
    return tuple([d for d, _ in pairs]), tuple([
        vs[0].encode("utf-8", "surrogateescape") if len(vs) == 1
        else tuple([v.encode("utf-8", "surrogateescape") for v in vs])
        for _, vs in pairs
    ])


class _Row(NamedTuple):
    """
    The columns of an entry row (L{_ROW_COLUMNS}).
    """

    id: int
    path: str
    dn: str
    ndn: str
    attrs: str


class _EntryCache:
    """
    The entries last read or written, by row id, each with the C{dn} and
    C{attrs} text it was made from. An entry is taken from the cache only
    when the row read now holds the same text, so the cache can never serve
    an entry the database no longer holds (written by another process, or
    cached by a write that was rolled back); and the same unchanged row is
    the same L{Entry} object, whose filtered copies and encodings the
    directory keeps. Pool threads share it, under a lock.
    """

    def __init__(self, size: int) -> None:
        """
        @param size: the most entries held; 0 holds none.
        """
        self._items: LRU[int, tuple[str, str, Entry]] = LRU(size)
        self._lock = threading.Lock()
        self.size = size

    def get(self, id: int, dn: str, attrs: str) -> Entry | None:
        """
        @return: the entry made from exactly this row, or C{None}.
        """
        with self._lock:
            cached = self._items.get(id)
        if cached is not None and cached[1] == attrs and cached[0] == dn:
            return cached[2]
        return None

    def put(self, id: int, dn: str, attrs: str, entry: Entry) -> None:
        """
        Hold C{entry}, made from (or stored as) this row.
        """
        if self.size:
            with self._lock:
                self._items.put(id, (dn, attrs, entry))


@implementer(IBackend, IChangelog, IWriteBatches)
class SQLBackend:
    """
    A DIT in a SQL database, for one naming context.

    @ivar suffix: the normalised suffix.
    @ivar engine: the SQLAlchemy engine (once open).
    """

    def __init__(
        self,
        suffix: DN,
        schema: Schema,
        url: str | URL,
        reactor: Any = None,
        indexes: Iterable[str] = DEFAULT_INDEXES,
        poolSize: int = 4,
        batchSize: int = DEFAULT_BATCH,
        entryCache: int = DEFAULT_ENTRY_CACHE,
    ) -> None:
        """
        @param suffix: the normalised suffix of the naming context.
        @param schema: the directory's schema.
        @param url: the SQLAlchemy URL: C{sqlite:///path} or
            C{postgresql+psycopg://...}.
        @param reactor: the reactor.
        @param indexes: the index configuration (L{IndexConfig}).
        @param poolSize: database connections, and threads using them.
        @param batchSize: rows a search reads at a time.
        @param entryCache: the most entries kept decoded (L{_EntryCache}).
        @raise ValueError: for a bad index configuration or URL.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.suffix = suffix
        self.schema = schema
        self.url = make_url(url)
        if self.url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {self.url.get_backend_name()!r}")
        if self.url.get_backend_name() == "sqlite" and self.url.database in (None, "", ":memory:"):
            raise ValueError("an in-memory SQLite database is not shared between threads; "
                             "use a file, or the memory backend")
        self.indexes = IndexConfig.parse(indexes, schema)
        self.poolSize = poolSize
        self.batchSize = batchSize
        self._cache = _EntryCache(entryCache)
        # How each attribute type is indexed (L{_indexPlan}), once known.
        self._indexPlans: dict[AttributeType, tuple[str, bool, bool, Any, bool]] = {}
        self._reactor = reactor
        self._pool: ThreadPool | None = None
        self.engine: Engine | None = None
        # The reactor thread's own read connection (SQLite, once open), and
        # the ticks of steps of its read under way (_cbInlineTick).
        self._inline: sqlite3.Connection | None = None
        self._inlineTicks = 0
        # PostgreSQL's pg_trgm index on substring keys; SQLite's GRAMS table.
        self._trigrams = False
        self._grams = False
        self._postgres = self.url.get_backend_name() == "postgresql"
        self._writeTurn: AbstractContextManager[Any] = (
            nullcontext() if self._postgres else threading.Lock())
        # SQLite writes waiting for the next group commit, and whether a pool
        # thread is committing groups (both under the queue's lock).
        self._queue: deque[tuple[Callable[[_Transaction], Any], defer.Deferred[Any]]] = deque()
        self._queueLock = threading.Lock()
        self._committing = False
        # The thread of write batches (IWriteBatches), once one is begun,
        # and the batch under way.
        self._batchPool: ThreadPool | None = None
        self._batch: _Batch | None = None

    # Life cycle

    def _createEngine(self) -> Engine:
        if self._postgres:
            return create_engine(self.url, pool_size=self.poolSize, max_overflow=0,
                                 pool_pre_ping=True)
        engine = create_engine(self.url, pool_size=self.poolSize, max_overflow=0)

        @event.listens_for(engine, "connect")
        def _cbConnect(dbapiConnection: Any, record: Any) -> None:
            # SQLAlchemy issues BEGIN itself (below), so that writes can
            # take the write lock at once (BEGIN IMMEDIATE).
            dbapiConnection.isolation_level = None
            cursor = dbapiConnection.cursor()
            for pragma in ("journal_mode=WAL", "busy_timeout=30000", *_PRAGMAS):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _cbBegin(conn: Connection) -> None:
            write = conn.get_execution_options().get("ldapd_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def open(self) -> defer.Deferred[None]:
        """
        Start the thread pool, connect, and create or upgrade the tables.
        """
        self._pool = ThreadPool(minthreads=1, maxthreads=self.poolSize, name="ldapd-sql")
        self._pool.start()

        def _ebFailed(reason: Any) -> Any:
            self.close()
            return reason

        return self._call(self._setUp).addCallback(self._cbOpenInline).addErrback(_ebFailed)

    def _cbOpenInline(self, _: None) -> None:
        """
        Open the reactor thread's read connection to a SQLite file
        (L{_readNow}): it never writes, never waits for a lock, and gives
        up on a read after about L{_INLINE_STEPS} steps.
        """
        if self._postgres:
            return
        assert self.engine is not None
        dialect = self.engine.dialect
        cargs, cparams = dialect.create_connect_args(self.url)
        connection = dialect.loaded_dbapi.connect(*cargs, **cparams)
        connection.isolation_level = None
        for pragma in ("busy_timeout=0", "query_only=1"):
            connection.execute(f"PRAGMA {pragma}")
        connection.set_progress_handler(self._cbInlineTick, _STEPS_TICK)
        self._inline = connection

    def _cbInlineTick(self) -> bool:
        """
        Count a tick of L{_STEPS_TICK} steps of the read in the reactor's
        thread (L{_readNow}).

        @return: whether to interrupt the read: it is over L{_INLINE_STEPS}.
        """
        self._inlineTicks += 1
        return self._inlineTicks > _INLINE_STEPS // _STEPS_TICK

    def _setUp(self) -> None:
        if self.url.get_backend_name() == "sqlite":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
            createPrivate(self.url.database)  # type: ignore[arg-type]
        self.engine = self._createEngine()
        with self._writeConnection() as conn, conn.begin():
            sqlschema.lockForSetup(conn)
            applied = sqlschema.upgrade(conn, str(self.suffix))
            if applied:
                _log.info("database schema of {suffix} at version {version}",
                          suffix=str(self.suffix), version=applied[-1])
            stored = sqlschema.readMeta(conn).get("indexes")
            wanted = self.indexes.canonical()
            if stored != wanted:
                if stored is not None:
                    self._reindex(conn)
                sqlschema.writeMeta(conn, "indexes", wanted)
            self._grams = sqlschema.hasGrams(conn)
        if self._postgres:
            self._trigrams = self._setUpTrigrams()

    def _setUpTrigrams(self) -> bool:
        """
        Add a pg_trgm index on substring keys where the extension is (or can
        be) installed, for C{*any*} and C{*final} pieces.

        @return: whether the index exists.
        """
        assert self.engine is not None
        find = ("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'")
        with self.engine.connect() as conn:
            found = conn.exec_driver_sql(find).scalar()
            conn.rollback()
            if found is None:
                try:
                    with conn.begin():
                        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
                except DBAPIError as e:
                    _log.info("no pg_trgm ({error}): substring indexes are prefix indexes",
                              error=str(e.orig).strip())
                found = conn.exec_driver_sql(find).scalar()
                conn.rollback()
            if found is None:
                return False
            try:
                with conn.begin():
                    conn.exec_driver_sql(
                        f"CREATE INDEX IF NOT EXISTS ldapd_values_trgm ON {values.name} "
                        f'USING gin (key "{found}".gin_trgm_ops) WHERE kind = \'s\''
                    )
            except DBAPIError as e:
                _log.info("cannot create the trigram index ({error})", error=str(e.orig).strip())
                return False
            return True

    def close(self) -> defer.Deferred[None]:
        """
        Stop the thread pool and close the database connections.
        """
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
        batchPool, self._batchPool = self._batchPool, None
        if batchPool is not None:
            batchPool.stop()
        inline, self._inline = self._inline, None
        if inline is not None:
            inline.close()
        if self.engine is not None:
            self.engine.dispose()
        return defer.succeed(None)

    def poolUse(self) -> tuple[int, int]:
        """
        How busy the database calls' thread pool is, for the metrics
        (L{ldapd.metrics}): each of its L{poolSize} threads holds a
        database connection while it runs a call.

        @return: the calls running and the calls waiting for a thread
            (both 0 while the backend is closed).
        """
        pool = self._pool
        if pool is None:
            return 0, 0
        return len(pool.working), pool.q.qsize()

    def _call(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        if self._pool is None:
            return defer.fail(RuntimeError("the sql backend is not open"))
        return threads.deferToThreadPool(self._reactor, self._pool, f, *args)

    def _readNow(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        """
        Run the read C{f(*args, reader)}: on SQLite, at once in the
        reactor's thread with a cursor of its own connection as C{reader},
        unless it takes more than about L{_INLINE_STEPS} steps or finds the
        database locked; then (and on PostgreSQL, whose every statement is
        a round trip to the server) in a pool thread, with C{reader} left
        out. C{f} must leave nothing changed when it raises, so that it can
        be run again. The cursor is closed after the read, so that no
        statement left unfinished keeps a read transaction (and its
        snapshot of the database) open.

        @return: a Deferred of what C{f} returns, or of what it raises.
        """
        if self._inline is None:
            return self._call(f, *args)
        self._inlineTicks = 0
        reader = self._inline.cursor()
        try:
            result = f(*args, reader)
        except sqlite3.OperationalError as e:
            if (getattr(e, "sqlite_errorcode", 0) & 0xFF) in _HAND_OFF:
                return self._call(f, *args)
            return defer.fail()
        except BaseException:
            return defer.fail()
        finally:
            reader.close()
        return defer.succeed(result)

    def _writeConnection(self) -> Connection:
        assert self.engine is not None
        return self.engine.connect().execution_options(ldapd_write=True)

    # Statements
    #
    # The backend's own statements are SQL text run on the driver's cursor:
    # building and compiling SQLAlchemy constructs cost more than the
    # database's work for the small indexed reads and writes that make up
    # the traffic. They are written with "?" marks (and no literal "%").

    def _sql(self, sql: str) -> str:
        """
        @param sql: a statement with C{?} for each parameter.
        @return: the statement in the driver's parameter style.
        """
        return sql.replace("?", "%s") if self._postgres else sql

    def _execute(self, db: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        """
        Run one statement on a driver cursor.

        @param db: a DB-API cursor.
        @param sql: the statement, with C{?} for each parameter.
        @param params: the parameters.
        @return: the cursor, to fetch from.
        """
        db.execute(self._sql(sql), params)
        return db

    @contextmanager
    def _reading(self, db: Any = None) -> Iterator[Any]:
        """
        A driver cursor for reads, on a pooled connection: on SQLite every
        statement is its own read transaction (no C{BEGIN}/C{ROLLBACK} round
        trips); on PostgreSQL the transaction ends when the connection goes
        back to the pool.

        @param db: the cursor to read with instead (a batch's), left open.
        """
        if db is not None:
            yield db
            return
        assert self.engine is not None
        raw = self.engine.raw_connection()
        try:
            yield raw.cursor()
        finally:
            raw.close()

    @staticmethod
    def _cursor(conn: Connection) -> Any:
        """
        @param conn: a SQLAlchemy connection (in a transaction).
        @return: a driver cursor on the same connection and transaction.
        """
        return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    # Rows and entries

    def _entry(self, row: tuple[int, str, str, str, str]) -> Entry:
        """
        @param row: an entry row's columns (L{_ROW_COLUMNS}).
        @return: its entry, from the cache if it holds this row's.
        """
        id, _, dn, ndn, attrs = row
        entry = self._cache.get(id, dn, attrs)
        if entry is None:
            name = DN.parse(dn)
            entry = Entry.fromStored(name, name if ndn == dn else DN.parse(ndn), self.schema,
                                     *decodeAttributes(attrs))
            self._cache.put(id, dn, attrs, entry)
        return entry

    def _row(self, db: Any, ndn: DN, lock: str | None = None) -> _Row | None:
        sql = _SELECT_ROW
        if lock is not None and self._postgres:
            sql += " FOR SHARE" if lock == "share" else " FOR UPDATE"
        r = self._execute(db, sql, (str(ndn),)).fetchone()
        return _Row(*r) if r is not None else None

    def _lookup(self, db: Any, ndn: DN) -> Entry | None:
        row = self._row(db, ndn)
        return self._entry(row) if row is not None else None

    def _noSuchObject(self, db: Any, ndn: DN) -> NoSuchObject:
        """
        The noSuchObject error for C{ndn}, with the deepest existing
        superior (found with one query) as matched DN.
        """
        ancestors = []
        parent = ndn.parent()
        while len(parent) >= len(self.suffix) and parent.isWithin(self.suffix):
            ancestors.append(str(parent))
            if not parent:
                break
            parent = parent.parent()
        if ancestors:
            found = self._execute(
                db, f"SELECT dn, ndn FROM {entries.name} WHERE ndn IN ({_marks(len(ancestors))})",
                ancestors,
            ).fetchall()
            if found:
                deepest = max(found, key=lambda r: len(DN.parse(r[1])))
                return NoSuchObject("no such object", DN.parse(deepest[0]))
        return NoSuchObject("no such object")

    # Index keys

    def indexRows(self, entry: Entry | Iterable[Attribute]) -> set[tuple[str, str, str]]:
        """
        The substrings keys are what L{ldapd.backends.base.substringTexts} reads of the values,
        made here with the equality keys so that a rule shared by both
        (caseIgnoreMatch's and caseIgnoreSubstringsMatch's) runs once.

        @param entry: an entry, or some of its attributes.
        @return: their index rows as C{(attr OID, kind, key)}.
        """
        schema = self.schema
        plans = self._indexPlans
        rows: set[tuple[str, str, str]] = set()
        add = rows.add
        equalityKey = schema.equalityKey
        typed = (entry.typedValues() if isinstance(entry, Entry)
                 else ((a.type, a.values) for a in entry))
        for at, vs in typed:
            plan = plans.get(at)
            if plan is None:
                plan = plans[at] = self._indexPlan(at)
            oid, presence, equality, substr, substrIsEquality = plan
            if presence:
                add((oid, "p", ""))
            if not equality and substr is None:
                continue
            for v in vs:
                key: Any = None
                if equality:
                    try:
                        key = equalityKey(at, v)
                    except InvalidValue:
                        # Compared as bytes; its substrings rule fails too.
                        add((oid, "e", _keyText(v)))
                        if substrIsEquality:
                            continue
                    else:
                        # _keyText's common case, inline: most keys are
                        # short text.
                        add((oid, "e", "s" + key if key.__class__ is str and len(key) < _MAX_KEY
                             and "\x00" not in key else _keyText(key)))
                        if oid == OBJECT_CLASS:
                            for superclass in schema.superclasses(key):
                                add((oid, "e", _keyText(superclass)))
                if substr is None:
                    continue
                if not substrIsEquality or key is None:
                    try:
                        key = schema.applyRule(substr, v)
                    except InvalidValue:
                        continue
                if len(key) > _MAX_KEY:
                    add((oid, "l", ""))
                else:
                    add((oid, "s", _substringText(key)))
        return rows

    def _indexPlan(self, at: AttributeType) -> tuple[str, bool, bool, Any, bool]:
        """
        How L{indexRows} indexes the values of one attribute type.

        @return: its OID, whether it has a presence and an equality index,
            the substrings rule of its substrings index (or C{None}), and
            whether that rule's key is the equality key (the same function,
            as caseIgnoreSubstringsMatch's and caseIgnoreMatch's): computed
            once for both.
        """
        kinds = self.indexes.kinds(at.oid)
        substr = at.substr if "sub" in kinds else None
        sameKey = (substr is not None and "eq" in kinds and at.equality is not None
                   and at.equality.normalize is substr.normalize
                   and at.equality.needsSchema == substr.needsSchema)
        return at.oid, "pres" in kinds, "eq" in kinds, substr, sameKey

    def _reindex(self, conn: Connection) -> None:
        """
        Rebuild the whole index (the index configuration changed).
        """
        _log.info("the index configuration of {suffix} changed: reindexing",
                  suffix=str(self.suffix))
        conn.execute(values.delete())
        last = 0
        while True:
            batch = conn.execute(
                select(entries.c.id, entries.c.dn, entries.c.ndn, entries.c.attrs)
                .where(entries.c.id > last).order_by(entries.c.id).limit(self.batchSize)
            ).all()
            if not batch:
                break
            rows = []
            for r in batch:
                entry = self._entry((r.id, "", r.dn, r.ndn, r.attrs))
                for attr, kind, key in self.indexRows(entry):
                    rows.append({"entry_id": r.id, "attr": attr, "kind": kind, "key": key})
            if rows:
                conn.execute(values.insert(), rows)
            last = batch[-1].id
        if sqlschema.hasGrams(conn):
            sqlschema.fillGrams(conn)

    # Reads

    def get(self, op: Operation, ndn: DN) -> defer.Deferred[Entry]:
        return self._readNow(self._get, ndn)

    def _get(self, ndn: DN, reader: Any = None) -> Entry:
        """
        @param reader: the cursor to read with (a write batch's), or C{None}.
        """
        with self._reading(reader) as db:
            entry = self._lookup(db, ndn)
            if entry is None:
                raise self._noSuchObject(db, ndn)
            return entry

    def authenticate(self, op: Operation, ndn: DN, password: bytes) -> defer.Deferred[Entry]:
        def _ebMissing(failure: Any) -> None:
            failure.trap(NoSuchObject)

        d = self._readNow(self._get, ndn)
        d.addErrback(_ebMissing)
        d.addCallback(lambda entry: checkPassword(self._reactor, entry, password))
        return d

    def plan(self, f: Filter) -> _Query | None:
        """
        The candidate ids of C{f} as a SQL query, from the indexes.

        @param f: a compiled filter.
        @return: a C{SELECT entry_id ...} with its parameters, or C{None} if
            the indexes cannot narrow C{f} (every entry in scope must be
            tested).
        """
        if isinstance(f, Equality):
            types = self._indexed(f.type, "eq")
            if types is None:
                return None
            return _Query(f"{_SELECT_CANDIDATES} kind = 'e' AND attr IN ({_marks(len(types))}) "
                          "AND key = ?", (*types, _keyText(f.key)))
        if isinstance(f, Present):
            if f.type.oid == OBJECT_CLASS:
                return None
            types = self._indexed(f.type, "pres")
            if types is None:
                return None
            return _Query(f"{_SELECT_CANDIDATES} kind = 'p' AND attr IN ({_marks(len(types))})",
                          tuple(types))
        if isinstance(f, Substrings):
            return self._planSubstrings(f)
        if isinstance(f, And):
            # An object class is held by whole kinds of entries (every
            # user): intersecting its thousands of ids with a uid's one
            # costs more than testing the few other candidates' classes
            # with the filter. It narrows only an And with nothing else to
            # narrow it.
            planned = [(part, self.plan(part)) for part in f.parts]
            parts = ([p for part, p in planned if p is not None and not _isClassAssertion(part)]
                     or [p for _, p in planned if p is not None])
            return _Query.combine("INTERSECT", parts) if parts else None
        if isinstance(f, Or):
            alternatives = [self.plan(part) for part in f.parts]
            if not alternatives or any(p is None for p in alternatives):
                return None
            return _Query.combine("UNION", alternatives)  # type: ignore[arg-type]
        return None

    def _indexed(self, at: Any, kind: str) -> list[str] | None:
        types = self.schema.subtypes(at)
        if not all(kind in self.indexes.kinds(t.oid) for t in types):
            return None
        return sorted(t.oid for t in types)

    def _planSubstrings(self, f: Substrings) -> _Query | None:
        types = self._indexed(f.type, "sub")
        if types is None:
            return None
        conditions = []
        params: list[Any] = []
        if f.initial:
            initial = _substringText(f.initial)[:_MAX_KEY]
            conditions.append("key >= ?")
            params.append(initial)
            upper = _successor(initial)
            if upper is not None:
                conditions.append("key < ?")
                params.append(upper)
        pieces = [f.initial or ""] + list(f.any) + [f.final or ""]
        if self._trigrams and any(len(p) >= 3 for p in pieces):
            conditions.append("key LIKE ? ESCAPE '\\'")
            params.append(("" if f.initial else "%") + "%".join(
                _likeEscape(_substringText(p)) for p in pieces if p) + ("" if f.final else "%"))
        attrs = f"attr IN ({_marks(len(types))})"
        if conditions:
            found = _Query(
                f"{_SELECT_CANDIDATES} kind = 's' AND {attrs} AND {' AND '.join(conditions)}",
                (*types, *params))
        elif self._grams and any(len(p) >= 3 for p in pieces):
            # The entries whose substring keys (of any indexed type: the
            # filter, tested on each candidate, settles the type) hold the
            # start of every piece of three characters or more (the trigram
            # tokenizer's least), each a phrase of the FTS5 query. A phrase
            # reads the entries of each of its trigrams: those of a long
            # piece's tail (a mail domain) are often every entry's.
            found = _Query(
                f"SELECT rowid AS entry_id FROM {GRAMS} WHERE keys MATCH ?",
                (" AND ".join('"' + _substringText(p[:_GRAM_PHRASE]).replace('"', '""') + '"'
                              for p in pieces if len(p) >= 3),))
        else:
            return None
        return _Query.combine("UNION", [
            found, _Query(f"{_SELECT_CANDIDATES} kind = 'l' AND {attrs}", tuple(types))])

    def countCandidates(self, f: Filter) -> defer.Deferred[int | None]:
        """
        How many entries the indexes leave for C{f} (for tests and tuning).

        @param f: a compiled filter.
        @return: a Deferred firing with the count, or C{None} if C{f} is not indexed.
        """
        candidates = self.plan(f)
        if candidates is None:
            return defer.succeed(None)

        def count() -> int:
            with self._reading() as db:
                return self._execute(  # type: ignore[no-any-return]
                    db, f"SELECT count(*) FROM ({candidates.sql}) AS c", candidates.params,
                ).fetchone()[0]

        return self._call(count)

    def search(self, op: Operation, emit: Callable[[Entry], Any]) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._search(op, emit))

    async def _search(self, op: Operation, emit: Callable[[Entry], Any],
                      fetch: Callable[..., defer.Deferred[Any]] | None = None) -> None:
        """
        @param fetch: runs L{_fetchBatch} with its arguments and returns a
            Deferred of its result; L{_readNow} by default (a batch runs it
            on its own connection).
        """
        if fetch is None:
            fetch = self._readNow
        params = op.search
        assert params is not None, "search() needs op.search"
        f = params.filter
        candidates = self.plan(f) if params.scope != Scope.BASE else None
        cursor = _Cursor(params.base, params.scope, candidates)
        while not cursor.done:
            op.check()
            batch = await fetch(self._fetchBatch, cursor, f)
            for entry in batch:
                waiting = emit(entry)
                if waiting is not None:
                    await waiting
            if not cursor.done:
                op.check()
                await op.cooperate()

    def _fetchBatch(self, cursor: _Cursor, f: Filter, reader: Any = None) -> list[Entry]:
        """
        Read the next batch of a search (L{_readNow}) and return the
        entries that match C{f}. The first batch finds the base entry and
        the first candidates in one statement. If it raises, C{cursor} is
        left as it was, to read the same batch again.

        @param reader: the cursor to read with, or C{None} for a pooled one.
        """
        state = vars(cursor).copy()
        try:
            rows = self._readBatch(cursor, reader)
        except BaseException:
            vars(cursor).update(state)
            raise
        entriesFound = []
        for row in rows:
            entry = self._entry(row)
            if f.match(entry) is True:
                entriesFound.append(entry)
        return entriesFound

    def _readBatch(self, cursor: _Cursor, reader: Any) -> list[Any]:
        """
        Read the rows of the next batch of a search (L{_fetchBatch}) and
        move C{cursor} past them.
        """
        limit = self.batchSize
        with self._reading(reader) as db:
            if cursor.ids is not None:
                chunk = cursor.ids[cursor.position:cursor.position + limit]
                cursor.position += limit
                rows = self._execute(
                    db, f"SELECT {_ROW_COLUMNS} FROM {entries.name} e "
                        f"WHERE e.id IN ({_marks(len(chunk))}) ORDER BY e.path", chunk,
                ).fetchall()
                cursor.done = cursor.position >= len(cursor.ids)
            else:
                sql, params = cursor.query(f"b.id, b.path, {_ROW_COLUMNS}", left=True)
                found = self._execute(db, f"{sql} ORDER BY e.path LIMIT ?",
                                      (*params, limit + 1)).fetchall()
                if not found:
                    if cursor.baseId is None:
                        raise self._noSuchObject(db, cursor.baseDN)
                    # The base entry was deleted or moved since the last batch.
                    found = []
                elif cursor.baseId is None:
                    cursor.baseId = found[0][0]
                rows = [r[2:] for r in found if r[2] is not None]
                if len(rows) <= limit:
                    cursor.done = True
                else:
                    rows = rows[:limit]
                    if cursor.candidates is not None:
                        # A large candidate set: take the remaining ids once,
                        # rather than run the candidate query for every batch.
                        cursor.last = rows[-1][1]
                        sql, params = cursor.query("e.id", left=False)
                        cursor.ids = [r[0] for r in self._execute(
                            db, f"{sql} ORDER BY e.path", params).fetchall()]
                        cursor.done = not cursor.ids
            if rows:
                cursor.last = rows[-1][1]
        return rows

    def _findEqual(self, at: AttributeType, keys: Collection[Any], reader: Any = None) -> list[Entry]:
        """
        The entries holding a value of C{at} keyed by one of C{keys}
        (L{IWriteBatch.findEqual}): one statement per L{_IN_LIST} keys
        through the equality index, or a scan of every entry if C{at} has
        none.

        @param reader: the cursor to read with (a write batch's), or C{None}.
        """
        types = self._indexed(at, "eq")
        rows: dict[int, Any] = {}
        with self._reading(reader) as db:
            if types is None:
                found = self._execute(db, f"SELECT {_ROW_COLUMNS} FROM {entries.name} e").fetchall()
                rows.update((r[0], r) for r in found)
            else:
                texts = sorted({_keyText(key) for key in keys})
                for start in range(0, len(texts), _IN_LIST):
                    chunk = texts[start:start + _IN_LIST]
                    found = self._execute(
                        db, f"SELECT {_ROW_COLUMNS} FROM {entries.name} e WHERE e.id IN "
                            f"({_SELECT_CANDIDATES} kind = 'e' AND attr IN ({_marks(len(types))}) "
                            f"AND key IN ({_marks(len(chunk))}))", (*types, *chunk),
                    ).fetchall()
                    rows.update((r[0], r) for r in found)
        return holdingAny((self._entry(r) for r in rows.values()), at, keys)

    # Changelog

    def _read(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        """
        Run C{f(conn, *args)} in a pool thread on a connection in a transaction.
        """
        def read() -> Any:
            assert self.engine is not None
            with self.engine.connect() as conn, conn.begin():
                return f(conn, *args)

        return self._call(read)

    def changes(self, after: int, limit: int) -> defer.Deferred[list[ChangeRecord]]:
        return self._read(changelog.readSQL, after, limit)

    def changeBounds(self) -> defer.Deferred[tuple[ChangeRecord | None, ChangeRecord | None]]:
        return self._read(changelog.boundsSQL)

    def trimChanges(self, before: datetime | None, keep: int | None) -> defer.Deferred[int]:
        def trim() -> int:
            with self._writeTurn, self._writeConnection() as conn, conn.begin():
                return changelog.trimSQL(conn, before, keep)

        return self._call(trim)

    # Writes

    def batch(self) -> _Batch:
        """
        Begin a batch of writes in one transaction (L{IWriteBatches}), run
        in a thread of its own.

        @raise RuntimeError: if the backend is not open, or a batch is under way.
        """
        if self._pool is None:
            raise RuntimeError("the sql backend is not open")
        if self._batch is not None:
            raise RuntimeError("a write batch is under way")
        if self._batchPool is None:
            self._batchPool = ThreadPool(minthreads=1, maxthreads=1, name="ldapd-sql-batch")
            self._batchPool.start()
        self._batch = _Batch(self, self._batchPool)
        return self._batch

    def _write(self, work: Callable[[_Transaction], Any]) -> defer.Deferred[Any]:
        """
        Run C{work} in a write transaction, in a pool thread.

        On PostgreSQL every write is a transaction of its own: the server runs
        them side by side (and syncs concurrent commits together itself). On
        SQLite, which lets one writer in at a time and syncs the disk at every
        commit, writes that arrive while a group is being committed wait in a
        queue and are run together as the next group (L{_commitGroups}): one
        commit, one sync, for up to L{_GROUP} writes.

        @return: a Deferred firing with what C{work} returned, or failing with
            what it raised, once its transaction is committed or rolled back
            (at once, before the backend is open, as L{_call} does).
        """
        if self._postgres or self._pool is None:
            return self._call(self._transact, work)
        d: defer.Deferred[Any] = defer.Deferred()
        with self._queueLock:
            self._queue.append((work, d))
            start, self._committing = not self._committing, True
        if start:
            self._call(self._commitGroups)
        return d

    def _commitGroups(self) -> None:
        """
        Commit the queued writes, group after group, until none is left (in
        a pool thread). A group of one is an ordinary transaction
        (L{_transact}); a larger one is L{_transactGroup}. Each write's
        outcome is handed to the reactor only after its group's commit
        returned, so nothing is acknowledged before it is on disk.
        """
        while True:
            with self._queueLock:
                if not self._queue:
                    self._committing = False
                    return
                group = [self._queue.popleft() for _ in range(min(_GROUP, len(self._queue)))]
            works = [work for work, _ in group]
            outcomes: list[Any]
            try:
                if len(works) == 1:
                    outcomes = [self._transact(works[0])]
                else:
                    outcomes = self._transactGroup(works)
            except Exception:
                # The group failed as a whole: each of its writes fails with it.
                outcomes = [Failure() for _ in works]
            self._reactor.callFromThread(_deliver, [d for _, d in group], outcomes)

    def _transactGroup(self, works: list[Callable[[_Transaction], Any]]) -> list[Any]:
        """
        Run several writes in one SQLite transaction, in their order, each
        in a savepoint of its own: one that raises rolls back its own work
        only (later writes see the database as if it had never run, as
        after a serial rollback), and the others are committed together.

        @return: each write's result, or the C{Failure} of what it raised.
        @raise Exception: what fails the whole group (C{BEGIN}, C{COMMIT}, or
            an error after which SQLite ended the transaction itself): none
            of its writes is committed.
        """
        assert self.engine is not None
        driver = self.engine.dialect.loaded_dbapi
        outcomes: list[Any] = []
        with self._writeTurn, self._writeConnection() as conn, conn.begin():
            raw = conn.connection.dbapi_connection
            for work in works:
                try:
                    with conn.begin_nested():
                        outcomes.append(work(_Transaction(self, conn)))
                except Exception as e:
                    if not raw.in_transaction:  # type: ignore[union-attr]
                        raise
                    error = _driverError(e)
                    outcomes.append(Failure(_integrityError(error))
                                    if isinstance(error, driver.IntegrityError) else Failure())
        return outcomes

    def _transact(self, work: Callable[[_Transaction], Any]) -> Any:
        """
        Run C{work} in one database transaction (in a pool thread); commit
        if it returns, roll back if anything raises. On PostgreSQL a write
        that loses a deadlock or serialisation conflict to another process
        is run again from the start, hooks included.

        On SQLite, the writes of this process take turns on a lock before
        they ask for the database's: SQLite lets one writer in at a time,
        and one that finds the database busy polls for it with sleeps of up
        to 100 ms, where a waiter on the lock goes on the moment the writer
        before it commits.
        """
        assert self.engine is not None
        driver = self.engine.dialect.loaded_dbapi
        for attempt in range(_ATTEMPTS):
            try:
                with self._writeTurn, self._writeConnection() as conn, conn.begin():
                    return work(_Transaction(self, conn))
            except (DBAPIError, driver.Error) as e:
                error = _driverError(e)
                if isinstance(error, driver.IntegrityError):
                    raise _integrityError(error) from None
                if attempt + 1 < _ATTEMPTS and _retryable(error):
                    continue
                raise
        raise AssertionError("unreachable")

    def _insert(self, db: Any, entry: Entry, parent: _Row | None = None) -> int:
        """
        Insert an entry whose parent exists (locked against a concurrent
        delete or move, on PostgreSQL) and index it.

        @param db: the write's driver cursor.
        @param parent: the parent's row, when the caller has locked it.
        @return: its id.
        """
        parentId = None
        parentPath = "/"
        if entry.ndn != self.suffix:
            if parent is None:
                parent = self._parent(db, entry.ndn)
            parentId, parentPath = parent.id, parent.path
        dn, attrs = str(entry.dn), encodeAttributes(entry)
        id = self._execute(
            db, f"INSERT INTO {entries.name} (parent_id, ndn, dn, path, attrs) "
                "VALUES (?, ?, ?, '', ?) RETURNING id",
            (parentId, str(entry.ndn), dn, attrs),
        ).fetchone()[0]
        self._cache.put(id, dn, attrs, entry)
        self._execute(db, f"UPDATE {entries.name} SET path = ? WHERE id = ?",
                      (f"{parentPath}{encodeId(id)}/", id))
        rows = self.indexRows(entry)
        self._addIndexRows(db, id, rows)
        if any(kind == "s" for _, kind, _ in rows):
            self._writeGrams(db, id)
        return id  # type: ignore[no-any-return]

    def _parent(self, db: Any, ndn: DN) -> _Row:
        """
        @return: the row of the parent of C{ndn}, locked against a
            concurrent delete or move (on PostgreSQL).
        @raise NoSuchObject: if there is none.
        """
        parent = self._row(db, ndn.parent(), lock="share")
        if parent is None:
            raise self._noSuchObject(db, ndn)
        return parent

    def _addIndexRows(self, db: Any, id: int, rows: Iterable[tuple[str, str, str]]) -> None:
        params = [(id, a, k, key) for a, k, key in rows]
        if params:
            db.executemany(self._sql(
                f"INSERT INTO {values.name} (entry_id, attr, kind, key) VALUES (?, ?, ?, ?)"),
                params)

    def _writeGrams(self, db: Any, id: int) -> None:
        """
        Write the L{GRAMS} row of an entry (which has none) from its
        substring keys.
        """
        if self._grams:
            self._execute(db, GRAMS_OF_ENTRIES, (id, id))

    def _dropGrams(self, db: Any, id: int) -> None:
        """
        Remove the L{GRAMS} row of an entry, if it has one.
        """
        if self._grams:
            self._execute(db, f"DELETE FROM {GRAMS} WHERE rowid = ?", (id,))

    def _removeIndexRows(self, db: Any, id: int, rows: Iterable[tuple[str, str, str]]) -> None:
        params = [(id, a, k, key) for a, k, key in rows]
        if params:
            db.executemany(self._sql(
                f"DELETE FROM {values.name} WHERE entry_id = ? AND attr = ? AND kind = ? "
                "AND key = ?"), params)

    def _replace(self, db: Any, row: _Row, entry: Entry, old: Entry | None = None) -> None:
        """
        Store new attributes (and DN spelling) for an existing row; the
        index changes by the difference of the old and new keys.

        @param old: the entry the row holds, when the caller has it.
        """
        if old is None:
            old = self._entry(row)
        # Only the types whose values changed are indexed again (all their
        # descriptions, whose rows may coincide).
        types = old.changedTypes(entry)
        oldKeys = self.indexRows(a for a in old if a.type in types)
        newKeys = self.indexRows(a for a in entry if a.type in types)
        dn, attrs = str(entry.dn), encodeAttributes(entry)
        self._execute(db, f"UPDATE {entries.name} SET dn = ?, attrs = ? WHERE id = ?",
                      (dn, attrs, row.id))
        self._cache.put(row.id, dn, attrs, entry)
        self._removeIndexRows(db, row.id, oldKeys - newKeys)
        self._addIndexRows(db, row.id, newKeys - oldKeys)
        if any(kind == "s" for _, kind, _ in oldKeys ^ newKeys):
            self._dropGrams(db, row.id)
            self._writeGrams(db, row.id)

    def _lockedRow(self, db: Any, ndn: DN) -> _Row:
        """
        @param db: the write's driver cursor.
        @return: the row of C{ndn}, locked for the write (on PostgreSQL).
        @raise NoSuchObject: with the matched DN, when there is none.
        """
        row = self._row(db, ndn, lock="update")
        if row is None:
            raise self._noSuchObject(db, ndn)
        return row

    def _remove(self, db: Any, ndn: DN, row: _Row | None = None) -> Entry:
        """
        Delete a leaf entry and its index rows.

        @param row: its row, when the caller has locked it.
        @return: the entry deleted.
        """
        if row is None:
            row = self._lockedRow(db, ndn)
        if self._execute(db, f"SELECT 1 FROM {entries.name} WHERE parent_id = ? LIMIT 1",
                         (row.id,)).fetchone() is not None:
            raise ldaperrors.LDAPNotAllowedOnNonLeaf("subordinate objects must be deleted first")
        self._execute(db, f"DELETE FROM {values.name} WHERE entry_id = ?", (row.id,))
        self._dropGrams(db, row.id)
        self._execute(db, f"DELETE FROM {entries.name} WHERE id = ?", (row.id,))
        return self._entry(row)

    def add(self, op: Operation, entry: Entry, hooks: ITransactionHooks) -> defer.Deferred[None]:
        return self._write(self._adding(op, entry, hooks))

    def _adding(self, op: Operation, entry: Entry,
                hooks: ITransactionHooks) -> Callable[[_Transaction], None]:
        """
        @return: the work of an add, for L{_write} or a batch.
        """

        def work(txn: _Transaction) -> None:
            db = txn.db
            if self._row(db, entry.ndn) is not None:
                raise ldaperrors.LDAPEntryAlreadyExists("already exists")
            parent = self._parent(db, entry.ndn) if entry.ndn != self.suffix else None
            hooks.check("add", op, txn, entry)
            self._insert(db, entry, parent)
            hooks.txn("add", op, txn, entry)

        return work

    def delete(self, op: Operation, ndn: DN, hooks: ITransactionHooks) -> defer.Deferred[None]:
        return self._write(self._deleting(op, ndn, hooks))

    def _deleting(self, op: Operation, ndn: DN,
                  hooks: ITransactionHooks) -> Callable[[_Transaction], None]:
        """
        @return: the work of a delete, for L{_write} or a batch.
        """

        def work(txn: _Transaction) -> None:
            db = txn.db
            row = self._lockedRow(db, ndn)
            entry = self._entry(row)
            hooks.check("delete", op, txn, entry)
            self._remove(db, ndn, row)
            hooks.txn("delete", op, txn, entry)

        return work

    def modify(
        self,
        op: Operation,
        ndn: DN,
        modifications: list[Modification],
        hooks: ITransactionHooks,
    ) -> defer.Deferred[Entry]:
        return self._write(self._modifying(op, ndn, modifications, hooks))

    def _modifying(self, op: Operation, ndn: DN, modifications: list[Modification],
                   hooks: ITransactionHooks) -> Callable[[_Transaction], Entry]:
        """
        @return: the work of a modify, for L{_write} or a batch.
        """

        def work(txn: _Transaction) -> Entry:
            db = txn.db
            row = self._lockedRow(db, ndn)
            old = self._entry(row)
            new = old.modified(modifications)
            hooks.check("modify", op, txn, old, new)
            self._replace(db, row, new, old)
            hooks.txn("modify", op, txn, old, new)
            return new

        return work

    def rename(
        self,
        op: Operation,
        ndn: DN,
        newDN: DN,
        deleteOldRDN: bool,
        hooks: ITransactionHooks,
        modifications: Sequence[Modification] = (),
    ) -> defer.Deferred[Entry]:
        return self._write(self._renaming(op, ndn, newDN, deleteOldRDN, hooks, modifications))

    def _renaming(self, op: Operation, ndn: DN, newDN: DN, deleteOldRDN: bool,
                  hooks: ITransactionHooks,
                  modifications: Sequence[Modification]) -> Callable[[_Transaction], Entry]:
        """
        @return: the work of a rename, for L{_write} or a batch.
        """

        def work(txn: _Transaction) -> Entry:
            db = txn.db
            row = self._lockedRow(db, ndn)
            if ndn == self.suffix:
                raise ldaperrors.LDAPUnwillingToPerform("cannot rename the suffix entry")
            old = self._entry(row)
            new = old.renamed(newDN, deleteOldRDN)
            if modifications:
                new = new.modified(modifications)
            newParentDN = new.ndn.parent()
            if new.ndn != ndn and self._row(db, new.ndn) is not None:
                raise ldaperrors.LDAPEntryAlreadyExists("entry already exists")
            newParent = self._row(db, newParentDN, lock="share")
            if newParent is None:
                raise self._noSuchObject(db, newParentDN.child(new.ndn.rdn))
            if newParentDN.isWithin(ndn):
                raise ldaperrors.LDAPUnwillingToPerform("cannot move an entry below itself")
            hooks.check("rename", op, txn, old, new)
            self._move(db, row, old, new, newParent)
            hooks.txn("rename", op, txn, old, new)
            return new

        return work

    def _move(self, db: Any, row: _Row, old: Entry, new: Entry, newParent: _Row) -> None:
        """
        Give an entry its new name, attributes and parent, and its subtree
        their new names and paths.
        """
        path = f"{newParent.path}{encodeId(row.id)}/"
        inside = (f"FROM {entries.name} WHERE path > ? AND path < ?",
                  (row.path, pathUpperBound(row.path)))
        if self._postgres:
            # Lock the subtree first: a concurrent add below it waits, and
            # then reads the new path of its parent.
            self._execute(db, f"SELECT id {inside[0]} FOR UPDATE", inside[1])
        descendants = self._execute(db, f"SELECT id, dn, ndn, path {inside[0]}",
                                    inside[1]).fetchall()
        self._execute(db, f"UPDATE {entries.name} SET parent_id = ?, ndn = ?, path = ? WHERE id = ?",
                      (newParent.id, str(new.ndn), path, row.id))
        self._replace(db, _Row(row.id, path, row.dn, str(new.ndn), row.attrs), new, old)
        if descendants:
            oldDN, oldNDN = DN.parse(row.dn), DN.parse(row.ndn)
            db.executemany(
                self._sql(f"UPDATE {entries.name} SET dn = ?, ndn = ?, path = ? WHERE id = ?"),
                [
                    (str(DN.parse(dn).moved(oldDN, new.dn)), str(DN.parse(ndn).moved(oldNDN, new.ndn)),
                     path + dpath[len(row.path):], id)
                    for id, dn, ndn, dpath in descendants
                ],
            )

    # Bulk loading

    def importEntries(
        self, entries: Iterable[Entry], progress: Callable[[int], None] | None = None,
        chunk: int = 5000,
    ) -> int:
        """
        Load entries fast, bypassing the plugin chain (as slapadd bypasses
        overlays): in transactions of C{chunk} entries, each one
        C{executemany} (C{COPY} on PostgreSQL) for the rows and one for
        their index keys. Call it from a thread of its own (it blocks), with
        the backend open.

        Invariants are kept as on the normal path: every parent must exist
        (in the input, or in the database), names are unique (the
        database's constraint; a duplicate fails its chunk, and names are
        checked in advance to name it), and the index is written in the same
        transaction as the rows. An entry whose parent is not loaded yet is
        held until it is (L{OrphanEntries}), as slapadd takes slapcat's
        output, whose order is that of entry ids.

        Into an empty database the load is slapadd -q's (L{_beginLoad}):
        the secondary indexes are built once at the end, SQLite does not
        sync the disk nor check foreign keys row by row (it checks them all
        at the end), and the database is marked as incomplete until the
        indexes are built, so that a load that is killed leaves a database
        that is refused when opened, never a silently half-loaded one.

        @param entries: the entries, best parents before children.
        @param progress: called with the count after every chunk.
        @param chunk: entries per transaction.
        @return: the number of entries loaded.
        @raise ldaperrors.LDAPException: noSuchObject for an entry whose
            parent is in neither the input nor the database (once the input
            is read), entryAlreadyExists for a duplicate; the chunks before
            it are committed (and indexed).
        """
        assert self.engine is not None
        with self._writeConnection() as conn:
            loading = self._beginLoad(conn)
            try:
                return self._importAll(conn, entries, progress, chunk, loading)
            finally:
                if loading:
                    self._endLoad(conn)

    def _importAll(self, conn: Connection, entries: Iterable[Entry],
                   progress: Callable[[int], None] | None, chunk: int, loading: bool) -> int:
        """
        L{importEntries}' chunks, on one connection.

        @param loading: whether the database was empty (L{_beginLoad}).
        """
        parents: OrderedDict[str, tuple[int, str]] = OrderedDict()
        orphans = OrphanEntries()
        total = 0
        # Each entry's index rows are made as it comes, right after it was
        # read and checked, while the schema's caches (DN keys, the last
        # checked values) hold its values; kept as a tuple (a set of forty
        # rows takes five times its memory) until its chunk is written.
        pending: list[_Loading] = []
        for entry in entries:
            pending.append((entry, tuple(self.indexRows(entry))))
            if len(pending) >= chunk:
                loaded, pending = self._importChunk(conn, pending, parents, orphans, loading)
                total += loaded
                if progress is not None:
                    progress(total)
        while pending:
            loaded, pending = self._importChunk(conn, pending, parents, orphans, loading)
            total += loaded
            if progress is not None:
                progress(total)
        orphans.check()
        return total

    def _beginLoad(self, conn: Connection) -> bool:
        """
        Begin a bulk load: into an empty database, mark it as under way and
        drop its secondary indexes and foreign keys
        (L{sqlschema.beginBulkLoad}) and the trigram index (PostgreSQL); on
        SQLite, stop syncing the disk and checking foreign keys.

        @param conn: the load's connection, not in a transaction.
        @return: whether the database was empty (and the load begun so).
        """
        with conn.begin():
            if self._postgres:
                conn.exec_driver_sql(f"LOCK TABLE {entries.name} IN EXCLUSIVE MODE")
            if conn.exec_driver_sql(f"SELECT 1 FROM {entries.name} LIMIT 1").first() is not None:
                return False
            sqlschema.beginBulkLoad(conn)
            if self._postgres:
                conn.exec_driver_sql("DROP INDEX IF EXISTS ldapd_values_trgm")
        if not self._postgres:
            self._pragmas(conn, _LOAD_PRAGMAS)
        return True

    def _endLoad(self, conn: Connection) -> None:
        """
        End a load begun by L{_beginLoad}, whether it succeeded or not:
        the trigram rows, indexes and foreign keys of what was loaded
        (L{sqlschema.endBulkLoad}) and the trigram index; then put the
        connection's settings back.
        """
        try:
            with conn.begin():
                if self._grams:
                    conn.exec_driver_sql(GRAMS_OF_ENTRIES, (0, 2 ** 63 - 1))
                sqlschema.endBulkLoad(conn)
        finally:
            if not self._postgres:
                self._pragmas(conn, _PRAGMAS)
        if self._trigrams:
            self._setUpTrigrams()

    @staticmethod
    def _pragmas(conn: Connection, pragmas: Iterable[str]) -> None:
        """
        Set SQLite pragmas on a connection outside a transaction (where
        C{foreign_keys} takes effect).
        """
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for pragma in pragmas:
                cursor.execute(f"PRAGMA {pragma}")
        finally:
            cursor.close()

    def _importChunk(self, conn: Connection,
                     chunk: list[_Loading], parents: OrderedDict[str, tuple[int, str]],
                     orphans: OrphanEntries, loading: bool) -> tuple[int, list[_Loading]]:
        """
        Load one chunk in one transaction; hold its entries whose parent is
        not loaded yet.

        @param chunk: the entries, each with its index rows (L{indexRows})
            or C{None}, for an entry that was held.
        @param loading: whether the trigram rows wait for the end of the
            load (L{_endLoad}).
        @return: how many entries were loaded, and the entries held before
            that can be loaded now.
        """
        released: list[_Loading] = []
        with conn.begin():
            if self._postgres:
                conn.exec_driver_sql(f"LOCK TABLE {entries.name} IN EXCLUSIVE MODE")
            names = [str(e.ndn) for e, _ in chunk]
            if len(set(names)) != len(names):
                seen: set[str] = set()
                for e, _ in chunk:
                    if str(e.ndn) in seen:
                        raise ldaperrors.LDAPEntryAlreadyExists(f"{e.dn}: appears twice")
                    seen.add(str(e.ndn))
            db = self._cursor(conn)
            for start in range(0, len(names), _IN_LIST):
                some = names[start:start + _IN_LIST]
                existing = self._execute(
                    db, f"SELECT dn FROM {entries.name} WHERE ndn IN ({_marks(len(some))}) LIMIT 1",
                    some).fetchone()
                if existing is not None:
                    raise ldaperrors.LDAPEntryAlreadyExists(f"{existing[0]}: already exists")
            first = self._allocateIds(conn, len(chunk))
            rows = []
            keys: list[tuple[int, str, str, str]] = []
            for i, (entry, indexRows) in enumerate(chunk):
                id = first + i
                ndn = str(entry.ndn)
                if entry.ndn == self.suffix:
                    parentId, parentPath = None, "/"
                else:
                    parentNDN = str(entry.ndn.parent())
                    found = parents.get(parentNDN)
                    if found is None:
                        r = self._row(self._cursor(conn), entry.ndn.parent())
                        if r is None:
                            orphans.hold(entry)
                            continue
                        found = (r.id, r.path)
                    parents[parentNDN] = found
                    parents.move_to_end(parentNDN)
                    parentId, parentPath = found
                path = f"{parentPath}{encodeId(id)}/"
                parents[ndn] = (id, path)
                if len(parents) > 10000:
                    parents.popitem(last=False)
                rows.append((id, parentId, ndn, str(entry.dn), path, encodeAttributes(entry)))
                if indexRows is None:
                    indexRows = self.indexRows(entry)
                keys.extend([(id, a, k, key) for a, k, key in indexRows])
                released.extend([(e, None) for e in orphans.released(entry.ndn)])
            self._bulkInsert(conn, entries.name, ("id", "parent_id", "ndn", "dn", "path", "attrs"),
                             rows)
            self._bulkInsert(conn, values.name, ("entry_id", "attr", "kind", "key"), keys)
            if self._grams and not loading:
                conn.exec_driver_sql(GRAMS_OF_ENTRIES, (first, first + len(chunk) - 1))
        return len(rows), released

    def _bulkInsert(self, conn: Connection, table: str, columns: Sequence[str],
                    rows: list[tuple[Any, ...]]) -> None:
        """
        Insert many rows at the driver's speed: C{COPY} on PostgreSQL, one
        C{executemany} on SQLite (SQLAlchemy's per-row parameter handling
        would cost more than the database's work).
        """
        if not rows:
            return
        names = ", ".join(columns)
        if self._postgres:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

    def _allocateIds(self, conn: Connection, n: int) -> int:
        """
        Reserve C{n} consecutive ids (the caller holds the write lock).

        @return: the first.
        """
        if self._postgres:
            sequence = conn.exec_driver_sql(
                f"SELECT pg_get_serial_sequence('{entries.name}', 'id')").scalar()
            last: int = conn.exec_driver_sql(
                f"SELECT setval('{sequence}', GREATEST(nextval('{sequence}') + {n - 1}, "
                f"(SELECT COALESCE(MAX(id), 0) + {n} FROM {entries.name})))").scalar_one()
            return last - n + 1
        top = conn.execute(select(func.max(entries.c.id))).scalar() or 0
        sequence = conn.exec_driver_sql(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (entries.name,)).scalar() or 0
        return max(top, sequence) + 1  # type: ignore[no-any-return]


#: An entry on its way into the database, with its index rows (or C{None}:
#: not made yet).
_Loading = tuple[Entry, Collection[tuple[str, str, str]] | None]


def _isClassAssertion(f: Filter) -> bool:
    """
    @return: whether C{f} is an equality assertion on C{objectClass}.
    """
    return isinstance(f, Equality) and f.type.oid == OBJECT_CLASS


class _Query(NamedTuple):
    """
    A query in SQL text (with C{?} marks) and its parameters.
    """

    sql: str
    params: tuple[Any, ...]

    @classmethod
    def combine(cls, operator: str, parts: Sequence[_Query]) -> _Query:
        """
        @param operator: C{INTERSECT} or C{UNION}.
        @param parts: queries of one column, C{entry_id}.
        @return: one C{SELECT} of their intersection or union (a compound
            select wrapped, since SQLite does not nest compound selects).
        """
        if len(parts) == 1:
            return parts[0]
        compound = f" {operator} ".join(p.sql for p in parts)
        return cls(f"SELECT entry_id FROM ({compound}) AS c",
                   tuple(v for p in parts for v in p.params))


#: The start of every candidate query of a plan.
_SELECT_CANDIDATES = f"SELECT entry_id FROM {values.name} WHERE"

#: The entries C{e} within the scope of the base entry C{b}.
_SCOPES = {
    Scope.BASE: "e.id = b.id",
    Scope.ONE: "e.parent_id = b.id",
    # pathUpperBound, in SQL.
    Scope.SUB: "e.path >= b.path AND e.path < (substr(b.path, 1, length(b.path) - 1) || '0')",
}


class _Cursor:
    """
    Where a search is: its scope, its candidates, and the last path read;
    or, for a large candidate set, the ids still to read (as slapd keeps ID
    lists: numbers, never entries).
    """

    def __init__(self, baseDN: DN, scope: Scope, candidates: _Query | None) -> None:
        self.baseDN = baseDN
        self.scopeKind = scope
        self.candidates = candidates
        self.baseId: int | None = None
        self.last: str | None = None
        self.ids: list[int] | None = None
        self.position = 0
        self.done = False

    def query(self, columns: str, left: bool) -> tuple[str, tuple[Any, ...]]:
        """
        The entries C{e} of the scope of base C{b} after the last one read
        that are candidates, without its C{ORDER BY}.

        @param columns: what to select.
        @param left: whether the base is selected when nothing is in scope
            (a C{LEFT JOIN}, to tell an empty result from a missing base).
        """
        on = _SCOPES[self.scopeKind]
        params: list[Any] = []
        if self.last is not None:
            on += " AND e.path > ?"
            params.append(self.last)
        if self.candidates is not None:
            on += f" AND e.id IN ({self.candidates.sql})"
            params.extend(self.candidates.params)
        if self.baseId is None:
            where = "b.ndn = ?"
            params.append(str(self.baseDN))
        else:
            where = "b.id = ?"
            params.append(self.baseId)
        join = "LEFT JOIN" if left else "JOIN"
        sql = f"SELECT {columns} FROM {entries.name} b {join} {entries.name} e ON {on} WHERE {where}"
        return sql, tuple(params)


@implementer(IWriteBatch)
class _Batch(BatchWrites):
    """
    A batch of writes on an L{SQLBackend} (L{IWriteBatch}): one write
    connection in one transaction, begun at the first call, each write in a
    savepoint of its own. Its calls run one after the other in a thread of
    their own, not the pool's: the process's other writers wait for the
    batch's write turn in pool threads, and must not keep it from going on.
    Calls made while the thread is busy wait in a queue, which the thread
    then runs to its end and hands to the reactor at once (L{_drain}): one
    wake-up of each for the many writes of a pipeline, not one per write.
    """

    def __init__(self, backend: SQLBackend, pool: ThreadPool) -> None:
        super().__init__(backend, self._write)
        self._pool = pool
        self._conn: Connection | None = None
        self._root: Any = None
        self._txn: _Transaction | None = None
        self._broken = False
        self._ended = False
        # The writes that failed in the batch's thread, and those of their
        # failures that reached the caller (in the reactor).
        self._failed = 0
        self._reported = 0
        # The calls waiting for the batch's thread, and whether it is
        # running them (both under the lock).
        self._lock = threading.Lock()
        self._calls: list[tuple[Callable[[], Any], defer.Deferred[Any]]] = []
        self._draining = False

    def _run(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        if self._ended:
            return defer.fail(RuntimeError("the write batch is over"))
        d: defer.Deferred[Any] = defer.Deferred()
        with self._lock:
            self._calls.append((lambda: f(*args), d))
            start, self._draining = not self._draining, True
        if start:
            self._pool.callInThread(self._drain)
        return d

    def _drain(self) -> None:
        """
        Run the waiting calls, in their order, until none is left (in the
        batch's thread); the outcomes of each run of them go to the reactor
        together.
        """
        while True:
            with self._lock:
                calls, self._calls = self._calls, []
                if not calls:
                    self._draining = False
                    return
            outcomes: list[Any] = []
            for call, _ in calls:
                try:
                    outcomes.append(call())
                except BaseException:
                    outcomes.append(Failure())
            self._backend._reactor.callFromThread(_deliver, [d for _, d in calls], outcomes)

    def _begin(self) -> _Transaction:
        """
        @return: the batch's transaction, begun (with the write turn taken)
            at the first call (in the batch's thread).
        @raise RuntimeError: if the database ended it.
        """
        if self._broken:
            raise RuntimeError("the database ended the write batch's transaction")
        if self._txn is None:
            backend = self._backend
            backend._writeTurn.__enter__()
            try:
                conn = backend._writeConnection()
                try:
                    self._root = conn.begin()
                except BaseException:
                    conn.close()
                    raise
            except BaseException:
                backend._writeTurn.__exit__(None, None, None)
                raise
            self._conn = conn
            self._txn = _Transaction(backend, conn)
        return self._txn

    def _close(self) -> None:
        """
        Close the connection (rolling back what is not committed) and give
        the write turn back.
        """
        conn, self._conn, self._txn = self._conn, None, None
        if conn is None:
            return
        try:
            conn.close()
        finally:
            self._backend._writeTurn.__exit__(None, None, None)

    def _read(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        return self._run(lambda: f(*args, reader=self._begin().db))

    def get(self, op: Operation, ndn: DN) -> defer.Deferred[Entry]:
        return self._read(self._backend._get, ndn)

    def search(self, op: Operation, emit: Callable[[Entry], Any]) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._backend._search(op, emit, self._read))

    def findEqual(self, op: Operation, at: AttributeType,
                  keys: Collection[Any]) -> defer.Deferred[list[Entry]]:
        return self._read(self._backend._findEqual, at, keys)

    def _ebReported(self, failure: Failure) -> Failure:
        # Writes fail in their order: this is the earliest failure not yet
        # reported (unless the write was refused before it reached the
        # thread, the batch being over).
        if not failure.check(WriteSkipped) and self._reported < self._failed:
            self._reported += 1
        return failure

    def _write(self, work: Callable[[_Transaction], Any]) -> defer.Deferred[Any]:
        # How many failures had reached the caller when it made this call:
        # if the batch's thread has met more by the time it comes to it,
        # the caller made it assuming a write had succeeded that had not.
        seen = self._reported

        def run() -> Any:
            if self._failed > seen:
                raise WriteSkipped()
            try:
                return write()
            except BaseException:
                self._failed += 1
                raise

        def write() -> Any:
            txn = self._begin()
            assert self._conn is not None
            backend = self._backend
            assert backend.engine is not None
            driver = backend.engine.dialect.loaded_dbapi
            raw = self._conn.connection.dbapi_connection
            # The savepoint is the driver's statement: SQLAlchemy's
            # begin_nested() costs several times the database's work.
            backend._execute(txn.db, "SAVEPOINT ldapd_batch_write")
            try:
                result = work(txn)
            except BaseException as e:
                if not backend._postgres and not raw.in_transaction:  # type: ignore[union-attr]
                    # SQLite ended the transaction itself.
                    self._broken = True
                    raise
                backend._execute(txn.db, "ROLLBACK TO SAVEPOINT ldapd_batch_write")
                backend._execute(txn.db, "RELEASE SAVEPOINT ldapd_batch_write")
                if not isinstance(e, (DBAPIError, driver.Error)):
                    raise
                error = _driverError(e)
                if isinstance(error, driver.IntegrityError):
                    raise _integrityError(error) from None
                raise
            backend._execute(txn.db, "RELEASE SAVEPOINT ldapd_batch_write")
            return result

        return self._run(run).addErrback(self._ebReported)

    def _end(self, commit: bool) -> defer.Deferred[None]:
        def run() -> None:
            try:
                if commit and self._root is not None and self._conn is not None:
                    if self._broken:
                        raise RuntimeError("the database ended the write batch's transaction")
                    self._root.commit()
            finally:
                self._close()

        d = self._run(run)
        self._ended = True
        if self._backend._batch is self:
            self._backend._batch = None
        return d

    def commit(self) -> defer.Deferred[None]:
        return self._end(True)

    def rollback(self) -> defer.Deferred[None]:
        return self._end(False)


@implementer(IChangelogTransaction)
class _Transaction:
    """
    A write in progress on an L{SQLBackend}: its database connection, in a
    transaction. Used in the backend's thread only.
    """

    def __init__(self, backend: SQLBackend, conn: Connection) -> None:
        """
        @param backend: the backend.
        @param conn: the write's connection, in its transaction; C{db} is a
            driver cursor on it, for the backend's own statements.
        """
        self._backend = backend
        self.conn = conn
        self.db = backend._cursor(conn)

    def get(self, ndn: DN) -> Entry | None:
        return self._backend._lookup(self.db, ndn)

    def put(self, entry: Entry) -> None:
        backend = self._backend
        row = backend._row(self.db, entry.ndn, lock="update")
        if row is None:
            backend._insert(self.db, entry)
        else:
            backend._replace(self.db, row, entry)

    def remove(self, ndn: DN) -> None:
        self._backend._remove(self.db, ndn)

    def appendChange(self, record: ChangeRecord) -> int:
        return changelog.appendSQL(self.conn, record)


def _deliver(deferreds: list[defer.Deferred[Any]], outcomes: list[Any]) -> None:
    """
    Fire the Deferreds of a group of calls a thread ran (in the reactor): a
    committed group of writes, or a run of a write batch's calls.

    @param outcomes: for each, its result or the C{Failure} it failed with.
    """
    for d, outcome in zip(deferreds, outcomes, strict=True):
        if isinstance(outcome, Failure):
            d.errback(outcome)
        else:
            d.callback(outcome)


def _driverError(e: Exception) -> Exception:
    """
    @return: the driver's exception SQLAlchemy wrapped in C{e}, or C{e}.
    """
    return e.orig if isinstance(e, DBAPIError) else e  # type: ignore[return-value]


def _sqlstate(e: Exception) -> str | None:
    return getattr(e, "sqlstate", None)


def _retryable(e: Exception) -> bool:
    """
    @param e: a driver's exception.
    """
    return _sqlstate(e) in ("40001", "40P01")


def _integrityError(e: Exception) -> ldaperrors.LDAPException:
    """
    The LDAP error for a constraint the database enforced: a name taken, or
    a parent deleted, by a concurrent write of another process.

    @param e: the driver's exception.
    """
    state = _sqlstate(e)
    message = str(e)
    if state == "23505" or "UNIQUE" in message:
        return ldaperrors.LDAPEntryAlreadyExists("entry already exists")
    return ldaperrors.LDAPNotAllowedOnNonLeaf("the entry has or had subordinates")


class SQLBackendFactory:
    """
    Builds an L{SQLBackend} from a C{[[database]]} table with C{backend = "sql"}.
    """

    name = "sql"
    description = ("A DIT in SQLite (embedded) or PostgreSQL (shared by several servers), "
                   "through SQLAlchemy.")

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> SQLBackend:
        """
        @param table: the backend's keys: C{url} (required: C{sqlite:///file}
            with a path relative to the configuration file, or
            C{postgresql+psycopg://user@host/db}), C{indexes} (a list of
            C{"<types> <kinds>"}, see L{IndexConfig}), C{pool_size}
            (connections and threads, default 4) and C{entry_cache} (the
            most entries kept decoded, default 10,000; 0 for none).
        @param context: the database's context.
        @raise ldapd.registry.ConfigError: naming the key that is wrong.
        """
        config = ConfigTable(table, context, {"url", "indexes", "pool_size", "entry_cache"})
        text = config.string("url")
        if not text:
            raise context.error("url", "is required (e.g. \"sqlite:///ldapd.db\")")
        try:
            url = make_url(text)
        except ArgumentError as e:
            raise context.error("url", f"not a database URL: {e}") from None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            url = url.set(database=str(context.resolvePath(url.database)))
        indexes = config.strings("indexes", list(DEFAULT_INDEXES), "a list of strings like \"uid,cn eq,sub\"")
        try:
            IndexConfig.parse(indexes, context.schema)
        except ValueError as e:
            raise context.error("indexes", str(e)) from None
        poolSize = config.integer("pool_size", 4, minimum=1, expected="a positive integer")
        entryCache = config.integer("entry_cache", DEFAULT_ENTRY_CACHE, minimum=0,
                                    expected="a number of entries (0 for none)")
        assert context.suffix is not None
        try:
            return SQLBackend(context.suffix, context.schema, url, context.reactor, indexes,
                              poolSize, entryCache=entryCache)
        except ValueError as e:
            raise context.error("url", str(e)) from None
        except ImportError as e:
            raise context.error("url", f"the database driver is not installed: {e}") from None
