"""The torch Dataset the trainer reads: record k read from its file, its image opened and encoded
(`encoding.encode`) when the trainer asks for it, never before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from worker.training.encoding import encode, mean_colour, pad_to_square, style_of
from worker.training.record_index import RecordIndex, RecordReader

IMAGE_ASPECTS = ("pad", "original")  # "auto" is the family's (Family.pads_to_square), worked out by the caller


class ConversationDataset(Dataset):
    """`lengths` are LLaVA's modality lengths (positive with an image), for the length-grouped sampler."""

    def __init__(self, index: RecordIndex, image_folder: Path, processor, *, max_length: int,
                 image_aspect: str = "pad"):
        if image_aspect not in IMAGE_ASPECTS:
            raise ValueError(f"image_aspect must be one of {IMAGE_ASPECTS}, not {image_aspect!r}")
        self.index, self.reader, self.image_folder = index, RecordReader(index), image_folder
        self.processor, self.max_length, self.image_aspect = processor, max_length, image_aspect
        self.background = mean_colour(processor)
        self.style = style_of(processor)
        self.lengths = index.lengths

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, Any]:
        record = self.reader[k]
        image = None
        if "image" in record:
            with Image.open(self.image_folder / record["image"]) as opened:
                image = opened.convert("RGB")
            if self.image_aspect == "pad":
                image = pad_to_square(image, self.background)
        encoded = encode(self.processor, record["conversations"], image, max_length=self.max_length,
                         record_id=record.get("id") or f"line {self.index.lines[k]}", style=self.style)
        return encoded.row()
