"""prepare_dataset: rows to input_ids and labels, over-length and invalid rows, caching, the report."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from trainer.data.chat_template import CHATML_TEMPLATE, IGNORE_INDEX, tokenize_conversation
from trainer.data.conversation import build_messages
from trainer.data.loading import load_raw_datasets
from trainer.data.pipeline import prepare_dataset
from trainer.errors import TrainerError
from trainer.profiles.base import DataProfile, InvalidExampleError, Message
from trainer.profiles.chat import ChatProfile
from trainer.profiles.fields import ACCEPTED_FIELDS
from trainer.testing import tiny_tokenizer as make_tokenizer

SYSTEM = "Be brief."


def tiny_tokenizer():
    """A byte-level BPE over a few words, without a chat template (so ChatML is used)."""
    words = ["system", "user", "assistant", "Be brief.", "question question", "answer answer"]
    return make_tokenizer(words * 10, vocab_size=600)


class CountingProfile(ChatProfile):
    """The chat profile, counting the rows it renders (to see whether tokenizing ran)."""

    calls = 0

    def prepare_messages(self, example: Mapping[str, Any]) -> list[Message]:
        type(self).calls += 1
        return super().prepare_messages(example)


def row(i: int, words: int = 1) -> dict[str, str]:
    return {"prompt": f"question {i}", "response": " ".join(["answer"] * words)}


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def prepare(rows, **overrides):
    options: dict[str, Any] = {
        "tokenizer": tiny_tokenizer(),
        "profile": ChatProfile(),
        "system_prompt": SYSTEM,
        "stop_sequences": [],
        "max_length": 64,
    }
    options.update(overrides)
    return prepare_dataset(rows, **options)


def expected(example: dict[str, str], tokenizer=None) -> tuple[list[int], list[int]]:
    messages = build_messages(ChatProfile(), example, SYSTEM, [])
    return tokenize_conversation(messages, tokenizer or tiny_tokenizer())


def load(tmp_path: Path, rows: list[dict], **options):
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    return load_raw_datasets(path, cache_dir=str(tmp_path / "cache"), **options)


def test_rows_become_input_ids_and_assistant_labels(tmp_path):
    rows = [row(1), row(2, words=3)]
    train, _ = load(tmp_path, rows)
    tokenizer = tiny_tokenizer()
    dataset, report = prepare(train, tokenizer=tokenizer)
    assert tokenizer.chat_template == CHATML_TEMPLATE  # set on the tokenizer, saved with the model
    assert dataset.column_names == ["input_ids", "labels"]
    for example, source in zip(dataset, rows, strict=True):
        assert (example["input_ids"], example["labels"]) == tuple(expected(source))
    lengths = [len(example["input_ids"]) for example in dataset]
    trainable = sum(label != IGNORE_INDEX for example in dataset for label in example["labels"])
    assert (report.rows_read, report.examples, report.tokens, report.trainable_tokens) == (
        2,
        2,
        sum(lengths),
        trainable,
    )
    assert (report.invalid_skipped, report.dropped, report.truncated, report.problems) == (0, {}, 0, [])
    assert trainable == 2 + 4  # "answer" + <|im_end|>, "answer answer answer" + <|im_end|>


def test_overlength_rows_are_dropped_and_counted(tmp_path):
    short = len(expected(row(1))[0])
    train, _ = load(tmp_path, [row(1), row(2, words=40), row(3)])
    dataset, report = prepare(train, max_length=short + 5)
    assert len(dataset) == 2 and report.examples == 2
    assert report.dropped == {f"over max_length={short + 5}": 1}
    assert report.problems == [
        f"row 2: dropped: {len(expected(row(2, words=40))[0])} tokens, over max_length={short + 5}"
    ]
    assert "dropped 1 (over max_length" in report.format()


def test_truncate_cuts_rows_and_drops_those_left_without_a_trainable_token(tmp_path):
    ids, labels = expected(row(2, words=40))
    prompt_length = labels.index(next(label for label in labels if label != IGNORE_INDEX))
    limit = prompt_length + 3
    train, _ = load(tmp_path, [row(1), row(2, words=40), row(3, words=40)])
    dataset, report = prepare(train, max_length=limit, overlength="truncate")
    assert report.truncated == 2 and report.dropped == {} and report.examples == 3
    assert dataset[1]["input_ids"] == ids[:limit] and dataset[1]["labels"] == labels[:limit]
    assert report.tokens == len(expected(row(1))[0]) + 2 * limit
    assert report.problems[0] == f"row 2: truncated from {len(ids)} to {limit} tokens"

    short = row(2)
    limit = len(expected(short)[0])
    long_prompt = {"prompt": " ".join(["question"] * 40), "response": "answer"}
    train, _ = load(tmp_path, [long_prompt, short])
    _, report = prepare(train, max_length=limit, overlength="truncate")
    assert report.dropped == {"no trainable token left": 1} and report.examples == 1
    assert report.problems == [f"row 1: dropped: no trainable token left (of {limit} tokens)"]


def test_overlength_error_names_the_row_its_length_the_limit_and_the_fix(tmp_path):
    length = len(expected(row(3, words=40))[0])
    train, _ = load(tmp_path, [row(1), row(2), row(3, words=40), row(4, words=40)])
    with pytest.raises(TrainerError) as exc:
        prepare(train, max_length=30, overlength="error")
    assert str(exc.value) == (
        f"{tmp_path / 'train.jsonl'} row 3 is {length} tokens, over data.max_length=30 (2 rows are). "
        "Raise data.max_length, or set data.overlength to drop or truncate"
    )


def test_a_row_missing_fields_names_the_row_and_the_accepted_fields(tmp_path):
    train, _ = load(tmp_path, [row(1), {"prompt": "question 2", "text": "no target"}, row(3)])
    with pytest.raises(InvalidExampleError) as exc:
        prepare(train)
    message = str(exc.value)
    assert message.startswith(
        f"{tmp_path / 'train.jsonl'} row 2: row lacks a target (fields present: prompt, text)"
    )
    assert ACCEPTED_FIELDS in message
    assert message.endswith("Fix the row, or set data.skip_invalid=true to skip such rows")
    assert "\n" not in message


def test_skip_invalid_skips_and_counts(tmp_path):
    rows = [row(1), {"question": "no answer"}, row(3), {"response": "no question"}]
    train, _ = load(tmp_path, rows)
    dataset, report = prepare(train, skip_invalid=True)
    assert len(dataset) == 2 and report.invalid_skipped == 2
    assert report.problems[0].startswith("row 2: skipped: row lacks a target")
    assert report.problems[1].startswith("row 4: skipped: row lacks a user turn")


def test_stop_sequence_inside_a_target_is_an_invalid_row(tmp_path):
    train, _ = load(tmp_path, [row(1), {"prompt": "q", "response": "answer STOP here"}])
    with pytest.raises(
        InvalidExampleError, match=r"row 2: the assistant turn contains the stop sequence 'STOP'"
    ):
        prepare(train, stop_sequences=["STOP"])


def test_row_numbers_point_into_the_file_after_a_validation_split(tmp_path):
    rows = [row(i) for i in range(1, 21)]
    rows[13] = {"prompt": "bad row"}
    train, validation = load(tmp_path, rows, validation_split=0.5, seed=0)
    part = train if "bad row" in train["prompt"] else validation
    with pytest.raises(
        InvalidExampleError, match=r"part[^)]*\) row 14: row lacks a target \(fields present: prompt\)"
    ):
        prepare(part)


def test_nothing_left_is_an_error_with_the_fix(tmp_path):
    train, _ = load(tmp_path, [row(1, words=40), {"prompt": "x"}])
    with pytest.raises(TrainerError) as exc:
        prepare(train, max_length=20, skip_invalid=True)
    message = str(exc.value)
    assert "no examples left to train on: 2 rows read, 1 invalid skipped, 1 dropped" in message
    assert "raise data.max_length or set data.overlength=truncate" in message


def test_a_second_run_reads_the_tokenized_rows_from_the_cache(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [row(i) for i in range(1, 31)])
    cache = str(tmp_path / "cache")

    def run(**overrides):
        CountingProfile.calls = 0
        rows, _ = load_raw_datasets(path, cache_dir=cache)
        dataset, report = prepare(rows, profile=CountingProfile(), **overrides)
        return dataset, report, CountingProfile.calls

    first, first_report, calls = run()
    assert calls == 30
    second, second_report, calls = run()
    assert calls == 0  # nothing tokenized again
    assert second.cache_files == first.cache_files
    assert second.to_dict() == first.to_dict()
    assert second_report == first_report

    _, _, calls = run(system_prompt="Another prompt.")
    assert calls == 30  # a different setting is tokenized afresh
    _, _, calls = run(max_length=63)
    assert calls == 30


def test_several_processes_give_the_same_result(tmp_path):
    train, _ = load(tmp_path, [row(i, words=1 + i % 3) for i in range(1, 41)])
    one, one_report = prepare(train)
    # Another system prompt, so the second run cannot come from the first one's cache.
    two, two_report = prepare(train, num_proc=2, system_prompt=SYSTEM + " ")
    assert two_report.examples == 40
    assert len(two.cache_files) == 2  # one cache file per worker process
    assert all("_of_00002" in file["filename"] for file in two.cache_files)
    assert [len(ids) for ids in two["input_ids"]] == [len(ids) + 1 for ids in one["input_ids"]]


def test_report_to_dict_and_format(tmp_path):
    train, _ = load(tmp_path, [row(1), {"prompt": "x"}, row(3, words=40)])
    _, report = prepare(train, max_length=30, skip_invalid=True)
    data = report.to_dict()
    assert data["rows_read"] == 3 and data["invalid_skipped"] == 1 and data["examples"] == 1
    assert data["dropped"] == {"over max_length=30": 1}
    assert json.loads(json.dumps(data)) == data
    text = report.format()
    assert text.splitlines()[0] == f"data: {tmp_path / 'train.jsonl'}"
    assert "rows read 3; invalid skipped 1; dropped 1 (over max_length=30: 1); truncated 0" in text
    assert f"examples 1: {report.tokens} tokens, {report.trainable_tokens} trainable" in text


def test_the_report_counts_rows_with_their_own_system_prompt(tmp_path):
    own = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "question"},
            {"role": "assistant", "content": "answer"},
        ]
    }
    train, _ = load(tmp_path, [row(1), own, own, {"prompt": "x"}])
    _, report = prepare(train, skip_invalid=True)
    assert (report.own_system_prompt, report.to_dict()["own_system_prompt"]) == (2, 2)
    assert "  rows with their own system prompt: 2 (used instead of profile.system_prompt)" in report.format()
    (tmp_path / "plain").mkdir()
    train, _ = load(tmp_path / "plain", [row(1)])
    _, plain = prepare(train)
    assert plain.own_system_prompt == 0 and "own system prompt" not in plain.format()


def test_bad_settings_are_refused():
    with pytest.raises(TrainerError, match="overlength must be one of drop, truncate, error, got 'cut'"):
        prepare(None, overlength="cut")


class BrokenProfile(DataProfile):
    """Returns a conversation without an assistant turn."""

    name = "broken"

    def prepare_messages(self, example: Mapping[str, Any]) -> list[Message]:
        return [{"role": "user", "content": "hi"}]

    def get_stop_sequences(self) -> list[str]:
        return []

    def format_system_prompt(self, base_prompt: str) -> str:
        return base_prompt


def test_malformed_profile_output_is_an_invalid_row(tmp_path):
    train, _ = load(tmp_path, [row(1)])
    with pytest.raises(InvalidExampleError, match="row 1: the last message must be the assistant turn"):
        prepare(train, profile=BrokenProfile())
