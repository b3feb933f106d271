"""The conversation model: normalizing messages and tools, turn rules, dataset layouts, tool-call parsing."""

from __future__ import annotations

import json
import re

import pytest

from trainer.conversation import (
    Conversation,
    InvalidExampleError,
    calls_match,
    check_turns,
    normalize_conversation,
    normalize_message,
    normalize_tool_call,
    normalize_tools,
    parse_tool_calls,
    read_conversation,
)
from trainer.conversation.model import parse_arguments
from trainer.data.conversation import build_conversation
from trainer.profiles.chat import ChatProfile
from trainer.profiles.fields import read_example

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"name": "get_weather", "description": "Current weather of a city", "parameters": CITY}
TIME = {"name": "get_time", "description": "Local time of a city", "parameters": CITY}
WEATHER_TOOL = {"type": "function", "function": WEATHER}
TOOLS = [WEATHER_TOOL, {"type": "function", "function": TIME}]
USER = {"role": "user", "content": "Weather and time in Paris?"}
USER_HI = {"role": "user", "content": "Hi, you"}
REASONED = {"role": "assistant", "content": "4", "reasoning_content": "2 + 2"}
SYSTEM = {"role": "system", "content": "You are helpful."}


def call(name: str, call_id: str | None = None, **arguments) -> dict:
    """A call in canonical form."""
    result = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        result["id"] = call_id
    return result


def assistant(*calls: dict, content: str = "") -> dict:
    message = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = list(calls)
    return message


def tool(content: object, **extra: object) -> dict:
    return {"role": "tool", "content": content, **extra}


def raises(fragment: str):
    """``pytest.raises`` for an InvalidExampleError whose message holds ``fragment``."""
    return pytest.raises(InvalidExampleError, match=re.escape(fragment))


PARIS = call("get_weather", city="Paris")
PARIS_TIME = call("get_time", city="Paris")
STRING_ARGUMENTS_CALL = {
    "id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}
}

# --- normalize_message, normalize_tool_call, parse_arguments, normalize_tools ---------------------


def test_arguments_as_json_string_are_parsed_and_none_content_beside_calls_becomes_empty():
    message = {"role": "assistant", "content": None, "tool_calls": [STRING_ARGUMENTS_CALL]}
    assert normalize_message(message, 1) == assistant(call("get_weather", "c1", city="Paris"))


def test_call_without_function_wrapper_is_wrapped():
    wrapped = normalize_tool_call({"name": "get_time", "arguments": {"city": "Oslo"}, "id": "c7"}, "call")
    assert wrapped == call("get_time", "c7", city="Oslo")


def test_bad_json_arguments_name_the_message_the_call_and_the_fix():
    bad = {"function": {"name": "get_weather", "arguments": '{"city": Paris}'}}
    message = {"role": "assistant", "content": "", "tool_calls": [PARIS_TIME, bad]}
    with pytest.raises(InvalidExampleError) as caught:
        normalize_message(message, 4)
    text = str(caught.value)
    assert text.startswith("message 4 (assistant) tool call 2 ('get_weather') has arguments that are not")
    assert text.endswith("fix the JSON or give the arguments as an object")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [(None, {}), ("", {}), ('{"n": 2}', {"n": 2}), ({"n": [1, 2]}, {"n": [1, 2]})],
)
def test_parse_arguments_accepts_objects_json_objects_and_nothing(arguments, expected):
    assert parse_arguments(arguments, "call") == expected


@pytest.mark.parametrize(("arguments", "shown"), [("[1, 2]", "[1, 2]"), ('"Paris"', "'Paris'"), (7, "7")])
def test_arguments_that_are_not_an_object_are_refused(arguments, shown):
    with raises(f"call has arguments {shown}; arguments must be a JSON object of parameter names to values"):
        parse_arguments(arguments, "call")


