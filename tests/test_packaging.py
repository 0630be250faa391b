"""
Packaging: the README's quick start, a C{pip install .} into a fresh
virtualenv, gives a working C{twist ldapd}; the wheel carries the package's
data.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from twisted.trial import unittest

from ldapd.testing import SOURCE_ROOT, freePort


def readmeCommand(number: int) -> str:
    """
    @param number: 1 or 2.
    @return: that quick-start command of the README, as CI reads it
        (C{.ci/readme_command.py}).
    """
    return subprocess.run(
        [sys.executable, str(SOURCE_ROOT / ".ci" / "readme_command.py"), str(number)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()


def copyCheckout(destination: Path) -> None:
    """
    Copy the checkout as a clone of it would hold it, with the changes not
    yet committed: the files git tracks or would track (not those it
    ignores, such as a virtualenv, build output or databases).
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=SOURCE_ROOT, capture_output=True, check=True, timeout=60,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = SOURCE_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


#: Debian's and Ubuntu's own Python, and the file by which it refuses
#: C{pip install} outside a virtualenv (PEP 668).
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _externallyManaged(python: Path) -> bool:
    """
    @return: whether C{python} has pip and PEP 668's EXTERNALLY-MANAGED
        marker, by which pip refuses to install outside a virtualenv.
    """
    found = subprocess.run(
        [python, "-c", "import sysconfig, os, importlib.util; "
         "print(importlib.util.find_spec('pip') is not None and "
         "os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"],
        capture_output=True, text=True, check=False, timeout=60)
    return found.stdout.strip() == "True"


