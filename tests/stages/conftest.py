import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args, timeout=600, check=True):
    out = subprocess.run([sys.executable, "-m", "reasonrl", *args, "--quiet"], capture_output=True, text=True,
                         cwd=REPO, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"reasonrl {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out


# a pretraining run small enough for the fast tier (seconds), used by several tests
TINY_PRETRAIN = ("model.overrides={hidden_size: 32, num_hidden_layers: 2, q_lora_rank: 16, kv_lora_rank: 16, "
                 "moe_intermediate_size: 32, intermediate_size: 64, n_routed_experts: 4, n_group: 1, topk_group: 1}",
                 "data.n_examples=400", "data.seq_len=64", "data.batch_size=8", "data.template=r1_short",
                 "tokenizer.vocab_size=300", "eval.n_examples=8", "eval.max_new_tokens=24", "run.threads=1")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A (barely) pretrained tiny native model directory."""
    root = tmp_path_factory.mktemp("base")
    run_cli("pretrain", *TINY_PRETRAIN, f"run.dir={root}", "run.name=base", "budget.steps=6", "eval.every=0",
            "checkpoint.every=100")
    return root / "base" / "model"