@pytest.mark.parametrize(
    "tools",
    [[WEATHER_TOOL], [WEATHER], json.dumps([WEATHER]), json.dumps([WEATHER_TOOL]), WEATHER],
    ids=["wrapped", "bare", "json-bare", "json-wrapped", "single-dict"],
)
def test_tools_are_wrapped_in_one_form(tools):
    assert normalize_tools(tools) == [{"type": "function", "function": WEATHER}]


@pytest.mark.parametrize("tools", [None, "", []])
def test_no_tools_is_none(tools):
    assert normalize_tools(tools) is None


@pytest.mark.parametrize(
    ("tools", "fragment"),
    [
        ([WEATHER, WEATHER_TOOL], "'tools' describes the function 'get_weather' twice"),
        ([WEATHER, {"description": "no name"}], "tool 2 in 'tools' has no function name"),
        ("[{not json", "field 'tools' is text but not valid JSON"),
        (5, "field 'tools' must be a list of function schemas, got int"),
    ],
)
def test_bad_tools_are_refused(tools, fragment):
    with raises(fragment):
        normalize_tools(tools)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"role": "user", "content": [{"type": "text", "text": "Hi, "}, {"text": "you"}]}, USER_HI),
        (tool({"temp": 21, "unit": "°C"}, name="get_weather", tool_call_id="c1"),
         tool('{"temp": 21, "unit": "°C"}', name="get_weather", tool_call_id="c1")),
        (tool([{"type": "text", "text": "21"}]), tool("21")),
        ({"role": "assistant", "content": "4", "reasoning": "2 + 2"}, REASONED),
        ({"role": "assistant", "content": "4", "thinking": "2 + 2"}, REASONED),
        (REASONED, REASONED),
        ({**USER_HI, "tool_calls": [], "reasoning_content": "", "thinking": None}, USER_HI),
    ],
    ids=["text-parts", "tool-dict", "tool-text-parts", "reasoning", "thinking", "reasoning_content", "empty"],
)
def test_normalize_message(message, expected):
    assert normalize_message(message, 0) == expected


IMAGE_PARTS = [{"type": "text", "text": "See:"}, {"type": "image_url", "image_url": "x"}]


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        ({"role": "bot", "content": "hi"},
         "message 3 has role 'bot'; use one of: system, user, assistant, tool"),
        ("hi", "message 3 must be a dict with 'role' and 'content', got 'hi'"),
        ({"role": "user", "content": {"temp": 21}}, "message 3 (user) content must be a string, got dict"),
        ({"role": "user", "content": IMAGE_PARTS}, "message 3 (user) content holds {'image_url': 'x', "
         "'type': 'image_url'}; only text parts ({'type': 'text', 'text': ...}) are supported"),
        ({**USER_HI, "tool_calls": [PARIS]},
         "message 3 (user) has tool_calls; only assistant turns may. Move it to the assistant turn"),
        ({**USER_HI, "reasoning": "hmm"}, "message 3 (user) has reasoning; only assistant turns may"),
        (tool("21", thinking="hmm"), "message 3 (tool) has thinking; only assistant turns may"),
        ({"role": "assistant", "content": "4", "thinking": ["a"]},
         "message 3 (assistant) reasoning_content must be text, got list"),
        (tool("21", name=3), "message 3 (tool) name must be text, got 3"),
        ({**REASONED, "tool_calls": {"name": "f"}}, "message 3 (assistant) tool_calls must be a list"),
        (assistant({"function": {"arguments": {}}}), "message 3 (assistant) tool call 1 has no function"),
    ],
)
def test_bad_message_is_refused(message, fragment):
    with raises(fragment):
        normalize_message(message, 3)


# --- normalize_conversation and check_turns ------------------------------------------------------

TWO_CALLS = assistant(PARIS, PARIS_TIME)
TWO_CALLS_WITH_IDS = assistant(call("get_weather", "c1", city="Paris"), call("get_time", "c2", city="Paris"))
DONE = assistant(content="21 °C at 14:00.")


