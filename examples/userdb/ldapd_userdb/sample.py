"""
The web application's side: its tables (as a Django project with a
C{users} app might have them), and a sample database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ldapd_userdb.djangohash import makePassword

__all__ = ["TABLES", "addGroup", "addUser", "makeSampleDatabase"]

#: The application's tables.
TABLES = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL DEFAULT '',
    full_name TEXT NOT NULL DEFAULT '',
    password TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE memberships (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);
"""


def addUser(db: sqlite3.Connection, username: str, password: bytes, email: str = "",
            fullName: str = "", active: bool = True, iterations: int = 870_000) -> int:
    """
    Add a user as the application would.

    @return: the user's id.
    """
    cursor = db.execute(
        "INSERT INTO users (username, email, full_name, password, is_active) VALUES (?, ?, ?, ?, ?)",
        (username, email, fullName, makePassword(password, iterations), int(active)))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def addGroup(db: sqlite3.Connection, name: str, members: list[int]) -> int:
    """
    Add a group with members, by user id.

    @return: the group's id.
    """
    cursor = db.execute("INSERT INTO groups (name) VALUES (?)", (name,))
    assert cursor.lastrowid is not None
    db.executemany("INSERT INTO memberships (user_id, group_id) VALUES (?, ?)",
                   [(user, cursor.lastrowid) for user in members])
    return cursor.lastrowid


def makeSampleDatabase(path: Path, iterations: int = 870_000) -> None:
    """
    Make a database with the user C{ada} (password C{lovelace}, email
    C{ada@example.com}) in the group C{engineers}.

    @param path: the file to create; it must not exist.
    @param iterations: the PBKDF2 iterations of the password (Django 5.1's
        default by default).
    @raise FileExistsError: if it exists.
    """
    if path.exists():
        raise FileExistsError(f"{path} exists")
    db = sqlite3.connect(path)
    try:
        with db:
            db.executescript(TABLES)
            ada = addUser(db, "ada", b"lovelace", "ada@example.com", "Ada Lovelace",
                          iterations=iterations)
            addGroup(db, "engineers", [ada])
    finally:
        db.close()
