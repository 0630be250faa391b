"""
The plugin host: what an operation plugin's C{attach(host)} registers through.

A plugin adds to a directory only through its host: the controls and
extended operations it carries out, its read-only views (C{cn=changelog},
C{cn=Monitor}), attributes of the root DSE, the server ID of its changes,
timers and open/close hooks. ldapd's own controls, extended operations and
views are registered the same way, so the root DSE lists exactly what is
registered, and nothing in the Directory names a plugin's control.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

from twisted.internet import defer, task
from twisted.logger import Logger

from ldapd.extensions import ControlType, ExtendedOperation, Extensions, RegistrationError

if TYPE_CHECKING:
    from ldapd.directory import Database, Directory
    from ldapd.schema.schema import Schema

__all__ = ["Lifecycle", "PluginHost", "RootDSEProvider"]

#: Gives (through an awaitable) further C{(attribute, values)} of the root
#: DSE, each time a client reads it: what changes as the server runs
#: (C{lastChangeNumber}).
RootDSEProvider = Callable[[], Awaitable[Sequence[tuple[str, Sequence[bytes]]]]]


class Lifecycle:
    """
    What runs when a directory opens and closes, besides its backends: the
    plugins' open and close hooks and their timers.
    """

    _log = Logger()

    def __init__(self, clock: Any) -> None:
        """
        @param clock: the reactor's clock, for the timers.
        """
        self._clock = clock
        self._opening: list[Callable[[], object]] = []
        self._closing: list[Callable[[], object]] = []
        self._timers: list[tuple[float, Callable[[], object]]] = []
        self._running: list[task.LoopingCall] = []

    def onOpen(self, hook: Callable[[], object]) -> None:
        """
        @param hook: called (and waited for, if it returns a Deferred or a
            coroutine) once the backends are open, in registration order.
        """
        self._opening.append(hook)

    def onClose(self, hook: Callable[[], object]) -> None:
        """
        @param hook: called (and waited for) when the directory closes,
            before its backends close, in reverse registration order.
        """
        self._closing.append(hook)

    def addTimer(self, interval: float, call: Callable[[], object]) -> None:
        """
        @param interval: seconds between calls.
        @param call: called (and waited for) as the directory opens, then
            every C{interval} seconds until it closes. A failure is logged,
            and the timer goes on.
        """
        self._timers.append((interval, call))

    @defer.inlineCallbacks
    def open(self) -> Any:
        """
        Run the open hooks, then each timer's first call, waited for, so
        that the directory serves no client before it (the changelog is
        trimmed before a consumer is told whether it still covers its
        cookie); then start the timers.
        """
        for hook in self._opening:
            yield defer.ensureDeferred(_run(hook))
        for interval, call in self._timers:
            yield self._tick(call)
            loop = task.LoopingCall(self._tick, call)
            loop.clock = self._clock
            self._running.append(loop)
            loop.start(interval, now=False)

    def _tick(self, call: Callable[[], object]) -> defer.Deferred[object]:
        """
        Run one timer call, logging its failure instead of stopping the timer.
        """
        d = defer.ensureDeferred(_run(call))
        return d.addErrback(lambda f: self._log.failure("timer {call} failed", f, call=call))

    @defer.inlineCallbacks
    def close(self) -> Any:
        """
        Stop the timers, then run the close hooks.
        """
        running, self._running = self._running, []
        for loop in running:
            if loop.running:
                loop.stop()
        for hook in reversed(self._closing):
            yield defer.ensureDeferred(_run(hook))


async def _run(call: Callable[[], object]) -> object:
    """
    @return: what C{call} returns, awaited when it is awaitable.
    """
    result = call()
    if isinstance(result, defer.Deferred) or hasattr(result, "__await__"):
        return await result
    return result


class PluginHost:
    """
    The registrations a plugin makes when it is attached to a directory.

    @ivar directory: the directory the plugin serves, through which it reads
        and writes entries (with C{directory.internalOperation()}) and is told
        of changes (C{directory.subscribe}); what it adds to the directory it
        adds through the methods here.
    """

    def __init__(self, directory: Directory, extensions: Extensions, lifecycle: Lifecycle,
                 rootDSEProviders: list[RootDSEProvider]) -> None:
        self.directory = directory
        self._extensions = extensions
        self._lifecycle = lifecycle
        self._rootDSEProviders = rootDSEProviders

    @property
    def schema(self) -> Schema:
        """
        The directory's schema.
        """
        return self.directory.schema

    @property
    def reactor(self) -> Any:
        """
        The directory's reactor: its clock and thread pool.
        """
        return self.directory.reactor

    def addControl(self, control: ControlType) -> None:
        """
        Register a request control the plugin carries out (in its hooks,
        reading C{op.controls}, or as a search handler).

        @raise RegistrationError: if another registered it already.
        """
        self._extensions.addControl(control)

    def addExtendedOperation(self, operation: ExtendedOperation) -> None:
        """
        Register an extended operation the plugin carries out.

        @raise RegistrationError: if another registered it already.
        """
        self._extensions.addExtendedOperation(operation)

    def addFeature(self, oid: str) -> None:
        """
        Name a feature in the root DSE's C{supportedFeatures}.
        """
        self._extensions.addFeature(oid)

    def addView(self, db: Database, public: bool = False) -> None:
        """
        Serve a read-only view.

        @param db: the view, a database whose backend serves it.
        @param public: C{False} (the default) for a private database such
            as C{cn=changelog} or C{cn=Monitor}, one that holds what no
            ordinary rule should hand out: under the default access policy
            only the root DN reads it; under the acl plugin only the rules
            whose target names it apply to it, never a generic one such as
            C{to *}. C{True} for one entry anyone reads whole, without the
            plugins' hooks, at its suffix only (the root DSE,
            C{cn=Subschema}).
        """
        if public:
            self.directory.addView(db)
        else:
            self.directory.addPrivateDatabase(db)

    def addRootDSEAttributes(self, provider: RootDSEProvider) -> None:
        """
        Add attributes to the root DSE, computed each time a client reads it.
        """
        self._rootDSEProviders.append(provider)

    def setServerId(self, sid: int) -> None:
        """
        Set the server ID (0 to 4095) in the CSNs of the directory's changes.

        @raise RegistrationError: if another plugin set a different one.
        """
        csn = self.directory.csn
        if csn.sid and csn.sid != sid:
            raise RegistrationError(f"the server ID is {csn.sid} already; cannot make it {sid}")
        csn.sid = sid

    def addTimer(self, interval: float, call: Callable[[], object]) -> None:
        """
        Call C{call} once the directory is open, then every C{interval}
        seconds until it closes (L{Lifecycle.addTimer}).
        """
        self._lifecycle.addTimer(interval, call)

    def onOpen(self, hook: Callable[[], object]) -> None:
        """
        Call C{hook} once the directory's backends are open (L{Lifecycle.onOpen}).
        """
        self._lifecycle.onOpen(hook)

    def onClose(self, hook: Callable[[], object]) -> None:
        """
        Call C{hook} when the directory closes, before its backends do
        (L{Lifecycle.onClose}).
        """
        self._lifecycle.onClose(hook)
