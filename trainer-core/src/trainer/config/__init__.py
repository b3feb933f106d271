"""The run configuration: typed sections with documented defaults, loaded and checked once.

::

    from trainer.config import create_default_config
    config = create_default_config(model_path="./models/qwen3-0.6b", dataset_path="data/train.jsonl")
    config.hyperparams.learning_rate = 1e-5

    from trainer.config import ConfigLoader
    loader = ConfigLoader("config.yaml")          # defaults < file < command line
    config = loader.merge_with_cli_args({"lr": 1e-4, "set": ["model.lora.enabled=true"]})

The sections and every field, with its default and meaning, are in
:mod:`trainer.config.schema`. This package imports only the standard library
and PyYAML.
"""

from __future__ import annotations

from trainer.config.loader import CLI_FLAGS, ConfigLoader
from trainer.config.render import render_yaml
from trainer.config.schema import (
    DataConfig,
    DebugConfig,
    HyperparamsConfig,
    InferenceConfig,
    LoraConfig,
    ModelConfig,
    OutputConfig,
    ProfileConfig,
    SystemConfig,
    TrainerConfig,
    create_default_config,
    iter_values,
)
from trainer.config.validation import ConfigError

__all__ = [
    "CLI_FLAGS",
    "ConfigError",
    "ConfigLoader",
    "DataConfig",
    "DebugConfig",
    "HyperparamsConfig",
    "InferenceConfig",
    "LoraConfig",
    "ModelConfig",
    "OutputConfig",
    "ProfileConfig",
    "SystemConfig",
    "TrainerConfig",
    "create_default_config",
    "iter_values",
    "render_yaml",
]
