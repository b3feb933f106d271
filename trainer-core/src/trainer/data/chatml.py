"""ChatML, the chat format used when a tokenizer brings no chat template of its own."""

from __future__ import annotations

from trainer.profiles.base import Message

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"


def render_chatml(messages: list[Message], add_generation_prompt: bool = False) -> str:
    """Render messages as ChatML text.

    :param messages: ``{"role", "content"}`` dicts.
    :param add_generation_prompt: end with an open assistant turn, for generation.
    """
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    if add_generation_prompt:
        text += f"{IM_START}assistant\n"
    return text
