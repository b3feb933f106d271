"""Model FLOPs per token, the device's peak, and MFU in a run's status."""

from __future__ import annotations

import json

import pytest


def _model(tie: bool):
    from trainer.testing import tiny_qwen3

    return tiny_qwen3(
        vocab_size=100, num_attention_heads=4, num_key_value_heads=2, head_dim=8, tie_word_embeddings=tie
    )


@pytest.mark.parametrize("tie", [True, False])
def test_flops_per_token_count_every_weight_but_the_embedding_lookup(tie):
    from trainer.models.flops import training_flops_per_token

    model = _model(tie)
    every = sum(parameter.numel() for parameter in model.parameters())
    weights = every if tie else every - 100 * 32
    attention = 12 * 2 * 4 * 8 * 50
    assert training_flops_per_token(model, 50) == 6 * weights + attention
    # The chunked loss projects only labelled tokens: a quarter of them here.
    assert training_flops_per_token(model, 50, head_share=0.25) == 6 * (weights - 0.75 * 100 * 32) + attention


def test_mfu_is_the_share_of_the_peak():
    from trainer.models.flops import mfu

    assert mfu(1000, 6e6, 1e10) == pytest.approx(0.6)
    assert mfu(1000, 6e6, None) is None
    assert mfu(0, 6e6, 1e10) is None


def test_the_cpu_peak_is_measured_once_and_cuda_peaks_come_from_the_table(monkeypatch):
    import torch

    from trainer.models import flops

    peak = flops.peak_flops("cpu", torch.float32)
    assert peak is not None and peak > 1e8
    assert flops.measured_peak_flops.cache_info().currsize >= 1
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert flops.peak_flops("cuda", torch.bfloat16) == pytest.approx(989.4e12)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 PCIe")
    assert flops.peak_flops("cuda", torch.bfloat16) == pytest.approx(756e12)


def test_a_run_reports_mfu_in_its_status_and_metrics(tmp_path):
    from trainer.config import TrainerConfig
    from trainer.core.engine import TrainerEngine

    config = TrainerConfig.from_dict(
        {
            "hyperparams": {"max_steps": 3, "batch_size": 4},
            "inference": {"eval_steps": 0},
            "output": {"output_dir": str(tmp_path / "run")},
            "debug": {"example_limit": 40},
        }
    )
    TrainerEngine().run_job(config)
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["peak_tflops"] > 0
    assert 0 < status["mfu"] < 1
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(0 < (row.get("mfu") or 0) < 1 for row in logged)


def test_the_demo_loss_under_bf16_follows_float32(tmp_path):
    """bf16 autocast (what precision auto picks on a CPU with native bf16) tracks float32 within 1%."""
    from trainer.config import TrainerConfig
    from trainer.core.engine import TrainerEngine

    curves = {}
    for precision in ("float32", "bfloat16"):
        config = TrainerConfig.from_dict(
            {
                "model": {"precision": precision},
                "hyperparams": {"max_steps": 30, "batch_size": 8},
                "inference": {"eval_steps": 0},
                "output": {"output_dir": str(tmp_path / precision)},
            }
        )
        TrainerEngine().run_job(config)
        rows = (tmp_path / precision / "metrics.jsonl").read_text().splitlines()
        curves[precision] = {
            row["step"]: row["loss"] for row in map(json.loads, rows) if row.get("loss") is not None
        }
    assert len(curves["float32"]) >= 15
    assert curves["float32"].keys() == curves["bfloat16"].keys()
    for step, loss in curves["float32"].items():
        assert abs(curves["bfloat16"][step] - loss) <= 0.01 * loss, step
    assert curves["float32"][30] < 0.6 * curves["float32"][1]  # it did learn


