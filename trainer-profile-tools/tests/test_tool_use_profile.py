"""Tests of the ``tool_use`` profile: rendering, judging, the bundled sample, Qwen3's template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trainer.conversation import Conversation
from trainer.conversation.tool_calls import reply_text
from trainer.profiles import InvalidExampleError, get_profile
from trainer.testing import ProfileConformance

from trainer_profile_tools import SAMPLE_FILE, ToolUseProfile

QWEN3_TOKENIZER = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "qwen3-tokenizer"

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ADD = {  # the flat layout, without the {"type": "function", "function": ...} wrapper
    "name": "add",
    "description": "Add two numbers.",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
}
CALL_ROW = {
    "question": "What's the weather in Paris?",
    "tools": [WEATHER, ADD],
    "call": {"name": "get_weather", "arguments": {"city": "Paris"}},
}
PARALLEL_ROW = {
    "prompt": "Weather in Paris and Oslo?",
    "tools": json.dumps([WEATHER, ADD]),
    "calls": [
        {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"name": "get_weather", "arguments": {"city": "Oslo"}},
    ],
}
NO_TOOL_ROW = {"question": "Hello!", "tools": [WEATHER, ADD], "answer": "Hello! How can I help?"}
ADD_ROW = {
    "question": "What is 2 + 3?",
    "tools": [ADD, WEATHER],
    "call": {"name": "add", "arguments": {"a": 2, "b": 3}},
}


@pytest.fixture
def profile() -> ToolUseProfile:
    return ToolUseProfile()


def block(name: str, arguments: dict) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


# -- rendering ---------------------------------------------------------------


def test_a_call_row_becomes_the_user_turn_and_a_call_with_the_tools(profile):
    conversation = profile.prepare_messages(CALL_ROW)
    assert isinstance(conversation, Conversation)
    assert conversation.messages == [
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
            ],
        },
    ]
    assert conversation.tools == [WEATHER, {"type": "function", "function": ADD}]


def test_parallel_calls_tools_as_a_json_string_and_arguments_as_json_text_are_normalized(profile):
    conversation = profile.prepare_messages(PARALLEL_ROW)
    assert [tool["function"]["name"] for tool in conversation.tools] == ["get_weather", "add"]
    calls = conversation.messages[-1]["tool_calls"]
    assert [call["function"]["arguments"] for call in calls] == [{"city": "Paris"}, {"city": "Oslo"}]
    assert profile.expected_answer(PARALLEL_ROW) == json.dumps(
        [
            {"arguments": {"city": "Paris"}, "name": "get_weather"},
            {"arguments": {"city": "Oslo"}, "name": "get_weather"},
        ]
    )


def test_a_call_given_as_json_text_and_an_instruction_with_input(profile):
    row = {
        "instruction": "Add these.",
        "input": "2 and 3",
        "tools": [ADD],
        "call": '{"name": "add", "arguments": "{\\"a\\": 2, \\"b\\": 3}"}',
    }
    conversation = profile.prepare_messages(row)
    assert conversation.messages[0]["content"] == "Add these.\n\n2 and 3"
    assert conversation.messages[1]["tool_calls"][0]["function"] == {
        "name": "add",
        "arguments": {"a": 2, "b": 3},
    }


def test_a_no_tool_row_is_answered_in_text_with_the_tools_on_offer(profile):
    conversation = profile.prepare_messages(NO_TOOL_ROW)
    assert conversation.messages[-1] == {"role": "assistant", "content": "Hello! How can I help?"}
    assert conversation.tools is not None
    assert profile.expected_answer(NO_TOOL_ROW) == "Hello! How can I help?"


def test_a_messages_row_is_passed_through_and_has_no_expected_answer(profile):
    row = {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
            },
            {"role": "tool", "name": "get_weather", "content": {"temperature": 18}},
            {"role": "assistant", "content": "It is 18 degrees in Paris."},
        ],
        "tools": [WEATHER],
    }
    conversation = profile.prepare_messages(row)
    assert [message["role"] for message in conversation.messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert conversation.tools == [WEATHER]
    assert profile.expected_answer(row) is None
    assert profile.rate_example(row) == 0.0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**CALL_ROW, "call": {"name": "get_wether", "arguments": {"city": "Paris"}}}, "get_wether"),
        ({"question": "Hi", "call": CALL_ROW["call"]}, "row has no 'tools'.*accepted fields"),
        ({"question": "Hi", "tools": [WEATHER]}, "neither a call nor an answer.*accepted fields"),
        ({"tools": [WEATHER], "call": CALL_ROW["call"]}, "lacks a question.*accepted fields"),
        ({**CALL_ROW, "call": {"name": "get_weather", "arguments": "{city"}}, "not valid JSON"),
        ({**CALL_ROW, "call": None, "calls": []}, "empty list"),
        ({**NO_TOOL_ROW, "answer": block("get_weather", {"city": "Paris"})}, "give the call as 'call'"),
    ],
    ids=[
        "unknown function",
        "no tools",
        "no call or answer",
        "no question",
        "bad arguments",
        "no calls",
        "call in the answer",
    ],
)
def test_rows_the_profile_cannot_read_are_refused_with_the_reason(profile, row, message):
    with pytest.raises(InvalidExampleError, match=message):
        profile.prepare_messages(row)


def test_ratings_prefer_call_rows(profile):
    assert profile.rate_example(CALL_ROW) == 1.0
    assert profile.rate_example(PARALLEL_ROW) == 1.0
    assert profile.rate_example(NO_TOOL_ROW) == 0.5
    assert profile.rate_example({"question": "Hi", "answer": "Hello"}) == 0.0
    assert profile.rate_example({"unrelated": 1}) == 0.0


def test_stop_sequences_and_system_prompt(profile):
    assert profile.get_stop_sequences() == []
    assert profile.format_system_prompt("You are helpful.") == "You are helpful."


def test_the_default_dataset_is_the_bundled_sample(profile):
    assert Path(profile.default_dataset()) == SAMPLE_FILE
    assert SAMPLE_FILE.is_file()


# -- judging ------------------------------------------------------------------


def test_a_well_formed_call_is_parsed_into_canonical_text(profile):
    text = block("get_weather", {"city": "Paris"})
    assert profile.parse_answer(text) == '[{"arguments": {"city": "Paris"}, "name": "get_weather"}]'
    assert profile.check_answer(text, profile.expected_answer(CALL_ROW))


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"\n</tool_call>',
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}',
        "<tool_call>\n[1, 2]\n</tool_call>",
        "",
    ],
    ids=["malformed JSON", "unclosed block", "not a call", "empty"],
)
def test_malformed_or_unclosed_calls_do_not_follow_the_format(profile, text):
    assert profile.parse_answer(text) is None
    assert not profile.check_answer(text, profile.expected_answer(CALL_ROW))


def test_plain_text_never_follows_the_format_and_never_answers_a_call(profile):
    assert profile.parse_answer("It is sunny in Paris.") is None
    assert profile.parse_answer("") is None
    assert not profile.check_answer("It is sunny in Paris.", profile.expected_answer(CALL_ROW))


def test_a_no_tool_rows_reply_is_judged_as_text(profile):
    # No call is the right answer here: check_answer compares the text, and a call is wrong.
    expected = profile.expected_answer(NO_TOOL_ROW)
    reply = profile.prepare_messages(NO_TOOL_ROW).messages[-1]["content"]
    assert profile.check_answer(reply, expected)
    assert not profile.check_answer(block("get_weather", {"city": "Oslo"}), expected)


def test_argument_order_and_number_types_do_not_matter(profile):
    expected = profile.expected_answer(ADD_ROW)
    assert profile.check_answer(
        '<tool_call>\n{"name": "add", "arguments": {"b": 3.0, "a": 2}}\n</tool_call>', expected
    )
    assert profile.check_answer(
        '<tool_call>\n{"arguments": {"a": 2.0, "b": 3}, "name": "add"}\n</tool_call>', expected
    )
    assert not profile.check_answer(block("add", {"a": 2, "b": 4}), expected)


def test_parallel_calls_match_in_any_order(profile):
    expected = profile.expected_answer(PARALLEL_ROW)
    oslo, paris = block("get_weather", {"city": "Oslo"}), block("get_weather", {"city": "Paris"})
    assert profile.check_answer(f"{oslo}\n{paris}", expected)
    assert not profile.check_answer(paris, expected)  # a call missing


def test_a_wrong_function_or_an_extra_call_is_wrong(profile):
    expected = profile.expected_answer(CALL_ROW)
    assert not profile.check_answer(block("get_forecast", {"city": "Paris"}), expected)
    assert not profile.check_answer(
        block("get_weather", {"city": "Paris"}) + "\n" + block("add", {"a": 1, "b": 2}), expected
    )


def test_a_no_tool_answer_is_right_only_without_a_call(profile):
    expected = profile.expected_answer(NO_TOOL_ROW)
    assert profile.check_answer("hello! how can I help?  ", expected)
    assert profile.check_answer("<think>\n\n</think>\n\nHello! How can I help?", expected)
    assert not profile.check_answer(
        "Hello! How can I help?\n" + block("get_weather", {"city": "Paris"}), expected
    )
    assert not profile.check_answer("Goodbye!", expected)


# -- the bundled sample ------------------------------------------------------------


def test_every_sample_row_renders_and_its_own_target_is_correct(profile):
    rows = [json.loads(line) for line in SAMPLE_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert 500 <= len(rows) <= 700
    kinds = {"call": 0, "calls": 0, "answer": 0}
    for row in rows:
        conversation = profile.prepare_messages(row)
        assert len(conversation.tools) == 2, row
        target = reply_text(conversation.messages[-1])
        calls = "answer" not in row
        assert (profile.parse_answer(target) is not None) == calls, row
        assert profile.check_answer(target, profile.expected_answer(row)), row
        kinds[next(key for key in kinds if key in row)] += 1
    assert kinds["calls"] > 0
    assert 0.05 <= kinds["answer"] / len(rows) <= 0.15


def test_the_sample_script_is_deterministic(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "make_sample.py"
    subprocess.run(
        [sys.executable, str(script), "--output", str(tmp_path / "s.jsonl")], check=True, capture_output=True
    )
    assert (tmp_path / "s.jsonl").read_bytes() == SAMPLE_FILE.read_bytes()


# -- the model's template --------------------------------------------------------


def test_qwen3_renders_the_tools_and_trains_exactly_the_call():
    from trainer.data.chat_template import render_conversation
    from transformers import AutoTokenizer

    if not QWEN3_TOKENIZER.is_dir():
        pytest.fail(
            f"the Qwen3 tokenizer is missing at {QWEN3_TOKENIZER}: ../shared must sit beside the repo"
        )
    tokenizer = AutoTokenizer.from_pretrained(QWEN3_TOKENIZER, local_files_only=True)
    profile = get_profile("tool_use")
    # enable_thinking=False, as a tool-use run sets it: the empty think block belongs to the prompt.
    no_thinking = {"enable_thinking": False}
    single = profile.prepare_messages(CALL_ROW)
    rendered = render_conversation(single.messages, tokenizer, no_thinking, tools=single.tools)
    assert "<tools>" in rendered.text and '"name": "get_weather"' in rendered.text
    start, end = rendered.spans[-1]
    assert rendered.text[start:end] == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>'
    )

    parallel = profile.prepare_messages(PARALLEL_ROW)
    rendered = render_conversation(parallel.messages, tokenizer, no_thinking, tools=parallel.tools)
    start, end = rendered.spans[-1]
    trained = rendered.text[start:end]
    assert trained == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>'
    )
    assert profile.check_answer(trained.removesuffix("<|im_end|>"), profile.expected_answer(PARALLEL_ROW))

    # Qwen3's default (thinking on) trains the template's empty think block before the call;
    # the call is still read and judged after it.
    rendered = render_conversation(single.messages, tokenizer, tools=single.tools)
    start, end = rendered.spans[-1]
    trained = rendered.text[start:end].removesuffix("<|im_end|>")
    assert trained.startswith("<think>\n\n</think>\n\n<tool_call>")
    assert profile.check_answer(trained, profile.expected_answer(CALL_ROW))


# -- compositions ---------------------------------------------------------------


def test_think_then_tool_use_reasons_then_calls_and_is_judged_by_the_calls():
    pytest.importorskip("trainer_profile_think", reason="think+tool_use needs trainer-profile-think")
    from trainer.data.chat_template import render_conversation
    from transformers import AutoTokenizer

    if not QWEN3_TOKENIZER.is_dir():
        pytest.fail(
            f"the Qwen3 tokenizer is missing at {QWEN3_TOKENIZER}: ../shared must sit beside the repo"
        )
    composed = get_profile("think+tool_use")
    assert composed.base.name == "tool_use"
    assert [part.name for part in get_profile("tool_use+think").pipeline] == ["tool_use", "think"]
    row = {**CALL_ROW, "reasoning": "The user asks about Paris, so I call get_weather."}
    conversation = composed.prepare_messages(row)
    assert conversation.tools == [WEATHER, {"type": "function", "function": ADD}]
    tokenizer = AutoTokenizer.from_pretrained(QWEN3_TOKENIZER, local_files_only=True)
    rendered = render_conversation(conversation.messages, tokenizer, tools=conversation.tools)
    start, end = rendered.spans[-1]
    trained = rendered.text[start:end].removesuffix("<|im_end|>")
    assert trained == (
        "<think>\nThe user asks about Paris, so I call get_weather.\n</think>\n\n"
        + block("get_weather", {"city": "Paris"})
    )
    expected = composed.expected_answer(row)
    assert composed.check_answer(trained, expected)
    assert composed.parse_answer(trained) == profile_answer(block("get_weather", {"city": "Paris"}))
    # The call without the think block, or the right reasoning before a wrong call, is wrong.
    assert composed.parse_answer(block("get_weather", {"city": "Paris"})) is None
    assert not composed.check_answer("<think>\nok\n</think>\n\n" + block("add", {"a": 1, "b": 2}), expected)
    # A no-tool row: reason, then reply in text.
    reply = composed.prepare_messages({**NO_TOOL_ROW, "reasoning": "A greeting needs no tool."})
    assert reply.messages[-1]["reasoning_content"] == "A greeting needs no tool."
    assert composed.check_answer("<think>\nA greeting.\n</think>\n\nHello! How can I help?", reply_answer())


def profile_answer(text: str) -> str | None:
    return ToolUseProfile().parse_answer(text)


def reply_answer() -> str:
    answer = ToolUseProfile().expected_answer(NO_TOOL_ROW)
    assert answer is not None
    return answer


def test_every_sample_row_reasons_before_its_call_with_think(profile):
    pytest.importorskip("trainer_profile_think", reason="think+tool_use needs trainer-profile-think")
    composed = get_profile("think+tool_use")
    rows = [json.loads(line) for line in SAMPLE_FILE.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        reply = composed.prepare_messages(row).messages[-1]
        assert reply["reasoning_content"] == row["reasoning"]
        text = f"<think>\n{reply['reasoning_content']}\n</think>\n\n{reply_text(reply)}"
        assert composed.check_answer(text, composed.expected_answer(row)), row


def test_think_then_tool_use_trains_offline_and_previews_judge_the_calls(tmp_path):
    pytest.importorskip("trainer_profile_think", reason="think+tool_use needs trainer-profile-think")
    import os
    import subprocess
    import sys

    environment = {key: value for key, value in os.environ.items() if not key.startswith("TRAINER_")}
    command = [sys.executable, "-m", "trainer", "run", "--profile", "think+tool_use", "--max-steps", "2"]
    completed = subprocess.run(
        [*command, "--output-dir", "out"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    assert "sample_tool_calls.jsonl" in completed.stdout and "invalid skipped 0" in completed.stdout
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["status"] == "completed"
    previews = [json.loads(line) for line in (tmp_path / "out" / "previews.jsonl").read_text().splitlines()]
    assert previews and all("format_ok" in sample for record in previews for sample in record["samples"])


class TestToolUseConformance(ProfileConformance):
    """The conformance suite every profile package runs, on the profile's own layout."""

    profile_name = "tool_use"
    distribution = "trainer-profile-tools"
    builtin_layouts = ()  # tool_use reads its own fields (tools, call / calls) and messages rows
    # A no-tool row's reply is plain text, which parse_answer rightly refuses as a call; it is
    # judged by check_answer instead (test_a_no_tool_rows_reply_is_judged_as_text).
    sample_rows = [CALL_ROW, PARALLEL_ROW]
