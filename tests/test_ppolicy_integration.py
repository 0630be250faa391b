"""
The password policy plugin side by side with OpenLDAP's ppolicy overlay.

A private slapd (L{ldapd.testing.SlapdProcess}, back-mdb, with the ppolicy
overlay, C{ppolicy_use_lockout}, C{ppolicy_hash_cleartext} and C{lastbind})
and the real C{twist ldapd} with the C{ppolicy} plugin are seeded with the
same policies and accounts. Accounts whose state lies in the past (a password
changed an hour ago, failures an hour old) are seeded with it, so that no
scenario waits. Each scenario drives both servers with the same
C{ldapwhoami -e ppolicy}, C{ldappasswd -e ppolicy}, C{ldapmodify} and
C{ldapsearch} commands, and compares exit status, the clients' password
policy messages and the accounts' state attributes.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ldaptor.protocols import pureber, pureldap
from twisted.trial import unittest

from ldapd.testing import (
    SLAPD,
    ServerProcess,
    SlapdProcess,
    decodeResponses,
    privatePostgreSQLSchema,
)

pytestmark = pytest.mark.integration

BASE = "dc=example,dc=com"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "secret"
POLICIES_DN = f"ou=policies,{BASE}"
PEOPLE_DN = f"ou=people,{BASE}"
DEFAULT_POLICY = f"cn=default,{POLICIES_DN}"

#: Policies by name: their attributes besides pwdAttribute.
POLICIES: dict[str, dict[str, str]] = {
    "default": {"pwdLockout": "TRUE", "pwdMaxFailure": "3"},
    "lockdur": {"pwdLockout": "TRUE", "pwdMaxFailure": "3", "pwdLockoutDuration": "60"},
    "interval": {"pwdLockout": "TRUE", "pwdMaxFailure": "2", "pwdFailureCountInterval": "60"},
    "idle": {"pwdLockout": "TRUE", "pwdMaxIdle": "60"},
    "reset": {"pwdMustChange": "TRUE"},
    "warn": {"pwdMaxAge": "100000", "pwdExpireWarning": "200000"},
    "grace": {"pwdMaxAge": "60", "pwdGraceAuthNLimit": "2"},
    "graceexpiry": {"pwdMaxAge": "60", "pwdGraceAuthNLimit": "5", "pwdGraceExpiry": "60"},
    "expired": {"pwdMaxAge": "60"},
    "quality": {"pwdMinLength": "8", "pwdCheckQuality": "1", "pwdInHistory": "2"},
    "strict": {"pwdCheckQuality": "2"},
    "young": {"pwdMinAge": "3600"},
    "safe": {"pwdSafeModify": "TRUE"},
    "nochange": {"pwdAllowUserChange": "FALSE"},
}

#: A policy entry that does not exist: accounts naming it have no policy.
MISSING_POLICY = "missing"

HOUR_AGO = "hour"
THOUSAND_SECONDS_AGO = "thousand"

#: Accounts by uid: their policy (C{None}: the default) and seeded state.
ACCOUNTS: dict[str, tuple[str | None, dict[str, list[str]]]] = {
    "lock": (None, {}),
    "lockdur": ("lockdur", {"pwdAccountLockedTime": [HOUR_AGO]}),
    "interval": ("interval", {"pwdFailureTime": [HOUR_AGO, HOUR_AGO + ".5"]}),
    "idle": ("idle", {"pwdLastSuccess": [HOUR_AGO]}),
    "reset": ("reset", {"pwdReset": ["TRUE"]}),
    "warn": ("warn", {"pwdChangedTime": [THOUSAND_SECONDS_AGO]}),
    "grace": ("grace", {"pwdChangedTime": [HOUR_AGO]}),
    "graceexpiry": ("graceexpiry", {"pwdChangedTime": [HOUR_AGO]}),
    "expired": ("expired", {"pwdChangedTime": [HOUR_AGO]}),
    "quality": ("quality", {}),
    "strict": ("strict", {}),
    "young": ("young", {}),
    "safe": ("safe", {}),
    "nochange": ("nochange", {}),
    "hashing": (None, {}),
    "nopolicy": (MISSING_POLICY, {}),
    "target": (None, {}),
    "prober": (None, {}),
    "plain": (None, {}),
    "plainsimple": (None, {}),
    "oldpw": (None, {}),
    "race": (None, {}),
}

#: The state attributes compared after each scenario.
STATE = (
    "pwdAccountLockedTime",
    "pwdFailureTime",
    "pwdChangedTime",
    "pwdGraceUseTime",
    "pwdHistory",
    "pwdReset",
    "pwdLastSuccess",
)

_SLAPD_CONFIG = f"""\
lastbind on
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
overlay ppolicy
ppolicy_default "{DEFAULT_POLICY}"
ppolicy_use_lockout on
ppolicy_hash_cleartext on
"""

_LDAPD_CONFIG = f"""\
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]
password_hash = "{{SSHA}}"

