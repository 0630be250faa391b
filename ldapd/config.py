"""
The TOML configuration file: reading, validating, and building the server it
describes. Every problem is reported as one L{ConfigError} line naming the
file, the key and what is wrong with it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from twisted.logger import Logger
from twisted.python.systemd import ListenFDs

from ldapd import _files, passwords
from ldapd._framing import (
    DEFAULT_MAX_ANONYMOUS_PDU_SIZE,
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_PDU_SIZE,
)
from ldapd.authz import POLICIES
from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory
from ldapd.extensions import RegistrationError
from ldapd.limits import (
    DEFAULT_MAX_FILTER_COMPONENTS,
    DEFAULT_MAX_SORTED_ENTRIES,
    ConnectionLimits,
    Limits,
    identityLimitFromConfig,
)
from ldapd.plugins.chain import UnknownHook
from ldapd.registry import (
    BACKENDS,
    PLUGINS,
    ConfigContext,
    ConfigError,
    ConfigTable,
    lookup,
)
from ldapd.sasl import Authentication, mappingsFromConfig
from ldapd.schema import Schema, SchemaError
from ldapd.schema.schema import STANDARD_FILES, STANDARD_SCHEMAS
from ldapd.syncrepl.consumer import replicaFromConfig
from ldapd.throttle import BindThrottleSettings
from ldapd.tls import ServerTLS, serverEndpoint, tlsFromConfig

__all__ = ["ConfigError", "ServerConfig", "buildConfig", "loadConfig", "restartOnlyChange"]

_log = Logger()

_SERVER_KEYS = {
    "listen",
    "workers",
    "cpu_affinity",
    "size_limit",
    "time_limit",
    "max_pdu_size",
    "max_anonymous_pdu_size",
    "max_buffered_bytes",
    "allow_anonymous",
    "allow_unauthenticated_bind",
    "password_hash",
    "password_limits",
    "rehash_on_bind",
    "bind_throttle",
    "schema",
    "schema_files",
    "tls",
    "require_tls_for_simple_bind",
    "sasl_map",
    "limits",
    "max_filter_components",
    "max_sorted_entries",
    "max_outstanding",
    "max_connections_per_address",
    "idle_timeout",
    "pid_file",
    "referral",
    "authz_policy",
}
_DATABASE_KEYS = {"suffix", "backend", "root_dn", "root_password", "seed_ldif"}


@dataclass
class ServerConfig:
    """
    A validated configuration.

    @ivar listen: Twisted server endpoint strings.
    @ivar directory: the directory, not yet opened.
    @ivar maxPDUSize: the largest request accepted from a bound client.
    @ivar tls: the server's TLS, or C{None} when C{[server] tls} is absent.
    @ivar connectionLimits: what one connection and one client address may hold.
    @ivar replicas: the syncrepl consumers of C{[[replica]]} tables
        (L{ldapd.syncrepl.consumer.SyncReplConsumer}), started once the
        directory is open.
    @ivar workers: the server processes sharing the listeners (C{[server]
        workers}); more than one needs databases every process shares.
    @ivar cpuAffinity: whether each server process runs on one CPU of its
        own (C{[server] cpu_affinity}, L{ldapd.workers.pinToCPU}).
    @ivar maxAnonymousPDUSize: the largest request accepted from a client
        that has not bound.
    @ivar maxBufferedBytes: the bytes all connections together may hold in
        requests not yet received in full (0: no limit).
    @ivar path: the file it was read from (which a reload reads again), or
        C{None} for a configuration put together in code.
    @ivar source: the configuration as C{tomllib} read it, against which a
        reload finds what changed (L{restartOnlyChange}).
    @ivar pidFile: where the server writes its process ID (C{[server]
        pid_file}), for C{ldapd-admin reload}; C{None} for nowhere.
    @ivar metrics: the endpoints of the Prometheus metrics (C{[metrics]
        listen}, L{ldapd.metrics}): none, one, or with C{workers} above 1
        one for each worker, in order.
    """

    listen: list[str]
    directory: Directory
    maxPDUSize: int
    tls: ServerTLS | None = None
    connectionLimits: ConnectionLimits = ConnectionLimits()
    replicas: tuple[Any, ...] = ()
    workers: int = 1
    cpuAffinity: bool = False
    maxAnonymousPDUSize: int = DEFAULT_MAX_ANONYMOUS_PDU_SIZE
    maxBufferedBytes: int = DEFAULT_MAX_BUFFERED_BYTES
    path: Path | None = None
    source: dict[str, Any] = field(default_factory=dict)
    pidFile: Path | None = None
    metrics: tuple[str, ...] = ()


def loadConfig(path: Path, reactor: Any = None,
               previous: ServerConfig | None = None) -> ServerConfig:
    """
    Read and validate a configuration file and build its directory.

    @param path: the TOML file.
    @param reactor: the reactor the server will run on.
    @param previous: the configuration of the running server, for a
        reload (see L{buildConfig}).
    @return: the configuration.
    @raise ConfigError: naming file, key and problem.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    _warnIfSecretsReadable(path, data)
    return buildConfig(data, path, reactor, previous=previous)


