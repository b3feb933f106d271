"""Composed profiles: ``--profile a+b+c``.

One part of a composition is its **base**: it builds the messages from the row
and owns the answer. The base is the one part that cannot transform messages
(it does not implement ``transform_messages``, as ``chat`` and ``tool_use``),
wherever it is written; when every part can transform, the first part is the
base. The other parts transform what the base built, in the order written, so
``think+tool_use`` and ``tool_use+think`` are one pipeline: ``tool_use`` builds
the call, ``think`` adds the reasoning before it.

- **Messages.** The base builds them (``prepare_messages``); each other part
  transforms the result of the one before it (``transform_messages(messages, row)``).
- **System prompt.** The base formats the run's base prompt
  (``format_system_prompt``); each other part adds the instruction for its own
  change (``transform_system_prompt``).
- **Stop sequences and penalized strings.** The union of every profile's, in
  the order written, without repeats. None of them may occur in a rendered target.
- **Answers.** The base owns the answer: its ``expected_answer`` gives the
  reference, and its ``parse_answer`` / ``check_answer`` judge generated text
  after the other profiles have undone their changes, last first
  (``restore_text``). A profile whose change is missing from the text makes the
  answer unreadable (format not followed).

A composition is checked when it is built: no profile twice, one base at most
(two parts that cannot transform are refused), and, on sample rows each profile
renders alone, the combination renders, keeps stop sequences and penalized
strings out of the target, and reads back its own answer. A failure is a
:class:`TrainerError` naming the profiles and the conflict.

The probe rows are built in, so a composition can pass that check and still
refuse every row of a dataset in its own layout: the transforming parts read the
raw row again (``transform_messages(messages, row)``) and may not know its fields.
:func:`check_on_rows` therefore tries the dataset's first rows before a run or a
preview starts. A row a part refuses raises :class:`PartRefusedError`, an
:class:`InvalidExampleError` naming that part and whether it was building the
messages or following the one before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

from trainer.conversation.model import Conversation
from trainer.conversation.tool_calls import reply_text
from trainer.errors import TrainerError
from trainer.profiles.base import (
    DataProfile,
    InvalidExampleError,
    Message,
    as_conversation,
)

SEPARATOR = "+"

PROBE_ROWS: tuple[dict[str, Any], ...] = (
    {
        "question": "Janet has 16 eggs. She eats 3 and bakes with 4. How many are left?",
        "answer": "She uses 3 + 4 = <<3+4=7>>7 eggs.\nShe has 16 - 7 = <<16-7=9>>9 eggs left.\n#### 9",
    },
    {
        "question": "Sam reads 4 pages a day for 3 days. How many pages?",
        "reasoning": ["3 * 4 = 12"],
        "answer": "12",
    },
    {"question": "What is the capital of France?", "answer": "Paris"},
)
"""Rows a composition is tried on when it is built: GSM8K, reasoning field, plain question/answer."""

CHECKED_ROWS = 8
"""How many of a dataset's first rows :func:`check_on_rows` tries a composition on."""


class PartRefusedError(InvalidExampleError):
    """One part of a composition refused a row.

    The message reads ``'b' cannot follow 'a' on this row: <reason>`` for a
    transforming part, ``'a' cannot read this row: <reason>`` for the base.
    """

    def __init__(self, part: str, after: str | None, reason: str) -> None:
        self.part = part
        """The profile that refused the row."""
        self.after = after
        """The profile it was following; ``None`` when the base refused."""
        self.reason = reason
        """The refusing profile's own message."""
        where = "cannot read this row" if after is None else f"cannot follow '{after}' on this row"
        super().__init__(f"'{part}' {where}: {reason}")

    def __reduce__(self) -> tuple[Any, tuple[str, str | None, str]]:
        # Rebuilt from its parts, not its message, when it crosses a process boundary.
        return type(self), (self.part, self.after, self.reason)


