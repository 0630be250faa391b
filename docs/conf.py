"""
Sphinx's configuration for ldapd's documentation (C{tox -e docs}): the guides
in C{docs/*.md} (MyST Markdown), C{README.md} as the index page
(C{docs/index.md}), and the API reference, which pydoctor builds from the
epytext docstrings of the C{ldapd} package into C{api/} of the same output.
"""

from importlib import metadata
from pathlib import Path

project = "ldapd"
release = metadata.version("ldapd")
html_title = f"ldapd {release}"

extensions = [
    "myst_parser",
    "sphinx.ext.intersphinx",
    "pydoctor.sphinx_ext.build_apidocs",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
# The guides link to one another's sections (access.md#limits).
myst_heading_anchors = 3

# pydoctor's inventory is added under the name "main" (pydoctor_url_path is
# where its pages are, from the top of the output), so that a guide may link a
# name to its reference: [Directory](inv:main:py:class#ldapd.directory.Directory).
# Python's and Twisted's inventories are not used: the build must not need the
# network, so the docstrings write outside names as C{...}, not L{...}.
intersphinx_mapping: dict[str, object] = {}
pydoctor_url_path = "api/"
# The extension adds --make-html and --quiet; whatever pydoctor prints (a
# docstring it cannot parse, an L{...} naming nothing) becomes a Sphinx warning.
pydoctor_args = [
    "--project-name=ldapd",
    f"--project-version={release}",
    "--docformat=epytext",
    "--html-output={outdir}/api",
    str(Path(__file__).resolve().parent.parent / "ldapd"),
]
