"""Plugin discovery through real installed entry points, and its controls."""

from __future__ import annotations

import json
from pathlib import Path


def plugin_table(result) -> dict[str, dict]:
    assert result.returncode == 0, result.stderr
    return {info["name"]: info for info in json.loads(result.stdout)}


def test_builtin_plugins_come_through_entry_points(run_trainer):
    table = plugin_table(run_trainer("plugins", "--json"))
    assert table["chat"]["status"] == "loaded"
    assert table["chat"]["distribution"] == "trainer-core"
    assert table["chat"]["builtin"] is True
    assert table["chat"]["hooks"] == ["register_profiles"]
    assert table["status_file"]["hooks"] == ["register_status_sinks"]


def test_broken_plugin_leaves_profiles_working(run_trainer):
    result = run_trainer("profiles", plugins=["broken"])
    assert result.returncode == 0
    assert "chat" in result.stdout
    assert "trainer-test-broken" in result.stderr
    assert "Traceback" not in result.stderr

    table = plugin_table(run_trainer("plugins", "--json", plugins=["broken"]))
    broken = table["broken"]
    assert broken["status"] == "failed"
    assert broken["distribution"] == "trainer-test-broken"
    assert broken["version"] == "0.0.1"
    assert "ImportError: this plugin is broken on purpose" in broken["error"]


def test_plugins_table_shows_failure_reason(run_trainer):
    result = run_trainer("plugins", plugins=["broken"])
    assert result.returncode == 0
    assert "failed" in result.stdout
    assert "broken on purpose" in result.stdout


