"""Loading training rows: every source kind, the validation split, the limit, and clear errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets
import pytest

from trainer.data.loading import ROW_COLUMN, SAMPLE_LABEL, load_raw_datasets, load_rows, source_label
from trainer.data.sample import sample_rows
from trainer.data.sources import DatasetError
from trainer.errors import TrainerError

ROWS = [{"prompt": f"question {i}", "response": f"answer {i}"} for i in range(1, 11)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def user_rows(dataset) -> list[dict]:
    return [{k: v for k, v in row.items() if k != ROW_COLUMN} for row in dataset]


@pytest.fixture
def cache(tmp_path: Path) -> str:
    return str(tmp_path / "cache")


def test_jsonl_rows_keep_their_order_and_numbers(tmp_path, cache):
    path = write_jsonl(tmp_path / "train.jsonl", ROWS)
    dataset = load_rows(str(path), cache_dir=cache)
    assert user_rows(dataset) == ROWS
    assert list(dataset[ROW_COLUMN]) == list(range(1, 11))
    assert source_label(dataset) == str(path)
    assert dataset.cache_files  # file-backed, so tokenizing it can be cached


@pytest.mark.parametrize("layout", ["list", "wrapped"])
def test_json_file_as_a_list_or_wrapped_in_an_object(tmp_path, cache, layout):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(ROWS if layout == "list" else {"data": ROWS}), encoding="utf-8")
    assert user_rows(load_rows(str(path), cache_dir=cache)) == ROWS


def test_csv_file(tmp_path, cache):
    path = tmp_path / "train.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["prompt", "response"])
        writer.writeheader()
        writer.writerows(ROWS)
    assert user_rows(load_rows(str(path), cache_dir=cache)) == ROWS


def test_parquet_file(tmp_path, cache):
    path = tmp_path / "train.parquet"
    datasets.Dataset.from_list(ROWS).to_parquet(str(path))
    assert user_rows(load_rows(str(path), cache_dir=cache)) == ROWS


def test_directory_saved_by_datasets(tmp_path):
    single = tmp_path / "single"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(single))
    assert user_rows(load_rows(str(single))) == ROWS

    splits = tmp_path / "splits"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS), "test": datasets.Dataset.from_list(ROWS[:2])}
    ).save_to_disk(str(splits))
    assert user_rows(load_rows(str(splits))) == ROWS

    no_train = tmp_path / "no_train"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(no_train))
    with pytest.raises(DatasetError, match=r"no 'train' split.*no_train/test"):
        load_rows(str(no_train))


def test_hub_names_go_to_load_dataset(monkeypatch):
    calls = []

    def fake_load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        return datasets.Dataset.from_list(ROWS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    dataset = load_rows("openai/gsm8k")
    assert calls == [("openai/gsm8k", {"split": "train", "cache_dir": None})]
    assert source_label(dataset) == "openai/gsm8k"


def test_no_dataset_means_the_built_in_sample():
    train, validation = load_raw_datasets(None)
    assert validation is None
    assert len(train) == len(sample_rows())
    assert source_label(train) == SAMPLE_LABEL


def test_example_limit_keeps_the_first_rows(tmp_path, cache):
    path = write_jsonl(tmp_path / "train.jsonl", ROWS)
    train, _ = load_raw_datasets(str(path), example_limit=3, cache_dir=cache)
    assert user_rows(train) == ROWS[:3]
    sample, _ = load_raw_datasets(None, example_limit=5)
    assert user_rows(sample) == sample_rows()[:5]


def test_validation_split_is_seeded_and_keeps_row_numbers(tmp_path, cache):
    path = write_jsonl(tmp_path / "train.jsonl", ROWS)
    train, validation = load_raw_datasets(str(path), validation_split=0.2, seed=3, cache_dir=cache)
    assert (len(train), len(validation)) == (8, 2)
    assert sorted([*train[ROW_COLUMN], *validation[ROW_COLUMN]]) == list(range(1, 11))
    for row in validation:  # the row number still points at the row's place in the file
        assert row["prompt"] == f"question {row[ROW_COLUMN]}"
    again, again_validation = load_raw_datasets(str(path), validation_split=0.2, seed=3, cache_dir=cache)
    assert list(again_validation[ROW_COLUMN]) == list(validation[ROW_COLUMN])
    assert list(train[ROW_COLUMN]) == list(again[ROW_COLUMN])
    other = {
        tuple(load_raw_datasets(str(path), validation_split=0.2, seed=s, cache_dir=cache)[1][ROW_COLUMN])
        for s in range(4, 10)
    }
    assert len(other | {tuple(validation[ROW_COLUMN])}) > 1
    assert "validation part" in source_label(validation)


def test_validation_file(tmp_path, cache):
    train_path = write_jsonl(tmp_path / "train.jsonl", ROWS)
    validation_path = write_jsonl(tmp_path / "valid.jsonl", ROWS[:4])
    train, validation = load_raw_datasets(
        str(train_path), validation_path=str(validation_path), example_limit=3, cache_dir=cache
    )
    assert len(train) == 3
    assert user_rows(validation) == ROWS[:3]
    assert source_label(validation) == str(validation_path)


def test_a_split_that_leaves_no_training_rows_is_an_error(tmp_path, cache):
    path = write_jsonl(tmp_path / "train.jsonl", ROWS[:1])
    with pytest.raises(TrainerError, match="leaves no training rows. Lower data.validation_split"):
        load_raw_datasets(str(path), validation_split=0.5, cache_dir=cache)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_bad_json_line_names_the_file_and_line(tmp_path, cache):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1]) + "\n" + '{"prompt": "x", \n')
    with pytest.raises(DatasetError) as exc:
        load_rows(str(path), cache_dir=cache)
    assert one_line(exc).startswith(f"{path} line 4: invalid JSON")


def test_a_line_that_is_not_an_object_names_the_line(tmp_path, cache):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n[1, 2]\n")
    with pytest.raises(DatasetError) as exc:
        load_rows(str(path), cache_dir=cache)
    assert one_line(exc) == f"{path} line 2: expected a JSON object, got list"


def test_bad_json_file_names_the_line(tmp_path, cache):
    path = tmp_path / "train.json"
    path.write_text('[\n  {"prompt": "a", "response": "b"},\n  {"prompt": "c" "response": "d"}\n]\n')
    with pytest.raises(DatasetError) as exc:
        load_rows(str(path), cache_dir=cache)
    assert one_line(exc).startswith(f"{path} line 3: invalid JSON")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "not found. Pass an existing file"),
        ("empty.jsonl", "", "has no rows"),
        ("train.txt", "hello", "unsupported extension '.txt'"),
        ("./nowhere", None, "not found. Pass an existing file or directory"),
    ],
)
def test_unreadable_sources_are_trainer_errors(tmp_path, cache, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DatasetError) as exc:
        load_rows(str(path) if not name.startswith("./") else name, cache_dir=cache)
    assert message in one_line(exc)
    assert isinstance(exc.value, TrainerError)
