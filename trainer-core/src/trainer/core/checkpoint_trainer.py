"""transformers' ``Trainer``, saving each checkpoint whole or not at all.

See :mod:`trainer.core.checkpoints` for the staging folder, the fsync and the rename.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from trainer.core.checkpoints import (
    STAGING_DIR,
    publish,
    remove_staged,
    remove_staging,
    rotate,
    write_settings,
)


class CheckpointingTrainer(Trainer):
    """A ``Trainer`` whose checkpoints appear only once complete, with the run's settings in them.

    transformers writes each checkpoint into ``.staging/checkpoint-N`` inside the
    checkpoints directory and the main process adds ``trainer_config.json``; once every
    process has written its part, the main process fsyncs every file and renames the
    folder to ``checkpoint-N``. Only then are old checkpoints deleted (``save_total_limit``). The
    main process removes what an earlier run's interrupted save left in the staging folder.

    :param run_settings: the run's resolved settings (:func:`trainer.core.checkpoints.run_settings`),
        saved in each checkpoint; None saves none.
    """

    def __init__(self, *args: Any, run_settings: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_settings = run_settings
        self._staging = False
        if self.args.should_save:
            remove_staging(Path(self.args.output_dir))

    def _get_output_dir(self, trial: Any) -> str:
        # transformers' _save_checkpoint takes the folder it writes checkpoint-N into (and rotates
        # checkpoints in) from this method alone, so pointing it at the staging folder while a save
        # runs redirects the whole save: model, optimizer, scheduler, every process's RNG state and
        # trainer_state.json. Overriding _save_checkpoint instead would copy some 60 lines of it that
        # change between transformers versions. Its rotation then finds only the new checkpoint in
        # the staging folder and deletes nothing; ours runs after the rename. (Its best-checkpoint
        # bookkeeping would record a staging path, but the engine sets no metric_for_best_model.)
        run_dir = super()._get_output_dir(trial)
        return os.path.join(run_dir, STAGING_DIR) if self._staging else run_dir

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        checkpoints_dir = Path(super()._get_output_dir(trial))
        staged = checkpoints_dir / STAGING_DIR / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        self._staging = True
        try:
            super()._save_checkpoint(model, trial)
            if self.args.should_save and self.run_settings is not None:
                write_settings(staged, self.run_settings)
        except BaseException:
            # Nothing half-written stays behind. A full disk or another error of the machine's is
            # turned into one line by the engine (trainer.core.disk), which knows what was written.
            if self.args.should_save:
                remove_staged(staged)
            raise
        finally:
            self._staging = False
        # Every process writes its own part (rng_state_<rank>.pth) before the main one renames.
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            saved = publish(staged, checkpoints_dir)
            rotate(checkpoints_dir, self.args.save_total_limit, keep=saved)
