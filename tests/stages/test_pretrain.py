"""`reasonrl pretrain`: run directory contents, resume after kill -9, what MTP learns."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.stages.conftest import REPO, TINY_PRETRAIN, run_cli

REGISTERED = {"step", "stage", "loss", "mtp_loss", "lr", "grad_norm", "moe/load_max_over_mean"}


def test_run_directory_is_complete_and_rerunnable(tmp_path, tiny_base):
    run = tiny_base.parent
    for name in ("config.yaml", "environment.json", "metrics.jsonl", "tokenizer/tokenizer.json", "model/config.json",
                 "model/model.safetensors", "model/tokenizer.json", "model/reasonrl.json"):
        assert (run / name).is_file(), name
    env = json.loads((run / "environment.json").read_text())
    assert env["torch"] == torch.__version__ and env["reasonrl"] and "git_commit" in env
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert REGISTERED <= set(rows[0]) and rows[0]["stage"] == "pretrain"
    # the resolved config re-runs as is (here: already complete, so it only rewrites the model)
    again = run_cli("pretrain", str(run / "config.yaml"), f"run.dir={tmp_path}", "run.name=again", "budget.steps=1")
    assert again.returncode == 0 and (tmp_path / "again" / "model" / "model.safetensors").is_file()


def test_loads_in_transformers(tiny_base):
    from transformers import AutoModelForCausalLM

    from reasonrl.model import from_pretrained

    ours = from_pretrained(tiny_base).eval()
    hf = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32).eval()
    ids = torch.randint(0, ours.config.vocab_size, (2, 12))
    with torch.no_grad():
        assert torch.allclose(ours(ids), hf(ids).logits, atol=1e-4)


def _weights(path):
    return load_file(str(path / "model.safetensors"))


@pytest.mark.slow
def test_kill_9_resume_gives_identical_weights(tmp_path):
    args = (*TINY_PRETRAIN, f"run.dir={tmp_path}", "budget.steps=16", "eval.every=8", "checkpoint.every=4")
    run_cli("pretrain", *args, "run.name=straight")
    cmd = [sys.executable, "-m", "reasonrl", "pretrain", *args, "run.name=killed", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 300
    while not any(p.name == "step-00000008" for p in ckpts.glob("step-*")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "model").exists(), "the run finished before it was killed"
    run_cli("pretrain", *args, "run.name=killed")
    a, b = _weights(tmp_path / "straight" / "model"), _weights(tmp_path / "killed" / "model")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    steps = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 17)), "every step is logged exactly once across the kill and the resume"


@pytest.mark.slow
def test_mtp_loss_falls_and_mtp_beats_unigram(tmp_path):
    run_cli("pretrain", *TINY_PRETRAIN, f"run.dir={tmp_path}", "run.name=mtp", "budget.steps=150", "eval.every=0",
            "optim.lr=3e-3", "data.n_examples=2000")
    rows = [json.loads(line) for line in (tmp_path / "mtp" / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[0]["mtp_loss"], sum(r["mtp_loss"] for r in rows[-10:]) / 10
    assert last < 0.6 * first, (first, last)
    acc, unigram = mtp_accuracy(tmp_path / "mtp")
    assert acc > unigram + 0.1, (acc, unigram)


def mtp_accuracy(run):
    """Next-next-token accuracy of the MTP head vs always predicting the most frequent token."""
    from reasonrl.data_utils import encode_documents, pack_windows
    from reasonrl.model import from_pretrained
    from reasonrl.tasks.prompts import build_prompt
    from reasonrl.tasks import get_task, r1_completion
    from reasonrl.tokenizer import load_tokenizer

    model, tok = from_pretrained(run / "model").eval(), load_tokenizer(run / "model")
    test = get_task("arithmetic", digits=2).examples("test", 64, seed=1)
    windows = pack_windows(encode_documents(tok, [(build_prompt(e, tok, "r1_short"), r1_completion(e)) for e in test]), 64)
    with torch.no_grad():
        out = model.forward_train(windows[:, :-1])
    pred = out.mtp_logits[0].argmax(-1)  # row t predicts token t + 2
    target = windows[:, 2:2 + pred.shape[1]]
    unigram = torch.bincount(target.flatten()).max().item() / target.numel()
    return (pred == target).float().mean().item(), unigram


def test_a_styled_corpus_with_a_tag_minority_pretrains(tmp_path):
    options = ("data.options={digits: 2, corpus_error_rate: 0.7, surface_forms: 3, foreign_step_rate: 0.1, "
               "self_check_rate: 0.3, verify_rate: 0.2}")
    run_cli("pretrain", *TINY_PRETRAIN, options, "data.tag_fraction=0.3", f"run.dir={tmp_path}", "run.name=styled",
            "budget.steps=2", "eval.every=0", "checkpoint.every=100")
    assert (tmp_path / "styled" / "model" / "model.safetensors").is_file()
    assert "tag_fraction: 0.3" in (tmp_path / "styled" / "config.yaml").read_text()
    plain = run_cli("pretrain", *TINY_PRETRAIN, "data.template=plain", "data.tag_fraction=0.5", f"run.dir={tmp_path}",
                    "run.name=plain", "budget.steps=1", check=False)
    assert plain.returncode != 0 and "tag_fraction" in plain.stderr
