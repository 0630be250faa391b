"""
LDAP transactions (RFC 5805), as slapd carries them out.

A client starts a transaction with the Start Transaction extended operation
and gets its identifier; each update (add, delete, modify, modify DN) that
carries the transaction specification control with that identifier is
queued, and answered success at once, saying it will be made as part of the
transaction (slapd's answer: RFC 5805 §2.3 leaves the server to reply
before the transaction is settled). End Transaction with C{commit} TRUE
carries out the queued updates, in order, in one transaction of their
database's backend (an L{IWriteBatch}), each through the whole write
pipeline: the pre hooks, the stamps, the plugins' C{check_*} and C{txn_*}
hooks inside the backend's transaction. The first that fails rolls back
everything, and End Transaction answers its result code with its message id;
otherwise everything commits at once and subscribers (changelog, syncrepl,
persistent searches) are told of the changes once it has. C{commit} FALSE
drops the queue.

As slapd: one transaction at a time per connection (a second Start is
busy, 51); a transaction spans one database (affectsMultipleDSAs, 71,
otherwise), whose backend must offer write batches (unwillingToPerform, 53:
not the proxy); an update naming no transaction under way, or End naming
another, is slapd's invalid transaction identifier (0x4121); a commit with
nothing queued is operationsError. Unlike slapd, a transaction holds at
most L{MAX_UPDATES} updates (adminLimitExceeded, 11, for one more), and a
Cancel or Abandon of End Transaction before the commit rolls it back. A
transaction is forgotten when its connection closes.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar
from weakref import WeakKeyDictionary

from ldaptor.protocols import pureber
from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer

from ldapd._codec import Control, decodeSequence, encodeControls, encodeSequence, integer
from ldapd.extensions import ControlType, ExtendedOperation, ExtendedOutcome
from ldapd.interfaces import IWriteBatch, IWriteBatches
from ldapd.operation import Operation
from ldapd.requests import ExtendedRequest

if TYPE_CHECKING:
    from ldapd.directory import Database, Directory

__all__ = [
    "END_OPERATION",
    "END_TRANSACTION",
    "MAX_UPDATES",
    "SPECIFICATION_CONTROL",
    "START_OPERATION",
    "START_TRANSACTION",
    "TRANSACTION_SPECIFICATION",
    "Transaction",
    "TransactionIdInvalid",
    "TransactionSpecification",
    "WriteGroup",
    "committing",
    "decodeSpecification",
    "endTransaction",
    "inOneBatch",
    "parseEnd",
    "queueUpdate",
    "startTransaction",
]

START_TRANSACTION = "1.3.6.1.1.21.1"
TRANSACTION_SPECIFICATION = "1.3.6.1.1.21.2"
END_TRANSACTION = "1.3.6.1.1.21.3"

#: The most updates one transaction holds.
MAX_UPDATES = 1000

_T = TypeVar("_T")

_UPDATE_OPERATIONS = frozenset({"add", "delete", "modify", "rename"})


class TransactionIdInvalid(ldaperrors.LDAPException):
    """
    The transaction an update or End Transaction names is not under way on
    the connection: slapd's C{LDAP_TXN_ID_INVALID}.
    """

    resultCode = 0x4121
    name = b"transactionIdInvalid"


@dataclass(frozen=True)
class TransactionSpecification:
    """
    The transaction specification control (RFC 5805 §2.2).

    @ivar identifier: the transaction's identifier.
    """

    identifier: bytes


def decodeSpecification(value: bytes | None, critical: bool) -> TransactionSpecification:
    """
    Decode a transaction specification control, whose value is the
    transaction's identifier.

    @raise ValueError: if it is not critical (RFC 5805 §2.2: it MUST be) or
        has no value; the update fails with protocolError, as in slapd.
    """
    if not critical:
        raise ValueError("the transaction specification control must be critical")
    if value is None:
        raise ValueError("no transaction identifier")
    return TransactionSpecification(value)


class Transaction:
    """
    A transaction under way on a connection.

    @ivar identifier: its identifier.
    @ivar updates: the updates queued, in order.
    @ivar database: the database they write to, once one is queued.
    @ivar settling: whether End Transaction is carrying it out.
    """

    def __init__(self, identifier: bytes) -> None:
        self.identifier = identifier
        self.updates: list[Operation] = []
        self.database: Database | None = None
        self.settling = False


class WriteGroup:
    """
    Where the writes of a committing transaction go: one batch of its
    database's backend, and the announcements of its changes, made once
    the batch has committed.

    @ivar database: the database.
    @ivar batch: the backend's L{IWriteBatch}.
    """

    def __init__(self, database: Database, batch: IWriteBatch) -> None:
        self.database = database
        self.batch = batch
        self._announcements: list[Callable[[], None]] = []

    def batchFor(self, db: Database) -> IWriteBatch:
        """
        @return: the batch a write to C{db} is made in.
        @raise ldaperrors.LDAPAffectsMultipleDSAs: if C{db} is another
            database (a plugin's write elsewhere).
        """
        if db is not self.database:
            raise ldaperrors.LDAPAffectsMultipleDSAs(
                "transaction cannot span multiple database contexts")
        return self.batch

    def committed(self, announce: Callable[[], None]) -> None:
        """
        @param announce: tells subscribers of one write, once the batch
            has committed.
        """
        self._announcements.append(announce)

    def announce(self) -> None:
        """
        Tell subscribers of every write, in order.
        """
        announcements, self._announcements = self._announcements, []
        for announce in announcements:
            announce()


#: The write group of the transaction whose updates the running code carries
#: out (L{committing}); each client operation runs in a context of its own.
_committing: ContextVar[WriteGroup | None] = ContextVar("ldapd.transactions.committing",
                                                       default=None)


def committing() -> WriteGroup | None:
    """
    @return: the write group of the transaction whose updates the running
        code carries out, or C{None}: while End Transaction commits, the
        reads (L{Directory.get<ldapd.directory.Directory.get>}) and writes
        of the transaction's database made on its behalf, the plugins' hooks
        included, go through the group's batch and see its earlier writes.
    """
    return _committing.get()


#: One committing transaction at a time per backend: a backend makes one
#: write batch at a time.
_turns: WeakKeyDictionary[Any, defer.DeferredLock] = WeakKeyDictionary()


def _turn(backend: Any) -> defer.DeferredLock:
    lock = _turns.get(backend)
    if lock is None:
        lock = _turns[backend] = defer.DeferredLock()
    return lock


async def queueUpdate(directory: Directory, op: Operation,
                      specification: TransactionSpecification) -> None:
    """
    The update handler of the transaction specification control
    (L{ldapd.extensions.UpdateHandler}): queue the update into its
    transaction.

    @raise TransactionIdInvalid: if its transaction is not under way.
    @raise ldaperrors.LDAPException: if it may not be part of it.
    """
    transaction = op.connection.transaction
    if (transaction is None or transaction.settling
            or transaction.identifier != specification.identifier):
        raise TransactionIdInvalid("invalid transaction identifier")
    db = directory.updateDatabase(op)
    if transaction.database is None:
        if not IWriteBatches.providedBy(db.backend):
            raise ldaperrors.LDAPUnwillingToPerform("backend doesn't support transactions")
        transaction.database = db
    elif db is not transaction.database:
        raise ldaperrors.LDAPAffectsMultipleDSAs(
            "transaction cannot span multiple database contexts")
    if len(transaction.updates) >= MAX_UPDATES:
        raise ldaperrors.LDAPAdminLimitExceeded(
            f"a transaction holds at most {MAX_UPDATES} updates")
    transaction.updates.append(op)


async def startTransaction(directory: Directory, op: Operation) -> ExtendedOutcome:
    """
    Start Transaction (RFC 5805 §2.1): begin a transaction on the
    connection, answering its identifier.

    @raise ldaperrors.LDAPProtocolError: for a request with a value.
    @raise ldaperrors.LDAPBusy: if one is under way already.
    """
    assert isinstance(op.request, ExtendedRequest)
    if op.request.value is not None:
        raise ldaperrors.LDAPProtocolError("no request data expected")
    connection = op.connection
    if connection.transaction is not None:
        raise ldaperrors.LDAPBusy("Too many transactions")
    identifier = str(op.messageId).encode("ascii")
    connection.transaction = Transaction(identifier)
    return ExtendedOutcome(value=identifier)


def parseEnd(value: bytes | None) -> tuple[bool, bytes]:
    """
    Decode an End Transaction request value (RFC 5805 §2.3):
    C{SEQUENCE { commit BOOLEAN DEFAULT TRUE, identifier OCTET STRING }}.

    @return: whether to commit, and the identifier.
    @raise ldaperrors.LDAPProtocolError: if it cannot be decoded.
    """
    if not value:
        raise ldaperrors.LDAPProtocolError("request data expected")
    try:
        parts = decodeSequence(value)
    except ValueError as e:
        raise ldaperrors.LDAPProtocolError(f"end transaction: {e}") from None
    commit = True
    if parts and type(parts[0]) is pureber.BERBoolean:
        commit = bool(parts.pop(0).value)
    if len(parts) != 1 or type(parts[0]) is not pureber.BEROctetString:
        raise ldaperrors.LDAPProtocolError("end transaction: malformed request value")
    return commit, parts[0].value


async def endTransaction(directory: Directory, op: Operation) -> ExtendedOutcome:
    """
    End Transaction (RFC 5805 §2.3): commit or abort the connection's
    transaction.

    @return: on commit, the response controls of the updates, if any; when
        an update fails, the outcome carries its error, and the value its
        message id.
    @raise TransactionIdInvalid: if the transaction named is not under way.
    @raise ldaperrors.LDAPOperationsError: for a commit with no update.
    """
    assert isinstance(op.request, ExtendedRequest)
    commit, identifier = parseEnd(op.request.value)
    connection = op.connection
    transaction = connection.transaction
    if transaction is None or transaction.settling or transaction.identifier != identifier:
        raise TransactionIdInvalid("invalid transaction identifier")
    transaction.settling = True
    try:
        if not commit:
            return ExtendedOutcome()
        if not transaction.updates:
            raise ldaperrors.LDAPOperationsError("no updates to commit")
        return await _commit(directory, op, transaction)
    finally:
        connection.transaction = None


async def inOneBatch(db: Database, writes: Callable[[WriteGroup], Awaitable[_T]]) -> _T:
    """
    Make writes in one batch of a database's backend, committed together
    or not at all: an LDAP transaction's updates, and a seed LDIF, which
    must not leave half its entries behind.

    While C{writes} runs, the writes and reads the directory makes for
    C{db} go through the batch (L{committing}); subscribers are told of the
    changes once the batch has committed. One batch at a time per backend.

    @param db: the database; its backend must offer L{IWriteBatches}.
    @param writes: called with the write group; makes the writes.
    @return: what C{writes} returned, once the batch has committed.
    @raise BaseException: what C{writes} or the commit raised, after the
        batch has been rolled back.
    """
    turn = _turn(db.backend)
    await turn.acquire()
    try:
        group = WriteGroup(db, IWriteBatches(db.backend).batch())
        carrying = _committing.set(group)
        try:
            result = await writes(group)
        except BaseException:
            await group.batch.rollback()
            raise
        finally:
            _committing.reset(carrying)
        await group.batch.commit()
    finally:
        turn.release()
    group.announce()
    return result


class _UpdateFailed(Exception):
    """
    An update of a committing transaction failed: roll it all back, and
    answer End Transaction with the update's message id and error.
    """

    def __init__(self, update: Operation, error: Exception) -> None:
        super().__init__(update, error)
        self.update = update
        self.error = error


async def _commit(directory: Directory, op: Operation, transaction: Transaction) -> ExtendedOutcome:
    """
    Carry out the updates of a transaction in one batch of its backend, and
    commit it, or roll it back at the first that fails.
    """
    db = transaction.database
    assert db is not None
    made: list[Operation] = []

    async def carryOut(group: WriteGroup) -> None:
        for update in transaction.updates:
            op.check()
            made.append(update)
            try:
                await directory.carryOut(update)
            except Exception as e:
                raise _UpdateFailed(update, e) from e

    try:
        await inOneBatch(db, carryOut)
    except _UpdateFailed as failed:
        await _post(directory, made, getattr(failed.error, "resultCode", 80))
        return ExtendedOutcome(value=encodeSequence([integer(failed.update.messageId)]),
                               error=failed.error)
    except BaseException:
        await _post(directory, made, 118 if op.canceled else 80)
        raise
    await _post(directory, made, 0)
    return ExtendedOutcome(value=_updatesControls(made))


async def _post(directory: Directory, updates: list[Operation], resultCode: int) -> None:
    """
    Run the post hooks of the updates carried out, now that their outcome
    is settled.
    """
    for update in updates:
        await directory.post(update, resultCode)


def _updatesControls(updates: list[Operation]) -> bytes | None:
    """
    @return: the End Transaction response value carrying the response
        controls of the updates that have some (RFC 5805 §2.3), or C{None}.
    """
    controls: list[tuple[int, list[Control]]] = [
        (update.messageId, update.responseControls) for update in updates if update.responseControls
    ]
    if not controls:
        return None
    return encodeSequence([encodeSequence(
        encodeSequence([integer(messageId), encodeControls(sent)]) for messageId, sent in controls
    )])


#: The registrations (L{ldapd.controls.BUILT_IN}, L{ldapd.extended.BUILT_IN}).
SPECIFICATION_CONTROL = ControlType(
    TRANSACTION_SPECIFICATION, decodeSpecification, _UPDATE_OPERATIONS, update=queueUpdate)
START_OPERATION = ExtendedOperation(START_TRANSACTION, startTransaction)
END_OPERATION = ExtendedOperation(END_TRANSACTION, endTransaction)
