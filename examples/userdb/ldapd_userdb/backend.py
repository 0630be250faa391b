"""
The C{userdb} backend: a web application's own user tables, served as LDAP
entries, so that other applications (Nextcloud, Gitea, Grafana, an SSO)
log their users in against the accounts they already have.

The tables (L{ldapd_userdb.sample.TABLES}) are read on every request: a
change the application makes shows at once. Under the suffix::

    ou=people   uid=<username>   inetOrgPerson, posixAccount (uidNumber = base + id)
    ou=groups   cn=<name>        groupOfNames, member = each member's DN

Binds verify the application's C{pbkdf2_sha256} hashes, through ldapd's
own verifier (in its thread pool, within its cost limits); an inactive
user (C{is_active = 0}) cannot bind. The root DN may add, modify, delete
and rename users and groups, and users change their passwords with
Password Modify: the application's format is written back (see
L{ldapd.backends.kit.ReadWriteMapping.hashPassword}).

Every read and write is a statement on one SQLite connection in the
reactor's thread (as the backend kit asks), in autocommit mode between
writes, so that each read sees what the application committed last.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterable

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer

from ldapd.backends.kit import ReadWriteMapping
from ldapd.dn import DN, InvalidDN, escapeValue
from ldapd.entry import Entry
from ldapd.operation import Operation
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.schema import Schema
from ldapd_userdb.djangohash import ALGORITHM, fromLDAP, makePassword, toLDAP

__all__ = ["UserDBBackend", "UserDBBackendFactory"]

_PERSON = [b"top", b"person", b"organizationalPerson", b"inetOrgPerson", b"posixAccount"]
_GROUP = [b"top", b"groupOfNames"]
#: What a write may set of a user and of a group (the rest is derived).
_USER_WRITABLE = {"objectclass", "uid", "cn", "mail", "userpassword", "sn", "givenname",
                  "displayname", "uidnumber", "gidnumber", "homedirectory"}
_GROUP_WRITABLE = {"objectclass", "cn", "member"}
#: Django's mark of a password that never matches.
_UNUSABLE = "!"
#: Seconds a write waits for the application to release the database.
_BUSY_TIMEOUT = 2.0


class _Transaction:
    """
    An SQLite transaction on the backend's connection.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        # IMMEDIATE: take the write lock now, so that the checks the
        # write makes are not overtaken by the application's writes.
        db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


