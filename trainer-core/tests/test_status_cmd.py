"""``trainer status``: the readable view of a status file, --json, --watch, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from trainer.cli import main
from trainer.monitoring import TrainingStatusWriter
from trainer.reporting import follow_status, format_status

SAMPLES = [
    {
        "prompt": "Zoe has 31 shells. Zoe buys 12 more. How many shells does Zoe have now?",
        "expected": "43",
        "generated": "Step 1: Zoe starts with 31 shells.\nStep 2: 31 + 12 = 43.\nAnswer: 43",
        "format_ok": True,
        "correct": True,
    },
    {
        "prompt": "Tom has 5 apples.",
        "expected": "7",
        "generated": "Answer: 9",
        "format_ok": True,
        "correct": False,
    },
    {"prompt": "Say hi.", "expected": None, "generated": "hello", "format_ok": False, "correct": None},
]

TRAINING = {
    "status": "training",
    "step": 120,
    "total_steps": 300,
    "epoch": 0.64,
    "loss": 0.8123,
    "first_loss": 7.74,
    "learning_rate": 4.2e-4,
    "tokens_per_second": 5712.3,
    "tokens_seen": 1234567,
    "elapsed_seconds": 83.2,
    "eta_seconds": 124,
    "peak_memory_mb": 1234.5,
    "eval_loss": 0.9012,
    "last_checkpoint": "outputs/run/checkpoints/checkpoint-100",
    "updated_at": "2025-01-01T10:00:00+00:00",
    "error": None,
    "sink_errors": [{"sink": "console", "error": "ValueError: boom"}],
    "previews": {"step": 100, "format_rate": 2 / 3, "accuracy": 0.5, "seconds": 1.25, "samples": SAMPLES},
    "preview_history": [
        {"step": 50, "format_rate": 0.25, "accuracy": 0.0},
        {"step": 100, "format_rate": 2 / 3, "accuracy": 0.5},
    ],
}


MIXTURE_SAMPLES = [
    {
        "source": "gsm8k",
        "prompt": "Tom has 5 apples and buys 2 more. How many apples does Tom have?",
        "expected": "7",
        "generated": "Step 1: 5 + 2 = 7.\nAnswer: 7",
        "format_ok": True,
        "correct": True,
    },
    {
        "source": "emoji",
        "prompt": "Ann reads 3 pages a day. How many pages in 4 days?",
        "expected": "12",
        "generated": "3 * 4 = 12",
        "format_ok": False,
        "correct": False,
    },
    {
        "source": "chat",
        "prompt": "Say hi.",
        "expected": None,
        "generated": "hello",
        "format_ok": True,
        "correct": None,
    },
]

MIXTURE_HISTORY = [
    {
        "step": step,
        "format_rate": overall,
        "accuracy": accuracy,
        "sources": {
            "gsm8k": {"format_rate": gsm8k, "accuracy": gsm8k / 2},
            "emoji": {"format_rate": emoji, "accuracy": 0.0},
            "chat": {"format_rate": chat, "accuracy": None},
        },
    }
    for step, overall, accuracy, gsm8k, emoji, chat in (
        (0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (100, 1 / 3, 0.125, 0.25, 0.0, 0.75),
        (200, 0.75, 0.25, 1.0, 0.25, 1.0),
    )
]

MIXTURE = {
    **TRAINING,
    "step": 210,
    "previews": {
        "step": 200,
        "format_rate": 0.75,
        "accuracy": 0.25,
        "seconds": 3.42,
        "sources": {
            "gsm8k": {"profile": "regime3", "format_rate": 1.0, "accuracy": 0.5},
            "emoji": {"profile": "emoji_think", "format_rate": 0.25, "accuracy": 0.0},
            "chat": {"profile": "chat", "format_rate": 1.0, "accuracy": None},
        },
        "samples": MIXTURE_SAMPLES,
    },
    "preview_history": MIXTURE_HISTORY,
}
"""A run on a data mixture of three sources; ``chat`` has no expected answers, so no accuracy."""


def write_run(directory: Path, state: dict[str, Any], losses: list[float] = ()) -> Path:
    """A status file (and a metrics log of ``losses``) as the engine writes them; returns the status file."""
    directory.mkdir(parents=True, exist_ok=True)
    status_file = directory / "status.json"
    status_file.write_text(json.dumps(state, indent=2) + "\n")
    lines = [json.dumps({"step": step, "loss": loss}) for step, loss in enumerate(losses, start=1)]
    if losses:
        lines.append(json.dumps({"step": len(losses), "eval_loss": 1.5}))
        (directory / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 99, "lo')  # a half line
    return status_file


@pytest.fixture
def trainer(capsys: pytest.CaptureFixture[str]):
    """Run the command line in-process: ``code, stdout, stderr = trainer("status", ...)``."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def rows(text: str) -> dict[str, str]:
    """The view's ``label  value`` lines by label."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith(" "):
            label, _, value = line.partition("  ")
            found[label] = value.strip()
    return found


def lines_from(text: str, label: str) -> list[str]:
    """The view's lines from the one labelled ``label`` on."""
    lines = text.splitlines()
    return lines[next(index for index, line in enumerate(lines) if line.startswith(label)) :]


