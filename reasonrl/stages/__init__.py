"""The stages: one module per stage, each a config dataclass plus `main(cfg) -> StageResult`.

`STAGE_KINDS` is the one table of them (the CLI's commands and the recipe `kind`s): kind ->
(module, config class, one-line description, outputs). Outputs name the files a stage writes in
its run directory, so a recipe can point a later stage at them before anything runs.
"""

from __future__ import annotations

from typing import NamedTuple


class StageKind(NamedTuple):
    module: str
    config: str
    description: str
    outputs: dict[str, str]  # output name -> path inside the stage's run directory


STAGE_KINDS: dict[str, StageKind] = {
    "pretrain": StageKind("reasonrl.stages.pretrain", "PretrainConfig",
                          "pretrain a native DeepSeek-V3-style base model on a generated corpus", {"model": "model"}),
    "sft": StageKind("reasonrl.stages.sft", "SFTConfig",
                     "supervised fine-tuning on conversations or prompt/response pairs (loss on assistant tokens)",
                     {"model": "model"}),
    "rl": StageKind("reasonrl.stages.rl", "RLConfig",
                    "reinforcement learning with rule-based rewards (GRPO, Dr. GRPO, DAPO, GSPO, CISPO, PPO)",
                    {"model": "model"}),
    "rejection": StageKind("reasonrl.stages.rejection", "RejectionConfig",
                           "rejection sampling: keep a model's correct, readable answers to a task as SFT data",
                           {"dataset": "dataset.jsonl", "acceptance": "acceptance.json"}),
    "distill": StageKind("reasonrl.stages.distill", "DistillConfig",
                         "distillation: a teacher's filtered traces on a task, then SFT of a smaller student on them",
                         {"model": "student/model", "dataset": "traces/dataset.jsonl"}),
    "eval": StageKind("reasonrl.stages.evaluate", "EvalConfig",
                      "benchmark evaluation: pass@1 over k samples, pass@k, cons@k, greedy, confidence intervals",
                      {"results": "eval_results.json", "samples": "samples.jsonl"}),
}