def test_command_needing_a_broken_plugin_names_its_distribution(run_trainer, tmp_path: Path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"prompt": "hi", "response": "hello"}\n')
    result = run_trainer("preview", "--profile", "broken", "--dataset", str(data), plugins=["broken"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "trainer-test-broken" in lines[0] and "failed to load" in lines[0]


def test_strict_mode_makes_a_broken_plugin_fatal(run_trainer):
    result = run_trainer("profiles", plugins=["broken"], env={"TRAINER_STRICT_PLUGINS": "1"})
    assert result.returncode == 2
    assert "trainer-test-broken" in result.stderr
    assert "TRAINER_STRICT_PLUGINS" in result.stderr
    assert "Traceback" not in result.stderr


def test_duplicate_profile_name_names_both_distributions(run_trainer):
    result = run_trainer("profiles", plugins=["duplicate"])
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "profile 'chat'" in message
    assert "trainer-core" in message and "trainer-test-duplicate" in message
    assert "TRAINER_BLOCK_PLUGINS=trainer-test-duplicate" in message


def test_blocking_resolves_a_duplicate(run_trainer):
    by_env = run_trainer(
        "profiles", plugins=["duplicate"], env={"TRAINER_BLOCK_PLUGINS": "trainer-test-duplicate"}
    )
    assert by_env.returncode == 0, by_env.stderr
    by_option = run_trainer("--block-plugin", "dupchat", "profiles", plugins=["duplicate"])
    assert by_option.returncode == 0, by_option.stderr
    assert "chat" in by_option.stdout


def test_working_third_party_plugin_adds_profile_and_command(run_trainer, tmp_path: Path):
    marker = tmp_path / "imported"
    result = run_trainer(
        "profiles", "--json", plugins=["marker"], env={"TRAINER_TEST_IMPORT_MARKER": str(marker)}
    )
    assert result.returncode == 0, result.stderr
    profiles = {p["name"]: p for p in json.loads(result.stdout)}
    assert profiles["shout"]["distribution"] == "trainer-test-marker"
    assert profiles["shout"]["version"] == "0.0.1"
    assert profiles["shout"]["description"] == "Upper-case answers"
    assert profiles["shout"]["can_follow"] is False and profiles["shout"]["suits"] == ""
    assert profiles["chat"]["suits"].startswith("ready-made conversations")
    assert marker.exists()

    hello = run_trainer("hello", plugins=["marker"])
    assert hello.returncode == 0
    assert hello.stdout.strip() == "hello from trainer-test-marker"
    assert "hello" in run_trainer("--help", plugins=["marker"]).stdout


def test_plugin_command_cannot_shadow_a_builtin(run_trainer):
    result = run_trainer("profiles", plugins=["marker"])
    assert result.returncode == 0
    assert "NAME" in result.stdout and "shadowed" not in result.stdout


def test_blocked_plugin_is_never_imported(run_trainer, tmp_path: Path):
    marker = tmp_path / "imported"
    env = {"TRAINER_TEST_IMPORT_MARKER": str(marker)}
    for args, extra in [
        (("plugins", "--json"), {"TRAINER_BLOCK_PLUGINS": "trainer-test-marker"}),
        (("--block-plugin", "marker", "plugins", "--json"), {}),
    ]:
        table = plugin_table(run_trainer(*args, plugins=["marker"], env={**env, **extra}))
        assert table["marker"]["status"] == "blocked"
        assert not marker.exists()


def test_blocked_profile_is_explained(run_trainer, tmp_path: Path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"prompt": "hi", "response": "hello"}\n')
    result = run_trainer(
        "preview",
        "--profile",
        "shout",
        "--dataset",
        str(data),
        plugins=["marker"],
        env={"TRAINER_BLOCK_PLUGINS": "marker"},
    )
    assert result.returncode == 2
    assert "not installed" in result.stderr


def test_allowlist_loads_only_named_plugins(run_trainer, tmp_path: Path):
    marker = tmp_path / "imported"
    env = {"TRAINER_TEST_IMPORT_MARKER": str(marker)}
    table = plugin_table(
        run_trainer("plugins", "--json", plugins=["marker", "broken"], env={**env, "TRAINER_PLUGINS": ""})
    )
    assert table["marker"]["status"] == "not allowed"
    assert table["broken"]["status"] == "not allowed"
    assert table["chat"]["status"] == "loaded"  # built-ins are always loaded
    assert not marker.exists()

    table = plugin_table(
        run_trainer(
            "plugins", "--json", plugins=["marker", "broken"], env={**env, "TRAINER_PLUGINS": "marker"}
        )
    )
    assert table["marker"]["status"] == "loaded"
    assert table["broken"]["status"] == "not allowed"
    assert marker.exists()


def test_invalid_hook_implementations_are_rejected(run_trainer):
    table = plugin_table(run_trainer("plugins", "--json", plugins=["invalid"]))
    assert table["bad-args"]["status"] == "failed"
    assert "colour" in table["bad-args"]["error"]
    assert table["misspelled"]["status"] == "failed"
    assert "register_profile" in table["misspelled"]["error"]
    assert table["raising"]["status"] == "failed"
    assert "register_profiles raised RuntimeError: cannot register today" in table["raising"]["error"]
    profiles = run_trainer("profiles", plugins=["invalid"])
    assert profiles.returncode == 0
    assert "3 plugin(s) failed to load" in profiles.stderr


def test_version_lists_plugin_distributions_without_importing_them(run_trainer, tmp_path: Path):
    marker = tmp_path / "imported"
    result = run_trainer(
        "--version", plugins=["marker", "broken"], env={"TRAINER_TEST_IMPORT_MARKER": str(marker)}
    )
    assert result.returncode == 0
    assert result.stdout.startswith("trainer-core ")
    assert "trainer-test-marker 0.0.1 (plugins: marker)" in result.stdout
    assert "trainer-test-broken 0.0.1" in result.stdout
    assert not marker.exists()


def test_plugin_built_for_another_core_is_not_imported(run_trainer, tmp_path: Path):
    marker = tmp_path / "imported"
    env = {"TRAINER_TEST_IMPORT_MARKER": str(marker)}
    table = plugin_table(run_trainer("plugins", "--json", plugins=["oldcore"], env=env))
    error = table["oldcore"]["error"]
    assert table["oldcore"]["status"] == "failed"
    assert "built for trainer-core<10,>=9.0" in error and "trainer-core 0." in error
    assert "trainer-test-oldcore" in error
    assert not marker.exists()
    profiles = run_trainer("profiles", plugins=["oldcore"])
    assert profiles.returncode == 0 and "trainer-test-oldcore" in profiles.stderr


def test_every_command_has_a_whole_one_line_description_in_help(run_trainer):
    result = run_trainer("--help")
    commands = result.stdout.split("Commands:")[1].strip().splitlines()
    assert len(commands) >= 11
    for line in commands:
        assert line.rstrip().endswith("."), line
        assert not line.rstrip().endswith("..."), line
