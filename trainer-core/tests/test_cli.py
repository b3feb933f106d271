"""The command line: config, preview and error handling, run as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_config_show_prints_every_section(run_trainer):
    result = run_trainer("config", "show", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"hyperparams", "model", "data", "profile", "inference", "output", "system", "debug"}


def test_config_show_says_which_defaults_the_demo_model_replaces(run_trainer, tmp_path: Path):
    from trainer.models.demo_model import DEMO_HYPERPARAMS

    demo = run_trainer("config", "show", "--lr", "0.01")
    assert demo.returncode == 0, demo.stderr
    note = demo.stdout.strip().splitlines()[-1]
    assert note.startswith("# model.model_path is null, so a run trains the embedded demo model")
    assert f"max_steps: {DEMO_HYPERPARAMS['max_steps']}" in note and "learning_rate" not in note
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(demo.stdout)["hyperparams"]["learning_rate"] == 0.01  # still loads as YAML

    own = run_trainer("config", "show", "--model", str(tmp_path))
    assert "demo model" not in own.stdout


def test_config_show_origin_tells_default_file_and_command_line(run_trainer, tmp_path: Path):
    config = tmp_path / "run.yaml"
    config.write_text("hyperparams:\n  batch_size: 4\nprofile:\n  name: chat\n")
    result = run_trainer(
        "config",
        "show",
        "--config",
        str(config),
        "--lr",
        "0.001",
        "--set",
        "hyperparams.seed=7",
        "--origin",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["hyperparams.batch_size"]["value"] == 4
    assert "file" in shown["hyperparams.batch_size"]["origin"]
    assert shown["hyperparams.learning_rate"] == {"value": 0.001, "origin": "command line"}
    assert shown["hyperparams.seed"] == {"value": 7, "origin": "command line"}
    assert shown["data.max_length"]["origin"] == "default"

    annotated = run_trainer("config", "show", "--config", str(config), "--lr", "0.001", "--origin").stdout
    lines = {line.split(":")[0].strip(): line for line in annotated.splitlines()}
    assert lines["batch_size"].rstrip().endswith(f"# file {config}")
    assert lines["learning_rate"].rstrip().endswith("# command line")
    assert lines["max_length"].rstrip().endswith("# default")


def test_config_validate_reports_all_problems_at_once(run_trainer, tmp_path: Path):
    config = tmp_path / "bad.yaml"
    config.write_text("hyperparams:\n  learning_rat: 0.1\n  batch_size: eight\n")
    result = run_trainer("config", "validate", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "hyperparams.learning_rat" in result.stderr and "did you mean" in result.stderr
    assert "hyperparams.learning_rate" in result.stderr
    assert "hyperparams.batch_size" in result.stderr and "'eight'" in result.stderr


def test_config_validate_accepts_a_good_file(run_trainer, tmp_path: Path):
    config = tmp_path / "good.json"
    config.write_text(json.dumps({"hyperparams": {"batch_size": 2}, "profile": {"name": "chat"}}))
    result = run_trainer("config", "validate", str(config))
    assert result.returncode == 0
    assert "valid" in result.stdout


def test_bad_set_value_is_one_line(run_trainer):
    result = run_trainer("config", "show", "--set", "hyperparams.batch_size=many")
    assert result.returncode == 2
    assert "hyperparams.batch_size" in result.stderr
    assert "Traceback" not in result.stderr


def test_preview_renders_gsm8k_through_chat(run_trainer, gsm8k):
    result = run_trainer("preview", "--profile", "chat", "--dataset", str(gsm8k), "-n", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("=== example") == 2
    assert "<|im_start|>system\nYou are a helpful assistant.<|im_end|>" in result.stdout
    assert "Janet" in result.stdout
    assert "stop sequences: (none" in result.stdout


def test_preview_json(run_trainer, gsm8k):
    result = run_trainer("preview", "--profile", "chat", "--dataset", str(gsm8k), "-n", "3", "--json")
    data = json.loads(result.stdout)
    assert [example["row"] for example in data["examples"]] == [1, 2, 3]
    assert data["examples"][0]["messages"][-1]["content"].endswith("#### 18")


def test_preview_names_a_bad_json_line(run_trainer, tmp_path: Path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n{"prompt": "c", \n')
    result = run_trainer("preview", "--profile", "chat", "--dataset", str(data), "-n", "5")
    assert result.returncode == 2
    assert f"{data} line 2: invalid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_preview_names_a_row_missing_fields(run_trainer, tmp_path: Path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n{"text": "no layout"}\n')
    result = run_trainer("preview", "--profile", "chat", "--dataset", str(data), "-n", "5")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "row 2" in line and "accepted fields" in line and "data.skip_invalid" in line

    skipped = run_trainer(
        "preview", "--profile", "chat", "--dataset", str(data), "-n", "5", "--set", "data.skip_invalid=true"
    )
    assert skipped.returncode == 0
    assert "skipped 1 invalid row" in skipped.stdout


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--dataset", "missing.jsonl"], "dataset file 'missing.jsonl' not found"),
        (["--dataset", "rows.txt"], "unsupported extension '.txt'"),
        ([], "no dataset to preview"),
    ],
)
def test_preview_dataset_errors(run_trainer, tmp_path: Path, args, expected):
    (tmp_path / "rows.txt").write_text("hello")
    result = run_trainer("preview", "--profile", "chat", *args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_profile_is_one_line_with_the_install_hint(run_trainer, tmp_path: Path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n')
    result = run_trainer("preview", "--profile", "nonexistent", "--dataset", str(data))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "pip install trainer-profile-nonexistent" in result.stderr


def test_debug_shows_the_traceback(run_trainer, tmp_path: Path):
    result = run_trainer("--debug", "preview", "--profile", "nonexistent", "--dataset", "x.jsonl")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_usage_errors_exit_2(run_trainer):
    result = run_trainer("preview", "-n", "zero")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
