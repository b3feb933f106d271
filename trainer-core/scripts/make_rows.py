"""Write N prompt/response rows to a JSON Lines file, for measuring how the data pipeline scales.

Each row is about 100 characters, ``{"prompt": "...", "response": "..."}``, with
arithmetic questions varied by row number so no two rows tokenize alike::

    python trainer-core/scripts/make_rows.py 1000000 /tmp/rows_1m.jsonl

Then, from /tmp, with a throw-away datasets cache::

    HF_DATASETS_CACHE=$(mktemp -d) /usr/bin/time -v \\
        trainer run --dry-run --profile chat --dataset /tmp/rows_1m.jsonl --set data.num_proc=2

"Maximum resident set size" in the output of ``/usr/bin/time -v`` is the peak memory.
Standard library only; the file is written row by row, so the script itself needs no memory
to speak of.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAMES = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "June")
THINGS = ("apples", "shells", "stamps", "marbles", "coins", "books", "pens", "cards")


def row(number: int) -> dict[str, str]:
    """Row ``number``: a two-number addition question and its worked answer."""
    name = NAMES[number % len(NAMES)]
    thing = THINGS[number // len(NAMES) % len(THINGS)]
    first, second = 10 + number % 89, 3 + number % 47
    return {
        "prompt": f"{name} has {first} {thing} and finds {second} more. How many now?",
        "response": f"{first} + {second} = {first + second}. {first + second}",
    }


def write_rows(count: int, path: Path) -> None:
    """Write ``count`` rows to ``path`` as JSON Lines, replacing the file."""
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            handle.write(json.dumps(row(number)) + "\n")


def main() -> None:
    """Parse the command line and write the file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="how many rows to write")
    parser.add_argument("path", type=Path, help="the .jsonl file to write")
    args = parser.parse_args()
    write_rows(args.count, args.path)


if __name__ == "__main__":
    main()
