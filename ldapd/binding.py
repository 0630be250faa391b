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
from twisted.logger import Logger

from ldapd import passwords
from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.operation import Identity, Operation
from ldapd.passwordcheck import BIND, PasswordCheck
from ldapd.requests import BindRequest
from ldapd.results import SUCCESS, Outcome, Reply, resultOf

if TYPE_CHECKING:
    from ldapd.directory import Database, Directory

__all__ = ["Binder"]

_log = Logger()


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
        L{ldapd.passwordcheck}). For a bind, the directory's bind throttle
        (L{ldapd.throttle}) may refuse it first, unchecked; then the
        plugins' C{pre_authenticate} hooks run and may refuse (access
        control, a locked account); then a root DN's password is checked
        against its configuration, any other against its entry; then the
        C{post_authenticate} hooks are told the outcome (0,
        invalidCredentials, or another error) to record it, whatever it
        was. A bind that succeeds against an entry whose password is stored
        in another scheme than C{password_hash} has it stored anew when
        the directory rehashes on bind (L{_rehash}).

        @param op: the operation the check is made for.
        @param ndn: the normalised DN.
        @param password: the password given.
        @param purpose: L{ldapd.passwordcheck.BIND} or
            L{ldapd.passwordcheck.CHANGE}.
        @return: the identity it authenticates.
        @raise ldaperrors.LDAPInvalidCredentials: if it does not.
        """
        directory = self._directory
        throttle = directory.bindThrottle if purpose == BIND else None
        address = op.connection.address
        if throttle is not None:
            refusal = throttle.refusal(address, ndn)
            if refusal is not None:
                directory.statistics.throttledBinds += 1
                _log.warn("conn={conn} BIND dn={dn} from {peer} throttled, password not "
                          "checked: {refusal}", conn=op.connection.id, dn=str(ndn),
                          peer=op.connection.peer, refusal=refusal)
                raise ldaperrors.LDAPInvalidCredentials()
        resultCode = SUCCESS.code
        try:
            check = await directory.plugins.pre(
                "authenticate", op, PasswordCheck(ndn, password, purpose))
            identity, entry = await self._checkPassword(op, check.ndn, check.password)
        except Exception as e:
            resultCode = resultOf(e, op.timedOut).code
            raise
        finally:
            if throttle is not None:
                if resultCode == ldaperrors.LDAPInvalidCredentials.resultCode:
                    throttle.failed(address, ndn)
                elif resultCode == SUCCESS.code:
                    throttle.succeeded(ndn)
            await directory.plugins.post("authenticate", op, resultCode)
        if entry is not None and purpose == BIND and directory.rehashOnBind:
            await self._rehash(identity, entry, check.password)
        return identity

    async def _checkPassword(
        self, op: Operation, ndn: DN, password: bytes
    ) -> tuple[Identity, Entry | None]:
        """
        @return: the identity authenticated, and the entry whose password
            matched (C{None} for a root DN's configured password).
        """
        directory = self._directory
        for db in directory.databases:
            if db.normalizedRootDN is not None and db.normalizedRootDN == ndn:
                await self._checkRootPassword(db, password)
                return Identity(db.rootDN, ndn, isRoot=True), None
        holder = directory.databaseFor(ndn)
        if holder is None:
            raise ldaperrors.LDAPInvalidCredentials()
        entry = await holder.backend.authenticate(op, ndn, password)
        return Identity(entry.dn, entry.ndn), entry

    async def _checkRootPassword(self, db: Database, password: bytes) -> None:
        stored = db.rootPassword
        if stored is None:
            raise ldaperrors.LDAPInvalidCredentials()
        if not await self._directory.passwordVerifier.verify((stored,), password, db.normalizedRootDN):
            raise ldaperrors.LDAPInvalidCredentials()

    async def _rehash(self, identity: Identity, entry: Entry, password: bytes) -> None:
        """
        Store an entry's password anew in C{password_hash}'s scheme, once
        a bind has shown it: as 389 DS's C{nsslapd-enable-upgrade-hash},
        only for an entry with one C{userPassword} value, whose scheme
        (cleartext counting as one) is another. The new value replaces
        the old one in one modify (delete the old value, add the new), an
        internal write through the Directory's write pipeline: stamped
        (C{modifiersName} is the account itself, whose password made the
        value), in the backend's transaction with the plugins' hooks (the
        changelog records it, so replicas get it), without access rules or
        the password policy (it is no password change). If the password
        changed in the meantime the delete fails and nothing is written.
        A replica's copy is left alone: the provider rehashes when the
        account binds there. The bind succeeds whatever happens here;
        failures are logged.

        @param identity: the identity the bind authenticated.
        @param entry: its entry, as the password was checked against it.
        @param password: the password, which matched.
        """
        directory = self._directory
        stored = entry.get("userPassword")
        if len(stored) != 1:
            return
        old = stored[0]
        target = directory.passwordHash.upper()
        try:
            scheme = passwords.schemeOf(old)
        except passwords.UnknownScheme:
            return
        db = directory.databaseFor(entry.ndn)
        if scheme == target or db is None or db.replica is not None:
            return
        write = directory.internalOperation()
        write.identity = identity
        try:
            new = await directory.storedPassword(write, entry.ndn, password, scheme=target)
            if passwords.schemeOf(new) == scheme:
                # A backend that keeps passwords in a format of its own
                # (IPasswordStorage) made this one, in the same scheme.
                return
            await directory.modify(write, entry.ndn, [
                Modification("delete", "userPassword", (old,)),
                Modification("add", "userPassword", (new,)),
            ])
        except ldaperrors.LDAPNoSuchAttribute:
            _log.info("password of {dn} not rehashed: it changed during the bind",
                      dn=str(entry.dn))
            return
        except Exception:
            _log.failure("password of {dn} not rehashed", dn=str(entry.dn))
            return
        _log.info("password of {dn} rehashed from {old} to {new}", dn=str(entry.dn),
                  old=scheme or "cleartext", new=target)
