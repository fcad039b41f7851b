"""The human-readable parts of a version: its dataset card and the trainer's command lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.exports.image_tokens import length_rule
from app.schemas.export_spec import ExportSpec

# The paper's recipe (Vision-Flan, two stages on LLaVA-1.5): stage 1 on the curated tasks, stage 2 on ~1,000
# GPT-4-synthesized conversations starting from the stage-1 weights.
STAGE1 = {"learning_rate": "2e-5", "num_train_epochs": "1"}
STAGE2 = {"learning_rate": "1e-5", "max_steps": "128"}


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _line(text: str) -> str:
    """People's words on one line of the card (a reason may hold newlines)."""
    return " ".join(text.split())


@dataclass(frozen=True)
class FixCounts:
    """A task's fixes up to the version's pinned revision, and what stayed out."""

    accepted: int = 0
    from_model: int = 0  # a model's suggestion, proposed by a person
    dismissed: int = 0  # findings a second person found wrong: the instance came back unchanged
    self_accepted: int = 0  # accepted by their own author (the studio's setting was on)
    flagged: int = 0  # instances still flagged at build time: left out


@dataclass(frozen=True)
class ReviewFigures:
    """What review measured on the version's tasks, for the card (app.services.quality_figures reads it): `quality`, per
    task id, its review rounds, solve test and spot check; `check_history`, per task id, the checks besides the
    latest that a reader should know of (failed, cancelled, opened against the defaults)."""

    quality: dict[int, Any] = field(default_factory=dict)
    check_history: dict[int, list[str]] = field(default_factory=dict)
    fixes: dict[int, FixCounts] = field(default_factory=dict)
    pool: PoolFigures | None = None  # stage 2's pool, as review found it at the spec's as_of


@dataclass
class Stage2Drawn:
    """What stage 2 holds, as the card tells it: how many, of which kinds, and who wrote the synthesized ones."""

    records: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    writers: dict[str, int] = field(default_factory=dict)  # "model, prompt kind vN" -> conversations

    def add(self, kind: str | None, origin: dict | None) -> None:
        self.records += 1
        if kind:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if origin and origin.get("generator"):
            prompt = origin.get("prompt") or {}
            writer = (f"{origin['generator'].get('model') or origin['generator'].get('name')}, "
                      f"{prompt.get('kind', '?')} prompt version {prompt.get('version', '?')}")
            self.writers[writer] = self.writers.get(writer, 0) + 1


@dataclass(frozen=True)
class PoolFigures:
    name: str
    quality: Any  # conversation_reviews.PoolQuality: conversations, read, flagged, fixed, exact, error_rate


LAYOUT_NOTES = {
    "llava": "`llava` (this folder): `stage1.json`, `stage2.json` and `val.json` as LLaVA's train.py reads them "
             "(also `stage1.jsonl`, `stage1.parquet`), images in `images/`.",
    "hf": "`hf` (`hf/`): a Hugging Face dataset with the images inside: `datasets.load_dataset(\"hf\")` gives the "
          "splits `stage1`, `validation` (and `stage2`); `messages` are in TRL's format.",
    "llamafactory": "`llamafactory` (`llamafactory/`): ShareGPT JSONL per split and `dataset_info.json`: "
                    "`--dataset_dir llamafactory --dataset flan_stage1`, then `flan_stage2`.",
    "swift": "`swift` (`swift/`): ms-swift's JSONL per split (`messages`, `images`); run `swift sft` from that folder "
             "(image paths are relative to it).",
}


def _layouts(spec: ExportSpec) -> list[str]:
    """How to load the version, per layout it holds (said only when it holds more than LLaVA's)."""
    if spec.layouts == ["llava"]:
        return []
    return ["## Layouts", "", *(f"- {LAYOUT_NOTES[layout]}" for layout in spec.layouts), ""]


