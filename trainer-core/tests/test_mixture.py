"""Data mixtures: several sources, each through its own profile, drawn by weight or repeated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.config import TrainerConfig
from trainer.core.data_stage import load_rows, resolve_sources, tokenize
from trainer.errors import TrainerError
from trainer.testing import tiny_qwen3, tiny_tokenizer

CHAT_ROWS = [{"prompt": f"Say hello to {name}", "response": f"Hello {name}!"} for name in "ABCDEFGHIJKL"]
MATH_ROWS = [
    {"question": f"What is {a} plus {b}?", "answer": f"{a} and {b} make {a + b}.\n#### {a + b}"}
    for a in range(1, 5)
    for b in range(1, 5)
]


def write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tokenizer():
    texts = [row["prompt"] + " " + row["response"] for row in CHAT_ROWS]
    texts += [row["question"] + " " + row["answer"] + " Step Answer:" for row in MATH_ROWS]
    return tiny_tokenizer(texts * 3 + ["You are a helpful assistant. Reason step by step."])


def mixture_config(tmp_path: Path, *sources: dict, **data) -> TrainerConfig:
    return TrainerConfig.from_dict(
        {
            "data": {"mixture": list(sources), "max_length": 256, **data},
            "inference": {"num_samples": 2},
            "system": {"base_dir": str(tmp_path)},
        }
    )


def prepare(config: TrainerConfig, tokenizer, messages: list[str] | None = None):
    sources = resolve_sources(config, Path(config.system.base_dir))
    rows = load_rows(config, sources, 42, (messages if messages is not None else []).append)
    data = tokenize(rows, config, tokenizer=tokenizer, sources=sources, hyper=config.hyperparams)
    return sources, rows, data


@pytest.fixture
def files(tmp_path):
    return write_rows(tmp_path / "math.jsonl", MATH_ROWS), write_rows(tmp_path / "chat.jsonl", CHAT_ROWS)


def test_each_source_is_read_by_its_own_profile_and_reported(tmp_path, files, tokenizer):
    math, chat = files
    config = mixture_config(
        tmp_path,
        {"path": math, "profile": "regime3", "weight": 0.5},
        {"path": chat, "profile": "chat", "weight": 0.5},
    )
    messages: list[str] = []
    sources, rows, data = prepare(config, tokenizer, messages)

    assert [(s.name, s.profile_name) for s in sources] == [("math", "regime3"), ("chat", "chat")]
    assert [len(part) for part in rows.previews] == [2, 2]  # held back from every source
    assert any("rows of math" in line for line in messages)
    report = data.report.to_dict()
    assert [source["name"] for source in report["sources"]] == ["math", "chat"]
    math_report, chat_report = (source["report"] for source in report["sources"])
    assert math_report["rows_read"] == len(MATH_ROWS) and chat_report["rows_read"] == len(CHAT_ROWS)
    assert sum(source["share"] for source in report["sources"]) == pytest.approx(1.0, abs=1e-3)
    assert report["trainable_tokens"] == sum(source["trainable_tokens"] for source in report["sources"])
    assert report["examples"] == len(data.train_set)
    text = data.report.format()
    assert "source math (regime3, weight 0.50)" in text and "of the trained tokens" in text
    # Each example was rendered by its source's profile: regime3's answers, chat's replies.
    decoded = [tokenizer.decode(ids) for ids in data.train_set["input_ids"]]
    assert any("Answer:" in text for text in decoded)
    assert any("Hello" in text and "Answer:" not in text for text in decoded)


def test_weights_draw_a_mixture_that_is_the_same_for_the_same_seed(tmp_path, files, tokenizer):
    math, chat = files
    config = mixture_config(
        tmp_path,
        {"path": math, "profile": "regime3", "weight": 0.8},
        {"path": chat, "profile": "chat", "weight": 0.2},
    )
    _, _, first = prepare(config, tokenizer)
    _, _, second = prepare(config, tokenizer)
    assert first.train_set["input_ids"] == second.train_set["input_ids"]
    examples = {source["name"]: source["examples"] for source in first.report.sources}
    assert examples["math"] > 2 * examples["chat"]


def test_repeats_take_whole_passes(tmp_path, files, tokenizer):
    math, chat = files
    config = mixture_config(
        tmp_path,
        {"path": math, "profile": "regime3", "repeat": 1},
        {"path": chat, "profile": "chat", "repeat": 3},
    )
    _, _, data = prepare(config, tokenizer)
    kept = {source["name"]: source["report"]["examples"] for source in data.report.sources}
    drawn = {source["name"]: source["examples"] for source in data.report.sources}
    assert drawn == {"math": kept["math"], "chat": 3 * kept["chat"]}
    assert "source chat (chat, x3)" in data.report.format()


def test_packing_works_across_sources(tmp_path, files, tokenizer):
    math, chat = files
    config = mixture_config(
        tmp_path,
        {"path": math, "profile": "regime3"},
        {"path": chat, "profile": "chat"},
        packing=True,
    )
    _, _, data = prepare(config, tokenizer)
    report = data.report
    assert report.packed_sequences == len(data.train_set) < report.examples
    packed_tokens = sum(len(ids) for ids in data.train_set["input_ids"])
    assert packed_tokens == report.tokens == sum(source["tokens"] for source in report.sources)


def test_changing_a_weight_tokenizes_nothing_again(tmp_path, files, tokenizer, monkeypatch):
    from trainer.data import pipeline

    math, chat = files
    calls = []
    original = pipeline._tokenize_rows

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_tokenize_rows", counting)
    sources = [
        {"path": math, "profile": "regime3", "weight": 0.5},
        {"path": chat, "profile": "chat", "weight": 0.5},
    ]
    prepare(mixture_config(tmp_path, *sources), tokenizer)
    assert calls  # the first run tokenized
    calls.clear()
    sources[1]["weight"] = 0.1
    _, _, data = prepare(mixture_config(tmp_path, *sources), tokenizer)
    assert calls == []  # read from datasets' cache, per source
    weights = {source["name"]: source["weight"] for source in data.report.sources}
    assert weights == {"math": 0.8333, "chat": 0.1667}


def test_a_stop_sequence_of_one_source_inside_another_source_s_targets_is_refused(tmp_path, files):
    from trainer.core.data_stage import check_stops_across

    math, _ = files
    chat = write_rows(tmp_path / "chat.jsonl", [{"prompt": "Two lines?", "response": "One.\n\nTwo."}] * 4)
    config = mixture_config(tmp_path, {"path": math, "profile": "regime3"}, {"path": chat, "profile": "chat"})
    sources = resolve_sources(config, tmp_path)
    rows = load_rows(config, sources, 42, lambda line: None)
    with pytest.raises(TrainerError) as raised:
        check_stops_across(sources, rows)
    message = str(raised.value)
    assert "'\\n\\n' of source 'math' (data.mixture[0])" in message
    assert "source 'chat' (data.mixture[1]) (row 1)" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"path": "chat.jsonl", "profile": "regim3"}, r"source 'chat' \(data\.mixture\[1\]\): .*'regime3'"),
        ({"path": "missing.jsonl"}, r"source 'missing' \(data\.mixture\[1\]\): dataset file .* not found"),
    ],
)
def test_a_bad_source_is_named_in_one_line(tmp_path, files, tokenizer, source, expected):
    math, _ = files
    config = mixture_config(tmp_path, {"path": math, "profile": "regime3"}, source)
    with pytest.raises(TrainerError, match=expected) as raised:
        prepare(config, tokenizer)
    assert "\n" not in str(raised.value)


def test_a_source_with_no_valid_row_is_named(tmp_path, files, tokenizer):
    math, _ = files
    bad = write_rows(tmp_path / "bad.jsonl", [{"unrelated": "field"}] * 6)
    config = mixture_config(tmp_path, {"path": math, "profile": "regime3"}, {"path": bad}, skip_invalid=True)
    with pytest.raises(TrainerError, match=r"^source 'bad' \(data\.mixture\[1\]\): "):
        prepare(config, tokenizer)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer) -> Path:
    directory = tmp_path_factory.mktemp("mixture-model")
    tokenizer.save_pretrained(directory)
    tiny_qwen3(tokenizer, max_position_embeddings=512).save_pretrained(directory)
    return directory


def test_a_mixture_run_previews_each_source_and_saves_the_union_of_stops(tmp_path, files, model_dir):
    from trainer.core import TrainerEngine
    from trainer.generation import SavedRun, generation_defaults

    math, chat = files
    config = mixture_config(
        tmp_path,
        {"path": math, "profile": "regime3", "weight": 0.6},
        {"path": chat, "name": "greetings", "profile": "chat", "weight": 0.4},
    )
    config.model.model_path = str(model_dir)
    config.output.output_dir = str(tmp_path / "out")
    config.hyperparams.max_steps = 4
    config.hyperparams.batch_size = 4
    config.inference.eval_steps = 2
    config.inference.max_new_tokens = 8
    messages: list[str] = []
    result = TrainerEngine(on_message=messages.append).run_job(config)

    assert result.status == "completed"
    assert any("Plan: profiles 'regime3' (math), 'chat' (greetings)" in line for line in messages)
    out = tmp_path / "out"
    status = json.loads((out / "status.json").read_text())
    assert set(status["previews"]["sources"]) == {"math", "greetings"}
    assert status["previews"]["sources"]["math"]["profile"] == "regime3"
    assert {sample["source"] for sample in status["previews"]["samples"]} == {"math", "greetings"}
    assert all(set(entry["sources"]) == {"math", "greetings"} for entry in status["preview_history"])
    rounds = [json.loads(line) for line in (out / "previews.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in rounds] == [0, 2, 4] and all("sources" in entry for entry in rounds)
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["trainer_stop_strings"] == ["</reasoning>", "\n\n"]  # regime3's; chat has none
    run = json.loads((out / "trainer_run.json").read_text())
    assert [source["profile"] for source in run["config"]["data"]["mixture"]] == ["regime3", "chat"]
    assert [source["name"] for source in run["data"]["sources"]] == ["math", "greetings"]
    # generate and eval default to the first source's profile; --profile picks another source's.
    saved = SavedRun.read(out)
    assert generation_defaults(saved).profile.name == "regime3"
    chosen = generation_defaults(saved, profile="greetings")
    assert chosen.profile.name == "chat" and chosen.stop_sequences == ["</reasoning>", "\n\n"]
