"""
The C{monitor} plugin: the server's state and counters as the read-only
tree C{cn=Monitor}, as OpenLDAP's back-monitor serves it (slapd-monitor(5)).

The tree has slapd's DNs, object classes and attribute types
(C{schema/monitor.schema}); its values are computed each time an entry is
read, from the counters of L{ldapd.statistics.ServerStatistics} and the
open connections. It is served by a backend of its own, so that scopes,
filters, paging, limits and access rules apply as in any database; every
write is unwillingToPerform. Under the default access policy only the root
DN reads it; the root DSE names it in C{monitorContext}. The differences
from slapd's tree are in C{docs/monitor.md}.

Configuration::

    [[plugin]]
    name = "monitor"
"""

from __future__ import annotations

import resource
from importlib.metadata import entry_points
from typing import Any, Callable, Iterator, Sequence

from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from zope.interface import implementer

from ldapd import _version
from ldapd.directory import Database
from ldapd.dn import DN
from ldapd.entry import Entry
from ldapd.gentime import formatTime
from ldapd.host import PluginHost
from ldapd.interfaces import IBackend, IOperationPlugin
from ldapd.operation import Operation, Scope
from ldapd.registry import BACKENDS, ConfigContext, ConfigTable
from ldapd.results import NoSuchObject
from ldapd.statistics import ServerStatistics

__all__ = ["MONITOR_DN", "Monitor", "MonitorFactory", "listenerAddresses"]

#: Where the tree is served (slapd's C{SLAPD_MONITOR_DN}).
MONITOR_DN = "cn=Monitor"

#: slapd's names of the operations, with the operations they count
#: (L{ldapd.requests.Request.operation}), in the order slapd lists them.
_OPERATIONS = (
    ("Bind", "bind"),
    ("Unbind", "unbind"),
    ("Search", "search"),
    ("Compare", "compare"),
    ("Modify", "modify"),
    ("Modrdn", "rename"),
    ("Add", "add"),
    ("Delete", "delete"),
    ("Abandon", "abandon"),
    ("Extended", "extended"),
)

#: The containers' descriptions, as slapd writes them.
_DESCRIPTIONS = {
    "Connections": "This subsystem contains information about connections.",
    "Databases": "This subsystem contains information about configured databases.",
    "Listeners": "This subsystem contains information about active listeners.",
    "Operations": "This subsystem contains information about performed operations.",
    "Statistics": "This subsystem contains statistics.",
    "Time": "This subsystem contains information about time.",
}

#: The root entry's descriptions, as slapd writes them.
_ROOT_DESCRIPTIONS = (
    b"This subtree contains monitoring/managing objects.",
    b"This object contains information about this server.",
    (b"Most of the information is held in operational attributes, which must be "
     b"explicitly requested."),
)

#: The URL scheme of each kind of Twisted server endpoint.
_SCHEMES = {"tcp": "ldap", "tcp6": "ldap", "ssl": "ldaps", "unix": "ldapi"}


def _address(host: str, port: int) -> str:
    """
    @return: an IP address and port as slapd writes them (C{IP=h:p},
        C{IP=[h]:p} for IPv6).
    """
    return f"IP=[{host}]:{port}" if ":" in host else f"IP={host}:{port}"


def listenerAddresses(description: str) -> tuple[str, str]:
    """
    The URL and local address of a listener, from its Twisted endpoint
    description, as slapd shows its listeners' (C{ldap://127.0.0.1:389/},
    C{IP=127.0.0.1:389}; C{ldapi://%2Fpath/}, C{PATH=/path}).

    @param description: e.g. C{tcp:10389:interface=127.0.0.1}.
    @return: the C{labeledURI} and the C{monitorConnectionLocalAddress}.
    """
    kind, _, rest = description.partition(":")
    kind = kind.lower()
    positional: list[str] = []
    keywords: dict[str, str] = {}
    for part in rest.split(":") if rest else []:
        key, equals, value = part.partition("=")
        if equals:
            keywords[key] = value
        else:
            positional.append(part)
    if kind == "unix":
        path = keywords.get("address", positional[0] if positional else "")
        return f"ldapi://{path.replace('/', '%2F')}/", f"PATH={path}"
    port = int(keywords.get("port", positional[0] if positional else "0"))
    host = keywords.get("interface", "::" if kind == "tcp6" else "0.0.0.0")
    shown = f"[{host}]" if ":" in host else host
    return f"{_SCHEMES.get(kind, 'ldap')}://{shown}:{port}/", _address(host, port)


