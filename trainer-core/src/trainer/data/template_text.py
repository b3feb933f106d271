"""A model's chat template rendered to text without loading its tokenizer.

``trainer preview`` shows the text a run's chat template makes of each row. It
needs only Jinja and the template, not transformers (and so not torch):
:class:`TemplateText` reads the template and the special tokens it may print
from a model directory and renders them the way transformers'
``apply_chat_template(..., tokenize=False)`` does: a sandboxed Jinja
environment with ``trim_blocks`` and ``lstrip_blocks``, a ``tojson`` that does
not escape HTML, ``raise_exception`` and ``strftime_now``, ``{% generation %}``
blocks rendered as their content, and reasoning offered under every name
templates read it by. A test holds it equal to transformers on Qwen3's
template and on trainer's ChatML.

It stands in for a tokenizer in :func:`trainer.data.chat_template.render_conversation`,
which only renders; tokenizing needs the real tokenizer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from trainer.errors import TrainerError

TEMPLATE_FILE = "chat_template.jinja"
TEMPLATE_DIR = "additional_chat_templates"  # named templates saved beside chat_template.jinja
TOKENIZER_CONFIG = "tokenizer_config.json"
_SPECIAL = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_REASONING_NAMES = ("reasoning_content", "thinking", "reasoning")


class TemplateText:
    """A chat template and the special tokens it may print: renders like a tokenizer's template.

    :ivar chat_template: the Jinja source, or ``None`` (trainer's ChatML is used then).
    :ivar templates: named templates (``default``, ``tool_use``, ...) when the directory has several;
        as in transformers, ``tool_use`` renders a conversation with tools.
    """

    def __init__(
        self,
        chat_template: str | None,
        special_tokens: dict[str, str] | None = None,
        templates: dict[str, str] | None = None,
    ) -> None:
        self.chat_template = chat_template
        self.templates = dict(templates or {})
        self.special_tokens = dict(special_tokens or {})
        for name in _SPECIAL:
            setattr(self, name, self.special_tokens.get(name))

    @classmethod
    def from_directory(cls, directory: str | Path) -> TemplateText:
        """The template of a model or tokenizer directory (``chat_template.jinja`` or
        ``tokenizer_config.json``), with its special tokens.

        :raises TrainerError: the directory's tokenizer config is not valid JSON.
        """
        path = Path(directory)
        config: dict[str, Any] = {}
        if (path / TOKENIZER_CONFIG).is_file():
            try:
                config = json.loads((path / TOKENIZER_CONFIG).read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise TrainerError(
                    f"{path / TOKENIZER_CONFIG} is not valid JSON ({exc}); the model directory is damaged"
                ) from None
        # As transformers loads them: template files, when there are any, replace the config's entry.
        named: dict[str, Any] = {}
        if (path / TEMPLATE_FILE).is_file():
            named["default"] = (path / TEMPLATE_FILE).read_text(encoding="utf-8")
        if (path / TEMPLATE_DIR).is_dir():
            for file in sorted((path / TEMPLATE_DIR).glob("*.jinja")):
                named[file.name.removesuffix(".jinja")] = file.read_text(encoding="utf-8")
        if not named:
            template = config.get("chat_template")
            if isinstance(template, list):
                named = {
                    str(item.get("name")): item.get("template") for item in template if isinstance(item, dict)
                }
            elif isinstance(template, dict):
                named = dict(template)
            else:
                named = {"default": template}
        templates = {
            name: text for name, text in named.items() if isinstance(name, str) and isinstance(text, str)
        }
        special = {name: _token_text(config.get(name)) for name in _SPECIAL}
        return cls(templates.get("default"), {k: v for k, v in special.items() if v}, templates)

    def apply_chat_template(
        self,
        conversation: Sequence[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        documents: list[dict[str, Any]] | None = None,
        chat_template: str | None = None,
        add_generation_prompt: bool = False,
        tokenize: bool = False,
        **kwargs: Any,
    ) -> str:
        """The rendered text, as the tokenizer's ``apply_chat_template(..., tokenize=False)`` gives it."""
        if tokenize:
            raise TypeError("TemplateText renders text only; tokenize with the model's tokenizer")
        source = self.templates.get(chat_template, chat_template) if chat_template else None
        if source is None and tools is not None and "tool_use" in self.templates:
            source = self.templates["tool_use"]
        source = source or self.chat_template
        if source is None:
            raise TypeError("no chat template to render with")
        # Like transformers: keys whose value is None are left out, reasoning goes under each name.
        messages = [
            _with_reasoning_names({key: value for key, value in message.items() if value is not None})
            for message in conversation
        ]
        variables = {**self.special_tokens, **kwargs}
        return _compiled(source).render(
            messages=messages,
            tools=tools,
            documents=documents,
            add_generation_prompt=add_generation_prompt,
            **variables,
        )


def _token_text(token: Any) -> str | None:
    if isinstance(token, dict):  # {"content": "<|im_end|>", ...} in older tokenizer configs
        token = token.get("content")
    return token if isinstance(token, str) else None


def _with_reasoning_names(message: dict[str, Any]) -> dict[str, Any]:
    reasoning = next((message[key] for key in _REASONING_NAMES if message.get(key) is not None), None)
    if reasoning is None:
        return message
    return {"thinking": reasoning, **message, "reasoning_content": reasoning}


@lru_cache(maxsize=16)
def _compiled(source: str) -> Any:
    import jinja2
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        # {% generation %}...{% endgeneration %} marks what the model writes; as text, just its body.
        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(
        value: Any,
        ensure_ascii: bool = False,
        indent: int | None = None,
        separators: Any = None,
        sort_keys: bool = False,
    ) -> str:
        return json.dumps(
            value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols]
    )
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return environment.from_string(source)
