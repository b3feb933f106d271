"""The config schema: defaults, create_default_config, to/from dict and the one-pass validation."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import trainer.config.schema as schema
from trainer.config import (
    ConfigError,
    LoraConfig,
    ModelConfig,
    TrainerConfig,
    create_default_config,
    iter_values,
)
from trainer.errors import TrainerError

EXPECTED_DEFAULTS = {
    "hyperparams": {
        "batch_size": 8,
        "learning_rate": 2e-4,
        "num_epochs": 3.0,
        "max_steps": None,
        "gradient_accumulation_steps": 1,
        "warmup_ratio": 0.0,
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "lr_scheduler_type": "cosine",
        "seed": 42,
        "max_grad_norm": 1.0,
        "gradient_checkpointing": False,
        "optim": "adamw_torch",
    },
    "model": {
        "model_path": None,
        "base_model": None,
        "model_architecture": None,
        "precision": "auto",
        "max_context_length": 2048,
        "vocab_size": None,
        "lora": {
            "enabled": False,
            "r": 16,
            "alpha": 32,
            "dropout": 0.05,
            "target_modules": ["all-linear"],
            "merge_on_export": False,
        },
        "trust_remote_code": False,
        "attn_implementation": None,
        "loss_impl": "auto",
    },
    "data": {
        "dataset_path": None,
        "validation_path": None,
        "validation_split": 0.0,
        "max_length": 1024,
        "packing": False,
        "group_by_length": False,
        "overlength": "drop",
        "skip_invalid": False,
        "num_proc": None,
        "trained_turns": "all",
        "allow_consecutive_assistant": False,
        "mixture": [],
        "mixture_strategy": "all_exhausted",
    },
    "profile": {
        "name": "chat",
        "system_prompt": "You are a helpful assistant.",
        "stop_sequences": None,
        "options": {},
    },
    "inference": {
        "eval_steps": 50,
        "num_samples": 4,
        "max_new_tokens": 128,
        "temperature": 0.0,
        "eval_dataset": None,
        "eval_limit": None,
        "eval_batch_size": 16,
    },
    "output": {
        "output_dir": "outputs/run",
        "save_steps": 500,
        "save_total_limit": 2,
        "report_to": [],
        "keep_checkpoints": False,
        "save_dtype": "auto",
        "disk_space_check": "refuse",
    },
    "system": {
        "base_dir": ".",
        "status_file": "status.json",
        "device": "auto",
        "fsdp": "",
        "fsdp_config": {},
        "deepspeed": None,
        "ddp_backend": None,
    },
    "debug": {"verbose": False, "dry_run": False, "example_limit": None},
}


class FakeDtype:
    """Looks like ``torch.bfloat16`` to the config without importing torch."""

    def __str__(self) -> str:
        return "torch.bfloat16"


FakeDtype.__module__ = "torch"


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        TrainerConfig.from_dict(data, source="config.yaml")
    return caught.value.problems


# Defaults and documentation


def test_defaults_are_the_documented_ones():
    assert TrainerConfig().to_dict() == EXPECTED_DEFAULTS
    assert create_default_config().to_dict() == EXPECTED_DEFAULTS


def test_mutable_defaults_are_not_shared():
    first, second = TrainerConfig(), TrainerConfig()
    first.model.lora.target_modules.append("q_proj")
    first.profile.options["think"] = True
    assert second.model.lora.target_modules == ["all-linear"]
    assert second.profile.options == {}


def test_every_field_has_a_docstring_right_under_it():
    modules = [Path(schema.__file__), Path(schema.__file__).with_name("mixture.py")]
    nodes = [node for module in modules for node in ast.parse(module.read_text(encoding="utf-8")).body]
    undocumented = []
    dataclasses_seen = 0
    for node in nodes:
        if not isinstance(node, ast.ClassDef) or not any(
            "dataclass" in ast.unparse(decorator) for decorator in node.decorator_list
        ):
            continue
        dataclasses_seen += 1
        body = node.body
        for index, statement in enumerate(body):
            if isinstance(statement, ast.AnnAssign):
                following = body[index + 1] if index + 1 < len(body) else None
                documented = (
                    isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                )
                if not documented:
                    undocumented.append(f"{node.name}.{ast.unparse(statement.target)}")
    assert dataclasses_seen == 11  # eight sections, LoRA, the root and a source of data.mixture
    assert undocumented == []


def test_iter_values_walks_every_field_in_order():
    paths = [path for path, _ in iter_values(TrainerConfig())]
    assert paths[0] == "hyperparams.batch_size"
    assert "model.lora.target_modules" in paths
    assert "profile.options" in paths
    assert len(paths) == len(set(paths)) == 13 + 15 + 13 + 4 + 7 + 7 + 7 + 3


# create_default_config


ORIGINAL_KEYWORDS = {
    "model_path": ("model", "./models/qwen3-0.6b"),
    "dataset_path": ("data", "data/train.jsonl"),
    "output_dir": ("output", "outputs/qwen3-regime3"),
    "base_model": ("model", "Qwen/Qwen3-0.6B"),
    "model_architecture": ("model", "qwen3"),
    "max_context_length": ("model", 4096),
    "vocab_size": ("model", 151936),
}


@pytest.mark.parametrize("keyword", sorted(ORIGINAL_KEYWORDS))
def test_create_default_config_maps_each_original_keyword(keyword):
    section, value = ORIGINAL_KEYWORDS[keyword]
    config = create_default_config(**{keyword: value})
    assert getattr(getattr(config, section), keyword) == value
    expected = json.loads(json.dumps(EXPECTED_DEFAULTS))
    expected[section][keyword] = value
    assert config.to_dict() == expected


def test_create_default_config_rejects_an_unknown_keyword_with_a_suggestion():
    with pytest.raises(ConfigError) as caught:
        create_default_config(datset_path="data.jsonl")
    assert isinstance(caught.value, TrainerError)
    assert "did you mean 'dataset_path'?" in str(caught.value)


def test_create_default_config_points_other_fields_to_their_section():
    with pytest.raises(ConfigError, match=r"config\.hyperparams\.learning_rate"):
        create_default_config(learning_rate=1e-5)


def test_create_default_config_checks_values():
    with pytest.raises(ConfigError) as caught:
        create_default_config(max_context_length="long", vocab_size=0)
    assert caught.value.problems == [
        "model.max_context_length: expected an integer, got 'long' (str)",
        "model.vocab_size: must be at least 1 (or null to skip the check), got 0",
    ]


def test_the_documented_snippet_runs_unchanged():
    from trainer.config import TrainerConfig, create_default_config

    config = create_default_config(
        model_path="./models/qwen3-0.6b",
        dataset_path="data/train.jsonl",
        output_dir="outputs/qwen3-regime3",
        base_model="Qwen/Qwen3-0.6B",
        model_architecture="qwen3",
        max_context_length=4096,
        vocab_size=151936,
    )  # noqa: E501
    config.hyperparams.learning_rate = 1e-5
    config.profile.name = "regime3"

    assert isinstance(config, TrainerConfig)
    assert config.model.base_model == "Qwen/Qwen3-0.6B"
    assert config.output.output_dir == "outputs/qwen3-regime3"
    config.validate()
    assert config.hyperparams.learning_rate == 1e-5


# to_dict / from_dict


def test_to_dict_is_json_safe_and_round_trips():
    config = create_default_config(model_path="m", vocab_size=10)
    config.model.lora.enabled = True
    config.profile.options = {"think": True, "depth": [1, 2]}
    data = json.loads(json.dumps(config.to_dict()))
    assert TrainerConfig.from_dict(data) == config


def test_from_dict_keeps_defaults_for_missing_keys():
    config = TrainerConfig.from_dict({"hyperparams": {"batch_size": 2}, "model": {"lora": {"r": 4}}})
    assert config.hyperparams.batch_size == 2
    assert config.hyperparams.learning_rate == 2e-4
    assert config.model.lora.r == 4
    assert config.model.lora.alpha == 32


def test_from_dict_accepts_section_instances_and_empty_sections():
    config = TrainerConfig.from_dict({"model": ModelConfig(lora=LoraConfig(r=4)), "debug": None})
    assert config.model.lora.r == 4
    assert config.debug.verbose is False


def test_from_dict_rejects_a_non_mapping():
    with pytest.raises(ConfigError, match=r"x: expected a mapping of sections, got \[1\] \(list\)"):
        TrainerConfig.from_dict([1], source="x")  # type: ignore[arg-type]


# Validation: all problems at once


def test_misspelled_key_and_wrong_type_are_reported_together():
    with pytest.raises(ConfigError) as caught:
        TrainerConfig.from_dict(
            {"hyperparams": {"learning_rat": 1e-4, "batch_size": "eight"}}, source="config.yaml"
        )
    error = caught.value
    assert error.problems == [
        "hyperparams.learning_rat: unknown key; did you mean 'hyperparams.learning_rate'?",
        "hyperparams.batch_size: expected an integer, got 'eight' (str)",
    ]
    assert str(error).splitlines() == ["config.yaml: 2 problems", *(f"  {p}" for p in error.problems)]


def test_a_single_problem_is_one_line():
    with pytest.raises(ConfigError) as caught:
        TrainerConfig.from_dict({"data": {"max_length": 4}}, source="run.json")
    assert str(caught.value) == "run.json: data.max_length: must be at least 8, got 4"


def test_unknown_section_gets_a_suggestion():
    assert problems_of({"hyperparam": {"seed": 1}}) == [
        "hyperparam: unknown section; did you mean 'hyperparams'?"
    ]


def test_field_in_the_wrong_place_points_to_where_it_belongs():
    assert problems_of({"hyperparams": {"max_length": 512}, "learning_rate": 1e-4}) == [
        "learning_rate: unknown section; did you mean 'hyperparams.learning_rate'?",
        "hyperparams.max_length: unknown key; did you mean 'data.max_length'?",
    ]


def test_unknown_key_without_a_close_match_lists_the_known_ones():
    (problem,) = problems_of({"debug": {"zzz": 1}})
    assert problem == "debug.zzz: unknown key (known: verbose, dry_run, example_limit)"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            {"hyperparams": {"batch_size": True}},
            "hyperparams.batch_size: expected an integer, got True (bool)",
        ),
        (
            {"hyperparams": {"learning_rate": False}},
            "hyperparams.learning_rate: expected a number, got False (bool)",
        ),
        (
            {"hyperparams": {"batch_size": 8.0}},
            "hyperparams.batch_size: expected an integer, got 8.0 (float)",
        ),
        (
            {"hyperparams": {"learning_rate": "fast"}},
            "hyperparams.learning_rate: expected a number, got 'fast' (str)",
        ),
        ({"debug": {"verbose": "yes"}}, "debug.verbose: expected true or false, got 'yes' (str)"),
        ({"profile": {"system_prompt": True}}, "profile.system_prompt: expected a string, got True (bool)"),
        ({"profile": {"name": None}}, "profile.name: expected a string, got None (NoneType)"),
        (
            {"model": {"lora": {"target_modules": "all-linear"}}},
            "model.lora.target_modules: expected a list of strings, got 'all-linear' (str)",
        ),
        (
            {"profile": {"stop_sequences": ["</s>", 3]}},
            "profile.stop_sequences: expected a list of strings or null, got ['</s>', 3] (list)",
        ),
        (
            {"profile": {"options": [1]}},
            "profile.options: expected a mapping of names to values, got [1] (list)",
        ),
        ({"model": {"lora": 8}}, "model.lora: expected a mapping of lora settings, got 8 (int)"),
    ],
)
def test_wrong_types_name_the_path_the_type_and_the_value(data, problem):
    assert problems_of(data) == [problem]


def test_lossless_conversions_are_accepted():
    config = TrainerConfig.from_dict(
        {"hyperparams": {"learning_rate": "1e-4", "num_epochs": 2, "max_grad_norm": " 0.5 "}}
    )
    assert config.hyperparams.learning_rate == 1e-4
    assert config.hyperparams.num_epochs == 2.0
    assert isinstance(config.hyperparams.num_epochs, float)
    assert config.hyperparams.max_grad_norm == 0.5


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"hyperparams": {"batch_size": 0}}, "hyperparams.batch_size: must be at least 1, got 0"),
        ({"hyperparams": {"learning_rate": 0}}, "hyperparams.learning_rate: must be greater than 0, got 0.0"),
        (
            {"hyperparams": {"learning_rate": "nan"}},
            "hyperparams.learning_rate: must be greater than 0, got nan",
        ),
        (
            {"hyperparams": {"max_steps": 0}},
            "hyperparams.max_steps: must be at least 1 (or null to run by num_epochs), got 0",
        ),
        ({"hyperparams": {"warmup_ratio": 1.5}}, "hyperparams.warmup_ratio: must be from 0 to 1, got 1.5"),
        (
            {"hyperparams": {"warmup_ratio": 0.1, "warmup_steps": 10}},
            "hyperparams.warmup_ratio and warmup_steps are both set; set only one of them",
        ),
        ({"data": {"validation_split": 1}}, "data.validation_split: must be from 0 to below 1, got 1.0"),
        (
            {"data": {"validation_split": 0.1, "validation_path": "v.jsonl"}},
            "data.validation_path and validation_split are both set; set only one of them",
        ),
        ({"model": {"lora": {"r": 0}}}, "model.lora.r: must be at least 1, got 0"),
        (
            {"model": {"lora": {"target_modules": []}}},
            "model.lora.target_modules: must name at least one module, e.g. [all-linear]",
        ),
        ({"output": {"output_dir": " "}}, "output.output_dir: must not be empty (e.g. outputs/run)"),
        (
            {"debug": {"example_limit": 0}},
            "debug.example_limit: must be at least 1 (or null to use all), got 0",
        ),
    ],
)
def test_out_of_range_values_are_reported(data, problem):
    assert problems_of(data) == [problem]


def test_bad_choices_name_the_allowed_values():
    problems = problems_of(
        {
            "hyperparams": {"lr_scheduler_type": "cosin"},
            "model": {"precision": "int8", "attn_implementation": "flash"},
            "data": {"overlength": "cut"},
            "system": {"device": "gpu"},
        }
    )
    assert problems == [
        "hyperparams.lr_scheduler_type: must be one of linear, cosine, cosine_with_restarts, polynomial, "
        "constant, constant_with_warmup, inverse_sqrt, reduce_lr_on_plateau, cosine_with_min_lr, "
        "warmup_stable_decay, got 'cosin'; did you mean 'cosine'?",
        "model.precision: must be one of auto, bfloat16, float16, float32 (or bf16, fp16, fp32), got 'int8'",
        "model.attn_implementation: must be one of eager, sdpa, flash_attention_2, flex_attention or null, "
        "got 'flash'",
        "data.overlength: must be one of drop, truncate, error, got 'cut'",
        "system.device: must be one of auto, cpu, cuda, cuda:N, mps, got 'gpu'",
    ]


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_accepted_devices(device):
    assert TrainerConfig.from_dict({"system": {"device": device}}).system.device == device


def test_distributed_settings_are_checked(tmp_path):
    problems = problems_of(
        {
            "system": {
                "fsdp": "full_shard autowrap",
                "deepspeed": "ds_zero3.json",
                "ddp_backend": "glo",
                "base_dir": str(tmp_path),
            },
            "model": {"lora": {"enabled": True, "merge_on_export": True}},
        }
    )
    assert problems == [
        "system.fsdp: must be one of full_shard, shard_grad_op, no_shard, hybrid_shard, "
        "hybrid_shard_zero2, offload, auto_wrap (separated by spaces, or true), got 'autowrap'; "
        "did you mean 'auto_wrap'?",
        "system.deepspeed: DeepSpeed config 'ds_zero3.json' not found "
        f"(looked for {tmp_path / 'ds_zero3.json'}). "
        "Pass the path of an existing JSON file, or null for none",
        "system.deepspeed: set together with fsdp; use one of them",
        "system.ddp_backend: must be one of nccl, gloo, mpi, ccl, xccl, hccl, cncl, mccl or null, got 'glo'; "
        "did you mean 'gloo'?",
        "model.lora.merge_on_export: not possible with system.fsdp or system.deepspeed, whose processes "
        "each hold part of the weights; set it to false and merge the saved adapter afterwards "
        "(peft's merge_and_unload)",
    ]


def test_distributed_settings_accepted(tmp_path):
    (tmp_path / "ds_zero3.json").write_text('{"zero_optimization": {"stage": 3}}')
    config = TrainerConfig.from_dict(
        {"system": {"deepspeed": "ds_zero3.json", "base_dir": str(tmp_path), "ddp_backend": "nccl"}}
    )
    assert config.system.deepspeed == "ds_zero3.json"
    for fsdp in ("full_shard auto_wrap", "shard_grad_op offload", "true", ""):
        config = TrainerConfig.from_dict({"system": {"fsdp": fsdp, "fsdp_config": {"version": 2}}})
        assert config.system.fsdp == fsdp


def test_every_problem_in_a_config_is_collected():
    problems = problems_of(
        {
            "hyperparams": {"batch_size": "eight", "learning_rate": -1, "sed": 3},
            "model": {"precision": "fp64", "lora": {"r": "sixteen"}},
            "inference": {"temperature": -0.5},
            "extra": {},
        }
    )
    assert [problem.split(":")[0] for problem in problems] == [
        "extra",
        "hyperparams.sed",
        "hyperparams.batch_size",
        "hyperparams.learning_rate",
        "model.lora.r",
        "model.precision",
        "inference.temperature",
    ]


# Precision spellings


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("bf16", "bfloat16"),
        ("FP16", "float16"),
        ("fp32", "float32"),
        ("bfloat16", "bfloat16"),
        ("auto", "auto"),
    ],
)
def test_precision_aliases_are_stored_under_their_long_names(given, stored):
    assert TrainerConfig.from_dict({"model": {"precision": given}}).model.precision == stored
    assert ModelConfig(precision=given).precision == stored


def test_a_torch_dtype_is_read_without_importing_torch():
    dtype = FakeDtype()
    assert type(dtype).__module__ == "torch"
    config = TrainerConfig.from_dict({"model": {"precision": dtype}})
    assert config.model.precision == "bfloat16"
    assert ModelConfig(precision=dtype).precision == "bfloat16"  # type: ignore[arg-type]


def test_validate_normalises_edits_made_in_code():
    config = TrainerConfig()
    config.model.precision = FakeDtype()  # type: ignore[assignment]
    config.hyperparams.learning_rate = "5e-5"  # type: ignore[assignment]
    config.validate()
    assert config.model.precision == "bfloat16"
    assert config.hyperparams.learning_rate == 5e-5


def test_validate_reports_problems_and_leaves_the_config_alone():
    config = TrainerConfig()
    config.hyperparams.batch_size = "two"  # type: ignore[assignment]
    config.model.precision = "bf16"
    with pytest.raises(ConfigError) as caught:
        config.validate(source="my config")
    assert str(caught.value) == "my config: hyperparams.batch_size: expected an integer, got 'two' (str)"
    assert config.hyperparams.batch_size == "two"
    assert config.model.precision == "bf16"


def test_sections_are_keyword_only():
    with pytest.raises(TypeError):
        ModelConfig("path")  # type: ignore[misc]
    assert all(f.kw_only for f in dataclasses.fields(TrainerConfig))


# Import cost


def test_importing_the_config_package_imports_no_heavy_library():
    code = (
        "import sys, trainer.config, trainer.config.loader; "
        "heavy = sorted({'torch', 'transformers', 'datasets'} & set(sys.modules)); "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_config_package_never_names_a_heavy_library_in_an_import():
    package = Path(schema.__file__).parent
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in {"torch", "transformers", "datasets"}, source


def test_config_error_survives_pickling():
    import pickle

    error = pickle.loads(pickle.dumps(ConfigError("c.yaml", ["a: bad", "b: worse"])))
    assert (error.source, error.problems) == ("c.yaml", ["a: bad", "b: worse"])
    assert str(error).startswith("c.yaml: 2 problems")
