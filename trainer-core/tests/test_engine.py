"""End to end on CPU: a tiny Qwen3 model the test builds, trained for a few steps, saved, reloaded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trainer.config import create_default_config
from trainer.core import TrainerEngine
from trainer.errors import TrainerError
from trainer.monitoring import TrainingStatusWriter
from trainer.testing import tiny_qwen3
from trainer.testing import tiny_tokenizer as make_tokenizer

ROWS = [
    {"prompt": f"What is {a} plus {b}?", "response": f"{a} plus {b} is {a + b}."}
    for a in range(1, 7)
    for b in range(1, 5)
]
# Someone else's chat template: ChatML without {% generation %} markers, eos-terminated turns.
THEIR_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A Qwen3-architecture checkpoint with its own tokenizer and chat template, as a user would have."""
    directory = tmp_path_factory.mktemp("their-model")
    tokenizer = make_tokenizer(
        [row["prompt"] + " " + row["response"] for row in ROWS] * 3 + ["You are a helpful assistant."]
    )
    tokenizer.chat_template = THEIR_TEMPLATE
    tokenizer.save_pretrained(directory)
    tiny_qwen3(tokenizer).save_pretrained(directory)
    return directory


def small_config(tmp_path: Path, model_dir: Path, **changes):
    config = create_default_config(
        model_path=str(model_dir),
        dataset_path=str(write_rows(tmp_path / "rows.jsonl", ROWS)),
        output_dir=str(tmp_path / "out"),
    )
    config.profile.name = "chat"
    config.hyperparams.max_steps = 4
    config.hyperparams.batch_size = 4
    config.hyperparams.learning_rate = 1e-3
    config.data.max_length = 64
    for path, value in changes.items():
        section, name = path.split(".")
        setattr(getattr(config, section), name, value)
    return config


