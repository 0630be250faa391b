"""
Binding: a Bind request, and the one path every password check takes.

L{Binder} carries out simple and SASL binds for a
L{Directory<ldapd.directory.Directory>} and checks passwords
(L{Binder.verifyPassword}): a root DN's against its database's
configuration, anyone else's through the backend that holds the entry,
with the plugins' C{authenticate} hooks around the check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ldaptor.protocols.ldap import ldaperrors

from ldapd.dn import DN
from ldapd.operation import Identity, Operation
from ldapd.passwordcheck import BIND, PasswordCheck
from ldapd.requests import BindRequest
from ldapd.results import SUCCESS, Outcome, Reply, resultOf

if TYPE_CHECKING:
    from ldapd.directory import Database, Directory

__all__ = ["Binder"]


class Binder:
    """
    Binds and password checks for one L{Directory<ldapd.directory.Directory>}.
    """

    def __init__(self, directory: Directory) -> None:
        """
        @param directory: the directory whose databases, plugins and bind
            rules (C{allowAnonymous}, C{allowUnauthenticatedBind},
            C{authentication}) apply.
        """
        self._directory = directory
        # The directory's cache of parsed request DNs, shared with its other operations.
        self._parseDN = directory._parseDN

    async def handle(self, op: Operation, reply: Reply) -> Outcome:
        """
        Carry out a Bind request: the connection's identity is anonymous
        until the bind succeeds, and becomes the one it authenticates.

        @param op: the bind.
        @param reply: its reply function.
        @return: how it ended.
        """
        directory = self._directory
        request = op.request
        assert isinstance(request, BindRequest)
        connection = op.connection
        connection.identity = Identity()
        if request.version != 3:
            raise ldaperrors.LDAPProtocolError("requested protocol version not supported")
        request = await directory.plugins.pre("bind", op, request)
        if request.sasl:
            # Who it bound as is the access log's authzdn (accesslog.logResult).
            connection.identity = await directory.authentication.bind(directory, op)
            return Outcome()
        password = request.password or b""
        if not request.dn:
            if password:
                # A password without a name authenticates no one (slapd: 49).
                raise ldaperrors.LDAPInvalidCredentials()
            if not directory.allowAnonymous:
                raise ldaperrors.LDAPInappropriateAuthentication("anonymous bind disallowed")
            return Outcome()
        dn, ndn = self._parseDN(request.dn)
        if not password:
            if directory.allowUnauthenticatedBind:
                return Outcome()
            raise ldaperrors.LDAPUnwillingToPerform(
                "unauthenticated bind (DN with no password) disallowed"
            )
        directory.authentication.checkSimpleBind(op)
        connection.identity = await self.verifyPassword(op, ndn, password)
        return Outcome()

    async def verifyPassword(
        self, op: Operation, ndn: DN, password: bytes, purpose: str = BIND
    ) -> Identity:
        """
        Check a password for a DN: the one path every password check takes
        (simple binds, SASL PLAIN, the old password of a change; see
        L{ldapd.passwordcheck}). The plugins' C{pre_authenticate} hooks run
        first and may refuse (access control, a locked account); then a
        root DN's password is checked against its configuration, any
        other against its entry; then the C{post_authenticate} hooks are
        told the outcome (0, invalidCredentials, or another error) to
        record it, whatever it was.

        @param op: the operation the check is made for.
        @param ndn: the normalised DN.
        @param password: the password given.
        @param purpose: L{ldapd.passwordcheck.BIND} or
            L{ldapd.passwordcheck.CHANGE}.
        @return: the identity it authenticates.
        @raise ldaperrors.LDAPInvalidCredentials: if it does not.
        """
        resultCode = SUCCESS.code
        try:
            check = await self._directory.plugins.pre(
                "authenticate", op, PasswordCheck(ndn, password, purpose))
            return await self._checkPassword(op, check.ndn, check.password)
        except Exception as e:
            resultCode = resultOf(e, op.timedOut).code
            raise
        finally:
            await self._directory.plugins.post("authenticate", op, resultCode)

    async def _checkPassword(self, op: Operation, ndn: DN, password: bytes) -> Identity:
        directory = self._directory
        for db in directory.databases:
            if db.normalizedRootDN is not None and db.normalizedRootDN == ndn:
                await self._checkRootPassword(db, password)
                return Identity(db.rootDN, ndn, isRoot=True)
        holder = directory.databaseFor(ndn)
        if holder is None:
            raise ldaperrors.LDAPInvalidCredentials()
        entry = await holder.backend.authenticate(op, ndn, password)
        return Identity(entry.dn, entry.ndn)

    async def _checkRootPassword(self, db: Database, password: bytes) -> None:
        stored = db.rootPassword
        if stored is None:
            raise ldaperrors.LDAPInvalidCredentials()
        if not await self._directory.passwordVerifier.verify((stored,), password, db.normalizedRootDN):
            raise ldaperrors.LDAPInvalidCredentials()

