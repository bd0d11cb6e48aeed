"""Model benchmarks: MLA cache size, training throughput vs transformers, MFU.

    PYTHONPATH=. python benchmarks/bench_model.py [--threads 2] [--rounds 3] [--json out.json]

Peers run interleaved in one process (the machine may be shared), so compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from reasonrl.model import create

BENCH_CONFIG = dict(  # the `small` preset, minus MTP (transformers has none to compare with)
    num_nextn_predict_layers=0,
)


def matmul_gflops(n: int = 1024, reps: int = 10) -> float:
    """fp32 matmul ceiling of this machine at the current thread count (best of reps)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def cache_sizes() -> dict:
    """Bytes per token per layer from the actual cache tensors, vs MHA with the same heads/dims."""
    out = {}
    for preset in ("tiny", "small"):
        m = create(preset, seed=0)
        c, cfg = m.make_cache(4, 64), m.config
        measured = (c.kv.nbytes + c.pe.nbytes) / (cfg.num_hidden_layers * 4 * 64)
        mha = 2 * cfg.num_attention_heads * cfg.qk_nope_head_dim * c.kv.element_size()
        out[preset] = dict(mla_bytes=measured, mha_bytes=mha, ratio=measured / mha)
    cfg = create("deepseek-v3", device="meta").config
    mla, mha = cfg.kv_lora_rank + cfg.qk_rope_head_dim, 2 * cfg.num_attention_heads * cfg.qk_nope_head_dim
    out["deepseek-v3 (formula, elements)"] = dict(mla=mla, mha=mha, ratio=mla / mha,
                                                  per_token_all_layers_bf16_kib=mla * 61 * 2 / 1024)
    return out


def train_flops(m, B: int, T: int) -> float:
    """6 * activated non-embedding params * tokens + causal attention (QK^T and PV, fwd + bwd)."""
    cfg = m.config
    active = m.num_parameters(mtp=False, activated=True) - cfg.vocab_size * cfg.hidden_size  # input embedding is a lookup
    attn = 6 * cfg.num_hidden_layers * cfg.num_attention_heads * (cfg.qk_head_dim + cfg.v_head_dim) * T * T / 2 * B
    return 6 * active * B * T + attn


def _step(fn, params, ids):
    logits = fn(ids)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    loss.backward()
    for p in params:
        p.grad = None


def throughput(B: int, T: int, rounds: int) -> dict:
    import transformers

    transformers.logging.set_verbosity_error()
    ours = create("small", seed=0, **BENCH_CONFIG).train()
    with tempfile.TemporaryDirectory() as d:
        ours.save_pretrained(d)
        hf = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).train()
    ids = torch.randint(0, ours.config.vocab_size, (B, T))
    with torch.no_grad():
        assert (ours(ids[:2]) - hf(ids[:2]).logits).abs().max() < 1e-4, "peers must compute the same function"
    peers = {"reasonrl": (ours, ours.__call__), "transformers": (hf, lambda x: hf(x).logits)}
    times = {k: [] for k in peers}
    for name, (mod, fn) in peers.items():  # warm-up
        _step(fn, list(mod.parameters()), ids)
    for _ in range(rounds):
        for name, (mod, fn) in peers.items():
            t = time.perf_counter()
            _step(fn, list(mod.parameters()), ids)
            times[name].append(time.perf_counter() - t)
    flops = train_flops(ours, B, T)
    res = {k: dict(step_s=statistics.median(v), tokens_per_s=B * T / statistics.median(v),
                   gflops=flops / statistics.median(v) / 1e9) for k, v in times.items()}
    res["speedup"] = res["transformers"]["step_s"] / res["reasonrl"]["step_s"]
    res["per_round_ratio"] = [h / o for h, o in zip(times["transformers"], times["reasonrl"])]
    res["flops_per_step"] = flops
    return res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = {"threads": args.threads, "torch": torch.__version__, "cache": cache_sizes()}
    ceiling_before = matmul_gflops()
    res["throughput"] = throughput(args.batch, args.seq, args.rounds)
    res["matmul_gflops"] = max(ceiling_before, matmul_gflops())
    for k in ("reasonrl", "transformers"):
        res["throughput"][k]["mfu"] = res["throughput"][k]["gflops"] / res["matmul_gflops"]
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
