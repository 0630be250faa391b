"""
Password policy (draft-behera-ldap-password-policy), as OpenLDAP 2.5's
C{ppolicy} overlay implements it.

Policies are entries with the C{pwdPolicy} object class. An account's policy
is the one its C{pwdPolicySubentry} names, or else the plugin's default
policy (C{default_policy}); an account with neither has no policy. The state
of each account (C{pwdChangedTime}, C{pwdAccountLockedTime},
C{pwdFailureTime}, C{pwdHistory}, C{pwdGraceUseTime}, C{pwdReset},
C{pwdLastSuccess}) is kept in the account's entry and written with the
directory's internal operations, so that it holds across restarts and across
processes that share one database.

Hooks, in slapd's order of events:

  - C{pre_authenticate} refuses a locked account (invalidCredentials, with
    the accountLocked error when C{use_lockout} is on, as slapd's
    C{ppolicy_use_lockout}), and for a bind an expired one without grace
    logins. It runs for every password check (L{ldapd.passwordcheck}):
    simple binds, SASL PLAIN, and the old password of a change.
  - C{post_authenticate} records failures (and locks after
    C{pwdMaxFailure}), each with writes the database makes atomic, so that
    concurrent failures in several processes all count; for a successful
    bind it clears them, uses up grace logins, warns of expiry, and
    restricts a connection whose password was reset (C{pwdMustChange}) to
    changing it.
  - C{pre_add} and C{pre_modify} check new passwords (quality, history,
    minimum age, safe modify, user change allowed), keep the state
    attributes up to date and hash cleartext values.

The Password Policy response control carries the warnings and errors to
clients that sent the request control (L{PASSWORD_POLICY}),
encoded as slapd encodes it. Where ldapd differs from slapd is listed in
C{docs/compatibility.md}.
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import DEFAULT_MEMORY_COST, DEFAULT_PARALLELISM, DEFAULT_TIME_COST, PasswordHasher, Type
from ldaptor.protocols.ldap import ldaperrors
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import Interface, implementer

from ldapd import passwords
from ldapd._codec import Control, encodeSequence, integer, tlv
from ldapd.dn import DN, InvalidDN
from ldapd.entry import Entry, Modification, parseDescription
from ldapd.extensions import ControlType
from ldapd.gentime import InvalidTime, formatTime, parseTime
from ldapd.host import PluginHost
from ldapd.interfaces import IOperationPlugin
from ldapd.operation import Connection, Operation
from ldapd.passwordcheck import CHANGE, PasswordCheck
from ldapd.registry import ConfigContext, ConfigTable
from ldapd.requests import PasswordModifyRequest

__all__ = [
    "PASSWORD_POLICY",
    "PASSWORD_POLICY_CONTROL",
    "IPasswordQualityChecker",
    "PasswordPolicy",
    "PasswordPolicyFactory",
    "PasswordPolicyRequest",
    "Policy",
    "PolicyError",
    "QualityChecker",
    "QualityError",
    "responseControl",
]

#: The OID of the Password Policy controls.
PASSWORD_POLICY = "1.3.6.1.4.1.42.2.27.8.5.1"


@dataclass(frozen=True)
class PasswordPolicyRequest:
    """
    The Password Policy request control (draft-behera-ldap-password-policy
    §6.1): the client wants the password policy response control.
    """

    criticality: bool = False


def _decodeRequest(value: bytes | None, critical: bool) -> PasswordPolicyRequest:
    if value is not None:
        raise ValueError("passwordPolicyRequest control value not absent")
    return PasswordPolicyRequest(critical)


#: The Password Policy request control, on the operations slapd's ppolicy
#: overlay takes it on.
PASSWORD_POLICY_CONTROL = ControlType(
    PASSWORD_POLICY, _decodeRequest, frozenset({"bind", "add", "modify", "extended"}))


class PolicyError:
    """
    The error values of the Password Policy response control
    (draft-behera-ldap-password-policy §6.2; passwordTooLong is OpenLDAP's).
    """

    passwordExpired = 0
    accountLocked = 1
    changeAfterReset = 2
    passwordModNotAllowed = 3
    mustSupplyOldPassword = 4
    insufficientPasswordQuality = 5
    passwordTooShort = 6
    passwordTooYoung = 7
    passwordInHistory = 8
    passwordTooLong = 9


def responseControl(
    timeBeforeExpiration: int | None = None,
    graceAuthNsRemaining: int | None = None,
    error: int | None = None,
) -> Control:
    """
    Encode a Password Policy response control as slapd does: DER, the
    warning as C{[0]} holding C{[0] timeBeforeExpiration} or C{[1]
    graceAuthNsRemaining} (the former if both are given), the error as C{[1]
    ENUMERATED}.

    @return: the control, not critical.
    """
    parts = []
    if timeBeforeExpiration is not None:
        parts.append(tlv(0xA0, integer(timeBeforeExpiration, 0x80)))
    elif graceAuthNsRemaining is not None:
        parts.append(tlv(0xA0, integer(graceAuthNsRemaining, 0x81)))
    if error is not None:
        parts.append(integer(error, 0x81))
    return Control(PASSWORD_POLICY, False, encodeSequence(parts))


@dataclass(frozen=True)
class Policy:
    """
    A password policy, read from a C{pwdPolicy} entry. Times are in seconds;
    0 turns a feature off. The defaults are those of an account without a
    policy (only C{pwdAllowUserChange} is true).

    @ivar dn: the policy entry's name, or C{None} for no policy.
    @ivar maxRecordedFailure: how many failure times are kept: at least
        C{maxFailure}, as slapd keeps.
    """

    dn: DN | None = None
    minAge: int = 0
    maxAge: int = 0
    maxIdle: int = 0
    inHistory: int = 0
    checkQuality: int = 0
    minLength: int = 0
    maxLength: int = 0
    expireWarning: int = 0
    graceAuthNLimit: int = 0
    graceExpiry: int = 0
    lockout: bool = False
    lockoutDuration: int = 0
    maxFailure: int = 0
    maxRecordedFailure: int = 0
    failureCountInterval: int = 0
    mustChange: bool = False
    allowUserChange: bool = True
    safeModify: bool = False

    @classmethod
    def fromEntry(cls, entry: Entry) -> Policy:
        """
        @param entry: a C{pwdPolicy} entry.
        @return: its policy.
        @raise ValueError: if an integer attribute is not an integer.
        """
        numbers = {
            "minAge": "pwdMinAge", "maxAge": "pwdMaxAge", "maxIdle": "pwdMaxIdle",
            "inHistory": "pwdInHistory", "checkQuality": "pwdCheckQuality",
            "minLength": "pwdMinLength", "maxLength": "pwdMaxLength",
            "expireWarning": "pwdExpireWarning", "graceAuthNLimit": "pwdGraceAuthNLimit",
            "graceExpiry": "pwdGraceExpiry", "lockoutDuration": "pwdLockoutDuration",
            "maxFailure": "pwdMaxFailure", "maxRecordedFailure": "pwdMaxRecordedFailure",
            "failureCountInterval": "pwdFailureCountInterval",
        }
        flags = {
            "lockout": "pwdLockout", "mustChange": "pwdMustChange",
            "allowUserChange": "pwdAllowUserChange", "safeModify": "pwdSafeModify",
        }
        values: dict[str, Any] = {"dn": entry.ndn}
        for field, name in numbers.items():
            found = entry.get(name)
            if found:
                values[field] = int(found[0])
        for field, name in flags.items():
            found = entry.get(name)
            if found:
                values[field] = found[0].upper() == b"TRUE"
        values["maxRecordedFailure"] = max(
            values.get("maxRecordedFailure", 0), values.get("maxFailure", 0)
        )
        return cls(**values)


class QualityError(Exception):
    """
    A new password fails a quality check.

    @ivar error: the L{PolicyError} value the response control carries.
    """

    def __init__(self, message: str, error: int = PolicyError.insufficientPasswordQuality):
        super().__init__(message)
        self.error = error


class IPasswordQualityChecker(Interface):
    """
    Judges the quality of a cleartext password, for policies with
    C{pwdCheckQuality} above 0 (slapd's C{pwdCheckModule}). The plugin checks
    the lengths itself, first.
    """

    def check(password, entry, policy):
        """
        @param password: the new password, cleartext.
        @type password: C{bytes}
        @param entry: the account's entry (for an add, the new entry).
        @param policy: the account's L{Policy}.
        @raise QualityError: if the password is not good enough.
        """


@implementer(IPasswordQualityChecker)
class QualityChecker:
    """
    The quality checker the plugin uses unless configured otherwise; with
    its defaults it accepts everything, as slapd does without a check module.
    """

    def __init__(
        self,
        minCharacterClasses: int = 0,
        rejectNames: bool = False,
        dictionary: Iterable[str] = (),
    ) -> None:
        """
        @param minCharacterClasses: how many of lower case, upper case,
            digits and other characters a password must contain.
        @param rejectNames: refuse passwords that contain the account's
            C{uid} or a word (three characters or more) of its C{cn},
            ignoring case.
        @param dictionary: words a password must not be, ignoring case.
        """
        self.minCharacterClasses = minCharacterClasses
        self.rejectNames = rejectNames
        self.dictionary = frozenset(word.strip().casefold() for word in dictionary if word.strip())

    def check(self, password: bytes, entry: Entry, policy: Policy) -> None:
        """
        See L{IPasswordQualityChecker.check}.
        """
        text = password.decode("utf-8", "replace")
        classes = sum(
            1
            for test in (str.islower, str.isupper, str.isdigit)
            if any(test(c) for c in text)
        ) + (1 if any(not c.isalnum() for c in text) else 0)
        if classes < self.minCharacterClasses:
            raise QualityError(
                f"Password must contain {self.minCharacterClasses} character classes"
            )
        folded = text.casefold()
        if folded in self.dictionary:
            raise QualityError("Password is a dictionary word")
        if self.rejectNames:
            names = [v.decode("utf-8", "replace") for v in entry.get("uid")]
            for cn in entry.get("cn"):
                names += cn.decode("utf-8", "replace").split()
            if any(len(n) >= 3 and n.casefold() in folded for n in names):
                raise QualityError("Password contains the account's name")


class _Hasher:
    """
    Hashes cleartext passwords with one scheme, with argon2's parameters
    configurable.
    """

    def __init__(self, scheme: str | None, argon2: dict[str, int]) -> None:
        self.scheme = scheme
        self._argon2 = PasswordHasher(
            time_cost=argon2.get("time_cost", DEFAULT_TIME_COST),
            memory_cost=argon2.get("memory_cost", DEFAULT_MEMORY_COST),
            parallelism=argon2.get("parallelism", DEFAULT_PARALLELISM),
            type=Type.ID) if argon2 else None

    def hash(self, password: bytes, defaultScheme: str) -> bytes:
        scheme = (self.scheme or defaultScheme).upper()
        if scheme == "{ARGON2}" and self._argon2 is not None:
            return b"{ARGON2}" + self._argon2.hash(password).encode("ascii")
        return passwords.hashPassword(password, scheme)

    def custom(self, defaultScheme: str) -> bool:
        """
        Whether it hashes differently from L{passwords.hashPassword} with
        the directory's scheme.
        """
        return (self.scheme is not None and self.scheme.upper() != defaultScheme.upper()) or (
            self._argon2 is not None
        )


#: The syntax OID slapd records in pwdHistory values (Octet String).
_HISTORY_SYNTAX = b"1.3.6.1.4.1.1466.115.121.1.40"
_ONE_VALUE = "Password policy only allows one password value"
#: How many times a failure is stamped anew when another process recorded
#: one at the same microsecond, and old failures are looked at again when
#: another process forgot some of them first.
_FAILURE_ATTEMPTS = 10
_RESTRICTED = "Operations are restricted to bind/unbind/abandon/StartTLS/modify password"


def _parseTime(value: bytes) -> float | None:
    """
    @return: the seconds since the epoch of a GeneralizedTime value, or
        C{None} if it names no time (slapd's C{000001010000Z}, a lock that
        never ends, among them).
    """
    try:
        return parseTime(value).timestamp()
    except InvalidTime:
        return None


def _historyEntry(value: bytes) -> tuple[float, bytes] | None:
    """
    @param value: a pwdHistory value, C{time#syntax#length#password}.
    @return: its time and password, or C{None} if it is malformed.
    """
    parts = value.split(b"#", 3)
    if len(parts) != 4 or not parts[2].isdigit() or int(parts[2]) != len(parts[3]):
        return None
    when = _parseTime(parts[0])
    return None if when is None else (when, parts[3])


@dataclass
class _Check:
    """
    What C{pre_authenticate} learnt about a password check, for
    C{post_authenticate}.

    @ivar bind: whether the check authenticates the client (only a bind's
        success is recorded, and only a bind answers the control).
    """

    ndn: DN
    policy: Policy
    bind: bool
    wantControl: bool
    modifications: list[Modification]
    error: int | None = None
    decided: bool = False


@implementer(IOperationPlugin)
class PasswordPolicy:
    """
    The password policy plugin. Give it the directory with L{attach} (the
    directory does so when it builds its plugin chain).

    Configure it after the access-control plugin: the state changes it adds
    to a user's password change are the server's, not the user's, and the
    access rules should not see them. Password administrators (whose changes
    skip the checks) are the root DN and the server itself.

    @ivar defaultPolicy: the normalised DN of the default policy, or C{None}.
    @ivar checker: the L{IPasswordQualityChecker}.
    """

    name = "ppolicy"
    _log = Logger()

    def __init__(
        self,
        defaultPolicy: DN | None = None,
        clock: IReactorTime | None = None,
        useLockout: bool = False,
        hashCleartext: bool = True,
        passwordHash: str | None = None,
        argon2: dict[str, int] | None = None,
        lastBind: bool = True,
        checker: Any = None,
        lastBindPrecision: int = 0,
    ) -> None:
        """
        @param defaultPolicy: the default policy's normalised DN.
        @param clock: the clock the policy's times are read from; the
            directory's reactor by default.
        @param useLockout: tell a locked account so in the response control
            (slapd's C{ppolicy_use_lockout}); otherwise it only gets
            invalidCredentials.
        @param hashCleartext: hash cleartext userPassword values of Add and
            Modify (slapd's C{ppolicy_hash_cleartext}).
        @param passwordHash: the scheme to hash with; the directory's
            C{password_hash} by default.
        @param argon2: argon2 parameters (C{time_cost}, C{memory_cost},
            C{parallelism}) for the C{{ARGON2}} scheme.
        @param lastBind: record C{pwdLastSuccess} on each successful bind
            (slapd's C{lastbind}), which C{pwdMaxIdle} needs.
        @param checker: the L{IPasswordQualityChecker}; L{QualityChecker} by default.
        @param lastBindPrecision: leave C{pwdLastSuccess} as it is when it is
            less than this many seconds old (slapd's C{lastbind_precision}):
            a bind then writes nothing to the account, where each would
            otherwise rewrite it. 0: every successful bind records its time.
        """
        self.defaultPolicy = defaultPolicy
        self._clock = clock
        self.useLockout = useLockout
        self.hashCleartext = hashCleartext
        self.lastBind = lastBind
        self.lastBindPrecision = lastBindPrecision
        self.checker = checker if checker is not None else QualityChecker()
        self._hasher = _Hasher(passwordHash, argon2 or {})
        self.directory: Any = None
        self._checks: weakref.WeakKeyDictionary[Operation, _Check] = weakref.WeakKeyDictionary()
        self._restricted: weakref.WeakKeyDictionary[Connection, DN] = weakref.WeakKeyDictionary()
        self._lifting: weakref.WeakSet[Operation] = weakref.WeakSet()

    def attach(self, host: PluginHost) -> None:
        """
        Read and write accounts through the host's directory, and carry out
        the Password Policy control.
        """
        self.directory = host.directory
        if self._clock is None:
            self._clock = host.reactor
        host.addControl(PASSWORD_POLICY_CONTROL)

    # Helpers

    def _now(self) -> float:
        assert self._clock is not None
        return self._clock.seconds()

    async def _get(self, ndn: DN) -> Entry | None:
        try:
            entry: Entry = await self.directory.get(self.directory.internalOperation(), ndn)
        except ldaperrors.LDAPNoSuchObject:
            return None
        return entry

    async def _write(self, ndn: DN, modifications: list[Modification]) -> None:
        if modifications:
            await self.directory.modify(self.directory.internalOperation(), ndn, modifications)

    async def policyFor(self, entry: Entry) -> Policy | None:
        """
        @param entry: an account.
        @return: its policy: the one its C{pwdPolicySubentry} names, or the
            default; C{None} when it has none or the policy entry is missing
            or invalid (slapd then applies no policy either).
        """
        named = entry.get("pwdPolicySubentry")
        if named:
            try:
                ndn = self.directory.schema.normalizeDN(DN.parse(named[0].decode("utf-8")))
            except (InvalidDN, UnicodeDecodeError):
                return None
        elif self.defaultPolicy is not None:
            ndn = self.defaultPolicy
        else:
            return None
        if self.directory.databaseFor(ndn) is None:
            return None
        found = await self._get(ndn)
        if found is None:
            self._log.warn("password policy {dn} is missing; no policy applies", dn=str(ndn))
            return None
        try:
            return Policy.fromEntry(found)
        except ValueError:
            self._log.warn("password policy {dn} is invalid; no policy applies", dn=str(ndn))
            return None

    def _isRoot(self, ndn: DN) -> bool:
        return any(db.normalizedRootDN == ndn for db in self.directory.databases)

    def _admin(self, op: Operation) -> bool:
        return op.internal or op.identity.isRoot

    def _wantControl(self, op: Operation) -> bool:
        return PASSWORD_POLICY in op.controls

    def _refuse(self, op: Operation, error: ldaperrors.LDAPException, code: int | None) -> None:
        if self._wantControl(op):
            op.responseControls.append(responseControl(error=code))
        raise error

    async def _verify(self, stored: bytes, password: bytes) -> bool:
        return await self.directory.passwordVerifier.verify(  # type: ignore[no-any-return]
            (stored,), password, stored
        )

    async def _anyMatches(self, stored: Iterable[bytes], password: bytes) -> bool:
        for value in stored:
            if await self._verify(value, password):
                return True
        return False

    async def _hash(self, op: Operation, ndn: DN, password: bytes) -> bytes:
        return await self.directory.storedPassword(  # type: ignore[no-any-return]
            op, ndn, password, self._hasher.hash,
            self._hasher.scheme or self.directory.passwordHash)

    def _locked(self, entry: Entry, policy: Policy, now: float) -> tuple[bool, list[Modification]]:
        """
        slapd's C{account_locked}: whether the account may not bind now, and
        the changes to make if a lockout has run out.
        """
        start, end = entry.get("pwdStartTime"), entry.get("pwdEndTime")
        if start:
            when = _parseTime(start[0])
            if when is None or now < when:
                return True, []
        if end:
            when = _parseTime(end[0])
            if when is None or when <= now:
                return True, []
        if not policy.lockout:
            return False, []
        if policy.maxIdle and self.lastBind:
            last = entry.get("pwdLastSuccess") or entry.get("pwdChangedTime")
            when = _parseTime(last[0]) if last else None
            if when is not None and now > when + policy.maxIdle:
                return True, []
        value = entry.get("pwdAccountLockedTime")
        if value:
            when = _parseTime(value[0])
            if when is None:
                return True, []
            if now < when:
                return False, []
            if not policy.lockoutDuration or now < when + policy.lockoutDuration:
                return True, []
            return False, [Modification("delete", "pwdAccountLockedTime")]
        return False, []

    def _expiry(self, entry: Entry, policy: Policy, now: int) -> tuple[bool, int]:
        """
        @return: whether the password has expired, and how many grace
            logins remain after this one (negative: none).
        """
        changed = entry.get("pwdChangedTime")
        when = _parseTime(changed[0]) if changed else None
        reset = policy.mustChange and entry.get("pwdReset") == (b"TRUE",)
        if reset or not policy.maxAge or when is None or now - int(when) <= policy.maxAge:
            return False, -1
        if policy.graceExpiry and now - int(when) > policy.maxAge + policy.graceExpiry:
            remaining = 0
        else:
            remaining = policy.graceAuthNLimit - len(entry.get("pwdGraceUseTime"))
        return True, remaining - 1

    # Password checks (binds, and the old password of a change)

    async def pre_authenticate(self, op: Operation, check: PasswordCheck) -> None:
        """
        Refuse a locked account, and for a bind an expired one with no
        grace logins left (once its password is known to be right), with
        invalidCredentials. The root DN bypasses the policy, and so do
        password administrators checking an old password.
        """
        if check.isBind:
            self._restricted.pop(op.connection, None)
        if op.internal or self._isRoot(check.ndn) or (not check.isBind and self._admin(op)):
            return
        entry = await self._get(check.ndn)
        if entry is None:
            return
        wantControl = check.isBind and self._wantControl(op)
        policy = await self.policyFor(entry)
        if policy is None:
            # As slapd: no checks, but the outcome is still recorded (with
            # the defaults of no policy) and the control answered.
            self._checks[op] = _Check(check.ndn, Policy(), check.isBind, wantControl, [])
            return
        now = self._now()
        locked, modifications = self._locked(entry, policy, now)
        state = _Check(check.ndn, policy, check.isBind, wantControl, modifications)
        self._checks[op] = state
        if locked:
            state.decided = True
            state.error = PolicyError.accountLocked if self.useLockout else None
            raise ldaperrors.LDAPInvalidCredentials()
        if not check.isBind:
            return
        expired, remaining = self._expiry(entry, policy, int(now))
        if expired and remaining < 0 and entry.get("userPassword"):
            if await self._anyMatches(entry.get("userPassword"), check.password):
                state.decided = True
                state.error = PolicyError.passwordExpired
                if entry.get("pwdFailureTime"):
                    state.modifications.append(Modification("delete", "pwdFailureTime"))
                # slapd records the authentication before its policy
                # turns it into a failure.
                state.modifications.extend(self._lastSuccess(entry, now))
            raise ldaperrors.LDAPInvalidCredentials()

    async def post_authenticate(self, op: Operation, resultCode: int) -> None:
        """
        Record a password check's outcome in the account, and answer a
        bind's request control.
        """
        state = self._checks.pop(op, None)
        if state is None:
            return
        warning: int | None = None
        grace: int | None = None
        failed: Entry | None = None
        if not state.decided:
            entry = await self._get(state.ndn)
            if entry is not None and entry.get("userPassword"):
                if resultCode == ldaperrors.LDAPInvalidCredentials.resultCode:
                    failed = entry
                elif resultCode == 0 and state.bind:
                    warning, grace = self._recordBind(op, entry, state)
        await self._record(state.ndn, state.modifications)
        if failed is not None:
            await self._recordFailure(failed, state.policy)
        if state.wantControl:
            op.responseControls.append(responseControl(warning, grace, state.error))

    async def _recordFailure(self, entry: Entry, policy: Policy) -> None:
        """
        slapd's C{ppolicy_bind_response} for a wrong password: add the
        failure to pwdFailureTime, lock the account once pwdMaxFailure
        failures count, and keep at most pwdMaxRecordedFailure of them.

        Each step is a write the database makes atomic on its own (adding a
        value, adding the single lock value, deleting named values), judged
        on the entry as the failure's own write left it: concurrent
        failures, in this process or in others sharing the database, are
        all counted, where a read followed by a replace kept only one.
        """
        if not policy.maxRecordedFailure:
            return
        ndn = entry.ndn
        # After every failure recorded, so that it is never the oldest one,
        # the first forgotten.
        times = [t for t in map(_parseTime, entry.get("pwdFailureTime")) if t is not None]
        stamp = max([self._now(), *(t + 1e-6 for t in times)])
        for _ in range(_FAILURE_ATTEMPTS):
            failure = formatTime(stamp, fraction=True)
            try:
                entry = await self.directory.modify(
                    self.directory.internalOperation(), ndn,
                    [Modification("add", "pwdFailureTime", (failure,))],
                )
                break
            except ldaperrors.LDAPAttributeOrValueExists:
                # Another process recorded a failure at the same microsecond.
                stamp += 1e-6
            except ldaperrors.LDAPException as e:
                self._log.error("password failure of {dn} not recorded: {e}", dn=str(ndn), e=e)
                return
        else:
            self._log.error("password failure of {dn} not recorded", dn=str(ndn))
            return
        now = self._now()
        count = sum(
            1
            for value in entry.get("pwdFailureTime")
            if not policy.failureCountInterval
            or (
                (when := _parseTime(value)) is not None
                and int(now) <= when + policy.failureCountInterval
            )
        )
        if policy.maxFailure and count >= policy.maxFailure and not entry.get(
            "pwdAccountLockedTime"
        ):
            if await self._record(
                    ndn, [Modification("add", "pwdAccountLockedTime", (formatTime(now),))]):
                self.directory.statistics.lockouts += 1
        for _ in range(_FAILURE_ATTEMPTS):
            recorded = sorted(
                entry.get("pwdFailureTime"), key=lambda value: _parseTime(value) or 0.0
            )
            excess = recorded[: max(len(recorded) - policy.maxRecordedFailure, 0)]
            if not excess:
                return
            try:
                await self._write(ndn, [Modification("delete", "pwdFailureTime", tuple(excess))])
                return
            except ldaperrors.LDAPNoSuchAttribute:
                # Another process forgot some of them first: look again.
                found = await self._get(ndn)
                if found is None:
                    return
                entry = found
            except ldaperrors.LDAPException as e:
                self._log.error("old password failures of {dn} not forgotten: {e}",
                                dn=str(ndn), e=e)
                return

    async def _record(self, ndn: DN, modifications: list[Modification]) -> bool:
        """
        Write changes to an account's state. Another process may have made
        them first (locked the account, forgotten old failures, ended a
        lockout): then they are left as it made them. Other errors are
        logged; the operation's outcome stands.

        @return: whether this write made them.
        """
        try:
            await self._write(ndn, modifications)
        except (
            ldaperrors.LDAPAttributeOrValueExists,
            ldaperrors.LDAPConstraintViolation,
            ldaperrors.LDAPNoSuchAttribute,
        ):
            return False
        except ldaperrors.LDAPException as e:
            self._log.error(
                "password policy state of {dn} not recorded: {e}", dn=str(ndn), e=e
            )
            return False
        return True

    def _lastSuccess(self, entry: Entry, now: float) -> list[Modification]:
        """
        The change that records a successful authentication of C{entry}'s
        account at C{now}: none without C{lastBind}, or while the time it
        holds is within C{lastBindPrecision} seconds of C{now}.
        """
        if not self.lastBind:
            return []
        if self.lastBindPrecision:
            stored = entry.get("pwdLastSuccess")
            when = _parseTime(stored[0]) if stored else None
            if when is not None and 0 <= now - when < self.lastBindPrecision:
                return []
        return [Modification("replace", "pwdLastSuccess", (formatTime(now),))]

    def _recordBind(
        self, op: Operation, entry: Entry, state: _Check
    ) -> tuple[int | None, int | None]:
        """
        slapd's C{ppolicy_bind_response} for a successful bind: the changes
        it makes to the account (added to C{state.modifications}), and the
        warnings.
        """
        policy = state.policy
        now = self._now()
        mods = state.modifications
        if entry.get("pwdFailureTime"):
            mods.append(Modification("delete", "pwdFailureTime"))
        mods.extend(self._lastSuccess(entry, now))
        if policy.mustChange and entry.get("pwdReset") == (b"TRUE",):
            self._restricted[op.connection] = state.ndn
            state.error = PolicyError.changeAfterReset
        expired, remaining = self._expiry(entry, policy, int(now))
        grace = None
        if expired:
            grace = remaining
            mods.append(Modification("add", "pwdGraceUseTime", (formatTime(now, fraction=True),)))
        changed = entry.get("pwdChangedTime")
        when = _parseTime(changed[0]) if changed else None
        if expired or policy.maxAge < 1 or policy.expireWarning < 1 or when is None:
            return None, grace
        left = policy.maxAge - (int(now) - int(when))
        if left < policy.expireWarning:
            return max(left, 0), grace
        return None, grace

    # The restriction after a reset

    def _checkRestricted(self, op: Operation) -> None:
        restricted = self._restricted.get(op.connection)
        if restricted is None:
            return
        if restricted != op.identity.ndn:
            del self._restricted[op.connection]
            return
        self._refuse(
            op, ldaperrors.LDAPInsufficientAccessRights(_RESTRICTED), PolicyError.changeAfterReset
        )

    def _onlyPasswordChange(self, op: Operation, ndn: DN, *args: Any) -> None:
        """
        A connection restricted to changing its password may not search,
        compare, delete or rename.
        """
        if not op.internal:
            self._checkRestricted(op)

    pre_search = pre_compare = pre_delete = pre_rename = _onlyPasswordChange

    def _passwordChanged(self, op: Operation, resultCode: int) -> None:
        if resultCode == 0 and op in self._lifting:
            self._restricted.pop(op.connection, None)

    def post_modify(self, op: Operation, resultCode: int) -> None:
        """
        A successful password change lifts the restriction after a reset.
        """
        self._passwordChanged(op, resultCode)

    def post_extended(self, op: Operation, resultCode: int) -> None:
        """
        As L{post_modify}, for Password Modify.
        """
        self._passwordChanged(op, resultCode)

    # Add

    async def _checkQuality(
        self, op: Operation, password: bytes, entry: Entry, policy: Policy
    ) -> None:
        """
        slapd's C{check_password_quality}: lengths, then a pre-hashed value
        (refused only when C{pwdCheckQuality} is 2), then the checker.
        """
        if not password or policy.minLength > len(password):
            self._refuse(
                op,
                ldaperrors.LDAPConstraintViolation("Password fails quality checking policy"),
                PolicyError.passwordTooShort,
            )
        if policy.maxLength and len(password) > policy.maxLength:
            self._refuse(
                op,
                ldaperrors.LDAPConstraintViolation("Password fails quality checking policy"),
                PolicyError.passwordTooLong,
            )
        if passwords.isHashed(password):
            if policy.checkQuality == 2:
                self._refuse(
                    op,
                    ldaperrors.LDAPConstraintViolation("Password fails quality checking policy"),
                    PolicyError.insufficientPasswordQuality,
                )
            return
        try:
            await defer.maybeDeferred(self.checker.check, password, entry, policy)
        except QualityError as e:
            self._refuse(op, ldaperrors.LDAPConstraintViolation(str(e)), e.error)

    async def pre_add(self, op: Operation, entry: Entry) -> Entry | None:
        """
        Check and hash the new entry's password, and stamp
        C{pwdChangedTime} when passwords age.
        """
        if op.internal:
            return None
        self._checkRestricted(op)
        values = entry.get("userPassword")
        if not values:
            return None
        if len(values) > 1:
            raise ldaperrors.LDAPConstraintViolation(_ONE_VALUE)
        policy = await self.policyFor(entry) or Policy()
        if policy.checkQuality > 0 and not self._admin(op):
            await self._checkQuality(op, values[0], entry, policy)
        replaced: dict[str, tuple[bytes, ...]] = {}
        if self.hashCleartext and not passwords.isHashed(values[0]):
            replaced["userpassword"] = (await self._hash(op, entry.ndn, values[0]),)
        attributes = [
            (a.description, replaced.get(a.description.lower(), a.values)) for a in entry
        ]
        if (policy.maxAge or policy.minAge) and not entry.get("pwdChangedTime"):
            attributes.append(("pwdChangedTime", (formatTime(self._now()),)))
        return Entry(entry.dn, attributes, entry.schema, entry.ndn)

    # Modify

    async def pre_modify(
        self, op: Operation, modifications: list[Modification], ndn: DN
    ) -> list[Modification] | None:
        """
        slapd's C{ppolicy_modify}: check a password change against the
        policy, and add the state changes it makes.
        """
        if op.internal:
            return None
        try:
            change = _PasswordChange.of(self.directory.schema, modifications)
        except ldaperrors.LDAPConstraintViolation as e:
            self._refuse(op, e, None)
        restricted = self._restricted.get(op.connection)
        if restricted is not None and not change.onlyPassword:
            if restricted == op.identity.ndn:
                self._refuse(
                    op,
                    ldaperrors.LDAPInsufficientAccessRights(_RESTRICTED),
                    PolicyError.changeAfterReset,
                )
            del self._restricted[op.connection]
            restricted = None
        if not change.passwordModified and "pwdaccountlockedtime" not in change.deleted:
            return None
        entry = await self._get(ndn)
        if entry is None:
            return None
        mods = list(modifications)
        if not change.passwordModified:
            # Unlocking also forgets the failures (ITS#8762).
            if "pwdfailuretime" not in change.deleted and entry.get("pwdFailureTime"):
                mods.append(Modification("delete", "pwdFailureTime"))
            return mods
        oldPassword = newPassword = None
        generated = False
        if isinstance(op.request, PasswordModifyRequest):
            oldPassword, newPassword = op.request.oldPassword, op.request.newPassword
            generated = newPassword is None
        policy = await self.policyFor(entry)
        admin = self._admin(op)
        history: list[tuple[float, bytes, bytes]] = []
        addMod = change.addMod
        if policy is not None:
            if addMod is not None and policy.inHistory > 0:
                for value in entry.get("pwdHistory"):
                    parsed = _historyEntry(value)
                    if parsed is not None:
                        history.append((parsed[0], parsed[1], value))
                history.sort(key=lambda h: h[0])
            if not admin:
                addMod = await self._checkChange(
                    op, entry, policy, mods, change, oldPassword, newPassword, generated, history
                )
                if addMod is None:
                    # Only deleting a password: none of the state changes.
                    return mods
        if restricted is not None:
            self._lifting.add(op)
        mods += self._stateChanges(entry, policy, change, admin, history)
        if addMod is not None:
            value = mods[addMod].values[0]
            rehash = None
            if newPassword is not None:
                if self._hasher.custom(self.directory.passwordHash):
                    rehash = newPassword
            elif not generated and self.hashCleartext and not passwords.isHashed(value):
                rehash = value
            if rehash is not None:
                mods[addMod] = Modification(
                    mods[addMod].operation, mods[addMod].description,
                    (await self._hash(op, entry.ndn, rehash),)
                )
        return mods

    def _stateChanges(
        self,
        entry: Entry,
        policy: Policy | None,
        change: _PasswordChange,
        admin: bool,
        history: list[tuple[float, bytes, bytes]],
    ) -> list[Modification]:
        """
        The state a password change resets or records, as slapd keeps it:
        pwdChangedTime, the end of grace logins, lock and failures, pwdReset
        (set when an administrator changes the password under
        pwdMustChange), pwdLastSuccess, and pwdHistory.
        """
        now = self._now()
        mods = []
        if "pwdchangedtime" not in change.touched:
            if change.passwordOperation != "delete":
                mods.append(Modification("replace", "pwdChangedTime", (formatTime(now),)))
            elif entry.get("pwdChangedTime"):
                mods.append(Modification("delete", "pwdChangedTime"))
        for name in ("pwdGraceUseTime", "pwdAccountLockedTime", "pwdFailureTime"):
            if name.lower() not in change.deleted and entry.get(name):
                mods.append(Modification("delete", name))
        if not change.keepReset:
            if policy is not None and policy.mustChange and admin:
                mods.append(Modification("replace", "pwdReset", (b"TRUE",)))
            elif entry.get("pwdReset"):
                mods.append(Modification("delete", "pwdReset"))
        if "pwdlastsuccess" not in change.deleted and entry.get("pwdLastSuccess"):
            mods.append(Modification("delete", "pwdLastSuccess"))
        inHistory = policy.inHistory if policy is not None else 0
        stored = entry.get("userPassword")
        if "pwdhistory" not in change.touched:
            if inHistory == 0 and entry.get("pwdHistory"):
                mods.append(Modification("delete", "pwdHistory"))
            if inHistory > 0:
                if len(history) >= inHistory:
                    oldest = [raw for _, _, raw in history[: len(history) - inHistory + 1]]
                    mods.append(Modification("delete", "pwdHistory", tuple(oldest)))
                if stored:
                    value = b"#".join(
                        [formatTime(now), _HISTORY_SYNTAX, str(len(stored[0])).encode(), stored[0]]
                    )
                    mods.append(Modification("add", "pwdHistory", (value,)))
        return mods

    async def _checkChange(
        self,
        op: Operation,
        entry: Entry,
        policy: Policy,
        mods: list[Modification],
        change: _PasswordChange,
        oldPassword: bytes | None,
        newPassword: bytes | None,
        generated: bool,
        history: list[tuple[float, bytes, bytes]],
    ) -> int | None:
        """
        The checks slapd makes of a user's own password change, in its
        order. The old password's deletion is put in C{mods} (first) with
        the stored value when the change names it.

        @return: the index in C{mods} of the modification that sets the new
            password, or C{None} when the change only deletes one.
        """
        if not policy.allowUserChange and op.identity.ndn == entry.ndn:
            self._refuse(
                op,
                ldaperrors.LDAPInsufficientAccessRights(
                    "User alteration of password is not allowed"
                ),
                PolicyError.passwordModNotAllowed,
            )
        addMod, deleteMod = change.addMod, change.deleteMod
        if addMod is None:
            return None
        oldNamed = change.deleteThenAdd
        if policy.safeModify and oldPassword is not None:
            mods.insert(0, Modification("delete", "userPassword", (oldPassword,)))
            addMod, deleteMod, oldNamed = addMod + 1, 0, True
        if policy.safeModify and not oldNamed:
            self._refuse(
                op,
                ldaperrors.LDAPInsufficientAccessRights(
                    "Must supply old password to be changed as well as new one"
                ),
                PolicyError.mustSupplyOldPassword,
            )
        now = self._now()
        if entry.get("pwdReset") != (b"TRUE",) and policy.minAge > 0:
            changed = entry.get("pwdChangedTime")
            when = _parseTime(changed[0]) if changed else None
            if when is not None and int(now) - int(when) < policy.minAge:
                self._refuse(
                    op,
                    ldaperrors.LDAPConstraintViolation("Password is too young to change"),
                    PolicyError.passwordTooYoung,
                )
        stored = entry.get("userPassword")
        if stored and deleteMod is not None:
            # Password Modify checked its old password already, through the
            # directory's one password check; a Modify that names the old
            # value has it checked the same way (locks, failures counted).
            if oldPassword is None:
                try:
                    await self.directory.verifyPassword(
                        op, entry.ndn, mods[deleteMod].values[0], CHANGE
                    )
                except ldaperrors.LDAPInvalidCredentials:
                    self._refuse(
                        op,
                        ldaperrors.LDAPUnwillingToPerform(
                            "Must supply correct old password to change to new one"
                        ),
                        PolicyError.mustSupplyOldPassword,
                    )
            mods[deleteMod] = Modification("delete", mods[deleteMod].description, (stored[0],))
        if generated:
            return addMod
        new = newPassword if newPassword is not None else mods[addMod].values[0]
        if policy.checkQuality > 0:
            await self._checkQuality(op, new, entry, policy)
        if stored and policy.inHistory > 0:
            if await self._anyMatches(stored, new):
                self._refuse(
                    op,
                    ldaperrors.LDAPConstraintViolation(
                        "Password is not being changed from existing value"
                    ),
                    PolicyError.passwordInHistory,
                )
            for _, old, _ in history[max(len(history) - policy.inHistory, 0):]:
                if await self._verify(old, new):
                    self._refuse(
                        op,
                        ldaperrors.LDAPConstraintViolation(
                            "Password is in history of old passwords"
                        ),
                        PolicyError.passwordInHistory,
                    )
        return addMod


@dataclass
class _PasswordChange:
    """
    What a Modify request does to the password and the state attributes.

    @ivar passwordModified: whether it changes userPassword at all.
    @ivar passwordOperation: the operation of its last userPassword change.
    @ivar onlyPassword: whether it changes no user attribute but userPassword.
    @ivar deleteMod: the index of a deletion of a userPassword value.
    @ivar addMod: the index of the change that sets a userPassword value.
    @ivar deleteThenAdd: whether a value is deleted before one is set (the
        old password named, as pwdSafeModify asks).
    @ivar keepReset: whether it sets pwdReset itself.
    @ivar deleted: the (lower-case) names of attributes it deletes from.
    @ivar touched: the (lower-case) names of attributes it changes.
    """

    passwordModified: bool = False
    passwordOperation: str | None = None
    onlyPassword: bool = True
    deleteMod: int | None = None
    addMod: int | None = None
    deleteThenAdd: bool = False
    keepReset: bool = False
    deleted: frozenset[str] = frozenset()
    touched: frozenset[str] = frozenset()

    @classmethod
    def of(cls, schema: Any, modifications: list[Modification]) -> _PasswordChange:
        """
        @raise ldaperrors.LDAPConstraintViolation: if it would give the
            account more than one password (slapd refuses that whatever the
            policy).
        """
        change = cls()
        password = schema.attributeType("userPassword")
        deleted, touched = set(), set()
        for i, mod in enumerate(modifications):
            at, _ = parseDescription(schema, mod.description)
            name = at.name.lower()
            if at is password:
                change.passwordModified = True
                change.passwordOperation = mod.operation
                if change.deleteMod is None and mod.operation == "delete" and mod.values:
                    change.deleteMod = i
                if mod.operation in ("add", "replace") and mod.values:
                    if change.deleteMod is not None:
                        change.deleteThenAdd = True
                    if change.addMod is not None or len(mod.values) > 1:
                        raise ldaperrors.LDAPConstraintViolation(_ONE_VALUE)
                    change.addMod = i
            elif not at.operational:
                change.onlyPassword = False
            if name == "pwdreset" and mod.operation in ("add", "replace"):
                change.keepReset = True
            if mod.operation == "delete":
                deleted.add(name)
            touched.add(name)
        change.deleted, change.touched = frozenset(deleted), frozenset(touched)
        return change


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


_KEYS = {
    "default_policy",
    "use_lockout",
    "hash_cleartext",
    "password_hash",
    "argon2_time_cost",
    "argon2_memory_cost",
    "argon2_parallelism",
    "last_bind",
    "last_bind_precision",
    "min_character_classes",
    "reject_names",
    "dictionary",
    "quality_checker",
}


class PasswordPolicyFactory:
    """
    Builds L{PasswordPolicy} from a C{[[plugin]]} table.
    """

    name = "ppolicy"
    description = "Password policy (draft-behera), compatible with OpenLDAP's ppolicy overlay."

    @staticmethod
    def fromConfig(table: dict[str, Any], context: ConfigContext) -> PasswordPolicy:
        """
        @param table: the keys C{default_policy} (a DN), C{use_lockout},
            C{hash_cleartext}, C{password_hash}, C{argon2_time_cost},
            C{argon2_memory_cost}, C{argon2_parallelism}, C{last_bind},
            C{last_bind_precision} (seconds), C{min_character_classes}, C{reject_names}, C{dictionary} (a file
            of words, one a line) and C{quality_checker}
            (C{"package.module:name"} of an L{IPasswordQualityChecker}, or
            of a class making one with no arguments).
        @param context: the L{ConfigContext}.
        @raise ldapd.registry.ConfigError: naming the key that is wrong.
        """
        config = ConfigTable(table, context, _KEYS)
        defaultPolicy = config.dn("default_policy")
        if defaultPolicy is not None:
            defaultPolicy = context.schema.normalizeDN(defaultPolicy)
        scheme = config.string("password_hash")
        if scheme is not None and scheme.upper() not in passwords.SCHEMES:
            raise context.error(
                "password_hash", f"unknown scheme (known: {', '.join(passwords.SCHEMES)})"
            )
        argon2 = {}
        for key in ("time_cost", "memory_cost", "parallelism"):
            value = config.integer("argon2_" + key, None, minimum=1)
            if value is not None:
                argon2[key] = value
        checker: Any
        name = config.string("quality_checker")
        if name is not None:
            for key in ("min_character_classes", "reject_names", "dictionary"):
                if key in config:
                    raise context.error(
                        key, "is the default checker's; quality_checker replaces it"
                    )
            moduleName, _, attr = name.partition(":")
            try:
                checker = getattr(importlib.import_module(moduleName), attr)
            except (ImportError, AttributeError, ValueError) as e:
                raise context.error("quality_checker", f"cannot load {name!r}: {e}") from None
            if isinstance(checker, type):
                checker = checker()
        else:
            words: list[str] = []
            dictionary = config.string("dictionary")
            if dictionary is not None:
                path: Path = context.resolvePath(dictionary)
                try:
                    words = path.read_text(errors="replace").splitlines()
                except OSError as e:
                    raise context.error("dictionary", f"cannot read {path}: {e.strerror}") from None
            classes = config.integer("min_character_classes", 0, minimum=0, maximum=4)
            checker = QualityChecker(classes, config.boolean("reject_names", False), words)
        return PasswordPolicy(
            defaultPolicy,
            useLockout=config.boolean("use_lockout", False),
            hashCleartext=config.boolean("hash_cleartext", True),
            passwordHash=scheme,
            argon2=argon2,
            lastBind=config.boolean("last_bind", True),
            checker=checker,
            lastBindPrecision=config.integer("last_bind_precision", 0, minimum=0),
        )
