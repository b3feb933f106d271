"""The worked examples of the conversations page, rendered by the real Qwen3 template.

``docs/pages/conversations.md`` holds, between ``<!-- BEGIN generated: qwen3-examples -->``
and ``<!-- END generated: qwen3-examples -->``, a tool-use row and a reasoning row
as Qwen3's chat template renders them and the text trained in each. The block is
committed (the docs build has no tokenizer to render with); a test renders it
again with ``../shared/models/qwen3-tokenizer`` and fails when it is stale.
Rewrite it with::

    python -m trainer.reference_conversations ../shared/models/qwen3-tokenizer docs/pages/conversations.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BEGIN = "<!-- BEGIN generated: qwen3-examples -->"
END = "<!-- END generated: qwen3-examples -->"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

EXAMPLE_ROWS: list[tuple[str, dict[str, Any]]] = [
    (
        "A tool-use row: a call, its result, the final answer",
        {
            "messages": [
                {"role": "user", "content": "Do I need a coat in Oslo today?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                        }
                    ],
                },
                {"role": "tool", "name": "get_weather", "content": '{"temp_c": 3, "sky": "rain"}'},
                {"role": "assistant", "content": "Yes: it is 3 °C and raining in Oslo."},
            ],
            "tools": [WEATHER_TOOL],
        },
    ),
    (
        "A reasoning row: two turns, each with reasoning_content",
        {
            "messages": [
                {"role": "user", "content": "What is 17 + 25?"},
                {"role": "assistant", "content": "42", "reasoning_content": "17 + 25 = 42."},
                {"role": "user", "content": "And doubled?"},
                {"role": "assistant", "content": "84", "reasoning_content": "42 * 2 = 84."},
            ]
        },
    ),
]
"""Rows shown on the page, in the OpenAI / Hugging Face layout."""


def qwen3_examples(tokenizer: Any) -> str:
    """Markdown: each example row, the text Qwen3's template renders, and the spans trained."""
    from trainer.data.chat_template import render_conversation, tokenize_conversation
    from trainer.data.conversation import build_conversation
    from trainer.profiles.chat import ChatProfile
    from trainer.reference import _row_json

    lines: list[str] = []
    for title, row in EXAMPLE_ROWS:
        conversation = build_conversation(ChatProfile(), row, "You are a helpful assistant.", [])
        rendered = render_conversation(conversation.messages, tokenizer, tools=conversation.tools)
        ids, labels = tokenize_conversation(conversation.messages, tokenizer, tools=conversation.tools)
        trained = sum(label != -100 for label in labels)
        lines += [f"### {title}", "", "```json", _row_json(row), "```", ""]
        lines += ["Rendered by Qwen3's chat template (`trainer preview --tokens` shows the same):", ""]
        lines += ["```text", rendered.text.rstrip("\n"), "```", ""]
        lines += [f"{len(ids)} tokens, {trained} of them trained. The trained text, span by span:", ""]
        for number, (start, end) in enumerate(rendered.spans, start=1):
            lines += [f"{number}. `{json.dumps(rendered.text[start:end], ensure_ascii=False)}`"]
        lines.append("")
    return "\n".join(lines)


def replace_block(page: str, block: str) -> str:
    """``page`` with the text between :data:`BEGIN` and :data:`END` replaced by ``block``."""
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    return page[:start] + "\n\n" + block.rstrip("\n") + "\n\n" + page[end:]


def committed_block(page: str) -> str:
    """The text between :data:`BEGIN` and :data:`END` in ``page``, as :func:`qwen3_examples` writes it."""
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    return page[start:end].strip("\n") + "\n"


def main(argv: list[str]) -> int:
    """Rewrite the generated block of a page: ``TOKENIZER_DIR PAGE``."""
    from transformers import AutoTokenizer

    tokenizer_dir, page_path = argv
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    page = Path(page_path)
    text = replace_block(page.read_text(encoding="utf-8"), qwen3_examples(tokenizer))
    page.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