def buildConfig(data: dict[str, Any], path: Path | None, reactor: Any = None,
                plugins: Sequence[Any] = (), previous: ServerConfig | None = None) -> ServerConfig:
    """
    Validate a configuration already read from TOML and build its directory:
    what L{loadConfig} does once it has read the file, for a configuration
    put together in code (the pytest plugin's, L{ldapd.pytest_plugin}).

    @param data: the configuration, as C{tomllib} reads it.
    @param path: the file it stands for, which errors name and relative
        paths are taken from; C{None} for none.
    @param reactor: the reactor the server will run on.
    @param plugins: operation plugins run before the configured ones.
    @param previous: the configuration of the running server, when this
        one is to replace it (a reload): what cannot change while the
        server runs (L{restartOnlyChange}) must be the same, and the new
        directory serves the running one's backends, schema and replicas
        and carries on its statistics and change feed
        (L{Directory.__init__}'s C{predecessor}). Nothing of C{previous}
        is changed.
    @return: the configuration.
    @raise ConfigError: naming file, key and problem; for a reload, also
        the first key whose change needs a restart.
    """
    if reactor is None:
        from twisted.internet import reactor
    top = ConfigContext(path, "", None, reactor)  # type: ignore[arg-type]
    document = ConfigTable(data, top, {"server", "database", "plugin", "replica", "metrics"})
    if previous is not None:
        change = restartOnlyChange(previous.source, data)
        if change is not None:
            raise top.error(*change)

    context = top.within("server")
    server = ConfigTable(document.get("server", dict, {}), context, _SERVER_KEYS)
    tlsTable = server.get("tls", dict)
    tls = None
    if tlsTable is not None:
        tls = tlsFromConfig(tlsTable, context.within("tls"))
    listen = server.get("listen", list)
    if not listen:
        raise context.error("listen", "at least one endpoint is required")
    for i, description in enumerate(listen):
        if not isinstance(description, str):
            raise context.error(f"listen[{i}]", "must be a string")
        _checkEndpoint(reactor, description, tls, context, f"listen[{i}]")
    authentication = Authentication(
        mappingsFromConfig(server.get("sasl_map", list, []), context, "sasl_map"),
        requireTLSForSimpleBind=server.boolean("require_tls_for_simple_bind", False),
    )
    shipped = server.strings("schema", list(STANDARD_FILES))
    unknown = [name for name in shipped if name not in STANDARD_SCHEMAS]
    if unknown:
        raise context.error(
            "schema", f"unknown schema {unknown[0]!r} (known: {', '.join(STANDARD_SCHEMAS)})"
        )
    extraSchema = server.strings("schema_files", [])
    if previous is not None:
        # The running backends hold entries of this schema.
        schema = previous.directory.schema
    else:
        try:
            schema = Schema.standard((context.resolvePath(str(p)) for p in extraSchema), shipped)
        except (SchemaError, OSError) as e:
            raise context.error("schema_files", str(e)) from None
    top.schema = context.schema = schema
    passwordHash = server.string("password_hash", "{ARGON2}")
    if passwordHash.upper() not in passwords.SCHEMES:
        raise context.error(
            "password_hash", f"unknown scheme (known: {', '.join(passwords.SCHEMES)})"
        )
    passwordLimits = _passwordLimits(
        server.get("password_limits", dict, {}), context.within("password_limits")
    )
    limits = Limits(
        sizeLimit=server.integer("size_limit", 500, minimum=0),
        timeLimit=server.integer("time_limit", 3600, minimum=0),
        identities=tuple(
            identityLimitFromConfig(table, context.within(f"limits[{i}]"))
            for i, table in enumerate(server.tables("limits", "a list of { who, size, time } tables"))
        ),
        maxFilterComponents=server.integer(
            "max_filter_components", DEFAULT_MAX_FILTER_COMPONENTS, minimum=0
        ),
        maxSortedEntries=server.integer(
            "max_sorted_entries", DEFAULT_MAX_SORTED_ENTRIES, minimum=0
        ),
    )
    connectionLimits = ConnectionLimits(
        maxOutstanding=server.integer("max_outstanding", 128, minimum=1),
        maxConnectionsPerAddress=server.integer("max_connections_per_address", 0, minimum=0),
        idleTimeout=server.integer("idle_timeout", 0, minimum=0),
    )
    maxPDUSize = server.integer("max_pdu_size", DEFAULT_MAX_PDU_SIZE, minimum=1)
    maxAnonymousPDUSize = server.integer(
        "max_anonymous_pdu_size", DEFAULT_MAX_ANONYMOUS_PDU_SIZE, minimum=1
    )
    maxBufferedBytes = server.integer("max_buffered_bytes", DEFAULT_MAX_BUFFERED_BYTES, minimum=0)

    running = previous.directory.configuredDatabases if previous is not None else []
    databases = [
        _database(table, top.within(f"database[{i}]"), passwordLimits,
                  running[i].backend if running else None)
        for i, table in enumerate(document.tables("database", "an array of tables ([[database]])"))
    ]
    if not databases:
        raise top.error("database", "at least one [[database]] is required")
    suffixes = [schema.normalizeDN(db.suffix) for db in databases]
    if len(set(suffixes)) != len(suffixes):
        raise top.error("database", "two databases have the same suffix")
    workers = server.integer("workers", 1, minimum=1)
    for i, db in enumerate(databases):
        if workers > 1 and isinstance(db.backend, MemoryBackend):
            raise context.error(
                "workers", f"{workers} processes would each hold their own copy of database[{i}] "
                "(backend \"memory\"): use the sql backend, or workers = 1")
    plugins = [*plugins] + [
        _plugin(table, top.within(f"plugin[{i}]"))
        for i, table in enumerate(document.tables("plugin", "an array of tables ([[plugin]])"))
    ]
    try:
        directory = Directory(
            databases,
            plugins,
            schema=schema,
            limits=limits,
            passwordHash=passwordHash,
            passwordLimits=passwordLimits,
            allowAnonymous=server.boolean("allow_anonymous", True),
            allowUnauthenticatedBind=server.boolean("allow_unauthenticated_bind", False),
            reactor=reactor,
            authentication=authentication,
            rehashOnBind=server.boolean("rehash_on_bind", False),
            bindThrottle=_bindThrottle(server.get("bind_throttle", dict),
                                       context.within("bind_throttle")),
            predecessor=previous.directory if previous is not None else None,
            referral=_referral(server),
            authzPolicy=server.choice("authz_policy", POLICIES, "none"),
        )
    except (UnknownHook, RegistrationError) as e:
        raise top.error("plugin", str(e)) from None
    if previous is not None:
        replicas = previous.replicas
        for old, new in zip(previous.directory.configuredDatabases, databases, strict=True):
            new.replica = old.replica
    else:
        replicas = tuple(
            replicaFromConfig(table, top.within(f"replica[{i}]"), directory, defaultRid=i + 1)
            for i, table in enumerate(
                document.tables("replica", "an array of tables ([[replica]])"))
        )
    if replicas and workers > 1:
        # Every worker would run its own consumer, writing the same changes.
        raise context.error(
            "workers", "a server with [[replica]] tables runs as one process: workers must be 1")
    if workers > 1 and any(d.startswith("systemd:") for d in listen):
        # A worker cannot take the socket systemd passed to its parent
        # (LISTEN_PID names the parent) to check its configuration.
        raise context.error(
            "workers", "a server on systemd's sockets (systemd:) runs as one process: "
            "workers must be 1")
    metrics = _metrics(document.get("metrics", dict, {}), top.within("metrics"), reactor, workers)
    cpuAffinity = server.boolean("cpu_affinity", False)
    if cpuAffinity and not hasattr(os, "sched_setaffinity"):
        raise context.error("cpu_affinity", "is not supported on this system")
    pidFile = server.string("pid_file")
    return ServerConfig(listen, directory, maxPDUSize, tls, connectionLimits, replicas, workers,
                        cpuAffinity, maxAnonymousPDUSize, maxBufferedBytes, path, data,
                        context.resolvePath(pidFile) if pidFile is not None else None,
                        metrics)