[[database]]
suffix = "{BASE}"
backend = "memory"
root_dn = "{ROOT_DN}"
root_password = "{ROOT_PASSWORD}"
seed_ldif = "{{seed}}"

[[plugin]]
name = "ppolicy"
default_policy = "{DEFAULT_POLICY}"
use_lockout = true
"""


def password(uid: str) -> str:
    """
    @return: the seeded password of the account C{uid}.
    """
    return f"{uid}-Secret1"


def account(uid: str) -> str:
    """
    @return: the DN of the account C{uid}.
    """
    return f"uid={uid},{PEOPLE_DN}"


def seedLDIF(now: float) -> str:
    """
    @param now: the current time; seeded state lies an hour or a thousand
        seconds before it.
    @return: the LDIF both servers are loaded with.
    """
    def stamp(value: str) -> str:
        for name, ago in ((HOUR_AGO, 3600), (THOUSAND_SECONDS_AGO, 1000)):
            if value.startswith(name):
                when = datetime.fromtimestamp(now - ago, UTC).strftime("%Y%m%d%H%M%S")
                return when + value[len(name):] + "Z"
        return value

    records = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example",
        f"dn: {POLICIES_DN}\nobjectClass: organizationalUnit\nou: policies",
        f"dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people",
    ]
    for name, attributes in POLICIES.items():
        lines = [f"dn: cn={name},{POLICIES_DN}", "objectClass: device", "objectClass: pwdPolicy",
                 f"cn: {name}", "pwdAttribute: userPassword"]
        lines += [f"{key}: {value}" for key, value in attributes.items()]
        records.append("\n".join(lines))
    for uid, (policy, state) in ACCOUNTS.items():
        lines = [f"dn: {account(uid)}", "objectClass: inetOrgPerson", f"uid: {uid}",
                 f"cn: {uid} user", "sn: user", f"userPassword: {password(uid)}"]
        if policy is not None:
            lines.append(f"pwdPolicySubentry: cn={policy},{POLICIES_DN}")
        lines += [f"{key}: {stamp(v)}" for key, values in state.items() for v in values]
        records.append("\n".join(lines))
    return "\n\n".join(records) + "\n"


class Client:
    """
    Runs OpenLDAP's clients against one server.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, tool: str, *args: str, bind: tuple[str, str] | None = None,
            stdin: str | None = None) -> tuple[int, list[str]]:
        """
        @return: the exit status and the lines of output that show the
            result, its diagnostic message and the password policy control.
        """
        command = [tool, "-x", "-H", self.url]
        if bind is not None:
            command += ["-D", bind[0], "-w", bind[1]]
        completed = subprocess.run(
            command + list(args), input=stdin, capture_output=True, text=True, check=False,
            env=dict(os.environ, LDAPNOINIT="1"), timeout=30,
        )
        lines = [
            line.strip()
            for line in (completed.stdout + completed.stderr).splitlines()
            if line.startswith(("ldap_bind", "Result:", "ppolicy:", "control:"))
            or "Additional info" in line
        ]
        return completed.returncode, lines

    def whoami(self, uid: str, secret: str | None = None) -> tuple[int, list[str]]:
        """
        Bind as C{uid} with the password policy control.
        """
        return self.run("ldapwhoami", "-e", "ppolicy",
                        bind=(account(uid), secret if secret is not None else password(uid)))

    def passwd(self, uid: str, new: str, old: str | None = None,
               secret: str | None = None) -> tuple[int, list[str]]:
        """
        Change C{uid}'s password with Password Modify, bound as C{uid}.
        """
        args = ["-e", "ppolicy", "-s", new] + (["-a", old] if old is not None else [])
        return self.run("ldappasswd", *args,
                        bind=(account(uid), secret if secret is not None else password(uid)))

    def root(self, tool: str, *args: str, stdin: str | None = None) -> tuple[int, list[str]]:
        """
        Run a client bound as the root DN.
        """
        return self.run(tool, *args, bind=(ROOT_DN, ROOT_PASSWORD), stdin=stdin)

    def state(self, uid: str) -> dict[str, Any]:
        """
        @return: the state attributes the account has, with their number
            of values (C{pwdReset} with its value).
        """
        completed = subprocess.run(
            ["ldapsearch", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD, "-LLL",
             "-o", "ldif-wrap=no", "-b", account(uid), "-s", "base", "(objectClass=*)", *STATE],
            capture_output=True, text=True, check=False, env=dict(os.environ, LDAPNOINIT="1"),
            timeout=30,
        )
        found: dict[str, Any] = {}
        for line in completed.stdout.splitlines():
            name, _, value = line.partition(": ")
            if name == "pwdReset":
                found[name] = value
            elif name in STATE:
                found[name] = found.get(name, 0) + 1
        return found

    def rawBind(self, dn: str, secret: str) -> tuple[int, list[tuple[str, bytes]]]:
        """
        Bind with ldap3 and the password policy request control.

        @return: the result code and the response controls, undecoded.
        """
        import ldap3

        connection = ldap3.Connection(ldap3.Server(self.url), dn, secret)
        try:
            connection.bind(controls=[("1.3.6.1.4.1.42.2.27.8.5.1", False, None)])
            result = connection.result
            received = result.get("controls") or {}
            return result["result"], [(oid, c["value"]) for oid, c in sorted(received.items())]
        finally:
            connection.unbind()

    def userPassword(self, uid: str) -> str:
        """
        @return: the account's stored userPassword, as ldapsearch shows it.
        """
        completed = subprocess.run(
            ["ldapsearch", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD, "-LLL",
             "-o", "ldif-wrap=no", "-b", account(uid), "-s", "base", "(objectClass=*)",
             "userPassword"],
            capture_output=True, text=True, check=False, env=dict(os.environ, LDAPNOINIT="1"),
            timeout=30,
        )
        for line in completed.stdout.splitlines():
            if line.startswith("userPassword::"):
                import base64

                return base64.b64decode(line.split(":: ", 1)[1]).decode()
            if line.startswith("userPassword: "):
                return line.split(": ", 1)[1]
        return ""


