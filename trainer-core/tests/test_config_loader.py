"""ConfigLoader: files, command-line values, precedence, origins and YAML rendering."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from trainer.config import CLI_FLAGS, ConfigError, TrainerConfig, iter_values, render_yaml
from trainer.config.loader import ConfigLoader

CONFIG_YAML = """\
hyperparams:
  batch_size: 4
  learning_rate: 1e-4   # PyYAML reads this as the string '1e-4'
model:
  model_path: ./models/tiny
  lora:
    enabled: true
profile:
  options: {think: true}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        ConfigLoader(path).load()
    return caught.value


def cli_error(args: dict, path: Path | None = None) -> ConfigError:
    loader = ConfigLoader(path)
    with pytest.raises(ConfigError) as caught:
        loader.merge_with_cli_args(args)
    return caught.value


# Files


@pytest.mark.parametrize("name", ["config.yaml", "config.yml", "CONFIG.YAML"])
def test_loads_yaml(tmp_path, name):
    config = ConfigLoader(write(tmp_path, name, CONFIG_YAML)).load()
    assert config.hyperparams.batch_size == 4
    assert config.hyperparams.learning_rate == 1e-4
    assert config.model.model_path == "./models/tiny"
    assert config.model.lora.enabled is True
    assert config.model.lora.r == 16
    assert config.profile.options == {"think": True}


def test_loads_json(tmp_path):
    data = {"data": {"dataset_path": "train.jsonl", "packing": True}, "output": {"save_total_limit": None}}
    loader = ConfigLoader(write(tmp_path, "run.json", json.dumps(data)))
    config = loader.load()
    assert config.data.dataset_path == "train.jsonl"
    assert config.data.packing is True
    assert config.output.save_total_limit is None
    assert loader.config is config


def test_no_path_gives_the_defaults(tmp_path):
    loader = ConfigLoader()
    assert loader.load() == TrainerConfig()
    assert set(loader.origins().values()) == {"default"}


def test_an_empty_yaml_file_gives_the_defaults(tmp_path):
    assert ConfigLoader(write(tmp_path, "empty.yaml", "# nothing yet\n")).load() == TrainerConfig()


def test_a_section_with_every_key_commented_out_is_empty(tmp_path):
    config = ConfigLoader(write(tmp_path, "c.yaml", "hyperparams:\n#  batch_size: 2\n")).load()
    assert config.hyperparams.batch_size == 8


def test_file_problems_are_reported_together_with_the_file_name(tmp_path):
    path = write(tmp_path, "config.yaml", "hyperparams:\n  learning_rat: 1e-4\n  batch_size: eight\n")
    error = load_error(path)
    assert str(error).splitlines() == [
        f"{path}: 2 problems",
        "  hyperparams.learning_rat: unknown key; did you mean 'hyperparams.learning_rate'?",
        "  hyperparams.batch_size: expected an integer, got 'eight' (str)",
    ]
    assert error.source == str(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert str(load_error(path)) == f"{path}: file not found (looked for {path}); check the path"


def test_unsupported_extension(tmp_path):
    error = load_error(write(tmp_path, "config.toml", "[hyperparams]\n"))
    assert str(error).endswith("config.toml: unsupported file type '.toml'; use a .yaml, .yml or .json file")


def test_a_directory(tmp_path):
    (tmp_path / "conf.yaml").mkdir()
    assert "is a directory" in str(load_error(tmp_path / "conf.yaml"))


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "bad.yaml", "hyperparams:\n  batch_size: 4\n  lr: [1, 2\n")
    error = load_error(path)
    assert len(str(error).splitlines()) == 1
    assert str(error).startswith(f"{path}: invalid YAML at line 4, column 1: ")
    assert str(error).endswith("; fix the syntax there")


def test_invalid_json_names_the_line(tmp_path):
    path = write(tmp_path, "bad.json", '{\n  "hyperparams": {"batch_size": 4,}\n}\n')
    assert str(load_error(path)) == (
        f"{path}: invalid JSON at line 2, column 35: Expecting property name enclosed in double quotes; "
        "fix the syntax there"
    )


def test_top_level_must_be_a_mapping(tmp_path):
    error = load_error(write(tmp_path, "list.yaml", "- batch_size: 4\n"))
    assert "the top level must be a mapping of sections" in str(error)
    assert "(list)" in str(error)


def test_yaml_tags_never_construct_python_objects(tmp_path):
    path = write(tmp_path, "evil.yaml", "hyperparams: !!python/object/apply:os.system ['echo hacked']\n")
    assert "invalid YAML at line 1" in str(load_error(path))


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("profile:\n  system_prompt: caf\xe9\n".encode("latin-1"))
    assert str(load_error(path)) == f"{path}: is not UTF-8 text; save it as UTF-8"


# Command line


