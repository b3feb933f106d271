"""The built-in sample dataset: arithmetic word problems with worked steps.

Used when a run names no dataset, so ``trainer run`` works offline on a fresh
machine. Rows are generated from a fixed seed, never downloaded, and use the
common layout every bundled profile renders::

    {"question": "Mia has 12 apples. She buys 5 more. How many apples does Mia have now?",
     "reasoning": ["Mia starts with 12 apples.", "She buys 5 more, so 12 + 5 = 17."],
     "answer": "17"}
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

SAMPLE_SIZE = 2000
"""Rows in the sample dataset."""

NAMES = ("Mia", "Leo", "Ava", "Sam", "Zoe", "Max", "Ivy", "Ben", "Eva", "Tom", "Ana", "Raj")
THINGS = ("apples", "books", "coins", "stamps", "marbles", "pencils", "shells", "cards")
Row = dict[str, Any]


def _buy(rng: random.Random) -> Row:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    a, b = rng.randint(2, 60), rng.randint(2, 40)
    return {
        "question": f"{name} has {a} {thing}. {name} buys {b} more. How many {thing} does {name} have now?",
        "reasoning": [f"{name} starts with {a} {thing}.", f"{name} buys {b} more, so {a} + {b} = {a + b}."],
        "answer": str(a + b),
    }


def _give(rng: random.Random) -> Row:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    a = rng.randint(20, 90)
    b, c = rng.randint(1, a // 3), rng.randint(1, a // 3)
    left = a - b - c
    return {
        "question": f"{name} has {a} {thing}. {name} gives {b} to a friend and loses {c}. "
        f"How many {thing} are left?",
        "reasoning": [
            f"{name} starts with {a} {thing}.",
            f"After giving {b} away, {a} - {b} = {a - b} are left.",
            f"After losing {c}, {a - b} - {c} = {left} are left.",
        ],
        "answer": str(left),
    }


def _boxes(rng: random.Random) -> Row:
    thing = rng.choice(THINGS)
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    return {
        "question": f"A box holds {a} {thing}. How many {thing} are in {b} boxes?",
        "reasoning": [f"Each box holds {a} {thing}.", f"{b} boxes hold {b} * {a} = {a * b} {thing}."],
        "answer": str(a * b),
    }


def _share(rng: random.Random) -> Row:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    each, friends = rng.randint(2, 12), rng.randint(2, 8)
    total = each * friends
    return {
        "question": f"{name} shares {total} {thing} equally among {friends} friends. "
        f"How many {thing} does each friend get?",
        "reasoning": [
            f"There are {total} {thing} and {friends} friends.",
            f"Each friend gets {total} / {friends} = {each} {thing}.",
        ],
        "answer": str(each),
    }


def _days(rng: random.Random) -> Row:
    name = rng.choice(NAMES)
    per_day, days, extra = rng.randint(2, 30), rng.randint(2, 9), rng.randint(1, 20)
    read = per_day * days
    return {
        "question": f"{name} reads {per_day} pages a day for {days} days, then {extra} more pages. "
        f"How many pages does {name} read in total?",
        "reasoning": [
            f"In {days} days {name} reads {days} * {per_day} = {read} pages.",
            f"Adding {extra} more pages gives {read} + {extra} = {read + extra}.",
        ],
        "answer": str(read + extra),
    }


def _price(rng: random.Random) -> Row:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    price, count, paid = rng.randint(2, 9), rng.randint(2, 9), 100
    cost = price * count
    return {
        "question": f"{name} buys {count} {thing} at ${price} each and pays with ${paid}. "
        f"How much change does {name} get?",
        "reasoning": [
            f"The {thing} cost {count} * {price} = ${cost}.",
            f"The change is {paid} - {cost} = ${paid - cost}.",
        ],
        "answer": str(paid - cost),
    }


TEMPLATES: tuple[Callable[[random.Random], Row], ...] = (_buy, _give, _boxes, _share, _days, _price)


def sample_rows(count: int = SAMPLE_SIZE, seed: int = 0) -> list[Row]:
    """``count`` word problems with ``question``, ``reasoning`` (a list) and ``answer``.

    The same ``count`` and ``seed`` always give the same rows.
    """
    rng = random.Random(seed)
    return [TEMPLATES[index % len(TEMPLATES)](rng) for index in range(count)]
