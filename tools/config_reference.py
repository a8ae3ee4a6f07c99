"""Write the config table that settings.py declares into the README, in place of the one there.

Run `python -m tools.config_reference` after adding or changing a key; tests/infra/test_settings.py checks.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from settings import config_reference_markdown

README = Path(__file__).resolve().parent.parent / "README.md"
# The table: its header row, then every row that follows it.
TABLE = re.compile(r"^\| key \| default \| allowed \| description \|\n(?:\|.*\|\n?)+", re.MULTILINE)


def main() -> int:
    text = README.read_text()
    tables = TABLE.findall(text)
    if len(tables) != 1:
        print(f"expected one config table in {README.name}, found {len(tables)}", file=sys.stderr)
        return 1
    README.write_text(TABLE.sub(lambda _: config_reference_markdown() + "\n", text))
    print(f"wrote the config table of {README.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
