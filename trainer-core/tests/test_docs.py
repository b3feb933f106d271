"""The documentation keeps up with the code: every config field, hook, command and status key.

The generated parts of the site come from :mod:`trainer.reference`; these tests
check what it generates, and that each checker would catch what it is for.
They need no mkdocs: ``nox -s docs`` builds the site itself.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import click
import pluggy
import pytest

from trainer import PLUGIN_API_VERSION, reference, reference_blocks
from trainer.config.loader import CLI_FLAGS
from trainer.config.schema import TrainerConfig
from trainer.monitoring.status import initial_state

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGES = REPO_ROOT / "docs" / "pages"
STATUS_PAGE = PAGES / "reference" / "status-file.md"
TESTS = Path(__file__).resolve().parent
SECTIONS = {"hyperparams", "model", "data", "profile", "inference", "output", "system", "debug"}


# -- (a) config fields -------------------------------------------------------------------------------


def test_every_config_field_has_a_docstring():
    fields = reference.config_fields()
    assert {f.path for f in fields if "." not in f.path} == SECTIONS
    assert len(fields) > 50
    assert reference.undocumented_fields(TrainerConfig) == []


def test_every_config_field_is_in_the_config_reference():
    markdown = reference.config_reference()
    fields = reference.config_fields()
    missing = [f.path for f in fields if "." in f.path and f"| `{f.path}` |" not in markdown]
    missing += [f.path for f in fields if f.is_section and f"# {f.path}\n" not in markdown]
    assert missing == [], f"fields missing from the config reference: {missing}"
    for section in SECTIONS:
        assert f"| [`{section}`](#{section}) |" in markdown


def test_the_config_reference_shows_type_default_flag_and_meaning():
    rows = {
        line.split(" | ")[0].removeprefix("| "): line for line in reference.config_reference().splitlines()
    }
    assert rows["`hyperparams.batch_size`"] == (
        "| `hyperparams.batch_size` | `int` | `8` | `--batch-size` | Examples per device per forward pass. |"
    )
    assert "| `int | None` | `null` | `--max-steps` |" in rows["`hyperparams.max_steps`"]
    assert "| `[all-linear]` |" in rows["`model.lora.target_modules`"]
    for name, path in CLI_FLAGS.items():
        assert f"`--{name.replace('_', '-')}`" in rows[f"`{path}`"]


@dataclass(kw_only=True)
class _Inner:
    documented: int = 1
    """Documented."""
    bare: int = 2


@dataclass(kw_only=True)
class _Outer:
    inner: _Inner = field(default_factory=_Inner)
    """A nested section."""
    blank: str = "x"
    """ """
    documented: bool = False
    """Documented too."""


def test_undocumented_fields_are_reported_with_their_path():
    assert reference.undocumented_fields(_Outer) == ["inner.bare", "blank"]
    docs = reference.field_docs(_Inner)
    assert docs == {"documented": ("int", "Documented."), "bare": ("int", "")}


# -- (b) hookspecs -----------------------------------------------------------------------------------


def test_every_hookspec_has_a_docstring_and_is_in_the_hook_reference():
    names = [hook.name for hook in reference.hookspecs()]
    assert {"register_profiles", "register_callbacks", "register_status_sinks", "register_commands"} <= set(
        names
    )
    assert reference.undocumented_hooks() == []
    markdown = reference.hook_reference()
    for name in names:
        assert f"## {name}\n" in markdown
    assert f"**`{PLUGIN_API_VERSION}`**" in markdown
    assert "def register_profiles(register: Callable[..., None]) -> None" in markdown
    assert "- **Argument `register`**: call `register(ProfileClass)`" in markdown


def _fake_hookspecs() -> types.ModuleType:
    spec = pluggy.HookspecMarker("trainer")
    module = types.ModuleType("fake_hookspecs")

    def register_widgets(register):
        """Contribute widgets.

        :param register: call it for each widget.
        """

    def register_gadgets(register):
        pass

    def helper():
        """Not a hook."""

    module.register_widgets = spec(register_widgets)
    module.register_gadgets = spec(register_gadgets)
    module.helper = helper
    return module


def test_undocumented_hookspecs_are_reported():
    module = _fake_hookspecs()
    assert [hook.name for hook in reference.hookspecs(module)] == ["register_widgets", "register_gadgets"]
    assert reference.undocumented_hooks(module) == ["register_gadgets"]


# -- (c) every hook is exercised by a test -----------------------------------------------------------


def hook_uses(hook_names: list[str], paths: list[Path]) -> dict[str, list[str]]:
    """Where each hook is implemented (``def register_x``) or called, by ``path:line``.

    A call is ``anything.register_x(...)`` or a call that names the hook in a
    string argument (``plugins.collect("register_x")``).
    """
    uses: dict[str, list[str]] = {name: [] for name in hook_names}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [node.name]
            elif isinstance(node, ast.Call):
                func = node.func
                names = [func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")]
                names += [
                    arg.value
                    for arg in [*node.args, *(keyword.value for keyword in node.keywords)]
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                ]
            for name in names:
                if name in uses:
                    uses[name].append(f"{path.name}:{node.lineno}")
    return uses


def test_every_hook_is_implemented_or_called_by_a_test():
    test_files = [path for path in sorted(TESTS.rglob("*.py")) if path.name != Path(__file__).name]
    uses = hook_uses([hook.name for hook in reference.hookspecs()], test_files)
    unexercised = [name for name, places in uses.items() if not places]
    assert unexercised == [], (
        f"no test or test fixture under {TESTS} implements or calls the hook(s) {unexercised}"
    )


def test_hook_uses_finds_implementations_and_calls_only(tmp_path):
    (tmp_path / "impl.py").write_text("def register_a(register):\n    register(object)\n")
    (tmp_path / "collect.py").write_text('plugins.collect("register_b", cli=None)\n')
    (tmp_path / "call.py").write_text("manager.hook.register_c(register=print)\n")
    (tmp_path / "mention.py").write_text('"""register_d is documented here."""\nNAME = "register_d"\n')
    uses = hook_uses(
        ["register_a", "register_b", "register_c", "register_d", "register_e"], sorted(tmp_path.glob("*.py"))
    )
    assert uses == {
        "register_a": ["impl.py:1"],
        "register_b": ["collect.py:1"],
        "register_c": ["call.py:1"],
        "register_d": [],
        "register_e": [],
    }


# -- (d) commands ------------------------------------------------------------------------------------


def test_every_command_is_in_the_cli_reference():
    paths = [doc.path for doc in reference.walk_commands()]
    assert {"trainer", "trainer run", "trainer preview", "trainer config show", "trainer new-profile"} <= set(
        paths
    )
    markdown = reference.cli_reference()
    assert reference.missing_commands(markdown) == []
    assert "trainer preview [OPTIONS]" in markdown
    assert (
        "| `-n, --num-examples INTEGER RANGE` | How many rows to render. \\[default: 3; x\\>=1\\] |"
        in markdown
    )


class _GroupWithPluginCommands(click.Group):
    """Lists a command that is not among its own, as trainer's root group lists plugin commands."""

    def list_commands(self, ctx):
        return [*super().list_commands(ctx), "hello"]

    def get_command(self, ctx, cmd_name):
        if cmd_name == "hello":
            return click.Command("hello", help="Say hello from a plugin.")
        return super().get_command(ctx, cmd_name)


