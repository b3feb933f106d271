"""``trainer suggest-profile``: ranking installed profiles for a dataset."""

from __future__ import annotations

import json

import pytest

from trainer.profiles import ProfileEntry
from trainer.profiles.base import InvalidExampleError
from trainer.profiles.chat import ChatProfile
from trainer.profiles.suggest import suggest_profiles

PAIRS = [{"prompt": "Hi", "response": "Hello"}, {"prompt": "Bye", "response": "See you"}]
REASONING = [{"question": "2 + 3?", "reasoning": ["2 + 3 = 5"], "answer": "5"}]


class OnlyReasoning(ChatProfile):
    name = "only_reasoning"
    suits = "rows with reasoning"

    def prepare_messages(self, example):
        if "reasoning" not in example:
            raise InvalidExampleError("row lacks a reasoning field")
        return super().prepare_messages(example)

    def rate_example(self, example):
        return 7.0  # out of range: clamped to 1.0


class Crashes(ChatProfile):
    name = "crashes"

    def prepare_messages(self, example):
        raise ValueError("bug in the profile")


class NeedsOptions(ChatProfile):
    name = "needs_options"

    def __init__(self, level):
        self.level = level


class BadRating(ChatProfile):
    name = "bad_rating"

    def rate_example(self, example):
        raise RuntimeError("broken hint")


@pytest.fixture
def installed(monkeypatch):
    def install(*classes):
        entries = {cls.name: ProfileEntry(cls.name, cls, plugin=None) for cls in classes}
        monkeypatch.setattr("trainer.profiles.suggest.installed_profiles", lambda: entries)

    return install


def numbered(rows):
    return list(enumerate(rows, start=1))


def test_profiles_rank_by_rows_rendered_then_by_their_rating(installed):
    installed(ChatProfile, OnlyReasoning)
    ranked = suggest_profiles(numbered(PAIRS + REASONING))
    assert [(s.name, s.rendered, s.rows) for s in ranked] == [("chat", 3, 3), ("only_reasoning", 1, 3)]
    assert ranked[1].first_problem == "row 1: row lacks a reasoning field"
    assert "renders 1/3 rows; first failure row 1: row lacks a reasoning field" in ranked[1].reason()

    ranked = suggest_profiles(numbered(REASONING))
    assert [(s.name, s.rating) for s in ranked] == [("only_reasoning", 1.0), ("chat", 0.0)]
    assert ranked[0].reason() == "renders 1/1 rows; made for rows with reasoning"


def test_faulty_profiles_are_ranked_last_not_fatal(installed):
    installed(Crashes, NeedsOptions, BadRating)
    ranked = {s.name: s for s in suggest_profiles(numbered(PAIRS))}
    assert ranked["crashes"].rendered == 0
    assert ranked["crashes"].first_problem == "row 1: the profile raised ValueError: bug in the profile"
    assert ranked["needs_options"].rendered == 0
    assert "cannot be built without profile.options" in ranked["needs_options"].reason()
    assert ranked["bad_rating"].rendered == 2 and ranked["bad_rating"].rating == 0.0
    assert suggest_profiles(numbered(PAIRS))[0].name == "bad_rating"


# -- through the command line, with the installed profiles ------------------------------


def test_cli_ranks_the_reasoning_profiles_first_for_gsm8k(run_trainer, gsm8k):
    result = run_trainer("suggest-profile", str(gsm8k), "-n", "20")
    assert result.returncode == 0, result.stderr
    assert "sample: the first 20 rows of" in result.stdout
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("RANK"))
    ranked = [line.split()[1] for line in lines[header + 2 : header + 5]]
    if {"emoji_think", "regime3"} <= set(ranked):
        assert ranked == ["emoji_think", "regime3", "chat"]
        assert "emoji_think and regime3 fit equally well" in result.stdout
        assert "trainer preview --profile regime3 --dataset" in result.stdout
    assert "chat         20/20    0.00" in result.stdout


def test_cli_json_and_a_pairs_dataset(run_trainer, tmp_path):
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in PAIRS))
    result = run_trainer("suggest-profile", "pairs.jsonl", "--json")
    assert result.returncode == 0, result.stderr
    ranked = json.loads(result.stdout)
    assert ranked[0]["profile"] == "chat" and ranked[0]["rendered"] == 2 and ranked[0]["rating"] == 0.5
    assert set(ranked[0]) == {
        "profile",
        "description",
        "suits",
        "rows",
        "rendered",
        "rating",
        "first_problem",
        "reason",
    }

    text = run_trainer("suggest-profile", "pairs.jsonl")
    assert (
        "Best fit: chat." in text.stdout
        and "trainer preview --profile chat --dataset pairs.jsonl" in text.stdout
    )


def test_cli_no_profile_renders_the_rows(run_trainer, tmp_path):
    (tmp_path / "text.jsonl").write_text('{"text": "just text"}\n')
    result = run_trainer("suggest-profile", "text.jsonl")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: no installed profile renders a row of 'text.jsonl' (see WHY above). Give the rows the "
        "fields a profile reads, or install a profile for this layout"
    ]
    assert "renders no row: row 1: row lacks a user turn (fields present: text)" in result.stdout
