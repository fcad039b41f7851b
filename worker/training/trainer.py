"""transformers' Trainer with the two things LLaVA-style training needs of it: batches grouped by modality and
length, and a resume that really loads the checkpoint's weights."""

from __future__ import annotations

from pathlib import Path

from transformers import Trainer

from worker.training.batching import ModalityLengthGroupedSampler
from worker.training.checkpoints import load_weights


class StudioTrainer(Trainer):
    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        # One micro-step across all processes draws one run of the sampler: one modality, similar lengths.
        return ModalityLengthGroupedSampler(dataset.lengths, self.args.per_device_train_batch_size
                                            * self.args.world_size, seed=self.args.seed)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        model = model if model is not None else self.model
        peft = hasattr(model, "peft_config")
        if peft or self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)  # adapters, sharded states
        load_weights(model, Path(resume_from_checkpoint))
        return None
