"""
Names to factories: how configuration finds backends and plugins.

A factory is any object with C{name}, C{description} and
C{fromConfig(table, context)} (as Twisted's C{cred} checker factories have
C{authType}, C{authHelp} and C{generateChecker}). Factories are registered as
entry points in the C{ldapd.backends} and C{ldapd.plugins} groups, or named
directly as C{"package.module:factory"}. Third-party controls and extended
operations are registered as entry points in the C{ldapd.controls} and
C{ldapd.extended} groups (L{installedExtensions}).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from ldapd.dn import DN, InvalidDN
from ldapd.extensions import ControlType, ExtendedOperation, RegistrationError
from ldapd.schema import Schema

__all__ = [
    "BACKENDS",
    "CONTROLS",
    "EXTENDED",
    "ConfigContext",
    "ConfigError",
    "IFactory",
    "PLUGINS",
    "duration",
    "installedExtensions",
    "lookup",
    "optionalDN",
    "rejectUnknownKeys",
]

#: The entry-point group of backend factories.
BACKENDS = "ldapd.backends"
#: The entry-point group of operation-plugin factories.
PLUGINS = "ldapd.plugins"
#: The entry-point group of request controls (L{ldapd.extensions.ControlType}s).
CONTROLS = "ldapd.controls"
#: The entry-point group of extended operations
#: (L{ldapd.extensions.ExtendedOperation}s).
EXTENDED = "ldapd.extended"


class ConfigError(Exception):
    """
    The configuration is wrong; the message is one line naming the file, the
    key and the problem.
    """


class IFactory(Protocol):
    """
    What a backend or plugin factory provides.
    """

    name: str
    description: str

    def fromConfig(self, table: dict[str, Any], context: ConfigContext) -> Any:
        """
        Build the backend or plugin from its configuration table.

        @raise ConfigError: naming the key that is wrong.
        """


@dataclass
class ConfigContext:
    """
    What a factory needs besides its own table.

    @ivar path: the configuration file, or C{None} when built in code.
    @ivar where: the table's position in the file, e.g. C{database[0]}.
    @ivar schema: the directory's schema.
    @ivar reactor: the reactor.
    @ivar suffix: for a backend, the normalised suffix of its database.
    """

    path: Path | None
    where: str
    schema: Schema
    reactor: Any
    suffix: DN | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def error(self, key: str, problem: str) -> ConfigError:
        """
        @param key: the key within this table.
        @param problem: what is wrong with it.
        @return: the error to raise, naming file and full key.
        """
        fullKey = f"{self.where}.{key}" if self.where else key
        return ConfigError(f"{self.path or '<config>'}: {fullKey}: {problem}")

    def resolvePath(self, value: str) -> Path:
        """
        @param value: a path from the configuration.
        @return: the path, relative ones taken from the configuration file's folder.
        """
        path = Path(value)
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        return path


def rejectUnknownKeys(table: dict[str, Any], allowed: set[str], context: ConfigContext) -> None:
    """
    @param table: a configuration table.
    @param allowed: the keys it may have.
    @param context: where the table is.
    @raise ConfigError: naming the first key that is not allowed.
    """
    for key in table:
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise context.error(key, f"unknown key (known keys: {known})")


def lookup(group: str, name: str, context: ConfigContext, key: str) -> IFactory:
    """
    Find a factory by registered name or by C{"package.module:factory"}.

    @param group: L{BACKENDS} or L{PLUGINS}.
    @param name: the name from the configuration.
    @param context: where it was named.
    @param key: the key that named it, for the error message.
    @return: the factory.
    @raise ConfigError: if there is no such factory.
    """
    if ":" in name:
        moduleName, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(moduleName), attr)  # type: ignore[no-any-return]
        except (ImportError, AttributeError) as e:
            raise context.error(key, f"cannot load {name!r}: {e}") from None
    found = {ep.name: ep for ep in entry_points(group=group)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise context.error(key, f"unknown name {name!r} (known: {known})")
    return found[name].load()  # type: ignore[no-any-return]


def installedExtensions() -> tuple[list[ControlType], list[ExtendedOperation]]:
    """
    Load the controls and extended operations installed packages register
    as entry points in the L{CONTROLS} and L{EXTENDED} groups, each naming
    a L{ControlType<ldapd.extensions.ControlType>} or an
    L{ExtendedOperation<ldapd.extensions.ExtendedOperation>}.

    @return: the controls and the extended operations.
    @raise ldapd.extensions.RegistrationError: naming an entry point that
        cannot be loaded or names something else.
    """
    found: tuple[list[Any], list[Any]] = ([], [])
    for group, kind, into in ((CONTROLS, ControlType, found[0]),
                              (EXTENDED, ExtendedOperation, found[1])):
        for ep in entry_points(group=group):
            try:
                loaded = ep.load()
            except Exception as e:
                raise RegistrationError(f"entry point {ep.name} ({group}): cannot load "
                                        f"{ep.value}: {e}") from None
            if not isinstance(loaded, kind):
                raise RegistrationError(f"entry point {ep.name} ({group}): {ep.value} is not "
                                        f"a {kind.__name__}")
            into.append(loaded)
    return found


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def duration(table: dict[str, Any], key: str, default: float, context: ConfigContext) -> float:
    """
    Read a duration: a number of seconds, or a string of a number and a
    unit (C{"500ms"}, C{"5s"}, C{"10m"}, C{"2h"}, C{"7d"}).

    @param table: the configuration table.
    @param key: the key.
    @param default: the seconds when the key is absent.
    @param context: where the table is.
    @return: the duration in seconds.
    @raise ConfigError: for any other value, or a negative one.
    """
    value = table.get(key, default)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            raise context.error(key, f"{value!r} is not a duration (e.g. 30s, 5m, 2h, 7d)")
        return float(match.group(1)) * _UNITS[match.group(2)]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise context.error(key, f"must be a duration (e.g. \"30s\" or a number of seconds), "
                                 f"not {value!r}")
    if value < 0:
        raise context.error(key, "must not be negative")
    return float(value)


def optionalDN(table: dict[str, Any], key: str, context: ConfigContext) -> DN | None:
    """
    Read an optional DN, which must be one the schema can normalise.

    @param table: the configuration table.
    @param key: the key.
    @param context: where the table is.
    @return: the DN as written, or C{None} when the key is absent.
    @raise ConfigError: for anything but such a DN.
    """
    if key not in table:
        return None
    text = table[key]
    try:
        if not isinstance(text, str):
            raise InvalidDN(text)
        dn = DN.parse(text)
        context.schema.normalizeDN(dn)
    except InvalidDN:
        raise context.error(key, f"not a DN: {text!r}") from None
    return dn