class InstallTests(unittest.TestCase):
    """
    The README's first command installs ldapd and runs it, on the stock
    system's Python; the package installs its Twisted plugin and its schema
    files.
    """

    def test_quickStart(self) -> None:
        """
        The README's first command, run by C{sh} in a copy of the checkout
        with the system's own C{python3} (Debian's, which refuses a plain
        C{pip install}, where it is installed), makes a virtualenv, installs
        ldapd into it and serves the example organisation: ldapsearch finds
        it. From there, C{twist --help} lists ldapd and the installed package
        finds its standard schema. The command's C{sudo apt-get} steps, which
        install C{python3-venv}, are left to the machine (they are CI's).
        """
        if not (SOURCE_ROOT / "setup.cfg").exists() or not (SOURCE_ROOT / ".git").exists():
            raise unittest.SkipTest("not running from a git checkout")
        command = readmeCommand(1)
        steps = command.split(" && ")
        system = [step for step in steps if step.startswith("sudo ")]
        self.assertIn("python3-venv", " ".join(system))
        rest = " && ".join(step for step in steps if not step.startswith("sudo "))
        self.assertTrue(rest.startswith("python3 -m venv .venv && "), rest)
        self.assertTrue(rest.endswith(" --config examples/ldapd.toml"), rest)
        with tempfile.TemporaryDirectory() as tmp:
            clone = Path(tmp) / "ldapd"
            copyCheckout(clone)
            # Tests pick their ports: the example's 10389 may be taken.
            port = freePort()
            config = clone / "examples" / "ldapd.toml"
            config.write_text(config.read_text().replace("tcp:10389:", f"tcp:{port}:"))
            # "python3" is the system's, as on a fresh machine.
            bin = Path(tmp) / "bin"
            bin.mkdir()
            python = SYSTEM_PYTHON if SYSTEM_PYTHON.exists() else Path(sys.executable)
            (bin / "python3").symlink_to(python)
            clean = {k: v for k, v in os.environ.items()
                     if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
            clean["PATH"] = f"{bin}{os.pathsep}{clean.get('PATH', '')}"
            if _externallyManaged(python):
                refused = subprocess.run(
                    [bin / "python3", "-m", "pip", "install", "--dry-run", "."], cwd=clone,
                    env=clean, capture_output=True, text=True, check=False, timeout=300)
                self.assertIn("externally-managed-environment", refused.stdout + refused.stderr)
            log = Path(tmp) / "quickstart.log"
            with open(log, "wb") as output:
                process = subprocess.Popen(["sh", "-c", rest], cwd=clone, env=clean,
                                           stdout=output, stderr=subprocess.STDOUT,
                                           start_new_session=True)
            try:
                self._waitForPort(process, port, log)
                found = subprocess.run(
                    ["ldapsearch", "-x", "-LLL", "-H", f"ldap://127.0.0.1:{port}",
                     "-b", "dc=example,dc=com", "(uid=alice)", "uid"],
                    capture_output=True, text=True, check=True, timeout=60)
                self.assertIn("uid: alice", found.stdout)
            finally:
                # The command's shell and the twist it started.
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(60)
            env = clone / ".venv"
            self._checkInstalled(env, clean, tmp)

    def _waitForPort(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        """
        Wait until the command's server listens (the install comes first).

        @raise unittest.FailTest: with the command's output, if it ends or
            does not listen within ten minutes.
        """
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.fail(f"the command ended with {process.returncode}:\n"
                          f"{log.read_text(errors='replace')[-5000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.5)
        self.fail(f"nothing listened on {port}:\n{log.read_text(errors='replace')[-5000:]}")

    def _checkInstalled(self, env: Path, clean: dict[str, str], tmp: str) -> None:
        """
        In a virtualenv ldapd was installed into, C{twist --help} lists
        ldapd, and the package imported (from the virtualenv, not a source
        tree) finds its standard schema.
        """
        python = env / "bin" / "python"
        # Run from elsewhere, so that nothing is imported from the source tree.
        help = subprocess.run(
            [env / "bin" / "twist", "--help"], cwd=tmp, env=clean,
            capture_output=True, text=True, check=True, timeout=120,
        )
        self.assertRegex(help.stdout, r"\n\s+ldapd\s+An LDAPv3 directory server")
        schema = subprocess.run(
            [python, "-c", "from ldapd.schema import Schema; import ldapd; "
             "print(len(Schema.standard().objectClasses), ldapd.__file__)"],
            cwd=tmp, env=clean, capture_output=True, text=True, check=True, timeout=120,
        )
        count, location = schema.stdout.split()
        self.assertGreater(int(count), 40)
        self.assertTrue(location.startswith(str(env)), location)


class WheelTests(unittest.TestCase):
    """
    The wheel carries what the package reads from its own files.
    """

    def unpackedWheel(self, tmp: str) -> tuple[Path, dict[str, str]]:
        """
        Build the wheel into C{tmp} and unpack it there.

        @return: the unpacked wheel, and an environment that imports from
            it first (the dependencies are this environment's).
        """
        if not (SOURCE_ROOT / "setup.cfg").exists():
            raise unittest.SkipTest("not running from a source tree")
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--disable-pip-version-check", "-w", tmp, str(SOURCE_ROOT)],
            check=True, timeout=300,
        )
        [wheel] = Path(tmp).glob("ldapd-*.whl")
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(unpacked)
        return unpacked, dict(os.environ, PYTHONPATH=str(unpacked))

    def test_testingKitData(self) -> None:
        """
        Imported from the unpacked wheel, C{ldapd.testing} finds the example
        configuration and organisation inside the package (not in the source
        tree, which an installed wheel has not got), and so does the schema.
        """
        with tempfile.TemporaryDirectory() as tmp:
            unpacked, env = self.unpackedWheel(tmp)
            found = subprocess.run(
                [sys.executable, "-c",
                 "from ldapd import testing; from ldapd.schema import Schema; "
                 "Schema.standard(); testing.exampleConfig(); "
                 "print(testing.EXAMPLE_CONFIG); print(testing.EXAMPLE_LDIF)"],
                cwd=tmp, env=env, capture_output=True, text=True, check=False, timeout=120,
            )
            self.assertEqual(found.returncode, 0, found.stderr)
            for line in found.stdout.splitlines():
                path = Path(line)
                self.assertTrue(path.is_relative_to(unpacked / "ldapd" / "examples"), path)
                self.assertTrue(path.is_file(), path)

    def test_pytestPlugin(self) -> None:
        """
        With the wheel installed, pytest loads the ldapd plugin through its
        entry point: a test asking for C{ldap_server} gets one.
        """
        with tempfile.TemporaryDirectory() as tmp:
            unpacked, env = self.unpackedWheel(tmp)
            project = Path(tmp) / "project"
            project.mkdir()
            (project / "test_server.py").write_text(
                "def test_server(ldap_server):\n"
                "    assert ldap_server.url.startswith('ldap://127.0.0.1:')\n"
                "    import ldapd\n"
                f"    assert ldapd.__file__.startswith({str(unpacked)!r})\n")
            ran = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:twisted"],
                cwd=project, env=env, capture_output=True, text=True, check=False, timeout=300,
            )
            self.assertEqual(ran.returncode, 0, ran.stdout + ran.stderr)
            self.assertIn("1 passed", ran.stdout)
