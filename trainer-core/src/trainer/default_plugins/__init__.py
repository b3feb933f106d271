"""The core's own plugins, registered through the ``trainer.plugins`` entry points
in trainer-core's ``pyproject.toml``, exactly like third-party plugins."""
