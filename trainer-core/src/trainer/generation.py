"""Generating with a trained model: the profile's system prompt, stop sequences and penalties."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.conversation.model import Conversation, Message
from trainer.errors import TrainerError

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

RUN_INFO_FILE = "trainer_run.json"
"""Written into every output directory: the resolved config and the versions used."""


@dataclass
class SavedRun:
    """What a finished run left in its output directory."""

    directory: Path
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    demo_model: bool = False

    @classmethod
    def read(cls, directory: str | Path) -> SavedRun:
        """Read ``trainer_run.json``; a model directory without one gives an empty record."""
        path = Path(directory)
        if not path.is_dir():
            raise TrainerError(
                f"model directory '{directory}' not found. Pass a run's output directory "
                "or a Hugging Face model directory with --model"
            )
        info_file = path / RUN_INFO_FILE
        if not info_file.is_file():
            return cls(directory=path)
        try:
            data = json.loads(info_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TrainerError(
                f"{info_file} is not valid JSON ({exc.msg}); the run's output is damaged"
            ) from None
        return cls(
            directory=path,
            config=data.get("config", {}),
            versions=data.get("versions", {}),
            demo_model=bool(data.get("demo_model", False)),
        )

    def setting(self, section: str, name: str, default: Any = None) -> Any:
        """A value of the saved run's config, or ``default`` when it was not recorded."""
        return self.config.get(section, {}).get(name, default)


@dataclass(frozen=True)
class GenerationDefaults:
    """What generating with a saved model uses: the run's profile and settings, unless overridden."""

    profile: Any
    """The :class:`~trainer.profiles.base.DataProfile`."""
    stop_sequences: list[str]
    system_prompt: str
    max_new_tokens: int
    temperature: float


def generation_defaults(
    saved: SavedRun,
    profile: str | None = None,
    system_prompt: str | None = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
) -> GenerationDefaults:
    """The profile, stop sequences, system prompt and decoding ``saved`` was trained with.

    A value given here replaces the run's. A profile named here takes no options
    and its own stop sequences; the run's profile keeps its options and the
    run's ``profile.stop_sequences``. A model directory without a run record
    gets the config defaults.

    A run on a data mixture (``data.mixture``) defaults to its first source's
    profile, options and system prompt; ``profile`` may name another source (by
    its name or its profile's) to take that one's. Generation then stops at the
    stop sequences of every source, as the model was trained with.
    """
    from trainer.config import TrainerConfig
    from trainer.data.conversation import effective_stop_sequences
    from trainer.profiles import get_profile

    defaults = TrainerConfig()
    run_system_prompt = saved.setting("profile", "system_prompt", defaults.profile.system_prompt)
    own_stops = saved.setting("profile", "stop_sequences")
    mixture = saved.setting("data", "mixture") or []
    options: dict[str, Any]
    if mixture:
        name, options, run_system_prompt = _mixture_source(mixture, profile, run_system_prompt, saved)
        chosen = get_profile(name, options)
        stops = _mixture_stops(mixture, own_stops, saved)
        stops += [stop for stop in effective_stop_sequences(chosen, own_stops) if stop not in stops]
    else:
        name = profile or saved.setting("profile", "name", defaults.profile.name)
        options = saved.setting("profile", "options", {}) if profile is None else {}
        chosen = get_profile(name, options)
        stops = effective_stop_sequences(chosen, own_stops if profile is None else None)
    return GenerationDefaults(
        profile=chosen,
        stop_sequences=stops,
        system_prompt=system_prompt if system_prompt is not None else run_system_prompt,
        max_new_tokens=max_new_tokens
        or saved.setting("inference", "max_new_tokens", defaults.inference.max_new_tokens),
        temperature=temperature
        if temperature is not None
        else saved.setting("inference", "temperature", defaults.inference.temperature),
    )


