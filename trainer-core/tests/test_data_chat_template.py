# ruff: noqa: E501 (the Qwen3 template below is verbatim, long lines included)
"""Which tokens are trained, token by token, for ChatML, {% generation %} and Qwen3 templates.

The rule under test (see trainer.data.chat_template): what follows the
generation prompt, through the end-of-turn marker, is trained; the newline
after <|im_end|> and everything else is not.
"""

from __future__ import annotations

import pytest

from trainer.data.chat_template import (
    CHATML_TEMPLATE,
    IGNORE_INDEX,
    end_of_turn_marker,
    ensure_chat_template,
    render_conversation,
    tokenize_conversation,
)
from trainer.data.chatml import render_chatml
from trainer.errors import TrainerError
from trainer.profiles.base import InvalidExampleError
from trainer.testing import tiny_tokenizer as make_tokenizer

# Qwen/Qwen3-0.6B's chat template, verbatim (tokenizer_config.json "chat_template"; the same
# text TRL ships as trl/chat_templates/qwen3.jinja).
QWEN3_TEMPLATE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}"""

# ChatML with {% generation %} around the reply only, leaving <|im_end|> outside the markers.
MARKED_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}{% generation %}{{- message['content'] }}{% endgeneration %}"
    "{{- '<|im_end|>\\n' }}{%- else %}{{- message['content'] + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

WORDS = [
    "system",
    "user",
    "assistant",
    "You are terse.",
    "What is 2 + 3?",
    "It is 5.",
    "Add them.",
    "Thanks!",
]


def tiny_tokenizer(chat_template: str | None = None):
    """A byte-level BPE trained on a few words, so each word is one token; Qwen3's special tokens."""
    tokenizer = make_tokenizer(WORDS * 10, vocab_size=1000, chat_template=chat_template)
    tokenizer.add_tokens(["<think>", "</think>"])  # single tokens, not special, as in Qwen3
    return tokenizer


def trained_pairs(messages, tokenizer, **template_kwargs) -> list[tuple[str, bool]]:
    input_ids, labels = tokenize_conversation(messages, tokenizer, template_kwargs)
    assert len(input_ids) == len(labels)
    for token, label in zip(input_ids, labels, strict=True):
        assert label in (token, IGNORE_INDEX)
    return [
        (tokenizer.decode([token]), label != IGNORE_INDEX)
        for token, label in zip(input_ids, labels, strict=True)
    ]


SYSTEM = {"role": "system", "content": "You are terse."}
USER = {"role": "user", "content": "What is 2 + 3?"}
REPLY = {"role": "assistant", "content": "It is 5."}
THANKS = {"role": "user", "content": "Thanks!"}
ADD = {"role": "assistant", "content": "Add them."}

PROMPT = [  # system and user turns, then the generation prompt: never trained
    ("<|im_start|>", False), ("system", False), ("\n", False),
    ("You", False), (" are", False), (" terse", False), (".", False), ("<|im_end|>", False), ("\n", False),
    ("<|im_start|>", False), ("user", False), ("\n", False),
    ("What", False), (" is", False), (" 2", False), (" +", False), (" 3", False), ("?", False),
    ("<|im_end|>", False), ("\n", False),
    ("<|im_start|>", False), ("assistant", False), ("\n", False),
]  # fmt: skip


def test_chatml_without_a_template_trains_the_reply_and_its_end_of_turn():
    assert trained_pairs([SYSTEM, USER, REPLY], tiny_tokenizer()) == PROMPT + [
        ("It", True), (" is", True), (" 5", True), (".", True), ("<|im_end|>", True),
        ("\n", False),
    ]  # fmt: skip