class UserDBBackend(ReadWriteMapping):
    """
    The users, groups and memberships of an application's SQLite database
    as LDAP entries.
    """

    def __init__(self, suffix: DN, schema: Schema, path: Path, reactor: Any = None,
                 uidNumberBase: int = 10000, iterations: int = 870_000) -> None:
        """
        @param suffix: the normalised suffix (its first RDN a C{dc}).
        @param schema: the directory's schema.
        @param path: the application's database, which must exist.
        @param reactor: the reactor.
        @param uidNumberBase: added to a user's id to make its uidNumber.
        @param iterations: the PBKDF2 iterations of the passwords written.
        """
        super().__init__(suffix, schema, reactor)
        self.path = path
        self.uidNumberBase = uidNumberBase
        self.people = self._ndn(f"ou=people,{suffix}")
        self.groups = self._ndn(f"ou=groups,{suffix}")
        self.hashPassword = lambda password: makePassword(password, iterations).encode("ascii")
        self._db: sqlite3.Connection | None = None

    def _ndn(self, text: str) -> DN:
        return self.schema.normalizeDN(DN.parse(text))

    def open(self) -> defer.Deferred[None]:
        try:
            # mode=rw: a missing file is an error, not a new empty database.
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True,
                                 timeout=_BUSY_TIMEOUT, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("SELECT id, username, email, full_name, password, is_active FROM users "
                       "LIMIT 0")
        except sqlite3.Error as e:
            return defer.fail(RuntimeError(f"userdb: {self.path}: {e}"))
        self._db = db
        return defer.succeed(None)

    def close(self) -> defer.Deferred[None]:
        if self._db is not None:
            self._db.close()
            self._db = None
        return defer.succeed(None)

    @property
    def db(self) -> sqlite3.Connection:
        """
        The open connection.
        """
        if self._db is None:
            raise ldaperrors.LDAPUnavailable("the userdb backend is not open")
        return self._db

    # Rows as entries

    def _entry(self, dn: str, attributes: dict[str, list[bytes]]) -> Entry:
        return Entry(DN.parse(dn), [(k, v) for k, v in attributes.items() if v], self.schema)

    def _fixed(self, ndn: DN) -> Entry | None:
        """
        @return: the suffix's entry or one of the two C{ou}s, for their names.
        """
        if ndn == self.suffix:
            dc = ndn.rdn[0].value.encode("utf-8")
            return self._entry(str(self.suffix), {
                "objectClass": [b"top", b"dcObject", b"organization"], "dc": [dc], "o": [dc]})
        for ou in (self.people, self.groups):
            if ndn == ou:
                return self._entry(str(ou), {"objectClass": [b"top", b"organizationalUnit"],
                                             "ou": [ou.rdn[0].value.encode("utf-8")]})
        return None

    def _user(self, row: sqlite3.Row) -> Entry:
        username, fullName = row["username"], row["full_name"]
        words = fullName.split()
        number = str(self.uidNumberBase + row["id"]).encode("ascii")
        stored = toLDAP(row["password"])
        return self._entry(f"uid={escapeValue(username)},{self.people}", {
            "objectClass": _PERSON,
            "uid": [username.encode("utf-8")],
            "cn": [(fullName or username).encode("utf-8")],
            "sn": [(words[-1] if words else username).encode("utf-8")],
            "givenName": [words[0].encode("utf-8")] if len(words) > 1 else [],
            "displayName": [fullName.encode("utf-8")] if fullName else [],
            "mail": [row["email"].encode("utf-8")] if row["email"] else [],
            "uidNumber": [number],
            "gidNumber": [number],
            "homeDirectory": [f"/home/{username}".encode("utf-8")],
            "userPassword": [stored] if stored is not None else [],
        })

    def _group(self, row: sqlite3.Row) -> Entry:
        members = self.db.execute(
            "SELECT u.username FROM memberships m JOIN users u ON u.id = m.user_id "
            "WHERE m.group_id = ? ORDER BY u.id", (row["id"],))
        return self._entry(f"cn={escapeValue(row['name'])},{self.groups}", {
            "objectClass": _GROUP,
            "cn": [row["name"].encode("utf-8")],
            "member": [f"uid={escapeValue(m['username'])},{self.people}".encode("utf-8")
                       for m in members],
        })

    def _userRow(self, ndn: DN) -> sqlite3.Row | None:
        """
        @return: the user row of a name below C{ou=people}, or C{None}.
        """
        if ndn.parent() != self.people or len(ndn.rdn) != 1 or ndn.rdn[0].type != "uid":
            return None
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM users WHERE lower(username) = ?", (ndn.rdn[0].value,)).fetchone()
        return row

    def _groupRow(self, ndn: DN) -> sqlite3.Row | None:
        if ndn.parent() != self.groups or len(ndn.rdn) != 1 or ndn.rdn[0].type != "cn":
            return None
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM groups WHERE lower(name) = ?", (ndn.rdn[0].value,)).fetchone()
        return row

    # ReadOnlySource

    def getEntry(self, ndn: DN) -> Entry | None:
        fixed = self._fixed(ndn)
        if fixed is not None:
            return fixed
        user = self._userRow(ndn)
        if user is not None:
            return self._user(user)
        group = self._groupRow(ndn)
        return self._group(group) if group is not None else None

    def listChildren(self, ndn: DN) -> Iterable[Entry]:
        if ndn == self.suffix:
            return [e for e in map(self._fixed, (self.people, self.groups)) if e is not None]
        if ndn == self.people:
            return [self._user(r) for r in self.db.execute("SELECT * FROM users ORDER BY id")]
        if ndn == self.groups:
            return [self._group(r) for r in self.db.execute("SELECT * FROM groups ORDER BY id")]
        return []

    def lookup(self, attribute: str, key: object) -> Iterable[Entry] | None:
        """
        Answer equality assertions on the columns: C{uid}, C{mail}, C{cn}
        (a user's full name, or username when it has none; a group's name),
        C{uidNumber} and C{gidNumber} (the user's id), C{member} (the
        groups of a user), C{ou}.
        """
        users = "SELECT * FROM users WHERE "
        if attribute == "uid":
            return self._users(users + "lower(username) = ?", key)
        if attribute == "mail":
            return self._users(users + "lower(email) = ?", key)
        if attribute in ("uidNumber", "gidNumber"):
            assert isinstance(key, int)
            return self._users(users + "id = ?", key - self.uidNumberBase)
        if attribute == "cn":
            found = self._users(users + "lower(full_name) = ? OR (full_name = '' AND "
                                "lower(username) = ?)", key, key)
            return found + [self._group(r) for r in self.db.execute(
                "SELECT * FROM groups WHERE lower(name) = ?", (key,))]
        if attribute == "member":
            try:
                user = self._userRow(self._ndn(str(key)))
            except InvalidDN:
                return []
            if user is None:
                return []
            return [self._group(r) for r in self.db.execute(
                "SELECT g.* FROM groups g JOIN memberships m ON m.group_id = g.id "
                "WHERE m.user_id = ? ORDER BY g.id", (user["id"],))]
        if attribute == "ou":
            return [e for e in map(self._fixed, (self.people, self.groups))
                    if e is not None and e.ndn.rdn[0].value == key]
        return None

    def _users(self, sql: str, *params: object) -> list[Entry]:
        return [self._user(r) for r in self.db.execute(sql, params)]

    def bindEntry(self, ndn: DN) -> Entry | None:
        """
        An inactive user's entry, which binds never match.
        """
        user = self._userRow(ndn)
        return self._user(user) if user is not None and user["is_active"] else None

    # ReadWriteMapping

    def begin(self) -> _Transaction:
        return _Transaction(self.db)

    def addEntry(self, txn: Any, op: Operation, entry: Entry) -> None:
        parent = entry.ndn.parent()
        name = self._rdnValue(entry)
        if parent == self.people:
            self._storable(entry, "uid", _USER_WRITABLE)
            self.db.execute(
                "INSERT INTO users (username, email, full_name, password, is_active) "
                "VALUES (?, ?, ?, ?, 1)",
                (name, _first(entry, "mail"), _first(entry, "cn"),
                 _passwordColumn(entry.get("userPassword"))))
        elif parent == self.groups:
            self._storable(entry, "cn", _GROUP_WRITABLE)
            cursor = self.db.execute("INSERT INTO groups (name) VALUES (?)", (name,))
            self._setMembers(cursor.lastrowid, entry)
        else:
            raise ldaperrors.LDAPUnwillingToPerform(
                f"userdb holds users under {self.people} and groups under {self.groups} only")

    def replaceEntry(self, txn: Any, op: Operation, old: Entry, new: Entry) -> None:
        changed = {at.names[0].lower() for at in old.changedTypes(new) if not at.operational}
        user = self._userRow(old.ndn)
        if user is not None:
            _refuseChanges(changed - {"cn", "mail", "userpassword"})
            self.db.execute(
                "UPDATE users SET email = ?, full_name = ?, password = ? WHERE id = ?",
                (_first(new, "mail"),
                 _first(new, "cn") if "cn" in changed else user["full_name"],
                 _passwordColumn(new.get("userPassword")) if "userpassword" in changed
                 else user["password"],
                 user["id"]))
            return
        group = self._groupRow(old.ndn)
        if group is None:
            _refuseChanges(changed)
            return
        _refuseChanges(changed - {"member"})
        self.db.execute("DELETE FROM memberships WHERE group_id = ?", (group["id"],))
        self._setMembers(group["id"], new)

    def deleteEntry(self, txn: Any, op: Operation, entry: Entry) -> None:
        user, group = self._userRow(entry.ndn), self._groupRow(entry.ndn)
        if user is not None:
            self.db.execute("DELETE FROM users WHERE id = ?", (user["id"],))
        elif group is not None:
            self.db.execute("DELETE FROM groups WHERE id = ?", (group["id"],))
        else:
            raise ldaperrors.LDAPUnwillingToPerform(f"{entry.dn} is part of userdb's layout")

    def renameEntry(self, txn: Any, op: Operation, old: Entry, new: Entry) -> None:
        """
        Rename a user or a group in place (its row keeps its id, and
        everything the application keeps with it); moving one elsewhere
        is refused.
        """
        if new.ndn.parent() != old.ndn.parent():
            raise ldaperrors.LDAPUnwillingToPerform("userdb cannot move entries")
        user, group = self._userRow(old.ndn), self._groupRow(old.ndn)
        name = self._rdnValue(new)
        if user is not None and new.ndn.rdn[0].type == "uid":
            self.db.execute("UPDATE users SET username = ? WHERE id = ?", (name, user["id"]))
        elif group is not None and new.ndn.rdn[0].type == "cn":
            self.db.execute("UPDATE groups SET name = ? WHERE id = ?", (name, group["id"]))
        else:
            raise ldaperrors.LDAPUnwillingToPerform(
                "userdb renames users by uid and groups by cn only")

    def _rdnValue(self, entry: Entry) -> str:
        """
        @return: the value of the entry's RDN as written (a username or
            group name), for an entry named by a single C{uid} or C{cn}.
        """
        rdn = entry.dn.rdn
        if len(rdn) != 1:
            raise ldaperrors.LDAPNamingViolation("userdb entries have single-valued RDNs")
        return rdn[0].value

    def _storable(self, entry: Entry, naming: str, writable: set[str]) -> None:
        if self._ndn(str(entry.dn)).rdn[0].type != naming:
            raise ldaperrors.LDAPNamingViolation(f"entries here are named by {naming}")
        _refuseChanges({a.type.names[0].lower() for a in entry if not a.type.operational}
                       - writable)

    def _setMembers(self, groupId: int | None, group: Entry) -> None:
        ids = []
        for value in group.get("member"):
            try:
                row = self._userRow(self._ndn(value.decode("utf-8")))
            except (InvalidDN, UnicodeDecodeError):
                row = None
            if row is None:
                raise ldaperrors.LDAPConstraintViolation(
                    f"member {value.decode('utf-8', 'replace')}: not a user of {self.people}")
            ids.append((row["id"], groupId))
        self.db.executemany("INSERT OR IGNORE INTO memberships (user_id, group_id) VALUES (?, ?)",
                            ids)


