"""bf16 training on a CPU attends in float32 below FLOAT32_BELOW tokens: same results, the faster kernel."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from trainer.models import cpu_attention  # noqa: E402
from trainer.models.cpu_attention import ATTENTION, use_cpu_attention  # noqa: E402


def demo_model():
    from trainer.models.demo import load_demo_tokenizer
    from trainer.models.demo_model import build_demo_model

    model = build_demo_model(load_demo_tokenizer(), seed=3)
    model.train()
    return model


def batch():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 2000, (3, 40), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, -7:] = 0  # padding: the attention mask reaches the kernel
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@pytest.fixture
def kernel_inputs(monkeypatch):
    """The dtypes and autocast state transformers' sdpa function is called with."""
    from transformers.integrations import sdpa_attention

    seen = []
    original = sdpa_attention.sdpa_attention_forward

    def spy(module, query, key, value, attention_mask, **kwargs):
        seen.append((query.dtype, value.dtype, torch.is_autocast_enabled("cpu")))
        return original(module, query, key, value, attention_mask, **kwargs)

    monkeypatch.setattr(sdpa_attention, "sdpa_attention_forward", spy)
    return seen


def step(model, bf16: bool):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(**batch()).loss
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return loss.detach(), grads


def test_short_rows_attend_in_float32_under_bf16_autocast(kernel_inputs):
    model = demo_model()
    assert use_cpu_attention(model, None, "bfloat16") == ATTENTION
    loss, grads = step(model, bf16=True)
    assert kernel_inputs and all(seen == (torch.float32, torch.float32, False) for seen in kernel_inputs)

    kernel_inputs.clear()
    standard = demo_model()  # the same weights, attending in bf16 as sdpa does under autocast
    standard_loss, standard_grads = step(standard, bf16=True)
    assert all(autocast for _, _, autocast in kernel_inputs)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(standard_loss.item(), rel=2e-3)
    for name, grad in grads.items():
        assert torch.allclose(grad, standard_grads[name], rtol=0.1, atol=2e-3), name


def test_in_float32_nothing_changes(kernel_inputs):
    model, plain = demo_model(), demo_model()
    use_cpu_attention(model, None, "bfloat16")  # switched, but the step runs without autocast
    loss, grads = step(model, bf16=False)
    plain_loss, plain_grads = step(plain, bf16=False)
    assert loss.item() == plain_loss.item()
    assert all(torch.allclose(grad, plain_grads[name], rtol=1e-5, atol=1e-7) for name, grad in grads.items())


def test_long_rows_keep_the_bf16_kernel(kernel_inputs, monkeypatch):
    monkeypatch.setattr(cpu_attention, "FLOAT32_BELOW", 16)  # the batch's 40 tokens count as long
    model = demo_model()
    use_cpu_attention(model, None, "bfloat16")
    step(model, bf16=True)
    assert kernel_inputs and all(autocast for _, _, autocast in kernel_inputs)


def test_a_chosen_kernel_float32_runs_and_other_defaults_are_kept():
    model = demo_model()
    assert use_cpu_attention(model, "eager", "bfloat16") == "sdpa"  # the user's choice is loaded as given
    assert use_cpu_attention(model, None, "float32") == "sdpa"
    model.set_attn_implementation("eager")
    assert use_cpu_attention(model, None, "bfloat16") == "eager"
    assert model.config._attn_implementation == "eager"


def test_a_bf16_run_records_the_attention_and_saves_a_plain_config(tmp_path):
    from trainer.config import create_default_config
    from trainer.core import TrainerEngine

    config = create_default_config(output_dir=str(tmp_path / "run"))
    config.model.precision = "bfloat16"
    config.hyperparams.max_steps = 2
    config.inference.eval_steps = 0
    TrainerEngine().run_job(config)
    metrics = json.loads((tmp_path / "run" / "trainer_run.json").read_text())["metrics"]
    assert metrics["attention"] == ATTENTION and metrics["precision"] == "bfloat16"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert ATTENTION not in json.dumps(saved)  # a loaded model gets transformers' own default
