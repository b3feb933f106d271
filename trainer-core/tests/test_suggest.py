"""``trainer suggest-profile``: ranking installed profiles for a dataset."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml
from click.testing import CliRunner

from trainer.cli.suggest_cmd import suggest_profile
from trainer.config import TrainerConfig
from trainer.errors import TrainerError
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


class AlsoReasoning(OnlyReasoning):
    name = "also_reasoning"


class RendersAnything(ChatProfile):
    """A third-party profile that renders every row and states no preference (rates 0.0)."""

    name = "a_renders_anything"
    suits = ""

    def prepare_messages(self, example):
        return [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]

    def rate_example(self, example):
        return 0.0


class RatesWithoutSaying(RendersAnything):
    """Rates every row 1.0 but states nothing it suits."""

    name = "a_rates_without_saying"

    def rate_example(self, example):
        return 1.0


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
    assert [(s.name, s.rating, s.rank) for s in ranked] == [("only_reasoning", 1.0, 1), ("chat", 0.0, 2)]
    assert ranked[0].reason() == "renders 1/1 rows; made for rows with reasoning"


def test_a_zero_rating_profile_ranks_below_one_that_rates_the_rows(installed, tmp_path):
    # Alphabetically first, renders every row, rates 0.0: never the single best.
    installed(RendersAnything, OnlyReasoning)
    ranked = suggest_profiles(numbered(REASONING * 3))
    assert [(s.name, s.rank, s.rendered, s.rating) for s in ranked] == [
        ("only_reasoning", 1, 3, 1.0),
        ("a_renders_anything", 2, 3, 0.0),
    ]
    assert not ranked[0].tied_with and not ranked[1].tied_with

    result = CliRunner().invoke(suggest_profile, [write_rows(tmp_path, REASONING * 3)])
    assert result.exit_code == 0, result.output
    assert "1     only_reasoning" in result.output and "2     a_renders_anything" in result.output
    assert "Best fit: only_reasoning." in result.output and "fit equally well" not in result.output


def test_a_profile_stating_what_it_suits_breaks_a_tie_with_one_that_does_not(installed):
    installed(RatesWithoutSaying, OnlyReasoning)
    ranked = suggest_profiles(numbered(REASONING))
    assert [(s.name, s.rank, s.rating) for s in ranked] == [
        ("only_reasoning", 1, 1.0),
        ("a_rates_without_saying", 2, 1.0),
    ]
    assert ranked[1].reason() == (
        "renders 1/1 rows; ranks after only_reasoning: same rows and rating, but states no data it suits"
    )


def test_equal_profiles_are_shown_as_a_tie_and_explained(installed, tmp_path):
    installed(OnlyReasoning, AlsoReasoning, ChatProfile, RendersAnything)
    ranked = suggest_profiles(numbered(REASONING * 2))
    assert [(s.name, s.rank, s.tied_with) for s in ranked] == [
        ("also_reasoning", 1, ["only_reasoning"]),
        ("only_reasoning", 1, ["also_reasoning"]),
        ("a_renders_anything", 3, ["chat"]),
        ("chat", 3, ["a_renders_anything"]),
    ]
    assert ranked[1].reason() == (
        "renders 2/2 rows; made for rows with reasoning; tied with also_reasoning: both render every "
        "row and rate them 1.00; choose by the answer format you want"
    )
    assert ranked[1].to_dict()["rank"] == 1 and ranked[1].to_dict()["tied_with"] == ["also_reasoning"]

    result = CliRunner().invoke(suggest_profile, [write_rows(tmp_path, REASONING * 2)])
    assert result.exit_code == 0, result.output
    assert [line.split()[:2] for line in result.output.splitlines()[4:8]] == [
        ["1=", "also_reasoning"],
        ["1=", "only_reasoning"],
        ["3=", "a_renders_anything"],
        ["3=", "chat"],
    ]
    assert "also_reasoning and only_reasoning fit equally well" in result.output
    assert "trainer preview --profile only_reasoning --dataset" in result.output
    assert "Best fit" not in result.output


def write_rows(folder, rows):
    """``rows`` as ``folder``/rows.jsonl; its path."""
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


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
    table = [line.split()[:2] for line in lines[header + 2 : lines.index("", header)]]
    ranks = {name: rank for rank, name in table}
    if {"emoji_think", "regime3"} <= set(ranks):
        # Made for this data and rating it equally: a tie, shown and explained, ahead of chat.
        assert ranks["emoji_think"] == ranks["regime3"] == "1="
        assert [name for _, name in table].index("chat") > [name for _, name in table].index("regime3")
        assert "tied with regime3" in result.stdout
        assert "choose by the answer format you want" in result.stdout
        assert "emoji_think, regime3" in result.stdout or "emoji_think and regime3" in result.stdout
        assert "fit equally well" in result.stdout
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
        "rank",
        "tied_with",
        "reason",
    }
    assert ranked[0]["rank"] == 1 and ranked[0]["tied_with"] == []

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


@pytest.mark.parametrize("name", ["missing.jsonl", "missing.parquet"])
def test_cli_a_missing_dataset_names_the_argument_not_dataset_option(run_trainer, name):
    result = run_trainer("suggest-profile", name)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"Error: dataset file '{name}' not found. Pass an existing file: trainer suggest-profile DATASET"
    ]
    assert "--dataset" not in result.stderr


# -- several datasets: a proposed mixture --------------------------------------------------


def test_propose_mixture_takes_each_best_fit_and_names_files_that_share_a_name(installed, tmp_path):
    from trainer.profiles.suggest import mixture_yaml, propose_mixture

    installed(ChatProfile, OnlyReasoning, AlsoReasoning)
    ranked = {
        "x/train.jsonl": suggest_profiles(numbered(REASONING)),
        "y/train.jsonl": suggest_profiles(numbered(PAIRS)),
        "pairs.jsonl": suggest_profiles(numbered(PAIRS)),
    }
    proposal = propose_mixture(ranked)
    assert [(s.path, s.name, s.profile, s.equally_good) for s in proposal] == [
        ("x/train.jsonl", "train_1", "also_reasoning", ["only_reasoning"]),
        ("y/train.jsonl", "train_2", "chat", []),
        ("pairs.jsonl", None, "chat", []),
    ]
    text = mixture_yaml(proposal)
    assert "      profile: also_reasoning  # as good a fit: only_reasoning\n" in text
    config = TrainerConfig.from_dict(yaml.safe_load(text))
    assert [(s.path, s.name, s.profile, s.weight) for s in config.data.mixture] == [
        ("x/train.jsonl", "train_1", "also_reasoning", 1.0),
        ("y/train.jsonl", "train_2", "chat", 1.0),
        ("pairs.jsonl", None, "chat", 1.0),
    ]


def test_propose_mixture_refuses_a_dataset_no_profile_renders(installed):
    from trainer.profiles.suggest import propose_mixture

    installed(OnlyReasoning)
    with pytest.raises(ValueError, match="no profile renders a row of 'pairs.jsonl'"):
        propose_mixture({"pairs.jsonl": suggest_profiles(numbered(PAIRS))})


def printed_block(output: str, first: str) -> str:
    """The lines of ``output`` from the line ``first`` up to the next blank line."""
    lines = output.splitlines()
    start = lines.index(first)
    end = lines.index("", start)
    return "\n".join(lines[start:end]) + "\n"


def test_cli_several_datasets_print_a_mixture_that_loads_as_config(installed, tmp_path, monkeypatch):
    from trainer.config.loader import ConfigLoader

    installed(ChatProfile, OnlyReasoning)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reasoning.jsonl").write_text("".join(json.dumps(row) + "\n" for row in REASONING * 2))
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in PAIRS))
    result = CliRunner().invoke(suggest_profile, ["reasoning.jsonl", "pairs.jsonl"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.count("RANK  PROFILE") == 2
    assert (
        "sample: the first 2 rows of reasoning.jsonl" in out
        and "sample: the first 2 rows of pairs.jsonl" in out
    )
    assert "Best fit for reasoning.jsonl: only_reasoning" in out and "Best fit for pairs.jsonl: chat" in out

    block = printed_block(out, "data:")
    assert block == (
        "data:\n"
        "  mixture:\n"
        "    - path: reasoning.jsonl\n"
        "      profile: only_reasoning\n"
        "      weight: 1\n"
        "    - path: pairs.jsonl\n"
        "      profile: chat\n"
        "      weight: 1\n"
    )
    from_yaml = TrainerConfig.from_dict(yaml.safe_load(block))
    command = "  trainer run --dataset reasoning.jsonl:only_reasoning@1 --dataset pairs.jsonl:chat@1"
    assert command in out.splitlines()
    assert "  trainer preview --dataset reasoning.jsonl:only_reasoning@1 --dataset pairs.jsonl:chat@1" in out
    flags = shlex.split(command)[2:]
    from_flags = ConfigLoader().merge_with_cli_args({"dataset": flags[1::2]})
    assert from_flags.data.mixture == from_yaml.data.mixture


def test_cli_several_datasets_sharing_a_file_name_need_the_config_file(installed, tmp_path):
    installed(ChatProfile)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in PAIRS))
    paths = [str(tmp_path / "a" / "train.jsonl"), str(tmp_path / "b" / "train.jsonl")]
    result = CliRunner().invoke(suggest_profile, paths)
    assert result.exit_code == 0, result.output
    assert "      name: train_1\n" in result.output and "      name: train_2\n" in result.output
    assert "the command line cannot give them, use the config file" in result.output
    assert "trainer run --dataset" not in result.output


def test_cli_several_datasets_as_json(installed, tmp_path):
    installed(ChatProfile, OnlyReasoning)
    reasoning = write_rows(tmp_path, REASONING)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(row) + "\n" for row in PAIRS))
    result = CliRunner().invoke(suggest_profile, [reasoning, str(pairs), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert list(shown["datasets"]) == [reasoning, str(pairs)]
    assert shown["datasets"][reasoning][0]["profile"] == "only_reasoning"
    assert shown["mixture"] == [
        {"path": reasoning, "profile": "only_reasoning", "weight": 1.0},
        {"path": str(pairs), "profile": "chat", "weight": 1.0},
    ]


def test_cli_several_datasets_one_of_which_no_profile_renders(installed, tmp_path):
    installed(OnlyReasoning)
    reasoning = write_rows(tmp_path, REASONING)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(row) + "\n" for row in PAIRS))
    result = CliRunner().invoke(suggest_profile, [reasoning, str(pairs)])
    assert result.exit_code == 1 and isinstance(result.exception, TrainerError)
    assert str(result.exception).startswith(
        f"no installed profile renders a row of '{pairs}' (see WHY above)"
    )
    assert "data:" not in result.output


def test_cli_the_same_dataset_twice_is_refused(installed, tmp_path):
    installed(ChatProfile)
    pairs = write_rows(tmp_path, PAIRS)
    result = CliRunner().invoke(suggest_profile, [pairs, pairs])
    assert isinstance(result.exception, TrainerError)
    assert str(result.exception) == f"dataset '{pairs}' is given twice. Name each dataset once"


def test_cli_several_datasets_with_the_installed_profiles(run_trainer, gsm8k, tmp_path):
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in PAIRS))
    result = run_trainer("suggest-profile", str(gsm8k), "pairs.jsonl", "-n", "5")
    assert result.returncode == 0, result.stderr
    block = printed_block(result.stdout, "data:")
    sources = TrainerConfig.from_dict(yaml.safe_load(block)).data.mixture
    assert [(s.path, s.profile) for s in sources][1] == ("pairs.jsonl", "chat")
    assert sources[0].path == str(gsm8k) and sources[0].profile != "chat"
    run = next(line for line in result.stdout.splitlines() if line.startswith("  trainer run "))
    shown = run_trainer("config", "show", "--json", *shlex.split(run)[2:])
    assert shown.returncode == 0, shown.stderr
    assert [(s["path"], s["profile"], s["weight"]) for s in json.loads(shown.stdout)["data"]["mixture"]] == [
        (s.path, s.profile, s.weight) for s in sources
    ]
