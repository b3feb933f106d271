"""The run configuration: eight sections of typed fields, each with one documented default.

A config file mirrors this layout::

    hyperparams:
      batch_size: 4
      learning_rate: 1e-4
    model:
      model_path: ./models/qwen3-0.6b
      lora: {enabled: true, r: 8}

Every field has its default and its meaning right under it. Building a config
from data (:meth:`TrainerConfig.from_dict`, :func:`create_default_config`, the
loader) checks it in one pass and raises a single :class:`ConfigError` listing
every problem. Code that edits a config after that can call
:meth:`TrainerConfig.validate` to check it again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from trainer.config.checks import above, at_least, between, deepspeed_problem, found, not_blank, one_of
from trainer.config.mixture import MIXTURE_STRATEGIES, SourceConfig, mixture_problems
from trainer.config.validation import (
    ConfigError,
    build,
    did_you_mean,
    field_values,
    is_section,
    leaf_types,
    show,
)

LR_SCHEDULER_TYPES = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "warmup_stable_decay",
)
PRECISIONS = ("auto", "bfloat16", "float16", "float32")
PRECISION_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
SAVE_DTYPES = ("auto", "float32", "bfloat16", "float16")
DISK_SPACE_CHECKS = ("refuse", "warn", "off")
LOSS_IMPLEMENTATIONS = ("auto", "chunked", "liger", "standard")
ATTN_IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2", "flex_attention")
OVERLENGTH_POLICIES = ("drop", "truncate", "error")
TRAINED_TURNS = ("all", "last")
REPORT_TO = (
    "tensorboard",
    "wandb",
    "mlflow",
    "comet_ml",
    "clearml",
    "dvclive",
    "neptune",
    "trackio",
    "swanlab",
)
"""Metric loggers of transformers that ``output.report_to`` may name."""
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
FSDP_OPTIONS = (
    "full_shard",
    "shard_grad_op",
    "no_shard",
    "hybrid_shard",
    "hybrid_shard_zero2",
    "offload",
    "auto_wrap",
)
"""Words of transformers' ``fsdp`` option string that ``system.fsdp`` may combine."""
DDP_BACKENDS = ("nccl", "gloo", "mpi", "ccl", "xccl", "hccl", "cncl", "mccl")
"""torch.distributed backends that ``system.ddp_backend`` may name."""

_DEVICE = re.compile(r"auto|cpu|cuda|cuda:\d+|mps")


