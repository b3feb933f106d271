"""Structured conversations through the command line: preview, run --dry-run, generate.

Rows with tools, tool calls, tool results and ShareGPT function turns are
previewed with the real Qwen3 template (../shared/models/qwen3-tokenizer);
rows that break a conversation rule are one error line naming the row and the
message; ``generate`` checks its arguments before it loads a model.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

QWEN3_TOKENIZER = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "qwen3-tokenizer"

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
ANSWER = "Yes: it is 3 C and raining in Oslo."


def tool_row(call: dict | None = None, *, result: bool = True) -> dict:
    """A user question, a call to get_weather, its result (unless ``result=False``), the answer."""
    messages = [
        {"role": "user", "content": "Do I need a coat in Oslo today?"},
        {"role": "assistant", "content": "", "tool_calls": [call or CALL]},
        {"role": "tool", "name": "get_weather", "content": '{"temp_c": 3, "sky": "rain"}'},
        {"role": "assistant", "content": ANSWER},
    ]
    return {"messages": messages if result else messages[:2] + messages[3:], "tools": [WEATHER]}


MISSING = "message 1 (assistant) calls get_weather but the tool result is missing"
BAD_ROWS = {
    "tool result missing": (tool_row(result=False), MISSING),
    "bad JSON arguments": (
        tool_row({"function": {"name": "get_weather", "arguments": '{"city": Oslo}'}}),
        "message 1 (assistant) tool call 1 ('get_weather') has arguments that are not valid JSON",
    ),
    "unknown tool": (
        tool_row({"function": {"name": "get_wether", "arguments": {"city": "Oslo"}}}),
        "message 1 (assistant) calls 'get_wether', which is not in the conversation's tools",
    ),
}  # fmt: skip


def qwen3() -> str:
    assert QWEN3_TOKENIZER.is_dir(), (
        f"{QWEN3_TOKENIZER} is missing: the tests need ../shared/models/qwen3-tokenizer beside the repository"
    )
    return str(QWEN3_TOKENIZER)


def write_rows(path: Path, *rows: dict) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def one_error_line(result) -> str:
    """The command failed as a user error: exit 2, no traceback, exactly one ``Error:`` line (the last)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("Error:")] == lines[-1:], result.stderr
    return lines[-1]


TOKEN_LINE = re.compile(r"^ *(\d+) (>>|  ) +(\d+)  (.+)$")


def token_table(stdout: str) -> list[tuple[str, bool]]:
    """``(token text, trained)`` for each row of preview's token table, in order."""
    table = stdout.split("=== tokens of example 1 (row 1) ===\n", 1)[1].splitlines()
    assert re.fullmatch(r"\d+ tokens, \d+ trained \(marked >>\)", table[0])
    rows = [TOKEN_LINE.match(line) for line in table[1:] if line.strip()]
    assert all(rows), table
    assert [int(row.group(1)) for row in rows] == list(range(len(rows)))
    return [(ast.literal_eval(row.group(4)), row.group(2) == ">>") for row in rows]


def runs(tokens: list[tuple[str, bool]], trained: bool) -> list[str]:
    """The text of each maximal run of trained (or untrained) tokens."""
    texts, current = [], None
    for text, flag in tokens:
        if flag == trained:
            current = (current or "") + text
        elif current is not None:
            texts.append(current)
            current = None
    return texts + ([current] if current is not None else [])