def _mixture_source(
    mixture: list[dict[str, Any]], wanted: str | None, run_system_prompt: str, saved: SavedRun
) -> tuple[str, dict[str, Any], str]:
    """The profile name, options and system prompt of the source ``wanted`` names (the first by default).

    A ``wanted`` that names no source is a profile of its own, without options.
    """
    from trainer.config.mixture import SourceConfig, source_name, source_profile

    default_profile = saved.setting("profile", "name", "chat")
    for index, entry in enumerate(mixture):
        source = SourceConfig(**{key: value for key, value in entry.items() if key in _SOURCE_KEYS})
        run_options = saved.setting("profile", "options", {})
        profile_name, options = source_profile(source, default_profile, run_options)
        if wanted is None or wanted in (profile_name, source_name(source, index)):
            prompt = run_system_prompt if source.system_prompt is None else source.system_prompt
            return profile_name, dict(options), prompt
    assert wanted is not None
    return wanted, {}, run_system_prompt


_SOURCE_KEYS = ("path", "name", "profile", "options", "system_prompt")


def _mixture_stops(mixture: list[dict[str, Any]], own_stops: list[str] | None, saved: SavedRun) -> list[str]:
    """Every source's stop sequences, each once: what the run saved in its generation config."""
    from trainer.data.conversation import effective_stop_sequences
    from trainer.profiles import get_profile

    stops: list[str] = []
    default_profile = saved.setting("profile", "name", "chat")
    for entry in mixture:
        own = entry.get("options") or {}
        options = own if entry.get("profile") or own else saved.setting("profile", "options", {})
        profile = get_profile(entry.get("profile") or default_profile, options)
        stops += [stop for stop in effective_stop_sequences(profile, own_stops) if stop not in stops]
    return stops


def penalized_token_sequences(tokenizer: Any, strings: list[str] | tuple[str, ...]) -> list[list[int]]:
    """Token ids of each penalized string, for transformers' ``bad_words_ids``.

    ``NoBadWordsLogitsProcessor`` then keeps generation from completing any of
    them: a one-token string (``<think>`` in Qwen3 tokenizers) is never sampled,
    and a longer one never has its last token follow the rest.
    """
    sequences = []
    for text in strings:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if ids:
            sequences.append(ids)
    return sequences


def load_model_for_generation(directory: str | Path, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """The model and tokenizer saved in ``directory`` (a full model or a LoRA adapter)."""
    from trainer.models.loading import load_model, load_tokenizer

    path = Path(directory)
    tokenizer = load_tokenizer(str(path), trust_remote_code)
    if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        model = _load_adapter(path, tokenizer, trust_remote_code)
    else:
        model = load_model(str(path), trust_remote_code)
    model.eval()
    return model, tokenizer


def generate(
    model: Any,
    tokenizer: Any,
    messages: list[Message] | Conversation,
    *,
    stop_sequences: list[str],
    penalized_strings: list[str] | tuple[str, ...] = (),
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    template_kwargs: dict[str, Any] | None = None,
) -> str:
    """Generate the assistant's reply to ``messages``; the text stops before any stop sequence.

    :param messages: the conversation so far, or a :class:`~trainer.conversation.Conversation`
        whose tools are offered to the model.
    """
    return generate_batch(
        model,
        tokenizer,
        [messages],
        stop_sequences=stop_sequences,
        penalized_strings=penalized_strings,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        template_kwargs=template_kwargs,
    )[0]


def generate_batch(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[list[Message] | Conversation],
    *,
    stop_sequences: list[str],
    penalized_strings: list[str] | tuple[str, ...] = (),
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    template_kwargs: dict[str, Any] | None = None,
) -> list[str]:
    """Replies to several conversations in one batch (left-padded), each cut at its first stop sequence.

    Prompts are rendered as training rendered them
    (:func:`trainer.data.chat_template.render_prompt`): the tokenizer's chat
    template, or trainer's ChatML when it has none, with each conversation's tools.
    """
    import torch

    from trainer.data.chat_template import render_prompt

    prompts = [
        render_prompt(item.messages, tokenizer, template_kwargs, tools=item.tools)
        if isinstance(item, Conversation)
        else render_prompt(item, tokenizer, template_kwargs)
        for item in conversations
    ]
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    try:
        inputs = tokenizer(prompts, return_tensors="pt", add_special_tokens=False, padding=True)
    finally:
        tokenizer.padding_side = padding_side
    inputs = inputs.to(model.device)
    options: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": temperature > 0,
        "pad_token_id": tokenizer.pad_token_id,
        "tokenizer": tokenizer,
        "use_cache": True,
    }
    if temperature > 0:
        options["temperature"] = temperature
    if stop_sequences:
        from transformers import StoppingCriteriaList

        options["stopping_criteria"] = StoppingCriteriaList(
            [AnswerStop(tokenizer, list(stop_sequences), inputs["input_ids"].shape[1])]
        )
    bad_words = penalized_token_sequences(tokenizer, penalized_strings)
    if bad_words:
        options["bad_words_ids"] = bad_words
    with torch.no_grad():
        output = model.generate(**inputs, **options)
    start = inputs["input_ids"].shape[1]
    return [
        cut_at_stop(tokenizer.decode(row[start:], skip_special_tokens=True), stop_sequences) for row in output
    ]


