"""Hostile dataset rows and files: a valid result, a one-line TrainerError or a counted skip.

Random rows (real field names and junk ones; None, numbers, bools, lists, nested
dicts, huge strings, control characters, stop sequences and chat markers) go
through every bundled profile, the chat template and the tokenizing pipeline;
random bytes and junk lines go through the file readers.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, reject, settings
from hypothesis import strategies as st

from trainer.data.chat_template import IGNORE_INDEX, tokenize_conversation
from trainer.data.conversation import build_messages, effective_stop_sequences
from trainer.data.loading import ROW_COLUMN, load_raw_datasets
from trainer.data.pipeline import prepare_dataset
from trainer.data.sources import iter_rows
from trainer.errors import TrainerError
from trainer.profiles import get_profile
from trainer.profiles.base import DataProfile
from trainer.profiles.fields import (
    INPUT_FIELD,
    MESSAGES_FIELD,
    PROMPT_FIELDS,
    REASONING_FIELDS,
    TARGET_FIELDS,
)

# Hypothesis keeps caches in .hypothesis/ under the working directory: not in the repository.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "trainer-hypothesis"))
SETTINGS = settings(
    max_examples=100,
    deadline=timedelta(seconds=5),  # a hang (say, a regex backtracking on a huge string) fails
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FIELDS = [*PROMPT_FIELDS, INPUT_FIELD, *TARGET_FIELDS, *REASONING_FIELDS, MESSAGES_FIELD]
SYSTEM = "Be brief."
_files = itertools.count()


@functools.cache
def tokenizer() -> Any:
    """A byte-level BPE over a few words, without a chat template (so ChatML is used)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(["system user assistant", "Be brief.", "question answer"] * 5, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )


@functools.cache
def bundled_profiles() -> dict[str, DataProfile]:
    """The core's chat profile, and emoji_think and regime3 where their packages are installed."""
    profiles = {"chat": get_profile("chat")}
    for name in ("emoji_think", "regime3"):
        try:
            profiles[name] = get_profile(name)
        except TrainerError:
            pass
    return profiles


def profile_named(name: str) -> DataProfile:
    """The bundled profile ``name``, or chat where its package is not installed."""
    return bundled_profiles().get(name) or bundled_profiles()["chat"]


PROFILES = st.sampled_from(["chat", "emoji_think", "regime3"])
SNIPPETS = st.sampled_from(
    [
        "<|im_end|>", "<|im_start|>", "<|endoftext|>", "\n\n", "\n", "<think>", "</think>", "</reasoning>",
        "####", "#### 42", "Step 1:", "Answer:", "The answer is ", "🤔🤔🤔🤔", "<<4*2=8>>", "{{ x }}",
        "{% if %}", "\x00", "\r", "\x1b[2J", "\u2028", "\ufeff", "\ud800", "é", "𝔘", " ", "42",
    ]
)  # fmt: skip
# Built on demand: hypothesis would otherwise print every one of them in the strategy's repr.
HUGE = st.sampled_from(
    [("x", 100_000, ""), ("#### a", 50_000, "b"), ("\n", 20_000, ""), ("🤔", 20_000, "")]
).map(lambda spec: spec[0] + (" " if spec[2] else spec[0]) * spec[1] + spec[2])


def texts(surrogates: bool = True) -> st.SearchStrategy[str]:
    """Short random text, stop sequences, chat markers and control characters, now and then huge."""
    characters = st.characters(exclude_categories=() if surrogates else ("Cs",))
    pieces = st.one_of(SNIPPETS, st.text(characters, max_size=8))
    if not surrogates:
        pieces = pieces.filter(lambda text: not re.search("[\ud800-\udfff]", text))
    return st.one_of(st.lists(pieces, max_size=6).map("".join), HUGE)


# An int of more digits than int() and str() convert; built lazily, as its repr() fails too.
HUGE_INT = st.builds(pow, st.just(10), st.just(4400))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_INT,
    st.floats(),
    texts(),
)
MESSAGES = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"role": st.one_of(st.sampled_from(["system", "user", "assistant"]), texts()), "content": SCALARS}
        ),
        SCALARS,
    ),
    max_size=4,
)
VALUES = st.recursive(
    st.one_of(SCALARS, MESSAGES),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts(), inner, max_size=3)),
    max_leaves=8,
)
ROWS = st.dictionaries(st.one_of(st.sampled_from(FIELDS), texts()), VALUES, max_size=6)


def assert_one_line(exc: BaseException) -> None:
    message = str(exc)
    assert message.strip(), repr(exc)
    assert len(message.splitlines()) == 1, message