def test_precedence_and_origins(tmp_path):
    path = write(tmp_path, "config.yaml", CONFIG_YAML)
    loader = ConfigLoader(path)
    loader.load()
    config = loader.merge_with_cli_args({"batch_size": 2, "lr": None, "set": ["hyperparams.seed=7"]})

    assert config.hyperparams.batch_size == 2  # command line over file
    assert config.hyperparams.learning_rate == 1e-4  # file; lr=None is an unset flag
    assert config.hyperparams.seed == 7
    assert config.hyperparams.num_epochs == 3.0  # default
    assert loader.config is config

    origins = loader.origins()
    assert origins["hyperparams.batch_size"] == "command line"
    assert origins["hyperparams.seed"] == "command line"
    assert origins["hyperparams.learning_rate"] == f"file {path}"
    assert origins["model.lora.enabled"] == f"file {path}"
    assert origins["profile.options"] == f"file {path}"
    assert origins["model.lora.r"] == "default"
    assert list(origins) == [dotted for dotted, _ in iter_values(config)]


def test_the_documented_snippet_runs_unchanged(tmp_path, monkeypatch):
    write(tmp_path, "config.yaml", CONFIG_YAML)
    monkeypatch.chdir(tmp_path)

    from trainer.config.loader import ConfigLoader

    loader = ConfigLoader("config.yaml")
    config = loader.load()
    config = loader.merge_with_cli_args({"batch_size": 2, "lr": 1e-4})

    assert config.hyperparams.batch_size == 2
    assert config.hyperparams.learning_rate == 1e-4
    assert config.model.model_path == "./models/tiny"


def test_merge_without_load_reads_the_file_first(tmp_path):
    loader = ConfigLoader(write(tmp_path, "c.yaml", "data:\n  packing: true\n"))
    config = loader.merge_with_cli_args({"max_length": 512})
    assert config.data.packing is True
    assert config.data.max_length == 512


@pytest.mark.parametrize("flag", sorted(CLI_FLAGS))
def test_every_shortcut_flag_sets_its_field(flag):
    values = {
        "dataset": "d.jsonl",
        "model": "m",
        "profile": "p",
        "batch_size": 3,
        "lr": 0.1,
        "epochs": 1.5,
        "max_steps": 9,
        "max_length": 64,
        "output_dir": "out",
        "report_to": ["tensorboard"],
    }
    config = ConfigLoader().merge_with_cli_args({flag: values[flag]})
    section, name = CLI_FLAGS[flag].split(".")
    assert getattr(getattr(config, section), name) == values[flag]


def test_report_to_from_the_command_line_is_comma_separated():
    config = ConfigLoader().merge_with_cli_args({"report_to": "tensorboard,wandb"})
    assert config.output.report_to == ["tensorboard", "wandb"]


def test_argparse_namespace(tmp_path):
    args = argparse.Namespace(
        config="c.yaml",
        command="train",
        debug=False,
        batch_size=None,
        lr=3e-4,
        set=["debug.dry_run=yes", "model.lora.r=8"],
    )
    loader = ConfigLoader()
    config = loader.merge_with_cli_args(args)
    assert config.hyperparams.learning_rate == 3e-4
    assert config.hyperparams.batch_size == 8
    assert config.debug.dry_run is True
    assert config.debug.verbose is False  # the unrelated "debug" flag is not a config value
    assert config.model.lora.r == 8


def test_dotted_keys(tmp_path):
    config = ConfigLoader().merge_with_cli_args({"hyperparams.seed": 3, "model.lora.alpha": "64"})
    assert config.hyperparams.seed == 3
    assert config.model.lora.alpha == 64


@pytest.mark.parametrize(
    ("assignment", "path", "expected"),
    [
        ("hyperparams.batch_size=16", "hyperparams.batch_size", 16),
        ("hyperparams.learning_rate=1e-5", "hyperparams.learning_rate", 1e-5),
        ("hyperparams.num_epochs=2", "hyperparams.num_epochs", 2.0),
        ("hyperparams.max_steps=100", "hyperparams.max_steps", 100),
        ("hyperparams.max_steps=null", "hyperparams.max_steps", None),
        ("output.save_total_limit=None", "output.save_total_limit", None),
        ("model.model_path=none", "model.model_path", None),
        ("profile.name=none", "profile.name", "none"),  # not optional: the text itself
        ("profile.system_prompt=Be brief, = polite", "profile.system_prompt", "Be brief, = polite"),
        ("debug.verbose=true", "debug.verbose", True),
        ("debug.verbose=Yes", "debug.verbose", True),
        ("debug.verbose=1", "debug.verbose", True),
        ("debug.verbose=off", "debug.verbose", False),
        ("debug.verbose=0", "debug.verbose", False),
        ("debug.verbose=no", "debug.verbose", False),
        ("model.lora.target_modules=q_proj, v_proj", "model.lora.target_modules", ["q_proj", "v_proj"]),
        ("model.lora.target_modules=[q_proj, k_proj]", "model.lora.target_modules", ["q_proj", "k_proj"]),
        ("profile.stop_sequences=</s>", "profile.stop_sequences", ["</s>"]),
        ("profile.options={think: true, depth: 2}", "profile.options", {"think": True, "depth": 2}),
        ('profile.options={"think": false}', "profile.options", {"think": False}),
        ("model.precision=bf16", "model.precision", "bfloat16"),
        ("system.device=cuda:1", "system.device", "cuda:1"),
    ],
)
def test_set_values_are_read_into_the_field_type(assignment, path, expected):
    config = ConfigLoader().merge_with_cli_args({"set": [assignment]})
    assert dict(iter_values(config))[path] == expected


