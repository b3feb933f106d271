"""``trainer preview``: rows of a dataset rendered through a profile."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import click

from trainer.cli.options import DATA_FLAGS, config_options, load_config
from trainer.errors import TrainerError


@click.command(short_help="Render the first rows of a dataset through a profile.")
@config_options(DATA_FLAGS)
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

    Shows each row's messages (tool calls, tool results and reasoning included)
    and tools, then the text the run's chat template makes of them (--model's
    template, else the demo model's), and the stop sequences at which generation
    will end. With --tokens, the first example's tokens follow, those the model
    is trained on marked ">>". A mixture (--dataset repeated, or data.mixture)
    shows the first rows of each source, rendered through that source's profile.
    """
    run_config, _ = load_config(options)
    sources = _sources(run_config)
    template, template_source = _chat_template(run_config)
    previews = [_render_source(source, run_config, template, num_examples) for source in sources]
    if show_tokens:
        tokenizer = _tokenizer(run_config)
        for shown in previews:
            shown["tokens"] = _token_labels(tokenizer, shown["examples"][0], run_config.data.trained_turns)

    if as_json:
        for shown in previews:
            tokens = shown.pop("tokens", None)
            if tokens is not None:
                shown["examples"][0]["tokens"] = [token._asdict() for token in tokens]
        if len(sources) == 1:
            only = previews[0]
            shown_json: dict[str, Any] = {
                "profile": only["profile"],
                "chat_template": template_source,
                "stop_sequences": only["stop_sequences"],
                "skipped": only["skipped"],
                "examples": only["examples"],
            }
        else:
            shown_json = {"chat_template": template_source, "sources": previews}
        click.echo(json.dumps(shown_json, indent=2, ensure_ascii=False))
        return
    for index, shown in enumerate(previews):
        if len(sources) > 1:
            if index:
                click.echo("")
            click.echo(f"=== source '{shown['name']}' (data.mixture[{index}]) ===")
        _echo_source(shown, template_source)


class _Source(NamedTuple):
    """One dataset to preview and how the run renders it."""

    name: str
    """The source's name in a mixture; empty for a run of one dataset."""
    dataset: str
    profile: Any
    system_prompt: str
    stops: list[str]


def _sources(run_config: Any) -> list[_Source]:
    """What is previewed: the dataset and its profile, or each source of ``data.mixture`` and its own."""
    from trainer.config.mixture import source_name, source_profile
    from trainer.data.conversation import effective_stop_sequences
    from trainer.profiles import get_profile
    from trainer.profiles.compose import check_on_rows

    chosen = run_config.profile
    if not run_config.data.mixture:
        profile = get_profile(chosen.name, chosen.options)
        dataset = run_config.data.dataset_path or profile.default_dataset()
        if not dataset:
            raise TrainerError("no dataset to preview. Pass --dataset FILE or set data.dataset_path")
        check_on_rows(profile, _first_rows(dataset))
        stops = effective_stop_sequences(profile, chosen.stop_sequences)
        return [_Source("", dataset, profile, chosen.system_prompt, stops)]
    sources = []
    for index, entry in enumerate(run_config.data.mixture):
        name = source_name(entry, index)
        try:
            profile = get_profile(*source_profile(entry, chosen.name, chosen.options))
            dataset = entry.path or profile.default_dataset()
            if not dataset:
                raise TrainerError(f"profile '{profile.name}' ships no sample. Give the source a path")
            check_on_rows(profile, _first_rows(dataset))
        except TrainerError as exc:
            raise TrainerError(f"source '{name}' (data.mixture[{index}]): {exc}") from None
        sources.append(
            _Source(
                name,
                dataset,
                profile,
                chosen.system_prompt if entry.system_prompt is None else entry.system_prompt,
                effective_stop_sequences(profile, chosen.stop_sequences),
            )
        )
    return sources