@dataclass(kw_only=True)
class HyperparamsConfig:
    """How the optimiser runs: batch, learning rate, schedule and length of training."""

    batch_size: int = 8
    """Examples per device per forward pass."""
    learning_rate: float = 2e-4
    """Peak learning rate, reached after warmup."""
    num_epochs: float = 3.0
    """Passes over the training data (fractions allowed); ignored when ``max_steps`` is set."""
    max_steps: int | None = None
    """Stop after this many optimiser steps; None runs by ``num_epochs``."""
    gradient_accumulation_steps: int = 1
    """Forward passes per optimiser step; the effective batch is ``batch_size`` times this."""
    warmup_ratio: float = 0.0
    """Fraction of all steps spent warming the learning rate up from 0 (0 to 1)."""
    warmup_steps: int = 0
    """Warmup length in steps; use this or ``warmup_ratio``, not both."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    lr_scheduler_type: str = "cosine"
    """Learning-rate schedule after warmup; one of ``LR_SCHEDULER_TYPES`` (transformers' names)."""
    seed: int = 42
    """Seed for shuffling, initialisation and sampling, so runs repeat."""
    max_grad_norm: float = 1.0
    """Clip gradients to this norm; 0 turns clipping off."""
    gradient_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass instead of keeping them (the
    non-reentrant variant, safe with LoRA): much less activation memory for about a third more
    compute."""
    optim: str = "adamw_torch"
    """Optimizer, by transformers' name: adamw_torch, adamw_torch_fused (one fused kernel),
    adafactor (factored second moments: less optimizer memory), adamw_8bit or paged_adamw_8bit
    (8-bit states, needs bitsandbytes and a GPU), sgd, ..."""

    def _problems(self) -> list[str]:
        return found(
            at_least("batch_size", self.batch_size, 1),
            above("learning_rate", self.learning_rate, 0),
            above("num_epochs", self.num_epochs, 0),
            at_least("max_steps", self.max_steps, 1, none="null to run by num_epochs"),
            at_least("gradient_accumulation_steps", self.gradient_accumulation_steps, 1),
            between("warmup_ratio", self.warmup_ratio, 0, 1),
            at_least("warmup_steps", self.warmup_steps, 0),
            at_least("weight_decay", self.weight_decay, 0),
            one_of("lr_scheduler_type", self.lr_scheduler_type, LR_SCHEDULER_TYPES),
            at_least("seed", self.seed, 0),
            at_least("max_grad_norm", self.max_grad_norm, 0),
            not_blank("optim", self.optim, "e.g. adamw_torch"),
            "warmup_ratio and warmup_steps are both set; set only one of them"
            if self.warmup_ratio > 0 and self.warmup_steps > 0
            else None,
        )


@dataclass(kw_only=True)
class LoraConfig:
    """Low-rank adapters (LoRA, through peft) instead of training every weight."""

    enabled: bool = False
    """Train LoRA adapters; False trains the full model."""
    r: int = 16
    """Rank of each adapter matrix."""
    alpha: int = 32
    """Scaling numerator: adapter updates are scaled by ``alpha / r``."""
    dropout: float = 0.05
    """Dropout on the adapter input during training (0 to below 1)."""
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    """Module names to adapt; ``all-linear`` means every linear layer but the output head."""
    merge_on_export: bool = False
    """Merge the adapters into the base weights when exporting, instead of saving them apart."""

    def _problems(self) -> list[str]:
        return found(
            at_least("r", self.r, 1),
            at_least("alpha", self.alpha, 1),
            between("dropout", self.dropout, 0, 1, include_high=False),
            "target_modules: must name at least one module, e.g. [all-linear]"
            if not any(name.strip() for name in self.target_modules)
            else None,
        )


@dataclass(kw_only=True)
class ModelConfig:
    """Which model is trained and how it is loaded.

    ``precision`` also accepts ``bf16``/``fp16``/``fp32`` and a torch dtype such
    as ``torch.bfloat16``; they are stored under their long names.
    """

    model_path: str | None = None
    """Local directory or hub id of the model to train; None uses the embedded demo model."""
    base_model: str | None = None
    """Hub id the model derives from (for model cards and tokenizer fallbacks); informational."""
    model_architecture: str | None = None
    """Architecture name such as ``qwen3``; None reads it from the model's own config."""
    precision: str = "auto"
    """Compute dtype: auto, bfloat16, float16 or float32 (weights stay float32 under mixed precision);
    auto picks bfloat16 where the device computes it natively (bf16 GPUs; CPUs with avx512_bf16,
    AMX or Arm bf16), else float32."""
    max_context_length: int = 2048
    """Longest sequence the model is used with, in tokens."""
    vocab_size: int | None = None
    """Expected vocabulary size, checked against the tokenizer; None skips the check."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """LoRA adapter settings."""
    trust_remote_code: bool = False
    """Allow model code shipped with the checkpoint to run; only for models you trust."""
    attn_implementation: str | None = None
    """Attention kernel: eager, sdpa, flash_attention_2 or flex_attention; None lets
    transformers choose (sdpa for most models), and under bf16 on a CPU attends in float32 below
    512 tokens, where PyTorch's bf16 kernel is the slower one."""
    loss_impl: str = "auto"
    """Training loss: chunked computes the cross-entropy from the final hidden states a chunk of
    labelled positions at a time, never the whole logits tensor (less memory and time with a large
    vocabulary); liger uses Liger-Kernel's fused kernel (CUDA, ``trainer-core[liger]``); standard is
    the model's own; auto picks liger on a CUDA GPU where it is installed, else chunked, where the
    model allows it."""

    def __post_init__(self) -> None:
        self.precision = _normalize_precision(self.precision)

    def _problems(self) -> list[str]:
        aliases = ", ".join(PRECISION_ALIASES)
        return found(
            one_of("precision", self.precision, PRECISIONS, note=f"or {aliases}"),
            at_least("max_context_length", self.max_context_length, 1),
            at_least("vocab_size", self.vocab_size, 1, none="null to skip the check"),
            one_of("attn_implementation", self.attn_implementation, ATTN_IMPLEMENTATIONS, optional=True),
            one_of("loss_impl", self.loss_impl, LOSS_IMPLEMENTATIONS),
        )


@dataclass(kw_only=True)
class DataConfig:
    """The training data and how examples become token sequences."""

    dataset_path: str | None = None
    """JSONL, JSON, CSV or Parquet file, directory or hub id; None uses the built-in sample dataset."""
    validation_path: str | None = None
    """A separate validation set; None means no validation set unless ``validation_split`` is set."""
    validation_split: float = 0.0
    """Fraction of the training data held out for validation (0 to below 1); 0 holds out none."""
    max_length: int = 1024
    """Longest tokenised example, in tokens (at least 8)."""
    packing: bool = False
    """Pack several short examples into each sequence of ``max_length`` tokens."""
    group_by_length: bool = False
    """Without packing, batch examples of similar length together (sorted in groups of 50 steps'
    worth): less padding, but batches of alike examples, which can slow learning; false draws
    every batch at random."""
    overlength: str = "drop"
    """What to do with an example longer than ``max_length``: drop, truncate or error."""
    skip_invalid: bool = False
    """Skip rows the profile cannot read (counting them) instead of stopping at the first."""
    num_proc: int | None = None
    """Worker processes for tokenising; None uses one."""
    trained_turns: str = "all"
    """Which assistant turns the loss covers: all (tool-call turns included) or last (only the final one)."""
    allow_consecutive_assistant: bool = False
    """Accept two assistant turns in a row (each trained) instead of refusing the row."""
    mixture: list[SourceConfig] = field(default_factory=list)
    """Several datasets, each read by its own profile and drawn by weight or repeated: a list of
    sources (``path``, ``profile``, ``options``, ``weight`` or ``repeat``, ...; see Data mixtures).
    Empty: the run reads ``dataset_path`` through ``profile.name``."""
    mixture_strategy: str = "all_exhausted"
    """When sampling by weight stops: all_exhausted (every row of every source drawn at least once,
    smaller sources drawn again) or first_exhausted (stop when any source runs out)."""

    def _problems(self) -> list[str]:
        mixed = bool(self.mixture)
        return found(
            *(mixture_problems(self.mixture) if mixed else []),
            one_of("mixture_strategy", self.mixture_strategy, MIXTURE_STRATEGIES),
            *(
                f"{name}: set per source in data.mixture, not for the whole mixture"
                for name, value in (
                    ("dataset_path", self.dataset_path),
                    ("validation_path", self.validation_path),
                    ("validation_split", self.validation_split or None),
                )
                if mixed and value is not None
            ),
            between("validation_split", self.validation_split, 0, 1, include_high=False),
            at_least("max_length", self.max_length, 8),
            one_of("overlength", self.overlength, OVERLENGTH_POLICIES),
            one_of("trained_turns", self.trained_turns, TRAINED_TURNS),
            at_least("num_proc", self.num_proc, 1, none="null for one process"),
            "validation_path and validation_split are both set; set only one of them"
            if self.validation_path is not None and self.validation_split > 0
            else None,
        )


@dataclass(kw_only=True)
class ProfileConfig:
    """The data profile: how rows become chat messages (see ``trainer profiles``)."""

    name: str = "chat"
    """Name of an installed profile, or several joined with ``+`` to apply in turn (``a+b``)."""
    system_prompt: str = "You are a helpful assistant."
    """Base system prompt; the profile may adapt it. A row with its own system turn uses that instead."""
    stop_sequences: list[str] | None = None
    """Strings that end generation; None uses the profile's own."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the profile's constructor; a profile rejects options it does not take.

    One profile takes them flat (``{exclamations: 2}``) or keyed by its name
    (``{shout: {exclamations: 2}}``); a composition only keyed (``{emoji_think: {...}, regime3: {...}}``).
    A single key that is the profile's own name, holding a mapping, is the keyed form."""

    def _problems(self) -> list[str]:
        return found(
            not_blank("name", self.name, "e.g. chat; `trainer profiles` lists them"),
            "stop_sequences: must not contain empty strings"
            if self.stop_sequences is not None and "" in self.stop_sequences
            else None,
        )


@dataclass(kw_only=True)
class InferenceConfig:
    """Sample generations shown during training (previews)."""

    eval_steps: int = 50
    """Generate previews every this many optimiser steps; 0 turns previews off."""
    num_samples: int = 4
    """Validation (or training) examples generated at each preview."""
    max_new_tokens: int = 128
    """Most tokens generated per sample."""
    temperature: float = 0.0
    """Sampling temperature; 0 is greedy decoding."""
    eval_dataset: str | None = None
    """A dataset judged in full after the last step, as `trainer eval` judges it: writes eval.jsonl and
    eval.json to the output directory and the final format rate and accuracy to the status file."""
    eval_limit: int | None = None
    """Judge only the first this many rows of eval_dataset; None judges every row."""
    eval_batch_size: int = 16
    """Prompts generated together by the evaluation after training."""

    def _problems(self) -> list[str]:
        return found(
            at_least("eval_steps", self.eval_steps, 0),
            at_least("num_samples", self.num_samples, 1),
            at_least("max_new_tokens", self.max_new_tokens, 1),
            at_least("temperature", self.temperature, 0),
            at_least("eval_limit", self.eval_limit, 1, none="null for every row"),
            at_least("eval_batch_size", self.eval_batch_size, 1),
            None
            if self.eval_dataset is None or self.eval_dataset.strip()
            else "eval_dataset: must not be empty; give a dataset file, or null to skip the evaluation",
        )


@dataclass(kw_only=True)
class OutputConfig:
    """Where a run writes its checkpoints and final model."""

    output_dir: str = "outputs/run"
    """Directory for checkpoints, the final model, logs and the status file."""
    save_steps: int = 500
    """Save a checkpoint every this many optimiser steps."""
    save_total_limit: int | None = 2
    """Keep at most this many checkpoints, deleting the oldest; None keeps all."""
    report_to: list[str] = field(default_factory=list)
    """Metric loggers to send metrics and previews to (transformers' integrations), e.g. [tensorboard]."""
    keep_checkpoints: bool = False
    """Keep the checkpoints (weights and optimizer state, for resuming) once the run has completed;
    false deletes them and saves none at the last step. An interrupted run always keeps its own."""
    save_dtype: str = "auto"
    """Dtype the final model is saved in: auto (the base model's own; float32 for the demo model),
    float32, bfloat16 or float16."""
    disk_space_check: str = "refuse"
    """Before training, compare the space the checkpoints and the final model need with the free
    space on the output filesystem. refuse: warn when short of what the run needs at its fullest,
    stop when short of the final model and one checkpoint; warn: only warn; off: do not compare."""

    def _problems(self) -> list[str]:
        return found(
            not_blank("output_dir", self.output_dir, "e.g. outputs/run"),
            at_least("save_steps", self.save_steps, 1),
            at_least("save_total_limit", self.save_total_limit, 1, none="null to keep all"),
            *(one_of("report_to", name, REPORT_TO) for name in self.report_to),
            one_of("save_dtype", self.save_dtype, SAVE_DTYPES),
            one_of("disk_space_check", self.disk_space_check, DISK_SPACE_CHECKS),
        )


@dataclass(kw_only=True)
class SystemConfig:
    """Where the run happens: directories, the device, and how several processes share the work.

    Several processes come from the launcher (``torchrun``, ``accelerate launch``);
    the fields below only tell transformers' ``Trainer`` how to spread the model
    over them.
    """

    base_dir: str = "."
    """Directory that relative model, data and output paths are resolved against."""
    status_file: str = "status.json"
    """JSON file the run keeps its progress in; a relative path is inside ``output.output_dir``."""
    device: str = "auto"
    """auto, cpu, cuda, cuda:N or mps; auto picks cuda, then mps, then cpu."""
    fsdp: str = ""
    """Fully Sharded Data Parallel: transformers' ``fsdp`` options separated by spaces, e.g.
    ``full_shard auto_wrap`` (see ``FSDP_OPTIONS``), or ``true`` to take everything from
    ``fsdp_config``; empty turns FSDP off."""
    fsdp_config: dict[str, Any] = field(default_factory=dict)
    """transformers' ``fsdp_config`` (``version``, ``state_dict_type``, ``cpu_offload``,
    ``activation_checkpointing``, ...); used only with ``fsdp``."""
    deepspeed: str | None = None
    """Path of a DeepSpeed JSON config (resolved against ``base_dir``); None runs without
    DeepSpeed. Needs ``pip install deepspeed``; do not combine with ``fsdp``."""
    ddp_backend: str | None = None
    """torch.distributed backend, one of ``DDP_BACKENDS`` (nccl, gloo, ...); None lets
    transformers choose (nccl on CUDA GPUs, gloo on CPU)."""

    def _problems(self) -> list[str]:
        return found(
            not_blank("base_dir", self.base_dir, "e.g. ."),
            not_blank("status_file", self.status_file, "e.g. status.json"),
            None
            if _DEVICE.fullmatch(self.device)
            else f"device: must be one of {', '.join(DEVICES)}, got {self.device!r}",
            *(
                one_of("fsdp", word, FSDP_OPTIONS, note="separated by spaces, or true")
                for word in self.fsdp.split()
                if self.fsdp.strip().lower() != "true"
            ),
            deepspeed_problem(self.deepspeed, self.base_dir),
            "deepspeed: set together with fsdp; use one of them"
            if self.fsdp.strip() and self.deepspeed
            else None,
            one_of("ddp_backend", self.ddp_backend, DDP_BACKENDS, optional=True),
        )


@dataclass(kw_only=True)
class DebugConfig:
    """Switches for trying a config out quickly."""

    verbose: bool = False
    """Log more: every example skipped, every setting resolved."""
    dry_run: bool = False
    """Load and prepare everything, then stop before training."""
    example_limit: int | None = None
    """Use only the first this many training examples; None uses all."""

    def _problems(self) -> list[str]:
        return found(at_least("example_limit", self.example_limit, 1, none="null to use all"))


@dataclass(kw_only=True)
class TrainerConfig:
    """Everything a training run needs, in eight sections."""

    hyperparams: HyperparamsConfig = field(default_factory=HyperparamsConfig)
    """Optimiser settings and training length."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The model and how it is loaded."""
    data: DataConfig = field(default_factory=DataConfig)
    """The training data."""
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    """The data profile."""
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    """Previews during training."""
    output: OutputConfig = field(default_factory=OutputConfig)
    """Checkpoints and the final model."""
    system: SystemConfig = field(default_factory=SystemConfig)
    """Directories and device."""
    debug: DebugConfig = field(default_factory=DebugConfig)
    """Quick-trial switches."""

    def _problems(self) -> list[str]:
        sharded = self.system.fsdp.strip() or self.system.deepspeed
        return found(
            "model.lora.merge_on_export: not possible with system.fsdp or system.deepspeed, whose "
            "processes each hold part of the weights; set it to false and merge the saved adapter "
            "afterwards (peft's merge_and_unload)"
            if self.model.lora.enabled and self.model.lora.merge_on_export and sharded
            else None
        )

    def to_dict(self) -> dict[str, Any]:
        """The config as plain nested dicts and lists; JSON- and YAML-safe once validated."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> TrainerConfig:
        """A checked config from nested mappings laid out like :meth:`to_dict`.

        Missing keys keep their defaults.

        :param source: names the origin of ``data`` in the error (a file path, say).
        :raises ConfigError: listing every unknown key, wrong type and bad value.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(source, [f"expected a mapping of sections, got {show(data)}"])
        problems: list[str] = []
        config = build(cls, data, problems)
        if problems:
            raise ConfigError(source, problems)
        return config

    def validate(self, source: str = "config") -> None:
        """Check the config as it is now, after edits in code, and normalise it in place.

        :raises ConfigError: listing every problem; the config is left unchanged.
        """
        checked = TrainerConfig.from_dict(field_values(self), source=source)
        for name, value in field_values(checked).items():
            setattr(self, name, value)


# The keywords create_default_config() has always taken, and their sections.
_DEFAULT_CONFIG_KEYWORDS = {
    "model_path": "model",
    "dataset_path": "data",
    "output_dir": "output",
    "base_model": "model",
    "model_architecture": "model",
    "max_context_length": "model",
    "vocab_size": "model",
}


def create_default_config(**kwargs: Any) -> TrainerConfig:
    """A config with defaults, plus the few settings most runs change.

    Accepted keywords: ``model_path``, ``base_model``, ``model_architecture``,
    ``max_context_length``, ``vocab_size`` (model section), ``dataset_path``
    (data) and ``output_dir`` (output). Set anything else on the returned config.

    :raises ConfigError: for an unknown keyword (with a suggestion) or a bad value.
    """
    problems: list[str] = []
    data: dict[str, dict[str, Any]] = {}
    for keyword, value in kwargs.items():
        section = _DEFAULT_CONFIG_KEYWORDS.get(keyword)
        if section is not None:
            data.setdefault(section, {})[keyword] = value
            continue
        paths = [path for path in leaf_types(TrainerConfig) if path.rpartition(".")[2] == keyword]
        hint = f"; set it on the returned config instead: config.{paths[0]} = ..." if paths else ""
        accepted = ", ".join(_DEFAULT_CONFIG_KEYWORDS)
        problems.append(
            f"unknown keyword {keyword!r}{did_you_mean(keyword, _DEFAULT_CONFIG_KEYWORDS)}{hint} "
            f"(accepted: {accepted})"
        )
    if problems:
        raise ConfigError("create_default_config()", problems)
    return TrainerConfig.from_dict(data, source="create_default_config()")


def iter_values(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every field of ``config`` (or of one section) as ``(dotted path, value)``, in order.

    ``iter_values(config)`` yields ``("hyperparams.batch_size", 8)``, ...,
    ``("model.lora.r", 16)``, ...
    """
    for name, value in field_values(config).items():
        if is_section(type(value)):
            yield from iter_values(value, prefix=f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _normalize_precision(value: Any) -> Any:
    # A torch dtype is recognised by its type's module, so this never imports torch.
    if not isinstance(value, (str, int, float)) and (
        type(value).__module__ == "torch" or str(value).startswith("torch.")
    ):
        value = str(value).removeprefix("torch.")
    if isinstance(value, str):
        lowered = value.strip().lower()
        return PRECISION_ALIASES.get(lowered, lowered)
    return value
