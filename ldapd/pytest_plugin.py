"""
ldapd's pytest plugin (entry point C{pytest11}: C{ldapd}): a real ldapd in
the test process for applications that test their LDAP code.

Fixtures:

  - C{ldap_server}: an L{ldapd.testserver.LDAPTestServer} on a free port of
    127.0.0.1, serving a memory database (C{dc=example,dc=com}, root DN
    C{cn=admin,dc=example,dc=com}, password C{secret}) that holds its suffix
    entry and what the test's markers load; every test gets a new one.
  - C{ldap_directory}: its L{ldapd.directory.Directory}, for tests that run
    on its reactor (pytest-twisted's) and call it directly.

Markers (on a test, class or module):

  - C{ldap_ldif(path_or_text, ...)}: entries to start with; a module's
    before a class's before a test's. Relative paths are the test file's.
  - C{ldap_config(toml)}: the configuration, over the default one (see
    L{ldapd.testserver.configFor}); the test's, else its class's, else its
    module's.

Where the server runs: when pytest-twisted runs the global reactor, on that
reactor, so that Twisted tests and the directory share it; otherwise on a
reactor of its own in a background thread, started with the first test that
asks for a server and kept for the session (a reactor cannot be started
twice), so that blocking clients, asyncio tests and trial's own use of the
global reactor all work beside it. See C{docs/testing.md}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

if TYPE_CHECKING:
    from ldapd.directory import Directory
    from ldapd.testserver import LDAPTestServer, Runner

__all__ = ["ldap_directory", "ldap_server"]


def pytest_configure(config: pytest.Config) -> None:
    """
    Declare the markers.
    """
    config.addinivalue_line(
        "markers", "ldap_ldif(path_or_text, ...): LDIF entries the ldap_server fixture starts with")
    config.addinivalue_line(
        "markers", "ldap_config(toml): the ldap_server fixture's configuration (ldapd's TOML), "
        "over the default one")


class _GreenletRunner:
    """
    The global reactor as pytest-twisted runs it, in a greenlet of the
    test's thread.
    """

    def __init__(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor

    def call(self, f: Callable[..., Any], *args: Any) -> Any:
        """
        Run C{f(*args)} now and wait for its result: from the test's
        greenlet by running the reactor until it is there; on the reactor
        (in a Twisted test's body) only if it is there at once.

        @raise RuntimeError: if it would have to wait on the reactor.
        """
        import greenlet
        import pytest_twisted
        from twisted.internet import defer
        from twisted.python.failure import Failure

        d = defer.maybeDeferred(f, *args)
        if greenlet.getcurrent().parent is None:
            return pytest_twisted.blockon(d)
        results: list[Any] = []
        d.addBoth(results.append)
        if not results:
            raise RuntimeError(
                "this would wait on the reactor, which runs the test: call the directory "
                "(ldap_directory) and wait for its Deferreds instead")
        result = results[0]
        if isinstance(result, Failure):
            result.raiseException()
        return result


@pytest.fixture(scope="session")
def _ldap_runner(pytestconfig: pytest.Config) -> Iterator[Runner]:
    """
    The reactor the session's test servers run on.
    """
    manager = pytestconfig.pluginmanager
    if manager.has_plugin("twisted") or manager.has_plugin("pytest_twisted"):
        yield _GreenletRunner()
        return
    from ldapd.testserver import ReactorThread

    thread = ReactorThread()
    try:
        yield thread
    finally:
        thread.stop()


def _closest(node: pytest.Item, name: str) -> Any:
    """
    @return: the arguments of the closest marker C{name}, or C{None}.
    """
    marker = node.get_closest_marker(name)
    return marker.args if marker is not None else None


@pytest.fixture
def ldap_server(request: pytest.FixtureRequest, _ldap_runner: Runner) -> Iterator[LDAPTestServer]:
    """
    A real ldapd on 127.0.0.1, new for each test, holding its database's
    suffix entry and the entries of the test's C{ldap_ldif} markers, built
    from the configuration of its C{ldap_config} marker.
    """
    from ldapd.testserver import LDAPTestServer, configFor, readLDIF

    where = request.path
    folder = where.parent
    config = _closest(request.node, "ldap_config")
    if config is not None and (len(config) != 1 or not isinstance(config[0], str)):
        raise pytest.UsageError(f"{where}: ldap_config takes one argument, the TOML text")
    records = [
        record
        for marker in reversed(list(request.node.iter_markers("ldap_ldif")))
        for source in marker.args
        for record in readLDIF(source, folder)
    ]
    server = LDAPTestServer(
        _ldap_runner, configFor(config[0] if config else None, f"{where}: ldap_config"),
        where, records)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ldap_directory(ldap_server: LDAPTestServer) -> Directory:
    """
    The directory C{ldap_server} serves. Its methods run on the server's
    reactor: call them from a Twisted test under pytest-twisted, or
    through C{ldap_server.call}.
    """
    directory: Directory = ldap_server.directory
    return directory