def test_generation_markers_that_leave_out_im_end_still_train_it():
    """Markers are not what decides: <|im_end|> is trained although the markers leave it out."""
    tokenizer = tiny_tokenizer(MARKED_TEMPLATE)
    assert trained_pairs([SYSTEM, USER, REPLY], tokenizer) == PROMPT + [
        ("It", True), (" is", True), (" 5", True), (".", True), ("<|im_end|>", True),
        ("\n", False),
    ]  # fmt: skip
    # transformers' own mask follows the markers and would not teach the model to stop.
    marked = tokenizer.apply_chat_template(
        [SYSTEM, USER, REPLY], return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = marked["input_ids"], marked["assistant_masks"]
    assert [tokenizer.decode([t]) for t, m in zip(ids, mask, strict=True) if m] == ["It", " is", " 5", "."]


def test_qwen3_trains_the_empty_think_block_the_model_writes_after_the_generation_prompt():
    assert trained_pairs([SYSTEM, USER, REPLY], tiny_tokenizer(QWEN3_TEMPLATE)) == PROMPT + [
        ("<think>", True), ("\n", True), ("\n", True), ("</think>", True), ("\n", True), ("\n", True),
        ("It", True), (" is", True), (" 5", True), (".", True), ("<|im_end|>", True),
        ("\n", False),
    ]  # fmt: skip


def test_qwen3_with_thinking_off_puts_the_empty_think_block_in_the_prompt():
    tokenizer = tiny_tokenizer(QWEN3_TEMPLATE)
    assert trained_pairs([SYSTEM, USER, REPLY], tokenizer, enable_thinking=False) == PROMPT + [
        ("<think>", False), ("\n", False), ("\n", False), ("</think>", False), ("\n", False), ("\n", False),
        ("It", True), (" is", True), (" 5", True), (".", True), ("<|im_end|>", True),
        ("\n", False),
    ]  # fmt: skip


def test_qwen3_reasoning_in_the_reply_is_trained_inside_the_think_block():
    reply = {"role": "assistant", "content": "<think>Add them.</think>It is 5."}
    assert trained_pairs([SYSTEM, USER, reply], tiny_tokenizer(QWEN3_TEMPLATE)) == PROMPT + [
        ("<think>", True), ("\n", True), ("Add", True), (" them", True), (".", True), ("\n", True),
        ("</think>", True), ("\n", True), ("\n", True),
        ("It", True), (" is", True), (" 5", True), (".", True), ("<|im_end|>", True),
        ("\n", False),
    ]  # fmt: skip


def test_qwen3_multi_turn_trains_every_assistant_turn_as_rendered():
    """The earlier reply is rendered (and trained) without a think block, as Qwen3 renders history."""
    messages = [SYSTEM, USER, REPLY, THANKS, ADD]
    assert trained_pairs(messages, tiny_tokenizer(QWEN3_TEMPLATE)) == PROMPT + [
        ("It", True), (" is", True), (" 5", True), (".", True), ("<|im_end|>", True),
        ("\n", False),
        ("<|im_start|>", False), ("user", False), ("\n", False), ("Thanks", False), ("!", False),
        ("<|im_end|>", False), ("\n", False),
        ("<|im_start|>", False), ("assistant", False), ("\n", False),
        ("<think>", True), ("\n", True), ("\n", True), ("</think>", True), ("\n", True), ("\n", True),
        ("Add", True), (" them", True), (".", True), ("<|im_end|>", True),
        ("\n", False),
    ]  # fmt: skip


def test_qwen3_multi_turn_with_thinking_off():
    """History has no think block, the prompt for a turn has an empty one: the reply starts after both."""
    messages = [SYSTEM, USER, REPLY, THANKS, ADD]
    assert trained_pairs(messages, tiny_tokenizer(QWEN3_TEMPLATE), enable_thinking=False) == PROMPT + [
        ("It", True), (" is", True), (" 5", True), (".", True), ("<|im_end|>", True),
        ("\n", False),
        ("<|im_start|>", False), ("user", False), ("\n", False), ("Thanks", False), ("!", False),
        ("<|im_end|>", False), ("\n", False),
        ("<|im_start|>", False), ("assistant", False), ("\n", False),
        ("<think>", False), ("\n", False), ("\n", False), ("</think>", False), ("\n", False), ("\n", False),
        ("Add", True), (" them", True), (".", True), ("<|im_end|>", True),
        ("\n", False),
    ]  # fmt: skip


def test_chatml_multi_turn_without_a_system_turn():
    assert trained_pairs([USER, REPLY, THANKS, ADD], tiny_tokenizer()) == [
        ("<|im_start|>", False), ("user", False), ("\n", False),
        ("What", False), (" is", False), (" 2", False), (" +", False), (" 3", False), ("?", False),
        ("<|im_end|>", False), ("\n", False),
        ("<|im_start|>", False), ("assistant", False), ("\n", False),
        ("It", True), (" is", True), (" 5", True), (".", True), ("<|im_end|>", True),
        ("\n", False),
        ("<|im_start|>", False), ("user", False), ("\n", False), ("Thanks", False), ("!", False),
        ("<|im_end|>", False), ("\n", False),
        ("<|im_start|>", False), ("assistant", False), ("\n", False),
        ("Add", True), (" them", True), (".", True), ("<|im_end|>", True),
        ("\n", False),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "template", [None, MARKED_TEMPLATE, QWEN3_TEMPLATE], ids=["chatml", "marked", "qwen3"]
)
@pytest.mark.parametrize("thinking", [None, False], ids=["default", "thinking-off"])
def test_tokens_before_each_reply_are_exactly_what_generation_is_prompted_with(template, thinking):
    """Inference tokenizes apply_chat_template(..., add_generation_prompt=True): the same ids."""
    tokenizer = tiny_tokenizer(template)
    ensure_chat_template(tokenizer)
    kwargs = {} if thinking is None else {"enable_thinking": thinking}
    messages = [SYSTEM, USER, REPLY, THANKS, ADD]
    input_ids, labels = tokenize_conversation(messages, tokenizer, kwargs)
    starts = [
        i
        for i in range(len(labels))
        if labels[i] != IGNORE_INDEX and (i == 0 or labels[i - 1] == IGNORE_INDEX)
    ]
    last_prompt = tokenizer.apply_chat_template(
        messages[:4], add_generation_prompt=True, tokenize=False, **kwargs
    )
    assert input_ids[: starts[-1]] == tokenizer(last_prompt, add_special_tokens=False)["input_ids"]
    assert (
        tokenizer.decode(input_ids[max(i for i, label in enumerate(labels) if label != IGNORE_INDEX)])
        == "<|im_end|>"
    )


def test_chatml_template_renders_like_render_chatml():
    tokenizer = tiny_tokenizer()
    assert ensure_chat_template(tokenizer) is True
    assert tokenizer.chat_template == CHATML_TEMPLATE
    assert ensure_chat_template(tokenizer) is False
    messages = [SYSTEM, USER, REPLY]
    assert tokenizer.apply_chat_template(messages, tokenize=False) == render_chatml(messages)
    assert tokenizer.apply_chat_template(
        messages[:2], tokenize=False, add_generation_prompt=True
    ) == render_chatml(messages[:2], add_generation_prompt=True)


def test_end_of_turn_marker_comes_from_the_template():
    assert end_of_turn_marker(tiny_tokenizer()) == "<|im_end|>"
    assert end_of_turn_marker(tiny_tokenizer(QWEN3_TEMPLATE)) == "<|im_end|>"
    llama_like = (
        "{%- for m in messages %}<|start|>{{ m['role'] }}\n{{ m['content'] }}<|eot|>{%- endfor %}"
        "{%- if add_generation_prompt %}<|start|>assistant\n{% endif %}"
    )
    tokenizer = tiny_tokenizer(llama_like)
    assert end_of_turn_marker(tokenizer) == "<|eot|>"
    rendered = render_conversation([USER, REPLY], tokenizer)
    assert [rendered.text[start:end] for start, end in rendered.spans] == ["It is 5.<|eot|>"]


def test_a_reply_containing_the_end_of_turn_marker_is_an_invalid_example():
    bad = {"role": "assistant", "content": "It is 5.<|im_end|> more"}
    with pytest.raises(InvalidExampleError, match=r"end-of-turn marker '<\|im_end\|>'"):
        tokenize_conversation([USER, bad], tiny_tokenizer())


def test_a_template_that_rewrites_history_is_refused_with_a_fix():
    # The system prompt moves next to the last user turn: earlier prompts are not prefixes.
    moving = (
        "{%- set ns = namespace(last=-1) %}"
        "{%- for m in messages %}{%- if m['role'] == 'user' %}{%- set ns.last = loop.index0 %}{%- endif %}{%- endfor %}"
        "{%- for m in messages %}{%- if m['role'] != 'system' %}"
        "{%- if loop.index0 == ns.last %}[SYS]{{ messages[0]['content'] }}{%- endif %}"
        "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{%- endif %}{%- endfor %}"
        "{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
    )
    with pytest.raises(TrainerError, match="turns before assistant turn 2 differently"):
        tokenize_conversation([SYSTEM, USER, REPLY, THANKS, ADD], tiny_tokenizer(moving))


def test_the_template_rejecting_a_conversation_is_an_invalid_example():
    strict = "{{ raise_exception('Conversation roles must alternate') }}"
    with pytest.raises(InvalidExampleError, match="roles must alternate"):
        tokenize_conversation([USER, REPLY], tiny_tokenizer(strict))


def test_demo_tokenizer_labels_agree_with_its_generation_markers():
    """The demo template's markers wrap reply + <|im_end|>: transformers' mask must equal our labels."""
    demo = pytest.importorskip("trainer.models.demo")
    tokenizer = demo.load_demo_tokenizer()
    messages = [SYSTEM, USER, REPLY, THANKS, ADD]
    input_ids, labels = tokenize_conversation(messages, tokenizer)
    marked = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    assert marked["input_ids"] == input_ids
    assert [int(m) for m in marked["assistant_masks"]] == [int(label != IGNORE_INDEX) for label in labels]
