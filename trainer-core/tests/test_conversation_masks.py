"""Which tokens of a conversation are trained, with the real Qwen3 tokenizer and chat template.

Conversations with tools, tool calls, tool results and reasoning, rendered by
the template Qwen3 ships (../shared/models/qwen3-tokenizer) and tokenized by
trainer.data.chat_template. The rule: what the model writes after each
generation prompt, <|im_end|> included, is trained; nothing else is.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import pytest

from trainer.conversation import normalize_conversation
from trainer.data.chat_template import IGNORE_INDEX, render_conversation, tokenize_conversation
from trainer.errors import TrainerError

QWEN3_TOKENIZER = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "qwen3-tokenizer"

# ChatML that shows neither tools, tool calls nor reasoning_content.
PLAIN_CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

WEATHER = {  # a schema without the {"type": "function", "function": ...} wrapper
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ADD = {
    "name": "add",
    "description": "Add two integers.",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
}

SYSTEM = {"role": "system", "content": "You are terse."}
USER = {"role": "user", "content": "What is 2 + 3?"}
REPLY = {"role": "assistant", "content": "It is 5."}
THANKS = {"role": "user", "content": "Thanks! And 4 + 4?"}
REPLY_2 = {"role": "assistant", "content": "It is 8."}

TOOL_CALL_CONVERSATION = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
    ]},
    {"role": "tool", "name": "get_weather", "content": {"temperature": 21, "sky": "clear"}},
    {"role": "assistant", "content": "It is 21 degrees and clear."},
]  # fmt: skip

MULTI_STEP_REASONING = [
    {"role": "user", "content": "Add 2 and 3."},
    {"role": "assistant", "content": "", "reasoning_content": "I should call add.", "tool_calls": [
        {"name": "add", "arguments": {"a": 2, "b": 3}},
    ]},
    {"role": "tool", "content": "5"},
    {"role": "assistant", "content": "It is 5.", "reasoning_content": "The tool returned 5."},
]  # fmt: skip

TWO_REASONINGS = [
    USER,
    {"role": "assistant", "content": "It is 5.", "reasoning_content": "FIRST-REASONING: 2 + 3."},
    THANKS,
    {"role": "assistant", "content": "It is 8.", "reasoning_content": "SECOND-REASONING: 4 + 4."},
]


def load_qwen3(chat_template: str | None = None):
    """A fresh Qwen3 tokenizer from ../shared, optionally with another chat template."""
    from transformers import AutoTokenizer

    assert QWEN3_TOKENIZER.is_dir(), (
        f"{QWEN3_TOKENIZER} is missing: the tests need ../shared/models/qwen3-tokenizer beside the repository"
    )
    tokenizer = AutoTokenizer.from_pretrained(str(QWEN3_TOKENIZER), local_files_only=True)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


@pytest.fixture(scope="module")
def qwen3():
    return load_qwen3()


def tokenize(messages, tokenizer, tools=None, **kwargs) -> tuple[list[int], list[int], str]:
    """Ids and labels, checked to be well formed and to decode back to the rendered text."""
    rendered = render_conversation(messages, tokenizer, tools=tools, **kwargs)
    input_ids, labels = tokenize_conversation(messages, tokenizer, tools=tools, **kwargs)
    assert len(input_ids) == len(labels)
    assert all(label in (token, IGNORE_INDEX) for token, label in zip(input_ids, labels, strict=True))
    assert tokenizer.decode(input_ids) == rendered.text
    return input_ids, labels, rendered.text


def runs(input_ids: list[int], labels: list[int], trained: bool) -> list[list[int]]:
    """The contiguous runs of trained (or untrained) tokens."""
    pairs = zip(input_ids, labels, strict=True)
    grouped = groupby(pairs, key=lambda pair: pair[1] != IGNORE_INDEX)
    return [[token for token, _ in run] for is_trained, run in grouped if is_trained == trained]


def trained_texts(messages, tokenizer, tools=None, **kwargs) -> tuple[list[str], list[str], str]:
    """The decoded trained spans, the decoded untrained spans, and the rendered text."""
    input_ids, labels, text = tokenize(messages, tokenizer, tools, **kwargs)
    decode = tokenizer.decode
    return (
        [decode(run) for run in runs(input_ids, labels, True)],
        [decode(run) for run in runs(input_ids, labels, False)],
        text,
    )


def shown_assistant_turns(text: str) -> list[str]:
    """Each assistant turn's text in the template's own rendering, through <|im_end|>."""
    turns = text.split("<|im_start|>assistant\n")[1:]
    return [turn[: turn.index("<|im_end|>") + len("<|im_end|>")] for turn in turns]


def test_single_turn_trains_exactly_what_follows_the_generation_prompt(qwen3):
    messages = [{"role": "user", "content": "Question?"}, {"role": "assistant", "content": "Answer"}]
    input_ids, labels, _ = tokenize(messages, qwen3)
    start = next(i for i, label in enumerate(labels) if label != IGNORE_INDEX)
    prompt = qwen3.apply_chat_template(messages[:1], add_generation_prompt=True, tokenize=False)
    assert input_ids[:start] == qwen3(prompt, add_special_tokens=False)["input_ids"]
    trained = runs(input_ids, labels, True)
    assert len(trained) == 1
    assert qwen3.decode(trained[0]) == "<think>\n\n</think>\n\nAnswer<|im_end|>"
    assert qwen3.decode(input_ids[start + len(trained[0]) :]) == "\n"  # the newline after <|im_end|>


def test_multi_turn_trains_every_assistant_reply_and_no_other_text(qwen3):
    messages = [SYSTEM, USER, REPLY, THANKS, REPLY_2]
    trained, untrained, text = trained_texts(messages, qwen3)
    assert trained == ["It is 5.<|im_end|>", "<think>\n\n</think>\n\nIt is 8.<|im_end|>"]
    assert trained == shown_assistant_turns(text)
    for message in (SYSTEM, USER, THANKS):
        assert not any(message["content"] in span for span in trained)
        assert any(message["content"] in span for span in untrained)


def test_multi_turn_with_trained_turns_last_trains_only_the_last_reply(qwen3):
    messages = [SYSTEM, USER, REPLY, THANKS, REPLY_2]
    trained, untrained, _ = trained_texts(messages, qwen3, trained_turns="last")
    assert trained == ["<think>\n\n</think>\n\nIt is 8.<|im_end|>"]
    assert any("It is 5.<|im_end|>" in span for span in untrained)


def test_tool_call_and_final_answer_are_trained_but_not_tools_or_results(qwen3):
    conversation = normalize_conversation(TOOL_CALL_CONVERSATION, [WEATHER])
    assert conversation.tools == [{"type": "function", "function": WEATHER}]
    trained, untrained, text = trained_texts(conversation.messages, qwen3, conversation.tools)
    assert "# Tools\n\nYou may call one or more functions" in text
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in text
    assert trained == [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
        "<think>\n\n</think>\n\nIt is 21 degrees and clear.<|im_end|>",
    ]
    assert trained == shown_assistant_turns(text)
    result = '<tool_response>\n{"temperature": 21, "sky": "clear"}\n</tool_response>'
    for not_trained in (result, "# Tools", "<tools>", "Weather in Paris?"):
        assert not any(not_trained in span for span in trained)
        assert any(not_trained in span for span in untrained)


def test_reasoning_before_the_last_user_query_is_neither_shown_nor_trained(qwen3):
    trained, _, text = trained_texts(TWO_REASONINGS, qwen3)
    assert "FIRST-REASONING" not in text
    assert "<think>\nSECOND-REASONING: 4 + 4.\n</think>\n\n" in text
    assert trained == [
        "It is 5.<|im_end|>",
        "<think>\nSECOND-REASONING: 4 + 4.\n</think>\n\nIt is 8.<|im_end|>",
    ]
    # Exactly what Qwen3's template itself shows for each assistant turn.
    assert trained == shown_assistant_turns(qwen3.apply_chat_template(TWO_REASONINGS, tokenize=False))


def test_multi_step_tool_reasonings_after_the_last_query_are_both_shown_and_trained(qwen3):
    conversation = normalize_conversation(MULTI_STEP_REASONING, [ADD])
    trained, untrained, text = trained_texts(conversation.messages, qwen3, conversation.tools)
    assert trained == [
        "<think>\nI should call add.\n</think>\n\n"
        '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call><|im_end|>',
        "<think>\nThe tool returned 5.\n</think>\n\nIt is 5.<|im_end|>",
    ]
    shown = qwen3.apply_chat_template(conversation.messages, tools=conversation.tools, tokenize=False)
    assert text == shown
    assert trained == shown_assistant_turns(shown)
    assert any("<tool_response>\n5\n</tool_response>" in span for span in untrained)


def test_a_template_without_reasoning_gets_it_written_into_the_content_and_trained():
    tokenizer = load_qwen3(PLAIN_CHATML)
    messages = [USER, {"role": "assistant", "content": "It is 5.", "reasoning_content": "2 + 3 = 5."}]
    trained, untrained, text = trained_texts(messages, tokenizer)
    assert trained == ["<think>\n2 + 3 = 5.\n</think>\n\nIt is 5.<|im_end|>"]
    assert untrained == ["<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n", "\n"]
    assert text == "".join([untrained[0], trained[0], untrained[1]])


def test_a_template_that_ignores_tools_refuses_a_conversation_with_tools():
    tokenizer = load_qwen3(PLAIN_CHATML)
    conversation = normalize_conversation(TOOL_CALL_CONVERSATION, [WEATHER])
    with pytest.raises(TrainerError, match="template does not show the conversation's tools"):
        tokenize_conversation(conversation.messages, tokenizer, tools=conversation.tools)
    with pytest.raises(TrainerError, match="template does not show the conversation's tools"):
        tokenize_conversation([USER, REPLY], tokenizer, tools=conversation.tools)


@pytest.fixture(scope="module")
def marked_tokenizers():
    """Tokenizers whose template has {% generation %} markers: the demo one, and Qwen3's vocabulary."""
    from trainer.data.chatml import CHATML_TEMPLATE
    from trainer.models.demo import load_demo_tokenizer

    demo = load_demo_tokenizer()  # its chat_template.jinja is trainer's CHATML_TEMPLATE
    assert "{%- generation %}" in demo.chat_template
    return {"demo": demo, "qwen3-vocab": load_qwen3(CHATML_TEMPLATE)}


