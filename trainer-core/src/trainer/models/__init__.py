"""Where a run's model and tokenizer come from.

A local directory or hub id (:mod:`trainer.models.loading`), or, when a run
names no model, the demo model that ships inside trainer-core and needs no
download (:mod:`trainer.models.demo` for its tokenizer, whose files are in
``demo_tokenizer/``, and :mod:`trainer.models.demo_model` for the network).
Importing this package loads neither torch nor transformers.
"""