#: The keys of C{[server]} a running server cannot change, each with its
#: value when absent: the number of processes, the CPU they run on, the
#: schema the backends' entries were read with, the pid file it wrote.
_RESTART_SERVER_KEYS = {
    "workers": 1,
    "cpu_affinity": False,
    "schema": None,
    "schema_files": None,
    "pid_file": None,
}

#: The keys of a C{[[database]]} table a running server applies: the rest
#: (the suffix, the backend and its settings) belong to the backend, which
#: a reload keeps, holding the data.
_RELOADABLE_DATABASE_KEYS = {"root_dn", "root_password", "seed_ldif"}

#: The plugins whose settings cannot change without a restart (a reload
#: rebuilds every plugin from the same settings otherwise). The
#: changelog's server ID is in every CSN and cookie it has handed out, and
#: the database it shows is the one its consumers' cookies point into.
_RESTART_PLUGINS = frozenset({"changelog"})


def restartOnlyChange(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, str] | None:
    """
    Find a change between two configurations, as C{tomllib} reads them,
    that a running server cannot apply: in C{[server]} the number of
    workers, C{cpu_affinity}, the schema and the pid file; a database added,
    removed or moved, or its suffix, backend or backend settings (its
    C{root_dn}, C{root_password} and C{seed_ldif} may change); any
    C{[[replica]]} table; the C{changelog} plugin's table, or one added or
    removed. Values are compared as written: a key written out with its
    default value counts as a change of a key left out, except those of
    C{[server]}.

    @param old: the running configuration.
    @param new: the one to apply.
    @return: the key (as L{ConfigContext.error} names it) and the problem,
        or C{None} when everything that changed can be applied.
    """
    oldServer, newServer = _table(old.get("server")), _table(new.get("server"))
    for key, default in _RESTART_SERVER_KEYS.items():
        before, after = oldServer.get(key, default), newServer.get(key, default)
        if before != after:
            return f"server.{key}", _needsRestart(before, after)
    oldDatabases, newDatabases = _tables(old.get("database")), _tables(new.get("database"))
    if len(oldDatabases) != len(newDatabases):
        return "database", (f"{len(oldDatabases)} databases before, {len(newDatabases)} now: "
                            "adding or removing a database needs a restart")
    for i, (before, after) in enumerate(zip(oldDatabases, newDatabases, strict=True)):
        for key in sorted((before.keys() | after.keys()) - _RELOADABLE_DATABASE_KEYS):
            if before.get(key) != after.get(key):
                return f"database[{i}].{key}", _needsRestart(before.get(key), after.get(key))
    if _table(old.get("metrics")) != _table(new.get("metrics")):
        return "metrics", "the metrics listener cannot change without a restart"
    oldReplicas, newReplicas = _tables(old.get("replica")), _tables(new.get("replica"))
    if oldReplicas != newReplicas:
        changed = next((i for i, (a, b) in enumerate(zip(oldReplicas, newReplicas, strict=False)) if a != b),
                       min(len(oldReplicas), len(newReplicas)))
        return f"replica[{changed}]", "replication settings cannot change without a restart"
    kept = [[t for t in _tables(c.get("plugin")) if t.get("name") in _RESTART_PLUGINS]
            for c in (old, new)]
    if kept[0] != kept[1]:
        plugins = _tables(new.get("plugin"))
        where = next((i for i, t in enumerate(plugins)
                      if t.get("name") in _RESTART_PLUGINS and t not in kept[0]), None)
        return ("plugin" if where is None else f"plugin[{where}]",
                "the changelog plugin cannot be added, removed or changed without a restart")
    return None


