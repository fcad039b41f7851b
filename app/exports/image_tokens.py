"""How many tokens an image takes in the model family a version is built for, from the image's size alone.

LLaVA-1.5 gives every image 576 tokens. The families after it size an image by its resolution: LLaVA-NeXT tiles it
on a grid of 336-pixel crops, Qwen2-VL cuts it into 28-pixel squares (as many as fit under its pixel budget),
Idefics3 splits it into 364-pixel tiles of 169 tokens each plus the whole image. A record whose text fits the
trainer's max length with 576 image tokens may not fit with the 1,280 Qwen2-VL gives a large photograph, and the
trainer then cuts it silently, inside the image's tokens or the answer. The export counts each image's tokens as the
family's released processor does (its defaults: the numbers below), so the length check leaves such records out and
says why. Exact against transformers' own processors (tests/test_image_tokens.py); pure Python, so the web process
and the export can use it without torch."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

from app.schemas.model_families import FAMILIES

LLAVA_TOKENS = 576  # 336 px, patch 14: 24 x 24


def _llava(width: int, height: int) -> int:
    return LLAVA_TOKENS


# LLaVA-NeXT (llava-v1.6): a 336-px base image plus the best grid of 336-px crops, unpadded, a newline per row.
NEXT_SIZE, NEXT_PATCH = 336, 14
NEXT_PINPOINTS = [(336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008)]  # (height, width)


def _best_resolution(height: int, width: int) -> tuple[int, int]:
    """transformers' select_best_resolution: the grid that keeps the most of the image and wastes the least."""
    best, most, least = NEXT_PINPOINTS[0], 0, float("inf")
    for grid_height, grid_width in NEXT_PINPOINTS:
        scale = min(grid_width / width, grid_height / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        wasted = grid_width * grid_height - effective
        if effective > most or (effective == most and wasted < least):
            best, most, least = (grid_height, grid_width), effective, wasted
    return best


def _llava_next(width: int, height: int) -> int:
    grid_height, grid_width = _best_resolution(height, width)
    patches = NEXT_SIZE // NEXT_PATCH
    rows, columns = patches * (grid_height // NEXT_SIZE), patches * (grid_width // NEXT_SIZE)
    if width / height > columns / rows:
        rows -= 2 * ((rows - int(round(height * (columns / width), 7))) // 2)
    else:
        columns -= 2 * ((columns - int(round(width * (rows / height), 7))) // 2)
    return rows * columns + rows + patches * patches  # the unpadded grid, its newlines, the base image


# Qwen2-VL and Qwen2.5-VL: 28-px squares (14-px patches merged 2 x 2), between 4 and 1,280 of them.
QWEN_FACTOR, QWEN_MIN_PIXELS, QWEN_MAX_PIXELS = 28, 56 * 56, 28 * 28 * 1280


def _qwen2_vl(width: int, height: int) -> int:
    """transformers' smart_resize, then one token per 28-px square."""
    factor = QWEN_FACTOR
    rows, columns = round(height / factor) * factor, round(width / factor) * factor
    if rows * columns > QWEN_MAX_PIXELS:
        beta = math.sqrt(height * width / QWEN_MAX_PIXELS)
        rows = max(factor, math.floor(height / beta / factor) * factor)
        columns = max(factor, math.floor(width / beta / factor) * factor)
    elif rows * columns < QWEN_MIN_PIXELS:
        beta = math.sqrt(QWEN_MIN_PIXELS / (height * width))
        rows, columns = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return (rows // factor) * (columns // factor)


# Idefics3 (Idefics3-8B-Llama3): the image scaled to a longest edge of 4 x 364 px, split into 364-px tiles of 169
# tokens, each behind a marker and its row/column token, a newline after each row, then the whole image.
IDEFICS_LONGEST, IDEFICS_TILE, IDEFICS_TILE_TOKENS = 4 * 364, 364, 169


def _idefics3(width: int, height: int) -> int:
    """Its processor scales the longest edge to 1,456 px, up or down, and the other to match, rounded up to even
    (its later cap at 4,096 px can never apply after that)."""
    ratio = width / height
    if width >= height:
        width, height = IDEFICS_LONGEST, int(IDEFICS_LONGEST / ratio)
        height = max(height + height % 2, 1)
    else:
        height, width = IDEFICS_LONGEST, int(IDEFICS_LONGEST * ratio)
        width = max(width + width % 2, 1)
    rows, columns = math.ceil(height / IDEFICS_TILE), math.ceil(width / IDEFICS_TILE)
    if rows * columns == 1:
        rows = columns = 0  # small enough to be one tile: only the whole image
    whole = IDEFICS_TILE_TOKENS + 3  # <fake_token_around_image><global-img> ... <fake_token_around_image>
    return whole + rows * ((IDEFICS_TILE_TOKENS + 2) * columns + 1)


COUNTERS: dict[str, Callable[[int, int], int]] = {
    "llava": _llava, "llava_next": _llava_next, "qwen2_vl": _qwen2_vl, "qwen2_5_vl": _qwen2_vl,
    "idefics3": _idefics3,
}


def image_tokens(family: str, width: int, height: int) -> int:
    """The tokens an image of `width` x `height` pixels takes in `family`'s trainer."""
    return COUNTERS[family](width, height)


def length_rule(family: str) -> str:
    """How a version for `family` holds its records to the trainer's max length, in words (its card and page)."""
    name = FAMILIES[family].name
    return f"each image counted as {name}'s processor counts it, by its size (the version is for {name})"


def counter_for(family: str | None) -> Callable[[int, int], int] | None:
    """`image_tokens` for one family, remembered by size (a dataset's images come in few sizes); None for none."""
    return None if family is None else lru_cache(maxsize=1 << 16)(COUNTERS[family])