def test_a_conversation_is_normalized_with_its_tools():
    reply = {"role": "assistant", "content": [{"type": "text", "text": "Sunny."}]}
    messages = [{"role": "system", "content": "Be brief."}, USER, reply]
    expected = [*messages[:2], {"role": "assistant", "content": "Sunny."}]
    assert normalize_conversation(messages, [WEATHER]) == Conversation(expected, [WEATHER_TOOL])


@pytest.mark.parametrize(
    "messages",
    [
        [USER, TWO_CALLS, tool("21 °C"), tool("14:00"), DONE],
        [USER, TWO_CALLS_WITH_IDS, tool("14:00", tool_call_id="c2"), tool("21 °C", tool_call_id="c1"), DONE],
        [USER, TWO_CALLS, tool("14:00", name="get_time"), tool("21 °C", name="get_weather"), DONE],
        [USER, assistant(PARIS)],
        [USER, assistant(PARIS), tool("21"), assistant(content="21 °C."), USER, assistant(PARIS_TIME)],
    ],
    ids=["parallel", "ids-any-order", "names-any-order", "unanswered-last", "tool-between-assistants"],
)
def test_tool_calls_answered_or_left_last_are_accepted(messages):
    conversation = normalize_conversation(messages, TOOLS, allow_consecutive_assistant=False)
    assert conversation == Conversation(messages, TOOLS)


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([USER, DONE, {"role": "system", "content": "Be brief."}],
         "message 2 is a system turn; only the first message may be"),
        ([USER, assistant(content="")], "message 1 (assistant) has neither content nor tool_calls"),
        ([USER, assistant(content=" \n")], "message 1 (assistant) has neither content nor tool_calls"),
        ([USER, assistant(call("get_news"))],
         "message 1 (assistant) calls 'get_news', which is not in the conversation's tools "
         "(get_weather, get_time)"),
        ([USER, assistant(PARIS), USER], "message 1 (assistant) calls get_weather but the tool result is "
         "missing: 0 tool messages answer its 1 call(s) before message 2 (user)"),
        ([USER, TWO_CALLS, tool("21 °C"), DONE], "message 1 (assistant) calls get_time but the tool "
         "result is missing: 1 tool message answers its 2 call(s) before message 3 (assistant)"),
        ([tool("21")], "message 0 (tool) answers no tool call: it follows nothing, not an assistant turn"),
        ([USER, tool("21")], "message 1 (tool) answers no tool call: it follows a user turn, not an"),
        ([USER, DONE, tool("21")], "message 2 (tool) answers no tool call: it follows an assistant turn,"),
        ([USER, assistant(PARIS), tool("21"), tool("22")],
         "message 3 (tool) answers no tool call: every call of the assistant turn before it is already "
         "answered"),
        ([USER, TWO_CALLS_WITH_IDS, tool("21", tool_call_id="c9")], "message 2 (tool) answers tool_call_id "
         "'c9', but message 1 made no pending call with that id (c1, c2); fix the id"),
        ([USER, TWO_CALLS_WITH_IDS, tool("21", tool_call_id="c1"), tool("22", tool_call_id="c1")],
         "message 3 (tool) answers tool_call_id 'c1', but message 1 made no pending call with that id (c2)"),
        ([USER, TWO_CALLS, tool("News", name="get_news")], "message 2 (tool) is the result of 'get_news', "
         "but message 1 made no pending call to it (pending: get_weather, get_time); fix the name"),
    ],
    ids=["system-not-first", "empty-assistant", "blank-assistant", "unknown-tool", "result-missing",
         "one-result-missing", "tool-first", "tool-after-user", "tool-after-text", "tool-extra",
         "id-mismatch", "id-twice", "name-mismatch"],
)
def test_broken_conversations_are_refused(messages, fragment):
    with raises(fragment):
        normalize_conversation(messages, TOOLS)


@pytest.mark.parametrize("messages", [[], None, "hi"])
def test_messages_must_be_a_non_empty_list(messages):
    with raises("messages must be a non-empty list"):
        normalize_conversation(messages)


