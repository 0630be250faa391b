"""
The pytest plugin (L{ldapd.pytest_plugin}), as an application's tests use
it: each test here writes a scratch project and runs pytest on it in a child
process (C{pytester}), with the plugin loaded as its entry point would load
it, and checks the outcome of every scratch test.
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

#: The plugin loaded by its module name, whether or not this environment has
#: installed its entry point (which C{no:ldapd} keeps from loading twice);
#: pytest-twisted kept out, so that the server runs in a thread of its own.
_PLUGIN = ("-p", "no:ldapd", "-p", "ldapd.pytest_plugin", "-p", "no:cacheprovider")
_THREADED = (*_PLUGIN, "-p", "no:twisted")

PEOPLE = '''
PEOPLE = """
dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=ada,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ada
cn: Ada Lovelace
givenName: Ada
sn: Lovelace
mail: ada@example.com
userPassword: lovelace
"""
ADA = "uid=ada,ou=people,dc=example,dc=com"
'''


def run(pytester: pytest.Pytester, source: str, *args: str, helpers: str = "") -> pytest.RunResult:
    """
    Run a scratch test module (with L{PEOPLE} and C{helpers} defined in it)
    in a child pytest.
    """
    pytester.makepyfile(PEOPLE + helpers + textwrap.dedent(source))
    return pytester.runpytest_subprocess(*args, timeout=180)


def test_clients(pytester: pytest.Pytester) -> None:
    """
    ldap3 and python-ldap bind to C{ldap_server} as its root DN and find the
    suffix entry, in a database that has the default suffix and root DN;
    the server runs in a thread of its own.
    """
    result = run(pytester, """
        import threading

        import ldap
        import ldap3

        def test_defaults(ldap_server):
            assert ldap_server.call(threading.get_ident) != threading.get_ident()
            assert ldap_server.url == f"ldap://127.0.0.1:{ldap_server.port}"
            assert ldap_server.suffix == "dc=example,dc=com"
            assert ldap_server.root_dn == "cn=admin,dc=example,dc=com"
            assert ldap_server.root_password == "secret"

        def test_ldap3(ldap_server):
            conn = ldap3.Connection(ldap_server.url, ldap_server.root_dn,
                                    ldap_server.root_password, auto_bind=True)
            conn.search(ldap_server.suffix, "(objectClass=*)", attributes=["o"])
            assert [(e.entry_dn, e.o.value) for e in conn.entries] == [
                ("dc=example,dc=com", "example")]

        def test_python_ldap(ldap_server):
            conn = ldap.initialize(ldap_server.url)
            conn.simple_bind_s(ldap_server.root_dn, ldap_server.root_password)
            assert [dn for dn, _ in conn.search_s(ldap_server.suffix, ldap.SCOPE_SUBTREE)] == [
                "dc=example,dc=com"]
            conn.unbind_s()
    """, *_THREADED)
    result.assert_outcomes(passed=3)


def test_sameStateForEveryTest(pytester: pytest.Pytester) -> None:
    """
    What a test writes is gone in the next test, and the entries of an
    C{ldap_ldif} marker are there again in each test that has it.
    """
    result = run(pytester, """
        import ldap3
        import pytest

        def connect(server):
            return ldap3.Connection(server.url, server.root_dn, server.root_password,
                                    auto_bind=True)

        @pytest.mark.ldap_ldif(PEOPLE)
        def test_writes(ldap_server):
            conn = connect(ldap_server)
            assert conn.delete(ADA)
            assert conn.add("ou=temp,dc=example,dc=com", "organizationalUnit")

        @pytest.mark.ldap_ldif(PEOPLE)
        def test_sees_none_of_it(ldap_server):
            conn = connect(ldap_server)
            conn.search(ldap_server.suffix, "(objectClass=*)")
            assert sorted(e.entry_dn for e in conn.entries) == [
                "dc=example,dc=com", "ou=people,dc=example,dc=com", ADA]

        def test_without_the_marker(ldap_server):
            conn = connect(ldap_server)
            conn.search(ldap_server.suffix, "(objectClass=*)")
            assert [e.entry_dn for e in conn.entries] == ["dc=example,dc=com"]
    """, *_THREADED)
    result.assert_outcomes(passed=3)


def test_ldif(pytester: pytest.Pytester) -> None:
    """
    C{ldap_ldif} takes text or a file's path (relative to the test file);
    a class's marker loads before its tests' markers; C{add_ldif} adds
    entries during a test, and the users they hold bind with their
    passwords; an LDIF holding the suffix entry replaces the default one.
    """
    pytester.makefile(".ldif", bob=textwrap.dedent("""
        dn: uid=bob,ou=people,dc=example,dc=com
        objectClass: inetOrgPerson
        uid: bob
        cn: Bob
        sn: Example
        userPassword: bob-secret
    """))
    result = run(pytester, """
        import ldap3
        import pytest

        def names(server):
            conn = ldap3.Connection(server.url, server.root_dn, server.root_password,
                                    auto_bind=True)
            conn.search(server.suffix, "(objectClass=*)", attributes=["o"])
            return {e.entry_dn: e.o.value for e in conn.entries}

        @pytest.mark.ldap_ldif(PEOPLE)
        class TestPeople:
            @pytest.mark.ldap_ldif("bob.ldif")
            def test_file_after_class(self, ldap_server):
                assert "uid=bob,ou=people,dc=example,dc=com" in names(ldap_server)
                ldap3.Connection(ldap_server.url, "uid=bob,ou=people,dc=example,dc=com",
                                 "bob-secret", auto_bind=True)

            def test_add_ldif(self, ldap_server):
                count = ldap_server.add_ldif(
                    "dn: uid=carol,ou=people,dc=example,dc=com\\n"
                    "objectClass: inetOrgPerson\\nuid: carol\\ncn: Carol\\nsn: Example\\n"
                    "userPassword: carol-secret\\n")
                assert count == 1
                ldap3.Connection(ldap_server.url, "uid=carol,ou=people,dc=example,dc=com",
                                 "carol-secret", auto_bind=True)

        @pytest.mark.ldap_ldif("dn: dc=example,dc=com\\nobjectClass: dcObject\\n"
                               "objectClass: organization\\ndc: example\\no: Example Inc.\\n")
        def test_own_suffix_entry(ldap_server):
            assert names(ldap_server) == {"dc=example,dc=com": "Example Inc."}

        def test_bad_record(ldap_server):
            with pytest.raises(ValueError, match="a delete record, not an entry"):
                ldap_server.add_ldif("dn: ou=x,dc=example,dc=com\\nchangetype: delete\\n")
    """, *_THREADED)
    result.assert_outcomes(passed=4)


def test_config(pytester: pytest.Pytester) -> None:
    """
    C{ldap_config} sets server keys over the default configuration, or
    databases instead of its one; a mistake in it is an error naming the
    test file and the key.
    """
    result = run(pytester, """
        import ldap3
        import pytest

        @pytest.mark.ldap_config('''
            [server]
            allow_anonymous = false
        ''')
        def test_server_keys(ldap_server):
            conn = ldap3.Connection(ldap_server.url)
            assert not conn.bind()
            assert conn.result["result"] == 48

        @pytest.mark.ldap_config('''
            [[database]]
            suffix = "o=test"
            root_dn = "cn=root,o=test"
            root_password = "pw"
        ''')
        def test_database(ldap_server):
            assert (ldap_server.suffix, ldap_server.root_dn, ldap_server.root_password) == (
                "o=test", "cn=root,o=test", "pw")
            conn = ldap3.Connection(ldap_server.url, "cn=root,o=test", "pw", auto_bind=True)
            conn.search("o=test", "(objectClass=organization)")
            assert [e.entry_dn for e in conn.entries] == ["o=test"]

        @pytest.mark.ldap_config('''
            [server]
            size_limt = 3
        ''')
        def test_mistake(ldap_server):
            pass
    """, *_THREADED)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_config.py: server.size_limt: unknown key*"])


def test_faults(pytester: pytest.Pytester) -> None:
    """
    C{fail_next} answers the next operation of its kind with the code
    given, and the one after it as usual; C{delay} holds operations;
    C{drop_connections} closes the clients' connections.
    """
    result = run(pytester, """
        import ldap3
        import pytest
        from ldap3.core.exceptions import LDAPException

        pytestmark = pytest.mark.ldap_ldif(PEOPLE)

        def connect(server, **kwargs):
            return ldap3.Connection(server.url, server.root_dn, server.root_password,
                                    auto_bind=True, **kwargs)

        OPERATIONS = {
            "search": lambda c: c.search("dc=example,dc=com", "(uid=ada)"),
            "compare": lambda c: c.compare(ADA, "sn", "Lovelace"),
            "add": lambda c: c.add("ou=new,dc=example,dc=com", "organizationalUnit"),
            "modify": lambda c: c.modify(ADA, {"sn": [(ldap3.MODIFY_REPLACE, ["L."])]}),
            "rename": lambda c: c.modify_dn(ADA, "uid=ada2"),
            "delete": lambda c: c.delete("ou=people,dc=example,dc=com"),
            "extended": lambda c: c.extend.standard.who_am_i(),
        }
        EXPECTED = {"search": 0, "compare": 6, "add": 0, "modify": 0, "rename": 0,
                    "delete": 66, "extended": 0}

        @pytest.mark.parametrize("operation", sorted(OPERATIONS))
        def test_fail_next(ldap_server, operation):
            conn = connect(ldap_server)
            ldap_server.fail_next(operation, 51, "try later")
            OPERATIONS[operation](conn)
            assert (conn.result["result"], conn.result["message"]) == (51, "try later")
            OPERATIONS[operation](conn)
            assert conn.result["result"] == EXPECTED[operation]

        def test_fail_bind(ldap_server):
            ldap_server.fail_next("bind", 52)
            ldap_server.fail_next("bind", 53)
            for code in (52, 53, 0):
                conn = ldap3.Connection(ldap_server.url, ADA, "lovelace")
                conn.bind()
                assert conn.result["result"] == code

        def test_unknown(ldap_server):
            with pytest.raises(ValueError, match="unknown operation 'serch'"):
                ldap_server.fail_next("serch", 51)
            with pytest.raises(ValueError, match="above 0"):
                ldap_server.fail_next("search", 0)

        def test_delay(ldap_server):
            import ldap

            held = ldap.initialize(ldap_server.url)
            held.simple_bind_s(ldap_server.root_dn, ldap_server.root_password)
            ldap_server.delay("search", 60)
            # Still held, so Cancel (RFC 3909) finds it running and stops it.
            cancelled = held.search("dc=example,dc=com", ldap.SCOPE_SUBTREE, "(uid=ada)")
            held.cancel_s(cancelled)
            with pytest.raises(ldap.CANCELLED):
                held.result(cancelled, 1, 30)
            # Released when the server's clock has moved on a minute, once
            # the search is held (it may not have reached the server yet).
            msgid = held.search("dc=example,dc=com", ldap.SCOPE_SUBTREE, "(uid=ada)")
            ldap_server.wait_held("search")
            ldap_server.clock.advance(60)
            _, entries = held.result(msgid, 1, 30)
            assert [dn for dn, _ in entries] == [ADA]
            ldap_server.delay("search", 0)
            assert connect(ldap_server).search("dc=example,dc=com", "(uid=ada)")

        def test_drop_connections(ldap_server):
            conns = [connect(ldap_server) for _ in range(2)]
            assert ldap_server.drop_connections() == 2
            with pytest.raises(LDAPException):
                conns[0].search("dc=example,dc=com", "(uid=ada)")
            assert connect(ldap_server).search("dc=example,dc=com", "(uid=ada)")
    """, *_THREADED)
    result.assert_outcomes(passed=11)


def test_clock(pytester: pytest.Pytester) -> None:
    """
    C{clock.advance} moves the server's time: a lockout of the ppolicy
    plugin runs out, and the changelog plugin's timer trims old records
    (all but the newest, which it keeps).
    """
    result = run(pytester, """
        import time

        import ldap3
        import pytest

        POLICY = '''
        dn: ou=policies,dc=example,dc=com
        objectClass: organizationalUnit
        ou: policies

        dn: cn=default,ou=policies,dc=example,dc=com
        objectClass: device
        objectClass: pwdPolicy
        cn: default
        pwdAttribute: userPassword
        pwdLockout: TRUE
        pwdMaxFailure: 3
        pwdLockoutDuration: 300
        '''

        @pytest.mark.ldap_config('''
            [[plugin]]
            name = "ppolicy"
            default_policy = "cn=default,ou=policies,dc=example,dc=com"
        ''')
        @pytest.mark.ldap_ldif(POLICY, PEOPLE)
        def test_lockout_runs_out(ldap_server):
            def bind(password):
                conn = ldap3.Connection(ldap_server.url, ADA, password)
                conn.bind()
                return conn.result["result"]

            assert [bind("wrong") for _ in range(3)] == [49, 49, 49]
            assert bind("lovelace") == 49
            ldap_server.clock.advance(200)
            assert bind("lovelace") == 49
            ldap_server.clock.advance(101)
            assert bind("lovelace") == 0

        @pytest.mark.ldap_config('''
            [[plugin]]
            name = "changelog"
            max_age = "1d"
        ''')
        @pytest.mark.ldap_ldif(PEOPLE)
        def test_changelog_trimmed(ldap_server):
            conn = ldap3.Connection(ldap_server.url, ldap_server.root_dn,
                                    ldap_server.root_password, auto_bind=True)

            def changes():
                conn.search("cn=changelog", "(objectClass=changeLogEntry)")
                return len(conn.entries)

            assert changes() == 3
            ldap_server.clock.advance(3600)
            assert changes() == 3
            ldap_server.clock.advance(86400)
            assert changes() == 1  # the newest record is always kept

        def test_clock_starts_again(ldap_server):
            assert abs(ldap_server.clock.seconds() - time.time()) < 60
            with pytest.raises(ValueError):
                ldap_server.clock.advance(-1)
    """, *_THREADED)
    result.assert_outcomes(passed=3)


#: An ldaptor client on the global reactor, whose connection's end a test
#: waits for (trial fails a test that leaves a connection open).
LDAPTOR_CLIENT = '''
from ldaptor.protocols.ldap.ldapclient import LDAPClient
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol


class Client(LDAPClient):
    def connectionMade(self):
        super().connectionMade()
        self.closed = defer.Deferred()

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.closed.callback(None)


async def bindAndClose(server):
    client = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", server.port), Client())
    await client.bind(server.root_dn, server.root_password)
    client.transport.loseConnection()
    await client.closed
'''


def test_trial(pytester: pytest.Pytester) -> None:
    """
    A trial test case gets the server through an autouse fixture and talks
    to it with ldaptor on the global reactor, which trial runs for the test
    while the server runs on its own.
    """
    result = run(pytester, """
        import pytest
        from twisted.trial import unittest

        class BindTests(unittest.TestCase):
            @pytest.fixture(autouse=True)
            def server(self, ldap_server):
                self.server = ldap_server

            async def test_bind(self):
                await bindAndClose(self.server)

            async def test_again(self):
                await bindAndClose(self.server)
    """, *_THREADED, helpers=LDAPTOR_CLIENT)
    result.assert_outcomes(passed=2)


def test_pytestTwisted(pytester: pytest.Pytester) -> None:
    """
    Under pytest-twisted the server runs on the reactor that runs the tests:
    they call the directory directly and talk to the server with ldaptor,
    and a blocking client works from a thread.
    """
    pytest.importorskip("pytest_twisted")
    result = run(pytester, """
        import threading

        import ldap3
        import pytest_twisted
        from twisted.internet import threads

        from ldapd.dn import DN

        @pytest_twisted.ensureDeferred
        async def test_directory(ldap_server, ldap_directory):
            assert ldap_server.call(threading.get_ident) == threading.get_ident()
            assert ldap_server.add_ldif(PEOPLE) == 2
            ndn = ldap_directory.schema.normalizeDN(DN.parse(ADA))
            entry = await ldap_directory.get(ldap_directory.internalOperation(), ndn)
            assert entry.get("mail") == (b"ada@example.com",)

        @pytest_twisted.ensureDeferred
        async def test_ldaptor(ldap_server):
            ldap_server.fail_next("search", 51)
            await bindAndClose(ldap_server)

        @pytest_twisted.ensureDeferred
        async def test_blocking_client_in_thread(ldap_server):
            def whoami():
                conn = ldap3.Connection(ldap_server.url, ldap_server.root_dn,
                                        ldap_server.root_password, auto_bind=True)
                return conn.extend.standard.who_am_i()

            assert await threads.deferToThread(whoami) == "dn:cn=admin,dc=example,dc=com"
    """, *_PLUGIN, helpers=LDAPTOR_CLIENT)
    result.assert_outcomes(passed=3)


def test_asyncio(pytester: pytest.Pytester) -> None:
    """
    An asyncio test (pytest-asyncio) runs blocking clients in a thread, and
    the directory's own calls on the server's reactor through C{call}.
    """
    pytest.importorskip("pytest_asyncio")
    result = run(pytester, """
        import asyncio

        import ldap3
        import pytest

        from ldapd.dn import DN

        @pytest.mark.asyncio
        @pytest.mark.ldap_ldif(PEOPLE)
        async def test_client_in_thread(ldap_server, ldap_directory):
            def mail():
                conn = ldap3.Connection(ldap_server.url, ADA, "lovelace", auto_bind=True)
                conn.search(ADA, "(objectClass=*)", attributes=["mail"])
                return conn.entries[0].mail.value

            assert await asyncio.to_thread(mail) == "ada@example.com"

            async def read():
                ndn = ldap_directory.schema.normalizeDN(DN.parse(ADA))
                return await ldap_directory.get(ldap_directory.internalOperation(), ndn)

            entry = await asyncio.to_thread(ldap_server.call, read)
            assert entry.get("sn") == (b"Lovelace",)
    """, *_THREADED)
    result.assert_outcomes(passed=1)


def test_django(pytester: pytest.Pytester) -> None:
    """
    django-auth-ldap logs a user of the server in, with the attributes of
    its entry, and refuses a wrong password.
    """
    pytest.importorskip("django_auth_ldap")
    result = run(pytester, """
        import django
        import pytest
        from django.conf import settings

        @pytest.mark.ldap_ldif(PEOPLE)
        def test_login(ldap_server):
            settings.configure(
                INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
                DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                                       "NAME": ":memory:"}},
                AUTHENTICATION_BACKENDS=["django_auth_ldap.backend.LDAPBackend"],
                AUTH_LDAP_SERVER_URI=ldap_server.url,
                AUTH_LDAP_USER_DN_TEMPLATE="uid=%(user)s,ou=people,dc=example,dc=com",
                AUTH_LDAP_USER_ATTR_MAP={"first_name": "givenName", "last_name": "sn",
                                         "email": "mail"},
            )
            django.setup()
            from django.contrib.auth import authenticate
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            user = authenticate(username="ada", password="lovelace")
            assert (user.username, user.first_name, user.email) == (
                "ada", "Ada", "ada@example.com")
            assert authenticate(username="ada", password="wrong") is None
            ldap_server.fail_next("bind", 51)
            assert authenticate(username="ada", password="lovelace") is None
    """, *_THREADED)
    result.assert_outcomes(passed=1)