def cut_at_stop(text: str, stop_sequences: list[str]) -> str:
    """``text`` up to the first stop sequence in its answer (generation stops after emitting it).

    A leading ``<think>...</think>`` block, which Qwen3-style templates have the
    model write before every answer (empty when it does not reason), is never
    cut: stop sequences end the answer, and the block's own blank lines
    (``<think>\n\n</think>\n\n``) would otherwise stop a profile whose stop
    sequence is a blank line before it wrote anything.
    """
    start = answer_start(text)
    if start is None:
        return text
    cut = len(text)
    for stop in stop_sequences:
        if stop and (position := text.find(stop, start)) != -1:
            cut = min(cut, position)
    return text[:cut]


def answer_start(text: str) -> int | None:
    """Where the answer starts in generated ``text``: after a leading think block, if any.

    :return: ``None`` while a leading ``<think>`` block is still open.
    """
    stripped = text.lstrip()
    if not stripped.startswith(THINK_OPEN):
        return 0
    close = text.find(THINK_CLOSE)
    if close == -1:
        return None
    end = close + len(THINK_CLOSE)
    return end + (len(text[end:]) - len(text[end:].lstrip("\n")))


class AnswerStop:
    """A transformers stopping criterion: a row is done once its answer holds a stop sequence.

    Unlike ``stop_strings``, it does not look inside a leading think block (see :func:`cut_at_stop`).
    """

    def __init__(self, tokenizer: Any, stop_sequences: list[str], prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.stop_sequences = [stop for stop in stop_sequences if stop]
        self.prompt_length = prompt_length

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = []
        for row in input_ids:
            text = self.tokenizer.decode(row[self.prompt_length :], skip_special_tokens=True)
            start = answer_start(text)
            done.append(start is not None and any(text.find(s, start) != -1 for s in self.stop_sequences))
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _load_adapter(path: Path, tokenizer: Any, trust_remote_code: bool) -> Any:
    try:
        from peft import PeftModel
    except ImportError:
        raise TrainerError(
            f"'{path}' holds a LoRA adapter, which needs peft. Install it with: "
            "pip install 'trainer-core[lora]'"
        ) from None
    from trainer.models.loading import load_model

    saved = SavedRun.read(path)
    if saved.demo_model:
        from trainer.models.demo_model import build_demo_model

        base = build_demo_model(
            tokenizer,
            seed=saved.setting("hyperparams", "seed", 42),
            max_position_embeddings=saved.setting("model", "max_context_length", 2048),
        )
    else:
        adapter = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
        base = load_model(adapter["base_model_name_or_path"], trust_remote_code)
    return PeftModel.from_pretrained(base, str(path))