@SETTINGS
@given(profile=PROFILES, row=ROWS, extra_stops=st.lists(texts(), max_size=2))
@example(profile="regime3", row={"prompt": "q", "answer": "#### a" + " " * 50_000 + "b"}, extra_stops=[])
@example(profile="chat", row={"prompt": 10**4400, "response": "a"}, extra_stops=[])
@example(profile="chat", row={"messages": [10**4400]}, extra_stops=[])
@example(profile="chat", row={"messages": [{"role": 10**4400, "content": "x"}]}, extra_stops=[])
@example(profile="chat", row={"prompt": "q\ud800", "response": "a"}, extra_stops=[])
@example(profile="chat", row={"a\nb": 1, "\x1b[2J": 2}, extra_stops=[])
@example(profile="chat", row={"prompt": "q", "response": "a<|im_end|>b"}, extra_stops=[])
def test_random_rows_through_every_profile(profile: str, row: dict[str, Any], extra_stops: list[str]) -> None:
    profile = profile_named(profile)
    stops = effective_stop_sequences(profile, None) + extra_stops
    try:
        messages = build_messages(profile, row, SYSTEM, stops)
        input_ids, labels = tokenize_conversation(messages, tokenizer())
    except TrainerError as exc:  # InvalidExampleError for a bad row
        event(f"refused: {type(exc).__name__}")
        assert_one_line(exc)
        return
    event("rendered")
    assert messages[-1]["role"] == "assistant"
    assert all(isinstance(message["content"], str) for message in messages)
    assert not any(
        stop and stop in m["content"] for stop in stops for m in messages if m["role"] == "assistant"
    )
    assert len(input_ids) == len(labels) > 0
    assert any(label != IGNORE_INDEX for label in labels)
    try:  # previews ask each held-back row for its answer
        profile.expected_answer(row)
    except TrainerError as exc:
        assert_one_line(exc)


# Columns of one kind each, as a file that loads has; any value may be missing (None).
COLUMN_VALUES = {
    "text": texts(surrogates=False),
    "int": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "float": st.floats(),
    "bool": st.booleans(),
    "texts": st.lists(texts(surrogates=False), max_size=3),
    "messages": st.lists(
        st.fixed_dictionaries(
            {
                "role": st.one_of(st.sampled_from(["system", "user", "assistant"]), texts(surrogates=False)),
                "content": st.one_of(st.none(), texts(surrogates=False)),
            }
        ),
        max_size=4,
    ),
    "struct": st.fixed_dictionaries(
        {"a": st.one_of(st.none(), texts(surrogates=False)), "b": st.integers(0, 9)}
    ),
}


@st.composite
def datasets_of_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = st.one_of(
        st.sampled_from(FIELDS), st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8)
    )
    columns = draw(st.dictionaries(names, st.sampled_from(sorted(COLUMN_VALUES)), min_size=1, max_size=4))
    columns.pop(ROW_COLUMN, None)  # load_rows owns that column; see the file test below
    row = st.fixed_dictionaries(
        {name: st.one_of(st.none(), COLUMN_VALUES[kind]) for name, kind in columns.items()}
    )
    return draw(st.lists(row, min_size=1, max_size=5))


def check_prepared(
    rows: Any, profile: DataProfile, max_length: int, overlength: str, skip_invalid: bool
) -> None:
    count = len(rows)
    try:
        dataset, report = prepare_dataset(
            rows,
            tokenizer=tokenizer(),
            profile=profile,
            system_prompt=SYSTEM,
            stop_sequences=effective_stop_sequences(profile, None),
            max_length=max_length,
            overlength=overlength,
            skip_invalid=skip_invalid,
        )
    except TrainerError as exc:  # an invalid row, an over-length row with "error", nothing left
        event(f"refused: {type(exc).__name__}")
        assert_one_line(exc)
        return
    event("prepared" + (", some skipped or dropped" if report.examples < count else ""))
    assert report.rows_read == count
    assert report.examples == len(dataset) > 0
    assert report.examples + report.invalid_skipped + report.rows_dropped == count
    assert skip_invalid or report.invalid_skipped == 0
    assert overlength == "truncate" or report.truncated == 0
    assert all(len(problem.splitlines()) == 1 for problem in report.problems)
    for tokenized in dataset:
        assert len(tokenized["input_ids"]) == len(tokenized["labels"]) <= max_length
        assert any(label != IGNORE_INDEX for label in tokenized["labels"])


@settings(SETTINGS, max_examples=50)
@given(
    profile=PROFILES,
    rows=datasets_of_rows(),
    max_length=st.integers(min_value=8, max_value=96),
    overlength=st.sampled_from(["drop", "truncate", "error"]),
    skip_invalid=st.booleans(),
)
def test_random_rows_through_the_tokenizing_pipeline(
    profile: str, rows: list[dict[str, Any]], max_length: int, overlength: str, skip_invalid: bool
) -> None:
    from datasets import Dataset

    try:
        dataset = Dataset.from_list(rows)
    except Exception:  # pyarrow cannot hold these rows at all, so no file of them loads either
        reject()
    dataset.info.description = "hostile rows"
    check_prepared(dataset, profile_named(profile), max_length, overlength, skip_invalid)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-rows")


def write(folder: Path, suffix: str, content: bytes) -> Path:
    # A new name each time: datasets caches a file by name and modification time.
    path = folder / f"rows{next(_files)}{suffix}"
    path.write_bytes(content)
    return path


