"""``trainer new-profile``: a complete, working profile package from a template."""

from __future__ import annotations

import re
from pathlib import Path

from trainer.errors import TrainerError

NAME = re.compile(r"^[a-z][a-z0-9_]*$")

PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "trainer-profile-{dash}"
version = "0.1.0"
description = "trainer data profile '{name}'"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["trainer-core>={core_minor},<{core_next}"]

# Installing the package is all it takes: trainer finds the profile through this entry point.
[project.entry-points."trainer.plugins"]
{name} = "trainer_profile_{name}.plugin"

[tool.hatch.build.targets.wheel]
packages = ["src/trainer_profile_{name}"]
"""

INIT = '''"""trainer plugin: the ``{name}`` data profile."""

from trainer_profile_{name}.profile import {cls}

__all__ = ["{cls}"]
'''

PROFILE = '''"""The ``{name}`` profile: the answer, then a last line "Final: X"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.profiles.base import DataProfile, Message, check_stop_sequences
from trainer.profiles.fields import collapse_assistant_blank_lines, read_example, single_line

FINAL_PREFIX = "Final: "


class {cls}(DataProfile):
    """Reasoning lines, then a last line 'Final: X'."""

    name = "{name}"
    description = "Reasoning lines, then 'Final: X'"
    suits = "rows with reasoning (GSM8K worked lines or a reasoning field) and a short answer"

    def rate_example(self, example: Mapping[str, Any]) -> float:
        """For ``trainer suggest-profile``: 1.0 when the row has reasoning lines."""
        return 1.0 if read_example(example).reasoning else 0.0

    def prepare_messages(self, example: Mapping[str, Any]) -> list[Message]:
        """A user turn and an assistant turn: reasoning lines, then 'Final: X'."""
        row = read_example(example)  # raises InvalidExampleError naming the accepted fields
        if row.messages is not None:
            messages = collapse_assistant_blank_lines(row.messages)
        else:
            lines = [*row.reasoning, FINAL_PREFIX + single_line(row.answer)]
            messages = [
                {{"role": "user", "content": row.prompt}},
                {{"role": "assistant", "content": "\\n".join(lines)}},
            ]
        check_stop_sequences(messages, self.get_stop_sequences())
        return messages

    def get_stop_sequences(self) -> list[str]:
        """A blank line ends the answer (targets never contain one)."""
        return ["\\n\\n"]

    def format_system_prompt(self, base_prompt: str) -> str:
        """The base prompt, then how to answer."""
        return f"{{base_prompt}} End with a last line of the form '{{FINAL_PREFIX}}X'.".strip()

    def parse_answer(self, text: str) -> str | None:
        """X from the last 'Final: X' line, or None when there is none."""
        for line in reversed(text.strip().splitlines()):
            if line.startswith(FINAL_PREFIX):
                return line[len(FINAL_PREFIX):].strip() or None
        return None
'''

PLUGIN = '''"""Registers the ``{name}`` profile with trainer."""

from trainer import hookimpl

from trainer_profile_{name}.profile import {cls}


@hookimpl
def register_profiles(register):
    """Register {cls}."""
    register({cls})
'''

TESTS = '''"""The {name} profile: trainer's conformance suite, then the format itself."""

from trainer.profiles import get_profile
from trainer.testing import ProfileConformance


class Test{cls}Conformance(ProfileConformance):
    profile_name = "{name}"
    distribution = "trainer-profile-{dash}"
    sample_rows = [{{"question": "What is 6 times 7?", "reasoning": "6 * 7 = 42", "answer": "42"}}]
    # Checked on every common row layout too; a profile that reads only some, or only fields
    # of its own, names those it reads: builtin_layouts = ("question_answer", "gsm8k"), or ().


def test_the_answer_comes_last():
    messages = get_profile("{name}").prepare_messages({{"question": "2 + 2?", "answer": "4"}})
    assert messages[-1] == {{"role": "assistant", "content": "Final: 4"}}
'''

README = """# trainer-profile-{dash}

A data profile for [trainer](https://pypi.org/project/trainer-core/): `{name}`. Each assistant answer
is the row's reasoning lines, then a last line `Final: X`.

```bash
pip install -e .
trainer profiles                              # lists {name}
trainer preview --profile {name} --dataset rows.jsonl -n 2
pytest tests                                  # trainer's conformance suite and this profile's tests
```

Accepted fields: whatever `trainer.profiles.fields.read_example` reads (prompt / question /
instruction + input; response / answer / output / completion; reasoning / steps / thinking; GSM8K;
messages). The stop sequence is a blank line, and targets never contain one.
"""


def new_profile(name: str, directory: str | Path = ".", core_version: str = "0.1") -> Path:
    """Write ``trainer-profile-NAME`` under ``directory``; return its path.

    :raises TrainerError: the name is not a valid profile name, or the target exists.
    """
    if not NAME.match(name):
        raise TrainerError(
            f"profile name {name!r} is not valid: use lowercase letters, digits and '_', starting with a "
            "letter (e.g. acme or math_steps)"
        )
    dash = name.replace("_", "-")
    root = Path(directory) / f"trainer-profile-{dash}"
    if root.exists():
        raise TrainerError(f"'{root}' already exists. Choose another name or --dir")
    major, minor = (int(part) for part in core_version.split(".")[:2])
    values = {
        "name": name,
        "dash": dash,
        "cls": "".join(part.capitalize() for part in name.split("_")) + "Profile",
        "core_minor": f"{major}.{minor}",
        "core_next": f"{major}.{minor + 1}",
    }
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"src/trainer_profile_{name}/__init__.py": INIT,
        f"src/trainer_profile_{name}/profile.py": PROFILE,
        f"src/trainer_profile_{name}/plugin.py": PLUGIN,
        # The test module is named after the profile, not test_profile.py. tests/ is not a
        # package (no __init__.py), so pytest's default import mode ("prepend") imports each test
        # file as a top-level module named by its basename, and two generated packages tested in
        # one run (``pytest a/tests b/tests``) would fail with "import file mismatch". For a test
        # tree not arranged as packages pytest's docs say each test file needs a unique name
        # (https://docs.pytest.org/en/stable/explanation/pythonpath.html#import-modes). A
        # tests/__init__.py would not do: both files would then be the module tests.test_profile.
        f"tests/test_{name}_profile.py": TESTS,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
    return root
