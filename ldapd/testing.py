"""
The testing kit: what ldapd's own tests use, and third-party backends and
plugins can reuse.

  - L{BackendTestsMixin}: the conformance suite every L{IBackend} runs.
  - L{RecordingHooks}: an L{ITransactionHooks} fake that records its calls
    and can be told to fail.
  - L{ServerProcess}: the real C{twist ldapd} in a child process on a free
    loopback port, for tests that drive it with real clients.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ldaptor.protocols.ldap import ldaperrors
from zope.interface import implementer
from zope.interface.verify import verifyObject

from ldapd.dn import DN
from ldapd.entry import Entry, Modification
from ldapd.filters import compileFilter
from ldapd.interfaces import IBackend, ITransaction, ITransactionHooks
from ldapd.operation import Connection, Identity, Operation, Scope, SearchParameters
from ldapd.results import NoSuchObject
from ldapd.schema import Schema

__all__ = [
    "BackendTestsMixin",
    "EXAMPLE_LDIF",
    "RecordingHooks",
    "ServerProcess",
    "freePort",
    "parseFilter",
]

#: The root of the source tree (the folder holding C{ldapd/} and C{twisted/plugins/}).
SOURCE_ROOT = Path(__file__).resolve().parent.parent
#: The example organisation's LDIF.
EXAMPLE_LDIF = SOURCE_ROOT / "examples" / "data" / "example.ldif"


def freePort() -> int:
    """
    @return: a TCP port on 127.0.0.1 that was free a moment ago.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # type: ignore[no-any-return]


def parseFilter(text: str) -> Any:
    """
    @param text: a filter in RFC 4515 string form.
    @return: ldaptor's decoded filter object, as the protocol would deliver it.
    """
    from ldaptor import ldapfilter

    return ldapfilter.parseFilter(text)


@implementer(ITransactionHooks)
class RecordingHooks:
    """
    Transaction hooks that record each call as C{(stage, operation, args)}.

    @ivar calls: the calls so far.
    @ivar failOn: C{(stage, operation)} pairs at which to raise
        C{LDAPUnwillingToPerform}, to test that a backend rolls back.
    @ivar onTxn: if set, called with C{(operation, txn, args)} in the txn
        stage, to test writes made through the transaction.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        self.failOn: set[tuple[str, str]] = set()
        self.onTxn: Any = None

    def _record(self, stage: str, operation: str, txn: ITransaction, args: tuple[Any, ...]) -> None:
        verifyObject(ITransaction, txn)
        self.calls.append((stage, operation, args))
        if stage == "txn" and self.onTxn is not None:
            self.onTxn(operation, txn, args)
        if (stage, operation) in self.failOn:
            raise ldaperrors.LDAPUnwillingToPerform(f"{stage} {operation} refused by test")

    def check(self, operation: str, op: Operation, txn: ITransaction, *args: Any) -> None:
        self._record("check", operation, txn, args)

    def txn(self, operation: str, op: Operation, txn: ITransaction, *args: Any) -> None:
        self._record("txn", operation, txn, args)


class ServerProcess:
    """
    The real server, C{twist ldapd --config ...}, in a child process.

    @ivar port: the loopback port it listens on.
    @ivar url: C{ldap://127.0.0.1:<port>}.
    @ivar configPath: the configuration file it was started with.
    """

    def __init__(self, config: str, directory: Path | None = None) -> None:
        """
        @param config: the configuration as TOML text; C{{port}} and
            C{{example_ldif}} are replaced by the chosen port and the path
            of the example LDIF.
        @param directory: where to write the configuration; a new
            temporary folder by default.
        """
        self.port = freePort()
        self.url = f"ldap://127.0.0.1:{self.port}"
        folder = Path(directory or tempfile.mkdtemp(prefix="ldapd-test-"))
        self.configPath = folder / "ldapd.toml"
        self.configPath.write_text(
            config.replace("{port}", str(self.port)).replace("{example_ldif}", str(EXAMPLE_LDIF))
        )
        self.logPath = folder / "ldapd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        """
        Start the server and wait until it accepts connections.

        @raise RuntimeError: with the server's log, if it exits or does not
            listen within C{timeout} seconds.
        """
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(SOURCE_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        with open(self.logPath, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "twisted", "--log-format", "text", "ldapd",
                 "--config", str(self.configPath)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ldapd exited with {self.process.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"ldapd did not listen within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """
        @return: what the server has logged so far.
        """
        return self.logPath.read_text(errors="replace")

    def stop(self) -> None:
        """
        Stop the server (SIGTERM, then SIGKILL after 10 seconds) and wait for it.
        """
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
