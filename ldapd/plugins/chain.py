"""
The plugin chain: runs the operation plugins' optional hooks in order.

Hooks are found once, when the chain is built (as aiosmtpd collects
C{handle_*} methods), so running a chain costs nothing for hooks no plugin
has. Every hook a plugin has must be one the chain runs (L{HOOKS}): a method
named like a hook that no operation runs (C{pre_modfy}) stops start-up
rather than never running.
"""

from __future__ import annotations

from inspect import iscoroutine
from typing import Any, Callable, Sequence

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ldapd.entry import Entry
from ldapd.interfaces import ITransaction, ITransactionHooks
from ldapd.operation import Operation

__all__ = ["HOOKS", "PluginChain", "UnknownHook"]

_PREFIXES = ("pre_", "check_", "txn_", "post_")

_WRITES = ("add", "delete", "modify", "rename")

#: The hooks the chain runs (see L{ldapd.interfaces.IOperationPlugin}).
HOOKS = frozenset(
    [f"pre_{op}" for op in ("bind", "search", "compare", "extended", "authenticate", *_WRITES)]
    + [f"{prefix}_{op}" for prefix in ("check", "txn") for op in _WRITES]
    + [f"post_{op}" for op in ("bind", "search", "compare", "extended", "authenticate",
                               *_WRITES)]
    + ["filter_entry", "disclose_entry", "renew_search"]
)


class UnknownHook(ValueError):
    """
    A plugin has a method named like a hook that the chain never runs.
    """


@implementer(ITransactionHooks)
class PluginChain:
    """
    The ordered operation plugins of a directory.

    @ivar plugins: the plugins, in configuration order.
    """

    _log = Logger()

    def __init__(self, plugins: Sequence[Any] = ()) -> None:
        """
        @param plugins: L{ldapd.interfaces.IOperationPlugin} providers, in order.
        @raise UnknownHook: if a plugin has a method named like a hook that
            the chain never runs.
        """
        self.plugins = list(plugins)
        self._hooks: dict[str, list[Callable[..., Any]]] = {}
        for plugin in self.plugins:
            for name in dir(plugin):
                if not (name.startswith(_PREFIXES) or name in HOOKS):
                    continue
                hook = getattr(plugin, name)
                if not callable(hook):
                    continue
                if name not in HOOKS:
                    raise UnknownHook(
                        f"plugin {getattr(plugin, 'name', type(plugin).__name__)}: "
                        f"{name} is not a hook (known: pre_, check_, txn_, post_ hooks of "
                        "the operations, filter_entry, disclose_entry, renew_search)")
                self._hooks.setdefault(name, []).append(hook)

    def has(self, hook: str) -> bool:
        """
        @param hook: a hook name, e.g. C{"filter_entry"}.
        @return: whether any plugin has it.
        """
        return hook in self._hooks

    def pre(self, operation: str, op: Operation, subject: Any, *args: Any) -> defer.Deferred[Any]:
        """
        Run the C{pre_<operation>} hooks; each may refuse by raising an LDAP
        error, or return a replacement for C{subject}.

        @param operation: the operation name, e.g. C{"add"}.
        @param op: the operation.
        @param subject: the first argument (the entry of an add, the
            modifications of a modify, the DN otherwise).
        @param args: further arguments.
        @return: a Deferred firing with C{subject} as the hooks left it.
        """
        hooks = self._hooks.get("pre_" + operation, ())
        # Hooks that answer at once are run without a Deferred each; from
        # the first that answers later on, the rest wait in turn.
        for index, hook in enumerate(hooks):
            try:
                replaced = hook(op, subject, *args)
            except Exception:
                return defer.fail()
            if replaced is None:
                # Most hooks only check: nothing to wait for or replace.
                continue
            if isinstance(replaced, (defer.Deferred, Failure)) or iscoroutine(replaced):
                return self._waitPre(replaced, hooks[index + 1 :], op, subject, args)
            subject = replaced
        return defer.succeed(subject)

    @defer.inlineCallbacks
    def _waitPre(self, pending: Any, hooks: Sequence[Callable[..., Any]], op: Operation,
                 subject: Any, args: tuple[Any, ...]) -> Any:
        """
        Wait for the answer C{pending} of a hook, then run the C{hooks} after it.
        """
        replaced = yield defer.maybeDeferred(lambda: pending)
        if replaced is not None:
            subject = replaced
        for hook in hooks:
            replaced = yield defer.maybeDeferred(hook, op, subject, *args)
            if replaced is not None:
                subject = replaced
        return subject

    def _runSync(self, prefix: str, operation: str, op: Operation, txn: ITransaction, args: Any):
        for hook in self._hooks.get(prefix + operation, ()):
            hook(op, txn, *args)

    def check(self, operation: str, op: Operation, txn: ITransaction, *args: Any) -> None:
        """
        Run the C{check_<operation>} hooks inside a write's transaction.
        """
        self._runSync("check_", operation, op, txn, args)

    def txn(self, operation: str, op: Operation, txn: ITransaction, *args: Any) -> None:
        """
        Run the C{txn_<operation>} hooks inside a write's transaction.
        """
        self._runSync("txn_", operation, op, txn, args)

    @defer.inlineCallbacks
    def renew(self, op: Operation) -> Any:
        """
        Run the C{renew_search} hooks: a search that goes on for long (a
        persistent or sync search) is about to look at entries again, and
        what its client may see is to be decided as a new search would
        decide it now (group memberships and rules changed since it began
        apply to it).

        @return: a Deferred that fires when every hook is done.
        """
        for hook in self._hooks.get("renew_search", ()):
            yield defer.maybeDeferred(hook, op)

    def post(self, operation: str, op: Operation, resultCode: int) -> defer.Deferred[None]:
        """
        Run the C{post_<operation>} hooks, in order, once the outcome is
        decided and before the response is sent: they may add response
        controls (L{Operation.responseControls}) and record what happened,
        but cannot change the result. Their failures are logged.

        @param resultCode: the operation's result code.
        @return: a Deferred that fires when every hook is done; it never fails.
        """
        hooks = self._hooks.get("post_" + operation)
        if not hooks:
            return defer.succeed(None)
        return self._runPost(hooks, op, resultCode)

    @defer.inlineCallbacks
    def _runPost(self, hooks: list[Callable[..., Any]], op: Operation, resultCode: int) -> Any:
        """
        Run the C{hooks} in turn, logging their failures.
        """
        for hook in hooks:
            try:
                yield defer.maybeDeferred(hook, op, resultCode)
            except Exception:
                self._log.failure("post hook {hook} failed", hook=hook)

    def filterEntry(self, op: Operation, entry: Entry) -> Entry | None:
        """
        Pass a search result through every C{filter_entry} hook.

        @return: the entry to send, or C{None} to withhold it.
        """
        for hook in self._hooks.get("filter_entry", ()):
            entry = hook(op, entry)
            if entry is None:
                return None
        return entry

    @defer.inlineCallbacks
    def discloses(self, op: Operation, entry: Entry) -> Any:
        """
        Ask every C{disclose_entry} hook whether the client may learn that
        an entry exists (as the matched DN of an error, or as a child
        counted in hasSubordinates).

        @param entry: the entry.
        @return: a Deferred firing with C{True} when every hook says so.
        """
        for hook in self._hooks.get("disclose_entry", ()):
            if not (yield defer.maybeDeferred(hook, op, entry)):
                return False
        return True
