"""
Tests for the extension API: L{ldapd.extensions} (registered controls and
extended operations), L{ldapd.host} (what plugins register through) and the
declared hooks of L{ldapd.plugins.chain}.
"""

from __future__ import annotations

import textwrap
from typing import Any

from ldaptor.protocols import pureber, pureldap
from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import task
from twisted.trial import unittest

from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.extensions import (
    ControlType,
    ExtendedOperation,
    ExtendedOutcome,
    Extensions,
    RegistrationError,
)
from ldapd.host import Lifecycle, PluginHost
from ldapd.operation import Connection, Operation
from ldapd.plugins.chain import HOOKS, PluginChain, UnknownHook
from ldapd.requests import RawControl
from ldapd.schema import Schema
from ldapd.testing import EXAMPLE_LDIF, executeRequest, installDistribution

SUFFIX = "dc=example,dc=com"
ECHO = "1.3.6.1.4.1.99999.1"
MARK = "1.3.6.1.4.1.99999.2"


def _decodeMark(value: bytes | None, critical: bool) -> bytes:
    if value is None:
        raise ValueError("the mark control needs a value")
    return value


class ExtensionsTests(unittest.SynchronousTestCase):
    """
    L{Extensions.decodeControls} decodes what is registered for the
    operation and refuses what it must.
    """

    def setUp(self) -> None:
        self.extensions = Extensions()
        self.extensions.addControl(ControlType(MARK, _decodeMark, frozenset({"add"})))

    def test_decoded(self) -> None:
        """
        A registered control is decoded into what its decoder returns.
        """
        self.assertEqual(self.extensions.decodeControls([RawControl(MARK, False, b"x")], "add"),
                         {MARK: b"x"})

    def test_unknownCritical(self) -> None:
        """
        A critical control nobody registered, or registered for other
        operations, is unavailableCriticalExtension; a non-critical one is
        ignored.
        """
        for raw, operation in [(RawControl("1.2.3", True, None), "add"),
                               (RawControl(MARK, True, b"x"), "search")]:
            self.assertRaises(ldaperrors.LDAPUnavailableCriticalExtension,
                              self.extensions.decodeControls, [raw], operation)
        self.assertEqual(
            self.extensions.decodeControls([RawControl("1.2.3", False, None)], "add"), {})

    def test_malformed(self) -> None:
        """
        A control its decoder refuses, or one given twice, is a
        protocolError.
        """
        self.assertRaises(ldaperrors.LDAPProtocolError, self.extensions.decodeControls,
                          [RawControl(MARK, False, None)], "add")
        self.assertRaises(ldaperrors.LDAPProtocolError, self.extensions.decodeControls,
                          [RawControl(MARK, False, b"a"), RawControl(MARK, False, b"b")], "add")

    def test_twice(self) -> None:
        """
        An OID is registered once.
        """
        self.assertRaises(RegistrationError, self.extensions.addControl,
                          ControlType(MARK, _decodeMark, frozenset({"modify"})))
        self.extensions.addExtendedOperation(ExtendedOperation(ECHO, None))
        self.assertRaises(RegistrationError, self.extensions.addExtendedOperation,
                          ExtendedOperation(ECHO, None))

    def test_advertised(self) -> None:
        """
        The supported controls are the advertised ones, sorted.
        """
        self.extensions.addControl(ControlType("1.1", _decodeMark, frozenset({"add"})))
        self.extensions.addControl(ControlType("1.0", _decodeMark, frozenset({"add"}),
                                               advertised=False))
        self.assertEqual(self.extensions.supportedControls, ["1.1", MARK])


async def _echo(directory: Any, op: Operation) -> ExtendedOutcome:
    return ExtendedOutcome(name=ECHO.encode(), value=op.request.value)  # type: ignore[union-attr]


class _MarkingPlugin:
    """
    A plugin that registers what a plugin may: a control it reads in a
    hook, an extended operation, a root DSE attribute, a timer, and open and
    close hooks.
    """

    name = "marking"

    def __init__(self) -> None:
        self.events: list[str] = []
        self.marks: list[bytes] = []

    def attach(self, host: PluginHost) -> None:
        host.addControl(ControlType(MARK, _decodeMark, frozenset({"add"})))
        host.addExtendedOperation(ExtendedOperation(ECHO, _echo))
        host.addFeature("1.3.6.1.4.1.99999.3")
        host.addRootDSEAttributes(self._rootDSE)
        host.addTimer(10, lambda: self.events.append("tick"))
        host.onOpen(lambda: self.events.append("open"))
        host.onClose(lambda: self.events.append("close"))

    async def _rootDSE(self) -> list[tuple[str, list[bytes]]]:
        return [("description", [b"marked"])]

    def pre_add(self, op: Operation, entry: Any) -> None:
        mark = op.controls.get(MARK)
        if mark is not None:
            self.marks.append(mark)


