"""
Names to factories: how configuration finds backends and plugins, and how
each reads its table.

A factory is any object with C{name}, C{description} and
C{fromConfig(table, context)} (as Twisted's C{cred} checker factories have
C{authType}, C{authHelp} and C{generateChecker}). Factories are registered as
entry points in the C{ldapd.backends} and C{ldapd.plugins} groups, or named
directly as C{"package.module:factory"}. Every table of the configuration,
the server's own included, is read through a L{ConfigTable}, so that a
value is checked the same way whoever reads it and a misspelt key stops
start-up. Third-party controls and extended operations are registered as
entry points in the C{ldapd.controls} and C{ldapd.extended} groups
(L{installedExtensions}).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
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
    "ConfigTable",
    "IFactory",
    "PLUGINS",
    "installedExtensions",
    "lookup",
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

    def within(self, key: str) -> ConfigContext:
        """
        @param key: the key of a table within this one (C{tls},
            C{limits[0]}).
        @return: the context of that table, whose errors name its keys
            below this table's.
        """
        return replace(self, where=f"{self.where}.{key}" if self.where else key)

    def resolvePath(self, value: str) -> Path:
        """
        @param value: a path from the configuration.
        @return: the path, relative ones taken from the configuration file's folder.
        """
        path = Path(value)
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        return path


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


#: How errors name the kinds of TOML values.
_KINDS: dict[type, str] = {
    bool: "a boolean (true or false)",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a table",
}

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


class ConfigTable:
    """
    One table of the configuration, read by typed getters: what every
    C{fromConfig} and the server's own sections use, so that a value is
    checked the same way wherever it is read. Every problem is a
    L{ConfigError} naming the file, the key and what is wrong.

    A boolean is never taken for a number (TOML's C{true} is not C{1},
    although Python's C{True} is an C{int}), nor a number for a boolean.
    A getter whose key is absent returns its default unchecked.

    @ivar context: where the table is.
    """

    def __init__(self, table: Mapping[str, Any], context: ConfigContext,
                 keys: Iterable[str]) -> None:
        """
        @param table: the table as TOML read it.
        @param context: where it is.
        @param keys: every key it may have.
        @raise ConfigError: naming the first key that is not one of C{keys}
            (a misspelt key, silently ignored, would leave its setting at
            the default).
        """
        self.context = context
        self._table = table
        allowed = set(keys)
        for key in table:
            if key not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise context.error(key, f"unknown key (known keys: {known})")

    @classmethod
    def split(cls, table: Mapping[str, Any], context: ConfigContext,
              keys: Iterable[str]) -> tuple[ConfigTable, dict[str, Any]]:
        """
        Divide a table shared by two readers: a C{[[database]]}'s keys and
        its backend's, a C{[[plugin]]}'s C{name} and the plugin's keys.

        @param keys: the keys of the first reader.
        @return: the first reader, over C{keys}; and the rest of the table,
            for the other reader, which checks its own keys.
        """
        own = set(keys)
        return (cls({k: v for k, v in table.items() if k in own}, context, own),
                {k: v for k, v in table.items() if k not in own})

    def __contains__(self, key: str) -> bool:
        return key in self._table

    def error(self, key: str, problem: str) -> ConfigError:
        """
        @param key: a key of this table.
        @param problem: what is wrong with it.
        @return: the error to raise, naming file and full key.
        """
        return self.context.error(key, problem)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None,
            expected: str | None = None) -> Any:
        """
        @param key: the key.
        @param kind: the Python type(s) of the TOML values it may have.
        @param default: the value when the key is absent.
        @param expected: what the value must be, for the message, when
            C{kind} does not say enough (C{"a name (a string)"}).
        @return: the value, or C{default}.
        @raise ConfigError: for a value of another kind.
        """
        if key not in self._table:
            return default
        value = self._table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
            if expected is None:
                expected = " or ".join(_KINDS.get(k, k.__name__) for k in kinds)
            raise self.error(key, f"must be {expected}, not {value!r}")
        return value

    def required(self, key: str, kind: type | tuple[type, ...],
                 expected: str | None = None) -> Any:
        """
        L{get} a key that must be present.

        @raise ConfigError: when it is absent, or of another kind.
        """
        if key not in self._table:
            raise self.error(key, "is required" + (f" ({expected})" if expected else ""))
        return self.get(key, kind, None, expected)

    def string(self, key: str, default: str | None = None) -> Any:
        """
        @return: a string, or C{default} when the key is absent.
        @raise ConfigError: for any other value.
        """
        return self.get(key, str, default)

    def boolean(self, key: str, default: bool) -> bool:
        """
        @return: C{true} or C{false}, or C{default} when the key is absent.
        @raise ConfigError: for any other value (C{1} and C{"yes"} included).
        """
        return self.get(key, bool, default)  # type: ignore[no-any-return]

    def integer(self, key: str, default: Any, minimum: int | None = None,
                maximum: int | None = None, expected: str | None = None) -> Any:
        """
        @param default: the value when the key is absent (not checked
            against the bounds).
        @param minimum: the least value allowed.
        @param maximum: the greatest value allowed.
        @param expected: what the value must be, for every message about it
            (C{"a server ID from 0 to 4095"}).
        @return: an integer, or C{default}.
        @raise ConfigError: for anything else, or an integer out of bounds.
        """
        if key not in self._table:
            return default
        value = self.get(key, int, default, expected)
        self._bound(key, value, minimum, maximum, expected)
        return value

    def number(self, key: str, default: Any, minimum: float | None = None,
               expected: str | None = None) -> Any:
        """
        @param default: the value when the key is absent.
        @param minimum: the least value allowed.
        @param expected: what the value must be, for every message about it.
        @return: an integer or a float (as a float), or C{default}.
        @raise ConfigError: for anything else, or a number below C{minimum}.
        """
        if key not in self._table:
            return default
        value = self.get(key, (int, float), default, expected or "a number")
        self._bound(key, value, minimum, None, expected)
        return float(value)

    def _bound(self, key: str, value: float, minimum: float | None, maximum: float | None,
               expected: str | None) -> None:
        if (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
            return
        if expected is not None:
            raise self.error(key, f"must be {expected}")
        if maximum is not None:
            raise self.error(key, f"must be from {minimum} to {maximum}")
        raise self.error(key, "must not be negative" if minimum == 0 else
                         f"must be at least {minimum}")

    def duration(self, key: str, default: float) -> float:
        """
        Read a duration: a number of seconds, or a string of a number and a
        unit (C{"500ms"}, C{"5s"}, C{"10m"}, C{"2h"}, C{"7d"}).

        @param default: the seconds when the key is absent.
        @return: the duration in seconds.
        @raise ConfigError: for any other value, or a negative one.
        """
        if key not in self._table:
            return default
        value = self._table[key]
        if isinstance(value, str):
            match = _DURATION.fullmatch(value.strip())
            if match is None:
                raise self.error(key, f"{value!r} is not a duration (e.g. 30s, 5m, 2h, 7d)")
            return float(match.group(1)) * _UNITS[match.group(2)]
        return self.number(  # type: ignore[no-any-return]
            key, default, 0, "a duration (e.g. \"30s\" or a number of seconds), 0 or more")

    def choice(self, key: str, choices: Iterable[str], default: str) -> str:
        """
        @param choices: the strings allowed.
        @param default: the value when the key is absent.
        @return: one of C{choices}, or C{default}.
        @raise ConfigError: for anything else.
        """
        if key not in self._table:
            return default
        value = self.get(key, str)
        allowed = list(choices)
        if value not in allowed:
            names = [f'"{c}"' for c in allowed]
            text = " or ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
            raise self.error(key, f"{value!r} is not one of {text}")
        return value  # type: ignore[no-any-return]

    def strings(self, key: str, default: Any, expected: str = "a list of strings",
                nonEmpty: bool = False) -> Any:
        """
        @param default: the value when the key is absent.
        @param expected: what the value must be, for the message.
        @param nonEmpty: whether the list, and each string, must be non-empty.
        @return: a list of strings, or C{default}.
        @raise ConfigError: for anything else.
        """
        if key not in self._table:
            return default
        value = self._table[key]
        if (not isinstance(value, list) or not all(isinstance(v, str) for v in value)
                or nonEmpty and not all(value)):
            raise self.error(key, f"must be {expected}")
        return value

    def tables(self, key: str, expected: str) -> list[dict[str, Any]]:
        """
        @param expected: what the value must be, for the message.
        @return: a list of tables (an array of tables, C{[[key]]}, or an
            inline one), empty when the key is absent.
        @raise ConfigError: for anything else.
        """
        value = self.get(key, list, [], expected)
        if not all(isinstance(t, dict) for t in value):
            raise self.error(key, f"must be {expected}")
        return value  # type: ignore[no-any-return]

    def dn(self, key: str, inSchema: bool = True) -> DN | None:
        """
        Read an optional DN.

        @param inSchema: whether the DN must be one the schema can
            normalise (C{False} for a DN of another server).
        @return: the DN as written, or C{None} when the key is absent.
        @raise ConfigError: for anything but such a DN.
        """
        if key not in self._table:
            return None
        text = self._table[key]
        try:
            if not isinstance(text, str):
                raise InvalidDN(text)
            dn = DN.parse(text)
            if inSchema:
                self.context.schema.normalizeDN(dn)
        except InvalidDN as e:
            reason = f" ({e})" if isinstance(text, str) else ""
            raise self.error(key, f"not a DN: {text!r}{reason}") from None
        return dn
