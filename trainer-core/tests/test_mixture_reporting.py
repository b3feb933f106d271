"""A data mixture's previews, from the preview callback to ``trainer status`` and the report.

The rounds are made as a run makes them: each source's ``PreviewRunner`` judges with its own
profile, a ``MixedPreviewRunner`` joins them, the ``PreviewCallback`` hands every round to the
status hub, whose sinks write ``status.json`` and ``previews.jsonl``. Only generation is replaced:
by answers that take up each source's format at its own pace, so the view and the report must show
each source rising on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from trainer.default_plugins.metrics_log import MetricsLog
from trainer.monitoring import TrainingStatusWriter
from trainer.monitoring.callback import PreviewCallback
from trainer.monitoring.hub import StatusHub
from trainer.monitoring.previews import MixedPreviewRunner, PreviewPrompt, PreviewRunner
from trainer.profiles import get_profile
from trainer.reporting import format_status, plot_run, read_run_files, write_report

STEPS = [0, 100, 200, 300]
"""The preview rounds: before training, every 100 steps, and at the last one."""

SOURCES = {
    # name: (profile, expected answer, answer in the profile's format, answer without it,
    #        answers in the format at each round, of 4)
    "gsm8k": ("regime3", "7", "Step 1: 5 + 2 = 7.\nAnswer: 7", "7", [0, 2, 4, 4]),
    "emoji": ("emoji_think", "12", "🤔🤔🤔🤔\n3 * 4 = 12\nThe answer is 12", "12", [0, 0, 2, 4]),
    "chat": ("chat", None, "Hello there!", "", [1, 2, 3, 4]),
}


class FixedModel:
    """Stands in for a model: generation is patched, training mode is tracked."""

    training = True

    def eval(self) -> None:
        self.training = False

    def train(self, mode: bool = True) -> None:
        self.training = mode


@pytest.fixture
def mixture_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The output directory of a mixture's preview rounds at :data:`STEPS`."""
    state = SimpleNamespace(is_world_process_zero=True, global_step=0)

    def generate_batch(model: Any, tokenizer: Any, conversations: list[Any], **options: Any) -> list[str]:
        answers = []
        for conversation in conversations:
            name, index = conversation.messages[-1]["content"].split(" #")
            _, _, formatted, unformatted, learned = SOURCES[name]
            in_format = int(index) < learned[STEPS.index(state.global_step)]
            answers.append(formatted if in_format else unformatted)
        return answers

    monkeypatch.setattr("trainer.generation.generate_batch", generate_batch)
    runners = {
        name: PreviewRunner(
            [
                PreviewPrompt(messages=[{"role": "user", "content": f"{name} #{index}"}], expected=expected)
                for index in range(4)
            ],
            get_profile(profile),
            tokenizer=None,
            stop_sequences=[],
            max_new_tokens=32,
            temperature=0.0,
        )
        for name, (profile, expected, *_) in SOURCES.items()
    }
    hub = StatusHub(
        [("status_file", TrainingStatusWriter(tmp_path / "status.json")), ("log", MetricsLog(tmp_path))]
    )
    callback = PreviewCallback(MixedPreviewRunner(runners), hub, every=100)
    model = FixedModel()
    callback.on_train_begin(None, state, None, model=model)
    for step in range(1, STEPS[-1] + 1):
        state.global_step = step
        callback.on_step_end(None, state, None, model=model)
    callback.on_train_end(None, state, None, model=model)  # the last step had its round
    hub.emit("end", status="completed", step=STEPS[-1], total_steps=STEPS[-1])
    return tmp_path


def test_the_files_record_each_sources_rates(mixture_run: Path):
    rounds = [json.loads(line) for line in (mixture_run / "previews.jsonl").read_text().splitlines()]
    assert [round_["step"] for round_ in rounds] == STEPS
    assert rounds[1]["sources"] == {
        "gsm8k": {"profile": "regime3", "format_rate": 0.5, "accuracy": 0.5},
        "emoji": {"profile": "emoji_think", "format_rate": 0.0, "accuracy": 0.0},
        "chat": {"profile": "chat", "format_rate": 0.5, "accuracy": None},
    }
    assert [sample["source"] for sample in rounds[0]["samples"]] == ["gsm8k"] * 4 + ["emoji"] * 4 + [
        "chat"
    ] * 4
    status = json.loads((mixture_run / "status.json").read_text())
    assert status["preview_history"][2]["sources"] == {
        "gsm8k": {"format_rate": 1.0, "accuracy": 1.0},
        "emoji": {"format_rate": 0.5, "accuracy": 0.5},
        "chat": {"format_rate": 0.75, "accuracy": None},
    }


def test_status_shows_each_source_rising_to_its_format(mixture_run: Path):
    text = format_status(json.loads((mixture_run / "status.json").read_text()))
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("previews"))
    assert lines[start].split(None, 1)[1].startswith("step 300: format 100.0%, accuracy 100.0%")
    assert [" ".join(line.split()) for line in lines[start + 1 : start + 4]] == [
        "gsm8k (regime3) format 100.0%, accuracy 100.0%",
        "emoji (emoji_think) format 100.0%, accuracy 100.0%",
        "chat format 100.0%, accuracy -",
    ]
    history = lines[next(index for index, line in enumerate(lines) if line.startswith("history")) :]
    assert [line.split()[-4:] for line in history[:5]] == [
        ["accuracy", "gsm8k", "emoji", "chat"],
        ["0.0%", "0.0%/0.0%", "0.0%/0.0%", "25.0%"],
        ["25.0%", "50.0%/50.0%", "0.0%/0.0%", "50.0%"],
        ["75.0%", "100.0%/100.0%", "50.0%/50.0%", "75.0%"],
        ["100.0%", "100.0%/100.0%", "100.0%/100.0%", "100.0%"],
    ]
    assert max(len(line) for line in history) <= 80


def test_the_report_draws_a_curve_per_source(mixture_run: Path):
    png, page = write_report(mixture_run)
    figure = plot_run(read_run_files(mixture_run))
    curves = {line.get_label(): list(line.get_ydata()) for line in figure.axes[1].get_lines()}
    assert curves == {
        "gsm8k (regime3): format rate": [0.0, 0.5, 1.0, 1.0],
        "gsm8k (regime3): accuracy": [0.0, 0.5, 1.0, 1.0],
        "emoji (emoji_think): format rate": [0.0, 0.0, 0.5, 1.0],
        "emoji (emoji_think): accuracy": [0.0, 0.0, 0.5, 1.0],
        "chat: format rate": [0.25, 0.5, 0.75, 1.0],
    }
    assert all(list(line.get_xdata()) == STEPS for line in figure.axes[1].get_lines())
    text = page.read_text()
    assert "<h2>Sources</h2>" in text and "preview rates at step 300" in text
    assert "<tr><td>emoji</td><td>emoji_think</td><td>-</td>" in text  # no trainer_run.json: shares unknown
