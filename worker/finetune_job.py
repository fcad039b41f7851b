"""The `finetune` job: the two-stage recipe on a ready version, launched as the training script (worker/launch.py
picks one process, DDP or FSDP for the GPUs here), its progress followed from the script's progress.jsonl into
the job page (steps, loss, learning rate, throughput), the base and the result scored on the validation split,
and the result registered as a model that previews can use.

A retried job runs the same command in the same folder: the script resumes from its newest complete checkpoint,
skips finished stages, and the steps logged after that checkpoint are dropped and logged again. Evaluations are
kept in the folder too, so a job that died while scoring or registering does not train or score again."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.core.config import Settings
from app.models import VersionStatus
from app.schemas import model_families as families
from app.schemas import recipe
from app.schemas.jobs import FinetunePayload
from app.schemas.recipe import FinetuneConfig
from app.services import job_queue
from app.services import registered_models as model_service
from app.services import versions as version_service
from app.services.version_files import local_copy
from worker import launch
from worker.context import JobContext
from worker.evaluate import compare, evaluate
from worker.training.progress import read_events

TRAINING_SHARE = (0.05, 0.92)  # of the progress bar; scoring before and after takes the rest


class TrainingFailed(RuntimeError):
    """The training script exited with an error; the message carries the end of its log."""


class Follower:
    """Turns the script's progress events into job metrics, a progress bar over both stages' steps and the
    job's running result (the plan, with any stage skipped and why, and how it was launched)."""

    def __init__(self, context: JobContext, launched: launch.Launch):
        self.context, self.engine, self.job_id = context, context.engine, context.job_id
        self.result: dict[str, Any] = {"launch": {"config": launched.config, "processes": launched.processes,
                                                  "reason": launched.reason}}
        self.planned: dict[str, int] = {}  # steps per stage
        self.finished_steps, self.offset = 0, 0
        self.fraction, self.message = TRAINING_SHARE[0], "starting the training script"
        self._rows: list[dict[str, Any]] = []  # step metrics not yet stored

    def follow(self, progress_file: Path) -> None:
        """Handles the events written since the last call; their step metrics are stored in one insert."""
        events, self.offset = read_events(progress_file, self.offset)
        for event in events:
            getattr(self, f"_on_{event['event']}", lambda _event: None)(event)
        self._store_steps()

    def _store_steps(self) -> None:
        job_queue.record_metrics(self.engine, self._rows)
        self._rows = []

    def _on_plan(self, event: dict) -> None:
        self.result.update(plan=event["stages"], precision=event["precision"], device=event["device"],
                           processes=event["processes"])
        self.planned = {stage["stage"]: stage["steps"] for stage in event["stages"]}
        job_queue.record_result(self.engine, job_id=self.job_id, result=self.result)

    def _on_stage_start(self, event: dict) -> None:
        self._store_steps()  # before the steps after the checkpoint it resumes from are dropped, to be redone
        job_queue.drop_metrics_after(self.engine, job_id=self.job_id, stage=event["stage"],
                                     step=event["resumed_from"])
        self._progress(event["resumed_from"], f"{event['stage']}: starting" + (
            f" from the checkpoint at step {event['resumed_from']}" if event["resumed_from"] else ""))

    def _on_step(self, event: dict) -> None:
        self._rows.append({"job_id": self.job_id, "stage": event["stage"], "step": event["step"],
                           "loss": event["loss"], "lr": event["lr"], "samples_per_s": event["samples_per_s"],
                           "tokens_per_s": event["tokens_per_s"]})
        self._progress(event["step"], f"{event['stage']} step {event['step']} of {event['max_steps']}: "
                                      f"loss {event['loss']:.4f}, {event['samples_per_s']:.1f} samples/s")

    def _on_stage_done(self, event: dict) -> None:
        self.finished_steps += self.planned.get(event["stage"], 0)

    def _progress(self, step: int, message: str) -> None:
        """The bar follows the steps done out of all the steps of both stages."""
        low, high = TRAINING_SHARE
        total = max(sum(self.planned.values()), 1)
        self.fraction = low + (high - low) * min((self.finished_steps + step) / total, 1.0)
        self.message = message