def _expiresIn(lines: list[str]) -> list[str]:
    """
    Round the seconds of "Password expires in N seconds" to thousands, as
    the two servers run the same step a moment apart.
    """
    return [
        re.sub(r"expires in (\d+) seconds",
               lambda m: f"expires in ~{round(int(m.group(1)), -3)} seconds", line)
        for line in lines
    ]


def lockout(c: Client) -> list[Any]:
    """
    pwdMaxFailure bad binds lock the account; then the right password is
    refused with accountLocked; deleting pwdAccountLockedTime unlocks it.
    """
    steps: list[Any] = [c.whoami("lock")]
    steps += [c.whoami("lock", "wrong") for _ in range(3)]
    steps += [c.state("lock"), c.whoami("lock"), c.whoami("lock", "wrong"), c.state("lock")]
    steps.append(c.root("ldapmodify", stdin=f"dn: {account('lock')}\nchangetype: modify\n"
                                             "delete: pwdAccountLockedTime\n"))
    steps += [c.state("lock"), c.whoami("lock"), c.state("lock")]
    return steps


def lockoutDuration(c: Client) -> list[Any]:
    """
    A lockout older than pwdLockoutDuration has run out: the bind succeeds
    and the lock is removed.
    """
    return [c.whoami("lockdur"), c.state("lockdur")]


def failureInterval(c: Client) -> list[Any]:
    """
    Failures older than pwdFailureCountInterval do not count toward a lockout.
    """
    return [c.whoami("interval", "wrong"), c.state("interval"), c.whoami("interval"),
            c.state("interval")]


def maxIdle(c: Client) -> list[Any]:
    """
    An account unused for longer than pwdMaxIdle is locked.
    """
    return [c.whoami("idle"), c.state("idle")]


def mustChange(c: Client) -> list[Any]:
    """
    After a reset only the password change is allowed; then everything is.
    """
    user = (account("reset"), password("reset"))
    return [
        c.whoami("reset"),
        c.run("ldapsearch", "-e", "ppolicy", "-b", account("reset"), "-s", "base", "1.1",
              bind=user),
        c.run("ldapcompare", account("reset"), "uid:reset", bind=user),
        c.passwd("reset", "reset-Changed2", old=password("reset")),
        c.state("reset"),
        c.run("ldapsearch", "-b", account("reset"), "-s", "base", "1.1",
              bind=(account("reset"), "reset-Changed2")),
        c.whoami("reset", "reset-Changed2"),
    ]


def adminReset(c: Client) -> list[Any]:
    """
    A password the root DN sets under a pwdMustChange policy marks the
    account reset; it is recorded in the history of a policy with one.
    """
    return [
        c.root("ldappasswd", "-s", "quality-Admin1", account("quality")),
        c.state("quality"),
        c.root("ldapmodify", stdin=f"dn: {account('reset')}\nchangetype: modify\n"
                                   "replace: userPassword\nuserPassword: reset-Admin3\n"),
        c.state("reset"),
        c.whoami("reset", "reset-Admin3"),
    ]


def expiryWarning(c: Client) -> list[Any]:
    """
    A password close to its pwdMaxAge gets timeBeforeExpiration.
    """
    return [_expiresIn(c.whoami("warn")[1]), c.state("warn")]


def graceLogins(c: Client) -> list[Any]:
    """
    An expired password has pwdGraceAuthNLimit grace logins, then fails
    with passwordExpired; a wrong password is a failure as always.
    """
    return [c.whoami("grace"), c.state("grace"), c.whoami("grace"), c.whoami("grace"),
            c.whoami("grace", "wrong"), c.state("grace")]


def graceExpiry(c: Client) -> list[Any]:
    """
    Grace logins end pwdGraceExpiry seconds after the password expired.
    """
    return [c.whoami("graceexpiry"), c.state("graceexpiry")]


def expired(c: Client) -> list[Any]:
    """
    An expired password without grace logins fails with passwordExpired.
    """
    return [c.whoami("expired"), c.whoami("expired", "wrong"), c.state("expired")]


