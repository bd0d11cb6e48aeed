"""Optional vLLM backend behind `generate(..., backend="vllm" | engine=vllm.LLM(...))` (extra: [vllm]).

vLLM samples the tokens; the Rollouts contract is kept here:
  - rows prompt-major (request order, then each request's samples by their index);
  - log-probs are recomputed by one teacher-forced forward of `model` (when given), so they are
    exactly log_softmax(logits / T) before top-k / top-p, as docs/design.md defines them. vLLM's own
    sampled-token log-probs are used only without a model (by default they are untempered: see
    vLLM's `logprobs_mode`); `stats["logprobs_source"]` says which;
  - weights: the engine serves whatever it was loaded with; keeping it in sync with a policy that is
    being trained is the caller's job.
Status: contract-tested on CPU against a fake engine; not yet verified on GPU hardware.
"""

from __future__ import annotations

import time

import torch

from reasonrl.sampler.batching import assemble


def import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise ImportError(
            "backend='vllm' needs vLLM (CUDA machines only): pip install 'reasonrl[vllm]', "
            "or use the default backend='torch'"
        ) from e
    return vllm


def sampling_params(vllm, *, n, max_new_tokens, params, stop_token_ids, stop_strings, ignore_eos, seed):
    return vllm.SamplingParams(
        n=n,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k if params.top_k > 0 else -1,
        max_tokens=max_new_tokens,
        stop_token_ids=list(stop_token_ids or []),
        stop=list(stop_strings or []),
        include_stop_str_in_output=True,  # the row ends after the token that completes the string
        ignore_eos=ignore_eos,
        seed=seed,
        logprobs=0,  # the sampled token's log-prob only
    )


def generate_vllm(engine, prompt_ids, *, model=None, n, max_new_tokens, params, stop_token_ids=None,
                  stop_strings=None, ignore_eos=False, seed=None, tokenizer=None):
    """Rollouts from a vLLM engine (`vllm.LLM`); `engine=None` builds one when `model` is a path."""
    vllm = import_vllm()
    if engine is None:
        if not isinstance(model, str):
            raise ValueError("backend='vllm' needs engine=vllm.LLM(...) or a model path to load")
        engine, model = vllm.LLM(model=model), None
    sp = sampling_params(vllm, n=n, max_new_tokens=max_new_tokens, params=params, stop_token_ids=stop_token_ids,
                         stop_strings=stop_strings, ignore_eos=ignore_eos, seed=seed)
    start = time.perf_counter()
    results = engine.generate([{"prompt_token_ids": list(p)} for p in prompt_ids], sp, use_tqdm=False)
    completions, logprobs, reasons, texts = _unpack(results, n)
    seconds = time.perf_counter() - start
    source = "vllm"
    if model is not None and not isinstance(model, str):
        logprobs = teacher_forced_logprobs(model, [p for p in prompt_ids for _ in range(n)], completions,
                                           params.temperature or 1.0)
        source = "policy"
    out = assemble(prompt_ids, n, completions, logprobs, reasons, tokenizer)
    if tokenizer is None:
        out.texts = texts
    tokens = sum(len(c) for c in completions)
    out.stats = {"new_tokens": tokens, "time_s": seconds, "tokens_per_s": tokens / max(seconds, 1e-9),
                 "logprobs_source": source}
    return out


def _unpack(results, n):
    completions, logprobs, reasons, texts = [], [], [], []
    for request in results:
        samples = sorted(request.outputs, key=lambda c: c.index)
        if len(samples) != n:
            raise RuntimeError(f"vLLM returned {len(samples)} samples for a request, expected {n}")
        for c in samples:
            ids = list(c.token_ids)
            completions.append(ids)
            reasons.append("stop" if c.finish_reason == "stop" else "length")
            texts.append(c.text)
            logprobs.append([_sampled_logprob(step, t) for step, t in zip(c.logprobs or [], ids)])
    return completions, logprobs, reasons, texts


def _sampled_logprob(step: dict, token: int) -> float:
    entry = step[token]
    return float(getattr(entry, "logprob", entry))


@torch.no_grad()
def teacher_forced_logprobs(model, prompts, completions, temperature: float, batch_size: int = 16):
    """log_softmax(logits / T) of each completion token under `model` (uncached, right-padded)."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(prompts), batch_size):
        rows = [list(p) + list(c) for p, c in zip(prompts[start:start + batch_size],
                                                 completions[start:start + batch_size])]
        ids = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        logp = torch.log_softmax(model(ids.to(device)).float() / temperature, -1)
        for i, (p, c) in enumerate(zip(prompts[start:start + batch_size], completions[start:start + batch_size])):
            if not c:
                out.append([])
                continue
            idx = torch.arange(len(p) - 1, len(p) + len(c) - 1, device=device)
            out.append(logp[i, idx].gather(-1, torch.tensor(c, device=device)[:, None])[:, 0].tolist())
    return out
