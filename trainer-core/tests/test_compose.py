"""Composed profiles (``--profile a+b``): the pipeline, its checks, and the bundled pair."""

from __future__ import annotations

import json
import pickle

import pytest

from trainer.errors import TrainerError
from trainer.profiles import get_profile
from trainer.profiles.base import DataProfile, InvalidExampleError
from trainer.profiles.chat import ChatProfile
from trainer.profiles.compose import PartRefusedError, check_on_rows, compose, split_name
from trainer.profiles.fields import ACCEPTED_FIELDS, read_example
from trainer.testing import BUILTIN_ROWS, ProfileConformance, check_follows

QA = {"question": "What is 2 + 3?", "answer": "5"}
GSM8K_ROW = {
    "question": "Janet has 16 eggs and eats 3. How many are left?",
    "answer": "She eats 3, so 16 - 3 = <<16-3=13>>13 are left.\nShe keeps them all.\n#### 13",
}


class Shout(DataProfile):
    """Follows another profile: opens the target with 'HEY: '."""

    name = "shout"
    penalized_strings = ("whisper",)

    def prepare_messages(self, example):
        return self.transform_messages(ChatProfile().prepare_messages(example), example)

    def transform_messages(self, messages, example):
        messages[-1]["content"] = "HEY: " + messages[-1]["content"]
        return messages

    def transform_system_prompt(self, system_prompt):
        return system_prompt + " Shout."

    def restore_text(self, text):
        return text.removeprefix("HEY: ") if text.startswith("HEY: ") else None

    def get_stop_sequences(self):
        return ["@@@", "\n\n"]

    def format_system_prompt(self, base_prompt):
        return base_prompt + " Shout."


class Lower(ChatProfile):
    """Builds lower-case targets, parses them back case-insensitively."""

    name = "lower"

    def prepare_messages(self, example):
        messages = super().prepare_messages(example)
        messages[-1]["content"] = messages[-1]["content"].lower()
        return messages

    def get_stop_sequences(self):
        return ["\n\n", "END"]

    def format_system_prompt(self, base_prompt):
        return base_prompt + " Be quiet."

    def check_answer(self, text, expected):
        return text.strip().lower() == expected.strip().lower()


def test_the_first_builds_later_ones_transform_and_the_first_judges():
    profile = compose([Lower(), Shout()])
    assert profile.name == "lower+shout"
    assert (
        profile.prepare_messages({"prompt": "Hi", "response": "Hello There"})[-1]["content"]
        == "HEY: hello there"
    )
    assert profile.format_system_prompt("Base.") == "Base. Be quiet. Shout."
    assert profile.get_stop_sequences() == ["\n\n", "END", "@@@"]
    assert profile.penalized_strings == ("whisper",)
    assert profile.expected_answer(QA) == "5"
    assert profile.check_answer("HEY: 5", "5") and profile.parse_answer("HEY: hello") == "hello"
    # Without the later profile's change the text does not follow the format.
    assert profile.parse_answer("hello") is None and not profile.check_answer("5", "5")


def test_a_composition_pickles_for_worker_processes():
    import pickle

    profile = pickle.loads(pickle.dumps(compose([ChatProfile(), Shout()])))
    assert profile.name == "chat+shout"
    assert profile.prepare_messages(QA)[-1]["content"] == "HEY: 5"


def test_the_part_that_cannot_transform_is_the_base_wherever_it_is_written():
    assert Shout.can_follow() and not Lower.can_follow() and not ChatProfile.can_follow()
    profile = compose([Shout(), Lower()])
    assert profile.name == "shout+lower"
    assert [part.name for part in profile.pipeline] == ["lower", "shout"]
    assert profile.base.name == "lower" and profile.first is profile.base
    # The same pipeline as lower+shout: lower builds and judges, shout transforms.
    assert profile.prepare_messages({"prompt": "Hi", "response": "Hello There"})[-1]["content"] == (
        "HEY: hello there"
    )
    assert profile.format_system_prompt("Base.") == "Base. Be quiet. Shout."
    assert profile.get_stop_sequences() == ["@@@", "\n\n", "END"]  # in the order written
    assert profile.check_answer("HEY: 5", "5") and profile.parse_answer("5") is None
    assert pickle.loads(pickle.dumps(profile)).pipeline[0].name == "lower"


