"""
An ldapd backend that serves a web application's user tables (users,
groups, memberships in SQLite, passwords in Django's C{pbkdf2_sha256}
format) as LDAP entries: see L{ldapd_userdb.backend}.
"""

from ldapd_userdb.backend import UserDBBackend, UserDBBackendFactory

__all__ = ["UserDBBackend", "UserDBBackendFactory"]