def test_set_wins_over_a_flag_and_a_single_string_is_one_entry():
    config = ConfigLoader().merge_with_cli_args({"batch_size": 2, "set": "hyperparams.batch_size=5"})
    assert config.hyperparams.batch_size == 5


def test_command_line_problems_are_reported_together():
    error = cli_error(
        {
            "batch_size": "eight",
            "hyperparams.sed": 1,
            "set": [
                "hyperparam.seed=3",
                "debug.verbose=maybe",
                "noequals",
                "model.lora=8",
                "profile.options=[1, 2]",
                "hyperparams.learning_rate=-1",
            ],
        }
    )
    assert error.source == "command line"
    assert error.problems == [
        "hyperparams.batch_size: expected an integer, got 'eight' (str)",
        "hyperparams.sed: unknown key; did you mean 'hyperparams.seed'?",
        "hyperparam.seed: unknown key; did you mean 'hyperparams.seed'?",
        "debug.verbose: expected true or false, got 'maybe' (str)",
        "--set 'noequals': expected section.field=value, e.g. hyperparams.seed=7",
        "model.lora: is a section, not a field; set its fields one by one, e.g. model.lora.enabled=...",
        # then the values that read fine but do not fit, in schema order
        "hyperparams.learning_rate: must be greater than 0, got -1.0",
        "profile.options: expected a mapping of names to values, got [1, 2] (list)",
    ]
    assert str(error).startswith("command line: 8 problems\n")


def test_a_failed_merge_keeps_the_previous_config(tmp_path):
    loader = ConfigLoader()
    first = loader.merge_with_cli_args({"batch_size": 2})
    with pytest.raises(ConfigError):
        loader.merge_with_cli_args({"set": ["hyperparams.seed=x"]})
    assert loader.config is first
    assert loader.origins()["hyperparams.seed"] == "default"


def test_merges_add_up_and_load_forgets_them(tmp_path):
    loader = ConfigLoader()
    loader.merge_with_cli_args({"batch_size": 2})
    config = loader.merge_with_cli_args({"lr": 0.5})
    assert (config.hyperparams.batch_size, config.hyperparams.learning_rate) == (2, 0.5)
    assert loader.load() == TrainerConfig()
    assert loader.origins()["hyperparams.batch_size"] == "default"


def test_a_bad_file_fails_the_merge_too(tmp_path):
    path = write(tmp_path, "c.yaml", "hyperparams: [1]\n")
    error = cli_error({"batch_size": 2}, path)
    assert error.source == str(path)
    assert error.problems == ["hyperparams: expected a mapping of hyperparams settings, got [1] (list)"]


# Rendering


def test_render_yaml_loads_back_into_the_same_config():
    config = TrainerConfig()
    config.hyperparams.learning_rate = 1e-5
    config.profile.system_prompt = "Line one.\nLine two: with a colon # and a hash"
    config.profile.stop_sequences = ["</s>", "\n\n"]
    config.profile.options = {"nested": {"a": [1, 2]}, "yes": "no"}
    config.model.model_path = "yes"  # would read back as a bool if left unquoted
    text = render_yaml(config)
    assert text.startswith("hyperparams:\n  batch_size: 8\n")
    assert TrainerConfig.from_dict(yaml.safe_load(text)) == config


def test_render_yaml_with_origins_comments_every_field(tmp_path):
    loader = ConfigLoader(write(tmp_path, "config.yaml", CONFIG_YAML))
    config = loader.merge_with_cli_args({"batch_size": 2})
    text = render_yaml(config, loader.origins())
    lines = text.splitlines()
    assert any(line.startswith("  batch_size: 2 ") and line.endswith("# command line") for line in lines)
    from_file = f"# file {tmp_path / 'config.yaml'}"
    assert any(line.startswith("  learning_rate: 0.0001 ") and line.endswith(from_file) for line in lines)
    assert any(line.startswith("  seed: 42 ") and line.endswith("# default") for line in lines)
    assert TrainerConfig.from_dict(yaml.safe_load(text)) == config