def test_when_every_part_can_transform_the_first_is_the_base():
    class Tail(Lower):
        """Lower, but able to follow another profile too."""

        name = "tail"

        def transform_messages(self, messages, example):
            return messages

    profile = compose([Tail(), Shout()])
    assert [part.name for part in profile.pipeline] == ["tail", "shout"]
    assert profile.prepare_messages({"prompt": "Hi", "response": "Yes"})[-1]["content"] == "HEY: yes"


def test_two_parts_that_cannot_transform_are_refused():
    with pytest.raises(
        TrainerError,
        match="'lower' cannot follow 'chat': both build the messages from the row .*one base; "
        "drop 'chat' or 'lower'",
    ):
        compose([ChatProfile(), Shout(), Lower()])


def test_the_same_profile_twice_is_refused():
    with pytest.raises(TrainerError, match="uses shout twice"):
        compose([Lower(), Shout(), Shout()])


def test_a_single_profile_is_returned_as_it_is():
    profile = Lower()
    assert compose([profile]) is profile


@pytest.mark.parametrize("name", ["a+", "+b", "a++b", "a+ +b"])
def test_an_empty_part_is_refused(name):
    with pytest.raises(TrainerError, match="has an empty part"):
        split_name(name)


def test_a_later_stop_sequence_inside_the_first_target_is_a_conflict():
    class Hashes(Lower):
        name = "hashes"

        def prepare_messages(self, example):
            messages = super().prepare_messages(example)
            messages[-1]["content"] = "@@@ " + messages[-1]["content"]
            return messages

    with pytest.raises(
        TrainerError,
        match=r"profiles in 'hashes\+shout' conflict: 'shout' stops generation at '@@@', which occurs "
        r"in the target once 'hashes' has built it \(a GSM8K row\). Reorder or drop one of them",
    ):
        compose([Hashes(), Shout()])


def test_a_transform_that_writes_an_earlier_stop_sequence_is_a_conflict_naming_both():
    class Wary(Lower):
        name = "wary"

        def get_stop_sequences(self):
            return ["HEY"]

    with pytest.raises(
        TrainerError, match="'wary' stops generation at 'HEY', .* once 'shout' has transformed it"
    ):
        compose([Wary(), Shout()])


def test_a_penalized_string_inside_the_target_is_a_conflict():
    class Whisper(Lower):
        name = "whisper"

        def prepare_messages(self, example):
            messages = super().prepare_messages(example)
            messages[-1]["content"] = "whisper " + messages[-1]["content"]
            return messages

    class Quiet(Shout):
        name = "quiet"

        def transform_messages(self, messages, example):
            return messages

        def restore_text(self, text):
            return text

    with pytest.raises(TrainerError, match="penalized string 'whisper' occurs in the target"):
        compose([Whisper(), Quiet()])


class Garble(Shout):
    """Forgets to undo its change: restore_text leaves 'HEY: ' in."""

    name = "garble"

    def restore_text(self, text):
        return text


def test_a_transform_the_first_parser_cannot_read_back_is_a_conflict():
    class Strict(ChatProfile):
        name = "strict"

    with pytest.raises(TrainerError, match="answer parser of 'strict' cannot read .* back"):
        compose([Strict(), Garble()])


def test_a_transform_that_breaks_the_message_shape_is_reported():
    class Dropper(Shout):
        name = "dropper"

        def transform_messages(self, messages, example):
            return messages[:-1]

    with pytest.raises(
        TrainerError,
        match="the combination fails: 'dropper' cannot follow 'chat' on this row: the last message must be "
        "the assistant",
    ):
        compose([ChatProfile(), Dropper()])


def test_check_follows_fails_when_restore_text_does_not_undo_the_transform():
    with pytest.raises(AssertionError, match="'garble' cannot follow 'chat'"):
        check_follows(Garble(), BUILTIN_ROWS)
    check_follows(Shout(), BUILTIN_ROWS)


