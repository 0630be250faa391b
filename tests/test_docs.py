"""
Tests for the documentation's index: C{README.md}, the page C{tox -e docs}
makes the index of the guides in C{docs/}.
"""

import re
from pathlib import Path

from twisted.trial import unittest

_ROOT = Path(__file__).resolve().parent.parent


class IndexTests(unittest.SynchronousTestCase):
    """
    The README leads to every guide.
    """

    def test_everyGuideLinked(self) -> None:
        """
        Every guide in C{docs/} (but C{index.md}, the page that includes the
        README) is the target of a Markdown link in C{README.md}, and every
        such link names a guide that exists: a reader of the README on a
        forge or a package index, where there is no table of contents, finds
        each guide from it.
        """
        readme = (_ROOT / "README.md").read_text()
        linked = set(re.findall(r"\]\(docs/([^)#]+\.md)(?:#[^)]*)?\)", readme))
        guides = {path.name for path in (_ROOT / "docs").glob("*.md")} - {"index.md"}
        self.assertEqual(sorted(guides), sorted(linked))
