"""Bad input: one line on stderr naming the key (or file), the value and what is allowed, exit 2,
and nothing written, not even into an existing run directory of the same name."""

import hashlib
from pathlib import Path

import pytest
import torch

from reasonrl.cli import main, stage_config_class
from reasonrl.config import ConfigError, dump_yaml, load_config

# the tiny fast-tier sizes of tests/stages/conftest.py: a bad input must fail before they matter
PRETRAIN = ("model.overrides={hidden_size: 32, num_hidden_layers: 2, q_lora_rank: 16, kv_lora_rank: 16, "
            "moe_intermediate_size: 32, intermediate_size: 64, n_routed_experts: 4, n_group: 1, topk_group: 1}",
            "data.n_examples=50", "data.seq_len=32", "data.batch_size=2", "tokenizer.vocab_size=300",
            "budget.steps=1", "eval.every=0", "run.threads=1")
RL = ("data.task=tests.stages.toy:echo_task", "rewards={tests.stages.toy:digit_fraction: 1.0}", "rl.steps=1",
      "rl.prompts_per_step=2", "rl.group_size=2", "rl.max_new_tokens=4", "eval.n_examples=2", "run.threads=1",
      "data.n_train=8", "data.options={}", "model.path={tmp}/no-model-needed")

CASES = [  # (stage, override, what the one line must contain)
    ("pretrain", "data.batch_size=0", ["data.batch_size", ">= 1", "got 0"]),
    ("pretrain", "data.batch_size=-4", ["data.batch_size", ">= 1", "got -4"]),
    ("pretrain", "data.seq_len=0", ["data.seq_len", ">= 2", "got 0"]),
    ("pretrain", "data.n_examples=0", ["data.n_examples", ">= 1", "got 0"]),
    ("pretrain", "checkpoint.every=0", ["checkpoint.every", ">= 1", "got 0"]),
    ("pretrain", "checkpoint.keep_last=-1", ["checkpoint.keep_last", ">= 0", "got -1"]),
    ("pretrain", "run.threads=0", ["run.threads", ">= 1", "got 0"]),
    ("pretrain", "budget.steps=0", ["budget.steps", ">= 1", "got 0"]),
    ("pretrain", "budget.steps=-2", ["budget.steps", ">= 1", "got -2"]),
    ("pretrain", "optim.betas=[0.9]", ["optim.betas", "exactly 2 values", "[0.9]"]),
    ("pretrain", "model.overrides={n_routed_experts: 3}", ["model.overrides", "n_routed_experts", "divisible"]),
    ("pretrain", "model.overrides={hidden_size: 0}", ["model.overrides", "hidden_size", "positive", "0"]),
    ("pretrain", "model.overrides={hiden_size: 32}", ["model.overrides", "did you mean 'hidden_size'"]),
    ("pretrain", "model.overrides={vocab_size: 99}", ["model.overrides", "from the tokenizer"]),
    ("pretrain", "tokenizer.path={tmp}/no-such-tokenizer", ["tokenizer.path", "no-such-tokenizer"]),
    ("rl", "data.n_train=0", ["data.n_train", ">= 1", "got 0"]),
    ("rl", "rl.group_size=0", ["rl.group_size", ">= 1", "got 0"]),
    ("rl", "rl.prompts_per_step=-1", ["rl.prompts_per_step", ">= 1", "got -1"]),
    ("rl", "rl.mu=0", ["rl.mu", ">= 1", "got 0"]),
    ("rl", "rl.steps=0", ["rl.steps", ">= 1", "got 0"]),
    ("rl", "checkpoint.every=-5", ["checkpoint.every", ">= 1", "got -5"]),
    ("rl", "rl.eps_low=-0.1", ["rl.eps_low", ">= 0", "-0.1"]),
    ("rl", "rl.gamma=-0.5", ["rl.gamma", ">= 0", "-0.5"]),
    ("rl", "reward_timeout_s=-1", ["reward_timeout_s", "> 0", "-1"]),
    ("rl", "rl.temperature=nan", ["rl.temperature", "finite", "nan"]),
    ("rl", "model.path={tmp}/corrupt-model", ["corrupt-model/config.json"]),
    ("rl", "data.task={tmp}/binary.jsonl", ["binary.jsonl"]),
]


def _inputs(tmp: Path) -> None:
    """The bad files the cases name: a model directory whose config.json is torn, a binary JSONL."""
    model = tmp / "corrupt-model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "deepseek_v3", "hidden_si')
    (model / "model.safetensors").write_bytes(b"\0" * 64)
    (tmp / "binary.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe" * 8)


def _existing_run(runs: Path, stage: str, args: list[str]) -> None:
    """A run directory as a resumable earlier run of the same command left it (so the run gets past
    the config-change check to the bad input); a config that does not load records the base one."""
    cls = stage_config_class(stage)
    try:
        cfg = load_config(cls, None, args)
    except ConfigError:
        cfg = load_config(cls, None, args[:-1])
    (runs / "r").mkdir(parents=True)
    (runs / "r" / "config.yaml").write_text("# an earlier run\n" + dump_yaml(cfg))
    (runs / "r" / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("stage, override, expected", CASES, ids=[c[1].split("=")[0] + "=" + c[1].split("=", 1)[1][:12]
                                                                  for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, stage, override, expected):
    _inputs(tmp_path)
    runs = tmp_path / "runs"
    base = [a.replace("{tmp}", str(tmp_path)) for a in (PRETRAIN if stage == "pretrain" else RL)]
    args = [*base, f"run.dir={runs}", "run.name=r", override.replace("{tmp}", str(tmp_path))]
    _existing_run(runs, stage, args)
    before = _snapshot(runs)
    threads = torch.get_num_threads()
    try:
        code = main([stage, *args, "--quiet"])
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert all(part in lines[0] for part in expected), (expected, lines[0])
    if "{tmp}" not in override:  # a config value: the line quotes the override that set it
        assert f"'{override}'" in lines[0], lines[0]
    assert _snapshot(runs) == before, "bad input wrote into the run directory"