class PluginHostTests(unittest.TestCase):
    """
    What a plugin registers through its host is what the directory
    supports, advertises and runs.
    """

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.schema = Schema.standard()
        self.plugin = _MarkingPlugin()
        suffix = DN.parse(SUFFIX)
        self.directory = Directory(
            [Database(suffix, MemoryBackend(self.schema.normalizeDN(suffix), self.schema),
                      DN.parse("cn=admin," + SUFFIX), b"secret", EXAMPLE_LDIF)],
            [self.plugin], schema=self.schema, reactor=self.clock)
        self.connection = Connection("test", self.clock)

    def execute(self, request: Any, controls: Any = None) -> list[Any]:
        responses, d = executeRequest(self.directory, self.connection, request, 1, controls)
        self.successResultOf(d)
        return responses

    def test_rootDSE(self) -> None:
        """
        The root DSE lists the registered control, extended operation and
        feature, and the plugin's attribute.
        """
        responses = self.execute(pureldap.LDAPSearchRequest(
            baseObject="", scope=0, filter=pureldap.LDAPFilter_present("objectClass"),
            attributes=["supportedControl", "supportedExtension", "supportedFeatures",
                        "description"]))
        attributes = {k.decode(): list(vs) for k, vs in responses[0].value.attributes}
        self.assertIn(MARK.encode(), attributes["supportedControl"])
        self.assertIn(ECHO.encode(), attributes["supportedExtension"])
        self.assertIn(b"1.3.6.1.4.1.99999.3", attributes["supportedFeatures"])
        self.assertEqual(attributes["description"], [b"marked"])

    def test_extendedOperation(self) -> None:
        """
        The registered extended operation answers.
        """
        [response] = self.execute(pureldap.LDAPExtendedRequest(requestName=ECHO,
                                                               requestValue=b"hello"))
        self.assertEqual(response.value.resultCode, 0)
        self.assertEqual(response.value.response, b"hello")

    def test_control(self) -> None:
        """
        The registered control reaches the plugin's hook decoded.
        """
        self.successResultOf(self.directory.open())
        self.execute(pureldap.LDAPBindRequest(dn="cn=admin," + SUFFIX, auth=b"secret"))
        self.execute(pureldap.LDAPAddRequest(entry="ou=marked," + SUFFIX, attributes=[
            (pureldap.LDAPAttributeDescription("objectClass"),
             pureber.BERSet([pureldap.LDAPAttributeValue("organizationalUnit")]))]),
            controls=[(MARK, True, b"m1")])
        self.assertEqual(self.plugin.marks, [b"m1"])

    def test_lifecycle(self) -> None:
        """
        Open hooks run once the backends are open, then the timers start;
        closing stops the timers and runs the close hooks.
        """
        self.assertEqual(self.plugin.events, [])
        self.successResultOf(self.directory.open())
        self.assertEqual(self.plugin.events, ["open", "tick"])
        self.clock.advance(10)
        self.assertEqual(self.plugin.events, ["open", "tick", "tick"])
        self.successResultOf(self.directory.close())
        self.clock.advance(30)
        self.assertEqual(self.plugin.events, ["open", "tick", "tick", "close"])

    def test_timerFailure(self) -> None:
        """
        A timer that fails is logged and runs again at its next interval.
        """
        lifecycle = Lifecycle(self.clock)
        calls: list[int] = []

        def fail() -> None:
            calls.append(1)
            raise RuntimeError("boom")

        lifecycle.addTimer(5, fail)
        self.successResultOf(lifecycle.open())
        self.clock.advance(5)
        self.assertEqual(len(calls), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.successResultOf(lifecycle.close())

    def test_serverId(self) -> None:
        """
        Two plugins cannot give the directory different server IDs.
        """
        host = PluginHost(self.directory, self.directory.extensions, Lifecycle(self.clock), [])
        host.setServerId(3)
        host.setServerId(3)
        self.assertEqual(self.directory.csn.sid, 3)
        self.assertRaises(RegistrationError, host.setServerId, 4)

    def test_withoutPlugin(self) -> None:
        """
        Without the plugin, its control is unknown: critical, it fails the
        request with unavailableCriticalExtension (12).
        """
        suffix = DN.parse(SUFFIX)
        self.directory = Directory(
            [Database(suffix, MemoryBackend(self.schema.normalizeDN(suffix), self.schema))],
            schema=self.schema, reactor=self.clock)
        [response] = self.execute(pureldap.LDAPDelRequest(entry="ou=x," + SUFFIX),
                                  controls=[(MARK, True, b"m1")])
        self.assertEqual(response.value.resultCode, 12)
        [response] = self.execute(pureldap.LDAPExtendedRequest(requestName=ECHO))
        self.assertEqual(response.value.resultCode, 2)


class PreBindTests(unittest.TestCase):
    """
    C{pre_bind} runs before every bind is carried out, anonymous ones
    included, and may refuse it.
    """

    def test_refusesAnonymous(self) -> None:
        """
        A plugin that refuses binds without a name stops anonymous binds
        (53) and lets named ones through; the refused bind leaves the
        connection anonymous.
        """

        class NamedOnly:
            name = "named-only"
            seen: list[bytes] = []

            def pre_bind(self, op: Operation, request: Any) -> None:
                self.seen.append(request.dn)
                if not request.dn:
                    raise ldaperrors.LDAPUnwillingToPerform("name yourself")

        schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        plugin = NamedOnly()
        directory = Directory(
            [Database(suffix, MemoryBackend(schema.normalizeDN(suffix), schema),
                      DN.parse("cn=admin," + SUFFIX), b"secret", EXAMPLE_LDIF)],
            [plugin], schema=schema, reactor=task.Clock())
        self.successResultOf(directory.open())
        connection = Connection("test", task.Clock())

        def bind(dn: str, password: bytes) -> int:
            responses, d = executeRequest(directory, connection,
                                          pureldap.LDAPBindRequest(dn=dn, auth=password), 1)
            self.successResultOf(d)
            return responses[-1].value.resultCode  # type: ignore[no-any-return]

        self.assertEqual(bind("", b""), 53)
        self.assertTrue(connection.identity.anonymous)
        self.assertEqual(bind("cn=admin," + SUFFIX, b"secret"), 0)
        self.assertEqual(plugin.seen, [b"", ("cn=admin," + SUFFIX).encode()])


class DeclaredHookTests(unittest.SynchronousTestCase):
    """
    A plugin's hooks are checked when the chain is built.
    """

    def test_misspelt(self) -> None:
        """
        A method named like a hook that no operation runs stops the chain
        from being built, naming the plugin and the method.
        """

        class Misspelt:
            name = "misspelt"

            def pre_modfy(self, op: Operation, mods: Any, ndn: Any) -> None:
                pass

        e = self.assertRaises(UnknownHook, PluginChain, [Misspelt()])
        self.assertIn("misspelt", str(e))
        self.assertIn("pre_modfy", str(e))

    def test_known(self) -> None:
        """
        Every hook the chain runs may be defined.
        """
        plugin = type("Everything", (), {name: lambda self, *a: None for name in HOOKS})()
        chain = PluginChain([plugin])
        for name in HOOKS:
            self.assertTrue(chain.has(name), name)


class EntryPointTests(unittest.SynchronousTestCase):
    """
    Installed packages register controls and extended operations through
    the C{ldapd.controls} and C{ldapd.extended} entry points.
    """

    def install(self, entryPoints: str, module: str) -> None:
        """
        Install a distribution (its metadata and one module) into a
        temporary folder on C{sys.path}, as pip would.
        """
        installDistribution(self, "thirdparty-ext", textwrap.dedent(entryPoints),
                            {"thirdparty_ext": textwrap.dedent(module)})

    def directory(self) -> Directory:
        schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        return Directory(
            [Database(suffix, MemoryBackend(schema.normalizeDN(suffix), schema))],
            schema=schema, reactor=task.Clock())

    def test_registered(self) -> None:
        """
        The entry points' control and extended operation are registered and
        advertised.
        """
        self.install("""
            [ldapd.controls]
            tagged = thirdparty_ext:TAGGED
            [ldapd.extended]
            echo = thirdparty_ext:ECHO
        """, """
            from ldapd.extensions import ControlType, ExtendedOperation, ExtendedOutcome

            async def echo(directory, op):
                return ExtendedOutcome(value=op.request.value)

            TAGGED = ControlType("1.3.6.1.4.1.99999.10", lambda value, critical: value,
                               frozenset({"search"}))
            ECHO = ExtendedOperation("1.3.6.1.4.1.99999.9", echo)
        """)
        directory = self.directory()
        self.assertIsNotNone(directory.extensions.control("1.3.6.1.4.1.99999.10"))
        self.assertIn(b"1.3.6.1.4.1.99999.9", directory.rootDSE.entry.get("supportedExtension"))

    def test_wrongType(self) -> None:
        """
        An entry point naming something else stops the directory, naming it.
        """
        self.install("""
            [ldapd.controls]
            bogus = thirdparty_ext:BOGUS
        """, """
            BOGUS = 42
        """)
        e = self.assertRaises(RegistrationError, self.directory)
        self.assertIn("bogus", str(e))
        self.assertIn("ControlType", str(e))