def _backendName(backend: Any) -> str:
    """
    @return: the name a backend is configured by (C{memory}, C{sql}, ...),
        as slapd names a database's backend (C{mdb}); its class's name for
        one not registered.
    """
    module = type(backend).__module__
    for ep in entry_points(group=BACKENDS):
        if ep.value.partition(":")[0] == module:
            return ep.name
    return type(backend).__name__


class _Node:
    """
    One entry of the tree as its backend builds it: its RDN value and
    attributes, and its children.
    """

    __slots__ = ("attributes", "children", "cn")

    def __init__(self, cn: str, objectClass: str,
                 attributes: Sequence[tuple[str, Sequence[bytes]]] = (),
                 children: Sequence[_Node] = ()) -> None:
        self.cn = cn
        self.attributes = [("objectClass", [objectClass.encode()]), ("cn", [cn.encode()]),
                           ("structuralObjectClass", [objectClass.encode()]), *attributes]
        self.children = children


def _counter(cn: str, value: int) -> _Node:
    """
    @return: a C{monitorCounterObject} entry holding C{value}.
    """
    return _Node(cn, "monitorCounterObject", [("monitorCounter", [b"%d" % value])])


def _container(cn: str, attributes: Sequence[tuple[str, Sequence[bytes]]] = (),
               children: Sequence[_Node] = ()) -> _Node:
    """
    @return: a C{monitorContainer} entry, with slapd's description of it.
    """
    return _Node(cn, "monitorContainer",
                 [("description", [_DESCRIPTIONS[cn].encode()]), *attributes], children)