def test_status_of_a_training_run(tmp_path: Path, trainer):
    write_run(tmp_path / "run", TRAINING, losses=[7.7, 5.0, 3.1, 2.0, 1.2, 0.9, 0.81])
    code, out, err = trainer("status", str(tmp_path / "run"))
    assert code == 0, err
    shown = rows(out)
    assert shown["status"] == "training"
    assert shown["progress"] == "step 120/300 (40.0%), epoch 0.64"
    assert shown["loss"] == "0.8123  (first 7.7400 -> 0.8123)"
    # The metrics log's losses: highest first, lowest last; the half-written last line is skipped.
    assert shown["trend"].startswith("█") and shown["trend"].split()[0].endswith("▁")
    assert "last 5: 3.1000 2.0000 1.2000 0.9000 0.8100  (7 logged)" in shown["trend"]
    assert shown["eval loss"] == "0.9012"
    assert shown["lr"] == "4.20e-04"
    assert shown["speed"] == "5,712 tokens/s, 1,234,567 tokens seen"
    assert shown["time"] == "elapsed 1m 23s, ETA 2m 04s"
    assert shown["checkpoint"] == "outputs/run/checkpoints/checkpoint-100"
    assert shown["error"] == "-"
    assert shown["sink errors"] == "console: ValueError: boom"
    assert shown["previews"] == "step 100: format 66.7%, accuracy 50.0%, 1.2 s"
    sample_lines = [line.split() for line in out.splitlines() if line.strip()[:2] in {"1 ", "2 ", "3 "}]
    assert [line[:3] for line in sample_lines] == [["1", "yes", "yes"], ["2", "yes", "no"], ["3", "no", "-"]]
    assert "Zoe has 31 shells. Zoe buys 12 more. Ho…" in out  # the prompt, cut to 40 characters
    assert "Step 1: Zoe starts with 31 shells. ⏎ Step 2: 31 + 12 = 43.…" in out  # cut to 60 characters
    assert shown["history"].split() == ["step", "format", "accuracy"]
    assert "50    25.0%   0.0%" in out and "100   66.7%   50.0%" in out


def test_status_of_a_mixture_shows_each_source(tmp_path: Path, trainer):
    write_run(tmp_path / "run", MIXTURE)
    code, out, err = trainer("status", str(tmp_path / "run"))
    assert code == 0, err
    assert rows(out)["previews"] == "step 200: format 75.0%, accuracy 25.0%, 3.4 s"  # over all sources
    previews = lines_from(out, "previews")
    assert previews[1:4] == [
        "               gsm8k (regime3)      format 100.0%, accuracy 50.0%",
        "               emoji (emoji_think)  format 25.0%, accuracy 0.0%",
        "               chat                 format 100.0%, accuracy -",  # named after its profile
    ]
    # The samples say which source each prompt came from.
    assert previews[4].split() == ["#", "source", "format", "correct", "prompt", "expected", "generated"]
    assert [line.split()[:4] for line in previews[5:8]] == [
        ["1", "gsm8k", "yes", "yes"],
        ["2", "emoji", "no", "no"],
        ["3", "chat", "yes", "-"],
    ]
    # The history has a column per source: format rate, and accuracy after a slash where there is one.
    history = lines_from(out, "history")
    assert [line.split() for line in history] == [
        ["history", "step", "format", "accuracy", "gsm8k", "emoji", "chat"],
        ["0", "0.0%", "0.0%", "0.0%/0.0%", "0.0%/0.0%", "0.0%"],
        ["100", "33.3%", "12.5%", "25.0%/12.5%", "0.0%/0.0%", "75.0%"],
        ["200", "75.0%", "25.0%", "100.0%/50.0%", "25.0%/0.0%", "100.0%"],
        ["(gsm8k,", "emoji:", "format/accuracy)"],
    ]
    assert max(len(line) for line in history + previews[:4]) <= 80


