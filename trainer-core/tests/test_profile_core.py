"""The profile contract, field layouts and the core's chat profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.data.chatml import render_chatml
from trainer.data.conversation import build_messages, effective_stop_sequences
from trainer.errors import TrainerError
from trainer.profiles import DataProfile, InvalidExampleError, ProfileEntry, get_profile, installed_profiles
from trainer.profiles.base import answers_match, check_stop_sequences, validate_messages
from trainer.profiles.chat import ChatProfile
from trainer.profiles.fields import read_example

GSM8K_ROW = {
    "question": "Janet's ducks lay 16 eggs per day. How much does she make?",
    "answer": "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
    "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer's market.\n#### 18",
}


@pytest.mark.parametrize("prompt_field", ["prompt", "question", "instruction"])
@pytest.mark.parametrize("target_field", ["response", "answer", "output", "completion"])
def test_field_aliases(prompt_field, target_field):
    parsed = read_example({prompt_field: "Add 2 and 3.", target_field: "5"})
    assert parsed.prompt == "Add 2 and 3."
    assert parsed.target == "5" and parsed.answer == "5"


def test_instruction_with_input():
    parsed = read_example({"instruction": "Translate.", "input": "bonjour", "output": "hello"})
    assert parsed.prompt == "Translate.\n\nbonjour"


def test_gsm8k_answer_is_split_and_cleaned():
    parsed = read_example(GSM8K_ROW)
    assert parsed.answer == "18"
    assert parsed.reasoning == [
        "Janet sells 16 - 3 - 4 = 9 duck eggs a day.",
        "She makes 9 * 2 = $18 every day at the farmer's market.",
    ]


@pytest.mark.parametrize("field", ["reasoning", "steps", "thinking"])
def test_reasoning_fields_as_text_or_list(field):
    as_text = read_example({"prompt": "p", "answer": "4", field: "2 + 2 = 4\n\nso 4"})
    as_list = read_example({"prompt": "p", "answer": "4", field: ["2 + 2 = 4", "so 4"]})
    assert as_text.reasoning == as_list.reasoning == ["2 + 2 = 4", "so 4"]


def test_numbers_as_answers():
    assert read_example({"question": "2+2?", "answer": 4}).answer == "4"


def test_missing_fields_name_the_accepted_ones():
    with pytest.raises(InvalidExampleError) as info:
        read_example({"text": "just text"})
    message = str(info.value)
    assert "fields present: text" in message
    assert "prompt / question / instruction" in message and "messages" in message
    with pytest.raises(InvalidExampleError, match="lacks a target"):
        read_example({"prompt": "p"})


def test_wrong_field_type_is_named():
    with pytest.raises(InvalidExampleError, match="field 'prompt' must be text"):
        read_example({"prompt": ["a"], "response": "b"})


def test_messages_rows():
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert read_example({"messages": messages}).messages == messages
    with pytest.raises(InvalidExampleError, match="role 'bot'"):
        read_example({"messages": [{"role": "bot", "content": "x"}]})


def test_validate_messages_rules():
    with pytest.raises(InvalidExampleError, match="last message must be the assistant"):
        validate_messages([{"role": "user", "content": "x"}])
    with pytest.raises(InvalidExampleError, match="only the first message"):
        validate_messages(
            [
                {"role": "user", "content": "x"},
                {"role": "system", "content": "s"},
                {"role": "assistant", "content": "y"},
            ]
        )
    with pytest.raises(InvalidExampleError, match="content must be a string"):
        validate_messages([{"role": "assistant", "content": 3}])


def test_stop_sequence_inside_target_is_refused():
    messages = [{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "one\n\ntwo"}]
    with pytest.raises(InvalidExampleError, match="stop sequence"):
        check_stop_sequences(messages, ["\n\n"])
    check_stop_sequences(messages[:1] + [{"role": "assistant", "content": "one\ntwo"}], ["\n\n"])


def test_chat_profile_is_registered_as_a_plugin():
    entry = installed_profiles()["chat"]
    assert entry.profile_class is ChatProfile
    assert entry.plugin.distribution == "trainer-core"
    assert isinstance(get_profile("chat"), ChatProfile)


def test_chat_profile_passes_rows_through():
    profile = get_profile("chat")
    assert profile.prepare_messages({"prompt": "Hi", "response": "Hello"}) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    assert profile.get_stop_sequences() == []
    assert profile.format_system_prompt("Be brief.") == "Be brief."
    assert profile.check_answer("  42 ", "42") and not profile.check_answer("42.0", "42")


def test_chat_judges_the_answer_after_a_leading_think_block():
    profile = get_profile("chat")
    row = {"prompt": "Hi", "response": "<think>\ngreet back\n</think>\n\nHello"}
    assert profile.expected_answer(row) == "Hello"
    assert profile.check_answer("<think>\nsomething else\n</think>\n\nHello", "Hello")
    assert profile.check_answer("Hello", profile.expected_answer(row))
    assert not profile.check_answer("<think>\nHello\n</think>\n\nBye", "Hello")


def test_build_messages_fills_the_system_turn():
    profile = get_profile("chat")
    conversation = build_messages(profile, {"prompt": "Hi", "response": "Hello"}, "Be kind.", [])
    assert conversation[0] == {"role": "system", "content": "Be kind."}
    own = {
        "messages": [
            {"role": "system", "content": "Row prompt"},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a"},
        ]
    }
    assert build_messages(profile, own, "Be kind.", [])[0]["content"] == "Row prompt"
    assert build_messages(profile, {"prompt": "Hi", "response": "Hello"}, "", [])[0]["role"] == "user"


def test_stop_override_is_checked_against_targets():
    profile = get_profile("chat")
    stops = effective_stop_sequences(profile, ["Hello"])
    with pytest.raises(InvalidExampleError, match="'Hello'"):
        build_messages(profile, {"prompt": "Hi", "response": "Hello there"}, "s", stops)


def test_chatml_rendering():
    text = render_chatml([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}])
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n"
    assert render_chatml([{"role": "user", "content": "Hi"}], add_generation_prompt=True).endswith(
        "<|im_start|>assistant\n"
    )


def test_unknown_profile_lists_installed_and_the_package():
    with pytest.raises(TrainerError) as info:
        get_profile("no_such_profile")
    message = str(info.value)
    assert "profile 'no_such_profile' is not installed" in message
    assert "chat" in message
    assert "pip install trainer-profile-no-such-profile" in message


@pytest.mark.parametrize(("typed", "meant"), [("chta", "chat"), ("Chat", "chat"), ("chat-", "chat")])
def test_a_misspelled_profile_gets_the_installed_name_not_a_pip_hint(typed, meant):
    with pytest.raises(TrainerError) as info:
        get_profile(typed)
    message = str(info.value)
    assert f"profile '{typed}' is not installed; did you mean '{meant}'?" in message
    assert "pip install" not in message


def test_a_dash_for_an_underscore_finds_the_installed_profile():
    from trainer.profiles import _close_profile

    assert _close_profile("emoji-think", ["chat", "emoji_think", "regime3"]) == "emoji_think"
    assert _close_profile("regim3", ["chat", "emoji_think", "regime3"]) == "regime3"
    assert _close_profile("tool-use", ["chat", "tool_use"]) == "tool_use"
    assert _close_profile("summarize", ["chat", "regime3"]) is None


def test_profile_without_options_rejects_them():
    with pytest.raises(TrainerError, match="takes no options"):
        get_profile("chat", {"colour": "red"})


class Exclaiming(ChatProfile):
    """Takes options, one of them named like the profile itself."""

    name = "exclaiming"

    def __init__(self, exclamations: int = 1, exclaiming: object = None) -> None:
        super().__init__()
        self.exclamations = exclamations
        self.exclaiming = exclaiming


@pytest.fixture
def exclaiming(monkeypatch):
    chat = installed_profiles()["chat"]
    entries = {**installed_profiles(), "exclaiming": ProfileEntry("exclaiming", Exclaiming, chat.plugin)}
    monkeypatch.setattr("trainer.profiles.installed_profiles", lambda: entries)


def test_one_profile_takes_its_options_flat_or_keyed_by_its_name(exclaiming):
    assert get_profile("exclaiming", {"exclamations": 2}).exclamations == 2
    keyed = {"exclaiming": {"exclamations": 2}}  # as a composition takes them
    assert get_profile("exclaiming", keyed).exclamations == 2
    assert get_profile("exclaiming", {"exclaiming": {}}).exclamations == 1
    assert isinstance(get_profile("chat", {"chat": {}}), ChatProfile)
    with pytest.raises(TrainerError, match="profile 'chat' takes no options, got: colour"):
        get_profile("chat", {"chat": {"colour": "red"}})


def test_a_single_key_named_like_the_profile_holding_a_mapping_is_the_keyed_form(exclaiming):
    twice = {"exclaiming": {"exclaiming": {"loud": True}}}
    assert get_profile("exclaiming", twice).exclaiming == {"loud": True}
    with pytest.raises(TrainerError, match="rejected profile.options {'loud': True}"):
        get_profile("exclaiming", {"exclaiming": {"loud": True}})  # unwrapped: not the option itself
    assert get_profile("exclaiming", {"exclaiming": 3}).exclaiming == 3  # not a mapping: flat
    flat = get_profile("exclaiming", {"exclaiming": {"a": 1}, "exclamations": 2})  # two keys: flat
    assert (flat.exclaiming, flat.exclamations) == ({"a": 1}, 2)


def test_incomplete_profile_cannot_be_instantiated():
    class Half(DataProfile):
        name = "half"

        def get_stop_sequences(self):
            return []

    with pytest.raises(TypeError):
        Half()


@pytest.mark.parametrize(
    ("found", "expected", "same"),
    [
        ("18", "18", True),
        ("$18", "18", True),
        ("18.0", "18", True),
        ("1,000", "1000", True),
        ("18.", "18", True),
        ("17", "18", False),
        ("Paris", "paris", True),
        ("Paris", "Rome", False),
    ],
)
def test_answers_match(found, expected, same):
    assert answers_match(found, expected) is same


# -- a profile's own sample (default_dataset) ------------------------------------------


class Sampled(ChatProfile):
    """Ships its own sample, used when a run names no dataset."""

    name = "sampled"
    sample = ""

    def default_dataset(self) -> str | None:
        return self.sample


@pytest.fixture
def sampled(monkeypatch, tmp_path):
    rows = [{"prompt": f"Say {word}.", "response": word} for word in ("alpha", "beta", "gamma") * 4]
    Sampled.sample = str(tmp_path / "own-sample.jsonl")
    Path(Sampled.sample).write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    chat = installed_profiles()["chat"]
    entries = {**installed_profiles(), "sampled": ProfileEntry("sampled", Sampled, chat.plugin)}
    monkeypatch.setattr("trainer.profiles.installed_profiles", lambda: entries)
    return Sampled.sample


def test_a_profiles_own_sample_is_previewed_and_trained_when_no_dataset_is_named(sampled, tmp_path):
    from click.testing import CliRunner

    from trainer.cli import cli
    from trainer.config import create_default_config
    from trainer.core import TrainerEngine

    assert ChatProfile().default_dataset() is None
    shown = CliRunner().invoke(cli, ["preview", "--profile", "sampled", "-n", "1"])
    assert shown.exit_code == 0, shown.output
    assert f"dataset: {sampled}" in shown.output and "Say alpha." in shown.output

    messages: list[str] = []
    config = create_default_config(output_dir=str(tmp_path / "out"))
    config.profile.name = "sampled"
    config.debug.dry_run = True
    result = TrainerEngine(on_message=messages.append).run_job(config)
    assert "No dataset given: using the sample that profile 'sampled' ships" in messages
    assert result.data_report.rows_read == 12


def test_a_missing_project_profile_names_the_package_that_holds_it():
    from trainer.profiles import _unknown_profile_message

    assert _unknown_profile_message("tool_use", ["chat"]).endswith("pip install trainer-profile-tools")
    assert _unknown_profile_message("emoji_think", ["chat"]).endswith("pip install trainer-profile-emoji")
    assert _unknown_profile_message("qa_tags", ["chat"]).endswith("pip install trainer-profile-qa-tags")
