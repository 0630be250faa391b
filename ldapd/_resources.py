"""
Data files that the source tree keeps at its top level (C{schema/},
C{examples/}) and an installed wheel carries inside the package (setup.cfg's
C{package_dir} maps them there), found in either layout, so that there is
one copy of each.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["dataFolder"]


def dataFolder(installed: str, source: str, probe: str) -> Path:
    """
    @param installed: the folder's name inside the installed C{ldapd} package.
    @param source: its name at the top of the source tree.
    @param probe: the name of a file it holds.
    @return: the folder: the package's, or else the source tree's.
    @raise FileNotFoundError: if neither holds C{probe}.
    """
    package = Path(str(files("ldapd")))
    candidates = (package / installed, package.parent / source)
    for candidate in candidates:
        if (candidate / probe).is_file():
            return candidate
    raise FileNotFoundError(f"{probe} is in none of {', '.join(map(str, candidates))}")