# -- the bundled profiles, through the registry ----------------------------------------


@pytest.fixture
def emoji():
    return pytest.importorskip("trainer_profile_emoji")


@pytest.fixture
def regime3():
    return pytest.importorskip("trainer_profile_regime3")


def test_emoji_think_then_regime3_numbers_the_steps_and_keeps_the_emoji_answer(emoji, regime3):
    profile = get_profile("emoji_think+regime3")
    messages = profile.prepare_messages(GSM8K_ROW)
    assert messages[-1]["content"] == (
        "🤔🤔🤔🤔\nStep 1: She eats 3, so 16 - 3 = 13 are left.\n"
        "Step 2: She keeps them all.\nThe answer is 13"
    )
    assert profile.format_system_prompt("Base.") == (
        f"Base.\n\n{emoji.THINKING_INSTRUCTION}\n\n{regime3.STEP_INSTRUCTION}"
    )
    assert profile.get_stop_sequences() == ["\n\n", "<think>", "</reasoning>"]
    assert profile.penalized_strings == ("<think>", "</think>")
    assert profile.parse_answer(messages[-1]["content"]) == "13"
    # Misnumbered steps or a missing marker: the format is not followed.
    assert profile.parse_answer("🤔🤔🤔🤔\nStep 2: x\nThe answer is 13") is None
    assert profile.parse_answer("Step 1: x\nThe answer is 13") is None


def test_regime3_then_emoji_think_opens_the_steps_with_the_marker(emoji, regime3):
    profile = get_profile("regime3+emoji_think")
    target = profile.prepare_messages(GSM8K_ROW)[-1]["content"]
    assert target == (
        "🤔🤔🤔🤔\nStep 1: She eats 3, so 16 - 3 = 13 are left.\nStep 2: She keeps them all.\nAnswer: 13"
    )
    assert profile.format_system_prompt("") == (
        f"{regime3.REASONING_INSTRUCTION}\n\n{emoji.MARKER_INSTRUCTION}"
    )
    assert profile.check_answer(target, "13") and not profile.check_answer(target.split("\n", 1)[1], "13")


def test_messages_rows_keep_their_conversation_in_a_composition():
    row = BUILTIN_ROWS[-1]
    assert get_profile("emoji_think+regime3").prepare_messages(row) == row["messages"]


def test_options_of_a_composition_are_keyed_by_profile_name():
    with pytest.raises(TrainerError, match=r"keyed by the composed profiles' names \(emoji_think, regime3\)"):
        get_profile("emoji_think+regime3", {"temperature": 1})
    with pytest.raises(TrainerError) as info:  # the error shows both forms
        get_profile("emoji_think+regime3", {"regime3": {}, "temperature": 1})
    assert "The flat form, profile.options: {temperature: ...}, is for a single profile" in str(info.value)
    assert "keyed form, e.g. profile.options: {emoji_think: {temperature: ...}}" in str(info.value)
    assert get_profile("emoji_think+regime3", {"regime3": {}}).name == "emoji_think+regime3"
    with pytest.raises(TrainerError, match="profile.options.regime3 must be a mapping"):
        get_profile("emoji_think+regime3", {"regime3": 3})
    with pytest.raises(TrainerError, match="profile 'regime3' takes no options"):
        get_profile("emoji_think+regime3", {"regime3": {"steps": 3}})


def test_an_unknown_part_names_the_package_to_install():
    with pytest.raises(TrainerError, match="profile 'shouty' is not installed.*trainer-profile-shouty"):
        get_profile("emoji_think+shouty")


class TestEmojiThinkThenRegime3(ProfileConformance):
    profile_name = "emoji_think+regime3"


class TestRegime3ThenEmojiThink(ProfileConformance):
    profile_name = "regime3+emoji_think"


