"""The tokenizer of the demo model, which ``trainer run`` trains when the run names no model.

Its files ship in ``demo_tokenizer/`` beside this module: a byte-level BPE
of 2,048 tokens, so any text encodes and nothing is an unknown token, written by
``trainer-core/scripts/build_demo_tokenizer.py`` (rerun it after changing the
sample dataset or a bundled profile's prompts). It carries:

- ``<|endoftext|>`` (id 0): the pad token; ``<|im_start|>`` (1) and
  ``<|im_end|>`` (2): ChatML turn markers. All three are special, so
  ``decode(..., skip_special_tokens=True)`` drops them.
- ``<|im_end|>`` as the eos token: generation stops at the end of the
  assistant turn, which is where every training target ends.
- ``<think>`` and ``</think>`` (the last two ids): single tokens, but not
  special, as in Qwen3, so decoding keeps them.
- trainer's ChatML chat template (:data:`trainer.data.chatml.CHATML_TEMPLATE`):
  plain turns as :func:`trainer.data.chatml.render_chatml` writes them, tools,
  calls and results the Hermes / Qwen way; each assistant turn's text and its
  ``<|im_end|>`` sit in a ``{% generation %}`` block, so
  ``apply_chat_template(..., return_assistant_tokens_mask=True,
  return_dict=True)`` marks exactly the tokens the model learns to write.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

DEMO_TOKENIZER_DIR = Path(__file__).resolve().parent / "demo_tokenizer"
"""The demo tokenizer's files (tokenizer.json, tokenizer_config.json, chat_template.jinja)."""


def load_demo_tokenizer() -> PreTrainedTokenizerFast:
    """The demo tokenizer, loaded from the package's own files; never downloads anything."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(DEMO_TOKENIZER_DIR, local_files_only=True)