def split_name(name: str) -> list[str]:
    """The profile names in ``a+b+c``; a plain name gives a list of one.

    :raises TrainerError: an empty part (``a+``, ``+b``, ``a++b``).
    """
    parts = [part.strip() for part in name.split(SEPARATOR)]
    if len(parts) > 1 and not all(parts):
        raise TrainerError(
            f"profile {name!r} has an empty part; join installed profile names with '+', "
            "e.g. emoji_think+regime3"
        )
    return parts


def split_options(name: str, parts: Sequence[str], options: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Per-profile options of a composition: ``profile.options`` keyed by profile name.

    The flat form a single profile also takes (``{option: value}``) cannot be
    assigned to one of several profiles, so it is refused.

    :raises TrainerError: a key that is not one of the composed profiles, or a
        value that is not a mapping.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(parts))
    if unknown:
        raise TrainerError(
            f"profile.options for '{name}' must be keyed by the composed profiles' names "
            f"({', '.join(parts)}); got {', '.join(repr(key) for key in unknown)}. "
            f"The flat form, profile.options: {{{unknown[0]}: ...}}, is for a single profile; "
            f"a composition takes the keyed form, e.g. profile.options: {{{parts[0]}: {{{unknown[0]}: ...}}}}"
        )
    result = []
    for part in parts:
        value = options.get(part, {})
        if not isinstance(value, Mapping):
            raise TrainerError(
                f"profile.options.{part} must be a mapping of option names to values, got {value!r}"
            )
        result.append(dict(value))
    return result


class ComposedProfile(DataProfile):
    """Several profiles applied in turn; see the module documentation for the semantics."""

    parts: tuple[DataProfile, ...] = ()
    """The profiles in the order written."""

    def __init__(self, *parts: DataProfile) -> None:
        super().__init__()
        self.parts = parts
        base = base_index(parts)
        self.pipeline: tuple[DataProfile, ...] = (parts[base], *parts[:base], *parts[base + 1 :])
        """The base, then the other parts in the order written: the order they are applied in."""

    def __reduce__(self) -> tuple[Any, tuple[list[DataProfile]]]:
        # The class is made per composition, so pickle (worker processes) rebuilds it by composing.
        return compose, (list(self.parts),)

    @property
    def base(self) -> DataProfile:
        """The profile that builds the messages and owns the answer."""
        return self.pipeline[0]

    @property
    def first(self) -> DataProfile:
        """The base; the name from plugin API 1.2, when the base was always the first part."""
        return self.base

    @property
    def transforms(self) -> tuple[DataProfile, ...]:
        """The parts other than the base, in the order they are applied."""
        return self.pipeline[1:]

    def prepare_messages(self, example: Mapping[str, Any]) -> list[Message] | Conversation:
        """The base's messages, transformed by each other profile in turn.

        A plain list, as before plugin API 1.2, unless the conversation has tools.
        """
        conversation = self.conversation_stages(example)[-1]
        return conversation if conversation.tools else conversation.messages

    def stages(self, example: Mapping[str, Any]) -> list[list[Message]]:
        """The messages after each profile of :attr:`pipeline`: built by the base, then each transform."""
        return [conversation.messages for conversation in self.conversation_stages(example)]

    def conversation_stages(self, example: Mapping[str, Any]) -> list[Conversation]:
        """The conversation after each profile of :attr:`pipeline`.

        A transforming profile keeps the tools unless it returns new ones. Stop
        sequences are not checked here: the run checks the ones in effect
        (``profile.stop_sequences`` or this profile's) on every row.

        :raises PartRefusedError: a part refused the row, or its output is not a
            valid conversation; the message names the part and the one it follows.
        """
        try:
            conversation = as_conversation(self.base.prepare_messages(example))
        except InvalidExampleError as exc:
            raise PartRefusedError(self.base.name, None, str(exc)) from exc
        stages = [conversation]
        for before, part in zip(self.pipeline[:-1], self.pipeline[1:], strict=True):
            try:
                output = part.transform_messages([dict(m) for m in conversation.messages], example)
                if not isinstance(output, Conversation):
                    output = Conversation(output, conversation.tools)
                conversation = as_conversation(output)
            except InvalidExampleError as exc:
                raise PartRefusedError(part.name, before.name, str(exc)) from exc
            stages.append(conversation)
        return stages

    def get_stop_sequences(self) -> list[str]:
        """Every profile's stop sequences, in the order written, without repeats."""
        return _union(stop for part in self.parts for stop in part.get_stop_sequences())

    def format_system_prompt(self, base_prompt: str) -> str:
        """The base's prompt, with each other profile's instruction added."""
        prompt = self.base.format_system_prompt(base_prompt)
        for part in self.transforms:
            prompt = part.transform_system_prompt(prompt)
        return prompt

    def format_row_system_prompt(self, base_prompt: str, example: Mapping[str, Any]) -> str:
        """The base's prompt for the row, with each other profile's instruction added."""
        prompt = self.base.format_row_system_prompt(base_prompt, example)
        for part in self.transforms:
            prompt = part.transform_system_prompt(prompt)
        return prompt

    def default_dataset(self) -> str | None:
        """The base's own sample, if it ships one."""
        return self.base.default_dataset()

    def expected_answer(self, example: Mapping[str, Any]) -> str | None:
        """The base's reference answer."""
        return self.base.expected_answer(example)

    def restore(self, text: str) -> str | None:
        """``text`` with the transforms undone, last first; ``None`` if one is missing."""
        restored: str | None = text
        for part in reversed(self.transforms):
            if restored is None:
                return None
            restored = part.restore_text(restored)
        return restored

    def parse_answer(self, text: str) -> str | None:
        """The base's parser, on the restored text."""
        restored = self.restore(text)
        return None if restored is None else self.base.parse_answer(restored)

    def check_answer(self, text: str, expected: str) -> bool:
        """The base's check, on the restored text."""
        restored = self.restore(text)
        return restored is not None and self.base.check_answer(restored, expected)

    def rate_example(self, example: Mapping[str, Any]) -> float:
        """The lowest rating of the composed profiles."""
        return min(part.rate_example(example) for part in self.parts)