def test_commands_a_group_lists_are_in_the_reference_and_missing_ones_are_reported():
    group = _GroupWithPluginCommands("trainer", commands=[click.Command("builtin", help="Built in.")])
    markdown = reference.cli_reference(group)
    assert "## trainer hello\n\n*Added by an installed plugin.*" in markdown
    assert "Say hello from a plugin." in markdown
    assert reference.missing_commands(markdown, group) == []
    assert reference.missing_commands("## trainer\n\n## trainer builtin\n", group) == ["trainer hello"]


def test_commands_from_an_installed_plugin_are_in_the_cli_reference(installed_plugins):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TRAINER_")}
    environment["PYTHONPATH"] = str(installed_plugins["marker"])
    completed = subprocess.run(
        [sys.executable, "-c", "from trainer.reference import cli_reference; print(cli_reference())"],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
        timeout=120,
    )
    assert "## trainer hello\n\n*Added by an installed plugin.*" in completed.stdout
    assert "Say hello from a plugin." in completed.stdout


# -- (e) the status file -----------------------------------------------------------------------------


def test_the_status_page_documents_every_key_a_run_writes():
    documented = reference.documented_status_keys(STATUS_PAGE.read_text(encoding="utf-8"))
    written = reference.status_keys()
    assert set(initial_state()) <= written
    assert {"sink_errors", "previews", "eval_loss", "train_loss", "last_checkpoint"} <= written
    assert sorted(written - documented) == [], f"{STATUS_PAGE} does not document these status.json keys"
    assert sorted(documented - written) == [], (
        f"{STATUS_PAGE} documents keys no code writes; remove them, or teach "
        "trainer.reference.status_keys() where they are written"
    )