def _needsRestart(before: Any, after: Any) -> str:
    """
    @return: the problem of a key that changed and needs a restart.
    """
    return f"cannot change without a restart (was {before!r}, now {after!r})"


def _table(value: Any) -> dict[str, Any]:
    """
    @return: C{value} if it is a table, else an empty one (the full
        validation reports it).
    """
    return value if isinstance(value, dict) else {}


def _tables(value: Any) -> list[dict[str, Any]]:
    """
    @return: the tables of an array of tables, an empty list when it is not
        one (the full validation reports it).
    """
    return [_table(t) for t in value] if isinstance(value, list) else []


def _checkEndpoint(reactor: Any, description: str, tls: ServerTLS | None,
                   context: ConfigContext, key: str) -> None:
    """
    Refuse a listener that is not a valid server endpoint string.

    A C{systemd:} listener whose socket the process was not given (its
    configuration checked outside systemd, by C{ldapd-admin check-config})
    passes: the server stops when it cannot listen on it
    (L{ldapd.workers.endpointOrExit}).

    @raise ConfigError: naming C{key}.
    """
    try:
        serverEndpoint(reactor, description, tls)
    except (ValueError, LookupError) as e:
        # Twisted's systemd: parser looks the socket up in LISTEN_FDS.
        if description.startswith("systemd:") and not ListenFDs.fromEnvironment().inheritedDescriptors():
            return
        raise context.error(key, f"invalid endpoint {description!r}: {e}") from None


