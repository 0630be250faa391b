"""
Tests for L{ldapd.patterns}: the regular expressions administrators and
clients supply are compiled with RE2, which matches in linear time.
"""

from __future__ import annotations

from twisted.trial import unittest

from ldapd.patterns import InvalidPattern, compilePattern


class CompilePatternTests(unittest.SynchronousTestCase):
    """
    L{compilePattern} compiles with RE2 and refuses what RE2 does not accept.
    """

    def test_engine(self) -> None:
        """
        The compiled pattern is RE2's, not Python's C{re}.
        """
        self.assertEqual(type(compilePattern("^cn=")).__module__.split(".")[0], "re2")

    def test_catastrophicPattern(self) -> None:
        """
        C{^cn=(a|a)+x}, which Python's C{re} takes exponential time to fail
        on, fails on 5000 a's (and matches where it should).
        """
        pattern = compilePattern("^cn=(a|a)+x", ignoreCase=True)
        self.assertIsNone(pattern.search("cn=" + "a" * 5000 + ",dc=example,dc=com"))
        self.assertIsNotNone(pattern.search("CN=aaax,dc=example,dc=com"))

    def test_ignoreCase(self) -> None:
        """
        Case is ignored only when asked, and groups read as in C{re}.
        """
        self.assertIsNone(compilePattern("^uid=(.+)$").search("UID=bob"))
        match = compilePattern("^uid=(.+)$", ignoreCase=True).search("UID=Bob")
        self.assertEqual(match.group(1), "Bob")

    def test_refused(self) -> None:
        """
        Backreferences, lookaround and broken syntax raise L{InvalidPattern}
        (a C{ValueError}) saying why.
        """
        for pattern, reason in [(r"(a)\1", "invalid escape sequence"),
                                ("(?=a)", "invalid perl operator"), ("(", "missing )")]:
            with self.assertRaises(InvalidPattern) as caught:
                compilePattern(pattern)
            self.assertIn(reason, str(caught.exception))
            self.assertIsInstance(caught.exception, ValueError)
