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
    """Paired rounds: each round times one matmul-ceiling probe and one step of each peer (order
    alternating), so a burst of load from other processes hits both peers of that round."""
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
    for mod, fn in peers.values():  # warm-up
        _step(fn, list(mod.parameters()), ids)
    times, ceilings = {k: [] for k in peers}, []
    for r in range(rounds):
        ceilings.append(matmul_gflops(reps=3))
        for name in (list(peers) if r % 2 == 0 else list(peers)[::-1]):
            mod, fn = peers[name]
            t = time.perf_counter()
            _step(fn, list(mod.parameters()), ids)
            times[name].append(time.perf_counter() - t)
    flops = train_flops(ours, B, T)
    ceiling = statistics.median(ceilings)
    res = {}
    for k, v in times.items():
        best = min(v)  # least-disturbed step
        res[k] = dict(step_s_median=statistics.median(v), step_s_best=best, tokens_per_s_best=B * T / best,
                      gflops_best=flops / best / 1e9, mfu_best=flops / best / 1e9 / max(ceilings))
    ratios = [h / o for h, o in zip(times["transformers"], times["reasonrl"])]
    res.update(speedup_median_of_rounds=statistics.median(ratios), speedup_best=min(times["transformers"]) / min(times["reasonrl"]),
               per_round_speedup=ratios, matmul_gflops_per_round=ceilings, matmul_gflops_median=ceiling,
               flops_per_step=flops, batch=B, seq=T, config="small preset, no MTP")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = {"threads": args.threads, "torch": torch.__version__, "cache": cache_sizes()}
    res["throughput"] = throughput(args.batch, args.seq, args.rounds)
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