def _metrics(table: dict[str, Any], context: ConfigContext, reactor: Any,
             workers: int) -> tuple[str, ...]:
    """
    @return: the endpoints of C{[metrics] listen}: a string, or a list of
        them, one for each worker.
    @raise ConfigError: naming the key.
    """
    config = ConfigTable(table, context, {"listen"})
    listen = config.get("listen", (str, list), expected="an endpoint string, or a list of them")
    if listen is None:
        return ()
    endpoints = [listen] if isinstance(listen, str) else listen
    if not all(isinstance(e, str) for e in endpoints):
        raise context.error("listen", "must be an endpoint string, or a list of them")
    if len(endpoints) != workers:
        raise context.error(
            "listen", f"{len(endpoints)} endpoint(s) for {workers} process(es): each worker "
            "serves its own metrics, so give one endpoint for each")
    for i, description in enumerate(endpoints):
        _checkEndpoint(reactor, description, None, context, "listen" if len(endpoints) == 1
                       else f"listen[{i}]")
    return tuple(endpoints)


#: The keys whose values are passwords or their hashes, in the tables that may have them.
_SECRETS = {"database": ("root_password", "bind_password"), "replica": ("bind_password",)}


def _referral(server: ConfigTable) -> list[str]:
    """
    @return: the default referral's URLs (C{referral}: one LDAP URL or a
        list of them).
    @raise ConfigError: if they are not LDAP URLs.
    """
    value = server.get("referral", (str, list), [])
    urls = [value] if isinstance(value, str) else server.strings("referral", [], nonEmpty=True)
    for url in urls:
        if not url.lower().startswith(("ldap://", "ldaps://", "ldapi://")):
            raise server.error("referral", f"{url!r} is not an LDAP URL")
    return urls


def _warnIfSecretsReadable(path: Path, data: dict[str, Any]) -> None:
    """
    Warn, naming the file and the key, when every local user may read a
    configuration holding a password (cleartext or hashed: a hash can be
    attacked offline).
    """
    for section, keys in _SECRETS.items():
        tables = data.get(section)
        for i, table in enumerate(tables if isinstance(tables, list) else ()):
            for key in keys:
                if isinstance(table, dict) and key in table:
                    _files.warnIfReadable(path, f"holds {section}[{i}].{key}")
                    return


#: The keys of [server.password_limits], each with its PasswordLimits field.
_PASSWORD_LIMITS = {
    "bcrypt_cost": "bcryptCost",
    "crypt_rounds": "cryptRounds",
    "pbkdf2_rounds": "pbkdf2Rounds",
    "argon2_memory": "argon2Memory",
    "argon2_time": "argon2Time",
    "argon2_parallelism": "argon2Parallelism",
    "max_concurrent": "maxConcurrent",
    "max_per_entry": "maxPerEntry",
}


