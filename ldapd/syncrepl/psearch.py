"""
Persistent search (draft-ietf-ldapext-psearch-03), which many applications
still use to hear of changes.

A search with the Persistent Search control first returns what matches now
(unless C{changesOnly}), then stays open and returns each entry a committed
write adds, deletes, modifies or renames (those of C{changeTypes}) that the
search would return (for a delete, as it was), with an Entry Change
Notification control when C{returnECs} asks for one. It is driven by the
Directory's change feed, so it needs no changelog; when the database keeps
one (the C{changelog} plugin), the notification carries the change number.
It ends when abandoned or when its connection closes; a client that does not
read its notifications while more than L{MAX_QUEUED} pile up is ended with
adminLimitExceeded, so that it cannot make the server hold them without
bound.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, NoReturn

from ldaptor.protocols.ldap import ldaperrors

from ldapd._codec import Control
from ldapd.changes import ADD, DELETE, MODIFY, RENAME, Change
from ldapd.interfaces import IChangelog
from ldapd.operation import Operation
from ldapd.syncrepl._persist import Watch, visible, withControls
from ldapd.syncrepl.codec import (
    ENTRY_CHANGE_NOTIFICATION,
    PS_ADD,
    PS_DELETE,
    PS_MODDN,
    PS_MODIFY,
    SYNC_REQUEST,
    EntryChangeNotification,
    PersistentSearch,
)

if TYPE_CHECKING:
    from ldapd.directory import Database, Directory
    from ldapd.results import Reply

__all__ = ["MAX_QUEUED", "persistentSearch"]

#: The most changes held for one persistent search whose client is not
#: reading.
MAX_QUEUED = 1000

#: Changelog records read at a time when looking for a change's number.
_BATCH = 64

_CHANGE_TYPES = {ADD: PS_ADD, DELETE: PS_DELETE, MODIFY: PS_MODIFY, RENAME: PS_MODDN}


async def persistentSearch(
    directory: Directory, op: Operation, reply: Reply, db: Database, control: PersistentSearch
) -> NoReturn:
    """
    Carry out a search with the Persistent Search control.

    @param directory: the directory.
    @param op: the search, with its parameters and limits set.
    @param reply: its reply function.
    @param db: the database holding its base.
    @param control: the Persistent Search control.
    @raise ldapd.operation.Abandoned: when it is abandoned (its only end but
        errors).
    @raise ldaperrors.LDAPAdminLimitExceeded: when its client falls more than
        L{MAX_QUEUED} changes behind.
    """
    numbers = None
    # Change numbers come from the backend's changelog, which only the
    # changelog plugin (the one to register the Sync Request control) fills.
    if (
        control.returnECs
        and directory.extensions.control(SYNC_REQUEST) is not None
        and IChangelog.providedBy(db.backend)
    ):
        _, last = await db.backend.changeBounds()
        numbers = _ChangeNumbers(db.backend, last.number if last is not None else 0)
    watch = Watch(op)
    queue: deque[Change] = deque()

    def changed(change: Change) -> None:
        if change.suffix != db.normalizedSuffix:
            return
        if len(queue) >= MAX_QUEUED:
            watch.fail(
                ldaperrors.LDAPAdminLimitExceeded(
                    "persistent search: the client is not reading its notifications"
                )
            )
            return
        queue.append(change)
        watch.wake()

    unsubscribe = directory.subscribe(changed)
    try:
        if not control.changesOnly:
            await directory.searcher.searchDatabase(op, reply, db)
        # The limits apply to the search of what matches now (as the
        # syncrepl provider's to its refresh); the changes go on as long as
        # the client wants them.
        op.deadline = None
        while True:
            if not queue:
                await watch.wait()
                continue
            await watch.writable()
            await _notify(directory, op, reply, queue.popleft(), control, numbers)
    finally:
        unsubscribe()


async def _notify(
    directory: Directory,
    op: Operation,
    reply: Reply,
    change: Change,
    control: PersistentSearch,
    numbers: _ChangeNumbers | None,
) -> None:
    """
    Send one change, if it is of a type asked for and to an entry the search
    returns.
    """
    changeType = _CHANGE_TYPES[change.kind]
    if not control.changeTypes & changeType:
        return
    entry = change.old if change.kind == DELETE else change.new
    assert entry is not None
    await directory.plugins.renew(op)
    shown = visible(directory, op, entry)
    if shown is None:
        return
    controls = []
    if control.returnECs:
        previous = None
        if change.kind == RENAME and change.old is not None:
            previous = str(change.old.dn).encode("utf-8")
        number = await numbers.numberOf(change) if numbers is not None else None
        notification = EntryChangeNotification(changeType, previous, number)
        controls.append(Control(ENTRY_CHANGE_NOTIFICATION, False, notification.encode()))
    # A deleted entry has no subordinates left to count.
    sending = directory.searcher.sendEntry(
        op, withControls(reply, controls), shown, counted=change.kind != DELETE
    )
    if sending is not None:
        await sending


class _ChangeNumbers:
    """
    Finds the changelog number of each change the feed announces, reading
    the changelog forward: records are numbered in commit order, the order
    the feed announces changes in.
    """

    def __init__(self, changelog: Any, position: int) -> None:
        """
        @param changelog: the database's L{IChangelog}.
        @param position: the number of the newest record before the first
            change to be looked up.
        """
        self._changelog = changelog
        self._position = position

    async def numberOf(self, change: Change) -> int | None:
        """
        @return: the number of C{change}'s record, or C{None} if it has none.
        """
        entry = change.new if change.new is not None else change.old
        assert entry is not None
        uuids = entry.get("entryUUID")
        csns = change.new.get("entryCSN") if change.new is not None else ()
        while True:
            records = await self._changelog.changes(self._position, _BATCH)
            if not records:
                return None
            for record in records:
                self._position = record.number
                if (
                    record.kind == change.kind
                    and uuids
                    and record.entryUUID == uuids[0]
                    and (not csns or record.csn == csns[0])
                ):
                    return record.number  # type: ignore[no-any-return]