def test_the_eta_counts_from_the_steps_after_the_first_one_logged(monkeypatch):
    from types import SimpleNamespace

    from trainer.monitoring import callback as module
    from trainer.monitoring.hub import StatusHub

    clock = iter([100.0, 110.0, 120.0])
    monkeypatch.setattr(module.time, "perf_counter", lambda: next(clock))
    status = module.StatusCallback(StatusHub([]))
    status.started = 0.0
    etas = []
    for step in (1, 2, 3):  # the first step took 100 s (warm-up), the next ones 10 s each
        state = SimpleNamespace(
            is_world_process_zero=True, num_input_tokens_seen=0, global_step=step, max_steps=10, epoch=0.1
        )
        status.on_log(None, state, None, logs={"loss": 1.0})
        etas.append(status.hub.state.get("eta_seconds"))
    assert etas == [None, None, 70.0]


def test_a_resumed_run_reports_the_speed_of_its_own_steps(monkeypatch):
    from types import SimpleNamespace

    from trainer.monitoring import callback as module
    from trainer.monitoring.hub import StatusHub

    clock = iter([50.0, 60.0])
    monkeypatch.setattr(module.time, "perf_counter", lambda: next(clock))
    status = module.StatusCallback(StatusHub([]))
    args = SimpleNamespace(bf16=False, fp16=False, device="cpu", world_size=1)
    resumed = dict(is_world_process_zero=True, global_step=11, max_steps=30, epoch=0.5)
    status.on_train_begin(args, SimpleNamespace(**resumed, num_input_tokens_seen=11_000), None)
    later = {**resumed, "global_step": 12, "num_input_tokens_seen": 11_500}
    status.on_log(args, SimpleNamespace(**later), None, logs={"loss": 1.0})
    assert status.hub.state["tokens_per_second"] == 50.0  # 500 tokens in 10 s, not 11,500
    assert status.hub.state["tokens_seen"] == 11_500


def test_a_resumed_run_keeps_its_first_loss_and_time_from_the_checkpoint(monkeypatch):
    from types import SimpleNamespace

    from trainer.monitoring import callback as module
    from trainer.monitoring.hub import StatusHub

    clock = iter([100.0, 130.0, 140.0])
    monkeypatch.setattr(module.time, "perf_counter", lambda: next(clock))
    before = module.StatusCallback(StatusHub([]))
    before.first_loss, before.seconds_before = 7.5, 12.0
    saved = {"StatusCallback": {"args": {}, "attributes": {"first_loss": 7.5, "seconds_before": 40.0}}}
    args = SimpleNamespace(bf16=False, fp16=False, device="cpu", world_size=1)
    state = SimpleNamespace(
        is_world_process_zero=True,
        global_step=11,
        max_steps=30,
        epoch=0.5,
        num_input_tokens_seen=0,
        stateful_callbacks=saved,
        log_history=[{"loss": 9.9, "step": 1}],
    )
    status = module.StatusCallback(StatusHub([]))
    status.on_train_begin(args, state, None)
    assert status.hub.state["resumed_from_step"] == 11
    assert status.hub.state["first_loss"] == 7.5  # the saved one, not a guess
    state.global_step = 12
    status.on_log(args, state, None, logs={"loss": 5.0})
    assert status.hub.state["first_loss"] == 7.5
    assert status.hub.state["elapsed_seconds"] == 70.0  # 40 s before, 30 s in this process
    assert status.state()["attributes"] == {"first_loss": 7.5, "seconds_before": 80.0}


def test_a_checkpoint_without_a_saved_state_falls_back_to_its_log(monkeypatch):
    from types import SimpleNamespace

    from trainer.monitoring import callback as module
    from trainer.monitoring.hub import StatusHub

    monkeypatch.setattr(module.time, "perf_counter", lambda: 5.0)
    state = SimpleNamespace(
        is_world_process_zero=True,
        global_step=4,
        max_steps=8,
        epoch=0.5,
        num_input_tokens_seen=0,
        stateful_callbacks={"TrainerControl": {}},
        log_history=[{"step": 1, "loss": 9.25}],
    )
    status = module.StatusCallback(StatusHub([]))
    status.on_train_begin(SimpleNamespace(bf16=False, fp16=False, device="cpu", world_size=1), state, None)
    assert status.hub.state["first_loss"] == 9.25
    # transformers' next checkpoint looks the callback's entry up by name: it must be there.
    assert "StatusCallback" in state.stateful_callbacks
