"""
Tests for L{ldapd.plugins.ppolicy}: the password policy plugin in a directory
with the example organisation in memory, its times read from a L{task.Clock}.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ldaptor.protocols import pureber, pureldap
from twisted.internet import defer, task
from twisted.trial import unittest

from ldapd import passwords
from ldapd._codec import encodeMessage, encodeSequence, octetString
from ldapd._framing import Framer
from ldapd.backends.memory import MemoryBackend
from ldapd.directory import Database, Directory
from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.extensions import Extensions
from ldapd.operation import Connection, Identity, Operation
from ldapd.plugins.ppolicy import (
    PASSWORD_POLICY,
    PASSWORD_POLICY_CONTROL,
    PasswordPolicy,
    PasswordPolicyFactory,
    Policy,
    PolicyError,
    QualityChecker,
    QualityError,
    responseControl,
)
from ldapd.registry import ConfigContext, ConfigError
from ldapd.requests import PASSWORD_MODIFY, RawControl
from ldapd.results import NoSuchObject
from ldapd.sasl import Authentication, IdentityMapping
from ldapd.schema import Schema
from ldapd.testing import EXAMPLE_LDIF, decodeResponse, wireFilter

SUFFIX = "dc=example,dc=com"
ROOT = "cn=admin,dc=example,dc=com"
ALICE = "uid=alice,ou=people,dc=example,dc=com"
BOB = "uid=bob,ou=people,dc=example,dc=com"
POLICIES = "ou=policies,dc=example,dc=com"
DEFAULT = f"cn=default,{POLICIES}"
#: A moment in 2023, where the test clocks start.
START = 1_700_000_000.0
#: The request control, as a client sends it.
REQUEST = [RawControl(PASSWORD_POLICY, False, None)]


class ResponseControlTests(unittest.SynchronousTestCase):
    """
    The response control is encoded byte for byte as slapd encodes it.
    """

    def test_error(self) -> None:
        """
        An error alone is C{[1] ENUMERATED} in the sequence.
        """
        self.assertEqual(responseControl(error=PolicyError.passwordTooShort).value,
                         b"\x30\x03\x81\x01\x06")

    def test_warnings(self) -> None:
        """
        timeBeforeExpiration is C{[0] { [0] INTEGER }}, graceAuthNsRemaining
        C{[0] { [1] INTEGER }}; an error may follow either.
        """
        self.assertEqual(responseControl(timeBeforeExpiration=300).value,
                         b"\x30\x06\xa0\x04\x80\x02\x01\x2c")
        self.assertEqual(responseControl(graceAuthNsRemaining=1,
                                         error=PolicyError.changeAfterReset).value,
                         b"\x30\x08\xa0\x03\x81\x01\x01\x81\x01\x02")

    def test_empty(self) -> None:
        """
        Without warning or error the control is an empty sequence, not critical.
        """
        control = responseControl()
        self.assertEqual((control.oid, control.criticality, control.value),
                         (PASSWORD_POLICY, False, b"\x30\x00"))


class RequestControlTests(unittest.SynchronousTestCase):
    """
    The plugin registers the request control on the operations slapd takes
    it on.
    """

    def setUp(self) -> None:
        self.extensions = Extensions()
        self.extensions.addControl(PASSWORD_POLICY_CONTROL)

    def test_decoded(self) -> None:
        """
        On a bind it is decoded; on a search it is ignored unless critical.
        """
        self.assertIn(PASSWORD_POLICY, self.extensions.decodeControls(REQUEST, "bind"))
        self.assertEqual(self.extensions.decodeControls(REQUEST, "search"), {})

    def test_value(self) -> None:
        """
        A value is a protocolError, as in slapd.
        """
        from ldaptor.protocols.ldap import ldaperrors

        self.assertRaises(ldaperrors.LDAPProtocolError, self.extensions.decodeControls,
                          [RawControl(PASSWORD_POLICY, False, b"x")], "bind")

    def test_advertised(self) -> None:
        """
        The root DSE lists the control only when the plugin is there.
        """
        schema = Schema.standard()
        suffix = DN.parse(SUFFIX)

        def supported(plugins: list[Any]) -> tuple[bytes, ...]:
            directory = Directory(
                [Database(suffix, MemoryBackend(schema.normalizeDN(suffix), schema))],
                plugins, schema=schema, reactor=task.Clock())
            return directory.rootDSE.entry.get("supportedControl")

        self.assertNotIn(PASSWORD_POLICY.encode(), supported([]))
        self.assertIn(PASSWORD_POLICY.encode(), supported([PasswordPolicy()]))


class PolicyTests(unittest.SynchronousTestCase):
    """
    L{Policy.fromEntry} reads a pwdPolicy entry.
    """

    def test_fromEntry(self) -> None:
        """
        Integers and booleans are read; pwdMaxRecordedFailure is at least
        pwdMaxFailure; pwdAllowUserChange is true unless set.
        """
        schema = Schema.standard()
        policy = Policy.fromEntry(Entry(DN.parse(DEFAULT), [
            ("objectClass", [b"device", b"pwdPolicy"]), ("cn", [b"default"]),
            ("pwdAttribute", [b"userPassword"]), ("pwdMaxFailure", [b"5"]),
            ("pwdLockout", [b"TRUE"]), ("pwdMinLength", [b"8"]),
        ], schema))
        self.assertEqual((policy.maxFailure, policy.maxRecordedFailure, policy.minLength),
                         (5, 5, 8))
        self.assertTrue(policy.lockout)
        self.assertTrue(policy.allowUserChange)
        self.assertFalse(policy.safeModify)


class QualityCheckerTests(unittest.SynchronousTestCase):
    """
    The default quality checker: character classes, names, a dictionary.
    """

    def setUp(self) -> None:
        self.entry = Entry(DN.parse(ALICE), [
            ("objectClass", [b"inetOrgPerson"]), ("uid", [b"alice"]),
            ("cn", [b"Alice Anderson"]), ("sn", [b"Anderson"]),
        ], Schema.standard())

    def test_acceptsAllByDefault(self) -> None:
        """
        Without options it accepts anything, as slapd without a check module.
        """
        QualityChecker().check(b"alice", self.entry, Policy())

    def test_characterClasses(self) -> None:
        """
        Lower, upper, digits and others are four classes.
        """
        checker = QualityChecker(minCharacterClasses=3)
        self.assertRaises(QualityError, checker.check, b"lowerUPPER", self.entry, Policy())
        checker.check(b"lowerUPPER1", self.entry, Policy())
        checker.check(b"lower-1", self.entry, Policy())

    def test_names(self) -> None:
        """
        The uid and the words of the cn may not appear, in any case.
        """
        checker = QualityChecker(rejectNames=True)
        for bad in (b"xxALICExx", b"anderson99"):
            error = self.assertRaises(QualityError, checker.check, bad, self.entry, Policy())
            self.assertEqual(error.error, PolicyError.insufficientPasswordQuality)
        checker.check(b"Sunflower-42", self.entry, Policy())

    def test_dictionary(self) -> None:
        """
        Dictionary words are refused, ignoring case.
        """
        checker = QualityChecker(dictionary=["password", "letmein\n"])
        self.assertRaises(QualityError, checker.check, b"LetMeIn", self.entry, Policy())
        checker.check(b"let-me-in", self.entry, Policy())


class _Rejecting:
    """
    A quality checker that refuses every password containing C{"no"}.
    """

    def check(self, password: bytes, entry: Entry, policy: Policy) -> None:
        if b"no" in password:
            raise QualityError("contains no")


class _OpenAccess:
    """
    An access policy that lets everyone do anything, so that the password
    policy's own refusals show.
    """

    name = "open"
    controlsAccess = True


class PasswordPolicyTestsBase(unittest.TestCase):
    """
    A directory with the example organisation, a default policy and the plugin.
    """

    def makePlugin(self) -> PasswordPolicy:
        return PasswordPolicy(self.schema.normalizeDN(DN.parse(DEFAULT)), clock=self.clock,
                              useLockout=True, checker=_Rejecting())

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(START)
        self.schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        self.backend = MemoryBackend(self.schema.normalizeDN(suffix), self.schema)
        self.plugin = self.makePlugin()
        self.directory = self.makeDirectory(self.plugin)
        self.successResultOf(self.directory.open())
        self.wait(self.directory.add(self.internal(), self.entry(
            POLICIES, objectClass=[b"organizationalUnit"], ou=[b"policies"])))
        self.setPolicy("default", pwdMaxFailure=b"3", pwdLockout=b"TRUE")
        self.connection = Connection("test", self.clock)
        self.nextId = 1

    #: Plugins before the password policy.
    access: tuple[Any, ...] = ()

    def makeDirectory(self, plugin: PasswordPolicy) -> Directory:
        suffix = DN.parse(SUFFIX)
        return Directory(
            [Database(suffix, self.backend, DN.parse(ROOT), b"secret", EXAMPLE_LDIF)],
            [*self.access, plugin], schema=self.schema, passwordHash="{SSHA}",
            reactor=self.clock,
        )

    def wait(self, coroutine: Any) -> Any:
        return self.successResultOf(defer.Deferred.fromCoroutine(coroutine))

    def internal(self) -> Operation:
        return self.directory.internalOperation()

    def entry(self, dn: str, **attributes: list[bytes]) -> Entry:
        return Entry(DN.parse(dn), list(attributes.items()), self.schema)

    def ndn(self, dn: str) -> DN:
        return self.schema.normalizeDN(DN.parse(dn))

    def setPolicy(self, name: str, **attributes: bytes) -> None:
        """
        Create or replace the policy C{cn=name}.
        """
        dn = f"cn={name},{POLICIES}"
        deleted = defer.Deferred.fromCoroutine(
            self.directory.delete(self.internal(), self.ndn(dn)))
        deleted.addErrback(lambda f: f.trap(NoSuchObject))
        self.successResultOf(deleted)
        self.wait(self.directory.add(self.internal(), self.entry(
            dn, objectClass=[b"device", b"pwdPolicy"], cn=[name.encode()],
            pwdAttribute=[b"userPassword"],
            **{key: [value] for key, value in attributes.items()})))

    def usePolicy(self, dn: str, name: str) -> None:
        self.setState(dn, pwdPolicySubentry=[f"cn={name},{POLICIES}".encode()])

    def setState(self, dn: str, **attributes: list[bytes]) -> None:
        """
        Replace (or, with no values, delete) attributes of an entry internally.
        """
        self.wait(self.directory.modify(self.internal(), self.ndn(dn), [
            Modification("replace", name, tuple(values)) for name, values in attributes.items()
        ]))

    def state(self, dn: str, name: str) -> tuple[bytes, ...]:
        return self.wait(self.directory.get(self.internal(), self.ndn(dn))).get(name)

    def execute(self, request: Any, controls: Any = None) -> Any:
        """
        @return: the final response message (with its controls).
        """
        responses: list[Any] = []
        framer = Framer()
        framer.feed(pureldap.LDAPMessage(request, controls=controls, id=self.nextId).toWire())
        message = framer.next()
        op = Operation(self.connection, message.messageId, message.request, message.controls)
        self.nextId += 1

        def reply(pdu: bytes, ctrls: Any = ()) -> None:
            responses.append(decodeResponse(encodeMessage(op.messageId, pdu, ctrls)))

        self.successResultOf(self.directory.execute(op, reply))
        return responses[-1]

    def bind(self, dn: str, password: str, controls: Any = REQUEST) -> tuple[int, Any]:
        """
        @return: the result code and the response control's value (or C{None}).
        """
        return self.outcome(pureldap.LDAPBindRequest(dn=dn, auth=password), controls)

    def outcome(self, request: Any, controls: Any = REQUEST) -> tuple[int, Any]:
        response = self.execute(request, controls)
        values = [v for oid, _, v in response.controls or () if oid == PASSWORD_POLICY.encode()]
        return response.value.resultCode, values[0] if values else None

    def modify(self, dn: str, *modifications: tuple[int, str, list[bytes]]) -> tuple[int, Any]:
        return self.outcome(pureldap.LDAPModifyRequest(object=dn, modification=[
            pureber.BERSequence([pureber.BEREnumerated(kind), pureber.BERSequence([
                pureldap.LDAPAttributeDescription(name),
                pureber.BERSet([pureldap.LDAPAttributeValue(v) for v in values])])])
            for kind, name, values in modifications
        ]))

    def passwordModify(self, new: bytes | None, old: bytes | None = None,
                       user: bytes | None = None) -> tuple[int, Any]:
        parts = []
        if user is not None:
            parts.append(octetString(user, 0x80))
        if old is not None:
            parts.append(octetString(old, 0x81))
        if new is not None:
            parts.append(octetString(new, 0x82))
        return self.outcome(pureldap.LDAPExtendedRequest(
            requestName=PASSWORD_MODIFY, requestValue=encodeSequence(parts)))

    def search(self, base: str = ALICE) -> int:
        return self.execute(pureldap.LDAPSearchRequest(
            baseObject=base, scope=0, filter=wireFilter("(objectClass=*)"))).value.resultCode


def error(code: int) -> bytes:
    return responseControl(error=code).value


class BindTests(PasswordPolicyTestsBase):
    """
    Lockout, expiry and grace logins at bind time.
    """

    def test_lockout(self) -> None:
        """
        pwdMaxFailure failures lock the account: each is recorded in
        pwdFailureTime; the next bind, even with the right password, is
        invalidCredentials with accountLocked. The lockout is counted once,
        for the metrics.
        """
        self.assertEqual(self.bind(ALICE, "alice-secret"), (0, b"\x30\x00"))
        for _ in range(3):
            self.clock.advance(1)
            self.assertEqual(self.directory.statistics.lockouts, 0)
            self.assertEqual(self.bind(ALICE, "wrong"), (49, b"\x30\x00"))
        self.assertEqual(len(self.state(ALICE, "pwdFailureTime")), 3)
        self.assertEqual(self.state(ALICE, "pwdAccountLockedTime"), (b"20231114221323Z",))
        self.assertEqual(self.directory.statistics.lockouts, 1)
        self.assertEqual(self.bind(ALICE, "alice-secret"), (49, error(PolicyError.accountLocked)))
        self.assertEqual(len(self.state(ALICE, "pwdFailureTime")), 3)
        self.assertIsNone(self.connection.identity.dn)
        self.assertEqual(self.directory.statistics.lockouts, 1)

    def test_lockoutHoldsAcrossDirectories(self) -> None:
        """
        The lock is state in the backend: another directory (another
        process, or the same after a restart) over it refuses the account too.
        """
        for _ in range(3):
            self.bind(ALICE, "wrong")
            self.clock.advance(1)
        other = self.makeDirectory(self.makePlugin())
        self.plugin, self.directory = other.plugins.plugins[-1], other
        self.assertEqual(self.bind(ALICE, "alice-secret"), (49, error(PolicyError.accountLocked)))

    def test_withoutUseLockout(self) -> None:
        """
        Without use_lockout a locked account is not told why.
        """
        self.plugin.useLockout = False
        self.setState(ALICE, pwdAccountLockedTime=[b"20231114221320Z"])
        self.assertEqual(self.bind(ALICE, "alice-secret"), (49, b"\x30\x00"))

    def test_unlock(self) -> None:
        """
        The root DN unlocks an account by deleting pwdAccountLockedTime,
        which also clears its failures.
        """
        for _ in range(3):
            self.bind(ALICE, "wrong")
            self.clock.advance(1)
        self.assertEqual(self.bind(ROOT, "secret", None), (0, None))
        self.assertEqual(self.modify(ALICE, (1, "pwdAccountLockedTime", [])), (0, None))
        self.assertEqual(self.state(ALICE, "pwdFailureTime"), ())
        self.assertEqual(self.bind(ALICE, "alice-secret"), (0, b"\x30\x00"))

    def test_timeFormats(self) -> None:
        """
        pwdFailureTime is written to the microsecond and pwdAccountLockedTime
        to the second, as slapd writes them.
        """
        self.clock.advance(0.25)
        for _ in range(3):
            self.bind(ALICE, "wrong")
        self.assertIn(b"20231114221320.250000Z", self.state(ALICE, "pwdFailureTime"))
        self.assertEqual(self.state(ALICE, "pwdAccountLockedTime"), (b"20231114221320Z",))

    def test_lockoutDuration(self) -> None:
        """
        A lock ends pwdLockoutDuration seconds after it began, and is removed
        at the next bind.
        """
        self.setPolicy("default", pwdMaxFailure=b"3", pwdLockout=b"TRUE",
                       pwdLockoutDuration=b"60")
        for _ in range(3):
            self.bind(ALICE, "wrong")
        self.clock.advance(59)
        self.assertEqual(self.bind(ALICE, "alice-secret")[0], 49)
        self.clock.advance(1)
        self.assertEqual(self.bind(ALICE, "alice-secret")[0], 0)
        self.assertEqual(self.state(ALICE, "pwdAccountLockedTime"), ())

    def test_failureCountInterval(self) -> None:
        """
        Failures older than pwdFailureCountInterval do not count.
        """
        self.setPolicy("default", pwdMaxFailure=b"3", pwdLockout=b"TRUE",
                       pwdFailureCountInterval=b"10")
        for _ in range(4):
            self.bind(ALICE, "wrong")
            self.clock.advance(6)
        self.assertEqual(self.state(ALICE, "pwdAccountLockedTime"), ())
        self.assertEqual(self.bind(ALICE, "alice-secret")[0], 0)
        self.assertEqual(self.state(ALICE, "pwdFailureTime"), ())

    def test_failuresAtOneInstant(self) -> None:
        """
        Failures at the same instant are each recorded, with distinct
        times; beyond pwdMaxRecordedFailure the oldest are forgotten.
        """
        self.setPolicy("default", pwdMaxRecordedFailure=b"4")
        for _ in range(3):
            self.assertEqual(self.bind(ALICE, "wrong")[0], 49)
        self.assertEqual(len(set(self.state(ALICE, "pwdFailureTime"))), 3)
        for _ in range(3):
            self.assertEqual(self.bind(ALICE, "wrong")[0], 49)
        failures = self.state(ALICE, "pwdFailureTime")
        self.assertEqual(max(failures), b"20231114221320.000005Z")
        self.assertEqual(len(failures), 4)
        self.assertEqual(self.state(ALICE, "pwdAccountLockedTime"), ())

    def test_maxIdle(self) -> None:
        """
        An account not used for pwdMaxIdle seconds is locked.
        """
        self.setPolicy("default", pwdLockout=b"TRUE", pwdMaxIdle=b"100")
        self.assertEqual(self.bind(ALICE, "alice-secret")[0], 0)
        self.clock.advance(100)
        self.assertEqual(self.bind(ALICE, "alice-secret")[0], 0)
        self.clock.advance(101)
        self.assertEqual(self.bind(ALICE, "alice-secret"), (49, error(PolicyError.accountLocked)))

    def assertBindRecords(self, later: float, lastSuccess: bytes) -> None:
        """
        Assert that a successful bind of alice C{later} seconds on leaves
        C{lastSuccess} in her pwdLastSuccess.
        """
        self.clock.advance(later)
        self.assertEqual(self.bind(ALICE, "alice-secret")[0], 0)
        self.assertEqual(self.state(ALICE, "pwdLastSuccess"), (lastSuccess,))

    def test_lastBindEveryBind(self) -> None:
        """
        By default each successful bind records its time in pwdLastSuccess,
        however recent the one recorded.
        """
        self.assertBindRecords(0, b"20231114221320Z")
        self.assertBindRecords(1, b"20231114221321Z")

    def test_lastBindPrecision(self) -> None:
        """
        With C{lastBindPrecision}, a bind leaves pwdLastSuccess as it is
        while it is less than that many seconds old (slapd's
        C{lastbind_precision}), and records its own time once it is older.
        """
        self.plugin.lastBindPrecision = 60
        self.assertBindRecords(0, b"20231114221320Z")
        self.assertBindRecords(59, b"20231114221320Z")
        self.assertBindRecords(1, b"20231114221420Z")

    def test_lastBindPrecisionFailuresCleared(self) -> None:
        """
        A bind that records no pwdLastSuccess under C{lastBindPrecision}
        still forgets the account's earlier failures.
        """
        self.plugin.lastBindPrecision = 60
        self.assertEqual(self.bind(ALICE, "alice-secret")[0], 0)
        self.assertEqual(self.bind(ALICE, "wrong")[0], 49)
        self.assertEqual(len(self.state(ALICE, "pwdFailureTime")), 1)
        self.assertEqual(self.bind(ALICE, "alice-secret")[0], 0)
        self.assertEqual(self.state(ALICE, "pwdFailureTime"), ())
        self.assertEqual(self.state(ALICE, "pwdLastSuccess"), (b"20231114221320Z",))

    def test_rootBypasses(self) -> None:
        """
        The root DN is subject to no policy.
        """
        self.assertEqual(self.bind(ROOT, "wrong"), (49, None))
        self.assertEqual(self.bind(ROOT, "secret"), (0, None))

    def test_perUserPolicy(self) -> None:
        """
        pwdPolicySubentry overrides the default policy; a missing policy
        entry means no policy (and an empty response control, as slapd sends).
        """
        self.setPolicy("lenient", pwdMaxFailure=b"5", pwdLockout=b"TRUE")
        self.usePolicy(ALICE, "lenient")
        for _ in range(4):
            self.bind(ALICE, "wrong")
            self.clock.advance(1)
        self.assertEqual(self.bind(ALICE, "alice-secret")[0], 0)
        self.usePolicy(BOB, "missing")
        for _ in range(4):
            self.bind(BOB, "wrong")
        self.assertEqual(self.state(BOB, "pwdFailureTime"), ())
        self.assertEqual(self.bind(BOB, "bob-secret"), (0, b"\x30\x00"))

    def test_expiryWarning(self) -> None:
        """
        Within pwdExpireWarning of pwdMaxAge a bind carries
        timeBeforeExpiration, in seconds.
        """
        self.setPolicy("default", pwdMaxAge=b"1000", pwdExpireWarning=b"300")
        self.setState(ALICE, pwdChangedTime=[b"20231114221320Z"])
        self.assertEqual(self.bind(ALICE, "alice-secret"), (0, b"\x30\x00"))
        self.clock.advance(750)
        self.assertEqual(self.bind(ALICE, "alice-secret"),
                         (0, responseControl(timeBeforeExpiration=250).value))

    def test_graceLogins(self) -> None:
        """
        An expired password has pwdGraceAuthNLimit grace logins, recorded
        in pwdGraceUseTime; then passwordExpired, and only for the right
        password.
        """
        self.setPolicy("default", pwdMaxAge=b"10", pwdGraceAuthNLimit=b"2")
        self.setState(ALICE, pwdChangedTime=[b"20231114221320Z"])
        self.clock.advance(11)
        self.assertEqual(self.bind(ALICE, "alice-secret"),
                         (0, responseControl(graceAuthNsRemaining=1).value))
        self.clock.advance(1)
        self.assertEqual(self.bind(ALICE, "alice-secret"),
                         (0, responseControl(graceAuthNsRemaining=0).value))
        self.assertEqual(len(self.state(ALICE, "pwdGraceUseTime")), 2)
        self.assertEqual(self.bind(ALICE, "alice-secret"),
                         (49, error(PolicyError.passwordExpired)))
        self.assertEqual(self.bind(ALICE, "wrong"), (49, b"\x30\x00"))

    def test_graceExpiry(self) -> None:
        """
        Grace logins end pwdGraceExpiry seconds after expiry.
        """
        self.setPolicy("default", pwdMaxAge=b"10", pwdGraceAuthNLimit=b"5",
                       pwdGraceExpiry=b"20")
        self.setState(ALICE, pwdChangedTime=[b"20231114221320Z"])
        self.clock.advance(30)
        self.assertEqual(self.bind(ALICE, "alice-secret")[0], 0)
        self.clock.advance(1)
        self.assertEqual(self.bind(ALICE, "alice-secret"),
                         (49, error(PolicyError.passwordExpired)))


class PasswordCheckTests(PasswordPolicyTestsBase):
    """
    Every password check goes through the policy: SASL PLAIN binds, and the
    old password of Password Modify or of a Modify that names it, under the
    default access policy.
    """

    def makeDirectory(self, plugin: PasswordPolicy) -> Directory:
        suffix = DN.parse(SUFFIX)
        plain = IdentityMapping.compile(r"^uid=([^,]+),cn=plain,cn=auth$",
                                        "uid=$1,ou=people,dc=example,dc=com")
        return Directory(
            [Database(suffix, self.backend, DN.parse(ROOT), b"secret", EXAMPLE_LDIF)],
            [plugin], schema=self.schema, passwordHash="{SSHA}", reactor=self.clock,
            authentication=Authentication([plain]),
        )

    def setUp(self) -> None:
        super().setUp()
        self.connection.secure = True

    def plain(self, user: str, password: str) -> tuple[int, Any]:
        """
        Bind with SASL PLAIN and the request control.
        """
        return self.outcome(pureldap.LDAPBindRequest(
            dn=b"", auth=(b"PLAIN", b"\0" + user.encode() + b"\0" + password.encode()),
            sasl=True))

    def lockAlice(self) -> None:
        for _ in range(3):
            self.clock.advance(1)
            self.assertEqual(self.bind(ALICE, "wrong")[0], 49)

    def test_plainCounted(self) -> None:
        """
        Wrong SASL PLAIN passwords are failures: three lock the account, and
        then neither PLAIN nor a simple bind gets in with the right one.
        """
        for _ in range(3):
            self.clock.advance(1)
            self.assertEqual(self.plain("alice", "wrong"), (49, b"\x30\x00"))
        self.assertEqual(len(self.state(ALICE, "pwdFailureTime")), 3)
        self.assertTrue(self.state(ALICE, "pwdAccountLockedTime"))
        self.assertEqual(self.plain("alice", "alice-secret"),
                         (49, error(PolicyError.accountLocked)))
        self.assertEqual(self.bind(ALICE, "alice-secret"), (49, error(PolicyError.accountLocked)))
        self.assertIsNone(self.connection.identity.dn)

    def test_plainLocked(self) -> None:
        """
        An account locked by simple binds does not log in with PLAIN.
        """
        self.lockAlice()
        self.assertEqual(self.plain("alice", "alice-secret"),
                         (49, error(PolicyError.accountLocked)))
        self.assertIsNone(self.connection.identity.dn)

    def test_plainSuccessRecorded(self) -> None:
        """
        A successful PLAIN bind clears the failures, as a simple bind does.
        """
        self.assertEqual(self.plain("alice", "wrong")[0], 49)
        self.assertEqual(self.plain("alice", "alice-secret"), (0, b"\x30\x00"))
        self.assertEqual(self.state(ALICE, "pwdFailureTime"), ())
        self.assertEqual(self.connection.identity.ndn, self.ndn(ALICE))

    def test_otherAccountOneAnswer(self) -> None:
        """
        A user who may not change another account's password gets the same
        answer to Password Modify whether the old password given is right
        or wrong, and nothing is counted against that account.
        """
        self.assertEqual(self.bind(BOB, "bob-secret", None)[0], 0)
        answers = []
        for old in (b"wrong", b"alice-secret"):
            response = self.execute(pureldap.LDAPExtendedRequest(
                requestName=PASSWORD_MODIFY, requestValue=encodeSequence([
                    octetString(ALICE.encode(), 0x80), octetString(old, 0x81),
                    octetString(b"Chosen-5678", 0x82)])))
            answers.append((response.value.resultCode, response.value.errorMessage))
        self.assertEqual(answers[0], answers[1])
        self.assertEqual(answers[0][0], 53)
        self.assertEqual(self.state(ALICE, "pwdFailureTime"), ())
        self.assertEqual(self.bind(ALICE, "alice-secret", None)[0], 0)

    def test_wrongOldPasswordCounted(self) -> None:
        """
        A wrong old password in Password Modify is a failure: three lock
        the account, and then the right old password changes nothing.
        """
        self.assertEqual(self.bind(ALICE, "alice-secret", None)[0], 0)
        for _ in range(3):
            self.clock.advance(1)
            self.assertEqual(self.passwordModify(b"Chosen-5678", old=b"wrong")[0], 53)
        self.assertEqual(len(self.state(ALICE, "pwdFailureTime")), 3)
        self.assertTrue(self.state(ALICE, "pwdAccountLockedTime"))
        self.assertEqual(self.passwordModify(b"Chosen-5678", old=b"alice-secret")[0], 53)
        self.assertEqual(self.bind(ALICE, "Chosen-5678", None)[0], 49)

    def test_lockedNoChange(self) -> None:
        """
        The old password of a locked account does not change its password.
        """
        self.lockAlice()
        # Bound as alice before the lock, on a connection still open.
        self.connection.identity = Identity(DN.parse(ALICE), self.ndn(ALICE))
        self.assertEqual(self.passwordModify(b"Chosen-5678", old=b"alice-secret")[0], 53)
        self.assertEqual(self.modify(ALICE, (1, "userPassword", [b"alice-secret"]),
                                     (0, "userPassword", [b"Chosen-5678"])),
                         (53, error(PolicyError.mustSupplyOldPassword)))

    def test_modifyWrongOldCounted(self) -> None:
        """
        A Modify that names a wrong old value is a failure too.
        """
        self.assertEqual(self.bind(ALICE, "alice-secret", None)[0], 0)
        self.assertEqual(self.modify(ALICE, (1, "userPassword", [b"wrong"]),
                                     (0, "userPassword", [b"Chosen-5678"])),
                         (53, error(PolicyError.mustSupplyOldPassword)))
        self.assertEqual(len(self.state(ALICE, "pwdFailureTime")), 1)

    def test_rootChangesLocked(self) -> None:
        """
        The root DN, a password administrator, may change a locked
        account's password with its old one (as in slapd), which unlocks it.
        """
        self.lockAlice()
        self.assertEqual(self.bind(ROOT, "secret", None)[0], 0)
        self.assertEqual(self.passwordModify(b"Chosen-5678", old=b"alice-secret",
                                             user=ALICE.encode())[0], 0)
        self.assertEqual(self.bind(ALICE, "Chosen-5678", None)[0], 0)


class ResetTests(PasswordPolicyTestsBase):
    """
    pwdMustChange: a password the administrator set must be changed first.
    """

    access = (_OpenAccess(),)

    def setUp(self) -> None:
        super().setUp()
        self.setPolicy("default", pwdMustChange=b"TRUE", pwdInHistory=b"2")
        self.assertEqual(self.bind(ROOT, "secret", None)[0], 0)
        self.assertEqual(self.passwordModify(b"Reset-1234", user=ALICE.encode()), (0, None))

    def test_rootSetsReset(self) -> None:
        """
        The root DN's change sets pwdReset and records the old password in
        pwdHistory.
        """
        self.assertEqual(self.state(ALICE, "pwdReset"), (b"TRUE",))
        self.assertEqual(len(self.state(ALICE, "pwdHistory")), 1)
        self.assertTrue(self.state(ALICE, "pwdHistory")[0].split(b"#")[3].startswith(b"{SSHA}"))

    def test_onlyPasswordChange(self) -> None:
        """
        The bind succeeds with changeAfterReset; searches and other
        modifications are insufficientAccessRights (with the control where
        it was sent); changing the password lifts the restriction.
        """
        self.assertEqual(self.bind(ALICE, "Reset-1234"),
                         (0, error(PolicyError.changeAfterReset)))
        self.assertEqual(self.search(), 50)
        self.assertEqual(self.modify(ALICE, (2, "description", [b"x"])),
                         (50, error(PolicyError.changeAfterReset)))
        self.assertEqual(self.passwordModify(b"Chosen-5678"), (0, None))
        self.assertEqual(self.state(ALICE, "pwdReset"), ())
        self.assertEqual(self.search(), 0)
        self.assertEqual(self.modify(ALICE, (2, "description", [b"x"])), (0, None))

    def test_anotherBindLifts(self) -> None:
        """
        The restriction belongs to the bind: binding again as someone else
        ends it.
        """
        self.bind(ALICE, "Reset-1234")
        self.assertEqual(self.bind(BOB, "bob-secret")[0], 0)
        self.assertEqual(self.search(), 0)


class PasswordChangeTests(PasswordPolicyTestsBase):
    """
    Quality, history, age, safe modify and hashing of password changes.
    """

    def setUp(self) -> None:
        super().setUp()
        self.setPolicy("default", pwdMinLength=b"8", pwdMaxLength=b"20",
                       pwdCheckQuality=b"1", pwdInHistory=b"2")
        self.assertEqual(self.bind(ALICE, "alice-secret", None)[0], 0)

    def test_tooShortTooLong(self) -> None:
        """
        passwordTooShort and passwordTooLong, constraintViolation.
        """
        self.assertEqual(self.passwordModify(b"short"), (19, error(PolicyError.passwordTooShort)))
        self.assertEqual(self.passwordModify(b"x" * 21), (19, error(PolicyError.passwordTooLong)))

    def test_checker(self) -> None:
        """
        The configured quality checker's refusal is insufficientPasswordQuality.
        """
        self.assertEqual(self.passwordModify(b"nononono-1"),
                         (19, error(PolicyError.insufficientPasswordQuality)))

    def test_history(self) -> None:
        """
        Neither the current password nor one of the last pwdInHistory may
        come back; older ones may.
        """
        self.assertEqual(self.passwordModify(b"alice-secret"),
                         (19, error(PolicyError.passwordInHistory)))
        for new in (b"Second-222", b"Third-3333"):
            self.assertEqual(self.passwordModify(new), (0, None))
        self.assertEqual(self.passwordModify(b"Second-222"),
                         (19, error(PolicyError.passwordInHistory)))
        self.assertEqual(len(self.state(ALICE, "pwdHistory")), 2)
        self.assertEqual(self.passwordModify(b"alice-secret"),
                         (19, error(PolicyError.passwordInHistory)))
        self.assertEqual(self.passwordModify(b"Fourth-444"), (0, None))
        self.assertEqual(len(self.state(ALICE, "pwdHistory")), 2)
        self.assertEqual(self.passwordModify(b"alice-secret"), (0, None))

    def test_minAge(self) -> None:
        """
        A password younger than pwdMinAge may not change.
        """
        self.setPolicy("default", pwdMinAge=b"60")
        self.assertEqual(self.passwordModify(b"Second-222"), (0, None))
        self.assertEqual(self.state(ALICE, "pwdChangedTime"), (b"20231114221320Z",))
        self.clock.advance(59)
        self.assertEqual(self.passwordModify(b"Third-3333"),
                         (19, error(PolicyError.passwordTooYoung)))
        self.clock.advance(1)
        self.assertEqual(self.passwordModify(b"Third-3333"), (0, None))

    def test_safeModify(self) -> None:
        """
        With pwdSafeModify a change must name the old password: a Modify
        deleting it (in cleartext) and adding the new one, or Password
        Modify with oldPasswd; a wrong old password is unwillingToPerform.
        """
        self.setPolicy("default", pwdSafeModify=b"TRUE")
        self.assertEqual(self.modify(ALICE, (2, "userPassword", [b"Second-222"])),
                         (50, error(PolicyError.mustSupplyOldPassword)))
        self.assertEqual(self.passwordModify(b"Second-222"),
                         (50, error(PolicyError.mustSupplyOldPassword)))
        self.assertEqual(self.modify(ALICE, (1, "userPassword", [b"wrong"]),
                                     (0, "userPassword", [b"Second-222"])),
                         (53, error(PolicyError.mustSupplyOldPassword)))
        self.assertEqual(self.modify(ALICE, (1, "userPassword", [b"alice-secret"]),
                                     (0, "userPassword", [b"Second-222"])), (0, None))
        self.assertEqual(self.passwordModify(b"Third-3333", old=b"Second-222"), (0, None))
        self.assertEqual(self.bind(ALICE, "Third-3333", None)[0], 0)

    def test_userChangeNotAllowed(self) -> None:
        """
        pwdAllowUserChange FALSE keeps users from changing their own password.
        """
        self.setPolicy("default", pwdAllowUserChange=b"FALSE")
        self.assertEqual(self.passwordModify(b"Second-222"),
                         (50, error(PolicyError.passwordModNotAllowed)))

    def test_hashesCleartext(self) -> None:
        """
        A cleartext value written with Modify is stored hashed, with the
        state a change makes; pwdReset and pwdFailureTime are cleared.
        """
        self.setState(ALICE, pwdFailureTime=[b"20231114221300.000001Z"])
        self.assertEqual(self.modify(ALICE, (2, "userPassword", [b"Second-222"])), (0, None))
        stored = self.state(ALICE, "userPassword")
        self.assertTrue(stored[0].startswith(b"{SSHA}"))
        self.assertTrue(passwords.verifyPassword(stored[0], b"Second-222"))
        self.assertEqual(self.state(ALICE, "pwdChangedTime"), (b"20231114221320Z",))
        self.assertEqual(self.state(ALICE, "pwdFailureTime"), ())

    def test_prehashed(self) -> None:
        """
        A pre-hashed value is kept as it is (its length is checked like any
        other, as slapd does), unless pwdCheckQuality is 2,
        which refuses it for users (it cannot be checked) but not for the
        root DN.
        """
        self.setPolicy("default", pwdCheckQuality=b"1")
        hashed = passwords.hashPassword(b"Second-222", "{SSHA}")
        self.assertEqual(self.modify(ALICE, (2, "userPassword", [hashed])), (0, None))
        self.assertEqual(self.state(ALICE, "userPassword"), (hashed,))
        self.setPolicy("default", pwdCheckQuality=b"2")
        other = passwords.hashPassword(b"Third-3333", "{SSHA}")
        self.assertEqual(self.modify(ALICE, (2, "userPassword", [other])),
                         (19, error(PolicyError.insufficientPasswordQuality)))
        self.bind(ROOT, "secret", None)
        self.assertEqual(self.modify(ALICE, (2, "userPassword", [other])), (0, None))

    def test_passwordModifyRehashes(self) -> None:
        """
        Password Modify's new password is stored with the plugin's own
        scheme when it has one, also when pwdSafeModify puts the old
        password's deletion first.
        """
        self.plugin._hasher.scheme = "{SSHA512}"
        self.setPolicy("default", pwdSafeModify=b"TRUE")
        self.assertEqual(self.passwordModify(b"Second-222", old=b"alice-secret"), (0, None))
        stored = self.state(ALICE, "userPassword")
        self.assertEqual(len(stored), 1)
        self.assertTrue(stored[0].startswith(b"{SSHA512}"))
        self.assertTrue(passwords.verifyPassword(stored[0], b"Second-222"))

    def test_generated(self) -> None:
        """
        A password the server generates for Password Modify is not held to
        pwdCheckQuality 2 (its cleartext is never a pre-hashed value).
        """
        self.setPolicy("default", pwdCheckQuality=b"2")
        response = self.execute(pureldap.LDAPExtendedRequest(
            requestName=PASSWORD_MODIFY, requestValue=encodeSequence([])), REQUEST)
        self.assertEqual(response.value.resultCode, 0)
        self.assertIsNotNone(response.value.response)

    def test_oneValue(self) -> None:
        """
        A password policy allows one userPassword value.
        """
        self.assertEqual(self.modify(ALICE, (2, "userPassword", [b"First-1111", b"Other-222"])),
                         (19, b"\x30\x00"))

    def test_add(self) -> None:
        """
        An added entry's cleartext password is checked (for users), hashed,
        and stamped with pwdChangedTime when passwords age.
        """
        self.setPolicy("default", pwdMaxAge=b"1000", pwdMinLength=b"8", pwdCheckQuality=b"1")
        self.bind(ROOT, "secret", None)
        response = self.outcome(pureldap.LDAPAddRequest(
            entry="uid=zoe,ou=people,dc=example,dc=com",
            attributes=[
                (pureldap.LDAPAttributeDescription("objectClass"),
                 pureber.BERSet([pureldap.LDAPAttributeValue("inetOrgPerson")])),
                (pureldap.LDAPAttributeDescription("cn"),
                 pureber.BERSet([pureldap.LDAPAttributeValue("Zoe")])),
                (pureldap.LDAPAttributeDescription("sn"),
                 pureber.BERSet([pureldap.LDAPAttributeValue("Zoe")])),
                (pureldap.LDAPAttributeDescription("userPassword"),
                 pureber.BERSet([pureldap.LDAPAttributeValue("zoe")])),
            ]))
        self.assertEqual(response, (0, None))
        zoe = "uid=zoe,ou=people,dc=example,dc=com"
        self.assertTrue(passwords.verifyPassword(self.state(zoe, "userPassword")[0], b"zoe"))
        self.assertEqual(self.state(zoe, "pwdChangedTime"), (b"20231114221320Z",))


class FactoryTests(unittest.SynchronousTestCase):
    """
    L{PasswordPolicyFactory} builds the plugin from its configuration table.
    """

    def context(self) -> ConfigContext:
        return ConfigContext(Path("/etc/ldapd.toml"), "plugin[0]", Schema.standard(),
                             task.Clock())

    def test_options(self) -> None:
        """
        Every key is read; the default policy is normalised.
        """
        folder = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, folder)
        dictionary = folder / "words"
        dictionary.write_text("secret\n")
        plugin = PasswordPolicyFactory.fromConfig({
            "default_policy": "CN=Default,ou=Policies,dc=example,dc=com",
            "use_lockout": True, "hash_cleartext": False, "password_hash": "{ARGON2}",
            "argon2_time_cost": 2, "argon2_memory_cost": 1024, "argon2_parallelism": 1,
            "last_bind": False, "last_bind_precision": 300, "min_character_classes": 2,
            "reject_names": True,
            "dictionary": str(dictionary),
        }, self.context())
        self.assertEqual(plugin.defaultPolicy, Schema.standard().normalizeDN(DN.parse(DEFAULT)))
        self.assertTrue(plugin.useLockout)
        self.assertFalse(plugin.hashCleartext)
        self.assertFalse(plugin.lastBind)
        self.assertEqual(plugin.lastBindPrecision, 300)
        self.assertEqual(plugin.checker.dictionary, frozenset({"secret"}))
        hashed = plugin._hasher.hash(b"pw", "{SSHA}")
        self.assertIn(b"m=1024,t=2,p=1", hashed)
        self.assertTrue(passwords.verifyPassword(hashed, b"pw"))

    def test_qualityChecker(self) -> None:
        """
        quality_checker names a checker (or a class making one).
        """
        plugin = PasswordPolicyFactory.fromConfig(
            {"quality_checker": "ldapd.plugins.ppolicy:QualityChecker"}, self.context())
        self.assertIsInstance(plugin.checker, QualityChecker)

    def test_errors(self) -> None:
        """
        Unknown keys, bad DNs, schemes, types and files name the key.
        """
        for table, key in [
            ({"default": "x"}, "plugin[0].default"),
            ({"default_policy": "not a dn"}, "plugin[0].default_policy"),
            ({"password_hash": "{ROT13}"}, "plugin[0].password_hash"),
            ({"use_lockout": "yes"}, "plugin[0].use_lockout"),
            ({"argon2_time_cost": 0}, "plugin[0].argon2_time_cost"),
            ({"dictionary": "/nonexistent/words"}, "plugin[0].dictionary"),
            ({"quality_checker": "nonexistent.module:x"}, "plugin[0].quality_checker"),
            ({"quality_checker": "ldapd.plugins.ppolicy:QualityChecker", "reject_names": True},
             "plugin[0].reject_names"),
        ]:
            error = self.assertRaises(ConfigError, PasswordPolicyFactory.fromConfig, table,
                                      self.context())
            self.assertIn(key, str(error))


class ThreadedHashingTests(unittest.TestCase):
    """
    Slow schemes hash in the reactor's thread pool.
    """

    def test_argon2(self) -> defer.Deferred[None]:
        """
        A cleartext password is hashed with argon2 and the configured
        parameters, off the reactor thread.
        """
        from twisted.internet import reactor

        schema = Schema.standard()
        suffix = DN.parse(SUFFIX)
        plugin = PasswordPolicy(argon2={"time_cost": 1, "memory_cost": 1024, "parallelism": 1})
        directory = Directory(
            [Database(suffix, MemoryBackend(schema.normalizeDN(suffix), schema), DN.parse(ROOT),
                      b"secret", EXAMPLE_LDIF)],
            [plugin], schema=schema, reactor=reactor,
        )
        self.assertIs(plugin.directory, directory)
        op = Operation(Connection("test", reactor), 1, None)

        async def change() -> None:
            await directory.open()
            mods = await plugin.pre_modify(op, [Modification("replace", "userPassword",
                                                             (b"Second-222",))],
                                           schema.normalizeDN(DN.parse(ALICE)))
            stored = mods[0].values[0]
            self.assertTrue(stored.startswith(b"{ARGON2}$argon2id$v=19$m=1024,t=1,p=1$"))
            self.assertTrue(passwords.verifyPassword(stored, b"Second-222"))

        return defer.Deferred.fromCoroutine(change())