def test_a_mixture_history_with_a_source_missing_from_a_round():
    history = [
        {"step": 0, "format_rate": 0.0, "accuracy": None, "sources": {"chat": {"format_rate": 0.0}}},
        {"step": 50, "format_rate": 0.5, "accuracy": None, "sources": {"chat": "odd", "tools": {}}},
        {"step": 100, "format_rate": 1.0, "accuracy": None, "sources": None},
    ]
    previews = {"step": 100, "sources": {"chat": {"format_rate": 1.0}, "tools": None}}
    text = format_status({"previews": previews, "preview_history": history}, unicode=False)
    assert [line.strip() for line in lines_from(text, "previews")[1:3]] == [
        "chat   format 100.0%, accuracy -",
        "tools  -",
    ]
    assert [line.split() for line in lines_from(text, "history")] == [
        ["history", "step", "format", "accuracy", "chat", "tools"],
        ["0", "0.0%", "-", "0.0%", "-"],
        ["50", "50.0%", "-", "odd", "-"],
        ["100", "100.0%", "-", "-", "-"],
    ]
    scored = {"a": {"format_rate": 0.5, "accuracy": 0.0}, "b": {"format_rate": 1.0, "accuracy": 1.0}}
    text = format_status({"preview_history": [{"step": 0, "sources": scored}]})
    assert [line.split() for line in lines_from(text, "history")] == [
        ["history", "step", "format", "accuracy", "a", "b"],
        ["0", "-", "-", "50.0%/0.0%", "100.0%/100.0%"],
        ["(each", "source:", "format/accuracy)"],
    ]


def test_a_single_dataset_shows_no_source_column():
    text = format_status(TRAINING)
    assert "source" not in text
    assert "  #  format  correct  prompt" in text


def test_status_of_a_resumed_run_says_so(tmp_path: Path, trainer):
    write_run(tmp_path / "run", {**TRAINING, "resumed_from_step": 11}, losses=[7.7, 5.0])
    code, out, err = trainer("status", str(tmp_path / "run"))
    assert code == 0, err
    assert rows(out)["progress"] == "step 120/300 (40.0%), epoch 0.64, resumed from step 11"


def test_status_of_a_completed_run_given_the_file(tmp_path: Path, trainer):
    state = {**TRAINING, "status": "completed", "step": 300, "epoch": 1.6, "eta_seconds": 0}
    state.update(previews=None, preview_history=[], sink_errors=[])
    status_file = write_run(tmp_path / "run", state)
    code, out, _ = trainer("status", str(status_file))
    shown = rows(out)
    assert code == 0
    assert shown["status"] == "completed"
    assert shown["progress"].startswith("step 300/300 (100.0%)")
    assert shown["trend"] == "-"  # no metrics.jsonl
    assert shown["previews"] == shown["history"] == shown["sink errors"] == "-"


def test_status_of_a_failed_run_shows_the_error(tmp_path: Path, trainer):
    state = {"status": "failed", "step": 0, "error": "dataset 'x.jsonl' not found", "updated_at": "now"}
    write_run(tmp_path / "run", state)
    code, out, _ = trainer("status", str(tmp_path / "run"))
    assert code == 0  # showing a failed run once is not itself a failure; --watch exits 1
    shown = rows(out)
    assert shown["status"] == "failed"
    assert shown["error"] == "dataset 'x.jsonl' not found"
    assert shown["loss"] == shown["lr"] == shown["checkpoint"] == "-"


def test_status_defaults_to_outputs_run(tmp_path: Path, trainer, monkeypatch: pytest.MonkeyPatch):
    write_run(tmp_path / "outputs" / "run", TRAINING)
    monkeypatch.chdir(tmp_path)
    code, out, _ = trainer("status")
    assert code == 0
    assert rows(out)["file"].startswith(str(Path("outputs/run/status.json")))


def test_status_finds_the_status_file_a_run_recorded(tmp_path: Path, trainer):
    run_dir = tmp_path / "run"
    write_run(run_dir, {"status": "completed"})
    (run_dir / "progress.json").write_text(json.dumps({"status": "interrupted"}))
    run_info = {"config": {"system": {"status_file": "progress.json"}}}
    (run_dir / "trainer_run.json").write_text(json.dumps(run_info))
    code, out, _ = trainer("status", str(run_dir))
    assert code == 0 and rows(out)["status"] == "interrupted"