def _train(context: JobContext, config: FinetuneConfig, launched: launch.Launch, follower: Follower) -> Path:
    arguments = [f"--{name}={str(value).lower() if isinstance(value, bool) else value}"
                 for name, value in config.as_json().items() if value is not None and name != "device"]
    log = config.out / "train.log"
    # A retried job follows only what this attempt's run writes; the metrics already recorded stay, and the run
    # says from which step it resumes (those after it are dropped and logged again).
    follower.offset = config.progress_file.stat().st_size if config.progress_file.is_file() else 0
    process = launch.start(launched.command(arguments), log)
    try:
        while process.poll() is None:
            follower.follow(config.progress_file)
            context.progress(follower.fraction, follower.message)  # keeps the lease; raises when cancelled
            time.sleep(0.5)
        follower.follow(config.progress_file)
    finally:
        launch.stop(process)
    if process.returncode != 0:
        raise TrainingFailed(f"the training script exited with status {process.returncode}; the end of "
                             f"{log}:\n{launch.tail(log)}")
    finished = [event for event in read_events(config.progress_file)[0] if event["event"] == "finished"]
    if not finished:
        raise TrainingFailed(f"the training script ended without naming its model; the end of {log}:\n"
                             f"{launch.tail(log)}")
    return Path(finished[-1]["model"])


def _scores(path: Path, score) -> dict:
    """The scores kept in `path`, or computed by `score()` and kept there (a retried job does not score again)."""
    if path.is_file():
        return json.loads(path.read_text())
    scores = score()
    path.write_text(json.dumps(scores))
    return scores


def run_finetune(settings: Settings, context: JobContext, payload: FinetunePayload) -> dict[str, Any]:
    with Session(context.engine) as session:
        version = version_service.get(session, version_id=payload.version_id)
        base = model_service.get(session, model_id=payload.base_model_id)
        if version.status != VersionStatus.ready:
            raise ValueError(f"version {version.name} is {version.status}: only a ready version can be trained on")
        version_name, version_id = version.name, version.id
        version_tasks = version_service.manifest_of(version).tasks
        base_path, base_name, base_id, device = Path(base.path), base.name, base.id, base.device
    families.family_of(base_path)  # before scoring the base model: that takes a while, for nothing
    context.progress(0.01, "fetching the version")
    version_folder = local_copy(settings, version)  # the folder itself, or a copy pulled from object storage
    out = settings.data_dir / "finetunes" / f"job-{context.job_id}"
    out.mkdir(parents=True, exist_ok=True)
    config = FinetuneConfig(version=version_folder, base=base_path, out=out, device=device,
                            **recipe.chosen(payload))
    launched = launch.for_this_machine(base_path, device)
    follower = Follower(context, launched)

    def score(model: Path, which: str, low: float, high: float) -> dict:
        def report(done: int, total: int) -> None:
            context.progress(low + (high - low) * done / total, f"scoring {which}: {done} of {total} validation "
                                                                 "records")

        context.progress(low, f"scoring {which} on the validation split", force=True)
        with Session(context.engine) as session:
            return evaluate(session, model_path=str(model), device=device, version_folder=version_folder,
                            per_task=payload.eval_per_task, seed=payload.seed, on_progress=report)

    before = _scores(out / "evaluation-base.json", lambda: score(base_path, "the base model", 0.0,
                                                                 TRAINING_SHARE[0]))
    context.progress(TRAINING_SHARE[0], f"training: {launched.reason}", force=True)
    final = _train(context, config, launched, follower)
    after = _scores(out / "evaluation-tuned.json", lambda: score(final, "the fine-tuned model", TRAINING_SHARE[1],
                                                                 0.99))
    name = f"{base_name}+{version_name} (job {context.job_id})"[:120]
    dtype = "bfloat16" if follower.result.get("precision") == "bf16" else "float32"
    with Session(context.engine) as session:
        model = model_service.made_by_job(session, job_id=context.job_id) or model_service.register(
            session, name=name, path=str(final), dtype=dtype, device=device, actor_id=None,
            source_job_id=context.job_id, version_id=version_id, base_model_id=base_id)
        model_id, model_name = model.id, model.name
    return {**follower.result, "model_id": model_id, "model": model_name, "path": str(final),
            "version_id": version_id, "base_model_id": base_id,
            "evaluation": compare(before, after, version_tasks=version_tasks)}