@implementer(IOperationPlugin)
class Monitor:
    """
    Serves C{cn=Monitor}.

    @ivar view: the database serving it, once attached.
    """

    name = "monitor"

    def __init__(self) -> None:
        self.directory: Any = None
        self.view: Database | None = None

    def attach(self, host: PluginHost) -> None:
        """
        Serve C{cn=Monitor} from the directory's statistics as a private
        view, and name it in the root DSE.
        """
        self.directory = host.directory
        suffix = DN.parse(MONITOR_DN)
        self.view = Database(suffix, _MonitorView(host.schema.normalizeDN(suffix), self))
        host.addView(self.view)
        host.addRootDSEAttributes(self._rootDSE)

    async def _rootDSE(self) -> Sequence[tuple[str, Sequence[bytes]]]:
        """
        @return: the root DSE's C{monitorContext}, as slapd's.
        """
        return [("monitorContext", [MONITOR_DN.encode()])]

    def tree(self) -> _Node:
        """
        @return: the tree as it is now.
        """
        statistics: ServerStatistics = self.directory.statistics
        now = self.directory.reactor.seconds()
        return _Node("Monitor", "monitorServer", [
            ("description", list(_ROOT_DESCRIPTIONS)),
            ("monitoredInfo", [f"ldapd {_version.__version__}".encode()]),
        ], [
            self._connections(statistics),
            self._databases(),
            _container("Listeners", children=[
                _Node(f"Listener {n}", "monitoredObject", [
                    ("monitorConnectionLocalAddress", [local.encode()]),
                    ("labeledURI", [url.encode()]),
                ])
                for n, (url, local) in enumerate(self._listeners())
            ]),
            self._operations(statistics),
            _container("Statistics", children=[
                _counter("Bytes", statistics.bytes),
                _counter("PDU", statistics.pdus),
                _counter("Entries", statistics.entries),
                _counter("Referrals", statistics.referrals),
                _counter("Throttled Binds", statistics.throttledBinds),
            ]),
            _container("Time", children=[
                _Node("Start", "monitoredObject",
                      [("monitorTimestamp", [formatTime(statistics.started)])]),
                _Node("Current", "monitoredObject", [("monitorTimestamp", [formatTime(now)])]),
                _Node("Uptime", "monitoredObject",
                      [("monitoredInfo", [b"%d" % (now - statistics.started)])]),
            ]),
        ])

    def _listeners(self) -> list[tuple[str, str]]:
        """
        @return: the URL and local address of each listener.
        """
        return [listenerAddresses(d) for d in self.directory.statistics.listeners]

    def _connections(self, statistics: ServerStatistics) -> _Node:
        """
        @return: C{cn=Connections}: the file descriptor limit, the counts,
            and one entry per open connection.
        """
        connections = [self._connection(p) for p in list(statistics.connections.values())]
        return _container("Connections", children=[
            _counter("Max File Descriptors", resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
            _counter("Total", statistics.totalConnections),
            _counter("Current", len(connections)),
            *connections,
        ])

    def _connection(self, protocol: Any) -> _Node:
        """
        @param protocol: an open connection's L{ldapd.protocol.LDAPServerProtocol}.
        @return: its C{cn=Connection <id>} entry.
        """
        connection = protocol.connection
        executing, pending = protocol.operationCounts()
        identity = connection.identity
        host, peer = protocol.transport.getHost(), protocol.transport.getPeer()
        if getattr(host, "port", None) is not None:
            local = _address(host.host, host.port)
            peerAddress = _address(peer.host, peer.port)
            port = f":{host.port}"
        else:
            path = host.name.decode() if isinstance(host.name, bytes) else str(host.name or "")
            local = peerAddress = f"PATH={path}"
            port = path
        # The listener it came through: the one on its port (or socket).
        listener = next((url for url, address in self._listeners()
                         if address.endswith(port) or address == local), "")
        return _Node(f"Connection {connection.id}", "monitorConnection", [
            ("monitorConnectionNumber", [b"%d" % connection.id]),
            ("monitorConnectionProtocol", [b"3"]),
            ("monitorConnectionOpsReceived", [b"%d" % connection.opsReceived]),
            ("monitorConnectionOpsExecuting", [b"%d" % executing]),
            ("monitorConnectionOpsPending", [b"%d" % pending]),
            ("monitorConnectionOpsCompleted", [b"%d" % connection.opsCompleted]),
            # None for an anonymous connection, as slapd.
            ("monitorConnectionAuthzDN",
             [] if identity.dn is None else [str(identity.dn).encode("utf-8")]),
            ("monitorConnectionListener", [listener.encode()] if listener else []),
            ("monitorConnectionPeerDomain", [b"unknown"]),
            ("monitorConnectionPeerAddress", [peerAddress.encode()]),
            ("monitorConnectionLocalAddress", [local.encode()]),
            ("monitorConnectionStartTime", [formatTime(connection.started)]),
            ("monitorConnectionActivityTime", [formatTime(connection.activity)]),
        ])

    def _databases(self) -> _Node:
        """
        @return: C{cn=Databases}, with one C{cn=Database N} per configured
            database.
        """
        databases = self.directory.configuredDatabases
        return _container("Databases", [
            ("namingContexts", [str(db.suffix).encode("utf-8") for db in databases]),
            ("monitorContext", [MONITOR_DN.encode()]),
        ], [
            _Node(f"Database {n}", "monitoredObject", [
                ("monitoredInfo", [_backendName(db.backend).encode()]),
                ("monitorIsShadow", [b"TRUE" if db.replica is not None else b"FALSE"]),
                ("namingContexts", [str(db.suffix).encode("utf-8")]),
                ("readOnly", [b"FALSE"]),
            ])
            for n, db in enumerate(databases)
        ])

    def _operations(self, statistics: ServerStatistics) -> _Node:
        """
        @return: C{cn=Operations}, with the totals and one entry per operation.
        """
        initiated, completed = statistics.initiated, statistics.completed
        return _container("Operations", [
            ("monitorOpInitiated", [b"%d" % sum(initiated[kind] for _, kind in _OPERATIONS)]),
            ("monitorOpCompleted", [b"%d" % sum(completed[kind] for _, kind in _OPERATIONS)]),
        ], [
            _Node(name, "monitorOperation", [
                ("monitorOpInitiated", [b"%d" % initiated[kind]]),
                ("monitorOpCompleted", [b"%d" % completed[kind]]),
            ])
            for name, kind in _OPERATIONS
        ])


@implementer(IBackend)
class _MonitorView:
    """
    The read-only backend of C{cn=Monitor}: the tree of L{Monitor.tree},
    built anew for each request.
    """

    def __init__(self, suffix: DN, plugin: Monitor) -> None:
        self.suffix = suffix
        self._plugin = plugin
        self._schema = plugin.directory.schema

    def open(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def close(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    def _entries(self, node: _Node, parent: DN | None) -> Iterator[tuple[Entry, int]]:
        """
        @return: the entries of a node's subtree, parents first, each with
            its depth below the node.
        """
        dn = DN.parse(f"cn={node.cn}" if parent is None else f"cn={node.cn},{parent}")
        yield Entry(dn, node.attributes, self._schema), 0
        for child in node.children:
            for entry, depth in self._entries(child, dn):
                yield entry, depth + 1

    def _subtree(self, ndn: DN) -> list[tuple[Entry, int]]:
        """
        @return: the entries at and below C{ndn}, with their depths below it.
        @raise NoSuchObject: if there is no entry C{ndn}, with the
            closest existing one as matched DN.
        """
        found: list[tuple[Entry, int]] = []
        matched = DN.parse(MONITOR_DN)
        baseDepth = None
        for entry, depth in self._entries(self._plugin.tree(), None):
            if baseDepth is not None and depth <= baseDepth:
                break
            if baseDepth is not None:
                found.append((entry, depth - baseDepth))
            elif entry.ndn == ndn:
                baseDepth = depth
                found.append((entry, 0))
            elif ndn.isWithin(entry.ndn):
                matched = entry.dn
        if not found:
            raise NoSuchObject("no such object", matched)
        return found

    def get(self, op: Operation, ndn: DN) -> defer.Deferred[Entry]:
        try:
            return defer.succeed(self._subtree(ndn)[0][0])
        except NoSuchObject:
            return defer.fail()

    def authenticate(self, op: Operation, ndn: DN, password: bytes) -> defer.Deferred[Entry]:
        return defer.fail(ldaperrors.LDAPInvalidCredentials())

    def search(self, op: Operation, emit: Callable[[Entry], Any]) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._search(op, emit))

    async def _search(self, op: Operation, emit: Callable[[Entry], Any]) -> None:
        params = op.search
        assert params is not None
        for entry, depth in self._subtree(params.base):
            if params.scope == Scope.BASE and depth > 0:
                break
            if params.scope == Scope.ONE and depth != 1:
                continue
            op.check()
            if params.filter.match(entry) is True:
                waiting = emit(entry)
                if waiting is not None:
                    await waiting

    def _readOnly(self, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        return defer.fail(ldaperrors.LDAPUnwillingToPerform("cn=Monitor is read-only"))

    add = delete = modify = rename = _readOnly


class MonitorFactory:
    """
    Builds L{Monitor} from C{[[plugin]] name = "monitor"}, which takes no keys.
    """

    name = "monitor"
    description = "The server's connections, operations and statistics as cn=Monitor, as slapd's."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> Monitor:
        """
        @param table: the plugin's configuration.
        @param context: the L{ConfigContext}.
        @raise ldapd.registry.ConfigError: naming a key given.
        """
        ConfigTable(table, context, ())
        return Monitor()