def base_index(parts: Sequence[DataProfile]) -> int:
    """Where the base of ``parts`` stands: the part that cannot transform, else the first.

    :raises TrainerError: two parts cannot transform messages.
    """
    builders = [index for index, part in enumerate(parts) if not part.can_follow()]
    if len(builders) > 1:
        first, second = (parts[index].name for index in builders[:2])
        name = SEPARATOR.join(part.name for part in parts)
        raise TrainerError(
            f"profile '{name}': '{second}' cannot follow '{first}': both build the messages from the "
            f"row (neither implements transform_messages) and a composition has one base; drop "
            f"'{first}' or '{second}'"
        )
    return builders[0] if builders else 0


def compose(parts: Sequence[DataProfile]) -> DataProfile:
    """One profile applying ``parts`` in turn; a single part is returned as it is.

    :raises TrainerError: a profile appears twice, two parts cannot transform
        (two bases), or the combination is incoherent on the probe rows.
    """
    if len(parts) == 1:
        return parts[0]
    names = [part.name for part in parts]
    name = SEPARATOR.join(names)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TrainerError(f"profile '{name}' uses {', '.join(repeated)} twice; name each profile once")
    base_index(parts)
    penalized = _union(s for part in parts for s in part.penalized_strings)
    cls = type(
        "ComposedProfile",
        (ComposedProfile,),
        {
            "name": name,
            "description": " then ".join(names),
            "penalized_strings": tuple(penalized),
            "__doc__": ComposedProfile.__doc__,
            "__module__": __name__,
        },
    )
    profile: ComposedProfile = cls(*parts)
    for row in PROBE_ROWS:
        problem = _probe(profile, row)
        if problem:
            raise TrainerError(f"profiles in '{name}' conflict: {problem}. Reorder or drop one of them")
    return profile


