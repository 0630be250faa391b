"""
Print one of the README's quick-start commands, so that CI (.ci/run) and the
tests (tests/test_packaging.py) run the commands exactly as a reader would.

Usage: python3 .ci/readme_command.py N   (N = 1, 2: the Nth ```sh block of "## Quick start")
"""

import re
import sys
from pathlib import Path


def quickStartCommands(readme: str) -> list[str]:
    """
    @return: the one-line commands of the sh blocks of the README's "Quick start" section.
    """
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)][:2]


if __name__ == "__main__":
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    print(quickStartCommands(readme)[int(sys.argv[1]) - 1])