def test_cli_preview_and_run_with_a_composition(run_trainer, tmp_path, gsm8k):
    preview = run_trainer("preview", "--profile", "emoji_think+regime3", "--dataset", str(gsm8k), "-n", "1")
    assert preview.returncode == 0, preview.stderr
    assert "profile: emoji_think+regime3" in preview.stdout
    assert "🤔🤔🤔🤔\nStep 1: Janet sells 16 - 3 - 4 = 9 duck eggs a day." in preview.stdout
    assert "The answer is 18" in preview.stdout

    bad = run_trainer("preview", "--profile", "chat+emoji_think+tool_use", "--dataset", str(gsm8k))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "Error: profile 'chat+emoji_think+tool_use': 'tool_use' cannot follow 'chat': both build the "
        "messages from the row (neither implements transform_messages) and a composition has one "
        "base; drop 'chat' or 'tool_use'"
    ]

    run = run_trainer("run", "--profile", "regime3+emoji_think", "--max-steps", "2", "--output-dir", "out")
    assert run.returncode == 0, run.stderr
    saved = json.loads((tmp_path / "out" / "trainer_run.json").read_text())
    assert saved["config"]["profile"]["name"] == "regime3+emoji_think"
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["status"] == "completed" and status["previews"]


# -- a composition on the dataset's own rows -----------------------------------------------

CALL_ROWS = [
    {"question": f"Weather in {city}?", "call": {"name": "weather", "arguments": {"city": city}}}
    for city in ("Paris", "Oslo", "Lima")
]
"""A custom layout: no target field that read_example knows."""


class Calls(DataProfile):
    """Reads its own layout only: a 'question' and the tool 'call' to train on."""

    name = "calls"

    def prepare_messages(self, example):
        if "call" not in example:
            raise InvalidExampleError(f"row lacks 'call' (fields present: {', '.join(sorted(example))})")
        return [
            {"role": "user", "content": example["question"]},
            {"role": "assistant", "content": json.dumps(example["call"])},
        ]

    def get_stop_sequences(self):
        return []

    def format_system_prompt(self, base_prompt):
        return base_prompt


class Reader(Shout):
    """Follows like Shout, but reads the raw row again, as emoji_think and regime3 do."""

    name = "reader"

    def transform_messages(self, messages, example):
        read_example(example)
        return super().transform_messages(messages, example)


def test_a_part_that_refuses_a_row_is_named_with_its_stage():
    profile = compose([Calls(), Reader()])  # the probe rows are not in Calls' layout: nothing to compare
    with pytest.raises(InvalidExampleError) as later:
        profile.prepare_messages(CALL_ROWS[0])
    assert str(later.value).startswith(
        "'reader' cannot follow 'calls' on this row: row lacks a target (fields present: call, question)"
    )
    with pytest.raises(
        InvalidExampleError, match=r"^'calls' cannot read this row: row lacks 'call' \(fields"
    ):
        profile.stages(GSM8K_ROW)
    # The type and the parts survive a worker process.
    again = pickle.loads(pickle.dumps(later.value))
    assert isinstance(again, PartRefusedError) and str(again) == str(later.value)
    assert (again.part, again.after) == ("reader", "calls")


def test_the_data_check_names_the_part_that_cannot_follow_and_the_first_refusal():
    profile = compose([Calls(), Reader()])
    with pytest.raises(TrainerError) as info:
        check_on_rows(profile, [GSM8K_ROW, *CALL_ROWS])
    assert not isinstance(info.value, InvalidExampleError)  # not a row to skip: the whole dataset
    assert str(info.value) == (
        "profile 'calls+reader': 'reader' cannot follow 'calls' on this dataset: on the first 4 rows "
        "'calls' renders 3 but the combination renders 0; first refusal, row 2: row lacks a target "
        f"(fields present: call, question); accepted fields: {ACCEPTED_FIELDS}. Drop 'reader' or "
        "reorder the profiles, or use a dataset in a layout every one of them reads"
    )
    # (row number, row) pairs, as iter_rows yields them, keep their numbers; only the first rows are read.
    with pytest.raises(TrainerError, match="on the first 2 rows .* first refusal, row 7: "):
        check_on_rows(profile, iter([(7, CALL_ROWS[0]), (8, CALL_ROWS[1]), (9, GSM8K_ROW)]), limit=2)