def check_on_rows(
    profile: DataProfile,
    rows: Iterable[Mapping[str, Any] | tuple[int, Mapping[str, Any]]],
    limit: int = CHECKED_ROWS,
) -> None:
    """Check a composition on a dataset's first rows, before a run or a preview starts.

    The probe rows of :func:`compose` are built in; a dataset in another layout
    can be read by the base and refused by a transforming part on every row.
    Of the first ``limit`` rows, those the base renders alone must not all be
    refused by the combination. A single profile, or rows the base cannot read
    either (the ordinary invalid-row error), pass.

    :param rows: the rows, or ``(row number, row)`` pairs as
        :func:`trainer.data.sources.iter_rows` yields them; only the first
        ``limit`` are read.
    :raises TrainerError: the combination renders none of the rows its base
        renders, naming the part that cannot follow and the first refusal.
    """
    if not isinstance(profile, ComposedProfile):
        return
    checked = alone = together = 0
    refusal: tuple[int, PartRefusedError] | None = None
    for position, item in enumerate(islice(rows, limit), start=1):
        checked += 1
        number, row = item if isinstance(item, tuple) else (position, item)
        try:
            profile.base.prepare_messages(row)
        except InvalidExampleError:
            continue
        alone += 1
        try:
            profile.conversation_stages(row)
        except PartRefusedError as exc:
            refusal = refusal or (number, exc)
            continue
        together += 1
    if not alone or together or refusal is None:
        return
    number, first = refusal
    after = first.after or profile.base.name
    first_rows = "the first row" if checked == 1 else f"the first {checked} rows"
    raise TrainerError(
        f"profile '{profile.name}': '{first.part}' cannot follow '{after}' on this dataset: on "
        f"{first_rows} '{profile.base.name}' renders {alone} but the combination renders 0; "
        f"first refusal, row {number}: {first.reason.rstrip('.')}. Drop '{first.part}' or reorder the "
        "profiles, or use a dataset in a layout every one of them reads"
    )


def _probe(profile: ComposedProfile, row: Mapping[str, Any]) -> str | None:
    """What goes wrong when ``profile`` renders ``row``, or ``None``."""
    for part in profile.parts:
        try:
            part.prepare_messages(row)
        except InvalidExampleError:
            return None  # Not every profile takes this layout alone: nothing to compare.
    try:
        stages = profile.stages(row)
    except InvalidExampleError as exc:
        return f"on a row each renders alone ({_layout(row)}), the combination fails: {exc}"
    for stage, messages in zip(profile.pipeline, stages, strict=True):
        for owner in profile.parts:
            for stop in owner.get_stop_sequences():
                if stop and any(m["role"] == "assistant" and stop in m["content"] for m in messages):
                    done = "built" if stage is profile.base else "transformed"
                    return (
                        f"'{owner.name}' stops generation at {stop!r}, which occurs in the target once "
                        f"'{stage.name}' has {done} it (a {_layout(row)} row)"
                    )
    target = reply_text(stages[-1][-1])
    for text in profile.penalized_strings:
        if text in target:
            return f"the penalized string {text!r} occurs in the target built from a {_layout(row)} row"
    expected = profile.expected_answer(row)
    if expected is not None and not profile.check_answer(target, expected):
        return (
            f"the answer parser of '{profile.base.name}' cannot read {expected!r} back from the "
            f"target the combination builds for a {_layout(row)} row: {target!r}"
        )
    return None


def _layout(row: Mapping[str, Any]) -> str:
    if "reasoning" in row:
        return "question/reasoning/answer"
    if "####" in str(row.get("answer", "")):
        return "GSM8K"
    return "question/answer"


def _union(values: Any) -> list[str]:
    return list(dict.fromkeys(values))
