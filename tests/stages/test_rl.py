"""`reasonrl rl`: metrics and run directory, transformers policies, learning, kill -9 resume."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from reasonrl.tasks.prompts import R1_SYSTEM
from tests.stages.conftest import REPO, run_cli

TOY = ("data.task=tests.stages.toy:echo_task", "rewards={tests.stages.toy:digit_fraction: 1.0}",
       "rl.prompts_per_step=4", "rl.group_size=4", "rl.max_new_tokens=12", "eval.n_examples=4", "run.threads=1",
       "rl.stop_strings=[]", "data.n_train=64")

REGISTERED = {"step", "stage", "step_time_s", "reward/mean", "reward/std", "reward/tests.stages.toy:digit_fraction",
              "kl", "clip_frac/low", "clip_frac/high", "entropy", "length/mean", "length/max", "truncated_frac",
              "zero_std_frac", "reflection_rate", "lang_mix_rate", "lr", "grad_norm", "loss",
              "moe/load_max_over_mean", "tokens_per_s/gen", "tokens_per_s/train"}


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_grpo_run_writes_registered_metrics_samples_and_checkpoints(tmp_path, tiny_base):
    run_cli("rl", *TOY, f"model.path={tiny_base}", f"run.dir={tmp_path}", "run.name=g", "rl.steps=2",
            "rl.beta=0.04", "checkpoint.every=1", "samples_every=1")
    run = tmp_path / "g"
    rows = metrics(run)
    assert [r["step"] for r in rows if "reward/mean" in r] == [1, 2]
    assert REGISTERED <= set(rows[0]), REGISTERED - set(rows[0])
    assert rows[-1]["eval/accuracy"] >= 0.0
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert samples and samples[0]["prompt"].startswith("User: Say numbers") and "completion" in samples[0]
    assert (run / "checkpoints" / "step-00000002" / "COMPLETE").is_file()
    card = json.loads((run / "model" / "reasonrl.json").read_text())
    assert card["prompt_format"] == "r1_short" and card["stop_strings"] == []
    # the checkpoint carries the same card as the final model: the format travels with the weights
    assert json.loads((run / "checkpoints" / "step-00000002" / "reasonrl.json").read_text()) == card
    assert (run / "checkpoints" / "step-00000002" / "generation_config.json").is_file()


def test_checkpoint_and_model_dir_score_the_same_in_compare(tmp_path, tiny_base):
    run_cli("rl", *TOY, f"model.path={tiny_base}", f"run.dir={tmp_path}", "run.name=c", "rl.steps=1",
            "samples_every=0")
    run = tmp_path / "c"
    ckpt = run / "checkpoints" / "step-00000001"
    out = tmp_path / "cmp.json"
    run_cli("compare", str(ckpt), str(run / "model"), "--task", "tests.stages.toy:echo_task", "--n", "6", "--k", "2",
            "--max-new-tokens", "8", "--out", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["greedy"] == rows[1]["greedy"] and rows[0]["pass@1"] == rows[1]["pass@1"]
    from reasonrl.model import load_policy_bundle

    a, b = load_policy_bundle(str(ckpt)), load_policy_bundle(str(run / "model"))
    example = {"prompt": "Say numbers 3"}
    # before checkpoints carried the card, `auto` rendered r1_zero for the checkpoint (0% vs 55%)
    assert a.prompt_spec() == b.prompt_spec() and a.prompt_spec().prompt_format == "r1_short"
    assert a.prompt_spec().render(example, a.tokenizer) == b.prompt_spec().render(example, b.tokenizer)


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory, tiny_base):
    """A tiny Qwen2 saved by transformers, with the base model's tokenizer."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from reasonrl.tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_base)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=1, intermediate_size=64, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("qwen") / "qwen"
    Qwen2ForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_transformers_policy_uses_its_own_tokenizer_and_chat_template(tmp_path, qwen_dir):
    from reasonrl.tokenizer import load_tokenizer

    tok = load_tokenizer(qwen_dir)
    run_cli("rl", *TOY, f"model.path={qwen_dir}", f"run.dir={tmp_path}", "run.name=q", "rl.steps=1",
            "samples_every=1")
    samples = [json.loads(line) for line in (tmp_path / "q" / "samples.jsonl").read_text().splitlines()]
    question = "Say numbers " + samples[0]["id"].split("-")[1]
    expected = tok.apply_chat_template([{"role": "system", "content": R1_SYSTEM}, {"role": "user", "content": question}],
                                       tokenize=False, add_generation_prompt=True)
    assert samples[0]["prompt"].startswith(R1_SYSTEM) and samples[0]["prompt"] == expected
    assert (tmp_path / "q" / "model" / "config.json").is_file()


