"""`reasonrl report` over hand-written run directories (no training), checked as HTML and, when
Chromium is installed, in a real headless browser."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reasonrl.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
EXPECTED_PLOTS = {"reward", "reward_verifiers", "accuracy", "kl", "entropy", "clip_frac", "length", "reflection",
                  "lang_mix", "format_errors", "batch_health", "process", "moe_balance", "phase_times"}


def rl_rows(n: int, algorithm: str, aha_at: int | None) -> list[dict]:
    rows = []
    for s in range(1, n + 1):
        up = aha_at is not None and s >= aha_at
        acc = 0.2 + (0.5 * (s - aha_at + 1) / (n - aha_at + 1) if up else 0.0)
        f = 1.0 if algorithm != "ppo" else 0.7  # the runs differ, so overlaid curves are told apart
        row = {"step": s, "stage": "rl", "step_time_s": 2.0, "reward/mean": 0.1 + acc, "reward/std": 0.3,
               "reward/accuracy": acc, "reward/format": 0.5 + 0.4 * s / n, "reward/accuracy/none_frac": 0.0,
               "accuracy": acc, "kl": 0.001 * s, "clip_frac/low": 0.01, "clip_frac/high": 0.02 + 0.001 * s * f,
               "entropy": 1.5 - 0.02 * s * f, "length/mean": 40 + s * f, "length/max": 64, "length/correct": 45 + s,
               "length/incorrect": 38 + 0.5 * s, "truncated_frac": 0.05 * f, "zero_std_frac": 0.1,
               "reflection_rate": 0.35 if up else 0.05 + 0.01 * math.sin(s), "lang_mix_rate": 0.0, "lr": 1e-5,
               "grad_norm": 0.5, "loss": 0.01, "moe/load_max_over_mean": 1.3 - 0.005 * s * f,
               "tokens_per_s/gen": 900.0, "time/generate": 1.2 * f, "time/reward": 0.1, "time/ref": 0.2,
               "time/update": 0.5}
        if algorithm == "ppo":
            row.pop("kl")  # a key one run lacks: the other still plots
        if s % 10 == 0:
            row.update({"eval/accuracy": acc - 0.05, "eval/arithmetic/pass@1": acc - 0.05,
                        "process/cot_valid_rate": 0.6 + 0.004 * s * f})
        rows.append(row)
    return rows


def sample_rows(n: int) -> list[dict]:
    rows = []
    for s in range(1, n + 1, 10):
        for pid in ("p1", "p2"):
            for j in range(4):
                right = (pid == "p1" and j < 1 + s // 10) or (pid == "p2" and j == 0 and s > 20)
                text = (f"<think>add the digits{' wait, let me recheck' if s > 20 else ''}</think>"
                        f"<answer>{'7' if right else '8'}</answer>")
                if j == 3:
                    text = "<script>alert('x')</script> & no answer tag"  # must come out escaped
                rows.append({"step": s, "id": pid, "prompt": "What is 3 + 4?", "answer": "7", "completion": text,
                             "reward": 1.5 if right else 0.0,
                             "rewards": {"accuracy": 1.0 if right else 0.0, "format": 0.0 if j == 3 else 1.0}})
    return rows


EVAL_MODEL = {"task": "math500", "n_problems": 40, "k": 4, "pass@1": 0.45, "pass@k": {"4": 0.7, "2": 0.6},
              "cons@k": 0.55, "ci95": {"pass@1": [0.31, 0.59], "cons@k": [0.4, 0.7]},
              "breakdown": {"level": {"1": {"pass@1": 0.8, "n": 10}, "5": {"pass@1": 0.1, "n": 10}}},
              "model": "runs/grpo/model", "settings": {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 512}}


def eval_results() -> dict:
    rl = {**EVAL_MODEL, "name": "grpo", "greedy": 0.5, "mean_length": 120.5, "format_failure_rate": 0.05,
          "strict": {"pass@1": 0.4}, "process": {"cot_valid_rate": 0.7}}
    base = {**EVAL_MODEL, "name": "base", "model": "runs/base/model", "pass@1": 0.3, "greedy": 0.32,
            "breakdown": {"level": {"1": {"pass@1": 0.6, "n": 10}, "5": {"pass@1": 0.05, "n": 10}}},
            "mean_length": 80.0, "format_failure_rate": 0.2, "strict": {"pass@1": 0.25}, "process": None}
    return {**EVAL_MODEL, "models": [rl, base], "seeds": [0, 1],
            "diff": [{"model": "grpo", "against": "base", "pass@1": {"value": 0.15, "ci95": [0.05, 0.25]},
                      "cons@k": {"value": 0.02, "ci95": [-0.06, 0.1]}}]}


def make_run(root: Path, name: str, algorithm: str, aha_at: int | None, n: int = 60, with_eval: bool = False) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rl_rows(n, algorithm, aha_at))
                                     + '{"step": 61, "torn', encoding="utf-8")
    (d / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sample_rows(n)), encoding="utf-8")
    (d / "config.yaml").write_text(f"# resolved config\nrun: {{name: {name}, seed: 3}}\n"
                                   "model: {path: runs/base/model}\n"
                                   f"data: {{task: arithmetic}}\nrl: {{algorithm: {algorithm}, steps: {n}, "
                                   "group_size: 4, beta: 0.01}\noptim: {lr: 1.0e-05}\n", encoding="utf-8")
    (d / "environment.json").write_text(json.dumps({"reasonrl": "0.1.0", "python": "3.11.9", "torch": "2.13.0",
                                                    "git_commit": "0123456789abcdef", "time": "2026-12-01T10:00:00"}))
    if with_eval:
        (d / "eval_results.json").write_text(json.dumps(eval_results()))
    return d


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    a = make_run(root, "grpo", "grpo", aha_at=30, with_eval=True)
    b = make_run(root, "ppo", "ppo", aha_at=None)
    out = root / "report"
    assert main(["report", str(a), str(b), "--out", str(out), "--names", "GRPO,PPO", "--quiet"]) == 0
    return out


def test_report_files_and_sections(report):
    page = (report / "report.html").read_text(encoding="utf-8")
    assert {p.stem for p in (report / "plots").glob("*.png")} == EXPECTED_PLOTS
    assert set(re.findall(r"data-plot='([^']+)'", page)) == EXPECTED_PLOTS
    for uri in re.findall(r"src='data:image/png;base64,([^']+)'", page):
        assert base64.b64decode(uri).startswith(PNG)
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; no" in page
    assert "data-status='aha'" in page and "aha moment at step 30" in page
    assert "data-status='none'" in page  # PPO's reflection never rises
    assert "class=\"results\"" in page and "class=\"eval\"" in page and "class=\"diff\"" in page
    assert "45.0% [31.0, 59.0]" in page and "+15.0 [+5.0, +25.0] *" in page and "+2.0 [-6.0, +10.0]<" in page
    assert "80.0% (n=10)" in page and "pass@4" in page and "GRPO" in page and "PPO" in page


def test_report_defaults_to_the_first_run_dir_and_bad_input_exits_2(tmp_path, capsys):
    run = make_run(tmp_path, "one", "grpo", aha_at=None, n=12)
    assert main(["report", str(run), "--quiet"]) == 0
    assert (run / "report.html").is_file() and (run / "plots" / "reward.png").is_file()
    assert main(["report", str(run), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a run directory (no metrics.jsonl" in err[0]
    assert main(["report", str(run), "--names", "a,b"]) == 2


def test_evaluation_only_directory_renders_its_tables(tmp_path):
    d = tmp_path / "eval"
    d.mkdir()
    (d / "eval_results.json").write_text(json.dumps(EVAL_MODEL))  # one model, no `models`
    (d / "samples.jsonl").write_text(json.dumps({"model": "m", "id": "q1", "sample": 0, "seed": 0, "prompt": "?",
                                                 "completion": "<b>x</b>", "extracted": "x", "verdict": False,
                                                 "gold": "y"}) + "\n")
    assert main(["report", str(d), "--quiet"]) == 0
    page = (d / "report.html").read_text()
    assert '<table class="eval">' in page and "45.0% [31.0, 59.0]" in page and "data-plot" not in page
    assert "<b>x</b>" not in page and "data-status='no_data'" in page and "<td>eval</td>" in page


def test_pretrain_run_gets_its_loss_plot_only(tmp_path):
    d = tmp_path / "pre"
    d.mkdir()
    rows = [{"step": s, "stage": "pretrain", "loss": 5 - s / 10, "ce_loss": 4.5 - s / 10, "mtp_loss": 1 - s / 50,
             "lr": 1e-3, "grad_norm": 1.0} for s in range(1, 21)]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["report", str(d), "--quiet"]) == 0
    assert {p.stem for p in (d / "plots").glob("*.png")} == {"pretrain_loss"}
    assert "data-status='no_data'" in (d / "report.html").read_text()


# ------------------------------------------------------------------------------------------------
# in a real browser


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _browser(*flags: str, url: str) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-dev-shm-usage", "--hide-scrollbars", *flags, url]
    return subprocess.run(cmd, capture_output=True, timeout=120)


def test_report_renders_in_headless_chromium(report):
    if _chromium() is None:
        pytest.skip("chromium is not installed (scripts/setup.sh --test installs it when run as root)")
    url = (report / "report.html").resolve().as_uri()
    shot = report / "screenshot.png"
    out = _browser(f"--screenshot={shot}", "--window-size=1280,4000", url=url)
    assert shot.is_file(), out.stderr.decode(errors="replace")[-2000:]
    data = shot.read_bytes()
    assert data.startswith(PNG) and len(data) > 20_000
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 4000)
        colours = im.convert("RGB").resize((64, 200)).getcolors(maxcolors=100_000)
        assert colours is not None and len(colours) > 20  # not a blank page
    dom = _browser("--dump-dom", "--virtual-time-budget=5000", url=url).stdout.decode("utf-8", errors="replace")
    imgs = re.findall(r"<img\b[^>]*>", dom)
    plots = {re.search(r'data-plot="([^"]+)"', i).group(1) for i in imgs if "data-plot" in i}
    assert plots == EXPECTED_PLOTS
    assert all('data-loaded="1"' in i for i in imgs), [i[:80] + i[-60:] for i in imgs if 'data-loaded="1"' not in i]
    for i in imgs:
        assert base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', i).group(1)).startswith(PNG)
    assert '<table class="results">' in dom and '<table class="eval">' in dom and '<table class="diff">' in dom
