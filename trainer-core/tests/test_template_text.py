"""TemplateText renders a chat template to exactly the text transformers renders.

``trainer preview`` shows a row through the model's chat template without
loading transformers (trainer.data.template_text). Each case below is rendered
twice, by TemplateText.from_directory and by the real tokenizer's
``apply_chat_template(..., tokenize=False)``, for Qwen3's template
(../shared/models/qwen3-tokenizer, stored in tokenizer_config.json) and the demo
model's ChatML (chat_template.jinja); the texts must be equal.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.data.chat_template import CHATML_TEMPLATE, render_conversation
from trainer.data.template_text import TemplateText
from trainer.models.demo import DEMO_TOKENIZER_DIR

QWEN3_TOKENIZER = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "qwen3-tokenizer"
DEMO = Path(DEMO_TOKENIZER_DIR)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def call(name: str, **arguments) -> dict:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


USER = {"role": "user", "content": "What is 2 + 3?"}
REPLY = {"role": "assistant", "content": "It is 5."}
SYSTEM = {"role": "system", "content": "You are terse."}
CASES = {
    "single turn": ([USER, REPLY], None),
    "multi-turn": ([USER, REPLY, {"role": "user", "content": "4 + 4?"}, {**REPLY, "content": "8"}], None),
    "system turn": ([SYSTEM, USER, REPLY], None),
    "tool call, result, answer": (
        [
            SYSTEM,
            {"role": "user", "content": "Coat in Oslo?"},
            {"role": "assistant", "content": "", "tool_calls": [call("get_weather", city="Oslo")]},
            {"role": "tool", "name": "get_weather", "content": '{"temp_c": 3}'},
            {"role": "assistant", "content": "Yes: 3 °C <b>&</b> rain."},
        ],
        [WEATHER, TIME],
    ),
    "parallel calls": (
        [
            {"role": "user", "content": "Weather and time in Oslo?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                call("get_weather", city="Oslo"), call("get_time")]},
            {"role": "tool", "name": "get_weather", "content": "rain"},
            {"role": "tool", "name": "get_time", "content": "09:00"},
            {"role": "assistant", "content": "Rain, and it is 9."},
        ],
        [WEATHER, TIME],
    ),
    "reasoning on two turns": (
        [
            USER,
            {"role": "assistant", "content": "5", "reasoning_content": "FIRST: 2 + 3."},
            {"role": "user", "content": "Doubled?"},
            {"role": "assistant", "content": "10", "reasoning_content": "SECOND: 5 * 2."},
        ],
        None,
    ),
    "reasoning on two tool steps": (
        [
            {"role": "user", "content": "Coat in Oslo?"},
            {"role": "assistant", "content": "", "reasoning_content": "STEP-1", "tool_calls": [
                call("get_weather", city="Oslo")]},
            {"role": "tool", "content": "rain"},
            {"role": "assistant", "content": "Yes.", "reasoning_content": "STEP-2"},
        ],
        [WEATHER],
    ),
    "raw variants: JSON-string arguments, think in content": (
        [
            {"role": "user", "content": "Coat?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
            {"role": "tool", "content": "rain"},
            {"role": "assistant", "content": "<think>\nwet\n</think>\n\nYes."},
        ],
        [WEATHER],
    ),
}  # fmt: skip


def tokenizer_dir(name: str) -> Path:
    if name == "qwen3":
        assert QWEN3_TOKENIZER.is_dir(), (
            f"{QWEN3_TOKENIZER} is missing: the tests need ../shared/models/qwen3-tokenizer "
            "beside the repository"
        )
        return QWEN3_TOKENIZER
    return DEMO


_loaded: dict[Path, object] = {}


def real_tokenizer(directory: Path):
    from transformers import AutoTokenizer

    if directory not in _loaded:
        _loaded[directory] = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    return _loaded[directory]


def assert_same_text(directory: Path, messages, tools=None, **kwargs) -> str:
    expected = real_tokenizer(directory).apply_chat_template(messages, tools=tools, tokenize=False, **kwargs)
    text = TemplateText.from_directory(directory).apply_chat_template(
        messages, tools=tools, tokenize=False, **kwargs
    )
    assert text == expected
    return text


@pytest.mark.parametrize("model", ["qwen3", "demo"])
@pytest.mark.parametrize("case", list(CASES))
def test_renders_what_transformers_renders(model, case):
    directory = tokenizer_dir(model)
    messages, tools = CASES[case]
    whole = assert_same_text(directory, messages, tools, add_generation_prompt=False)
    prompt = assert_same_text(directory, messages[:-1], tools, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert not whole.endswith("<|im_start|>assistant\n")
    if tools:
        assert "<tools>" in whole and "<tool_call>" in whole


@pytest.mark.parametrize("case", ["single turn", "reasoning on two turns", "tool call, result, answer"])
def test_enable_thinking_false_renders_what_transformers_renders(case):
    messages, tools = CASES[case]
    prompt = assert_same_text(
        tokenizer_dir("qwen3"), messages[:-1], tools, add_generation_prompt=True, enable_thinking=False
    )
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # the kwarg reached the template
    assert_same_text(tokenizer_dir("qwen3"), messages, tools, enable_thinking=False)


@pytest.mark.parametrize("model", ["qwen3", "demo"])
def test_trainer_renders_the_same_text_and_spans_through_either(model):
    """render_conversation, as preview calls it on a TemplateText and training on the tokenizer."""
    directory = tokenizer_dir(model)
    messages, tools = CASES["reasoning on two tool steps"]
    expected = render_conversation(messages, real_tokenizer(directory), tools=tools)
    assert render_conversation(messages, TemplateText.from_directory(directory), tools=tools) == expected
    assert len(expected.spans) == 2


def test_qwen3_template_comes_from_tokenizer_config_and_demo_from_jinja_file():
    assert not (tokenizer_dir("qwen3") / "chat_template.jinja").exists()
    config = json.loads((QWEN3_TOKENIZER / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert TemplateText.from_directory(QWEN3_TOKENIZER).chat_template == config["chat_template"]
    assert TemplateText.from_directory(DEMO).chat_template == (DEMO / "chat_template.jinja").read_text(
        encoding="utf-8"
    )


def copy_demo(tmp_path: Path, **config) -> Path:
    """The demo tokenizer in a folder of its own, its tokenizer_config.json updated with ``config``."""
    directory = tmp_path / "tokenizer"
    directory.mkdir()
    shutil.copy(DEMO / "tokenizer.json", directory)
    settings = json.loads((DEMO / "tokenizer_config.json").read_text(encoding="utf-8"))
    settings.update(config)
    (directory / "tokenizer_config.json").write_text(json.dumps(settings), encoding="utf-8")
    return directory


# What transformers gives every template: special tokens (sep, cls, mask too), documents=None,
# and messages without their None-valued keys.
PROBING_TEMPLATE = (
    "{% for m in messages %}[{{ m.role }}{% if m.content is defined %}:{{ m.content }}{% endif %}]"
    "{% endfor %}"
    "{{ bos_token }}|{{ eos_token }}|{{ sep_token }}|{{ cls_token }}|{{ mask_token }}"
    "{% if documents is not none %} DOCUMENTS{% endif %}{% if tools %} TOOLS{% endif %}"
    "{% if add_generation_prompt %} GO{% endif %}"
)


def test_template_stored_in_tokenizer_config(tmp_path: Path):
    directory = copy_demo(
        tmp_path, chat_template=PROBING_TEMPLATE, bos_token="<|endoftext|>", sep_token="<|im_start|>"
    )
    assert not (directory / "chat_template.jinja").exists()
    assert TemplateText.from_directory(directory).chat_template == PROBING_TEMPLATE
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": [call("f")]},
    ]
    text = assert_same_text(directory, messages, [TIME], add_generation_prompt=True)
    assert text == "[user:Hi][assistant]<|endoftext|>|<|im_end|>|<|im_start|>|| TOOLS GO"


@pytest.mark.parametrize("layout", ["tokenizer_config.json list", "additional_chat_templates folder"])
def test_named_templates_pick_tool_use_when_tools_are_given(tmp_path: Path, layout):
    if layout == "tokenizer_config.json list":
        named = [{"name": "default", "template": "DEFAULT"}, {"name": "tool_use", "template": "TOOL-USE"}]
        directory = copy_demo(tmp_path, chat_template=named)
    else:
        directory = copy_demo(tmp_path)
        (directory / "chat_template.jinja").write_text("DEFAULT", encoding="utf-8")
        (directory / "additional_chat_templates").mkdir()
        (directory / "additional_chat_templates" / "tool_use.jinja").write_text("TOOL-USE", encoding="utf-8")
    messages = [USER]
    assert assert_same_text(directory, messages) == "DEFAULT"
    assert assert_same_text(directory, messages, [WEATHER]) == "TOOL-USE"
    assert TemplateText.from_directory(directory).chat_template == "DEFAULT"


def test_directory_without_a_template(tmp_path: Path):
    directory = copy_demo(tmp_path)
    assert real_tokenizer(directory).chat_template is None
    template = TemplateText.from_directory(directory)
    assert template.chat_template is None
    with pytest.raises(TypeError, match="no chat template"):
        template.apply_chat_template([USER], tokenize=False)
    # trainer renders such a model with its ChatML, on the tokenizer and on TemplateText alike
    messages, tools = CASES["tool call, result, answer"]
    assert render_conversation(messages, template, tools=tools) == render_conversation(
        messages, real_tokenizer(directory), tools=tools
    )
    assert (
        assert_same_text(directory, messages, tools, chat_template=CHATML_TEMPLATE).count("<tool_call>\n{")
        == 2
    )


def test_damaged_tokenizer_config_is_one_trainer_error(tmp_path: Path):
    from trainer.errors import TrainerError

    (tmp_path / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TrainerError, match="tokenizer_config.json is not valid JSON"):
        TemplateText.from_directory(tmp_path)


NO_ML_STACK = """
import json, sys
from trainer.data.template_text import TemplateText
from trainer.data.chat_template import render_conversation
messages = [{{"role": "user", "content": "Hi"}}, {{"role": "assistant", "content": "Hello"}}]
for directory in {directories!r}:
    template = TemplateText.from_directory(directory)
    assert "Hello<|im_end|>" in template.apply_chat_template(messages, tokenize=False)
    assert render_conversation(messages, template).spans
print(json.dumps(sorted(name for name in ("torch", "transformers") if name in sys.modules)))
"""


def test_rendering_imports_neither_torch_nor_transformers():
    directories = [str(tokenizer_dir("qwen3")), str(DEMO)]
    completed = subprocess.run(
        [sys.executable, "-c", NO_ML_STACK.format(directories=directories)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
