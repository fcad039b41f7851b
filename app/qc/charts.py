"""Chart geometry for server-drawn SVG (no script): the fine-tune's loss per step across both stages, and the
per-task change in validation accuracy. Pure functions; the templates only place what they return."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top` (1, 2 or 5 times a power of ten apart)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(multiple * power for multiple in (1, 2, 5, 10) if multiple * power >= raw)
    return [round(k * step, 10) for k in range(math.ceil(top / step - 1e-9) + 1)]


def fitted_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values spanning [low, high] (1, 2 or 5 times a power of ten apart), from the last multiple of
    the step at or below `low`: an axis that fits the data rather than starting at 0. A flat series gets a
    band around its value."""
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(multiple * power for multiple in (1, 2, 5, 10) if multiple * power >= raw)
    start = math.floor(low / step + 1e-9) * step
    return [round(start + k * step, 10) for k in range(math.ceil((high - start) / step - 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.1e}"


@dataclass(frozen=True)
class Tick:
    at: float  # position in the chart's coordinates
    label: str


@dataclass(frozen=True)
class LossChart:
    width: int
    height: int
    left: int
    bottom: int  # y of the x axis
    lines: dict[str, str]  # stage -> polyline points
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    boundary: float | None  # x between stage 1's last step and stage 2's first
    summary: str  # for people who do not see the chart
    dots: dict[str, tuple[float, float]]  # stage -> its only point, for a stage of one logged step (no line)


def loss_chart(points: Sequence[tuple[str, int, float]], stage_steps: dict[str, int] | None = None, *,
               width: int = 640, height: int = 240) -> LossChart | None:
    """`points`: (stage, step within its stage, loss), in order. `stage_steps`: each stage's planned steps, so
    the x axis spans the whole run while it is still going and stage 2 starts after all of stage 1."""
    if not points:
        return None
    left, right, top_margin, bottom_margin = 52, 12, 10, 36
    stage_steps = dict(stage_steps or {})
    offsets, total = {}, 0
    for stage in ("stage1", "stage2"):
        offsets[stage] = total
        total += stage_steps.get(stage) or max((step for name, step, _ in points if name == stage), default=0)
    total = max(total, max(offsets.get(name, 0) + step for name, step, _ in points), 1)
    losses = [loss for _, _, loss in points]
    y_ticks = fitted_ticks(min(losses), max(losses))
    bottom_value, top = y_ticks[0], y_ticks[-1]
    plot_width, plot_height = width - left - right, height - top_margin - bottom_margin

    def x(global_step: float) -> float:
        return left + plot_width * global_step / total

    def y(loss: float) -> float:
        return top_margin + plot_height * (1 - (loss - bottom_value) / (top - bottom_value))

    lines: dict[str, list[str]] = {}
    placed: dict[str, list[tuple[float, float]]] = {}
    for stage, step, loss in points:
        placed.setdefault(stage, []).append((x(offsets.get(stage, 0) + step), y(loss)))
        lines.setdefault(stage, []).append(f"{placed[stage][-1][0]:.1f},{placed[stage][-1][1]:.1f}")
    stage2_start = offsets["stage2"] if stage_steps.get("stage2") or any(p[0] == "stage2" for p in points) else None
    x_ticks = [Tick(x(value), _label(value)) for value in nice_ticks(total, 6) if value <= total]
    return LossChart(width, height, left, height - bottom_margin, {k: " ".join(v) for k, v in lines.items()},
                     x_ticks, [Tick(y(value), _label(value)) for value in y_ticks],
                     x(stage2_start + 0.5) if stage2_start else None,
                     _loss_summary(points),
                     {stage: spots[0] for stage, spots in placed.items() if len(spots) == 1})


def _loss_summary(points: Sequence[tuple[str, int, float]]) -> str:
    """Each stage's first and last loss: one span over both would mix two datasets' losses."""
    parts = []
    for stage in dict.fromkeys(name for name, _, _ in points):
        losses = [loss for name, _, loss in points if name == stage]
        parts.append(f"{stage.replace('stage', 'stage ')}: loss {losses[0]:.3f} → {losses[-1]:.3f} over "
                     f"{len(losses)} step{'s' if len(losses) != 1 else ''}")
    return "; ".join(parts)


@dataclass(frozen=True)
class ChangeRow:
    task: str
    y: float
    x: float  # where the bar starts
    bar_width: float  # at least 1: no change still shows a mark at 0
    gained: bool
    label: str


@dataclass(frozen=True)
class ChangeChart:
    width: int
    height: int
    zero: float
    rows: list[ChangeRow]
    ticks: list[Tick]
    row_height: int


def change_chart(tasks: dict[str, dict], *, width: int = 640, row_height: int = 18) -> ChangeChart | None:
    """One bar per task from 0 to its change in accuracy (after - before), on a -100%..+100% axis."""
    if not tasks:
        return None
    label_width, right = 260, 36  # room for the +100% label
    zero = label_width + (width - label_width - right) / 2
    half = (width - label_width - right) / 2
    rows = []
    for k, (task, score) in enumerate(tasks.items()):
        change = score["change"]
        rows.append(ChangeRow(task, 8 + k * row_height, zero + min(change, 0) * half, max(abs(change) * half, 1.0),
                              change >= 0, f"{score['before']} → {score['after']} of {score['total']} "
                                           f"({change * 100:+.0f} points)"))
    ticks = [Tick(zero + value * half, f"{value * 100:+.0f}%" if value else "0") for value in (-1, -0.5, 0, 0.5, 1)]
    return ChangeChart(width, 8 + len(rows) * row_height + 28, zero, rows, ticks, row_height)
