"""``trainer eval``: batched decoding, judging, results files, resume, baselines, statistics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainer.evaluation.compare import compare
from trainer.evaluation.results import read_results
from trainer.evaluation.stats import majority, mcnemar_exact, pass_at_k, wilson_interval
from trainer.testing import tiny_qwen3, tiny_tokenizer

ROWS = [
    {"prompt": f"What is {a} plus {b}?", "response": f"{a} plus {b} is {a + b}."}
    for a in range(1, 7)
    for b in range(1, 6)
]

# -- statistics ---------------------------------------------------------------


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(6, 200)
    assert round(low, 4) == 0.0138 and round(high, 4) == 0.0639
    assert wilson_interval(0, 10)[0] == 0.0 and 0.27 < wilson_interval(0, 10)[1] < 0.28
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_mcnemar_exact_matches_the_binomial_test():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(1, 6) == pytest.approx(0.125)
    assert mcnemar_exact(6, 1) == pytest.approx(0.125)
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)
    assert mcnemar_exact(5, 5) == 1.0


def test_pass_at_k_and_majority():
    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25) and pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)
    assert majority(["3", None, "4", "4", "3"]) == "3"  # a tie goes to the earliest
    assert majority([None, None]) is None


def test_compare_pairs_rows_both_scored():
    a = [{"row": 1, "correct": True}, {"row": 2, "correct": False}, {"row": 3, "correct": True}, {"row": 4}]
    b = [{"row": 1, "correct": False}, {"row": 2, "correct": False}, {"row": 3, "correct": True}]
    paired = compare(a, b)
    assert (paired["rows"], paired["both"], paired["only_a"], paired["only_b"], paired["neither"]) == (
        3,
        1,
        1,
        0,
        1,
    )
    assert paired["p_value"] == 1.0


# -- a small trained model --------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny Qwen3-shaped model trained a little on ROWS with the chat profile: a run's output directory."""
    from trainer.config import create_default_config
    from trainer.core import TrainerEngine

    base = tmp_path_factory.mktemp("eval-model")
    tokenizer = tiny_tokenizer([f"{row['prompt']} {row['response']}" for row in ROWS] * 3)
    tokenizer.save_pretrained(base / "base")
    tiny_qwen3(tokenizer, hidden_size=64, intermediate_size=128, head_dim=32).save_pretrained(base / "base")
    rows = base / "rows.jsonl"
    rows.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    run = create_default_config(
        model_path=str(base / "base"), dataset_path=str(rows), output_dir=str(base / "run")
    )
    run.profile.name = "chat"
    run.hyperparams.max_steps = 60
    run.hyperparams.batch_size = 8
    run.hyperparams.learning_rate = 3e-3
    run.inference.eval_steps = 0
    run.inference.max_new_tokens = 24
    assert TrainerEngine().run_job(run).status == "completed"
    return base


def test_batched_decoding_gives_the_tokens_of_one_prompt_at_a_time(trained):
    from trainer.data.chat_template import render_prompt
    from trainer.evaluation.decode import DecodeSettings, decode_batch
    from trainer.generation import generate_batch, load_model_for_generation

    model, tokenizer = load_model_for_generation(trained / "run")
    conversations = [[{"role": "user", "content": row["prompt"]}] for row in ROWS[::3]]
    conversations.append([{"role": "user", "content": "What is 6 plus 5? Say it twice, slowly, please."}])
    prompts = [render_prompt(messages, tokenizer) for messages in conversations]
    alone = [
        generate_batch(model, tokenizer, [messages], stop_sequences=[], max_new_tokens=12)[0]
        for messages in conversations
    ]
    batched = decode_batch(model, tokenizer, prompts, DecodeSettings(max_new_tokens=12))
    assert [result.text for result in batched] == alone
    assert all(result.stop in {"eos", "max_new_tokens"} and 1 <= result.tokens <= 12 for result in batched)

    # A stop sequence ends a row (cut before it) while the others go on.
    stopped = decode_batch(
        model, tokenizer, prompts, DecodeSettings(stop_sequences=(" is",), max_new_tokens=12)
    )
    for result, text in zip(stopped, alone, strict=True):
        if " is" in text:
            assert result.stop == "stop_sequence" and result.text == text[: text.index(" is")]
        else:
            assert result.text == text