def quality(c: Client) -> list[Any]:
    """
    passwordTooShort, passwordInHistory for the current password and for
    an earlier one.
    """
    new = "quality-New2"
    return [
        c.passwd("quality", "short", secret="quality-Admin1"),
        c.passwd("quality", "quality-Admin1", secret="quality-Admin1"),
        c.passwd("quality", new, secret="quality-Admin1"),
        c.passwd("quality", "quality-Admin1", secret=new),
        c.state("quality"),
    ]


def insufficientQuality(c: Client) -> list[Any]:
    """
    With pwdCheckQuality 2 a user may not set a pre-hashed password, which
    cannot be checked; a cleartext one is accepted.
    """
    user = (account("strict"), password("strict"))
    return [
        c.run("ldapmodify", "-e", "ppolicy", bind=user, stdin=(
            f"dn: {account('strict')}\nchangetype: modify\nreplace: userPassword\n"
            "userPassword: {SSHA}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")),
        c.passwd("strict", "strict-New2"),
    ]


def tooYoung(c: Client) -> list[Any]:
    """
    A password younger than pwdMinAge may not change.
    """
    return [c.passwd("young", "young-New2"),
            c.passwd("young", "young-New3", secret="young-New2"), c.state("young")]


def safeModify(c: Client) -> list[Any]:
    """
    pwdSafeModify: the old password must come with the new one, in
    Password Modify or as a Modify that deletes it (in cleartext) first.
    """
    return [
        c.passwd("safe", "safe-New2"),
        c.passwd("safe", "safe-New2", old="wrong"),
        c.run("ldapmodify", "-e", "ppolicy", bind=(account("safe"), password("safe")), stdin=(
            f"dn: {account('safe')}\nchangetype: modify\nreplace: userPassword\n"
            "userPassword: safe-New3\n")),
        c.passwd("safe", "safe-New2", old=password("safe")),
        c.whoami("safe", "safe-New2"),
        c.run("ldapmodify", "-e", "ppolicy", bind=(account("safe"), "safe-New2"), stdin=(
            f"dn: {account('safe')}\nchangetype: modify\ndelete: userPassword\n"
            "userPassword: safe-New2\n-\nadd: userPassword\nuserPassword: safe-New3\n")),
        c.whoami("safe", "safe-New3"),
        c.state("safe"),
    ]


def noUserChange(c: Client) -> list[Any]:
    """
    pwdAllowUserChange FALSE: passwordModNotAllowed for the user, not the root DN.
    """
    return [c.passwd("nochange", "nochange-New2"),
            c.root("ldappasswd", "-s", "nochange-New3", account("nochange")),
            c.whoami("nochange", "nochange-New3")]


def hashing(c: Client) -> list[Any]:
    """
    Cleartext written with Modify or Add is stored hashed; pre-hashed
    values are stored as they are; an added account whose policy ages
    passwords gets pwdChangedTime.
    """
    cleartext = c.root("ldapmodify", stdin=(
        f"dn: {account('hashing')}\nchangetype: modify\nreplace: userPassword\n"
        "userPassword: hashing-New2\n"))
    stored = c.userPassword("hashing")
    hashed = c.root("ldapmodify", stdin=(
        f"dn: {account('hashing')}\nchangetype: modify\nreplace: userPassword\n"
        "userPassword: {SSHA}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"))
    added = c.root("ldapadd", stdin=(
        f"dn: {account('added')}\nobjectClass: inetOrgPerson\nuid: added\ncn: added\nsn: added\n"
        f"userPassword: added-Secret1\npwdPolicySubentry: cn=expired,{POLICIES_DN}\n"))
    addedPassword = c.userPassword("added")
    return [cleartext, stored.startswith("{") and "hashing-New2" not in stored, hashed,
            c.userPassword("hashing"), c.whoami("hashing", "hashing-New2"), added,
            addedPassword.startswith("{") and "added-Secret1" not in addedPassword,
            c.state("added"), c.whoami("added", "added-Secret1")]


def rawControls(c: Client) -> list[Any]:
    """
    The response controls, byte for byte: an empty one for an account
    without policy (not for the root DN), errors for a locked and an
    expired account.
    """
    return [
        c.rawBind(account("nopolicy"), password("nopolicy")),
        c.rawBind(account("nopolicy"), "wrong"),
        c.rawBind(account("expired"), password("expired")),
        c.rawBind(account("idle"), password("idle")),
        c.rawBind(ROOT_DN, ROOT_PASSWORD),
        c.state("nopolicy"),
    ]


def passwordModifyOracle(c: Client) -> list[Any]:
    """
    Password Modify for an account the client may not change: the same
    answer whether the old password is right or wrong, or the account does
    not exist, and nothing counted.
    """
    prober = (account("prober"), password("prober"))
    return [
        c.run("ldappasswd", "-e", "ppolicy", "-a", "wrong", "-s", "target-New2",
              account("target"), bind=prober),
        c.run("ldappasswd", "-e", "ppolicy", "-a", password("target"), "-s", "target-New2",
              account("target"), bind=prober),
        c.run("ldappasswd", "-e", "ppolicy", "-a", "wrong", "-s", "target-New2",
              account("nobody"), bind=prober),
        c.state("target"),
        c.whoami("target"),
    ]