def test_consecutive_assistant_turns_only_when_allowed():
    messages = [USER, assistant(content="Let me think."), DONE]
    with raises("message 2 (assistant) follows another assistant turn; merge the two, or set "
                "data.allow_consecutive_assistant=true"):
        check_turns(messages, allow_consecutive_assistant=False)
    assert normalize_conversation(messages, allow_consecutive_assistant=True).messages == messages
    check_turns(messages)  # the default accepts them
    check_turns([USER, assistant(call("get_news"))])  # and without tools any function name goes


# --- layouts.read_conversation -------------------------------------------------------------------

WEATHER_CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}
TIME_CALL = {"name": "get_time", "arguments": {"city": "Paris"}}


def sharegpt_row(*turns: tuple[str, object]) -> dict:
    conversations = [{"from": speaker, "value": value} for speaker, value in turns]
    return {"conversations": conversations, "tools": [WEATHER, TIME]}


def test_openai_row_with_tools():
    messages = [USER, {"role": "assistant", "content": None, "tool_calls": [STRING_ARGUMENTS_CALL]},
                tool({"temp": 21}, tool_call_id="c1"), {**REASONED, "thinking": None}]
    conversation = read_conversation({"messages": messages, "tools": json.dumps([WEATHER])})
    expected = [USER, assistant(call("get_weather", "c1", city="Paris")),
                tool('{"temp": 21}', tool_call_id="c1"), REASONED]
    assert conversation == Conversation(expected, [WEATHER_TOOL])


def test_sharegpt_row_with_system_function_call_and_observation():
    encoded = json.dumps({"name": "get_weather", "arguments": json.dumps({"city": "Paris"})})
    row = sharegpt_row(("human", "Weather in Paris?"), ("function_call", encoded),
                       ("observation", '{"temp": 21}'), ("gpt", "It is 21 °C."))
    row["system"] = "You check the weather."
    expected = [{"role": "system", "content": "You check the weather."},
                {"role": "user", "content": "Weather in Paris?"}, assistant(PARIS),
                tool('{"temp": 21}'), assistant(content="It is 21 °C.")]
    assert read_conversation(row) == Conversation(expected, TOOLS)


@pytest.mark.parametrize(
    "value",
    [
        json.dumps([WEATHER_CALL, TIME_CALL]),
        [WEATHER_CALL, TIME_CALL],
        f"<tool_call>\n{json.dumps(WEATHER_CALL)}\n</tool_call>\n<tool_call>{json.dumps(TIME_CALL)}</tool_call>",
    ],
    ids=["json-list", "list", "tool_call-blocks"],
)
def test_sharegpt_parallel_calls(value):
    row = sharegpt_row(("human", "Weather and time?"), ("function_call", value), ("observation", "21"),
                       ("observation", "14:00"), ("gpt", "21 °C at 14:00."))
    messages = read_conversation(row).messages
    assert messages[1:] == [TWO_CALLS, tool("21"), tool("14:00"), DONE]


def test_sharegpt_text_turn_then_function_call_is_one_assistant_turn():
    row = sharegpt_row(("human", "Weather?"), ("gpt", "Let me check."), ("function_call", WEATHER_CALL),
                       ("observation", "21"), ("gpt", "21 °C."))
    messages = read_conversation(row).messages
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1] == assistant(PARIS, content="Let me check.")