@settings(SETTINGS, max_examples=10)
@given(profile=PROFILES, rows=datasets_of_rows(), skip_invalid=st.booleans())
@example(
    profile="chat",
    rows=[{"prompt": "q", "response": "a", ROW_COLUMN: "not a number"}, {"prompt": "q", "response": "b"}],
    skip_invalid=False,
)
def test_rows_from_a_file_through_the_pipeline(
    folder: Path, profile: str, rows: list[dict[str, Any]], skip_invalid: bool
) -> None:
    path = write(folder, ".jsonl", "".join(json.dumps(row) + "\n" for row in rows).encode())
    try:
        train, _ = load_raw_datasets(str(path), cache_dir=str(folder / "cache"))
    except TrainerError as exc:
        assert_one_line(exc)
        assert str(path) in str(exc)
        return
    assert list(train[ROW_COLUMN]) == list(range(1, len(rows) + 1))
    check_prepared(train, profile_named(profile), 64, "drop", skip_invalid)


GOOD_LINE = json.dumps({"prompt": "question", "response": "answer"}).encode()
JUNK_LINES = st.one_of(
    st.binary(max_size=30).map(lambda data: data.replace(b"\r", b"").replace(b"\n", b"")),
    st.text(max_size=20).map(lambda text: text.replace("\r", "").replace("\n", "").encode()),
    st.sampled_from(
        [
            b"[1, 2]", b"42", b'"text"', b"null", b"{", b'{"prompt": "q",', b"\xff\xfe", b"\xef\xbb\xbf{}",
            b'{"prompt": "\\ud800", "response": "a"}', b'{"prompt": ' + b"9" * 5000 + b', "response": "a"}',
            b'{"a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",  # pyarrow's reader crashes the process on it
            b'{"prompt": NaN, "response": "a"}', b"   ", b"\x00",
        ]
    ),
)  # fmt: skip
JSONL_FILES = st.lists(st.one_of(st.just(GOOD_LINE), JUNK_LINES), min_size=0, max_size=6).map(
    lambda lines: b"\n".join(lines) + b"\n"
)


def bad_line(line: bytes) -> bool:
    """Whether the reader must refuse this line (as the standard library sees it)."""
    if not line.decode("utf-8", errors="surrogateescape").strip():
        return False
    try:
        row = json.loads(line.decode("utf-8"))
        json.dumps(row, ensure_ascii=False).encode("utf-8")  # a lone surrogate is not text
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        return True
    return not isinstance(row, dict)


@settings(SETTINGS, max_examples=30)
@given(content=JSONL_FILES)
@example(content=GOOD_LINE + b"\n\xff\xfe garbage\n")
@example(content=GOOD_LINE + b"\n" + b'{"a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}\n")
def test_junk_in_a_jsonl_file_names_the_file_and_line(folder: Path, content: bytes) -> None:
    path = write(folder, ".jsonl", content)
    lines = content.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    try:
        rows = list(iter_rows(str(path)))
    except TrainerError as exc:
        assert_one_line(exc)
        found = re.match(rf"{re.escape(str(path))} line (\d+): ", str(exc))
        assert found, str(exc)
        assert bad_line(lines[int(found.group(1)) - 1]), str(exc)
    else:
        assert not any(bad_line(line) for line in lines)
        assert all(isinstance(row, dict) for _, row in rows)

    try:
        train, _ = load_raw_datasets(str(path), cache_dir=str(folder / "cache"))
    except TrainerError as exc:
        assert_one_line(exc)
        assert str(path) in str(exc)
    else:
        assert len(train) > 0


@pytest.mark.parametrize(
    ("suffix", "content", "expected"),
    [
        (".json", b'[{"prompt": "q", "response": "a"}, \xff]', "line 1: not UTF-8 text (byte 0xff)"),
        (".json", b"[" * 100_000 + b"]" * 100_000, ": JSON nested too deeply to read"),
        (".json", b'{"rows": [{"prompt": ' + b"9" * 5000 + b"}]}", ": a number of more than 4,300 digits"),
        (".csv", b"prompt,response\nq,\xff\n", "line 2: not UTF-8 text (byte 0xff)"),
        (".csv", b"prompt,response\nq," + b"x" * 200_000 + b"\n", "line 2: field larger than field limit"),
    ],
    ids=["json-bytes", "json-deep", "json-digits", "csv-bytes", "csv-huge-field"],
)
def test_junk_in_json_and_csv_files_is_a_clean_error(
    folder: Path, suffix: str, content: bytes, expected: str
) -> None:
    path = write(folder, suffix, content)
    with pytest.raises(TrainerError) as caught:
        list(iter_rows(str(path)))
    assert_one_line(caught.value)
    assert str(caught.value).startswith(str(path)) and expected in str(caught.value)


@pytest.mark.parametrize("name", ["x" * 5000 + ".jsonl", "x" * 5000], ids=["file", "no-suffix"])
@pytest.mark.parametrize(
    "read", [lambda source: list(iter_rows(source)), load_raw_datasets], ids=["iter_rows", "load"]
)
def test_a_path_the_os_refuses_is_a_clean_error(name: str, read: Any) -> None:
    with pytest.raises(TrainerError, match="cannot be read \\(File name too long\\)") as caught:
        read(name)
    assert_one_line(caught.value)
