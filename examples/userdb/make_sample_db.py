"""
Make the example's sample database: `python examples/userdb/make_sample_db.py PATH`
(`examples/userdb/sample.db` is the one `ldapd.toml` next to this file serves).
"""

import argparse
import sys
from pathlib import Path

# Run from a checkout, without installing the package: it is next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ldapd_userdb.sample import makeSampleDatabase  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("path", type=Path, help="the SQLite file to create")
    parser.add_argument("--iterations", type=int, default=870_000,
                        help="PBKDF2 iterations of the passwords (default: Django 5.1's)")
    args = parser.parse_args()
    try:
        makeSampleDatabase(args.path, args.iterations)
    except FileExistsError as e:
        parser.exit(1, f"{e}\n")
    print(f"{args.path}: user ada (password lovelace) in group engineers")


if __name__ == "__main__":
    main()
