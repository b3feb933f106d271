"""``data.mixture`` in the config: a list of sections checked item by item, ``--dataset`` repeated,
and the loader, ``config show`` and ``preview`` handling a mixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from trainer.cli import cli
from trainer.config import ConfigError, TrainerConfig, iter_values, render_yaml
from trainer.config.loader import ConfigLoader
from trainer.config.mixture import DATASET_SYNTAX, SourceConfig, dataset_flag, parse_dataset_flag

PAIRS = [{"prompt": "Hi", "response": "Hello"}, {"prompt": "Bye", "response": "See you"}]


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        TrainerConfig.from_dict(data, source="config.yaml")
    return caught.value.problems


def mixture(*items: object) -> dict:
    return {"data": {"mixture": list(items)}}


# A list of sections: built item by item, problems named by index


def test_a_mixture_builds_one_source_config_per_item_and_round_trips():
    config = TrainerConfig.from_dict(
        mixture(
            {"path": "gsm8k.jsonl", "profile": "regime3", "weight": 0.7, "options": {"a": [1]}},
            {"path": "chat.jsonl", "weight": 0.3, "limit": 100},
        )
    )
    first, second = config.data.mixture
    assert isinstance(first, SourceConfig) and isinstance(second, SourceConfig)
    assert (first.path, first.profile, first.weight, first.options) == (
        "gsm8k.jsonl",
        "regime3",
        0.7,
        {"a": [1]},
    )
    assert (second.profile, second.weight, second.limit, second.repeat) == (None, 0.3, 100, None)
    assert TrainerConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_items_may_be_source_config_instances_and_validate_checks_them():
    config = TrainerConfig()
    config.data.mixture = [SourceConfig(path="a.jsonl", weight=2), SourceConfig(path="b.jsonl", weight=1)]
    config.validate()
    assert [source.weight for source in config.data.mixture] == [2.0, 1.0]
    config.data.mixture[1].weight = None
    with pytest.raises(ConfigError, match=r"weight is set on some sources but not on mixture\[1\]"):
        config.validate()


def test_items_that_are_one_yaml_alias_become_separate_sources():
    data = yaml.safe_load("base: &s {weight: 1, options: {a: [1]}}\ndata: {mixture: [*s, *s]}\n")
    del data["base"]
    first, second = TrainerConfig.from_dict(data).data.mixture
    assert first == second and first is not second
    first.options["a"].append(2)
    assert second.options == {"a": [1]}


def test_an_empty_or_null_mixture_is_no_mixture():
    assert TrainerConfig.from_dict({"data": {"mixture": None}}).data.mixture == []
    assert TrainerConfig.from_dict(mixture()).data.mixture == []


def test_an_unknown_key_in_an_item_names_its_index_and_the_key_meant():
    assert problems_of(mixture({"path": "a.jsonl"}, {"pth": "b.jsonl", "wieght": 2})) == [
        "data.mixture[1].pth: unknown key; did you mean 'data.mixture[1].path'?",
        "data.mixture[1].wieght: unknown key; did you mean 'data.mixture[1].weight'?",
    ]


def test_a_data_field_inside_an_item_points_to_the_source_field():
    assert problems_of(mixture({"dataset_path": "a.jsonl"})) == [
        "data.mixture[0].dataset_path: unknown key; did you mean 'data.mixture[0].path'?"
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"path": "a.jsonl"}, "data.mixture: expected a list of mappings, got {'path': 'a.jsonl'} (dict)"),
        ("a.jsonl", "data.mixture: expected a list of mappings, got 'a.jsonl' (str)"),
        (3, "data.mixture: expected a list of mappings, got 3 (int)"),
    ],
)
def test_a_mixture_that_is_not_a_list_is_one_problem(value, problem):
    assert problems_of({"data": {"mixture": value}}) == [problem]


def test_an_item_that_is_not_a_mapping_is_named_by_its_index():
    assert problems_of(mixture("a.jsonl", {"path": "b.jsonl"}, None, [1])) == [
        "data.mixture[0]: expected a mapping, got 'a.jsonl' (str)",
        "data.mixture[2]: expected a mapping, got None (NoneType)",
        "data.mixture[3]: expected a mapping, got [1] (list)",
    ]


def test_each_item_checks_its_own_types_and_values():
    problems = problems_of(
        mixture(
            {"path": "a.jsonl", "repeat": 0, "limit": 0, "options": [1]},
            {"path": "b.jsonl", "repeat": "twice", "validation_split": 1.5, "name": " "},
            {"path": "c.jsonl", "weight": 1, "repeat": 2},
        )
    )
    assert problems[:7] == [
        "data.mixture[0].options: expected a mapping of names to values, got [1] (list)",
        "data.mixture[0].repeat: must be at least 1, got 0",
        "data.mixture[0].limit: must be at least 1, got 0",
        "data.mixture[1].repeat: expected an integer or null, got 'twice' (str)",
        "data.mixture[1].name: must not be blank",
        "data.mixture[1].validation_split: must be at least 0 and below 1, got 1.5",
        "data.mixture[2].weight and repeat are both set; set one of them",
    ]


def test_a_weight_must_be_positive():
    assert problems_of(mixture({"path": "a.jsonl", "weight": -1}, {"path": "b.jsonl", "weight": 0})) == [
        "data.mixture[0].weight: must be positive, got -1.0",
        "data.mixture[1].weight: must be positive, got 0.0",
    ]


def test_weights_on_some_sources_but_not_all():
    assert problems_of(
        mixture({"path": "a.jsonl", "weight": 1}, {"path": "b.jsonl"}, {"path": "c.jsonl"})
    ) == [
        "data.mixture: weight is set on some sources but not on mixture[1], mixture[2]; set it on every one"
    ]


def test_weights_mixed_with_repeats():
    problems = problems_of(
        mixture(
            {"path": "a.jsonl", "weight": 1}, {"path": "b.jsonl", "weight": 1}, {"path": "c", "repeat": 2}
        )
    )
    assert (
        "data.mixture: some sources have a weight and others a repeat; use weights (sampling) or repeats "
        "(whole passes) for all of them"
    ) in problems


def test_two_sources_of_one_name():
    assert problems_of(mixture({"path": "x/train.jsonl"}, {"path": "y/train.jsonl"})) == [
        "data.mixture: two sources are named 'train'; give them distinct names with name:"
    ]
    named = mixture({"path": "x/train.jsonl", "name": "x"}, {"path": "y/train.jsonl"})
    assert [source.name for source in TrainerConfig.from_dict(named).data.mixture] == ["x", None]


def test_the_simple_form_and_a_mixture_together():
    data = {"dataset_path": "c.jsonl", "validation_split": 0.1, "mixture": [{"path": "a.jsonl"}]}
    assert problems_of({"data": data}) == [
        "data.dataset_path: set per source in data.mixture, not for the whole mixture",
        "data.validation_split: set per source in data.mixture, not for the whole mixture",
    ]


def test_an_unknown_mixture_strategy_gets_a_suggestion():
    assert problems_of({"data": {"mixture_strategy": "first_exhaust"}}) == [
        "data.mixture_strategy: must be one of all_exhausted, first_exhausted, got 'first_exhaust'; "
        "did you mean 'first_exhausted'?"
    ]


def test_problems_of_items_and_of_other_sections_come_together(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text(
        "hyperparams: {batch_size: 0}\n"
        "data:\n"
        "  mixture:\n"
        "    - {path: a.jsonl, weight: 1}\n"
        "    - {pth: b.jsonl, weight: 1}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        ConfigLoader(path).load()
    assert caught.value.source == str(path)
    assert caught.value.problems == [
        "hyperparams.batch_size: must be at least 1, got 0",
        "data.mixture[1].pth: unknown key; did you mean 'data.mixture[1].path'?",
    ]


# --dataset PATH[:PROFILE][@WEIGHT]


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("a.jsonl", {"path": "a.jsonl"}),
        ("a.jsonl:regime3", {"path": "a.jsonl", "profile": "regime3"}),
        ("gsm8k.jsonl:regime3@0.7", {"path": "gsm8k.jsonl", "profile": "regime3", "weight": 0.7}),
        ("chat.jsonl@3", {"path": "chat.jsonl", "weight": 3.0}),
        (
            "a.jsonl:emoji_think+regime3@1e-1",
            {"path": "a.jsonl", "profile": "emoji_think+regime3", "weight": 0.1},
        ),
        ("data/a-b.jsonl:tool-use_2", {"path": "data/a-b.jsonl", "profile": "tool-use_2"}),
        # A ':' or '@' that is not followed by a profile name or a weight belongs to the path.
        ("C:/data/x.jsonl", {"path": "C:/data/x.jsonl"}),
        ("C:\\data\\x.jsonl:chat@2", {"path": "C:\\data\\x.jsonl", "profile": "chat", "weight": 2.0}),
        ("runs:2024/x.jsonl", {"path": "runs:2024/x.jsonl"}),
        ("file:name.jsonl", {"path": "file:name.jsonl"}),
        ("a:old:chat", {"path": "a:old", "profile": "chat"}),
        ("v@2/x.jsonl:chat", {"path": "v@2/x.jsonl", "profile": "chat"}),
        ("mail@home.jsonl:chat", {"path": "mail@home.jsonl", "profile": "chat"}),
        ("mail@home.jsonl@1", {"path": "mail@home.jsonl", "weight": 1.0}),
    ],
)
def test_a_dataset_value_is_read_from_the_right(text, source):
    assert parse_dataset_flag(text) == source
    assert parse_dataset_flag(dataset_flag(**source)) == source


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a.jsonl@abc",
            "--dataset 'a.jsonl@abc': the weight after '@' must be a number above 0, got 'abc'; write e.g. "
            "a.jsonl@0.5 (a file whose name holds '@' takes a weight after it: a.jsonl@abc@1)",
        ),
        (
            "a.jsonl:chat@0",
            "--dataset 'a.jsonl:chat@0': the weight after '@' must be a number above 0, got '0'; "
            "write e.g. a.jsonl:chat@0.5",
        ),
        (
            "a.jsonl@-1",
            "--dataset 'a.jsonl@-1': the weight after '@' must be a number above 0, got '-1'; "
            "write e.g. a.jsonl@0.5",
        ),
        (
            "a.jsonl@",
            "--dataset 'a.jsonl@': the weight after '@' must be a number above 0, got ''; "
            "write e.g. a.jsonl@0.5",
        ),
        (
            "a.jsonl:",
            f"--dataset 'a.jsonl:': no profile after ':'; write {DATASET_SYNTAX} with a profile name after "
            "the ':' (trainer profiles lists them), or leave the ':' out",
        ),
        (
            ":chat@0.5",
            f"--dataset ':chat@0.5': no path before the profile or weight; write {DATASET_SYNTAX}, "
            "e.g. data/train.jsonl:chat@0.5",
        ),
    ],
)
def test_a_bad_dataset_value_is_one_line_naming_it_and_the_fix(text, message):
    with pytest.raises(ValueError) as caught:
        parse_dataset_flag(text)
    assert str(caught.value) == message


@pytest.mark.parametrize("weight", ["nan", "inf", "1e400"])
def test_a_weight_must_be_finite(weight):
    with pytest.raises(ValueError, match="must be a number above 0"):
        parse_dataset_flag(f"a.jsonl@{weight}")


# The loader: --dataset, --set data.mixture, origins


def test_one_plain_dataset_is_the_simple_form():
    loader = ConfigLoader()
    config = loader.merge_with_cli_args({"dataset": ["a.jsonl"]})
    assert (config.data.dataset_path, config.data.mixture) == ("a.jsonl", [])
    assert ConfigLoader().merge_with_cli_args({"dataset": "C:/x.jsonl"}).data.dataset_path == "C:/x.jsonl"


def test_repeated_datasets_make_a_mixture_and_profile_is_the_default_for_the_rest():
    loader = ConfigLoader()
    config = loader.merge_with_cli_args(
        {"dataset": ["gsm8k.jsonl:regime3@0.7", "chat.jsonl@0.3"], "profile": "chat"}
    )
    assert config.data.dataset_path is None
    assert [(s.path, s.profile, s.weight) for s in config.data.mixture] == [
        ("gsm8k.jsonl", "regime3", 0.7),
        ("chat.jsonl", None, 0.3),
    ]
    assert config.profile.name == "chat"  # what a source that names no profile is read through
    assert loader.origins()["data.mixture"] == "command line"


@pytest.mark.parametrize("given", [["a.jsonl:regime3"], ["a.jsonl@2"], ["a.jsonl", "b.jsonl"]])
def test_a_profile_a_weight_or_a_second_dataset_make_a_mixture(given):
    config = ConfigLoader().merge_with_cli_args({"dataset": given})
    assert config.data.dataset_path is None
    assert [source.path for source in config.data.mixture] == [
        text.split(":")[0].split("@")[0] for text in given
    ]


def test_bad_dataset_values_are_reported_together_as_command_line_problems():
    with pytest.raises(ConfigError) as caught:
        ConfigLoader().merge_with_cli_args({"dataset": ["a.jsonl@abc", "b.jsonl@0"], "batch_size": 0})
    assert caught.value.source == "command line"
    assert [problem.split(":")[0] for problem in caught.value.problems] == [
        "--dataset 'a.jsonl@abc'",
        "--dataset 'b.jsonl@0'",
        "hyperparams.batch_size",
    ]


def test_weights_on_some_command_line_sources_only():
    with pytest.raises(ConfigError) as caught:
        ConfigLoader().merge_with_cli_args({"dataset": ["a.jsonl@0.7", "b.jsonl"]})
    assert caught.value.problems == [
        "data.mixture: weight is set on some sources but not on mixture[1]; set it on every one"
    ]


def test_the_command_line_dataset_replaces_the_file_mixture_and_the_file_dataset(tmp_path):
    with_mixture = tmp_path / "mix.yaml"
    with_mixture.write_text("data:\n  mixture:\n    - {path: file.jsonl, weight: 1}\n", encoding="utf-8")
    loader = ConfigLoader(with_mixture)
    assert loader.load().data.mixture[0].path == "file.jsonl"
    assert loader.origins()["data.mixture"] == f"file {with_mixture}"
    config = loader.merge_with_cli_args({"dataset": ["a.jsonl@1", "b.jsonl@2"]})
    assert [source.path for source in config.data.mixture] == ["a.jsonl", "b.jsonl"]
    assert loader.origins()["data.mixture"] == "command line"
    simple = ConfigLoader(with_mixture).merge_with_cli_args({"dataset": "only.jsonl"})
    assert (simple.data.dataset_path, simple.data.mixture) == ("only.jsonl", [])

    with_dataset = tmp_path / "one.yaml"
    with_dataset.write_text("data: {dataset_path: file.jsonl}\n", encoding="utf-8")
    mixed = ConfigLoader(with_dataset).merge_with_cli_args({"dataset": ["a.jsonl:chat", "b.jsonl:chat"]})
    assert mixed.data.dataset_path is None and len(mixed.data.mixture) == 2


def test_set_takes_the_mixture_as_yaml():
    loader = ConfigLoader()
    config = loader.merge_with_cli_args(
        {
            "set": [
                "data.mixture=[{path: a.jsonl, profile: regime3, weight: 0.5}, {path: b.jsonl, weight: 0.5}]"
            ]
        }
    )
    assert [(s.path, s.profile, s.weight) for s in config.data.mixture] == [
        ("a.jsonl", "regime3", 0.5),
        ("b.jsonl", None, 0.5),
    ]
    assert loader.origins()["data.mixture"] == "command line"


@pytest.mark.parametrize(
    ("assignment", "problem"),
    [
        ("data.mixture=a.jsonl", "data.mixture: expected a list of mappings, got 'a.jsonl' (str)"),
        (
            "data.mixture=[{pth: a.jsonl}]",
            "data.mixture[0].pth: unknown key; did you mean 'data.mixture[0].path'?",
        ),
        ("data.mixture=[a.jsonl]", "data.mixture[0]: expected a mapping, got 'a.jsonl' (str)"),
        ("data.mixture=[{path: a", "data.mixture: expected a list of mappings, got '[{path: a' (str)"),
        (
            "data.mixture.path=a.jsonl",
            "data.mixture.path: data.mixture is a list, set as a whole: "
            "data.mixture=[{path: a.jsonl, weight: 0.5}, {path: b.jsonl, weight: 0.5}]",
        ),
    ],
)
def test_set_mixture_problems(assignment, problem):
    with pytest.raises(ConfigError) as caught:
        ConfigLoader().merge_with_cli_args({"set": [assignment]})
    assert caught.value.problems == [problem]


def test_iter_values_and_origins_treat_the_mixture_as_one_field(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text("data:\n  mixture: [{path: a.jsonl}, {path: b.jsonl}]\n", encoding="utf-8")
    loader = ConfigLoader(path)
    config = loader.load()
    values = dict(iter_values(config))
    assert [source.path for source in values["data.mixture"]] == ["a.jsonl", "b.jsonl"]
    assert not any(name.startswith("data.mixture.") for name in values)
    assert list(loader.origins()) == list(values)
    assert loader.origins()["data.mixture"] == f"file {path}"
    assert loader.origins()["data.mixture_strategy"] == "default"


# Rendering: YAML that loads back, the mixture's origin on its line


def test_render_yaml_writes_each_source_out_and_loads_back():
    config = TrainerConfig.from_dict(
        mixture(
            {"path": "yes", "profile": "regime3", "weight": 0.7, "options": {"n": [1, "no"]}},
            {"path": "b: c.jsonl", "system_prompt": "Line one.\nLine two # not a comment", "weight": 0.3},
        )
    )
    text = render_yaml(config)
    assert "  mixture:\n    - path: 'yes'\n      name: null\n      profile: regime3\n" in text
    assert TrainerConfig.from_dict(yaml.safe_load(text)) == config
    assert "  mixture: []\n" in render_yaml(TrainerConfig())


def test_render_yaml_names_where_the_mixture_came_from(tmp_path):
    loader = ConfigLoader()
    config = loader.merge_with_cli_args({"dataset": ["a.jsonl:regime3@0.7", "b.jsonl@0.3"]})
    lines = render_yaml(config, loader.origins()).splitlines()
    mixture_line = next(line for line in lines if line.lstrip().startswith("mixture:"))
    assert mixture_line.startswith("  mixture: ") and mixture_line.endswith("# command line")
    items = lines[lines.index(mixture_line) + 1 :]
    assert items[0] == "    - path: a.jsonl" and "#" not in "".join(items[:20])
    assert TrainerConfig.from_dict(yaml.safe_load("\n".join(lines))) == config


# Through the command line


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="trainer")


def test_config_show_prints_the_command_line_mixture_as_yaml_that_loads_back():
    result = invoke("config", "show", "--dataset", "a.jsonl:regime3@0.7", "--dataset", "b.jsonl@0.3")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["data"]["dataset_path"] is None
    assert [(s["path"], s["profile"], s["weight"]) for s in shown["data"]["mixture"]] == [
        ("a.jsonl", "regime3", 0.7),
        ("b.jsonl", None, 0.3),
    ]
    expected = ConfigLoader().merge_with_cli_args({"dataset": ["a.jsonl:regime3@0.7", "b.jsonl@0.3"]})
    assert TrainerConfig.from_dict(shown) == expected


def test_config_show_json_with_origins_writes_the_mixture_as_mappings():
    result = invoke(
        "config", "show", "--json", "--origin", "--dataset", "a.jsonl:chat", "--dataset", "b.jsonl"
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["data.mixture"]
    assert shown["origin"] == "command line"
    assert [(s["path"], s["profile"]) for s in shown["value"]] == [("a.jsonl", "chat"), ("b.jsonl", None)]


def test_config_show_with_one_dataset_keeps_the_simple_form():
    result = invoke("config", "show", "--json", "--dataset", "a.jsonl")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)["data"]
    assert (data["dataset_path"], data["mixture"]) == ("a.jsonl", [])


def test_a_bad_weight_exits_2_with_one_line(run_trainer):
    result = run_trainer("config", "show", "--dataset", "a.jsonl@abc", "--dataset", "b.jsonl")
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: command line: --dataset 'a.jsonl@abc': the weight after '@' must be a number above 0, "
        "got 'abc'; write e.g. a.jsonl@0.5 (a file whose name holds '@' takes a weight after it: "
        "a.jsonl@abc@1)"
    ]


def test_the_dataset_help_shows_the_syntax():
    result = invoke("run", "--help")
    assert "--dataset PATH[:PROFILE][@WEIGHT]" in result.output


def write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def test_preview_shows_each_source_through_its_own_profile(tmp_path, gsm8k):
    pairs = write_rows(tmp_path / "pairs.jsonl", PAIRS)
    result = invoke(
        "preview", "--dataset", f"{gsm8k}:regime3@0.7", "--dataset", f"{pairs}@0.3", "-n", "1", "--json"
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert [(s["name"], s["profile"], s["dataset"]) for s in shown["sources"]] == [
        ("test", "regime3", str(gsm8k)),
        ("pairs", "chat", pairs),
    ]
    regime3, chat = shown["sources"]
    assert "Answer:" in regime3["examples"][0]["messages"][-1]["content"]
    assert chat["examples"][0]["messages"][-1] == {"role": "assistant", "content": "Hello"}
    assert len(regime3["examples"]) == len(chat["examples"]) == 1

    text = invoke("preview", "--dataset", f"{gsm8k}:regime3", "--dataset", f"{pairs}:chat", "-n", "1")
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0] == "=== source 'test' (data.mixture[0]) ==="
    assert lines[1] == f"profile: regime3   dataset: {gsm8k}"
    assert "=== source 'pairs' (data.mixture[1]) ===" in lines
    assert f"profile: chat   dataset: {pairs}" in lines


def test_preview_of_one_dataset_is_unchanged(tmp_path):
    pairs = write_rows(tmp_path / "pairs.jsonl", PAIRS)
    result = invoke("preview", "--dataset", pairs, "-n", "1", "--json")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)) == {
        "profile",
        "chat_template",
        "stop_sequences",
        "skipped",
        "examples",
    }
    assert invoke("preview", "--dataset", pairs, "-n", "1").output.startswith(
        f"profile: chat   dataset: {pairs}\n"
    )


def test_preview_names_the_source_whose_profile_is_missing(tmp_path):
    pairs = write_rows(tmp_path / "pairs.jsonl", PAIRS)
    more = write_rows(tmp_path / "more.jsonl", PAIRS)
    result = invoke("preview", "--dataset", f"{pairs}:chat", "--dataset", f"{more}:nonexistent")
    assert result.exit_code != 0
    assert str(result.exception).startswith("source 'more' (data.mixture[1]): profile 'nonexistent'")


def test_preview_tokens_of_a_mixture_show_each_source_s_first_example(tmp_path, gsm8k):
    pairs = write_rows(tmp_path / "pairs.jsonl", PAIRS)
    result = invoke(
        "preview", "--dataset", f"{gsm8k}:regime3", "--dataset", pairs, "-n", "1", "--tokens", "--json"
    )
    assert result.exit_code == 0, result.output
    for source in json.loads(result.output)["sources"]:
        tokens = source["examples"][0]["tokens"]
        assert tokens and any(token["trained"] for token in tokens) and not all(t["trained"] for t in tokens)