def _render_source(source: _Source, run_config: Any, template: Any, num_examples: int) -> dict[str, Any]:
    """The first ``num_examples`` rows of ``source`` rendered through its profile, as --json shows them."""
    from trainer.data.chat_template import render_conversation
    from trainer.data.conversation import build_conversation
    from trainer.data.sources import iter_rows
    from trainer.profiles import InvalidExampleError

    dataset, profile, data = source.dataset, source.profile, run_config.data
    rendered: list[dict[str, Any]] = []
    skipped = 0
    for row_number, row in iter_rows(dataset):
        if len(rendered) == num_examples:
            break
        try:
            conversation = build_conversation(
                profile,
                row,
                source.system_prompt,
                source.stops,
                allow_consecutive_assistant=data.allow_consecutive_assistant,
            )
            text = render_conversation(conversation.messages, template, tools=conversation.tools).text
        except InvalidExampleError as exc:
            if data.skip_invalid:
                skipped += 1
                continue
            raise InvalidExampleError(
                f"{dataset} row {row_number}: {exc}. Fix the row, or set data.skip_invalid=true "
                "to skip such rows"
            ) from None
        rendered.append(
            {
                "row": row_number,
                "messages": conversation.messages,
                "tools": conversation.tools,
                "text": text,
            }
        )
    if not rendered:
        raise TrainerError(f"dataset '{dataset}' has no rows the profile '{profile.name}' can render")
    named = {"name": source.name} if source.name else {}
    return {
        **named,
        "profile": profile.name,
        "dataset": dataset,
        "stop_sequences": source.stops,
        "skipped": skipped,
        "examples": rendered,
    }


def _echo_source(shown: dict[str, Any], template_source: str) -> None:
    """One source's preview as text."""
    from trainer.conversation.display import message_lines

    rendered = shown["examples"]
    click.echo(f"profile: {shown['profile']}   dataset: {shown['dataset']}")
    click.echo(f"stop sequences: {_show_stops(shown['stop_sequences'])}")
    for index, item in enumerate(rendered, start=1):
        click.echo("")
        click.echo(f"=== example {index} (row {item['row']}) ===")
        if item["tools"]:
            click.echo("--- tools ---")
            for tool in item["tools"]:
                click.echo(json.dumps(tool, ensure_ascii=False))
        click.echo("--- messages ---")
        for line in message_lines(item["messages"]):
            click.echo(line)
        click.echo(f"--- chat-formatted text ({template_source}) ---")
        click.echo(item["text"], nl=False)
    if shown.get("tokens") is not None:
        from trainer.data.token_view import format_token_labels

        click.echo("")
        click.echo(f"=== tokens of example 1 (row {rendered[0]['row']}) ===")
        for line in format_token_labels(shown["tokens"]):
            click.echo(line)
    if shown["skipped"]:
        click.echo(f"\nskipped {shown['skipped']} invalid row(s) (data.skip_invalid)")


def _first_rows(dataset: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows a composition is checked on; a malformed row ends them early.

    The preview itself reports a malformed row, if it reads that far.
    """
    from trainer.data.sources import DatasetError, iter_rows
    from trainer.profiles.compose import CHECKED_ROWS

    try:
        yield from iter_rows(dataset, limit=CHECKED_ROWS)
    except DatasetError:
        return


def _chat_template(run_config: Any) -> tuple[Any, str]:
    """What renders the run's chat template, and a name for it: ``--model``'s, else the demo model's.

    A local model directory is read without loading its tokenizer (no transformers, no
    torch); a hub model id needs the tokenizer itself.
    """
    from trainer.data.template_text import TemplateText

    model_path = run_config.model.model_path
    if not model_path:
        from trainer.models.demo import DEMO_TOKENIZER_DIR

        return TemplateText.from_directory(DEMO_TOKENIZER_DIR), "the demo model's chat template: ChatML"
    if Path(model_path).is_dir():
        template: Any = TemplateText.from_directory(model_path)
    else:
        template = _tokenizer(run_config)
    if getattr(template, "chat_template", None):
        return template, f"the chat template of {model_path}"
    return template, f"{model_path} has no chat template: trainer's ChatML"


def _tokenizer(run_config: Any) -> Any:
    """The run's tokenizer: ``--model``'s, else the demo model's."""
    model_path = run_config.model.model_path
    if model_path:
        from trainer.models.loading import load_tokenizer

        return load_tokenizer(model_path, run_config.model.trust_remote_code)
    from trainer.models.demo import load_demo_tokenizer

    return load_demo_tokenizer()


def _token_labels(tokenizer: Any, item: dict[str, Any], trained_turns: str) -> Any:
    """The tokens of one rendered example, with trained flags, through the run's tokenizer."""
    from trainer.data.chat_template import tokenize_conversation
    from trainer.data.token_view import token_labels

    input_ids, labels = tokenize_conversation(
        item["messages"], tokenizer, tools=item["tools"], trained_turns=trained_turns
    )
    return token_labels(input_ids, labels, tokenizer)


def _show_stops(stops: list[str]) -> str:
    return (
        ", ".join(json.dumps(stop, ensure_ascii=False) for stop in stops)
        or "(none: the end-of-turn token ends generation)"
    )
