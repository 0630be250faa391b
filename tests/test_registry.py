"""
Tests for L{ldapd.registry.ConfigTable}: the one reader of configuration
tables, its typed getters and its messages; and for the server's own
tables read through it by L{ldapd.config.loadConfig}.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from ldapd.config import loadConfig
from ldapd.dn import DN
from ldapd.registry import ConfigContext, ConfigError, ConfigTable
from ldapd.schema import Schema

_SCHEMA = Schema.standard()


def _table(table: dict[str, Any], keys: Any = None) -> ConfigTable:
    context = ConfigContext(Path("ldapd.toml"), "plugin[0]", _SCHEMA, task.Clock())
    return ConfigTable(table, context, set(table) if keys is None else keys)


class ConfigTableTests(unittest.SynchronousTestCase):
    """
    L{ConfigTable} reads each kind of value one way, and every problem is a
    L{ConfigError} naming the file, the table, the key and what is wrong.
    """

    def assertProblem(self, table: dict[str, Any], read: Any, message: str) -> None:
        """
        Reading C{table} with C{read} fails with C{message}, after the
        file and the table's position.
        """
        with self.assertRaises(ConfigError) as caught:
            read(_table(table))
        self.assertEqual(str(caught.exception), f"ldapd.toml: plugin[0].{message}")

    def test_unknownKey(self) -> None:
        """
        A key the table may not have is refused, naming it and the keys it
        may have.
        """
        with self.assertRaises(ConfigError) as caught:
            _table({"use_lockuot": True}, {"use_lockout", "last_bind"})
        self.assertEqual(
            str(caught.exception),
            "ldapd.toml: plugin[0].use_lockuot: unknown key (known keys: last_bind, use_lockout)",
        )
        with self.assertRaises(ConfigError) as caught:
            _table({"x": 1}, ())
        self.assertIn("(known keys: none)", str(caught.exception))

    def test_absent(self) -> None:
        """
        An absent key gives the default, whatever it is; C{in} tells whether
        a key is present.
        """
        config = _table({"a": 1}, {"a", "b"})
        self.assertIn("a", config)
        self.assertNotIn("b", config)
        self.assertIsNone(config.string("b"))
        self.assertIs(config.boolean("b", True), True)
        self.assertEqual(config.integer("b", -5, minimum=0), -5)
        self.assertEqual(config.duration("b", 7), 7)
        self.assertEqual(config.choice("b", ["x"], "y"), "y")
        self.assertEqual(config.strings("b", ["z"]), ["z"])
        self.assertEqual(config.tables("b", "tables"), [])
        self.assertIsNone(config.dn("b"))

    def test_booleanIsNotANumber(self) -> None:
        """
        TOML's C{true} and C{false} are not numbers (although Python's
        C{True} is an C{int}), nor is a number a boolean.
        """
        self.assertProblem({"size": True}, lambda c: c.integer("size", 0),
                           "size: must be an integer, not True")
        self.assertProblem({"ttl": False}, lambda c: c.number("ttl", 0),
                           "ttl: must be a number, not False")
        self.assertProblem({"ttl": True}, lambda c: c.duration("ttl", 0),
                           'ttl: must be a duration (e.g. "30s" or a number of seconds), '
                           "0 or more, not True")
        self.assertProblem({"on": 1}, lambda c: c.boolean("on", False),
                           "on: must be a boolean (true or false), not 1")
        self.assertProblem({"on": "yes"}, lambda c: c.boolean("on", False),
                           "on: must be a boolean (true or false), not 'yes'")
        self.assertIs(_table({"on": False}).boolean("on", True), False)

    def test_get(self) -> None:
        """
        L{ConfigTable.get} checks the value's kind, naming what it must be.
        """
        self.assertEqual(_table({"name": "x"}).get("name", str), "x")
        self.assertProblem({"name": 3}, lambda c: c.get("name", str),
                           "name: must be a string, not 3")
        self.assertProblem({"name": 3}, lambda c: c.get("name", str, None, "a name (a string)"),
                           "name: must be a name (a string), not 3")
        self.assertProblem({"t": 1}, lambda c: c.get("t", (str, list)),
                           "t: must be a string or a list, not 1")

    def test_required(self) -> None:
        """
        A required key must be present, and of its kind.
        """
        self.assertEqual(_table({"file": "a"}).required("file", str), "a")
        self.assertProblem({}, lambda c: c.required("file", str), "file: is required")
        self.assertProblem({}, lambda c: c.required("file", str, "a path"),
                           "file: is required (a path)")
        self.assertProblem({"file": 1}, lambda c: c.required("file", str),
                           "file: must be a string, not 1")

    def test_integerBounds(self) -> None:
        """
        An integer out of its bounds is refused, saying which they are.
        """
        self.assertEqual(_table({"n": 4}).integer("n", 0, minimum=0, maximum=4), 4)
        self.assertProblem({"n": -1}, lambda c: c.integer("n", 0, minimum=0),
                           "n: must not be negative")
        self.assertProblem({"n": 0}, lambda c: c.integer("n", 1, minimum=1),
                           "n: must be at least 1")
        self.assertProblem({"n": 5}, lambda c: c.integer("n", 0, minimum=0, maximum=4),
                           "n: must be from 0 to 4")
        self.assertProblem({"n": 5000}, lambda c: c.integer(
            "n", 0, minimum=0, maximum=4095, expected="a server ID from 0 to 4095"),
            "n: must be a server ID from 0 to 4095")
        self.assertProblem({"n": 1.5}, lambda c: c.integer("n", 0),
                           "n: must be an integer, not 1.5")

    def test_number(self) -> None:
        """
        A number is an integer or a float, read as a float.
        """
        config = _table({"a": 2, "b": 0.5})
        self.assertEqual((config.number("a", 0), config.number("b", 0)), (2.0, 0.5))
        self.assertIsInstance(config.number("a", 0), float)
        self.assertProblem({"a": -0.5}, lambda c: c.number("a", 0, minimum=0),
                           "a: must not be negative")

    def test_duration(self) -> None:
        """
        A duration is a number of seconds or a number with a unit.
        """
        config = _table({"a": "500ms", "b": "5m", "c": "2h", "d": "7d", "e": 30, "f": 1.5})
        self.assertEqual(
            [config.duration(k, 0) for k in "abcdef"], [0.5, 300, 7200, 604800, 30, 1.5])
        self.assertProblem({"a": "soon"}, lambda c: c.duration("a", 0),
                           "a: 'soon' is not a duration (e.g. 30s, 5m, 2h, 7d)")
        self.assertProblem({"a": -1}, lambda c: c.duration("a", 0),
                           'a: must be a duration (e.g. "30s" or a number of seconds), 0 or more')

    def test_choice(self) -> None:
        """
        A choice is one of its strings.
        """
        self.assertEqual(_table({"mode": "b"}).choice("mode", ["a", "b"], "a"), "b")
        self.assertProblem({"mode": "c"}, lambda c: c.choice("mode", ["a", "b", "d"], "a"),
                           "mode: 'c' is not one of \"a\", \"b\" or \"d\"")
        self.assertProblem({"mode": "c"}, lambda c: c.choice("mode", ["a"], "a"),
                           "mode: 'c' is not one of \"a\"")
        self.assertProblem({"mode": 1}, lambda c: c.choice("mode", ["a"], "a"),
                           "mode: must be a string, not 1")

    def test_strings(self) -> None:
        """
        A list of strings, non-empty ones in a non-empty list if asked.
        """
        self.assertEqual(_table({"a": ["x", ""]}).strings("a", []), ["x", ""])
        self.assertProblem({"a": "x"}, lambda c: c.strings("a", []),
                           "a: must be a list of strings")
        self.assertProblem({"a": ["x", 1]}, lambda c: c.strings("a", [], "attribute names"),
                           "a: must be attribute names")
        self.assertProblem({"a": ["x", ""]}, lambda c: c.strings("a", [], nonEmpty=True),
                           "a: must be a list of strings")

    def test_tables(self) -> None:
        """
        An array of tables is a list of tables.
        """
        self.assertEqual(_table({"a": [{"b": 1}]}).tables("a", "tables"), [{"b": 1}])
        self.assertProblem({"a": [{"b": 1}, 2]}, lambda c: c.tables("a", "tables"),
                           "a: must be tables")
        self.assertProblem({"a": {"b": 1}}, lambda c: c.tables("a", "tables"),
                           "a: must be tables, not {'b': 1}")

    def test_dn(self) -> None:
        """
        A DN is a string the schema can normalise, or, from another
        server, any well-formed DN.
        """
        self.assertEqual(_table({"a": "cn=x,dc=example"}).dn("a"), DN.parse("cn=x,dc=example"))
        self.assertEqual(_table({"a": "nosuchtype=x"}).dn("a", inSchema=False),
                         DN.parse("nosuchtype=x"))
        self.assertProblem({"a": 1}, lambda c: c.dn("a"), "a: not a DN: 1")
        with self.assertRaises(ConfigError) as caught:
            _table({"a": "no dn"}).dn("a")
        self.assertIn("plugin[0].a: not a DN: 'no dn' (invalid DN", str(caught.exception))
        with self.assertRaises(ConfigError):
            _table({"a": "nosuchtype=x"}).dn("a")

    def test_split(self) -> None:
        """
        L{ConfigTable.split} reads some keys of a table and leaves the rest
        to another reader.
        """
        config, rest = ConfigTable.split({"name": "acl", "rules": []}, _table({}).context,
                                         {"name"})
        self.assertEqual(config.string("name"), "acl")
        self.assertEqual(rest, {"rules": []})

    def test_within(self) -> None:
        """
        The context of a table within another names its keys below it.
        """
        context = ConfigContext(Path("ldapd.toml"), "server", _SCHEMA, None).within("tls")
        self.assertEqual(str(context.error("ciphers", "bad")), "ldapd.toml: server.tls.ciphers: bad")


class ServerTablesTests(unittest.SynchronousTestCase):
    """
    L{loadConfig} reads the server's own tables through L{ConfigTable}: the
    same strictness as every plugin's and backend's.
    """

    def load(self, server: str = "", database: str = "", rest: str = "", top: str = "") -> Any:
        folder = Path(tempfile.mkdtemp(prefix="ldapd-registry-"))
        self.addCleanup(shutil.rmtree, folder)
        path = folder / "ldapd.toml"
        path.write_text(f'{top}\n[server]\nlisten = ["tcp:10389"]\n{server}\n'
                        f'[[database]]\nsuffix = "dc=example,dc=com"\n{database}\n{rest}')
        return loadConfig(path, task.Clock())

    def assertProblem(self, message: str, **parts: str) -> None:
        with self.assertRaises(ConfigError) as caught:
            self.load(**parts)
        self.assertIn(message, str(caught.exception))

    def test_strict(self) -> None:
        """
        A boolean where a number goes, a number where a boolean goes, and
        a misspelt key are refused in every table, naming the key.
        """
        self.assertProblem("server.size_limit: must be an integer, not True",
                           server="size_limit = true")
        self.assertProblem("server.allow_anonymous: must be a boolean", server="allow_anonymous = 1")
        self.assertProblem("server.password_limits.max_concurrent: must be an integer",
                           server="password_limits = { max_concurrent = true }")
        self.assertProblem("server.sizelimit: unknown key", server="sizelimit = 5")
        self.assertProblem("database[0].root_dn: not a DN", database='root_dn = "x"')
        self.assertProblem("plugin[0].use_lockout: must be a boolean",
                           rest='[[plugin]]\nname = "ppolicy"\nuse_lockout = 1\n')
        self.assertProblem("plugin[0].stored_rules_ttl: must be a number of seconds",
                           rest='[[plugin]]\nname = "acl"\nstored_rules_ttl = true\n')
        self.assertProblem("plugin[0].name: is required", rest="[[plugin]]\n")
        self.assertProblem("plugin: must be an array of tables ([[plugin]])", top="plugin = 1\n")

    def test_good(self) -> None:
        """
        Well-typed values are read.
        """
        config = self.load(server="size_limit = 7\nallow_anonymous = false\n"
                                  "password_limits = { max_concurrent = 2 }")
        self.assertEqual(config.directory.limits.sizeLimit, 7)
        self.assertEqual(config.directory.passwordVerifier.limits.maxConcurrent, 2)
