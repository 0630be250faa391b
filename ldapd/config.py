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
from typing import Any, Sequence

from twisted.logger import Logger

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
from ldapd.tls import ServerTLS, serverEndpoint, tlsFromConfig

__all__ = ["ConfigError", "ServerConfig", "buildConfig", "loadConfig"]

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


def loadConfig(path: Path, reactor: Any = None) -> ServerConfig:
    """
    Read and validate a configuration file and build its directory.

    @param path: the TOML file.
    @param reactor: the reactor the server will run on.
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
    return buildConfig(data, path, reactor)


def buildConfig(data: dict[str, Any], path: Path | None, reactor: Any = None,
                plugins: Sequence[Any] = ()) -> ServerConfig:
    """
    Validate a configuration already read from TOML and build its directory:
    what L{loadConfig} does once it has read the file, for a configuration
    put together in code (the pytest plugin's, L{ldapd.pytest_plugin}).

    @param data: the configuration, as C{tomllib} reads it.
    @param path: the file it stands for, which errors name and relative
        paths are taken from; C{None} for none.
    @param reactor: the reactor the server will run on.
    @param plugins: operation plugins run before the configured ones.
    @return: the configuration.
    @raise ConfigError: naming file, key and problem.
    """
    if reactor is None:
        from twisted.internet import reactor
    top = ConfigContext(path, "", None, reactor)  # type: ignore[arg-type]
    document = ConfigTable(data, top, {"server", "database", "plugin", "replica"})

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
        try:
            serverEndpoint(reactor, description, tls)
        except ValueError as e:
            raise context.error(f"listen[{i}]", f"invalid endpoint {description!r}: {e}") from None
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

    databases = [
        _database(table, top.within(f"database[{i}]"), passwordLimits)
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
            referral=_referral(server),
            authzPolicy=server.choice("authz_policy", POLICIES, "none"),
        )
    except (UnknownHook, RegistrationError) as e:
        raise top.error("plugin", str(e)) from None
    replicas = tuple(
        replicaFromConfig(table, top.within(f"replica[{i}]"), directory, defaultRid=i + 1)
        for i, table in enumerate(document.tables("replica", "an array of tables ([[replica]])"))
    )
    if replicas and workers > 1:
        # Every worker would run its own consumer, writing the same changes.
        raise context.error(
            "workers", "a server with [[replica]] tables runs as one process: workers must be 1")
    cpuAffinity = server.boolean("cpu_affinity", False)
    if cpuAffinity and not hasattr(os, "sched_setaffinity"):
        raise context.error("cpu_affinity", "is not supported on this system")
    return ServerConfig(listen, directory, maxPDUSize, tls, connectionLimits, replicas, workers,
                        cpuAffinity, maxAnonymousPDUSize, maxBufferedBytes)


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
    table: dict[str, Any], context: ConfigContext, passwordLimits: passwords.PasswordLimits
) -> Database:
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