def dataset_card(*, name: str, spec: ExportSpec, plans, tally, review: ReviewFigures,
                 qc_override: str | None = None, stage2: Stage2Drawn | None = None) -> str:
    """`qc_override`: an admin's reason for building over failed checks; `stage2_records`: the conversations
    stage 2 holds (None: no stage 2)."""
    quality, check_history = review.quality, review.check_history
    train = sum(counts.get("train", 0) for counts in tally.per_task.values())
    val = sum(counts.get("validation", 0) for counts in tally.per_task.values())
    lines = [
        f"# {name or 'Flan Studio dataset version'}", "",
        f"{len(plans)} tasks, {train:,} training and {val:,} validation records (stage 1); "
        f"seed {spec.seed}, at most {spec.per_task_cap:,} instances per task. Built by Flan Studio; "
        "`manifest.json` lists every file with its sha256.", "",
        "Record ids read `<task>/<instance id>/v<instruction version id>`: each record traces back to its "
        "instance, the instruction version it was rendered with, and that version's reviews.", "",
        *_layouts(spec),
        "## Tasks", "",
        "| Task | Group | Category | Train | Validation | Review rounds | Solve test "
        "| Spot-check error rate (95% CI; how it was estimated) |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for item in plans:
        counts = tally.per_task.get(item.task.name, {})
        figures = quality.get(item.task.id)
        solve = spot = "—"
        rounds = 0
        if figures is not None:
            rounds = figures.review_rounds
            if figures.solve_test is not None:
                solve = f"{figures.solve_matched}/{figures.solve_judged} ({figures.solve_test.status})"
            if figures.interval is not None:
                interval = figures.interval
                spot = (f"{100 * interval.rate:.1f}% [{100 * interval.low:.1f}, {100 * interval.high:.1f}] "
                        f"of {figures.spot_decided} ({figures.spot_method})")
        lines.append(f"| {_cell(item.task.name)} | {_cell(item.task.task_group)} | {_cell(item.task.category)} | "
                     f"{counts.get('train', 0):,} | {counts.get('validation', 0):,} | {rounds} | {solve} | {spot} |")
    lines += ["", "A uniform spot check's interval is Wilson's. A targeted one drew instances by a model's doubt "
              "(every instance had at least a stated chance of being drawn) and weights each verdict by the inverse "
              "of that chance: Hájek's estimate, with Wilson's interval at the effective sample size.", ""]
    if qc_override:
        lines += ["## Built over failed quality checks", "",
                  f"An admin built this version with tasks whose latest quality check had failed: {_line(qc_override)}",
                  ""]
    record = [(item.task.name, said) for item in plans for said in (check_history or {}).get(item.task.id, [])]
    if record:
        lines += ["## Check history", "", "Checks of these tasks that failed, were cancelled or were opened by an "
                  "admin against the studio's defaults (the table shows each task's latest):", ""]
        lines += [f"- {task}: {_line(said)}" for task, said in record]
        lines.append("")
    lines += ["## Source datasets", ""]
    seen = set()
    for item in plans:
        dataset = item.dataset
        if dataset is None or dataset.id in seen:
            continue
        seen.add(dataset.id)
        lines.append(f"### {dataset.name}")
        lines.append(f"Licence: {dataset.licence or 'not recorded'}. {dataset.url or ''}".rstrip())
        if dataset.citation:
            lines += ["", "```bibtex", dataset.citation.strip(), "```"]
        lines.append("")
    lines += _fixes(plans, review.fixes)
    if stage2 is not None:
        lines += _stage2(spec, stage2, review.pool)
    if tally.excluded:
        lines += ["## Left out", "", f"{tally.excluded:,} records broke the trainer's contract and were left out; "
                  "`manifest.json` names them (the first 200) and says why.", ""]
    if spec.model_family is not None:  # (a version for no family says nothing new here: its card stays as it was)
        lines += ["## Lengths", "", f"Every record fits the trainer's {spec.max_tokens:,} tokens, "
                  f"{length_rule(spec.model_family)}.", ""]
    return "\n".join(lines) + "\n"


def _stage2(spec: ExportSpec, drawn_set: Stage2Drawn, pool: PoolFigures | None) -> list[str]:
    """How stage 2 was drawn, and what review found in its pool."""
    drawn = ("from every conversation of the pool, read or not: whoever built it chose to include conversations "
             "nobody reviewed" if spec.stage2_unreviewed else
             "from the conversations review passed: every answer judged correct, or the wrong ones fixed by a "
             "revision a second reviewer accepted")
    as_of = f" Reviews and fixes up to {spec.as_of.isoformat(timespec='seconds')} count." \
        if spec.as_of else ""
    how = "at random" if not spec.stage2_by_kind else "at random within each kind, in proportion to its share"
    lines = ["## Stage 2", "", f"{drawn_set.records:,} conversations (at most {spec.stage2_size:,} asked for)"
             f"{' from the pool ' + _line(pool.name) if pool else ''}, drawn {how} with seed {spec.seed}, "
             f"{drawn}.{as_of}", ""]
    if drawn_set.kinds:
        lines += ["By kind: " + ", ".join(f"{kind.replace('_', ' ')} {count:,}"
                                          for kind, count in sorted(drawn_set.kinds.items())) + ".", ""]
    if drawn_set.writers:
        lines += [f"{sum(drawn_set.writers.values()):,} of them were written by a model the studio asked (each "
                  "keeps its generator, prompt, sampling and context): " + "; ".join(
                      f"{count:,} by {_line(writer)}" for writer, count in sorted(drawn_set.writers.items())) + ".",
                  ""]
    if pool is None:
        return lines
    q = pool.quality
    if not q.read:
        return [*lines, f"Nobody has reviewed the pool's {q.conversations:,} conversations: its error rate is not "
                "known.", ""]
    rate = q.error_rate
    how = "exact: every conversation was read" if q.exact else \
        f"95% Wilson interval {100 * rate.low:.1f}-{100 * rate.high:.1f}%"
    return [*lines, f"Review read {q.read:,} of the pool's {q.conversations:,} conversations, in a seeded random "
            f"order (a fair sample of it): {q.wrong:,} had a wrong answer ({q.fixed:,} of them fixed), "
            f"{100 * rate.rate:.1f}% of the pool ({how}).", ""]


def _fixes(plans, fixes: dict[int, FixCounts]) -> list[str]:
    """What review fixed and what stayed out, per task: only when something was found."""
    rows = [(item.task.name, fixes[item.task.id]) for item in plans
            if item.task.id in fixes and fixes[item.task.id] != FixCounts()]
    if not rows:
        return []
    lines = ["## Fixes", "", "Every fix was proposed by one person and accepted by another before this version used "
             "it; in the studio, a record's trace (a version's page: *Where does it come from?*) and its instance's "
             "page list them.", "",
             "| Task | Fixes accepted | From a model's suggestion | Findings dismissed | Still flagged (left out) |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {_cell(name)} | {counts.accepted:,} | {counts.from_model:,} | {counts.dismissed:,} | "
              f"{counts.flagged:,} |" for name, counts in rows]
    own = sum(counts.self_accepted for _, counts in rows)
    if own:
        lines += ["", f"{own:,} of these fixes were accepted by the person who proposed them: the studio let authors "
                  "accept their own fixes (STUDIO_CORRECTIONS_SELF_ACCEPT) when they were made."]
    return [*lines, ""]


def _command(data: str, output: str, start: str, extra: dict[str, str]) -> str:
    options = {"model_name_or_path": start, "data_path": data, "image_folder": "images", "output_dir": output,
               "per_device_train_batch_size": "16", "gradient_accumulation_steps": "1", "bf16": "True",
               "model_max_length": "2048", "lazy_preprocess": "True", **extra}
    arguments = " \\\n    ".join(f"--{key} {value}" for key, value in options.items())
    return ("#!/usr/bin/env bash\n# Run from this folder, with LLaVA installed (github.com/haotian-liu/LLaVA).\n"
            "set -euo pipefail\n"
            f"deepspeed llava/train/train_mem.py --deepspeed ./scripts/zero3.json \\\n    {arguments}\n")


def onevision_data(has_stage2: bool) -> dict[str, str]:
    """LLaVA-OneVision's data YAML per stage (its train.py takes a .yaml `--data_path`: datasets, each a JSON file
    and how much of it to take), for the same files; paths relative to the version's folder, where it is run."""
    stages = {"onevision_stage1.yaml": "stage1.json"}
    if has_stage2:
        stages["onevision_stage2.yaml"] = "stage2.json"
    return {name: f"# LLaVA-OneVision: --data_path {name} --image_folder images (run from this folder)\n"
                  f"datasets:\n  - json_path: {records}\n    sampling_strategy: all\n"
            for name, records in stages.items()}


def train_scripts(spec: ExportSpec, has_stage2: bool) -> dict[str, str]:
    base_model = "${BASE_MODEL:-liuhaotian/llava-v1.5-7b}"
    scripts = {"train_stage1.sh": _command("stage1.json", "checkpoints/stage1", base_model, STAGE1)}
    if has_stage2:
        scripts["train_stage2.sh"] = _command("stage2.json", "checkpoints/stage2", "checkpoints/stage1", STAGE2)
    else:
        scripts["train_stage2.sh"] = ("#!/usr/bin/env bash\n# This version has no stage 2: it was built without a "
                                      "conversation pool.\nexit 1\n")
    return scripts
