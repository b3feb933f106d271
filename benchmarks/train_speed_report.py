"""The header, the markdown table and the targets block of ``train_speed.py``."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

TARGETS = (
    # (case, what, ratio of trainer to, measure, bound, at most)
    ("qwen3-wide", "peak memory, trainer / bare", "bare", "peak_gb", 0.4, True),
    ("qwen3-wide", "tokens/s, trainer / bare", "bare", "tokens_per_second", 1.4, False),
    ("qwen3-0.6b", "peak memory, trainer / bare", "bare", "peak_gb", 1.1, True),
    ("demo", "tokens/s, trainer / bare", "bare", "tokens_per_second", 0.95, False),
)
TRL_SPEED = {"demo": 2.0}
"""How many times TRL's tokens/s trainer's default config should reach, by case; 1 (at least as
fast) elsewhere, and in a precision other than the default."""
DEFAULT_OVER_FP32 = 1.3
"""trainer's default precision (bf16 where native) over fp32, where the default is not fp32."""


def machine_lines(device: str) -> list[str]:
    """What the numbers were measured on: CPU, cores, device, versions, the peak FLOP/s used for MFU."""
    import torch
    from trainer.models.flops import peak_flops

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    versions = ", ".join(
        f"{package} {_version(package)}"
        for package in ("torch", "transformers", "trl", "accelerate", "datasets", "trainer-core")
    )
    peaks = []
    for dtype in (torch.float32, torch.bfloat16):
        peak = peak_flops(device, dtype)
        peaks.append(f"{str(dtype).removeprefix('torch.')} {peak / 1e12:.2f}" if peak else f"{dtype} unknown")
    how = "vendor table" if device.startswith("cuda") else "measured 2048x2048 matmul"
    # Other work on the machine slows every loop (on 2 cores, several times over): say how busy it was.
    load = f"; load average {os.getloadavg()[0]:.2f} at the start" if hasattr(os, "getloadavg") else ""
    return [
        f"machine: {cpu}; {os.cpu_count()} cores; device {device} ({name}){load}",
        f"python {platform.python_version()}; {versions}",
        f"peak TFLOP/s for MFU ({how}): {', '.join(peaks)}",
    ]


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def table(results: list[Any]) -> list[str]:
    """The results as a markdown table."""
    names = ["case", "precision", "loop", "tokens/s", "vs bare", "peak memory (GiB)", "first step (s)"]
    names += ["MFU", "loss@1", "notes"]
    lines = ["| " + " | ".join(names) + " |", "| --- | --- | --- |" + " ---: |" * 6 + " --- |"]
    for r in results:
        if r.error:
            lines.append(f"| {r.case} | {r.precision} | {r.loop} | {r.error} | | | | | | |")
            continue
        cells = [
            r.case,
            r.precision,
            r.loop,
            f"{r.tokens_per_second:,.0f}",
            _ratio(r.ratio),
            f"{r.peak_gb:.2f}",
            f"{r.first_step_seconds:.1f}" if r.first_step_seconds is not None else "",
            f"{r.mfu:.1%}" if r.mfu is not None else "",
            f"{r.first_loss:.4f}" if r.first_loss is not None else "",
            r.notes,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(results: list[Any]) -> list[str]:
    """One line per target that the results can judge: the ratio, the bound, holds or not."""
    by_key = {(r.case, r.precision, r.loop): r for r in results if not r.error}
    lines = []
    for case, what, other, measure, bound, at_most in TARGETS:
        for (name, precision, loop), mine in by_key.items():
            theirs = by_key.get((name, precision, other))
            if name == case and loop == "trainer" and theirs:
                lines.append(_judge(f"{case} {precision}: {what}", mine, theirs, measure, bound, at_most))
    for (name, precision, loop), mine in by_key.items():
        theirs = by_key.get((name, precision, "trl"))
        if loop == "trainer" and theirs:
            what = f"{name} {precision}: tokens/s, trainer / TRL"
            bound = TRL_SPEED.get(name, 1.0) if precision.endswith("(default)") else 1.0
            lines.append(_judge(what, mine, theirs, "tokens_per_second", bound, False))
            memory = mine.peak_gb / theirs.peak_gb
            lines.append(f"  {name} {precision}: peak memory, trainer / TRL: {memory:.2f}x (no target)")
    defaults = [r for r in by_key.values() if r.loop == "trainer" and r.precision.endswith("(default)")]
    for default in defaults:
        fp32 = by_key.get((default.case, "fp32", "trainer"))
        if fp32 and default.precision != "fp32 (default)":
            what = f"{default.case}: tokens/s, trainer default ({default.precision.split()[0]}) / fp32"
            lines.append(_judge(what, default, fp32, "tokens_per_second", DEFAULT_OVER_FP32, False))
    return lines


def _judge(what: str, mine: Any, theirs: Any, measure: str, bound: float, at_most: bool) -> str:
    ratio = getattr(mine, measure) / getattr(theirs, measure)
    holds = ratio <= bound if at_most else ratio >= bound
    sign = "<=" if at_most else ">="
    return f"  {what}: {ratio:.2f}x (target {sign} {bound}x): {'holds' if holds else 'MISSED'}"


def print_report(results: list[Any], header: list[str], warmup: int) -> None:
    print()
    print("\n".join(header))
    print(f"tokens/s: real tokens after {warmup} warm-up step(s); vs bare: same case and precision")
    rounds = max((result.rounds for result in results), default=1)
    if rounds > 1:
        print(f"every loop ran {rounds} rounds in turn; each row is its median round")
    if hasattr(os, "getloadavg"):
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print()
    print("\n".join(table(results)))
    judged = targets(results)
    if judged:
        print("\ntargets:")
        print("\n".join(judged))


def write_json(path: str, header: list[str], results: list[Any]) -> None:
    document = {
        "machine": header,
        "results": [asdict(result) for result in results],
        "targets": [line.strip() for line in targets(results)],
    }
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else ""