def test_status_keys_finds_keys_given_to_emit(tmp_path):
    source = (
        "def report(hub, logs):\n"
        "    fields = {'speed': 1.0}\n"
        "    fields['memory'] = 2\n"
        "    hub.emit('log', status='training', **fields)\n"
        "    self.hub.emit('end', **{'brand_new': 3})\n"
        "    sink.emit('log', dict(state))\n"
    )
    assert reference.emitted_keys(source) == {"status", "speed", "memory", "brand_new"}
    (tmp_path / "module.py").write_text(source)
    keys = reference.status_keys(tmp_path)
    assert {"speed", "memory", "brand_new"} | set(initial_state()) <= keys
    page = STATUS_PAGE.read_text(encoding="utf-8")
    assert keys - reference.documented_status_keys(page) == {"speed", "memory", "brand_new"}


def test_documented_status_keys_reads_only_the_keys_section():
    page = (
        "# Status\n\n## Keys\n\n| key | meaning |\n| --- | --- |\n| `loss` | the loss |\n"
        "| `previews.step` | nested |\n\n## Events\n\n| event | when |\n| --- | --- |\n| `start` | first |\n"
    )
    assert reference.documented_status_keys(page) == {"loss"}


# -- the pages as a whole ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["chat", "emoji_think", "regime3"])
def test_profile_pages_show_what_the_installed_profile_renders(name):
    markdown = reference.profile_reference(name)
    final_line = {"chat": "#### 18", "emoji_think": "The answer is 18", "regime3": "Answer: 18"}[name]
    assert f"{final_line}\n```" in markdown
    assert markdown.count("\n### ") == len(reference.EXAMPLE_ROWS)
    assert "[system]\nYou are a terse assistant." in markdown  # the messages row's own system turn


def test_every_page_expands_and_leaves_no_bare_marker():
    pages = sorted(PAGES.rglob("*.md"))
    assert len(pages) >= 12
    for page in pages:
        text = reference.expand(page.read_text(encoding="utf-8"))
        assert reference_blocks.bare_markers(text) == [], page


def test_every_page_holds_its_generated_blocks_as_they_are_now():
    stale = [
        str(page.relative_to(REPO_ROOT))
        for page in sorted(PAGES.rglob("*.md"))
        if reference.expand(text := page.read_text(encoding="utf-8")) != text
    ]
    assert stale == [], (
        f"the generated blocks of {', '.join(stale)} are out of date; rewrite them from the "
        f"repository root with: {reference_blocks.REWRITE_COMMAND}"
    )


