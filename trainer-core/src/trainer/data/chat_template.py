"""A conversation through the tokenizer's chat template: token ids and training labels.

The rule for labels, the same for every template:

    The model is trained on exactly the text it has to write at inference: what
    follows the generation prompt (``apply_chat_template(...,
    add_generation_prompt=True)``) up to and including the end-of-turn marker
    (``<|im_end|>`` in ChatML). Everything else is ``-100``.

So the end-of-turn token is trained, and the model learns to stop; the
newline a ChatML template writes after ``<|im_end|>`` is not, since generation
has stopped before it. ``{% generation %}`` markers are not needed (a
template's markers are rendered as plain text and do not change the labels).

For Qwen3's template this means the ``<think>\\n\\n</think>\\n\\n`` block the
template writes into the final assistant turn is trained: with
``add_generation_prompt=True`` the prompt ends at ``<|im_start|>assistant\\n``
and the model writes the block itself. With ``enable_thinking=False`` in
``template_kwargs`` the block belongs to the generation prompt instead, and is
not trained. Earlier assistant turns of a multi-turn conversation are trained
as the template renders them in the history (Qwen3 leaves their think block
out); where the generation prompt adds text that history leaves out (Qwen3
with ``enable_thinking=False``), the reply starts where the two part ways.

Tool-call turns are assistant turns and are trained like any other; system,
user and tool turns never are. ``trained_turns="last"`` trains only the last
assistant turn. Because the spans come from the rendering of the whole
conversation, what is trained is exactly what the template shows: Qwen3 drops
the ``reasoning_content`` of assistant turns before the last user query, so
that reasoning is neither shown nor trained.

A conversation's ``tools`` go to the template's ``tools`` argument. A template
that shows no ``reasoning_content`` gets the reasoning written into the
content as ``<think>\n...\n</think>\n\n`` instead; a template that shows no
tools or no tool calls cannot train a conversation that has them (an error
says so, rather than dropping them). A tokenizer without a chat template gets
:data:`CHATML_TEMPLATE`, which shows all of them.

Each prompt part and each assistant part is tokenized on its own, so a
trained span starts on a token boundary, exactly where generation starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from trainer.conversation.model import Message
from trainer.data.chatml import CHATML_TEMPLATE, IM_END
from trainer.errors import InvalidExampleError, TrainerError

__all__ = [
    "CHATML_TEMPLATE",
    "IGNORE_INDEX",
    "TRAINED_TURNS",
    "RenderedConversation",
    "TokenizedConversation",
    "end_of_turn_marker",
    "ensure_chat_template",
    "render_conversation",
    "render_prompt",
    "template_messages",
    "tokenize_conversation",
]

IGNORE_INDEX = -100
"""The label of a token the loss ignores (PyTorch's cross-entropy default)."""

TRAINED_TURNS = ("all", "last")
"""Which assistant turns are trained: every one, or only the last (``data.trained_turns``)."""

# Stand in for an assistant reply, a reasoning, a tool, when finding what a template writes.
_PROBE_REPLY = "TRAINER-PROBE-REPLY"
_PROBE_REASONING = "TRAINER-PROBE-REASONING"
_PROBE_TOOL = "trainer_probe_tool"
_end_of_turn_cache: dict[tuple[str, str], str] = {}
_features_cache: dict[str, dict[str, bool]] = {}


class TokenizedConversation(NamedTuple):
    """A conversation as token ids, with ``labels`` equal to ``input_ids`` on trained tokens."""

    input_ids: list[int]
    labels: list[int]


class RenderedConversation(NamedTuple):
    """A conversation rendered by the chat template, and where its trained text lies."""

    text: str
    spans: list[tuple[int, int]]
    """``(start, end)`` character offsets in ``text`` of each assistant turn's trained text."""


def ensure_chat_template(tokenizer: Any) -> bool:
    """Give ``tokenizer`` the ChatML template when it has no chat template.

    Set on the tokenizer itself, so that the tokenizer saved with the trained
    model renders prompts exactly as training did.

    :return: whether ChatML was set.
    """
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = CHATML_TEMPLATE
    return True


def render_conversation(
    messages: Sequence[Message],
    tokenizer: Any,
    template_kwargs: Mapping[str, Any] | None = None,
    *,
    tools: list[dict[str, Any]] | None = None,
    trained_turns: str = "all",
) -> RenderedConversation:
    """Render ``messages`` with the tokenizer's chat template and find the assistant text to train.

    :param template_kwargs: extra variables for the template, e.g. ``{"enable_thinking": False}``;
        use the same ones at inference.
    :param tools: the conversation's tool schemas, for the template's ``tools`` argument.
    :param trained_turns: ``all`` assistant turns, or only the ``last``.
    :raises InvalidExampleError: the template rejects the conversation, an
        assistant turn contains the end-of-turn marker, or the text holds a lone
        surrogate (half a character, which no tokenizer encodes).
    :raises TrainerError: the template cannot be used for training, or cannot
        show the conversation's tools or calls (see the message).
    """
    if trained_turns not in TRAINED_TURNS:
        raise TrainerError(f"trained_turns must be one of {', '.join(TRAINED_TURNS)}, got {trained_turns!r}")
    kwargs = dict(template_kwargs or {})
    if tools:
        kwargs["tools"] = tools
    messages = template_messages(messages, tokenizer, tools)
    end_of_turn = end_of_turn_marker(tokenizer, template_kwargs)
    text = _render(tokenizer, messages, False, kwargs)
    _check_encodable(text)
    spans: list[tuple[int, int]] = []
    position = 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if any(end_of_turn in str(message.get(key) or "") for key in ("content", "reasoning_content")):
            raise InvalidExampleError(
                f"assistant turn {index} contains the end-of-turn marker {end_of_turn!r}, which would "
                "end the turn early; remove it from the row"
            )
        start = _reply_start(tokenizer, messages[:index], text, kwargs)
        if start is None or start < position:
            raise TrainerError(
                f"the chat template renders the turns before assistant turn {index} differently on their "
                "own than inside the whole conversation, so the assistant's tokens cannot be located. "
                "Use a template whose generation prompt is a prefix of the rendered conversation "
                "(ChatML is: remove the tokenizer's chat_template to use it)"
            )
        end = text.find(end_of_turn, start)
        if end == -1:
            raise TrainerError(
                f"the chat template wrote no end-of-turn marker {end_of_turn!r} after assistant turn "
                f"{index}. Use a template that closes every assistant turn the same way"
            )
        spans.append((start, end + len(end_of_turn)))
        position = end + len(end_of_turn)
    return RenderedConversation(text, spans[-1:] if trained_turns == "last" else spans)


def render_prompt(
    messages: Sequence[Message],
    tokenizer: Any,
    template_kwargs: Mapping[str, Any] | None = None,
    *,
    tools: list[dict[str, Any]] | None = None,
) -> str:
    """The text a model continues from to answer ``messages``: the conversation and the generation prompt.

    Rendered as in training (:func:`render_conversation`): the same template,
    tools and reasoning fallback.
    """
    kwargs = dict(template_kwargs or {})
    if tools:
        kwargs["tools"] = tools
    return _render(tokenizer, template_messages(messages, tokenizer, tools), True, kwargs)


def template_messages(
    messages: Sequence[Message], tokenizer: Any, tools: list[dict[str, Any]] | None = None
) -> list[Message]:
    """``messages`` as the tokenizer's template takes them.

    Reasoning is written into the content (``<think>\n...\n</think>\n\n``)
    when the template shows no ``reasoning_content``.

    :raises TrainerError: the conversation has tools or tool calls and the
        template shows none.
    """
    features = template_features(tokenizer)
    if tools and not features["tools"]:
        raise TrainerError(_cannot_show("the conversation's tools"))
    if any(m.get("tool_calls") for m in messages) and not features["tool_calls"]:
        raise TrainerError(_cannot_show("assistant tool_calls"))
    if features["reasoning"]:
        return [dict(message) for message in messages]
    result = []
    for message in messages:
        message = dict(message)
        reasoning = message.pop("reasoning_content", None)
        if reasoning is not None:
            message["content"] = f"<think>\n{reasoning}\n</think>\n\n{message['content']}"
        result.append(message)
    return result


def template_features(tokenizer: Any) -> dict[str, bool]:
    """Whether the tokenizer's template shows ``tools``, assistant ``tool_calls`` and ``reasoning_content``.

    Found by rendering probe conversations, so it works for any template.
    """
    template = repr(_template(tokenizer))
    cached = _features_cache.get(template)
    if cached is not None:
        return cached
    tool = {"type": "function", "function": {"name": _PROBE_TOOL, "parameters": {"type": "object"}}}
    call = {"type": "function", "function": {"name": _PROBE_TOOL, "arguments": {}}}
    user = {"role": "user", "content": "Hi"}
    probes: dict[str, tuple[list[Message], dict[str, Any], str]] = {
        "tools": ([user, {"role": "assistant", "content": "Hello"}], {"tools": [tool]}, _PROBE_TOOL),
        "tool_calls": ([user, {"role": "assistant", "content": "", "tool_calls": [call]}], {}, _PROBE_TOOL),
        "reasoning": (
            [user, {"role": "assistant", "content": "Hello", "reasoning_content": _PROBE_REASONING}],
            {},
            _PROBE_REASONING,
        ),
    }
    features = {}
    for feature, (probe, kwargs, mark) in probes.items():
        try:
            features[feature] = mark in _render(tokenizer, probe, False, kwargs)
        except (InvalidExampleError, TypeError, KeyError, ValueError):
            features[feature] = False
    _features_cache[template] = features
    return features


def _cannot_show(what: str) -> str:
    return (
        f"the model's chat template does not show {what}, so they would be dropped from training. Use a "
        "model whose template supports tools (Qwen3's does), or remove the tokenizer's chat_template so "
        "that trainer's ChatML fallback (which shows tools, calls and results) is used"
    )


def tokenize_conversation(
    messages: Sequence[Message],
    tokenizer: Any,
    template_kwargs: Mapping[str, Any] | None = None,
    *,
    tools: list[dict[str, Any]] | None = None,
    trained_turns: str = "all",
) -> TokenizedConversation:
    """Token ids of the rendered conversation, with labels on the assistant's tokens only.

    Labels are the token ids on assistant text (end-of-turn marker included)
    and :data:`IGNORE_INDEX` elsewhere; see the module docstring for the rule.
    A tokenizer without a chat template renders ChatML.

    :param tools: the conversation's tool schemas.
    :param trained_turns: ``all`` assistant turns, or only the ``last``.
    :raises InvalidExampleError: see :func:`render_conversation`.
    :raises TrainerError: see :func:`render_conversation`.
    """
    rendered = render_conversation(
        messages, tokenizer, template_kwargs, tools=tools, trained_turns=trained_turns
    )
    pieces: list[tuple[str, bool]] = []
    position = 0
    for start, end in rendered.spans:
        pieces += [(rendered.text[position:start], False), (rendered.text[start:end], True)]
        position = end
    pieces.append((rendered.text[position:], False))
    pieces = [(text, trained) for text, trained in pieces if text]
    encoded = tokenizer([text for text, _ in pieces], add_special_tokens=False)["input_ids"]
    input_ids: list[int] = []
    labels: list[int] = []
    for ids, (_, trained) in zip(encoded, pieces, strict=True):
        input_ids += ids
        labels += ids if trained else [IGNORE_INDEX] * len(ids)
    return TokenizedConversation(input_ids, labels)


def _reply_start(tokenizer: Any, before: Sequence[Message], text: str, kwargs: dict[str, Any]) -> int | None:
    """Where the reply after the turns ``before`` starts in ``text``, the whole conversation."""
    prompt = _render(tokenizer, before, True, kwargs)
    if text.startswith(prompt):
        return len(prompt)
    # The generation prompt may add text the template leaves out of history (Qwen3 with
    # enable_thinking=False adds an empty think block): if the history itself renders the
    # same, the reply starts where the prompt and the conversation part ways.
    history = _render(tokenizer, before, False, kwargs)
    if not text.startswith(history):
        return None
    start = len(history)
    while start < min(len(prompt), len(text)) and prompt[start] == text[start]:
        start += 1
    return start


def end_of_turn_marker(tokenizer: Any, template_kwargs: Mapping[str, Any] | None = None) -> str:
    """The text the chat template writes right after an assistant reply (``<|im_end|>`` for ChatML).

    Found by rendering a probe conversation, so it works for any template.

    :raises TrainerError: the template writes nothing after a reply, so the
        model could never learn where to stop.
    """
    kwargs = dict(template_kwargs or {})
    key = (repr(_template(tokenizer)), repr(sorted(kwargs.items())) + repr(_special_tokens(tokenizer)))
    cached = _end_of_turn_cache.get(key)
    if cached is not None:
        return cached
    probe = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": _PROBE_REPLY}]
    try:
        text = _render(tokenizer, probe, False, kwargs)
    except InvalidExampleError:
        text = ""
    after = text[text.rfind(_PROBE_REPLY) + len(_PROBE_REPLY) :] if _PROBE_REPLY in text else ""
    marker = after.split()[0] if after.split() else (getattr(tokenizer, "eos_token", None) or "")
    if not marker:
        raise TrainerError(
            "the chat template writes nothing after an assistant reply, so the model could not learn "
            f"where to stop. Use a template that ends each assistant turn with a marker such as {IM_END}"
        )
    _end_of_turn_cache[key] = marker
    return marker


def _render(
    tokenizer: Any, messages: Sequence[Message], generation_prompt: bool, kwargs: dict[str, Any]
) -> str:
    from jinja2 import TemplateError

    try:
        text = tokenizer.apply_chat_template(
            [dict(message) for message in messages],
            chat_template=None if tokenizer.chat_template else CHATML_TEMPLATE,
            add_generation_prompt=generation_prompt,
            tokenize=False,
            **kwargs,
        )
    except TemplateError as exc:
        raise InvalidExampleError(f"the chat template rejected the conversation: {exc}") from None
    return str(text)


def _check_encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidExampleError(
            f"the text holds {text[exc.start]!r}, half of a character (a lone surrogate), which no "
            "tokenizer encodes; fix the row"
        ) from None


def _template(tokenizer: Any) -> Any:
    return getattr(tokenizer, "chat_template", None) or CHATML_TEMPLATE


def _special_tokens(tokenizer: Any) -> tuple[Any, ...]:
    # Templates may print bos/eos tokens, so the marker depends on them too.
    return (getattr(tokenizer, "bos_token", None), getattr(tokenizer, "eos_token", None))
