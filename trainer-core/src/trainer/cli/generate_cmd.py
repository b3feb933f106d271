"""``trainer generate``: answer a prompt, or continue a conversation, with a trained model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from trainer.cli.options import prompting_options, quiet_libraries
from trainer.errors import TrainerError


@click.command(short_help="Answer a prompt with a trained model.")
@click.argument("prompt", required=False)
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="A run's output directory (or any Hugging Face model directory).",
)
@click.option(
    "--tools",
    "tools_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON file of function schemas (a list, or an object with 'tools') offered to the model.",
)
@click.option(
    "--messages",
    "messages_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON file of the conversation so far (a list of messages, or an object with 'messages' and "
    "'tools'); the model writes the next assistant turn. PROMPT, if given, is added as a user turn.",
)
@prompting_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the text and the parsed tool calls.")
def generate(
    prompt: str | None,
    model_dir: str,
    profile: str | None,
    system_prompt: str | None,
    tools_file: str | None,
    messages_file: str | None,
    max_new_tokens: int | None,
    temperature: float | None,
    as_json: bool,
) -> None:
    """Answer PROMPT (or the conversation in --messages) with the profile's system prompt, stop
    sequences and penalties.

    Prints the generated text; when it holds tool calls (<tool_call>{json}</tool_call>),
    they follow, parsed, as JSON.
    """
    from trainer.conversation import Conversation, normalize_conversation, parse_tool_calls
    from trainer.generation import SavedRun, generate, generation_defaults, load_model_for_generation

    if prompt is None and messages_file is None:
        raise TrainerError("nothing to answer: give a PROMPT, or a conversation with --messages FILE.json")
    row = _read_conversation(messages_file, tools_file, prompt)
    conversation = normalize_conversation(row["messages"], row.get("tools"))
    if conversation.messages[-1]["role"] == "assistant":
        raise TrainerError(
            f"the conversation in {messages_file} ends with an assistant turn; the model answers the last "
            "user or tool turn. Remove the last assistant turn, or add a PROMPT"
        )

    quiet_libraries()
    saved = SavedRun.read(model_dir)
    run = generation_defaults(saved, profile, system_prompt, max_new_tokens, temperature)
    messages = conversation.messages
    base_prompt = run.system_prompt
    if messages[0]["role"] == "system":
        base_prompt, messages = messages[0]["content"], messages[1:]
    system = run.profile.format_row_system_prompt(base_prompt, row)
    messages = ([{"role": "system", "content": system}] if system else []) + messages

    model, tokenizer = load_model_for_generation(
        model_dir, saved.setting("model", "trust_remote_code", False)
    )
    text = generate(
        model,
        tokenizer,
        Conversation(messages, conversation.tools),
        stop_sequences=run.stop_sequences,
        penalized_strings=run.profile.penalized_strings,
        max_new_tokens=run.max_new_tokens,
        temperature=run.temperature,
    )
    calls = parse_tool_calls(text)
    parsed = None if calls is None else [call["function"] for call in calls]
    if as_json:
        click.echo(json.dumps({"text": text, "tool_calls": parsed}, ensure_ascii=False, indent=2))
        return
    click.echo(text)
    if parsed:
        click.echo("--- tool calls ---")
        click.echo(json.dumps(parsed, ensure_ascii=False, indent=2))
    elif calls is None:
        click.echo("--- tool calls: a <tool_call> block is not a JSON call (see the text above) ---")


def _read_conversation(
    messages_file: str | None, tools_file: str | None, prompt: str | None
) -> dict[str, Any]:
    """The conversation to continue, as a row: ``{"messages": [...], "tools": [...]}``."""
    row: dict[str, Any] = {"messages": []}
    if messages_file is not None:
        data = _read_json(messages_file, "--messages")
        if isinstance(data, list):
            row = {"messages": data}
        elif isinstance(data, dict) and isinstance(data.get("messages"), list):
            row = dict(data)
        else:
            raise TrainerError(
                f"--messages {messages_file} holds {type(data).__name__}; give a JSON list of messages, "
                "or an object with a 'messages' list (and optionally 'tools')"
            )
    if tools_file is not None:
        tools = _read_json(tools_file, "--tools")
        if isinstance(tools, dict) and "tools" in tools:
            tools = tools["tools"]
        if not isinstance(tools, list):
            raise TrainerError(
                f"--tools {tools_file} holds {type(tools).__name__}; give a JSON list of function schemas, "
                "or an object with a 'tools' list"
            )
        row["tools"] = tools
    if prompt is not None:
        row["messages"] = [*row["messages"], {"role": "user", "content": prompt}]
    return row


def _read_json(path: str, option: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainerError(f"{option} file '{path}' not found. Pass an existing JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainerError(
            f"{option} file '{path}' cannot be read ({exc}). Pass a readable UTF-8 file"
        ) from None
    except json.JSONDecodeError as exc:
        raise TrainerError(
            f"{option} file '{path}' is not valid JSON ({exc.msg}, line {exc.lineno}). Fix the file"
        ) from None
