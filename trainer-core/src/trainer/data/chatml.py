"""ChatML, the chat format used when a tokenizer brings no chat template of its own.

Plain turns are ``<|im_start|>{role}\\n{content}<|im_end|>\\n``. Tools, calls,
results and reasoning are written the Hermes / Qwen way, as Qwen3's own template
writes them, so a model trained on this fallback reads and writes the format
most tool-use data and tool-calling servers expect:

- with ``tools``, the system turn ends with a ``# Tools`` section listing each
  schema as JSON between ``<tools>`` and ``</tools>``, and how to call one;
- an assistant turn writes its ``reasoning_content`` as ``<think>\\n...\\n</think>\\n\\n``
  before the content, then each call as ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``;
- consecutive ``tool`` turns become one user turn of ``<tool_response>\\n...\\n</tool_response>`` blocks.

Each assistant turn's text and its ``<|im_end|>`` sit in a ``{% generation %}``
block, which marks what the model writes.
"""

from __future__ import annotations

from trainer.conversation.model import Message

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

CHATML_TEMPLATE = """\
{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}
{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n' }}
{{- 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}
{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}
{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments ' }}
{{- 'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n' }}
{{- '{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}
{%- elif messages[0].role == 'system' %}
{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
{%- if message.role == 'assistant' %}
{{- '<|im_start|>assistant\\n' }}
{%- generation %}
{%- if message.reasoning_content is defined and message.reasoning_content is not none %}
{{- '<think>\\n' + message.reasoning_content + '\\n</think>\\n\\n' }}
{%- endif %}
{{- message.content or '' }}
{%- if message.tool_calls %}
{%- for call in message.tool_calls %}
{%- if not loop.first or message.content %}{{- '\\n' }}{%- endif %}
{%- set function = call.function if call.function is defined else call %}
{{- '<tool_call>\\n{"name": "' + function.name + '", "arguments": ' }}
{%- if function.arguments is string %}{{- function.arguments }}
{%- else %}{{- function.arguments | tojson }}{%- endif %}
{{- '}\\n</tool_call>' }}
{%- endfor %}
{%- endif %}
{{- '<|im_end|>' }}
{%- endgeneration %}
{{- '\\n' }}
{%- elif message.role == 'tool' %}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}
{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}
{%- elif not (message.role == 'system' and loop.first) %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""
"""ChatML with tools, calls, results and reasoning, as a Jinja chat template (see the module docs)."""


def render_chatml(messages: list[Message], add_generation_prompt: bool = False) -> str:
    """Render plain ``{"role", "content"}`` messages as ChatML text, without a tokenizer.

    Structured messages (tools, calls, reasoning) need the template:
    :func:`trainer.data.chat_template.render_conversation`.

    :param add_generation_prompt: end with an open assistant turn, for generation.
    """
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    if add_generation_prompt:
        text += f"{IM_START}assistant\n"
    return text
