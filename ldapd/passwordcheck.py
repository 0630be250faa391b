"""
What the plugins see of a password check.

Every check of a password against an account goes through one path,
L{ldapd.directory.Directory.verifyPassword}: simple binds, SASL PLAIN, and
the old password that a Password Modify request (or a Modify that deletes
the old value) gives to prove its right to change it. Around each, the
directory runs the plugins' C{pre_authenticate(op, check)} hooks (which may
refuse, with invalidCredentials: no access, a locked account) and their
C{post_authenticate(op, resultCode)} hooks (which record the outcome), so
that access control and password policy hold for every way of trying a
password, and no caller can forget them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ldapd.dn import DN

__all__ = ["BIND", "CHANGE", "PasswordCheck"]

#: A check that authenticates the client (a simple bind, SASL PLAIN): the
#: client is anonymous until it succeeds.
BIND = "bind"

#: A check of an account's current password before it is changed: the
#: client is the operation's identity, and must be allowed to change it.
CHANGE = "change"


@dataclass(frozen=True)
class PasswordCheck:
    """
    One password check, as the C{pre_authenticate} hooks are given it.

    @ivar ndn: the normalised DN of the account.
    @ivar password: the password given.
    @ivar purpose: L{BIND} or L{CHANGE}.
    """

    ndn: DN
    # Never in a repr, so never in a log line.
    password: bytes = field(repr=False)
    purpose: str = BIND

    @property
    def isBind(self) -> bool:
        """
        Whether the check authenticates the client.
        """
        return self.purpose == BIND
