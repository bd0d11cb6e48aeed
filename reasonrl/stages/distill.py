"""`reasonrl distill`: R1's distillation. A teacher (native or any transformers model directory)
answers a task's train prompts; the correct, readable answers (the rejection stage's filters) are
the SFT data of a smaller student, which learns them in its own prompt format.

Two runner stages in one run directory, each resumable on its own:

    <run>/traces/    `reasonrl rejection` with the teacher: dataset.jsonl, acceptance.json
    <run>/student/   `reasonrl sft` of the student on traces/dataset.jsonl: model/ with its card
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonrl.config import opt, section
from reasonrl.errors import StageError
from reasonrl.stages.common import CheckpointSection, ModelSpec, RunSection, StageResult
from reasonrl.stages.rejection import (RejectionCheckpoint, RejectionConfig, RejectionData, RejectionFilters,
                                       RejectionSampling)
from reasonrl.stages.sft import SFTBudget, SFTConfig, SFTData, SFTEval
from reasonrl.tasks.prompts import PromptFormatChoice
from reasonrl.train.loop import OptimConfig


@dataclass
class DistillStudentData:
    prompt_format: PromptFormatChoice = opt("auto", "how the student sees the prompts (auto: the student's card)")
    system: str | None = opt(None, "the student's system message (null: its card, else the format's default)")
    prefill: str = opt("", "text that starts the student's turn (empty: its card)")
    seq_len: int = opt(256, "tokens per packed training window", ge=2)
    batch_size: int = opt(16, "windows per optimizer step", ge=1)
    packing: bool = opt(True, "pack several traces into each window (off: one per row, truncated)")


@dataclass
class DistillConfig:
    run: RunSection = section(RunSection, "run directory (traces/ and student/ below it), seed, threads")
    teacher: ModelSpec = section(ModelSpec, "the model whose traces are distilled (teacher.path)")
    student: ModelSpec = section(ModelSpec, "the model fine-tuned on the traces (student.path)")
    data: RejectionData = section(RejectionData, "the task's train prompts, rendered for the teacher")
    sampling: RejectionSampling = section(RejectionSampling, "the teacher's generation")
    filters: RejectionFilters = section(RejectionFilters, "which traces are kept (correct ones only, always)")
    traces_checkpoint: RejectionCheckpoint = section(RejectionCheckpoint, "checkpoints of the traces")
    reward_timeout_s: float = opt(10.0, "wall-clock limit per verifier call", gt=0)
    student_data: DistillStudentData = section(DistillStudentData, "how the student is trained on the traces")
    optim: OptimConfig = section(OptimConfig, "the student's optimizer and schedule")
    budget: SFTBudget = section(SFTBudget, "how long the student trains")
    eval: SFTEval = section(SFTEval, "the student's held-out evaluation")
    checkpoint: CheckpointSection = section(CheckpointSection, "the student's checkpoints")


def main(cfg: DistillConfig) -> StageResult:
    from reasonrl.train.distributed import process_group

    if cfg.student.path is None:
        raise ValueError("distill needs student.path: a reasonrl checkpoint or a local transformers model directory")
    with process_group():  # one group for both parts (each part's runner joins it)
        return _distill(cfg)


def _distill(cfg: DistillConfig) -> StageResult:
    from reasonrl.model.loading import resolve_model_source
    from reasonrl.runlog import Run
    from reasonrl.stages import rejection, sft
    from reasonrl.stages.runner import mark_complete, record_run
    from reasonrl.train.distributed import check_divisible

    check_divisible("distill", student_data__batch_size=cfg.student_data.batch_size)  # before the teacher runs
    traces_cfg = traces_config(cfg)
    rejection.check_config(traces_cfg, "distill", key="teacher")
    resolve_model_source(cfg.student.path, cfg.student.gguf_file)  # a wrong student fails before the teacher runs
    run = Run(cfg.run.path, quiet=cfg.run.quiet, stage="distill")
    traces = rejection.run_stage_for(traces_cfg, "rejection")
    if not _kept_any(traces.outputs["dataset"]):
        raise StageError(f"distill: the teacher kept no trace (see {run.path('traces', 'acceptance.json')}): "
                         "nothing to train the student on; loosen filters, raise sampling.k or use a stronger teacher")
    student = sft.main(student_config(cfg, traces.outputs["dataset"]))
    outputs = {"dataset": traces.outputs["dataset"], "model": student.outputs["model"],
               "teacher": traces.outputs["model"]}
    metrics = {**{f"traces/{k}": v for k, v in traces.metrics.items()}, **student.metrics}
    record_run(run, cfg, "distill")  # the whole recipe, once both parts (each with its own config.yaml) are done
    result = StageResult(outputs, metrics, reused=traces.reused and student.reused)
    mark_complete(run, "distill", result)
    run.print(f"distill: student written to {outputs['model']}")
    return result


def _kept_any(dataset: str) -> bool:
    from pathlib import Path

    return Path(dataset).stat().st_size > 0


def sub_run(cfg: DistillConfig, name: str) -> RunSection:
    """The run section of one part: `<run>/<name>/`, with the distill run's seed and switches."""
    r = cfg.run
    return RunSection(name=name, dir=str(r.path), seed=r.seed, threads=r.threads, quiet=r.quiet,
                      allow_config_change=r.allow_config_change, strategy=r.strategy)


def traces_config(cfg: DistillConfig) -> RejectionConfig:
    return RejectionConfig(run=sub_run(cfg, "traces"), model=cfg.teacher, data=cfg.data, sampling=cfg.sampling,
                           filters=cfg.filters, reward_timeout_s=cfg.reward_timeout_s,
                           checkpoint=cfg.traces_checkpoint)


def student_config(cfg: DistillConfig, dataset: str) -> SFTConfig:
    s = cfg.student_data
    data = SFTData(path=dataset, prompt_format=s.prompt_format, system=s.system, prefill=s.prefill,
                   seq_len=s.seq_len, batch_size=s.batch_size, packing=s.packing)
    return SFTConfig(run=sub_run(cfg, "student"), model=cfg.student, data=data, optim=cfg.optim, budget=cfg.budget,
                     eval=cfg.eval, checkpoint=cfg.checkpoint)
