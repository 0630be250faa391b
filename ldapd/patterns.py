"""
Regular expressions that administrators and clients supply (access rules'
C{dn.regex} and C{peername.regex}, stored C{ldapdACI} values, C{sasl_map}),
compiled with RE2. RE2 matches in time linear in the text, so that a pattern
such as C{^cn=(a|a)+x} cannot make every search take seconds as Python's
backtracking C{re} does; it refuses what it cannot match that way
(backreferences, lookaround), and those patterns are refused when they are
loaded.
"""

from __future__ import annotations

from typing import Any

import re2

__all__ = ["InvalidPattern", "compilePattern"]


class InvalidPattern(ValueError):
    """
    A pattern is not a regular expression RE2 accepts; the message says why.
    """


def compilePattern(pattern: str, ignoreCase: bool = False) -> Any:
    """
    Compile a pattern from configuration or from a client.

    @param pattern: the regular expression (RE2 syntax, which is Python's
        without backreferences and lookaround).
    @param ignoreCase: whether it matches regardless of case.
    @return: the compiled pattern (C{search}, C{match}, C{groups} as
        Python's).
    @raise InvalidPattern: if RE2 does not accept it.
    """
    options = re2.Options()
    options.case_sensitive = not ignoreCase
    # An invalid pattern is reported to whoever supplied it, not logged by RE2 itself.
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as e:
        reason = e.args[0] if e.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise InvalidPattern(f"not a regular expression RE2 accepts: {reason}") from None
