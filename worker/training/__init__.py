"""The fine-tune on transformers' Trainer: lazy records, batching, checkpoints, progress and the recipe."""