def _passwordLimits(table: dict[str, Any], context: ConfigContext) -> passwords.PasswordLimits:
    """
    @return: the limits of C{[server.password_limits]}, each key
        defaulting to L{passwords.PasswordLimits}'s.
    """
    config = ConfigTable(table, context, _PASSWORD_LIMITS)
    defaults = passwords.PasswordLimits()
    return passwords.PasswordLimits(**{
        field: config.integer(key, getattr(defaults, field), minimum=1)
        for key, field in _PASSWORD_LIMITS.items()
    })


def _bindThrottle(table: dict[str, Any] | None, context: ConfigContext
                  ) -> BindThrottleSettings | None:
    """
    @return: the limits of C{[server] bind_throttle}, or C{None} when it
        is absent (no throttling, as in slapd and 389 DS).
    @raise ConfigError: for a table that limits nothing.
    """
    if table is None:
        return None
    config = ConfigTable(table, context, {"per_address", "per_dn", "tracked"})
    defaults = BindThrottleSettings()
    settings = BindThrottleSettings(
        perAddress=config.integer("per_address", 0, minimum=0),
        perDN=config.integer("per_dn", 0, minimum=0),
        tracked=config.integer("tracked", defaults.tracked, minimum=1),
    )
    if not settings.perAddress and not settings.perDN:
        raise context.error("per_address", "per_address or per_dn must be set above 0")
    return settings


def _checkRootPassword(
    value: bytes, limits: passwords.PasswordLimits, context: ConfigContext
) -> None:
    """
    Refuse a root password that could never bind (an unknown C{E{lb}SCHEMEE{rb}}
    prefix, which is how a cleartext password beginning with C{E{lb}} is read,
    or a hash over the cost limits); warn about a cleartext one.

    @raise ConfigError: naming C{root_password}.
    """
    try:
        scheme = passwords.schemeOf(value)
    except passwords.UnknownScheme as e:
        raise context.error(
            "root_password", f"{e}; a cleartext password cannot begin with a {{...}} prefix: "
            "store a hash (ldapd-admin hash)") from None
    if scheme is None:
        _log.warn(
            "{where}.root_password in {path} is cleartext; store a hash (ldapd-admin hash)",
            where=context.where, path=str(context.path),
        )
        return
    try:
        passwords.checkCost(value, limits)
    except passwords.ExcessiveCost as e:
        raise context.error("root_password", str(e)) from None


def _database(
    table: dict[str, Any], context: ConfigContext, passwordLimits: passwords.PasswordLimits,
    backend: Any = None,
) -> Database:
    """
    @param backend: the running backend a reload keeps, in place of one
        built from the table.
    """
    schema = context.schema
    config, backendTable = ConfigTable.split(table, context, _DATABASE_KEYS)
    suffix = config.dn("suffix")
    if suffix is None:
        raise context.error("suffix", "is required")
    context.suffix = schema.normalizeDN(suffix)
    rootDN = config.dn("root_dn")
    if rootDN is not None and not schema.normalizeDN(rootDN).isWithin(context.suffix):
        raise context.error("root_dn", "must be within the database's suffix")
    rootPassword = config.string("root_password")
    if rootPassword is not None and rootDN is None:
        raise context.error("root_password", "needs root_dn")
    if rootPassword is not None:
        _checkRootPassword(rootPassword.encode("utf-8"), passwordLimits, context)
    seed = config.string("seed_ldif")
    seedPath = context.resolvePath(seed) if seed is not None else None
    if seedPath is not None and not seedPath.is_file():
        raise context.error("seed_ldif", f"no such file: {seedPath}")
    if backend is None:
        backendName = config.string("backend", "memory")
        factory = lookup(BACKENDS, backendName, context, "backend")
        backend = factory.fromConfig(backendTable, context)
    return Database(
        suffix,
        backend,
        rootDN,
        rootPassword.encode("utf-8") if rootPassword is not None else None,
        seedPath,
    )


def _plugin(table: dict[str, Any], context: ConfigContext) -> Any:
    config, pluginTable = ConfigTable.split(table, context, {"name"})
    factory = lookup(PLUGINS, config.required("name", str), context, "name")
    return factory.fromConfig(pluginTable, context)
