"""Batches: a collator that pads, and a sampler that groups records of one modality and similar length.

The sampler is LLaVA's `group_by_modality_length` in spirit: records with an image and text-only records never
share a step, and each step's records have similar lengths, so little of a batch is padding. Its order is a
function of the seed and the epoch alone, so every process draws the same order (the launcher shards it) and
a resumed run skips exactly the batches it had trained on."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Sampler

from worker.training.encoding import IGNORE


class PaddingCollator:
    """Pads token ids (with the pad token), labels (with IGNORE) and any other list per token (with 0) on the right,
    masks the padding, and joins the image inputs (tensors) of the records that have one, in order (a batch's
    images follow its image tokens in order)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(item["input_ids"]) for item in items)
        input_ids = torch.full((len(items), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(items), longest), IGNORE, dtype=torch.long)
        attention_mask = torch.zeros((len(items), longest), dtype=torch.long)
        for row, item in enumerate(items):
            size = len(item["input_ids"])
            input_ids[row, :size] = torch.as_tensor(item["input_ids"])
            labels[row, :size] = torch.as_tensor(item["labels"])
            attention_mask[row, :size] = 1
        batch = {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}
        for key in dict.fromkeys(key for item in items for key in item if key not in ("input_ids", "labels")):
            values = [item[key] for item in items if key in item]
            if isinstance(values[0], list):  # per token (Qwen2-VL's mm_token_type_ids), 0 where a record has none
                rows = [item.get(key, []) for item in items]
                batch[key] = torch.tensor([row + [0] * (longest - len(row)) for row in rows])
            else:
                batch[key] = join(values)
        return batch


def join(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Tensors concatenated on their first dimension; where their other dimensions differ (LLaVA-NeXT's patches,
    Idefics3's tiles per image), each is padded with zeros to the largest first, as the families' processors pad a
    batch (their models drop an all-zero tile, or count the patches an image has from its size)."""
    shape = [max(sizes) for sizes in zip(*(tensor.shape[1:] for tensor in tensors), strict=True)]
    padded = []
    for tensor in tensors:
        if list(tensor.shape[1:]) != shape:
            grown = tensor.new_zeros((tensor.shape[0], *shape))
            grown[tuple(slice(0, size) for size in tensor.shape)] = tensor
            tensor = grown
        padded.append(tensor)
    return torch.cat(padded)


class ModalityLengthGroupedSampler(Sampler[int]):
    """Indices in an order where every run of `group_size` (one step's records across all processes) holds
    one modality, sorted by length; the runs are shuffled, and the leftovers of each modality come last."""

    def __init__(self, lengths: Sequence[int], group_size: int, seed: int):
        self.lengths, self.group_size, self.seed, self.epoch = lengths, max(group_size, 1), seed, 0

    def set_epoch(self, epoch: int) -> None:  # the Trainer calls this before every epoch
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        rng = random.Random(f"{self.seed}/{self.epoch}")
        groups: list[list[int]] = []
        leftovers: list[list[int]] = []
        for with_image in (True, False):
            indices = [k for k, length in enumerate(self.lengths) if (length > 0) == with_image]
            rng.shuffle(indices)
            for start in range(0, len(indices), self.group_size):
                run = sorted(indices[start:start + self.group_size], key=lambda k: -abs(self.lengths[k]))
                (groups if len(run) == self.group_size else leftovers).append(run)
        rng.shuffle(groups)
        return iter([k for run in groups + leftovers for k in run])
