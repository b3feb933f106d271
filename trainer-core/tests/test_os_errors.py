"""Errors the machine causes are named in one line with exit code 2; bugs still say "unexpected".

Permissions are not tested for real: these tests may run as root, whom chmod does not stop. The
errors are raised as the operating system raises them instead, from inside a real command.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from trainer.errors import TrainerError
from trainer.os_errors import activity, describe, filesystem_of, mount_point, os_failure

# errno -> words the fix must hold
FIXES = {
    errno.ENOSPC: "df -h",
    errno.EDQUOT: "quota -s",
    errno.EACCES: "ls -ld",
    errno.EPERM: "ls -ld",
    errno.EROFS: "read-only",
    errno.ENOENT: "moved or deleted",
    errno.EIO: "dmesg",
}


def os_error(code: int, path: str = "/data/run/file.bin") -> OSError:
    return OSError(code, os.strerror(code), path)


@pytest.mark.parametrize("code", list(FIXES), ids=[errno.errorcode[code] for code in FIXES])
def test_each_kind_is_named_with_its_path_and_fix(code):
    line = describe(os_error(code))
    assert line is not None and "\n" not in line
    assert "/data/run/file.bin" in line
    assert FIXES[code] in line
    if code in (errno.ENOSPC, errno.EDQUOT):
        assert line.startswith(("no space left on /", "disk quota exceeded on /"))
        assert "while writing /data/run/file.bin" in line
    else:
        assert f": {os.strerror(code)} (/data/run/file.bin); " in line


def raised_from(error: BaseException) -> RuntimeError:
    try:
        raise error
    except BaseException as inner:
        try:
            raise RuntimeError("could not save") from inner
        except RuntimeError as outer:
            return outer


def raised_while_handling(error: BaseException) -> RuntimeError:
    try:
        raise error
    except BaseException:
        try:
            raise RuntimeError("could not save")  # noqa: B904 - as libraries do
        except RuntimeError as outer:
            return outer


def test_wrapped_errors_are_found_through_cause_and_context():
    for wrapped in (raised_from(os_error(errno.EACCES)), raised_while_handling(os_error(errno.EACCES))):
        failure = os_failure(wrapped)
        assert failure is not None and failure.code == errno.EACCES and failure.path == "/data/run/file.bin"
    deep = raised_from(raised_from(os_error(errno.ENOSPC)))
    assert os_failure(deep).out_of_space
    assert os_failure(FileNotFoundError(errno.ENOENT, "gone", Path("/data/x.jsonl"))).path == "/data/x.jsonl"
    assert os_failure(OSError(errno.EIO, "Input/output error", 7)).path is None  # a file descriptor


def test_safetensors_and_torch_shapes_are_recognised():
    rust = RuntimeError(
        "Error while serializing: "
        'IoError(Os { code: 122, kind: QuotaExceeded, message: "Disk quota exceeded" })'
    )
    failure = os_failure(rust)
    assert failure is not None and failure.code == errno.EDQUOT and failure.reason == "Disk quota exceeded"
    printed = RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    failure = os_failure(printed)
    assert failure is not None and failure.code == errno.ENOSPC
    assert failure.reason == "No space left on device"
    torch = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 9713344 vs 9713232")
    failure = os_failure(torch)
    assert failure is not None and failure.code is None and "unexpected pos" in failure.reason
    written = RuntimeError(
        "[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file"
    )
    assert os_failure(written) is not None
    assert "the disk is full or over its quota" in describe(torch)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        KeyError("global_step"),
        OSError("Can't load tokenizer for 'x'"),  # transformers' own OSError: no errno
        OSError(errno.EPIPE, "Broken pipe"),
        RuntimeError("CUDA out of memory"),
    ],
    ids=["ValueError", "KeyError", "OSError without errno", "EPIPE", "another RuntimeError"],
)
def test_other_errors_are_not_the_machines(error):
    assert os_failure(error) is None and describe(error) is None


class Checkpointer:
    """Stands in for transformers' Trainer: a ``_save_checkpoint`` method and a ``state``."""

    class state:  # noqa: N801
        global_step = 7

    def _save_checkpoint(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/out/checkpoints/.staging/x/optimizer.pt")


def test_what_was_being_done_is_read_from_the_traceback(tmp_path):
    from trainer.core.saving import save_final_model

    with pytest.raises(OSError) as caught:
        Checkpointer()._save_checkpoint()
    assert activity(caught.value) == "writing checkpoint 7"
    assert "while writing checkpoint 7; " in describe(caught.value)

    class FullDiskModel:
        def to(self, dtype):
            return self

        def save_pretrained(self, directory, state_dict=None):
            raise OSError(errno.ENOSPC, "No space left on device", f"{directory}/model.safetensors")

    class Tokenizer:
        eos_token_id = pad_token_id = 0

        def get_vocab(self):
            return {}

    with pytest.raises(OSError) as caught:
        save_final_model(
            FullDiskModel(),
            Tokenizer(),
            tmp_path,
            stop_sequences=[],
            max_new_tokens=8,
            temperature=0.0,
            merge_lora=False,
            run_info={},
        )
    assert activity(caught.value) == "writing the final model"
    assert list(tmp_path.iterdir()) == []  # its temporary folder is gone
    assert activity(ValueError("no traceback")) is None


def test_the_filesystem_is_its_mount_point(tmp_path):
    mount = mount_point(tmp_path)
    assert os.path.ismount(mount) and tmp_path.resolve().is_relative_to(mount)
    assert mount_point(tmp_path / "not" / "made" / "yet") == mount
    assert filesystem_of(tmp_path).startswith(str(mount))
    assert mount_point("/") == Path("/")


# -- the command line ----------------------------------------------------------------------------------


def run_main(monkeypatch, capsys, error: BaseException, *args: str) -> tuple[int, str]:
    """``trainer [args] config show`` with the config loader raising ``error``."""
    from trainer import cli
    from trainer.cli import config_cmd

    def load_config(options):
        raise error

    monkeypatch.delenv("TRAINER_DEBUG", raising=False)
    monkeypatch.setattr(config_cmd, "load_config", load_config)
    with pytest.raises(SystemExit) as exited:
        cli.main([*args, "config", "show"])
    return int(exited.value.code), capsys.readouterr().err


@pytest.mark.parametrize("code", list(FIXES), ids=[errno.errorcode[code] for code in FIXES])
def test_cli_names_the_machines_errors_in_one_line_with_exit_2(monkeypatch, capsys, code):
    status, stderr = run_main(monkeypatch, capsys, os_error(code))
    assert status == 2
    assert stderr.count("\n") == 1 and stderr.startswith("Error: ")
    assert "/data/run/file.bin" in stderr and FIXES[code] in stderr
    assert "unexpected" not in stderr and "Traceback" not in stderr


def test_cli_finds_the_os_error_a_runtime_error_wraps(monkeypatch, capsys):
    path = "/no-such-folder-here/out"  # its filesystem is the root's
    status, stderr = run_main(monkeypatch, capsys, raised_from(os_error(errno.EROFS, path)))
    assert status == 2
    assert stderr == (
        f"Error: read-only filesystem: Read-only file system ({path}); / is mounted read-only: "
        "write to a writable filesystem (e.g. --output-dir) or remount it\n"
    )


@pytest.mark.parametrize(
    "error", [KeyError("step"), OSError("Can't load tokenizer")], ids=["bug", "no errno"]
)
def test_cli_still_calls_a_bug_unexpected(monkeypatch, capsys, error):
    status, stderr = run_main(monkeypatch, capsys, error)
    assert status == 1
    assert stderr.startswith(f"Error: unexpected {type(error).__name__}: ")


def test_cli_debug_shows_the_traceback(monkeypatch):
    from trainer import cli
    from trainer.cli import config_cmd

    def load_config(options):
        raise os_error(errno.EACCES)

    monkeypatch.setattr(config_cmd, "load_config", load_config)
    with pytest.raises(PermissionError):  # main re-raises it: Python prints the traceback
        cli.main(["--debug", "config", "show"])


def test_a_trainer_error_from_an_os_error_keeps_its_own_message(monkeypatch, capsys):
    try:
        raise os_error(errno.EACCES)
    except OSError as exc:
        try:
            raise TrainerError("saving checkpoint-2 failed: permission denied; fix the permissions") from exc
        except TrainerError as wrapped:
            status, stderr = run_main(monkeypatch, capsys, wrapped)
    assert status == 2
    assert stderr == "Error: saving checkpoint-2 failed: permission denied; fix the permissions\n"