@pytest.mark.parametrize("name", ["demo", "qwen3-vocab"])
@pytest.mark.parametrize(
    ("messages", "tools"),
    [
        ([SYSTEM, USER, REPLY, THANKS, REPLY_2], None),
        (TOOL_CALL_CONVERSATION, [WEATHER]),
        (MULTI_STEP_REASONING, [ADD]),
        (TWO_REASONINGS, None),
    ],
    ids=["multi-turn", "tool-call", "multi-step-reasoning", "two-reasonings"],
)
def test_labels_equal_transformers_mask_for_generation_markers(marked_tokenizers, name, messages, tools):
    """CHATML_TEMPLATE wraps each reply and its <|im_end|> in {% generation %}: the masks agree.

    transformers tokenizes the whole text at once while trainer tokenizes each
    part on its own; every span edge here is a token boundary (<|im_start|> and
    <|im_end|> are special tokens, the newline after "assistant" its own token),
    so the ids agree too and the masks compare token by token.
    """
    tokenizer = marked_tokenizers[name]
    conversation = normalize_conversation(messages, tools)
    input_ids, labels, text = tokenize(conversation.messages, tokenizer, conversation.tools)
    marked = tokenizer.apply_chat_template(
        conversation.messages,
        tools=conversation.tools,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    assert {"input_ids", "assistant_masks"} <= set(marked.keys())
    assert marked["input_ids"] == input_ids
    assert list(marked["assistant_masks"]) == [int(label != IGNORE_INDEX) for label in labels]
    # ChatML shows reasoning on every turn, so each turn is trained as the template shows it.
    assert [tokenizer.decode(run) for run in runs(input_ids, labels, True)] == shown_assistant_turns(text)
