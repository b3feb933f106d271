"""``trainer preview``: rows of a dataset rendered through a profile."""

from __future__ import annotations

import json
from typing import Any

import click

from trainer.cli.options import config_options, load_config
from trainer.errors import TrainerError


@click.command()
@config_options
@click.option(
    "-n",
    "--num-examples",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="How many rows to render.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--tokens",
    "show_tokens",
    is_flag=True,
    help="Also show the first example's tokens, with the trained ones marked (uses --model's "
    "tokenizer, else the demo model's).",
)
def preview(num_examples: int, as_json: bool, show_tokens: bool, **options: Any) -> None:
    """Render the first rows of a dataset through a profile.

    Shows each row's messages, then the chat-formatted text the model sees, and
    the stop sequences at which generation will end. With --tokens, the first
    example's tokens follow, those the model is trained on marked ">>".
    """
    from trainer.data.chatml import render_chatml
    from trainer.data.conversation import build_messages, effective_stop_sequences
    from trainer.data.sources import iter_rows
    from trainer.profiles import InvalidExampleError, get_profile

    run_config, _ = load_config(options)
    dataset = run_config.data.dataset_path
    if not dataset:
        raise TrainerError("no dataset to preview. Pass --dataset FILE or set data.dataset_path")
    profile = get_profile(run_config.profile.name, run_config.profile.options)
    stops = effective_stop_sequences(profile, run_config.profile.stop_sequences)

    rendered: list[dict[str, Any]] = []
    skipped = 0
    for row_number, row in iter_rows(dataset):
        if len(rendered) == num_examples:
            break
        try:
            messages = build_messages(profile, row, run_config.profile.system_prompt, stops)
        except InvalidExampleError as exc:
            if run_config.data.skip_invalid:
                skipped += 1
                continue
            raise InvalidExampleError(
                f"{dataset} row {row_number}: {exc}. Fix the row, or set data.skip_invalid=true "
                "to skip such rows"
            ) from None
        rendered.append({"row": row_number, "messages": messages, "text": render_chatml(messages)})

    if not rendered:
        raise TrainerError(f"dataset '{dataset}' has no rows the profile '{profile.name}' can render")

    tokens = _token_labels(run_config, rendered[0]["messages"]) if show_tokens else None

    if as_json:
        if tokens is not None:
            rendered[0]["tokens"] = [token._asdict() for token in tokens]
        click.echo(
            json.dumps(
                {"profile": profile.name, "stop_sequences": stops, "skipped": skipped, "examples": rendered},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    click.echo(f"profile: {profile.name}   dataset: {dataset}")
    click.echo(f"stop sequences: {_show_stops(stops)}")
    for index, item in enumerate(rendered, start=1):
        click.echo("")
        click.echo(f"=== example {index} (row {item['row']}) ===")
        click.echo("--- messages ---")
        for message in item["messages"]:
            click.echo(f"[{message['role']}]")
            click.echo(message["content"])
        click.echo("--- chat-formatted text (ChatML) ---")
        click.echo(item["text"], nl=False)
    if tokens is not None:
        from trainer.data.token_view import format_token_labels

        click.echo("")
        click.echo(f"=== tokens of example 1 (row {rendered[0]['row']}) ===")
        for line in format_token_labels(tokens):
            click.echo(line)
    if skipped:
        click.echo(f"\nskipped {skipped} invalid row(s) (data.skip_invalid)")


def _token_labels(run_config: Any, messages: list[dict[str, str]]) -> Any:
    """The tokens of one rendered example, with trained flags, through the run's tokenizer."""
    from trainer.data.chat_template import tokenize_conversation
    from trainer.data.token_view import token_labels

    model_path = run_config.model.model_path
    if model_path:
        from trainer.models.loading import load_tokenizer

        tokenizer = load_tokenizer(model_path, run_config.model.trust_remote_code)
    else:
        try:
            from trainer.models.demo import load_demo_tokenizer
        except ImportError:
            raise TrainerError("--tokens needs a tokenizer: pass --model DIR") from None
        tokenizer = load_demo_tokenizer()
    input_ids, labels = tokenize_conversation(messages, tokenizer)
    return token_labels(input_ids, labels, tokenizer)


def _show_stops(stops: list[str]) -> str:
    return (
        ", ".join(json.dumps(stop, ensure_ascii=False) for stop in stops)
        or "(none: the end-of-turn token ends generation)"
    )