def test_each_sampled_row_draws_from_its_own_seed(trained):
    from trainer.data.chat_template import render_prompt
    from trainer.evaluation.decode import DecodeSettings, decode_batch
    from trainer.generation import load_model_for_generation

    model, tokenizer = load_model_for_generation(trained / "run")
    prompts = [render_prompt([{"role": "user", "content": row["prompt"]}], tokenizer) for row in ROWS[:4]]
    settings = DecodeSettings(max_new_tokens=10, temperature=1.5)
    together = decode_batch(model, tokenizer, prompts, settings, seeds=[11, 12, 13, 14])
    alone = [
        decode_batch(model, tokenizer, [p], settings, seeds=[s])[0]
        for p, s in zip(prompts, [11, 12, 13, 14], strict=True)
    ]
    assert [r.text for r in together] == [r.text for r in alone]
    other = decode_batch(model, tokenizer, prompts, settings, seeds=[21, 22, 23, 24])
    assert [r.text for r in other] != [r.text for r in together]


# -- the command ---------------------------------------------------------------------


def eval_rows(directory: Path, rows: list[dict]) -> Path:
    path = directory / "test.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_eval_prints_a_summary_and_judges_rows_as_generate_does(run_trainer, trained, tmp_path):
    data = eval_rows(tmp_path, [*ROWS[:9], {"colour": "red"}, *ROWS[9:12]])
    result = run_trainer("eval", "--model", str(trained / "run"), "--dataset", str(data), "--batch-size", "4")
    assert result.returncode == 0, result.stderr
    output = trained / "run" / "eval" / "test.jsonl"
    lines = result.stdout.splitlines()
    assert lines[1] == "rows      12 evaluated, 1 the profile cannot render"
    assert lines[2].startswith("          row 10: row lacks a user turn (fields present: colour)")
    assert any(line.startswith("accuracy  ") and "95% CI" in line for line in lines)
    assert lines[-1] == f"results   {output}"
    saved = records(output)
    assert [record["row"] for record in saved] == list(range(1, 14))
    assert saved[9] == {"row": 10, "error": saved[9]["error"]}
    first = saved[0]
    assert set(first) == {
        "row",
        "prompt",
        "expected",
        "generation",
        "parsed",
        "format_ok",
        "correct",
        "tokens",
        "stop",
    }
    assert first["prompt"] == ROWS[0]["prompt"] and first["expected"] == ROWS[0]["response"]
    summary = json.loads((output.parent / "test.summary.json").read_text())
    assert summary["state"] == "completed" and summary["evaluated"] == 12
    assert summary["settings"]["profile"] == "chat" and summary["settings"]["max_new_tokens"] == 24
    for record in saved[:3]:
        generated = run_trainer("generate", "--model", str(trained / "run"), "--json", record["prompt"])
        assert json.loads(generated.stdout)["text"] == record["generation"]

    again = run_trainer("eval", "--model", str(trained / "run"), "--dataset", str(data))
    assert again.returncode == 2 and "already holds evaluation results; add --resume" in again.stderr
    as_json = run_trainer(
        "eval", "--model", str(trained / "run"), "--dataset", str(data), "--overwrite", "--json", "-n", "4"
    )
    assert as_json.returncode == 0, as_json.stderr
    summary = json.loads(as_json.stdout)
    assert summary["rows"] == 4 and 0 <= summary["format_rate"] <= 1 and summary["stops"]


def test_a_resumed_eval_writes_the_same_file_as_an_uninterrupted_one(run_trainer, trained, tmp_path):
    data = eval_rows(tmp_path, ROWS[:20])
    model = str(trained / "run")
    whole = run_trainer(
        "eval", "--model", model, "--dataset", str(data), "--batch-size", "1", "--output", "a.jsonl"
    )
    assert whole.returncode == 0, whole.stderr
    expected = (tmp_path / "a.jsonl").read_bytes()
    # Windows of 8 rows (batch size 1): 11 whole lines and half of the 12th, as a kill leaves them.
    lines = expected.splitlines(keepends=True)
    (tmp_path / "b.jsonl").write_bytes(b"".join(lines[:11]) + lines[11][:20])
    assert [r["row"] for r in read_results(tmp_path / "b.jsonl", window=8, total=20)] == list(range(1, 9))
    assert len((tmp_path / "b.jsonl").read_bytes().splitlines()) == 8
    (tmp_path / "b.jsonl").write_bytes(b"".join(lines[:11]) + lines[11][:20])
    resumed = run_trainer(
        "eval",
        "--model",
        model,
        "--dataset",
        str(data),
        "--batch-size",
        "1",
        "--output",
        "b.jsonl",
        "--resume",
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "b.jsonl").read_bytes() == expected

    changed = run_trainer(
        "eval",
        "--model",
        model,
        "--dataset",
        str(data),
        "--batch-size",
        "2",
        "--output",
        "a.jsonl",
        "--resume",
    )
    assert changed.returncode == 2
    assert "was written by an evaluation with other settings (batch_size)" in changed.stderr


