"""
The TOML configuration file: reading, validating, and building the server it
describes. Every problem is reported as one L{ConfigError} line naming the
file, the key and what is wrong with it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from ldapd import _files, passwords
from ldapd._framing import (
    DEFAULT_MAX_ANONYMOUS_PDU_SIZE,
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_PDU_SIZE,
)
from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory
from ldapd.dn import DN, InvalidDN
from ldapd.limits import (
    DEFAULT_MAX_FILTER_COMPONENTS,
    ConnectionLimits,
    Limits,
    identityLimitFromConfig,
)
from ldapd.registry import (
    BACKENDS,
    PLUGINS,
    ConfigContext,
    ConfigError,
    lookup,
    rejectUnknownKeys,
)
from ldapd.sasl import Authentication, mappingsFromConfig
from ldapd.schema import Schema, SchemaError
from ldapd.schema.schema import STANDARD_FILES, STANDARD_SCHEMAS
from ldapd.syncrepl.consumer import replicaFromConfig
from ldapd.tls import ServerTLS, serverEndpoint, tlsFromConfig

__all__ = ["ConfigError", "ServerConfig", "loadConfig"]

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
    "schema",
    "schema_files",
    "tls",
    "require_tls_for_simple_bind",
    "sasl_map",
    "limits",
    "max_filter_components",
    "max_outstanding",
    "max_connections_per_address",
    "idle_timeout",
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


def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any,
         context: ConfigContext) -> Any:
    value = table.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) and kind is int or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise context.error(key, f"must be a {_TOML_NAMES.get(names, names)}, not {value!r}")
    return value


_TOML_NAMES = {"str": "string", "int": "integer", "bool": "boolean (true or false)",
               "list": "list"}


def _dn(table: dict[str, Any], key: str, context: ConfigContext, schema: Schema) -> DN | None:
    text = _get(table, key, str, None, context)
    if text is None:
        return None
    try:
        dn = DN.parse(text)
        schema.normalizeDN(dn)
    except InvalidDN as e:
        raise context.error(key, f"not a valid DN: {e}") from None
    return dn


def _nonNegative(table: dict[str, Any], key: str, default: int, context: ConfigContext) -> int:
    value = _get(table, key, int, default, context)
    if value < 0:
        raise context.error(key, "must not be negative")
    return value  # type: ignore[no-any-return]


def _positive(table: dict[str, Any], key: str, default: int, context: ConfigContext) -> int:
    value = _nonNegative(table, key, default, context)
    if not value:
        raise context.error(key, "must be at least 1")
    return value


def loadConfig(path: Path, reactor: Any = None) -> ServerConfig:
    """
    Read and validate a configuration file and build its directory.

    @param path: the TOML file.
    @param reactor: the reactor the server will run on.
    @return: the configuration.
    @raise ConfigError: naming file, key and problem.
    """
    if reactor is None:
        from twisted.internet import reactor
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    top = ConfigContext(path, "", None, reactor)  # type: ignore[arg-type]
    rejectUnknownKeys(data, {"server", "database", "plugin", "replica"}, top)
    _warnIfSecretsReadable(path, data)

    server = _get(data, "server", dict, {}, top)
    context = ConfigContext(path, "server", None, reactor)  # type: ignore[arg-type]
    rejectUnknownKeys(server, _SERVER_KEYS, context)
    tlsTable = _get(server, "tls", dict, None, context)
    tls = None
    if tlsTable is not None:
        tls = tlsFromConfig(tlsTable, ConfigContext(path, "server.tls", None, reactor))  # type: ignore[arg-type]
    listen = _get(server, "listen", list, None, context)
    if not listen:
        raise context.error("listen", "at least one endpoint is required")
    for i, description in enumerate(listen):
        if not isinstance(description, str):
            raise context.error(f"listen[{i}]", "must be a string")
        try:
            serverEndpoint(reactor, description, tls)
        except ValueError as e:
            raise context.error(f"listen[{i}]", f"invalid endpoint {description!r}: {e}") from None
    authentication = Authentication(
        mappingsFromConfig(server.get("sasl_map", []), context, "sasl_map"),
        requireTLSForSimpleBind=_get(server, "require_tls_for_simple_bind", bool, False, context),
    )
    shipped = _get(server, "schema", list, list(STANDARD_FILES), context)
    unknown = [name for name in shipped if name not in STANDARD_SCHEMAS]
    if unknown:
        raise context.error(
            "schema", f"unknown schema {unknown[0]!r} (known: {', '.join(STANDARD_SCHEMAS)})"
        )
    extraSchema = _get(server, "schema_files", list, [], context)
    try:
        schema = Schema.standard((context.resolvePath(str(p)) for p in extraSchema), shipped)
    except (SchemaError, OSError) as e:
        raise context.error("schema_files", str(e)) from None
    context.schema = schema
    passwordHash = _get(server, "password_hash", str, "{ARGON2}", context)
    if passwordHash.upper() not in passwords.SCHEMES:
        raise context.error(
            "password_hash", f"unknown scheme (known: {', '.join(passwords.SCHEMES)})"
        )
    passwordLimits = _passwordLimits(
        _get(server, "password_limits", dict, {}, context),
        ConfigContext(path, "server.password_limits", schema, reactor),
    )
    identities = []
    for i, table in enumerate(_get(server, "limits", list, [], context)):
        try:
            identities.append(identityLimitFromConfig(table, schema, f"limits[{i}]"))
        except ValueError as e:
            key, _, problem = str(e).partition(": ")
            raise context.error(key, problem) from None
    limits = Limits(
        sizeLimit=_nonNegative(server, "size_limit", 500, context),
        timeLimit=_nonNegative(server, "time_limit", 3600, context),
        identities=tuple(identities),
        maxFilterComponents=_nonNegative(
            server, "max_filter_components", DEFAULT_MAX_FILTER_COMPONENTS, context
        ),
    )
    connectionLimits = ConnectionLimits(
        maxOutstanding=_positive(server, "max_outstanding", 128, context),
        maxConnectionsPerAddress=_nonNegative(server, "max_connections_per_address", 0, context),
        idleTimeout=_nonNegative(server, "idle_timeout", 0, context),
    )
    maxPDUSize = _positive(server, "max_pdu_size", DEFAULT_MAX_PDU_SIZE, context)
    maxAnonymousPDUSize = _positive(
        server, "max_anonymous_pdu_size", DEFAULT_MAX_ANONYMOUS_PDU_SIZE, context
    )
    maxBufferedBytes = _nonNegative(server, "max_buffered_bytes", DEFAULT_MAX_BUFFERED_BYTES, context)

    databases = [
        _database(table, ConfigContext(path, f"database[{i}]", schema, reactor), passwordLimits)
        for i, table in enumerate(_tables(data, "database", top))
    ]
    if not databases:
        raise top.error("database", "at least one [[database]] is required")
    suffixes = [schema.normalizeDN(db.suffix) for db in databases]
    if len(set(suffixes)) != len(suffixes):
        raise top.error("database", "two databases have the same suffix")
    workers = _positive(server, "workers", 1, context)
    for i, db in enumerate(databases):
        if workers > 1 and isinstance(db.backend, MemoryBackend):
            raise context.error(
                "workers", f"{workers} processes would each hold their own copy of database[{i}] "
                "(backend \"memory\"): use the sql backend, or workers = 1")
    plugins = [
        _plugin(table, ConfigContext(path, f"plugin[{i}]", schema, reactor))
        for i, table in enumerate(_tables(data, "plugin", top))
    ]
    directory = Directory(
        databases,
        plugins,
        schema=schema,
        limits=limits,
        passwordHash=passwordHash,
        passwordLimits=passwordLimits,
        allowAnonymous=_get(server, "allow_anonymous", bool, True, context),
        allowUnauthenticatedBind=_get(server, "allow_unauthenticated_bind", bool, False, context),
        reactor=reactor,
        authentication=authentication,
    )
    replicas = tuple(
        replicaFromConfig(table, ConfigContext(path, f"replica[{i}]", schema, reactor),
                          directory, defaultRid=i + 1)
        for i, table in enumerate(_tables(data, "replica", top))
    )
    if replicas and workers > 1:
        # Every worker would run its own consumer, writing the same changes.
        raise context.error(
            "workers", "a server with [[replica]] tables runs as one process: workers must be 1")
    cpuAffinity = _get(server, "cpu_affinity", bool, False, context)
    if cpuAffinity and not hasattr(os, "sched_setaffinity"):
        raise context.error("cpu_affinity", "is not supported on this system")
    return ServerConfig(listen, directory, maxPDUSize, tls, connectionLimits, replicas, workers,
                        cpuAffinity, maxAnonymousPDUSize, maxBufferedBytes)


#: The keys whose values are passwords or their hashes, in the tables that may have them.
_SECRETS = {"database": ("root_password", "bind_password"), "replica": ("bind_password",)}


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


def _tables(data: dict[str, Any], key: str, context: ConfigContext) -> list[dict[str, Any]]:
    tables = data.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise context.error(key, f"must be an array of tables ([[{key}]])")
    return tables


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
    rejectUnknownKeys(table, set(_PASSWORD_LIMITS), context)
    defaults = passwords.PasswordLimits()
    return passwords.PasswordLimits(**{
        field: _positive(table, key, getattr(defaults, field), context)
        for key, field in _PASSWORD_LIMITS.items()
    })


def _checkRootPassword(
    value: bytes, limits: passwords.PasswordLimits, context: ConfigContext
) -> None:
    """
    Refuse a root password that could never bind (an unknown C{{SCHEME}}
    prefix, which is how a cleartext password beginning with C{{} is read,
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
    table: dict[str, Any], context: ConfigContext, passwordLimits: passwords.PasswordLimits
) -> Database:
    schema = context.schema
    suffix = _dn(table, "suffix", context, schema)
    if suffix is None:
        raise context.error("suffix", "is required")
    context.suffix = schema.normalizeDN(suffix)
    rootDN = _dn(table, "root_dn", context, schema)
    if rootDN is not None and not schema.normalizeDN(rootDN).isWithin(context.suffix):
        raise context.error("root_dn", "must be within the database's suffix")
    rootPassword = _get(table, "root_password", str, None, context)
    if rootPassword is not None and rootDN is None:
        raise context.error("root_password", "needs root_dn")
    if rootPassword is not None:
        _checkRootPassword(rootPassword.encode("utf-8"), passwordLimits, context)
    seed = _get(table, "seed_ldif", str, None, context)
    seedPath = context.resolvePath(seed) if seed is not None else None
    if seedPath is not None and not seedPath.is_file():
        raise context.error("seed_ldif", f"no such file: {seedPath}")
    backendName = _get(table, "backend", str, "memory", context)
    factory = lookup(BACKENDS, backendName, context, "backend")
    backendTable = {k: v for k, v in table.items() if k not in _DATABASE_KEYS}
    backend = factory.fromConfig(backendTable, context)
    return Database(
        suffix,
        backend,
        rootDN,
        rootPassword.encode("utf-8") if rootPassword is not None else None,
        seedPath,
    )


def _plugin(table: dict[str, Any], context: ConfigContext) -> Any:
    name = _get(table, "name", str, None, context)
    if name is None:
        raise context.error("name", "is required")
    factory = lookup(PLUGINS, name, context, "name")
    return factory.fromConfig({k: v for k, v in table.items() if k != "name"}, context)
