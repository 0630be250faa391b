"""
What every backend shares: password checking for simple binds, and the
matched DN of a name that does not exist.
"""

from __future__ import annotations

from typing import Any, Callable

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer, threads

from ldapd import passwords
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.results import NoSuchObject

__all__ = ["checkPassword", "noSuchObject"]


def checkPassword(reactor: Any, entry: Entry | None, password: bytes) -> defer.Deferred[Entry]:
    """
    Verify a simple bind's password against an entry's C{userPassword} values.
    Deliberately slow schemes (argon2, bcrypt, PBKDF2) are verified in the
    reactor's thread pool so that a bind never stalls other clients.

    @param reactor: the reactor, for its thread pool.
    @param entry: the entry bound to, or C{None} if it does not exist.
    @param password: the password given.
    @return: a Deferred firing with C{entry}, or failing with
        C{LDAPInvalidCredentials} (the same for a missing entry, so that the
        answer does not disclose which names exist).
    """
    stored = entry.get("userPassword") if entry is not None else ()
    cheap = [v for v in stored if not passwords.isExpensive(v)]
    costly = [v for v in stored if passwords.isExpensive(v)]
    if any(passwords.verifyPassword(v, password) for v in cheap):
        return defer.succeed(entry)  # type: ignore[arg-type]
    if not costly:
        return defer.fail(ldaperrors.LDAPInvalidCredentials())

    def verifyAll() -> bool:
        return any(passwords.verifyPassword(v, password) for v in costly)

    def _cbChecked(ok: bool) -> Entry:
        if not ok:
            raise ldaperrors.LDAPInvalidCredentials()
        return entry  # type: ignore[return-value]

    return threads.deferToThreadPool(reactor, reactor.getThreadPool(), verifyAll).addCallback(
        _cbChecked
    )


def noSuchObject(ndn: DN, suffix: DN, lookup: Callable[[DN], Entry | None]) -> NoSuchObject:
    """
    The noSuchObject error for a name, with the deepest existing superior as
    matched DN (RFC 4511 §4.1.9).

    @param ndn: the normalised name that does not exist.
    @param suffix: the normalised suffix of the backend.
    @param lookup: finds an entry by normalised name.
    @return: the error to raise.
    """
    parent = ndn.parent()
    while len(parent) >= len(suffix) and parent.isWithin(suffix):
        found = lookup(parent)
        if found is not None:
            return NoSuchObject("no such object", found.dn)
        if not parent:
            break
        parent = parent.parent()
    return NoSuchObject("no such object")