#: The scenarios, in the order they run (adminReset before quality).
SCENARIOS: list[Callable[[Client], list[Any]]] = [
    lockout, lockoutDuration, failureInterval, maxIdle, mustChange, adminReset,
    expiryWarning, graceLogins, graceExpiry, expired, quality, insufficientQuality,
    tooYoung, safeModify, noUserChange, hashing, rawControls, passwordModifyOracle,
]


def _slapd(folder: Path, seed: Path) -> SlapdProcess:
    if not SLAPD.is_file():
        raise unittest.SkipTest(f"{SLAPD} (Debian's slapd package) is not installed")
    if not Path("/usr/lib/ldap/ppolicy.la").is_file():
        raise unittest.SkipTest("slapd's ppolicy module is not installed")
    slapd = SlapdProcess(BASE, ROOT_DN, ROOT_PASSWORD,
                         globalConfig="moduleload /usr/lib/ldap/ppolicy.la\n")
    with open(slapd.configPath, "a") as config:
        config.write(_SLAPD_CONFIG)
    slapd.load(seed)
    return slapd


@functools.cache
def outcomes() -> dict[str, tuple[list[Any], list[Any]]]:
    """
    Run every scenario once on each server.

    @return: slapd's and ldapd's outcomes, by scenario name.
    @raise unittest.SkipTest: if slapd or the clients cannot run here.
    """
    missing = [t for t in ("ldapwhoami", "ldappasswd", "ldapmodify", "ldapsearch")
               if shutil.which(t) is None]
    if missing:
        raise unittest.SkipTest(f"OpenLDAP clients not installed: {', '.join(missing)}")
    folder = Path(tempfile.mkdtemp(prefix="ldapd-ppolicy-"))
    try:
        seed = folder / "seed.ldif"
        seed.write_text(seedLDIF(time.time()))
        slapd = _slapd(folder, seed)
        ldapd = ServerProcess(_LDAPD_CONFIG.replace("{seed}", str(seed)), folder)
        try:
            try:
                slapd.start()
            except RuntimeError as e:
                if "ermission denied" in str(e):
                    raise unittest.SkipTest(f"slapd may not use {folder} (AppArmor?)") from None
                raise
            ldapd.start()
            theirs, ours = Client(slapd.url), Client(ldapd.url)
            return {s.__name__: (s(theirs), s(ours)) for s in SCENARIOS}
        finally:
            slapd.stop()
            ldapd.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class PasswordPolicyComparisonTests(unittest.SynchronousTestCase):
    """
    ldapd's ppolicy plugin gives the same results, response controls and
    account state as slapd's ppolicy overlay.
    """

    def assertSame(self, scenario: Callable[[Client], list[Any]]) -> list[Any]:
        """
        Assert that C{scenario} had the same outcome on both servers.

        @return: the outcome.
        """
        theirs, ours = outcomes()[scenario.__name__]
        self.assertEqual(theirs, ours)
        return ours

    def test_lockout(self) -> None:
        """
        pwdMaxFailure failures lock the account (accountLocked on the next
        bind, even with the right password); deleting pwdAccountLockedTime
        unlocks it and clears the failures.
        """
        steps = self.assertSame(lockout)
        self.assertEqual(steps[5], (49, ["ldap_bind: Invalid credentials (49); Account locked"]))
        self.assertEqual(steps[10][0], 0)

    def test_lockoutDuration(self) -> None:
        """
        A lockout longer ago than pwdLockoutDuration no longer applies.
        """
        self.assertEqual(self.assertSame(lockoutDuration)[0][0], 0)

    def test_failureCountInterval(self) -> None:
        """
        Old failures do not count toward pwdMaxFailure.
        """
        self.assertEqual(self.assertSame(failureInterval)[2][0], 0)

    def test_maxIdle(self) -> None:
        """
        An idle account is locked.
        """
        self.assertEqual(self.assertSame(maxIdle)[0][0], 49)

    def test_mustChange(self) -> None:
        """
        A reset password allows a bind with changeAfterReset and nothing but
        the password change until it is changed.
        """
        steps = self.assertSame(mustChange)
        self.assertEqual(steps[0], (0, ["ldap_bind: Success (0); Password must be changed"]))
        self.assertEqual(steps[1][0], 50)
        self.assertEqual(steps[3][0], 0)
        self.assertEqual(steps[5][0], 0)

    def test_adminReset(self) -> None:
        """
        The root DN's password changes set pwdReset under pwdMustChange.
        """
        self.assertEqual(self.assertSame(adminReset)[3].get("pwdReset"), "TRUE")

    def test_expiryWarning(self) -> None:
        """
        timeBeforeExpiration, as ldapwhoami shows it.
        """
        steps = self.assertSame(expiryWarning)
        self.assertEqual(steps[0], ["ldap_bind: Success (0) (Password expires in ~99000 seconds)"])

    def test_graceLogins(self) -> None:
        """
        graceAuthNsRemaining counts down, then passwordExpired.
        """
        steps = self.assertSame(graceLogins)
        self.assertEqual(steps[3], (49, ["ldap_bind: Invalid credentials (49); Password expired"]))

    def test_graceExpiry(self) -> None:
        """
        No grace logins after pwdGraceExpiry.
        """
        self.assertEqual(self.assertSame(graceExpiry)[0][0], 49)

    def test_expired(self) -> None:
        """
        passwordExpired for the right password only.
        """
        self.assertSame(expired)

    def test_quality(self) -> None:
        """
        passwordTooShort and passwordInHistory on ldappasswd.
        """
        steps = self.assertSame(quality)
        self.assertIn("ppolicy: error=6 (Password is too short for policy)", steps[0][1])
        self.assertIn("ppolicy: error=8 (New password is in list of old passwords)", steps[3][1])

    def test_insufficientQuality(self) -> None:
        """
        insufficientPasswordQuality for a pre-hashed value under pwdCheckQuality 2.
        """
        self.assertEqual(self.assertSame(insufficientQuality)[0][0], 19)

    def test_tooYoung(self) -> None:
        """
        passwordTooYoung on ldappasswd.
        """
        steps = self.assertSame(tooYoung)
        self.assertIn("ppolicy: error=7 (Password has been changed too recently)", steps[1][1])

    def test_safeModify(self) -> None:
        """
        mustSupplyOldPassword with pwdSafeModify.
        """
        steps = self.assertSame(safeModify)
        self.assertEqual(steps[6][0], 0)
        self.assertIn(
            "ppolicy: error=4 (Policy requires old password in order to change password)",
            steps[0][1],
        )
        self.assertEqual(steps[4][0], 0)

    def test_noUserChange(self) -> None:
        """
        passwordModNotAllowed for the user with pwdAllowUserChange FALSE.
        """
        steps = self.assertSame(noUserChange)
        self.assertIn("ppolicy: error=3 (Policy prevents password modification)", steps[0][1])

    def test_rawControls(self) -> None:
        """
        The response control is encoded as slapd encodes it.
        """
        steps = self.assertSame(rawControls)
        self.assertEqual(steps[0], (0, [("1.3.6.1.4.1.42.2.27.8.5.1", b"\x30\x00")]))
        self.assertEqual(steps[2], (49, [("1.3.6.1.4.1.42.2.27.8.5.1", b"\x30\x03\x81\x01\x00")]))
        self.assertEqual(steps[4], (0, []))

    def test_hashing(self) -> None:
        """
        Cleartext is hashed, pre-hashed values are kept.
        """
        steps = self.assertSame(hashing)
        self.assertIs(steps[1], True)
        self.assertEqual(steps[3], "{SSHA}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        self.assertIs(steps[6], True)
        self.assertEqual(steps[7], {"pwdChangedTime": 1})


    def test_passwordModifyOracle(self) -> None:
        """
        Password Modify is no password oracle: a user who may not change
        another account's password gets unwillingToPerform for its right
        old password as for a wrong one, and for an account that does not
        exist, as from slapd; the account records no failure.
        """
        steps = self.assertSame(passwordModifyOracle)
        refused = (1, ["Result: Server is unwilling to perform (53)",
                       "Additional info: unwilling to verify old password"])
        self.assertEqual(steps[:3], [refused] * 3)
        self.assertEqual(steps[4][0], 0)


_SQL_LDAPD_CONFIG = f"""\
[server]
listen = ["tcp:{{port}}:interface=127.0.0.1"]

[[database]]
suffix = "{BASE}"
backend = "sql"
url = "{{url}}"
root_dn = "{ROOT_DN}"
root_password = "{ROOT_PASSWORD}"
seed_ldif = "{{seed}}"

[[plugin]]
name = "ppolicy"
default_policy = "{DEFAULT_POLICY}"
use_lockout = true
"""


class PersistentLockoutTests(unittest.TestCase):
    """
    On the sql backend a lockout is kept in the database: it holds across
    a restart of the server, and across servers sharing one database.
    """

    def setUp(self) -> None:
        if shutil.which("ldapwhoami") is None:
            raise unittest.SkipTest("OpenLDAP clients (ldap-utils) not installed")
        self.folder = Path(tempfile.mkdtemp(prefix="ldapd-ppolicy-sql-"))
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.seed = self.folder / "seed.ldif"
        self.seed.write_text(seedLDIF(time.time()))

    def server(self, url: str) -> ServerProcess:
        """
        @return: a started ldapd on the database at C{url}, stopped after the test.
        """
        process = ServerProcess(
            _SQL_LDAPD_CONFIG.replace("{seed}", str(self.seed)).replace("{url}", url), self.folder
        )
        process.start()
        self.addCleanup(process.stop)
        return process

    def lock(self, client: Client) -> None:
        """
        Lock the account C{lock} with pwdMaxFailure wrong passwords.
        """
        for _ in range(3):
            self.assertEqual(client.whoami("lock", "wrong")[0], 49)

    def assertLocked(self, client: Client) -> None:
        self.assertEqual(client.whoami("lock"),
                         (49, ["ldap_bind: Invalid credentials (49); Account locked"]))

    def test_restart(self) -> None:
        """
        An account locked before the server restarts is still locked after it.
        """
        url = f"sqlite:///{self.folder / 'ppolicy.db'}"
        first = self.server(url)
        client = Client(first.url)
        self.assertEqual(client.whoami("lock")[0], 0)
        self.lock(client)
        first.stop()
        self.assertLocked(Client(self.server(url).url))

    def test_sharedDatabase(self) -> None:
        """
        An account locked through one server is locked at once on another
        server of the same PostgreSQL database.
        """
        from ldapd.testing import privatePostgreSQLSchema

        url = privatePostgreSQLSchema(self)
        one = self.server(url)
        two = self.server(url)
        self.lock(Client(one.url))
        self.assertLocked(Client(two.url))


#: The sql configuration with the acl plugin's default rules, a local socket
#: for SASL PLAIN, and C{{workers}} processes.
_CHECKS_LDAPD_CONFIG = _SQL_LDAPD_CONFIG.replace(
    'listen = ["tcp:{port}:interface=127.0.0.1"]\n',
    'listen = ["tcp:{port}:interface=127.0.0.1", "unix:{socket}"]\nworkers = {workers}\n'
    f"sasl_map = [{{ match = '^uid=([^,]+),cn=plain,cn=auth$', dn = 'uid=$1,{PEOPLE_DN}' }}]\n",
).replace('[[plugin]]\nname = "ppolicy"', '[[plugin]]\nname = "acl"\n\n[[plugin]]\nname = "ppolicy"')


def concurrentBinds(port: int, dn: str, secret: str, count: int) -> list[int]:
    """
    Send C{count} simple binds at once, each on a connection of its own,
    before reading any answer.

    @return: the result codes.
    """
    pdu = pureldap.LDAPMessage(
        pureldap.LDAPBindRequest(dn=dn.encode(), auth=secret.encode()), id=1).toWire()
    connections = [socket.create_connection(("127.0.0.1", port), timeout=60)
                   for _ in range(count)]
    try:
        for connection in connections:
            connection.sendall(pdu)
        codes = []
        for connection in connections:
            data = b""
            while True:
                chunk = connection.recv(4096)
                if not chunk:
                    raise AssertionError(f"connection closed after {data!r}")
                data += chunk
                try:
                    messages = decodeResponses(data)
                except pureber.BERExceptionInsufficientData:
                    continue
                codes.append(messages[0].value.resultCode)
                break
        return codes
    finally:
        for connection in connections:
            connection.close()


class PasswordCheckTests(unittest.TestCase):
    """
    Every way of trying a password goes through the password policy, on the
    sql backend with the acl plugin's default rules: SASL PLAIN, the old
    password of Password Modify, and wrong passwords sent all at once, in
    one process or in several sharing the database.
    """

    def setUp(self) -> None:
        for tool in ("ldapwhoami", "ldappasswd"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest("OpenLDAP clients (ldap-utils) not installed")
        self.folder = Path(tempfile.mkdtemp(prefix="ldapd-checks-"))
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.seed = self.folder / "seed.ldif"
        self.seed.write_text(seedLDIF(time.time()))

    def server(self, url: str | None = None, workers: int = 1) -> ServerProcess:
        """
        @return: a started ldapd on the database at C{url} (a new SQLite
            file by default), stopped after the test.
        """
        if url is None:
            url = f"sqlite:///{self.folder / 'checks.db'}"
        config = _CHECKS_LDAPD_CONFIG
        for key, value in (("seed", str(self.seed)), ("url", url), ("workers", str(workers)),
                           ("socket", str(self.folder / f"ldapi-{uuid.uuid4().hex[:8]}"))):
            config = config.replace("{" + key + "}", value)
        process = ServerProcess(config, self.folder)
        process.start()
        self.addCleanup(process.stop)
        return process

    def plain(self, process: ServerProcess, uid: str, secret: str) -> int:
        """
        Bind with SASL PLAIN over the server's local socket.

        @return: ldapwhoami's exit status.
        """
        socketPath = re.search(r'"unix:([^"]+)"', process.configPath.read_text()).group(1)
        url = "ldapi://" + urllib.parse.quote(socketPath, safe="")
        completed = subprocess.run(
            ["ldapwhoami", "-Q", "-Y", "PLAIN", "-H", url, "-U", uid, "-w", secret],
            capture_output=True, text=True, check=False, timeout=30,
            env=dict(os.environ, LDAPNOINIT="1"),
        )
        return completed.returncode

    def assertLocked(self, client: Client, uid: str) -> None:
        self.assertEqual(client.whoami(uid),
                         (49, ["ldap_bind: Invalid credentials (49); Account locked"]))

    def test_plain(self) -> None:
        """
        Wrong SASL PLAIN passwords count: three lock the account for simple
        binds and PLAIN alike; an account locked by simple binds does not
        log in with PLAIN.
        """
        process = self.server()
        client = Client(process.url)
        self.assertEqual(self.plain(process, "plain", password("plain")), 0)
        for _ in range(3):
            self.assertEqual(self.plain(process, "plain", "wrong"), 49)
        self.assertEqual(client.state("plain").get("pwdFailureTime"), 3)
        self.assertLocked(client, "plain")
        self.assertEqual(self.plain(process, "plain", password("plain")), 49)
        for _ in range(3):
            self.assertEqual(client.whoami("plainsimple", "wrong")[0], 49)
        self.assertEqual(self.plain(process, "plainsimple", password("plainsimple")), 49)

    def test_passwordModify(self) -> None:
        """
        A user who may not change another account's password gets the same
        answer for its right and wrong old password, and nothing counts; a
        wrong old password of one's own account counts, three lock it, and
        then the right one changes nothing.
        """
        process = self.server()
        client = Client(process.url)
        prober = (account("prober"), password("prober"))
        answers = [
            client.run("ldappasswd", "-a", old, "-s", "target-New2", account("target"),
                       bind=prober)
            for old in ("wrong", password("target"))
        ]
        self.assertEqual(answers[0], answers[1])
        self.assertEqual(answers[0][0], 1)
        self.assertEqual(client.state("target"), {})
        import ldap3

        # Bound before the account is locked, on a connection that stays open.
        connection = ldap3.Connection(ldap3.Server(process.url), account("oldpw"),
                                      password("oldpw"), auto_bind=True)
        self.addCleanup(connection.unbind)
        for _ in range(3):
            connection.extend.standard.modify_password(None, "wrong", "oldpw-New2")
            self.assertEqual(connection.result["result"], 53)
        self.assertEqual(client.state("oldpw").get("pwdAccountLockedTime"), 1)
        self.assertLocked(client, "oldpw")
        connection.extend.standard.modify_password(None, password("oldpw"), "oldpw-New2")
        self.assertEqual(connection.result["result"], 53)
        self.assertLocked(client, "oldpw")

    def test_historyPrivate(self) -> None:
        """
        Under the acl plugin's default rules, pwdHistory (here holding the
        old password in cleartext, as seeded) is read by no one but the
        root DN: not returned, not matched by a filter, not compared.
        """
        process = self.server()
        client = Client(process.url)
        self.assertEqual(client.root("ldappasswd", "-s", "quality-Admin1", account("quality"))[0], 0)
        self.assertEqual(client.state("quality").get("pwdHistory"), 1)
        for bind in ([], ["-D", account("prober"), "-w", password("prober")],
                     ["-D", account("quality"), "-w", "quality-Admin1"]):
            base = ["-x", "-H", process.url, *bind]
            read = subprocess.run(
                ["ldapsearch", *base, "-LLL", "-b", account("quality"), "-s", "base",
                 "(objectClass=*)", "pwdHistory"],
                capture_output=True, text=True, check=False, timeout=30)
            self.assertEqual(read.returncode, 0, read.stderr)
            self.assertNotIn("pwdHistory", read.stdout)
            self.assertNotIn(password("quality"), read.stdout)
            probe = subprocess.run(
                ["ldapsearch", *base, "-LLL", "-b", PEOPLE_DN, "(pwdHistory=*)",
                 "1.1"], capture_output=True, text=True, check=False, timeout=30)
            self.assertEqual(probe.stdout.strip(), "")
            compare = subprocess.run(
                ["ldapcompare", *base, account("quality"), "pwdHistory:x"],
                capture_output=True, text=True, check=False, timeout=30)
            self.assertEqual(compare.returncode, 50, compare.stdout + compare.stderr)

    def race(self, process: ServerProcess) -> None:
        """
        Send 50 wrong passwords at once, then the right one: the account is
        locked, and stays locked.
        """
        client = Client(process.url)
        codes = concurrentBinds(process.port, account("race"), "wrong", 50)
        self.assertEqual(set(codes), {49})
        self.assertLocked(client, "race")
        state = client.state("race")
        self.assertEqual(state.get("pwdAccountLockedTime"), 1)
        self.assertEqual(state.get("pwdFailureTime"), 3)
        self.assertLocked(client, "race")

    def test_concurrentFailures(self) -> None:
        """
        50 wrong binds at once all count, on SQLite: the right password
        then finds the account locked.
        """
        self.race(self.server())

    def test_concurrentFailuresWorkers(self) -> None:
        """
        The same with two worker processes sharing the SQLite database.
        """
        self.race(self.server(workers=2))

    def test_concurrentFailuresPostgreSQL(self) -> None:
        """
        The same on PostgreSQL, with one server process and with two
        workers sharing the database.
        """
        self.race(self.server(privatePostgreSQLSchema(self)))
        self.race(self.server(privatePostgreSQLSchema(self), workers=2))