def test_ppo_on_a_transformers_policy_saves_its_critic(tmp_path, qwen_dir):
    run_cli("rl", *TOY, f"model.path={qwen_dir}", f"run.dir={tmp_path}", "run.name=p", "rl.steps=1",
            "rl.algorithm=ppo", "rl.beta=0.04")
    assert (tmp_path / "p" / "model" / "critic.safetensors").is_file()
    assert "value_loss" in metrics(tmp_path / "p")[0]


def test_bad_inputs_fail_with_one_line(tmp_path, tiny_base):
    out = run_cli("rl", f"model.path={tmp_path / 'missing'}", f"run.dir={tmp_path}", check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = run_cli("rl", f"model.path={tiny_base}", "data.task=nosuchtask", f"run.dir={tmp_path}", check=False)
    assert out.returncode == 2 and "unknown task 'nosuchtask'" in out.stderr
    out = run_cli("rl", f"model.path={tiny_base}", "optim.activation_checkpointing=true", "rl.share_prompt=true",
                  f"run.dir={tmp_path}", "run.name=ckpt", check=False)
    assert out.returncode == 2 and "does not combine with rl.share_prompt" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "ckpt").exists()


def _reward_curve(run):
    return [r["reward/mean"] for r in metrics(run) if "reward/mean" in r]


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["grpo", "ppo"])
def test_reward_rises(tmp_path, tiny_base, algorithm):
    run_cli("rl", *TOY, f"model.path={tiny_base}", f"run.dir={tmp_path}", "run.name=learn", "rl.steps=40",
            "rl.prompts_per_step=8", "rl.group_size=8", "optim.lr=3e-3", f"rl.algorithm={algorithm}",
            "checkpoint.every=100", "samples_every=0")
    curve = _reward_curve(tmp_path / "learn")
    start, end = sum(curve[:5]) / 5, sum(curve[-5:]) / 5
    # digits are ~2% of a random model's characters; the policy must learn to emit far more
    assert end > max(3 * start, start + 0.1), f"{algorithm}: reward {start:.3f} -> {end:.3f}"


@pytest.mark.slow
def test_kill_9_resume_gives_identical_weights(tmp_path, tiny_base):
    args = (*TOY, f"model.path={tiny_base}", f"run.dir={tmp_path}", "rl.steps=8", "checkpoint.every=2",
            "rl.beta=0.04", "rl.ref_reset_every=3", "optim.lr=1e-3", "samples_every=0")
    run_cli("rl", *args, "run.name=straight")
    cmd = [sys.executable, "-m", "reasonrl", "rl", *args, "run.name=killed", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 300
    while not (ckpts / "step-00000004" / "COMPLETE").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "model").exists(), "the run finished before it was killed"
    run_cli("rl", *args, "run.name=killed")
    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "model" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    assert _reward_curve(tmp_path / "straight") == _reward_curve(tmp_path / "killed")


def test_ctrl_c_writes_a_checkpoint_and_exits_cleanly(tmp_path, tiny_base):
    args = (*TOY, f"model.path={tiny_base}", f"run.dir={tmp_path}", "run.name=int", "rl.steps=500",
            "checkpoint.every=1000", "samples_every=0")
    proc = subprocess.Popen([sys.executable, "-m", "reasonrl", "rl", *args, "--quiet"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics_file = tmp_path / "int" / "metrics.jsonl"
    deadline = time.time() + 300
    while not (metrics_file.exists() and metrics_file.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    saved = sorted((tmp_path / "int" / "checkpoints").glob("step-*/COMPLETE"))
    assert saved, "no checkpoint written on Ctrl-C"
    step = int(saved[-1].parent.name.split("-")[1])
    logged = [r["step"] for r in metrics(tmp_path / "int") if "reward/mean" in r]
    assert step >= 2 and max(logged) in (step, step + 1)