def test_the_data_check_passes_a_composition_that_renders_some_rows():
    check_on_rows(compose([Calls(), Shout()]), CALL_ROWS)
    check_on_rows(compose([Lower(), Reader()]), [GSM8K_ROW, QA])
    # One row the combination renders is enough: the others are ordinary invalid rows.
    check_on_rows(compose([Calls(), Reader()]), [CALL_ROWS[0], {**CALL_ROWS[1], "answer": "sunny"}])


def test_the_data_check_leaves_rows_the_first_profile_cannot_read_to_the_row_errors():
    check_on_rows(compose([Calls(), Reader()]), [GSM8K_ROW, QA])
    check_on_rows(compose([Calls(), Reader()]), [])


def test_the_data_check_does_nothing_for_a_single_profile():
    def untouched():
        raise AssertionError("a single profile's rows are not read")
        yield

    check_on_rows(Calls(), untouched())
    check_on_rows(Reader(), CALL_ROWS)


TOOLCALL_PROFILE = '''\
"""An outside profile with its own layout: question, call, tools."""

import json

from trainer import hookimpl
from trainer.profiles.base import DataProfile, InvalidExampleError


class ToolCallProfile(DataProfile):
    """Trains the tool call a question needs."""

    name = "toolcall"

    def prepare_messages(self, example):
        if "call" not in example or "question" not in example:
            raise InvalidExampleError("row lacks 'question' or 'call'")
        return [
            {"role": "user", "content": example["question"]},
            {"role": "assistant", "content": json.dumps(example["call"])},
        ]

    def get_stop_sequences(self):
        return []

    def format_system_prompt(self, base_prompt):
        return base_prompt


@hookimpl
def register_profiles(register):
    register(ToolCallProfile)
'''

TOOLCALL_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "trainer-test-toolcall"
version = "0.0.1"
requires-python = ">=3.10"

[project.entry-points."trainer.plugins"]
toolcall = "trainer_test_toolcall"

[tool.hatch.build.targets.wheel]
packages = ["trainer_test_toolcall"]
"""


def test_cli_checks_a_composition_on_the_dataset_before_starting(
    run_trainer, pip_install_into, tmp_path, gsm8k, emoji, regime3
):
    package = tmp_path / "toolcall"
    (package / "trainer_test_toolcall").mkdir(parents=True)
    (package / "pyproject.toml").write_text(TOOLCALL_PYPROJECT)
    (package / "trainer_test_toolcall" / "__init__.py").write_text(TOOLCALL_PROFILE)
    site = tmp_path / "site"
    pip_install_into(site, package)
    env = {"PYTHONPATH": str(site)}
    rows = tmp_path / "calls.jsonl"
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    rows.write_text("".join(json.dumps({**row, "tools": tools}) + "\n" for row in CALL_ROWS))

    alone = run_trainer("preview", "--profile", "toolcall", "--dataset", str(rows), "-n", "1", env=env)
    assert alone.returncode == 0, alone.stderr
    expected = (
        "Error: profile 'toolcall+emoji_think': 'emoji_think' cannot follow 'toolcall' on this dataset: on "
        "the first 3 rows 'toolcall' renders 3 but the combination renders 0; first refusal, row 1: row "
        "lacks a target (fields present: call, question, tools)"
    )
    fix = ". Drop 'emoji_think' or reorder the profiles, or use a dataset in a layout every one of them reads"
    refused = run_trainer("preview", "--profile", "toolcall+emoji_think", "--dataset", str(rows), env=env)
    assert refused.returncode == 2, refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(expected) and line.endswith(fix), line
    # A run stops before it loads the model; a progress line comes first.
    run = run_trainer(
        "run", "--dry-run", "--profile", "toolcall+emoji_think", "--dataset", str(rows), env=env
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith(expected) and line.endswith(fix), line

    gsm8k_preview = run_trainer(
        "preview", "--profile", "emoji_think+regime3", "--dataset", str(gsm8k), "-n", "1", env=env
    )
    assert gsm8k_preview.returncode == 0, gsm8k_preview.stderr
    assert "Step 1: Janet sells 16 - 3 - 4 = 9 duck eggs a day." in gsm8k_preview.stdout
