"""``trainer generate``: answer a prompt with a trained model."""

from __future__ import annotations

from typing import Any

import click

from trainer.cli.options import quiet_libraries


@click.command()
@click.argument("prompt")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="A run's output directory (or any Hugging Face model directory).",
)
@click.option("--profile", default=None, help="Data profile; default: the one the run trained with.")
@click.option("--system-prompt", default=None, help="Base system prompt; default: the run's.")
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=None,
    help="Default: the run's inference.max_new_tokens.",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0),
    default=None,
    help="0 is greedy. Default: the run's inference.temperature.",
)
def generate(
    prompt: str,
    model_dir: str,
    profile: str | None,
    system_prompt: str | None,
    max_new_tokens: int | None,
    temperature: float | None,
) -> None:
    """Generate the answer to PROMPT with the profile's system prompt, stop sequences and penalties."""
    from trainer.config import TrainerConfig
    from trainer.data.conversation import effective_stop_sequences
    from trainer.generation import SavedRun, generate, load_model_for_generation
    from trainer.profiles import get_profile

    quiet_libraries()
    saved = SavedRun.read(model_dir)
    defaults = TrainerConfig()
    name = profile or saved.setting("profile", "name", defaults.profile.name)
    options: dict[str, Any] = saved.setting("profile", "options", {}) if profile is None else {}
    chosen = get_profile(name, options)
    stops = effective_stop_sequences(
        chosen, saved.setting("profile", "stop_sequences") if profile is None else None
    )
    base_prompt = (
        system_prompt
        if system_prompt is not None
        else saved.setting("profile", "system_prompt", defaults.profile.system_prompt)
    )
    system = chosen.format_system_prompt(base_prompt)
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]

    model, tokenizer = load_model_for_generation(
        model_dir, saved.setting("model", "trust_remote_code", False)
    )
    text = generate(
        model,
        tokenizer,
        messages,
        stop_sequences=stops,
        penalized_strings=chosen.penalized_strings,
        max_new_tokens=max_new_tokens
        or saved.setting("inference", "max_new_tokens", defaults.inference.max_new_tokens),
        temperature=temperature
        if temperature is not None
        else saved.setting("inference", "temperature", defaults.inference.temperature),
    )
    click.echo(text)