def _fake_generate(kind, arguments):
    return f"\nfresh {kind} {arguments}\n"


def test_a_stale_block_is_replaced_and_expanding_again_changes_nothing():
    page = (
        "intro\n\n<!-- reference: config -->\n\nold table\n\n<!-- end reference: config -->\n\n"
        "middle\n\n<!-- run: profiles -->\n\n"
        "<!-- BEGIN generated: qwen3-examples -->\nkept\n<!-- END generated: qwen3-examples -->\n"
    )
    once = reference_blocks.rewrite(page, _fake_generate)
    assert once == (
        "intro\n\n<!-- reference: config -->\n\nfresh reference config\n\n<!-- end reference: config -->\n\n"
        "middle\n\n<!-- run: profiles -->\n\nfresh run profiles\n\n<!-- end run: profiles -->\n\n"
        "<!-- BEGIN generated: qwen3-examples -->\nkept\n<!-- END generated: qwen3-examples -->\n"
    )
    assert reference_blocks.rewrite(once, _fake_generate) == once
    assert reference_blocks.bare_markers(page) == ["<!-- run: profiles -->"]
    assert reference_blocks.bare_markers(once) == []


def test_a_real_page_expands_idempotently_and_a_stale_one_is_told_apart():
    page = (PAGES / "reference" / "hooks.md").read_text(encoding="utf-8")
    assert reference.expand(reference.expand(page)) == reference.expand(page)
    stale = page.replace("## register_profiles", "## register_profiles_old", 1)
    assert stale != page
    assert reference.expand(stale) == reference.expand(page)


def test_the_rewrite_command_checks_and_rewrites_pages(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- reference: example-rows -->\n", encoding="utf-8")
    assert reference_blocks.main(["--check", str(tmp_path)]) == 1
    assert page.read_text(encoding="utf-8") == "<!-- reference: example-rows -->\n"
    assert reference_blocks.main([str(tmp_path)]) == 0
    assert "<!-- end reference: example-rows -->\n" in page.read_text(encoding="utf-8")
    assert reference_blocks.main(["--check", str(page)]) == 0


def test_unknown_markers_are_errors():
    with pytest.raises(ValueError, match="unknown marker"):
        reference.expand("<!-- reference: nonsense -->")
    with pytest.raises(ValueError, match="writes no 'missing.py'"):
        reference.expand("<!-- scaffold: shout missing.py -->")


def test_generating_the_pages_imports_no_ml_stack():
    probe = (
        "import json, pathlib, sys\n"
        "from trainer import reference\n"
        f"for page in sorted(pathlib.Path({str(PAGES)!r}).rglob('*.md')):\n"
        "    reference.expand(page.read_text(encoding='utf-8'))\n"
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


# -- (f) committed renderings ------------------------------------------------------------------------


def test_the_conversations_page_shows_what_the_qwen3_template_renders_now():
    from transformers import AutoTokenizer

    from trainer import reference_conversations as examples

    tokenizer_dir = REPO_ROOT.parent / "shared" / "models" / "qwen3-tokenizer"
    assert tokenizer_dir.is_dir(), (
        f"{tokenizer_dir} is missing: the tests need ../shared/models/qwen3-tokenizer beside the repository"
    )
    page = (PAGES / "conversations.md").read_text(encoding="utf-8")
    current = examples.qwen3_examples(AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True))
    assert examples.committed_block(page) == current, (
        "docs/pages/conversations.md is out of date; rewrite its generated block with: python -m "
        "trainer.reference_conversations ../shared/models/qwen3-tokenizer docs/pages/conversations.md"
    )


def test_a_stale_generated_block_is_told_apart():
    from trainer import reference_conversations as examples

    page = f"intro\n{examples.BEGIN}\n\nold text\n\n{examples.END}\n"
    assert examples.committed_block(page) == "old text\n"
    assert examples.committed_block(examples.replace_block(page, "new text")) == "new text\n"