def test_missing_and_odd_values_show_as_dashes_or_as_written():
    state = {
        "status": 3,
        "step": "x",
        "total_steps": 0,
        "loss": None,
        "first_loss": 2,
        "sink_errors": "oops",
        "previews": {"samples": [1, {}]},
        "preview_history": "bad",
        "some_new_key": {"a": 1},
    }
    shown = rows(format_status(state, unicode=False))
    assert shown["status"] == "3"
    assert shown["progress"] == "step -/0, epoch -"
    assert shown["loss"] == "-  (first 2.0000 -> -)"
    assert shown["sink errors"] == "oops"
    assert shown["previews"] == "step -: format -, accuracy -, -"
    assert shown["history"] == "-"
    assert set(rows(format_status({}))) >= {"status", "progress", "loss", "previews", "history"}
    assert set(rows(format_status({})).values()) <= {"-", "step -/-, epoch -", "-, -", "elapsed -, ETA -"}


def test_ascii_view_has_no_other_characters():
    text = format_status(
        TRAINING, metrics=[{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}], unicode=False
    )
    assert text.isascii()
    assert "Step 1: Zoe starts with 31 shells. | Step 2" in text


def test_json_prints_the_file_with_its_liveness(tmp_path: Path, trainer):
    write_run(tmp_path / "run", TRAINING)
    code, out, _ = trainer("status", "--json", str(tmp_path / "run"))
    assert code == 0
    # No pid nor heartbeat in this file (as in files written before they were): nothing to judge by.
    assert json.loads(out) == {**TRAINING, "liveness": "unknown"}


def test_a_damaged_status_file_is_a_one_line_error(tmp_path: Path, trainer):
    status_file = tmp_path / "status.json"
    status_file.write_text('{"status": "train')
    code, out, err = trainer("status", "--json", str(status_file))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and str(status_file) in err and "not valid JSON" in err


def test_a_missing_status_file_is_a_one_line_error(tmp_path: Path, trainer):
    code, out, err = trainer("status", str(tmp_path / "nowhere"))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"Error: no status file at {tmp_path / 'nowhere' / 'status.json'}")
    assert "--watch" in err  # the fix for a run that has not started yet


def test_watch_follows_a_rewritten_file_until_completed(tmp_path: Path, trainer):
    status_file = tmp_path / "run" / "status.json"

    def run_a_training() -> None:
        time.sleep(0.3)  # the watcher starts before the file exists
        writer = TrainingStatusWriter(status_file)  # replaces the file through a rename each time
        for step in range(1, 41):
            writer.update(status="training", step=step, total_steps=40, loss=5.0 / step)
            time.sleep(0.005)
        writer.update(status="completed")

    writing = threading.Thread(target=run_a_training)
    writing.start()
    try:
        code, out, err = trainer("status", "--watch", "--interval", "0.01", str(tmp_path / "run"))
    finally:
        writing.join()
    assert code == 0, err
    assert out.startswith(f"waiting for {status_file}")
    views = [rows(view) for view in out.split("\n\n") if "status " in view]
    assert len(views) >= 2
    assert views[0]["status"] == "training"
    assert views[-1]["status"] == "completed" and views[-1]["progress"].startswith("step 40/40 (100.0%)")


def test_watch_exits_1_for_a_failed_run_and_prints_json_lines(tmp_path: Path, trainer):
    write_run(tmp_path, {"status": "failed", "error": "out of memory"})
    code, out, _ = trainer("status", "--watch", "--json", "--interval", "0.01", str(tmp_path))
    assert code == 1
    assert [json.loads(line) for line in out.splitlines()] == [
        {"status": "failed", "error": "out of memory", "liveness": "ended"}
    ]


def test_follow_status_skips_a_half_written_file_and_repeats(tmp_path: Path):
    status_file = tmp_path / "status.json"
    contents = iter(
        ['{"status": "train', '{"status": "training", "step": 1}', None, '{"status": "completed"}']
    )

    def next_write(_seconds: float) -> None:
        text = next(contents)
        if text is not None:
            status_file.write_text(text)

    states = list(follow_status(status_file, 0.0, sleep=next_write))
    assert states == [None, {"status": "training", "step": 1}, {"status": "completed"}]


def test_status_does_not_import_the_ml_stack_or_matplotlib(tmp_path: Path):
    write_run(tmp_path / "run", TRAINING, losses=[2.0, 1.0])
    probe = (
        "import json, sys\n"
        "from trainer.cli import main\n"
        f"try:\n    main(['status', {str(tmp_path / 'run')!r}])\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "heavy = ('torch', 'transformers', 'datasets', 'matplotlib')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, encoding="utf-8"
    )
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