def test_run_job_trains_saves_and_reloads(tmp_path, model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = TrainerEngine().run_job(small_config(tmp_path, model_dir))
    out = tmp_path / "out"
    assert result.status == "completed" and result.steps == 4
    assert result.metrics["first_loss"] is not None and result.metrics["final_loss"] is not None
    for name in (
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "trainer_run.json",
        "status.json",
    ):
        assert (out / name).is_file(), name
    assert not list(out.glob(".final-*"))

    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "completed" and status["step"] == 4 and status["error"] is None
    assert status["total_steps"] == 4 and status["tokens_per_second"] > 0

    run_info = json.loads((out / "trainer_run.json").read_text())
    assert run_info["config"]["profile"]["name"] == "chat"
    assert run_info["versions"]["trainer-core"]
    assert run_info["versions"]["plugins"]["trainer-core"]
    assert run_info["data"]["examples"] == len(ROWS) - 4  # 4 held back for previews

    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == THEIR_TEMPLATE
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 plus 2?"}], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    generated = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]


def test_generation_config_carries_the_profile_stops(tmp_path, model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = small_config(tmp_path, model_dir, **{"profile.stop_sequences": ["###"]})
    TrainerEngine().run_job(config)
    out = tmp_path / "out"
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["trainer_stop_strings"] == ["###"]
    assert generation["eos_token_id"] == [2]  # <|im_end|>, the end-of-turn token
    # A plain generate() call, without a tokenizer argument, still works.
    model, tokenizer = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    inputs = tokenizer("What is 2 plus 2?", return_tensors="pt")
    assert model.generate(**inputs, max_new_tokens=3).shape[1] > inputs["input_ids"].shape[1]


def test_given_status_writer_is_used(tmp_path, model_dir):
    writer = TrainingStatusWriter(tmp_path / "elsewhere.json")
    result = TrainerEngine(writer).run_job(small_config(tmp_path, model_dir))
    assert writer.read()["status"] == "completed"
    assert not (result.output_dir / "status.json").exists()


def test_non_empty_output_dir_is_refused_unless_overwrite(tmp_path, model_dir):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(TrainerError, match="is not empty.*--overwrite"):
        TrainerEngine().run_job(small_config(tmp_path, model_dir))
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    TrainerEngine().run_job(small_config(tmp_path, model_dir), overwrite=True)
    assert not (tmp_path / "out" / "keep.txt").exists()


def test_failed_run_says_so_in_its_status_file(tmp_path, model_dir):
    config = small_config(tmp_path, model_dir)
    write_rows(Path(config.data.dataset_path), [*ROWS[:3], {"text": "no usable fields"}])
    with pytest.raises(TrainerError, match="row 4"):
        TrainerEngine().run_job(config)
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["status"] == "failed"
    assert "row 4" in status["error"]
    # The corrected command is not blocked by the record of that failed start: it is kept aside.
    write_rows(Path(config.data.dataset_path), ROWS)
    messages: list[str] = []
    assert TrainerEngine(on_message=messages.append).run_job(config).status == "completed"
    assert any("failed before its first step" in line for line in messages)
    (kept,) = (tmp_path / "out" / "failed-attempts").iterdir()
    assert "row 4" in json.loads((kept / "status.json").read_text())["error"]


def test_dry_run_reports_and_writes_nothing(tmp_path, model_dir):
    config = small_config(tmp_path, model_dir, **{"debug.dry_run": True})
    result = TrainerEngine().run_job(config)
    assert result.status == "dry_run"
    report = result.data_report.to_dict()
    assert report["rows_read"] == len(ROWS)
    assert report["held_back"] == 4  # inference.num_samples rows, never trained on
    assert report["examples"] == len(ROWS) - 4
    assert not (tmp_path / "out").exists()


def test_lora_saves_an_adapter_and_can_merge(tmp_path, model_dir):
    pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    config = small_config(tmp_path, model_dir)
    config.model.lora.enabled = True
    config.model.lora.r = 4
    TrainerEngine().run_job(config)
    assert (tmp_path / "out" / "adapter_config.json").is_file()
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()

    (tmp_path / "merged").mkdir()
    merged = small_config(tmp_path / "merged", model_dir)
    merged.model.lora.enabled = True
    merged.model.lora.merge_on_export = True
    TrainerEngine().run_job(merged)
    assert (tmp_path / "merged" / "out" / "model.safetensors").is_file()
    AutoModelForCausalLM.from_pretrained(tmp_path / "merged" / "out")


def test_packing_trains(tmp_path, model_dir):
    result = TrainerEngine().run_job(
        small_config(tmp_path, model_dir, **{"data.packing": True, "data.max_length": 128})
    )
    assert result.status == "completed"
    assert result.data_report.to_dict()["packed_sequences"] < len(ROWS)


# -- through the command line ---------------------------------------------------------


def test_cli_run_and_generate_with_the_embedded_demo(run_trainer, tmp_path):
    result = run_trainer("run", "--profile", "regime3", "--max-steps", "3", "--output-dir", "out")
    if "profile 'regime3' is not installed" in result.stderr:
        result = run_trainer("run", "--profile", "chat", "--max-steps", "3", "--output-dir", "out")
    assert result.returncode == 0, result.stderr
    assert "Using the embedded demo model" in result.stderr
    assert "built-in sample dataset" in result.stderr
    assert "Trained 3 steps" in result.stdout
    end_line = r"Trained 3 steps in [\d.]+ s \(loss [\d.]+ -> [\d.]+, [\d,]+ tokens/s, precision "
    assert re.search(end_line, result.stdout)
    generated = run_trainer(
        "generate",
        "--model",
        "out",
        "--max-new-tokens",
        "8",
        "Ana has 3 coins. Ana buys 2 more. How many coins does Ana have now?",
    )
    assert generated.returncode == 0, generated.stderr


def test_the_demo_trains_a_token_budget_so_long_rows_take_fewer_steps(run_trainer, tmp_path):
    from trainer.models.demo_model import DEMO_TOKEN_BUDGET, demo_max_steps

    assert demo_max_steps(300, 16, tokens=143 * 100, examples=100) == 300  # the built-in sample's rows
    assert demo_max_steps(300, 16, tokens=260 * 100, examples=100) == 169
    assert demo_max_steps(300, 16, tokens=DEMO_TOKEN_BUDGET * 100, examples=100) == 1
    assert demo_max_steps(300, 16, tokens=0, examples=0) == 300
    long_rows = tmp_path / "long.jsonl"
    answer = " ".join(["word"] * 200)
    rows = [{"prompt": f"Say it {i}", "response": answer} for i in range(40)]
    long_rows.write_text("".join(json.dumps(row) + "\n" for row in rows))
    command = ["run", "--profile", "chat", "--dataset", str(long_rows), "--dry-run"]
    result = run_trainer(*command)
    assert result.returncode == 0, result.stderr
    assert "Demo: " in result.stderr and "steps, not 300: these rows average" in result.stderr
    chosen = run_trainer(*command, "--max-steps", "300")
    assert chosen.returncode == 0 and "Demo: " not in chosen.stderr


def test_cli_dry_run_on_gsm8k(run_trainer, gsm8k):
    result = run_trainer(
        "run", "--profile", "chat", "--dataset", str(gsm8k), "--dry-run", "--max-length", "128"
    )
    assert result.returncode == 0, result.stderr
    assert "rows read 1,319" in result.stdout
    assert "dropped" in result.stdout


def test_cli_refuses_non_empty_output_dir(run_trainer, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    result = run_trainer("run", "--max-steps", "1", "--output-dir", "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "--overwrite" in result.stderr


def test_cli_bad_model_path_is_one_line_and_a_failed_status(run_trainer, tmp_path):
    result = run_trainer(
        "run",
        "--model",
        "./no/such/model",
        "--max-steps",
        "1",
        "--output-dir",
        "out",
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "./no/such/model" in result.stderr
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["status"] == "failed" and "./no/such/model" in status["error"]


def test_precision_choices(monkeypatch):
    from trainer.models import loading
    from trainer.models.loading import resolve_precision

    monkeypatch.setattr(loading, "cpu_native_bf16", lambda: None)
    assert resolve_precision("auto", "cpu") == "float32"
    monkeypatch.setattr(loading, "cpu_native_bf16", lambda: "avx512_bf16")
    assert resolve_precision("auto", "cpu") == "bfloat16"
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(TrainerError, match="float16.*CUDA"):
        resolve_precision("float16", "cpu")


@pytest.mark.parametrize(
    ("flags", "found"),
    [
        ("flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16", "avx512_bf16"),
        ("flags\t\t: fpu amx_tile amx_bf16", "amx_bf16"),
        ("Features\t: fp asimd sve bf16 i8mm", "bf16"),
        ("flags\t\t: fpu sse avx2 avx512f avx512bw", None),
        ("processor\t: 0", None),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(flags, found):
    from trainer.models.loading import cpu_native_bf16

    assert cpu_native_bf16(f"processor\t: 0\n{flags}\n") == found


def test_penalized_strings_become_bad_words():
    from trainer.generation import cut_at_stop, penalized_token_sequences
    from trainer.models.demo import load_demo_tokenizer

    tokenizer = load_demo_tokenizer()
    sequences = penalized_token_sequences(tokenizer, ["<think>", "</think>"])
    assert sequences == [
        [tokenizer.convert_tokens_to_ids("<think>")],
        [tokenizer.convert_tokens_to_ids("</think>")],
    ]
    assert cut_at_stop("Step 1: x\nAnswer: 4\n\nmore", ["\n\n"]) == "Step 1: x\nAnswer: 4"


def test_cli_bad_json_line_fails_the_run_with_one_error_line(run_trainer, tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a", "response": "b"}\n{bad\n')
    result = run_trainer("run", "--dataset", "bad.jsonl", "--max-steps", "1", "--output-dir", "out")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: bad.jsonl line 2: invalid JSON (Expecting property name enclosed in double quotes). "
        "Fix or remove the line"
    ]
    assert "Traceback" not in result.stderr
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["status"] == "failed" and "line 2" in status["error"]


def test_a_run_says_what_it_will_do_and_reports_its_data_before_training(run_trainer, tmp_path):
    result = run_trainer(
        "run", "--max-steps", "2", "--output-dir", str(tmp_path / "out"), "--set", "inference.eval_steps=0"
    )
    assert result.returncode == 0, result.stderr
    plan = next(line for line in result.stderr.splitlines() if line.startswith("Plan: "))
    assert "profile 'chat' (the default; --profile picks another)" in plan
    assert "model the embedded demo model, 2 steps of 16 examples" in plan
    assert f"output {tmp_path / 'out'}" in plan and "precision " in plan
    assert "  rows read 2,000" in result.stdout  # the data report, printed before training
    assert result.stdout.index("rows read") < result.stdout.index("Trained 2 steps")


def test_lora_without_peft_and_a_misspelled_profile_stop_before_anything_loads(tmp_path, monkeypatch):
    import importlib.util

    messages: list[str] = []
    config = create_default_config(output_dir=str(tmp_path / "out"))
    config.profile.name = "regim3"
    with pytest.raises(TrainerError, match="did you mean"):
        TrainerEngine(on_message=messages.append).run_job(config)
    assert not any("Using the embedded demo model" in line for line in messages)

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "peft" else find_spec(name, *a)
    )
    config = create_default_config(output_dir=str(tmp_path / "lora"))
    config.model.lora.enabled = True
    with pytest.raises(TrainerError, match=r"needs peft.*pip install 'trainer-core\[lora\]'"):
        TrainerEngine(on_message=messages.append).run_job(config)
    assert not any("Using the embedded demo model" in line for line in messages)