def _first(entry: Entry, name: str) -> str:
    values = entry.get(name)
    return values[0].decode("utf-8") if values else ""


def _refuseChanges(names: set[str]) -> None:
    if names:
        raise ldaperrors.LDAPUnwillingToPerform(
            f"userdb cannot store {', '.join(sorted(names))}")


def _passwordColumn(values: tuple[bytes, ...]) -> str:
    """
    @param values: the C{userPassword} values a write stores: in the
        application's format (the kit hashed their cleartext with the
        backend's C{hashPassword}), or C{{SCHEME}} values.
    @return: the password column's value.
    @raise ldaperrors.LDAPUnwillingToPerform: for a value the application
        could not verify, or more than one.
    """
    if not values:
        return _UNUSABLE
    if len(values) > 1:
        raise ldaperrors.LDAPUnwillingToPerform("userdb keeps one userPassword value")
    value = values[0]
    if value.startswith(ALGORITHM.encode("ascii") + b"$"):
        return value.decode("ascii")
    translated = fromLDAP(value)
    if translated is None:
        raise ldaperrors.LDAPUnwillingToPerform(
            "userdb stores passwords in the application's pbkdf2_sha256 format: send the new "
            "password itself (in cleartext, or as Password Modify's new password)")
    return translated


class UserDBBackendFactory:
    """
    Builds a L{UserDBBackend} from a C{[[database]]} table with C{backend = "userdb"}.
    """

    name = "userdb"
    description = "A web application's SQLite users and groups (Django-style password hashes)."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> UserDBBackend:
        """
        @param table: the backend's keys: C{database} (required: the
            application's SQLite file, relative to the configuration's
            folder), C{uid_number_base} (default 10000),
            C{password_iterations} (PBKDF2 iterations of the passwords
            written; Django 5.1's 870000 by default).
        @param context: the database's context.
        @raise ldapd.registry.ConfigError: for a missing or wrong key.
        """
        config = ConfigTable(table, context, {"database", "uid_number_base", "password_iterations"})
        path = context.resolvePath(config.required("database", str, "the SQLite file's path"))
        base = config.integer("uid_number_base", 10000, minimum=0)
        iterations = config.integer("password_iterations", 870_000, minimum=1)
        assert context.suffix is not None
        if not context.suffix or context.suffix.rdn[0].type != "dc":
            raise context.error("suffix", "userdb serves a suffix whose first RDN is dc=...")
        return UserDBBackend(context.suffix, context.schema, path, context.reactor, base, iterations)