def test_killing_an_eval_keeps_whole_lines_and_resume_finishes_it(trained, tmp_path):
    data = eval_rows(tmp_path, ROWS * 2)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TRAINER_")}
    command = [
        sys.executable,
        "-m",
        "trainer",
        "eval",
        "--model",
        str(trained / "run"),
        "--dataset",
        str(data),
    ]
    command += ["--batch-size", "1", "--max-new-tokens", "24"]
    base, command = command, [*command, "--output", "k.jsonl"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    output = tmp_path / "k.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if output.is_file() and len(output.read_bytes().splitlines()) >= 8:
            break
        time.sleep(0.2)
    assert process.poll() is None, "the eval ended before it could be interrupted"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    message = stderr.decode().strip().splitlines()[-1]
    assert "stopped after" in message and "Continue with the same command and --resume" in message
    assert output.read_bytes().endswith(b"\n")
    resumed = subprocess.run(
        [*command, "--resume"], cwd=tmp_path, env=environment, capture_output=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run(
        [*base, "--output", "w.jsonl"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        timeout=600,
    )
    assert whole.returncode == 0, whole.stderr
    assert output.read_bytes() == (tmp_path / "w.jsonl").read_bytes()


def test_a_baseline_is_evaluated_on_the_same_rows_and_compared(run_trainer, trained, tmp_path):
    data = eval_rows(tmp_path, ROWS[:10])
    result = run_trainer(
        "eval",
        "--model",
        str(trained / "run"),
        "--baseline",
        str(trained / "base"),
        "--dataset",
        str(data),
        "--output",
        "mine.jsonl",
        "--profile",
        "chat",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["A", "B", "(baseline)"]
    paired = next(line for line in result.stdout.splitlines() if line.startswith("paired"))
    assert "10 rows scored by both" in paired
    assert any(line.startswith("McNemar   exact p = ") for line in result.stdout.splitlines())
    assert len(records(tmp_path / "mine.baseline.jsonl")) == 10
    as_json = run_trainer(
        "eval",
        "--model",
        str(trained / "run"),
        "--baseline",
        str(trained / "run"),
        "--dataset",
        str(data),
        "--output",
        "same.jsonl",
        "--json",
    )
    data_out = json.loads(as_json.stdout)
    assert data_out["paired"]["only_a"] == data_out["paired"]["only_b"] == 0
    assert data_out["paired"]["p_value"] == 1.0


def test_samples_give_pass_at_k_and_a_majority_vote(run_trainer, trained, tmp_path):
    data = eval_rows(tmp_path, ROWS[:6])
    model = str(trained / "run")
    greedy = run_trainer(
        "eval", "--model", model, "--dataset", str(data), "--samples", "3", "--output", "s.jsonl"
    )
    assert greedy.returncode == 2
    assert greedy.stderr.strip().splitlines() == [
        "Error: --samples 3 draws several answers per row, which greedy decoding (temperature 0) makes "
        "identical; add --temperature 0.7 (or another value above 0)"
    ]
    sampled = run_trainer(
        "eval",
        "--model",
        model,
        "--dataset",
        str(data),
        "--samples",
        "3",
        "--temperature",
        "1.0",
        "--json",
        "--output",
        "s.jsonl",
    )
    assert sampled.returncode == 0, sampled.stderr
    summary = json.loads(sampled.stdout)
    assert summary["samples"] == 3 and summary["accuracy_by"] == "majority vote"
    assert 0 <= summary["pass@1"] <= summary["pass@3"] <= 1
    saved = records(tmp_path / "s.jsonl")
    assert all(len(record["samples"]) == 3 for record in saved)


def test_eval_reads_tools_and_judges_compositions(run_trainer, trained, tmp_path, gsm8k):
    tools = [
        {"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {}}}}
    ]
    row = {
        "messages": [
            {"role": "user", "content": "What is 2 plus 3?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "add", "arguments": {}}}],
            },
        ],
        "tools": tools,
    }
    data = eval_rows(tmp_path, [row, ROWS[0]])
    result = run_trainer(
        "eval", "--model", str(trained / "run"), "--dataset", str(data), "--output", "t.jsonl"
    )
    assert result.returncode == 0, result.stderr
    saved = records(tmp_path / "t.jsonl")
    assert "tool_calls" in saved[0] and "tool_calls" not in saved[1]
    assert saved[0]["expected"] is None and saved[0]["correct"] is None

    composed = run_trainer(
        "eval",
        "--model",
        str(trained / "run"),
        "--dataset",
        str(gsm8k),
        "-n",
        "3",
        "--profile",
        "emoji_think+regime3",
        "--output",
        "c.jsonl",
        "--max-new-tokens",
        "8",
    )
    assert composed.returncode == 0, composed.stderr
    assert [record["expected"] for record in records(tmp_path / "c.jsonl")] == ["18", "3", "70000"]


def test_bad_input_is_one_line_and_exit_code_2(run_trainer, trained, tmp_path):
    missing = run_trainer("eval", "--model", str(trained / "run"), "--dataset", "nope.jsonl")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "nope.jsonl" in missing.stderr
    unreadable = eval_rows(tmp_path, [{"colour": "red"}])
    none = run_trainer("eval", "--model", str(trained / "run"), "--dataset", str(unreadable))
    assert none.returncode == 2
    assert "profile 'chat' cannot render any of the 1 rows" in none.stderr and "--profile" in none.stderr
    no_model = run_trainer("eval", "--model", "nowhere", "--dataset", str(unreadable))
    assert no_model.returncode == 2 and "model directory 'nowhere' not found" in no_model.stderr


# -- the evaluation after training ---------------------------------------------------


def test_a_run_with_an_eval_dataset_ends_with_eval_json_and_the_final_accuracy(
    run_trainer, trained, tmp_path
):
    from trainer.config import create_default_config
    from trainer.core import TrainerEngine
    from trainer.reporting import format_status

    held_out = eval_rows(tmp_path, [*ROWS[:6], {"colour": "red"}])
    config = create_default_config(
        model_path=str(trained / "base"),
        dataset_path=str(trained / "rows.jsonl"),
        output_dir=str(tmp_path / "out"),
    )
    config.profile.name = "chat"
    config.hyperparams.max_steps = 3
    config.hyperparams.batch_size = 4
    config.inference.eval_steps = 0
    config.inference.max_new_tokens = 8
    config.inference.eval_dataset = str(held_out)
    messages: list[str] = []
    result = TrainerEngine(on_message=messages.append).run_job(config)
    assert result.status == "completed"
    out = tmp_path / "out"
    summary = json.loads((out / "eval.json").read_text())
    assert summary["evaluated"] == 6 and summary["unrendered"][0]["row"] == 7
    assert [record["row"] for record in records(out / "eval.jsonl")] == list(range(1, 8))
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "completed"
    final = status["final_eval"]
    assert final["evaluated"] == 6 and final["dataset"] == str(held_out)
    assert final["accuracy"] == summary["accuracy"] and final["format_rate"] == summary["format_rate"]
    assert any(message.startswith("Evaluating the trained model on 7 rows") for message in messages)
    view = format_status(status)
    assert "final eval" in view and f"on 6 rows of {held_out}" in view
    shown = run_trainer("status", str(out))
    assert "final eval" in shown.stdout
    assert "Evaluation after training" in (out / "report.html").read_text()


def test_an_eval_dataset_the_profile_cannot_read_fails_before_training(run_trainer, trained, tmp_path):
    unreadable = eval_rows(tmp_path, [{"colour": "red"}])
    result = run_trainer(
        "run",
        "--model",
        str(trained / "base"),
        "--dataset",
        str(trained / "rows.jsonl"),
        "--profile",
        "chat",
        "--max-steps",
        "2",
        "--output-dir",
        "out",
        "--set",
        f"inference.eval_dataset={unreadable}",
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"Error: inference.eval_dataset '{unreadable}': profile 'chat' renders none of its 1 rows"
        )
    )
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["status"] == "failed" and status["step"] == 0
