"""The chunked loss (model.loss_impl): the standard loss and gradients, without the whole logits tensor."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from trainer.models.chunked_loss import LinearCrossEntropy, chunked_loss_problem, use_chunked_loss

torch = pytest.importorskip("torch")


def tiny_qwen3(tied: bool = True, vocab: int = 3000):
    from trainer.testing import tiny_qwen3 as build

    return build(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, head_dim=32, tie_word_embeddings=tied
    )


def batch():
    torch.manual_seed(1)
    ids = torch.randint(0, 3000, (3, 40))
    labels = ids.clone()
    labels[:, :12] = -100  # a prompt, not trained
    labels[1, 30:] = -100  # padding
    mask = torch.ones_like(ids)
    mask[1, 30:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def gradients(model):
    return {
        name: parameter.grad.clone()
        for name, parameter in model.named_parameters()
        if parameter.grad is not None
    }


@pytest.mark.parametrize("tied", [True, False])
def test_loss_and_gradients_equal_the_standard_path(tied):
    standard = tiny_qwen3(tied)
    chunked = copy.deepcopy(standard)
    use_chunked_loss(chunked, chunk_rows=7)  # several chunks, the last one short
    standard.train()
    chunked.train()
    expected = standard(**batch()).loss
    found = chunked(**batch()).loss
    assert found.item() == pytest.approx(expected.item(), rel=1e-6)
    expected.backward()
    found.backward()
    want, got = gradients(standard), gradients(chunked)
    assert want.keys() == got.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6, msg=name)


def test_the_loss_is_token_weighted_by_num_items_in_batch():
    model = tiny_qwen3()
    use_chunked_loss(model)
    model.train()
    inputs = batch()
    mean = model(**inputs).loss
    counted = int((inputs["labels"][:, 1:] != -100).sum())
    summed = model(**inputs, num_items_in_batch=torch.tensor(counted * 2)).loss
    assert summed.item() == pytest.approx(mean.item() / 2, rel=1e-6)


def test_evaluation_and_generation_keep_the_standard_forward():
    model = tiny_qwen3()
    use_chunked_loss(model)
    model.eval()
    output = model(**batch())
    assert output.logits.shape == (3, 40, 3000) and output.loss is not None
    generated = model.generate(batch()["input_ids"][:1, :5], max_new_tokens=3, do_sample=False)
    assert generated.shape == (1, 8)


def test_lora_trains_the_same_gradients():
    pytest.importorskip("peft")
    from trainer.models.loading import apply_lora

    base = tiny_qwen3()
    standard = apply_lora(copy.deepcopy(base), r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    chunked_base = copy.deepcopy(base)
    use_chunked_loss(chunked_base)
    chunked = apply_lora(chunked_base, r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    chunked.load_state_dict(standard.state_dict())
    for model in (standard, chunked):
        model.train()
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(parameter, std=0.02, generator=torch.Generator().manual_seed(3))
    expected, found = standard(**batch()).loss, chunked(**batch()).loss
    assert found.item() == pytest.approx(expected.item(), rel=1e-6)
    expected.backward()
    found.backward()
    want, got = gradients(standard), gradients(chunked)
    assert want and want.keys() == got.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_bias_and_a_frozen_head():
    torch.manual_seed(0)
    hidden = torch.randn(10, 8, requires_grad=True)
    weight = torch.randn(50, 8)  # frozen
    bias = torch.randn(50, requires_grad=True)
    labels = torch.tensor([1, 2, -100, 4, 5, 6, -100, 8, 9, 49])
    total = LinearCrossEntropy.apply(hidden, weight, bias, labels, 3)
    reference = torch.nn.functional.cross_entropy(hidden @ weight.t() + bias, labels, reduction="sum")
    assert total.item() == pytest.approx(reference.item(), rel=1e-6)
    (grad_hidden, grad_bias) = torch.autograd.grad(reference, (hidden, bias))
    total.backward()
    torch.testing.assert_close(hidden.grad, grad_hidden)
    torch.testing.assert_close(bias.grad, grad_bias)


def test_models_that_change_logits_after_the_projection_keep_the_standard_loss():
    model = tiny_qwen3()
    assert chunked_loss_problem(model) is None
    model.config.final_logit_softcapping = 30.0
    assert "final_logit_softcapping=30.0" in chunked_loss_problem(model)
    with pytest.raises(ValueError, match="changes its logits"):
        use_chunked_loss(model)


def test_a_run_trains_the_same_losses_with_either_loss(tmp_path: Path):
    from trainer.config import create_default_config
    from trainer.core import TrainerEngine
    from trainer.errors import TrainerError
    from trainer.testing import tiny_qwen3 as build_tiny_qwen3
    from trainer.testing import tiny_tokenizer

    rows = [
        {"prompt": f"What is {a} plus {b}?", "response": f"{a} plus {b} is {a + b}."}
        for a in range(9)
        for b in range(4)
    ]
    tokenizer = tiny_tokenizer([f"{row['prompt']} {row['response']}" for row in rows] * 2)
    build_tiny_qwen3(tokenizer, num_hidden_layers=1, max_position_embeddings=128).save_pretrained(
        tmp_path / "model"
    )
    tokenizer.save_pretrained(tmp_path / "model")
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))

    def run(loss_impl: str, name: str) -> dict:
        config = create_default_config(
            model_path=str(tmp_path / "model"),
            dataset_path=str(tmp_path / "rows.jsonl"),
            output_dir=str(tmp_path / name),
        )
        config.profile.name = "chat"
        config.model.loss_impl = loss_impl
        config.hyperparams.max_steps = 4
        config.hyperparams.batch_size = 4
        config.hyperparams.gradient_accumulation_steps = 2
        config.hyperparams.learning_rate = 1e-3
        config.data.packing = True
        config.inference.eval_steps = 0
        TrainerEngine().run_job(config)
        return json.loads((tmp_path / name / "trainer_run.json").read_text())["metrics"]

    chunked, standard = run("auto", "chunked"), run("standard", "standard")
    assert chunked["loss_impl"] == "chunked" and standard["loss_impl"] == "standard"
    assert chunked["first_loss"] == pytest.approx(standard["first_loss"], rel=1e-4)
    assert chunked["final_loss"] == pytest.approx(standard["final_loss"], rel=1e-3)

    from trainer.core import arguments

    class Softcapped(torch.nn.Module):
        config = type("C", (), {"final_logit_softcapping": 30.0})()

        def get_output_embeddings(self):
            return torch.nn.Linear(2, 2)

        def get_decoder(self):
            return torch.nn.Identity()

    assert arguments.choose_loss(Softcapped(), "auto") == "standard"
    with pytest.raises(
        TrainerError, match="model.loss_impl is chunked, but .*set model.loss_impl to auto or standard"
    ):
        arguments.choose_loss(Softcapped(), "chunked")


@pytest.fixture
def fake_liger(monkeypatch):
    """A stand-in for liger_kernel with Liger's call signature (``loss(weight, input, target, bias)``),
    computing the cross-entropy the plain way, recording its calls: the wiring is tested here, the
    Triton kernel itself needs a CUDA GPU."""
    import sys
    import types

    calls = []

    class LigerFusedLinearCrossEntropyLoss:
        def __init__(self, ignore_index=-100, reduction="mean"):
            self.ignore_index, self.reduction = ignore_index, reduction

        def __call__(self, lin_weight, _input, target, bias=None):
            calls.append((self.ignore_index, self.reduction, tuple(_input.shape)))
            logits = torch.nn.functional.linear(_input, lin_weight, bias).float()
            return torch.nn.functional.cross_entropy(
                logits, target, ignore_index=self.ignore_index, reduction=self.reduction
            )

    from importlib.machinery import ModuleSpec

    package = types.ModuleType("liger_kernel")
    package.__spec__ = ModuleSpec("liger_kernel", None)
    transformers_module = types.ModuleType("liger_kernel.transformers")
    transformers_module.LigerFusedLinearCrossEntropyLoss = LigerFusedLinearCrossEntropyLoss
    package.transformers = transformers_module
    monkeypatch.setitem(sys.modules, "liger_kernel", package)
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", transformers_module)
    return calls


def test_the_liger_kernel_gets_the_hidden_states_and_gives_the_standard_loss(fake_liger):
    standard = tiny_qwen3()
    liger = copy.deepcopy(standard)
    use_chunked_loss(liger, kernel="liger")
    standard.train()
    liger.train()
    expected = standard(**batch()).loss
    found = liger(**batch()).loss
    assert found.item() == pytest.approx(expected.item(), rel=1e-6)
    assert fake_liger == [(-100, "sum", (3 * 40, 64))]
    expected.backward()
    found.backward()
    for name, gradient in gradients(standard).items():
        torch.testing.assert_close(gradients(liger)[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


def test_auto_picks_liger_only_on_a_cuda_gpu_where_it_is_installed(monkeypatch, fake_liger):
    from trainer.core import arguments
    from trainer.errors import TrainerError

    assert arguments.choose_loss(tiny_qwen3(), "auto", "cpu") == "chunked"
    monkeypatch.setattr(arguments, "cuda_available", lambda: True)
    assert arguments.choose_loss(tiny_qwen3(), "auto", "auto") == "liger"
    assert arguments.choose_loss(tiny_qwen3(), "liger", "auto") == "liger"
    monkeypatch.setattr(arguments, "installed", lambda module: False)
    assert arguments.choose_loss(tiny_qwen3(), "auto", "auto") == "chunked"
    with pytest.raises(TrainerError, match=r"liger-kernel is not installed: pip install"):
        arguments.choose_loss(tiny_qwen3(), "liger", "auto")
    monkeypatch.setattr(arguments, "cuda_available", lambda: False)
    with pytest.raises(TrainerError, match="liger, which needs a CUDA GPU and none is in use"):
        arguments.choose_loss(tiny_qwen3(), "liger", "auto")