@pytest.mark.parametrize(
    ("turns", "fragment"),
    [
        ([("human", "hi"), ("bot", "hello")], "field 'conversations' turn 1 is from 'bot'; use one of: "
         "system, human, user, gpt, assistant, model, chatgpt, function_call, tool_call, observation, tool, "
         "function_response"),
        ([("human", "hi"), ("function_call", "get_weather(Paris)")],
         "field 'conversations' turn 1 (function_call) is not valid JSON"),
        ([("human", "hi"), ("function_call", "<tool_call>get_weather</tool_call>")],
         "field 'conversations' turn 1 (function_call) holds a <tool_call> block that is not a JSON call"),
        ([("human", "hi"), ("function_call", {"arguments": {}})],
         "field 'conversations' turn 1 (function_call) call 1 has no function name"),
        ([("human", "hi"), ("gpt", "")],
         "field 'conversations': message 1 (assistant) has neither content nor tool_calls"),
    ],
    ids=["unknown-from", "call-not-json", "bad-block", "call-without-name", "rule-broken"],
)
def test_bad_sharegpt_rows_name_the_field(turns, fragment):
    with raises(fragment):
        read_conversation(sharegpt_row(*turns))


def test_bad_messages_rows_name_the_field():
    with raises("field 'messages': message 0 has role 'bot'; use one of"):
        read_conversation({"messages": [{"role": "bot", "content": "hi"}]})
    with raises("field 'messages': message 1 (assistant) calls 'get_news', which is not in the"):
        read_conversation({"messages": [USER, assistant(call("get_news"))], "tools": [WEATHER]})


@pytest.mark.parametrize("row", [{"prompt": "hi", "response": "hello"}, {"messages": None}, {}])
def test_row_without_a_conversation_is_none(row):
    assert read_conversation(row) is None


# --- tool_calls.parse_tool_calls and calls_match -------------------------------------------------


def block(body: object) -> str:
    return f"<tool_call>\n{body if isinstance(body, str) else json.dumps(body)}\n</tool_call>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (block(WEATHER_CALL), [PARIS]),
        (f"Checking.\n{block(WEATHER_CALL)}\n{block(TIME_CALL)}", [PARIS, PARIS_TIME]),
        ("It is sunny.", []),
        (block({"name": "get_weather", "arguments": '{"city": "Paris"}'}), [PARIS]),
        (block({"name": "get_time", "parameters": {"city": "Paris"}}), [PARIS_TIME]),
        (block({"name": "get_time"}), [call("get_time")]),
        (block('{"name": "get_weather", "arguments": {"city": Paris}}'), None),
        (block({"arguments": {"city": "Paris"}}), None),
        (block([WEATHER_CALL]), None),
        (block({"name": "get_weather", "arguments": "[1]"}), None),
        (f"{block(WEATHER_CALL)}\n<tool_call>\n{json.dumps(TIME_CALL)}", None),
        ('<tool_call>\n{"name": "get_weather", "argum', None),
    ],
    ids=["one", "two", "none", "string-arguments", "parameters", "no-arguments", "malformed-json",
         "no-name", "not-an-object", "arguments-not-object", "second-unclosed", "unclosed"],
)
def test_parse_tool_calls(text, expected):
    assert parse_tool_calls(text) == expected


def test_calls_match_ignores_order_of_calls_and_keys_and_int_or_float():
    found = [call("get_time", city="Oslo"), call("get_weather", city="Paris", days=2, units="C")]
    expected = [call("get_weather", units="C", days=2.0, city="Paris"), call("get_time", city="Oslo")]
    assert calls_match(found, expected)
    assert calls_match([call("f", flag=True)], [call("f", flag=True)])
    assert not calls_match([call("f", flag=True)], [call("f", flag=1)])  # a boolean is no number


@pytest.mark.parametrize(
    "other",
    [[PARIS_TIME], [call("get_weather", city="Oslo")], [call("get_weather", city="Paris", days=1)],
     [PARIS, PARIS], [], [call("get_weather", city=True)]],
    ids=["name", "value", "extra-argument", "extra-call", "no-call", "type"],
)
def test_calls_that_differ_do_not_match(other):
    assert not calls_match([PARIS], other)


# --- profiles: read_example and the chat profile -------------------------------------------------

TOOLS_ROW = {"messages": [USER, assistant(PARIS), tool("21"), assistant(content="21.")], "tools": [WEATHER]}