def test_preview_tokens_mark_the_call_and_the_answer_not_the_result(run_trainer, tmp_path: Path):
    rows = write_rows(tmp_path / "rows.jsonl", tool_row())
    result = run_trainer(
        "preview", "--profile", "chat", "--dataset", str(rows), "--model", qwen3(), "--tokens"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\n# Tools\n\nYou may call one or more functions" in out  # the Qwen3 template's own block
    assert "<tools>\n" + json.dumps(WEATHER) + "\n</tools>" in out
    messages = out.split("--- messages ---\n", 1)[1].split("--- chat-formatted text", 1)[0]
    assert '[assistant]\n(tool call) {"name": "get_weather", "arguments": {"city": "Oslo"}}\n' in messages
    assert '[tool get_weather]\n{"temp_c": 3, "sky": "rain"}\n' in messages

    tokens = token_table(out)
    text = out.split(f"the chat template of {qwen3()}) ---\n", 1)[1].split("\n=== tokens", 1)[0]
    assert "".join(token for token, _ in tokens) == text  # the table covers the shown text, in order
    assert runs(tokens, trained=True) == [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>',
        f"<think>\n\n</think>\n\n{ANSWER}<|im_end|>",
    ]
    untrained = "".join(runs(tokens, trained=False))
    assert "Do I need a coat in Oslo today?" in untrained
    assert '<tool_response>\n{"temp_c": 3, "sky": "rain"}\n</tool_response>' in untrained
    assert "# Tools" in untrained and "You are a helpful assistant." in untrained


def test_preview_json_has_the_tools_and_the_text_transformers_renders(run_trainer, tmp_path: Path):
    from transformers import AutoTokenizer

    rows = write_rows(tmp_path / "rows.jsonl", tool_row())
    result = run_trainer("preview", "--profile", "chat", "--dataset", str(rows), "--model", qwen3(), "--json")
    assert result.returncode == 0, result.stderr
    example = json.loads(result.stdout)["examples"][0]
    assert example["tools"] == [WEATHER]
    assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    tokenizer = AutoTokenizer.from_pretrained(qwen3(), local_files_only=True)
    expected = tokenizer.apply_chat_template(example["messages"], tools=example["tools"], tokenize=False)
    assert example["text"] == expected
    assert "<tool_call>" in example["text"] and "<tool_response>" in example["text"]


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_preview_names_the_row_and_message_that_break_a_rule(run_trainer, tmp_path: Path, case):
    row, message = BAD_ROWS[case]
    rows = write_rows(tmp_path / "bad.jsonl", row)
    result = run_trainer("preview", "--profile", "chat", "--dataset", str(rows), "--model", qwen3())
    line = one_error_line(result)
    assert len(result.stderr.strip().splitlines()) == 1
    assert line.startswith(f"Error: {rows} row 1: ")
    assert message in line and "data.skip_invalid=true" in line


def test_run_dry_run_stops_on_a_bad_row_and_with_skip_invalid_counts_it(run_trainer, tmp_path: Path):
    bad = write_rows(tmp_path / "bad.jsonl", BAD_ROWS["tool result missing"][0])
    result = run_trainer("run", "--dry-run", "--profile", "chat", "--dataset", str(bad))
    line = one_error_line(result)
    assert f"{bad} row 1: " in line and BAD_ROWS["tool result missing"][1] in line

    mixed = write_rows(
        tmp_path / "mixed.jsonl",
        tool_row(),
        BAD_ROWS["bad JSON arguments"][0],
        tool_row(),
        BAD_ROWS["unknown tool"][0],
    )
    skipped = run_trainer(
        "run", "--dry-run", "--profile", "chat", "--dataset", str(mixed), "--set", "data.skip_invalid=true"
    )
    assert skipped.returncode == 0, skipped.stderr
    assert "rows read 4; invalid skipped 2;" in skipped.stdout
    assert "examples 2:" in skipped.stdout
    assert "Dry run: nothing trained" in skipped.stdout


def test_sharegpt_function_call_and_observation_preview_with_qwen3(run_trainer, tmp_path: Path):
    row = {
        "conversations": [
            {"from": "human", "value": "Do I need a coat in Oslo today?"},
            {
                "from": "function_call",
                "value": json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}}),
            },
            {"from": "observation", "value": '{"temp_c": 3}'},
            {"from": "gpt", "value": ANSWER},
        ],
        "tools": json.dumps([WEATHER]),
    }
    rows = write_rows(tmp_path / "sharegpt.jsonl", row)
    result = run_trainer("preview", "--profile", "chat", "--dataset", str(rows), "--model", qwen3(), "--json")
    assert result.returncode == 0, result.stderr
    example = json.loads(result.stdout)["examples"][0]
    assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert example["messages"][2]["tool_calls"] == [CALL]
    text = example["text"]
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n'
        "</tool_call><|im_end|>\n" in text
    )
    assert '<|im_start|>user\n<tool_response>\n{"temp_c": 3}\n</tool_response><|im_end|>\n' in text
    assert "<tools>\n" + json.dumps(WEATHER) + "\n</tools>" in text


GENERATE_ERRORS = {
    "no prompt": ([], "nothing to answer: give a PROMPT, or a conversation with --messages"),
    "messages not JSON": (["--messages", "broken.json"], "--messages file 'broken.json' is not valid JSON"),
    "tools not a list": (["--tools", "tool.json", "Hi"], "--tools tool.json holds dict; give a JSON list"),
    "ends with assistant": (["--messages", "answered.json"], "in answered.json ends with an assistant turn"),
    "breaks a rule": (["--messages", "unanswered.json"], MISSING),
}  # fmt: skip


@pytest.mark.parametrize("case", list(GENERATE_ERRORS))
def test_generate_checks_its_arguments_before_loading_a_model(run_trainer, tmp_path: Path, case):
    (tmp_path / "broken.json").write_text('[{"role": "user",', encoding="utf-8")
    (tmp_path / "tool.json").write_text(json.dumps(WEATHER), encoding="utf-8")
    (tmp_path / "answered.json").write_text(json.dumps(tool_row()["messages"]), encoding="utf-8")
    unanswered = {"messages": tool_row(result=False)["messages"][:2] + [{"role": "user", "content": "?"}]}
    (tmp_path / "unanswered.json").write_text(json.dumps(unanswered), encoding="utf-8")
    (tmp_path / "empty-model").mkdir()
    args, message = GENERATE_ERRORS[case]
    result = run_trainer("generate", "--model", "empty-model", *args)
    line = one_error_line(result)
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in line


def test_preview_prompts_carry_the_rows_tools_and_drop_the_reply():
    from trainer.monitoring.previews import preview_prompts
    from trainer.profiles import get_profile

    calling = {"messages": tool_row()["messages"][:2], "tools": [WEATHER["function"]]}  # ends with the call
    rows = [tool_row(), BAD_ROWS["unknown tool"][0], calling, {"prompt": "2 + 3?", "response": "5"}]
    prompts = preview_prompts(rows, get_profile("chat", {}), "SYSTEM", [], count=3)
    assert len(prompts) == 3  # the invalid row is skipped
    first, second, plain = prompts
    assert first.tools == [WEATHER] and second.tools == [WEATHER]  # given without the wrapper, normalized
    assert plain.tools is None and plain.expected == "5"
    assert [m["role"] for m in first.messages] == ["system", "user", "assistant", "tool"]
    assert first.messages[0]["content"] == "SYSTEM"
    assert first.messages[2]["tool_calls"] == [CALL]
    assert first.messages[3]["content"] == '{"temp_c": 3, "sky": "rain"}'
    assert first.expected is None
    assert [m["role"] for m in second.messages] == ["system", "user"]
