"""LoRA on a transformers policy: a 2-step GRPO run trains only the adapters, checkpoints hold only
them, and the final model/ is the merged model that plain transformers loads and generates with."""

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.stages.conftest import run_cli
from tests.stages.test_rl import TOY, qwen_dir  # noqa: F401 (fixture)

pytest.importorskip("peft")

LORA = "model.lora={r: 4, alpha: 8, target_modules: [q_proj, v_proj]}"


def test_two_step_grpo_changes_only_the_adapters_and_exports_a_merged_model(tmp_path, qwen_dir):  # noqa: F811
    run_cli("rl", *TOY, f"model.path={qwen_dir}", LORA, f"run.dir={tmp_path}", "run.name=l", "rl.steps=2",
            "checkpoint.every=1", "optim.lr=0.05", "samples_every=0", "eval.n_examples=2")
    run = tmp_path / "l"
    ckpt = run / "checkpoints" / "step-00000002"
    adapters = load_file(ckpt / "adapter_model.safetensors")
    assert adapters and all("lora_" in k for k in adapters)
    assert not (ckpt / "model.safetensors").exists(), "a LoRA checkpoint holds the adapters only"
    assert any(v.abs().max() > 0 for k, v in adapters.items() if "lora_B" in k), "the adapters never trained"
    assert json.loads((ckpt / "adapter_config.json").read_text())["r"] == 4

    base, merged = load_file(qwen_dir / "model.safetensors"), load_file(run / "model" / "model.safetensors")
    assert set(merged) == set(base)
    changed = {k for k in base if not torch.equal(base[k], merged[k])}
    assert changed and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed), changed

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(run / "model")
    out = model.generate(torch.tensor([[3, 4, 5]]), max_new_tokens=3, do_sample=False)
    assert out.shape == (1, 6)


def test_lora_keys_are_checked_when_the_config_loads(tmp_path, qwen_dir):  # noqa: F811
    out = run_cli("rl", f"model.path={qwen_dir}", "model.lora={rank: 4}", f"run.dir={tmp_path}", "run.name=b",
                  check=False)
    assert out.returncode == 2 and "model.lora" in out.stderr and "rank" in out.stderr, out.stderr
    assert not (tmp_path / "b").exists()
