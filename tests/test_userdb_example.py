"""
The tests of the C{examples/userdb} package, run by the main suite: the
example is imported from its folder (not installed), and the servers its
tests start import it from there too.
"""

from __future__ import annotations

import importlib.util
import sys

from ldapd.testing import SOURCE_ROOT

_EXAMPLE = SOURCE_ROOT / "examples" / "userdb"
if str(_EXAMPLE) not in sys.path:
    sys.path.insert(0, str(_EXAMPLE))

_spec = importlib.util.spec_from_file_location(
    "userdb_example_tests", _EXAMPLE / "tests" / "test_userdb.py")
assert _spec is not None and _spec.loader is not None
_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tests)

DjangoHashTests = _tests.DjangoHashTests
UserDBConformanceTests = _tests.UserDBConformanceTests
UserDBBackendTests = _tests.UserDBBackendTests
EntryPointTests = _tests.EntryPointTests
RealServerTests = _tests.RealServerTests