def test_read_example_keeps_tools_of_a_messages_row():
    example = read_example(TOOLS_ROW)
    assert (example.messages, example.tools, example.prompt) == (TOOLS_ROW["messages"], [WEATHER_TOOL], "")


def test_read_example_reads_a_sharegpt_row():
    turns = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]
    example = read_example({"conversations": turns})
    assert example.messages == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    assert example.tools is None


def test_read_example_refuses_a_conversation_not_ending_with_the_assistant():
    with raises("field 'messages': the conversation ends with a tool turn"):
        read_example({"messages": TOOLS_ROW["messages"][:3], "tools": [WEATHER]})


def test_chat_profile_returns_a_conversation_only_with_tools():
    output = ChatProfile().prepare_messages(TOOLS_ROW)
    assert isinstance(output, Conversation)
    assert output == Conversation(TOOLS_ROW["messages"], [WEATHER_TOOL])
    plain = ChatProfile().prepare_messages({"messages": [USER, DONE], "tools": []})
    assert type(plain) is list
    assert plain == [USER, DONE]


# --- data.conversation.build_conversation --------------------------------------------------------


def test_build_conversation_adds_the_system_turn_and_keeps_tools():
    conversation = build_conversation(ChatProfile(), TOOLS_ROW, "You are helpful.", [])
    assert conversation == Conversation([SYSTEM, *TOOLS_ROW["messages"]], [WEATHER_TOOL])
    own = {**TOOLS_ROW, "messages": [{"role": "system", "content": "Row prompt."}, *TOOLS_ROW["messages"]]}
    assert build_conversation(ChatProfile(), own, "You are helpful.", []).messages == own["messages"]


class Instructing(ChatProfile):
    """Adds its own instruction to whatever base prompt it is given."""

    name = "instructing"

    def format_system_prompt(self, base_prompt):
        return f"{base_prompt}\n\nAnswer in one word."


def test_a_rows_own_system_turn_replaces_the_runs_base_prompt_and_keeps_the_profiles_instruction():
    from trainer.monitoring.previews import preview_prompts

    run_prompt = "You are the run's assistant."
    plain = {"messages": [USER_HI, {"role": "assistant", "content": "Hello"}]}
    own = {"messages": [{"role": "system", "content": "You are a pirate."}, *plain["messages"]]}
    sharegpt = {
        "system": "You are a pirate.",
        "conversations": [{"from": "human", "value": "Hi, you"}, {"from": "gpt", "value": "Hello"}],
    }
    for row in (own, sharegpt):
        system = build_conversation(Instructing(), row, run_prompt, []).messages[0]
        assert system == {"role": "system", "content": "You are a pirate.\n\nAnswer in one word."}
        assert run_prompt not in system["content"]
    assert build_conversation(Instructing(), plain, run_prompt, []).messages[0]["content"] == (
        f"{run_prompt}\n\nAnswer in one word."
    )
    # Previews (during training and `trainer preview`) build the same conversation: the row's turn stays.
    prompts = preview_prompts([own, plain], Instructing(), run_prompt, [], count=2)
    assert [p.messages[0]["content"] for p in prompts] == [
        "You are a pirate.\n\nAnswer in one word.",
        f"{run_prompt}\n\nAnswer in one word.",
    ]


def test_build_conversation_and_consecutive_assistant_turns():
    row = {**TOOLS_ROW, "messages": [*TOOLS_ROW["messages"], assistant(content="Anything else?")]}
    with raises("message 5 (assistant) follows another assistant turn; merge the two, or set "
                "data.allow_consecutive_assistant=true"):
        build_conversation(ChatProfile(), row, "You are helpful.", [], allow_consecutive_assistant=False)
    with raises("data.allow_consecutive_assistant"):
        build_conversation(ChatProfile(), row, "You are helpful.", [])  # refused by default
    allowed = build_conversation(ChatProfile(), row, "You are helpful.", [], allow_consecutive_assistant=True)
    assert allowed == Conversation([SYSTEM, *row["messages"]], [WEATHER_TOOL])
