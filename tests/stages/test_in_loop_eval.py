"""In-loop evaluation on dev with a fixed seed, and the per-step process metrics (no model needed)."""

import dataclasses
from types import SimpleNamespace

import torch

from reasonrl.eval.accuracy import AccuracyResult
from reasonrl.stages import pretrain, rl
from reasonrl.tasks import get_task
from reasonrl.tasks.arithmetic import problem_key
from reasonrl.tasks.base import split_of

RIGHT = "<think>7+8=15 write 5 carry 1, 4+3+1=8 write 8</think><answer>85</answer>"
LUCKY = "<think>7+8=15 write 5 carry 1, 4+3=8 write 8</think><answer>85</answer>"
VAGUE = "<think>easy</think><answer>85</answer>"
EX = {"id": "arithmetic-47+38", "answer": "85",
      "meta": {"operands": [47, 38], "ops": "+", "step_check": "arithmetic"}}


class Run:
    def __init__(self):
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


def _rl_program(monkeypatch, seed):
    monkeypatch.setattr(rl, "build_context", lambda *args: None)
    cfg = rl.RLConfig()
    cfg.run = dataclasses.replace(cfg.run, seed=seed, threads=1)
    cfg.data = dataclasses.replace(cfg.data, n_train=20)
    cfg.eval = dataclasses.replace(cfg.eval, n_examples=25)
    return rl.RLProgram(cfg, Run(), None)


def test_rl_evaluates_on_dev_the_same_set_for_every_run_seed(monkeypatch):
    first, second = _rl_program(monkeypatch, 1), _rl_program(monkeypatch, 2)
    assert first.eval_examples == second.eval_examples and len(first.eval_examples) == 25
    assert all(split_of(problem_key(e["meta"]["operands"], "+")) == "dev" for e in first.eval_examples)
    assert first.ctx is None  # nothing else was built


def test_pretrain_evaluates_on_dev_the_same_set_for_every_run_seed(monkeypatch):
    import reasonrl.data_utils

    monkeypatch.setattr(reasonrl.data_utils, "ensure_tokenizer", lambda *args: None)
    sets = []
    for seed in (1, 2):
        cfg = pretrain.PretrainConfig()
        cfg.run = dataclasses.replace(cfg.run, seed=seed)
        cfg.data = dataclasses.replace(cfg.data, n_examples=20)
        cfg.eval = dataclasses.replace(cfg.eval, n_examples=25)
        run = SimpleNamespace(path=lambda name: None, warn=lambda message: None)
        task, _, dev, _ = pretrain._prepare_data(cfg, run)
        sets.append(dev)
    assert sets[0] == sets[1] and all(split_of(problem_key(e["meta"]["operands"], "+")) == "dev" for e in sets[0])


def test_a_task_without_dev_falls_back_to_test_with_a_warning():
    run = Run()
    examples = rl.in_loop_eval_set(get_task("tests.stages.toy:echo_task"), 4, run)
    assert len(examples) == 4 and "has no dev split" in run.warnings[0]


def test_in_loop_metrics_add_process_rates_for_a_task_with_a_step_check():
    result = AccuracyResult(accuracy=2 / 3, correct=[[1.0], [1.0], [0.0]], texts=[[RIGHT], [LUCKY], [VAGUE]])
    metrics = rl.in_loop_eval_metrics(get_task("arithmetic"), [EX, EX, EX], result)
    assert metrics == {"eval/accuracy": 2 / 3, "eval/arithmetic/pass@1": 2 / 3,
                       "eval/cot_valid_rate": 0.5, "eval/right_answer_wrong_reasoning": 0.5}
    assert set(rl.in_loop_eval_metrics(get_task("countdown"), [EX] * 3, result)) == {
        "eval/accuracy", "eval/countdown/pass@1"}


class Batch(SimpleNamespace):
    """The RolloutBatch fields step_metrics reads."""

    def __init__(self, texts, accuracy):
        n = len(texts)
        super().__init__(components={"accuracy": accuracy}, reward_metrics={}, rewards=torch.tensor(accuracy),
                         lengths=[10] * n, truncated=[False] * n, texts=texts, examples=[EX] * n,
                         gen_tokens_per_s=1.0, timings={})

    def __len__(self):
        return len(self.texts)


def test_step_metrics_report_process_rates_of_the_rollouts():
    batch = Batch([RIGHT, LUCKY, LUCKY, VAGUE], [1.0, 1.0, 1.0, 0.0])
    metrics = rl.step_metrics(batch, {}, "", get_task("arithmetic").step_check)
    assert metrics["process/cot_valid_rate"] == 1 / 3
    assert metrics["process/right_answer_wrong_reasoning"] == 2 / 3
    assert not any(key.startswith("process/") for key in rl.step_metrics(batch, {}, ""))
