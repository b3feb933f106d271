"""Training throughput of trainer against a bare PyTorch loop and TRL, on the same data and model.

Three loops per case, each in a process of its own, one after the other:

- **bare**: a plain PyTorch loop (``benchmarks/train_speed_loops.py``): AdamW, the
  model's own loss over the whole logits, gradient clipping at 1.0, in the run's
  precision (bf16 is ``torch.autocast`` over float32 weights, as trainer does it);
- **trainer**: ``trainer run`` as a user types it, with the default config but for
  what the case fixes (batch, length, steps, packing, precision) and previews off;
- **trl**: TRL's ``SFTTrainer`` with its defaults (no packing, gradient
  checkpointing on) but for the batch, steps, learning rate and precision; printed
  as ``trl not installed`` where ``trl`` cannot be imported (``nox -s bench``
  installs it).

Cases (``--case``; all by default, those that do not fit in memory are skipped):

- ``demo``: the embedded demo model on the built-in sample through ``regime3``,
  batch 16, no packing (the default config), in the default precision (bf16 where
  the CPU or GPU computes it natively) and in float32;
- ``qwen3-wide``: a 2-layer Qwen3 of hidden size 256 on the real Qwen3 tokenizer
  (vocabulary 151,669), GSM8K through ``regime3`` packed into rows of 1,024 tokens,
  batch 4, float32: where the large vocabulary's logits dominate;
- ``qwen3-0.6b``: Qwen3-0.6B's shape with random weights stored in bf16, batch 1
  of 512 packed tokens, float32 on CPU (bf16 on CUDA). Minutes on a CPU.

The rows are tokenized and packed once by trainer's own pipeline
(``train_speed_data.py``) and handed to the bare and TRL loops as token ids, so all
three train on the same examples; the bare loop and TRL draw them at random, in the
order transformers' ``Trainer`` does (``randperm`` seeded 42), as their users would;
so does trainer (``data.group_by_length`` is off by default), so all three start from
the same batch. TRL gets the examples unpacked (its default), so in the packed cases
its steps hold fewer tokens; tokens per second still compare.

What is measured, alike for every loop:

- **tokens/s**: real (non-padding) tokens over the wall time from the end of the
  ``--warmup`` step(s) to the end of the last step. The bare and TRL loops record
  ``time.time()`` at the end of each optimizer step (after a CUDA synchronize);
  for trainer, this script watches the run's ``metrics.jsonl`` (one line per step
  for runs under 40 steps, written right after the step) and takes the time each
  line appears (polled every 10 ms) and its ``tokens_seen`` (non-padding tokens);
- **peak memory**: on CPU, the peak resident set size of the whole process
  (``os.wait4``'s rusage); on CUDA, ``torch.cuda.max_memory_allocated`` (trainer
  records it in ``status.json``);
- **first step**: seconds from launching the process to the end of step 1
  (imports, model loading, data preparation and the first step); trainer tokenizes
  from a ``datasets`` cache this script has already filled;
- **MFU**: model FLOPs per token (``trainer.models.flops``, at the mean example
  length) times tokens/s over the device's peak (a measured matrix product on CPU,
  the vendor's table on a GPU). The model's FLOPs count the output projection at
  every token; trainer's chunked loss projects only the labelled ones, so with a
  large vocabulary its MFU overstates the work done (over 100% is possible).

The machine's load average is printed: on a CPU shared with other work every loop
slows, unevenly; compare rows of one run, not runs.

Run from the repository root (``nox -s bench -- ARGS`` installs TRL first)::

    python benchmarks/train_speed.py                     # every case
    python benchmarks/train_speed.py --quick             # 3 steps a loop: 6 minutes on 2 CPU cores
    python benchmarks/train_speed.py --case demo --case qwen3-wide --steps 8 --json speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train_speed_report import machine_lines, print_report, write_json

HERE = Path(__file__).resolve().parent  # run as a script, this folder is on sys.path: the helpers import
SHARED = HERE.parents[1] / "shared"

LOOPS = ("bare", "trainer", "trl")
SEED = 42  # trainer's default hyperparams.seed; the bare loop and TRL use it too


@dataclass
class Case:
    name: str
    batch_size: int
    max_length: int
    packing: bool
    precisions: tuple[str, ...]
    steps: int
    """Default steps a loop runs, warm-up included."""
    shape: dict[str, int] | None = None
    """A Qwen3 shape on the Qwen3 tokenizer; None for the embedded demo model."""
    saved_dtype: str = "float32"
    min_memory_gb: float = 0.0
    """What the case needs free (RAM on CPU, GPU memory on CUDA) to be run by default."""


def cases(cuda: bool) -> dict[str, Case]:
    from train_speed_data import QWEN3_06B, QWEN3_WIDE

    return {
        # Under 40 steps, trainer logs every step. A demo step takes under a second on 2 cores.
        "demo": Case("demo", 16, 1024, False, ("auto", "float32"), steps=30),
        "qwen3-wide": Case("qwen3-wide", 4, 1024, True, ("float32",), steps=8, shape=QWEN3_WIDE),
        "qwen3-0.6b": Case(
            "qwen3-0.6b",
            1,
            512,
            True,
            ("bfloat16" if cuda else "float32",),
            steps=2,
            shape=QWEN3_06B,
            saved_dtype="bfloat16",
            min_memory_gb=16.0,
        ),
    }


@dataclass
class Result:
    """One loop's run of one case in one precision."""

    case: str
    precision: str
    loop: str
    tokens_per_second: float | None = None
    ratio: float | None = None
    """tokens/s over the bare loop's, same case and precision."""
    peak_gb: float | None = None
    first_step_seconds: float | None = None
    mfu: float | None = None
    first_loss: float | None = None
    timed_steps: int = 0
    timed_tokens: int = 0
    process_seconds: float | None = None
    """The whole process, from launch to exit (saving the model included, for trainer)."""
    error: str | None = None
    notes: str = ""
    rounds: int = 1
    """How many rounds ran; the figures are the median round's."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", help="demo, qwen3-wide, qwen3-0.6b (repeatable, or a,b)")
    parser.add_argument("--skip", action="append", default=[], help="cases to leave out (repeatable)")
    parser.add_argument("--loops", default=",".join(LOOPS), help="which loops, comma-separated")
    parser.add_argument("--steps", type=int, help="optimizer steps per loop, warm-up included")
    parser.add_argument("--warmup", type=int, default=1, help="first steps left out of tokens/s (>= 1)")
    parser.add_argument("--quick", action="store_true", help="3 steps a loop (2 for qwen3-0.6b): a smoke run")
    parser.add_argument("--rounds", type=int, default=1, help="run the loops N times in turn; medians")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--gsm8k", default=str(SHARED / "data" / "gsm8k" / "test.jsonl"))
    parser.add_argument("--tokenizer", default=str(SHARED / "models" / "qwen3-tokenizer"))
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (models, logs)")
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="train-speed-"))
    # One datasets cache for this script and the trainer runs: trainer reads what this script tokenized.
    os.environ["HF_DATASETS_CACHE"] = str(work / "hf-datasets")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    cuda = options.device.startswith("cuda") or (options.device == "auto" and torch.cuda.is_available())
    device = (options.device if options.device != "auto" else "cuda") if cuda else "cpu"
    known = cases(cuda)
    wanted = [name for names in (options.case or list(known)) for name in names.split(",")]
    unknown = [name for name in wanted + options.skip if name not in known]
    if unknown:
        parser.error(f"unknown case {', '.join(unknown)}; choose from {', '.join(known)}")
    asked = {loop for loop in options.loops.split(",") if loop}
    if asked - set(LOOPS) or options.warmup < 1 or options.rounds < 1:
        parser.error(f"--loops: choose from {', '.join(LOOPS)}; --warmup, --rounds: at least 1")
    loops = [loop for loop in LOOPS if loop in asked]  # the bare loop first: the others compare to it
    header = machine_lines(device)
    print("\n".join(header), flush=True)
    results: list[Result] = []
    try:
        for name in wanted:
            case = known[name]
            if name in options.skip:
                continue
            free = _free_memory_gb(device)
            if options.case is None and free < case.min_memory_gb:
                print(f"\n{name}: skipped, {free:.1f} GB free, needs {case.min_memory_gb:.0f}", flush=True)
                continue
            steps = options.steps or (min(case.steps, 3) if options.quick else case.steps)
            results += run_case(case, steps, options, device, loops, work / name)
    finally:
        if options.keep:
            print(f"\nwork directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_report(results, header, options.warmup)
    if options.json:
        write_json(options.json, header, results)


def run_case(
    case: Case, steps: int, options: argparse.Namespace, device: str, loops: list[str], work: Path
) -> list[Result]:
    """Build the model, tokenize the data, run every loop in every precision of ``case``."""
    import torch
    from trainer.config import HyperparamsConfig
    from trainer.models.demo_model import DEMO_HYPERPARAMS
    from trainer.models.flops import peak_flops, training_flops_per_token
    from trainer.models.loading import resolve_precision

    from train_speed_data import prepare, save_demo, save_qwen3

    if steps <= options.warmup:
        raise SystemExit(f"--steps {steps} leaves nothing to time after --warmup {options.warmup}")
    work.mkdir(parents=True)
    model_dir = work / "model"
    demo = case.shape is None
    print(f"\n{case.name}: building the model and tokenizing ...", flush=True)
    if demo:
        save_demo(model_dir, SEED)
    else:
        save_qwen3(model_dir, Path(options.tokenizer), case.shape, case.saved_dtype, SEED)
    data = prepare(
        work,
        model_dir=model_dir,
        demo=demo,
        profile="regime3",
        gsm8k=Path(options.gsm8k),
        max_length=case.max_length,
        packing=case.packing,
        rows_needed=steps * case.batch_size,
    )
    learning_rate = DEMO_HYPERPARAMS["learning_rate"] if demo else HyperparamsConfig().learning_rate
    flops = training_flops_per_token(data.flops_model, data.mean_example_length)
    what = "packed rows" if case.packing else "examples"
    print(
        f"{case.name}: {data.rows:,} {what} ({data.tokens_total:,} tokens, examples of "
        f"{data.mean_example_length:.0f} on average); batch {case.batch_size}, {steps} steps, "
        f"lr {learning_rate:g}; {flops / 1e9:.3f} GFLOP per token",
        flush=True,
    )
    plans = []
    for wanted in case.precisions:
        precision = resolve_precision(wanted, device)
        label = f"{_short(precision)} (default)" if wanted == "auto" else _short(precision)
        spec = {
            "model_dir": str(model_dir),
            "tokens": str(data.tokens),
            "examples": str(data.examples),
            "batch_size": case.batch_size,
            "steps": steps,
            "learning_rate": learning_rate,
            "precision": precision,
            "device": device,
            "seed": SEED,
            "pad_token_id": data.pad_token_id,
            "max_length": case.max_length,
        }
        plans.append((wanted, label, spec, peak_flops(device, getattr(torch, precision))))
    # Round after round, every loop in every precision once: a machine that speeds up or slows
    # down over the minutes a case takes moves every loop alike, and the median drops outliers.
    runs: dict[tuple[str, str], list[Result]] = {}
    for round_number in range(1, options.rounds + 1):
        for wanted, label, spec, peak in plans:
            for loop in loops:
                run_dir = work / f"{loop}-{spec['precision']}-{round_number}"
                run_dir.mkdir()
                if loop == "trainer":
                    model = None if demo else model_dir
                    command = trainer_command(case, data.dataset, model, steps, wanted, device)
                    result = run_trainer(command, run_dir, options.warmup)
                elif loop == "trl" and not _importable("trl"):
                    result = Result(case.name, label, loop, error="trl not installed")
                else:
                    loop_spec = {**spec, "loop": loop, "work": str(run_dir)}
                    result = run_loop(loop, loop_spec, run_dir, options.warmup)
                result.case, result.precision, result.loop = case.name, label, loop
                if result.tokens_per_second and peak:
                    result.mfu = result.tokens_per_second * flops / peak
                where = f"round {round_number}/{options.rounds}  " if options.rounds > 1 else ""
                print(f"  {where}{_progress(result)}", flush=True)
                runs.setdefault((label, loop), []).append(result)
    results = [_median(rounds) for rounds in runs.values()]
    for label in {result.precision for result in results}:
        bare = next((r for r in results if r.precision == label and r.loop == "bare"), None)
        for result in results:
            if bare and bare.tokens_per_second and result.precision == label and result.tokens_per_second:
                result.ratio = result.tokens_per_second / bare.tokens_per_second
    return results


def _median(rounds: list[Result]) -> Result:
    """The round with the median tokens/s (the lower of the two middle ones); a failed round wins."""
    failed = [result for result in rounds if result.tokens_per_second is None]
    if failed:
        return failed[0]
    ordered = sorted(rounds, key=lambda result: result.tokens_per_second or 0.0)
    chosen = ordered[(len(ordered) - 1) // 2]
    chosen.rounds = len(rounds)
    return chosen


def trainer_command(
    case: Case, dataset: Path | None, model_dir: Path | None, steps: int, precision: str, device: str
) -> list[str]:
    """``trainer run`` for the case: the default config but for what the case fixes."""
    script = Path(sys.executable).parent / "trainer"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "trainer"]
    command += ["run", "--profile", "regime3", "--batch-size", str(case.batch_size)]
    command += ["--max-length", str(case.max_length), "--max-steps", str(steps)]
    if model_dir is not None:
        command += ["--model", str(model_dir)]
    if dataset is not None:
        command += ["--dataset", str(dataset)]
    settings = ["inference.eval_steps=0"]
    if case.packing:
        settings.append("data.packing=true")
    if precision != "auto":
        settings.append(f"model.precision={precision}")
    if device == "cpu" and _cuda_available():
        settings.append("system.device=cpu")
    for setting in settings:
        command += ["--set", setting]
    return command


def run_trainer(command: list[str], run_dir: Path, warmup: int) -> Result:
    """Run ``trainer run``, timing each line of its ``metrics.jsonl`` as it appears."""
    output = run_dir / "out"
    metrics = output / "metrics.jsonl"
    launch, status, usage, lines = _run(command + ["--output-dir", str(output)], run_dir / "log.txt", metrics)
    result = Result("", "", "trainer", process_seconds=time.time() - launch)
    if status != 0:
        result.error = f"exit {status}: {_tail(run_dir / 'log.txt')}"
        return result
    steps = {record["step"]: (seen, record.get("tokens_seen") or 0) for seen, record in lines}
    _timing(result, launch, steps, warmup)
    result.first_loss = next((record.get("loss") for _, record in lines if record.get("step") == 1), None)
    state = json.loads((output / "status.json").read_text(encoding="utf-8"))
    info = json.loads((output / "trainer_run.json").read_text(encoding="utf-8"))
    on_cuda = str(info["metrics"].get("device", "")).startswith("cuda")
    peak = state.get("peak_memory_mb", 0) * 2**20 if on_cuda else usage.ru_maxrss * 1024
    result.peak_gb = peak / 2**30
    result.notes = f"loss {info['metrics'].get('loss_impl')}, {info['metrics'].get('precision')}"
    return result


def run_loop(loop: str, spec: dict[str, Any], run_dir: Path, warmup: int) -> Result:
    """Run the bare or TRL loop in a process of its own."""
    spec["result"] = str(run_dir / "result.json")
    (run_dir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    command = [sys.executable, str(HERE / "train_speed_loops.py"), str(run_dir / "spec.json")]
    launch, status, usage, _ = _run(command, run_dir / "log.txt", None)
    result = Result("", "", loop, process_seconds=time.time() - launch)
    if status != 0:
        result.error = f"exit {status}: {_tail(run_dir / 'log.txt')}"
        return result
    done = json.loads(Path(spec["result"]).read_text(encoding="utf-8"))
    cumulative, total = {}, 0
    for step, (seen, tokens) in enumerate(zip(done["times"], done["tokens"], strict=True), start=1):
        total += tokens
        cumulative[step] = (seen, total)
    _timing(result, launch, cumulative, warmup)
    result.first_loss = done["first_loss"]
    peak = done.get("peak_bytes") or usage.ru_maxrss * 1024
    result.peak_gb = peak / 2**30
    result.notes = done.get("notes", "")
    return result


def _timing(result: Result, launch: float, steps: dict[int, tuple[float, int]], warmup: int) -> None:
    """tokens/s from the end of the warm-up step to the last, and the first step's time.

    :param steps: for every step seen, the wall time it ended and the tokens seen so far.
    """
    if 1 in steps:
        result.first_step_seconds = steps[1][0] - launch
    start = min((step for step in steps if step >= warmup), default=None)
    last = max(steps, default=None)
    if start is None or last is None or last <= start:
        result.error = f"too few steps logged to time ({sorted(steps)})"
        return
    result.timed_steps = last - start
    result.timed_tokens = steps[last][1] - steps[start][1]
    result.tokens_per_second = result.timed_tokens / (steps[last][0] - steps[start][0])


def _run(command: list[str], log: Path, watch: Path | None) -> tuple[float, int, Any, list[Any]]:
    """Run ``command`` to its end; return the launch time, exit status, its own rusage, and the
    lines that appeared in ``watch`` (JSON), each with the time it was first seen."""
    lines: list[tuple[float, dict[str, Any]]] = []
    offset, pending = 0, ""
    with log.open("w", encoding="utf-8") as handle:
        launch = time.time()
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=HERE.parent)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if watch is not None and watch.exists():
                now = time.time()
                with watch.open(encoding="utf-8") as metrics:
                    metrics.seek(offset)
                    pending += metrics.read()
                    offset = metrics.tell()
                *complete, pending = pending.split("\n")
                lines += [(now, json.loads(line)) for line in complete if line.strip()]
            if pid:
                break
            time.sleep(0.01)
    process.returncode = os.waitstatus_to_exitcode(status)
    return launch, process.returncode, usage, [(seen, r) for seen, r in lines if "loss" in r]


def _free_memory_gb(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.mem_get_info()[0] / 2**30
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def _tail(path: Path, lines: int = 6) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return " | ".join(text[-lines:])


def _progress(result: Result) -> str:
    if result.error:
        return f"{result.loop:8} {result.precision:15} {result.error}"
    loss = f"{result.first_loss:.4f}" if result.first_loss is not None else "-"
    return (
        f"{result.loop:8} {result.precision:15} {result.tokens_per_second:9,.0f} tokens/s  "
        f"peak {result.peak_gb:6.2f} GiB  first step {result.first_step_seconds or 0:6.1f} s  loss@1 {loss}"
    )


def _short(precision: str) -> str:
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(precision, precision)


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _importable(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


if __name__ == "__main__":
    main()
