"""The sampler: prefill -> decode loop on token ids, with per-row stops and sampled-token log-probs.

Works with any policy of docs/design.md (`forward(ids, positions, cache)`, `make_cache`, `cache.keep`).
Prompts are prefilled once, right-padded, then each prompt's cache rows are fanned out to its `n`
samples; every row decodes at its own position; finished rows are dropped from the cache in batches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from reasonrl.sampler.batching import (
    LiveRows,
    Rollouts,
    StopChecker,
    assemble,
    encode_prompts,
    resolve_stop_ids,
    right_pad,
)
from reasonrl.sampler.seeds import RowGenerators, uniforms

# bound on the prefill logits tensor ([B, chunk, V] floats) so large vocabularies do not blow memory
PREFILL_LOGIT_ELEMENTS = 1 << 26


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0

    def __post_init__(self):
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError(f"bad sampling parameters: {self}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


# ---- token choice ---------------------------------------------------------------------------
def tempered_logprobs(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """log_softmax(logits / T) over the full vocabulary (T = 1 for greedy). [r, V] float32."""
    logits = logits.float()
    if not params.greedy and params.temperature != 1.0:
        logits = logits / params.temperature
    return torch.log_softmax(logits, dim=-1)


def filter_logprobs(logp: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """The distribution actually sampled from: top-k then top-p, unnormalised log-probs. [r, V]."""
    if params.top_k and params.top_k < logp.shape[-1]:
        kth = torch.topk(logp, params.top_k, dim=-1).values[:, -1:]
        logp = logp.masked_fill(logp < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_lp, order = torch.sort(logp, dim=-1, descending=True)
        probs = sorted_lp.softmax(-1)
        # drop a token when the tokens ranked above it already reach top_p (the top one always stays)
        drop_sorted = probs.cumsum(-1) - probs >= params.top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logp = logp.masked_fill(drop, float("-inf"))
    return logp


def draw(filtered: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row from log-probs that may be unnormalised or -inf (filtered). [r]."""
    return draw_probs(filtered.exp(), generator)


def draw_probs(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Inverse-CDF sampling from unnormalised probabilities [r, V]: one uniform per row instead of
    one per vocabulary entry, which is what a Gumbel / exponential race costs."""
    cdf = probs.cumsum(-1)
    u = uniforms(generator, cdf.shape[0], cdf.device) * cdf[:, -1:]
    # right=True skips zero-probability entries (flat stretches of the cdf); u < total keeps it in range
    return torch.searchsorted(cdf, u, right=True).clamp_max(cdf.shape[-1] - 1)[:, 0]


def choose(logits: torch.Tensor, params: SamplingParams, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Next tokens [r] and their tempered full-vocabulary log-probs [r] from logits [r, V]."""
    logp = tempered_logprobs(logits, params)
    if params.greedy:
        tokens = torch.argmax(logits, dim=-1)
    else:
        tokens = draw(filter_logprobs(logp, params), generator)
    return tokens, logp.gather(-1, tokens[:, None])[:, 0]


def make_generator(seed: int | list[int] | None, device, n: int = 1) -> torch.Generator | RowGenerators:
    """One generator for the whole batch, or (a list: one seed per prompt) one per output row."""
    if isinstance(seed, (list, tuple)):
        return RowGenerators(seed, n, device)
    # no seed: derive one from torch's global RNG so torch.manual_seed still makes runs repeatable
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)))
    return torch.Generator(device=device).manual_seed(int(seed))


# ---- prefill --------------------------------------------------------------------------------
def prefill(model, ids: torch.Tensor, lengths: torch.Tensor, cache, with_hidden: bool = False):
    """Write the right-padded prompts [B, T] into the cache; logits of each row's last token [B, V].

    Time is chunked so the [B, chunk, V] logits stay bounded; a chunk attends to earlier chunks
    through the cache. `with_hidden`: also return the trunk output [B, T, d] (for MTP drafting).
    """
    B, T = ids.shape
    chunk = max(16, PREFILL_LOGIT_ELEMENTS // max(1, B * model.config.vocab_size))
    rows = torch.arange(B, device=ids.device)
    last, hiddens = None, []
    for start in range(0, T, chunk):
        end = min(T, start + chunk)
        pos = torch.arange(start, end, device=ids.device)[None].expand(B, end - start)
        if with_hidden:
            logits, h = model.forward_hidden(ids[:, start:end], positions=pos, cache=cache)
            hiddens.append(h)
        else:
            logits = model(ids[:, start:end], positions=pos, cache=cache)  # [B, c, V]
        inside = ((lengths - 1 >= start) & (lengths - 1 < end))[:, None]
        picked = logits[rows, (lengths - 1 - start).clamp(0, end - start - 1)]
        last = picked if last is None else torch.where(inside, picked, last)
    if with_hidden:
        return last, torch.cat(hiddens, 1)
    return last


# ---- per-row output -------------------------------------------------------------------------
class Outputs:
    """Completion tokens, log-probs and finish reasons per output row."""

    def __init__(self, n_rows: int, stop: StopChecker, on_tokens: Callable | None = None):
        self.tokens = [[] for _ in range(n_rows)]
        self.logprobs = [[] for _ in range(n_rows)]
        self.reasons = ["length"] * n_rows
        self.stop = stop
        self.on_tokens = on_tokens

    def add(self, live: LiveRows, tokens: list[int], logprobs: list[float], valid=None) -> None:
        """Append one token to each active cache row (or only where `valid[i]`); finish rows."""
        rows, new = [], []
        for i, row in enumerate(live.rows):
            if not live.active[i] or (valid is not None and not valid[i]):
                continue
            self.tokens[row].append(tokens[i])
            self.logprobs[row].append(logprobs[i])
            rows.append(row)
            new.append(tokens[i])
            reason = self.stop(self.tokens[row])
            if reason is not None:
                self.reasons[row] = reason
                live.finish(i)
        if self.on_tokens is not None and rows:
            self.on_tokens(rows, new)


# ---- decode ---------------------------------------------------------------------------------
def decode_plain(model, prompts, n, max_new_tokens, params, stop, generator, on_tokens=None) -> Outputs:
    """Plain autoregressive decoding: one token per row per forward."""
    device = next(model.parameters()).device
    ids, lengths = right_pad(prompts, device)
    cache = model.make_cache(len(prompts), int(lengths.max()) + max_new_tokens)
    with torch.inference_mode():
        last = prefill(model, ids, lengths, cache)  # [B, V]
        fan = torch.arange(len(prompts), device=device).repeat_interleave(n)
        cache.keep(fan)  # each prompt's prefilled rows serve its n samples
        last, pos = last[fan], lengths[fan]  # [R, V], [R]: next position per row
        out = Outputs(len(prompts) * n, stop, on_tokens)
        live = LiveRows(len(prompts) * n, device)
        if isinstance(generator, RowGenerators):
            generator.track(live)
        for step in range(max_new_tokens):
            tok, lp = choose(last, params, generator)
            out.add(live, tok.tolist(), lp.tolist())
            if live.n_active == 0 or step == max_new_tokens - 1:
                break
            keep = live.compaction()
            if keep is not None:
                cache.keep(keep)
                tok, pos = tok[keep], pos[keep]
            last = model(tok[:, None], positions=pos[:, None], cache=cache)[:, -1]
            pos = pos + 1
    return out


def generate(
    model,
    prompts,
    *,
    n: int = 1,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    stop_token_ids=None,
    stop_strings=None,
    ignore_eos: bool = False,
    seed: int | list[int] | None = None,
    tokenizer=None,
    speculative: bool = False,
    backend: str = "torch",
    engine=None,
    on_tokens: Callable | None = None,
) -> Rollouts:
    """Sample `n` completions per prompt; see `Rollouts` for the layout and log-prob definition.

    `model`: a policy (native or `HFPolicy`) or a transformers causal LM (wrapped on the fly).
    `speculative=True`: MTP self-speculative decoding (native models with MTP modules).
    `backend="vllm"` or `engine=<vllm.LLM>`: generate with vLLM (see reasonrl.sampler.vllm).
    `on_tokens(rows, tokens)`: called after every step with the new token of each row (streaming).
    `seed`: one int for the batch, or one per prompt (each row then draws from its own stream, so a
    completion does not depend on the other prompts of the batch).
    """
    params = SamplingParams(temperature, top_p, top_k)
    prompt_ids = encode_prompts(prompts, tokenizer)
    if n < 1 or max_new_tokens < 0:
        raise ValueError("need n >= 1 and max_new_tokens >= 0")
    if backend == "vllm" or engine is not None:
        from reasonrl.sampler.vllm import generate_vllm

        if isinstance(seed, (list, tuple)):
            raise ValueError("per-prompt seeds (a list) are supported by the torch backend only")
        if model is not None and not isinstance(model, str):
            model = as_policy(model)
        return generate_vllm(
            engine, prompt_ids, model=model, n=n, max_new_tokens=max_new_tokens, params=params,
            stop_token_ids=stop_token_ids, stop_strings=stop_strings, ignore_eos=ignore_eos,
            seed=seed, tokenizer=tokenizer,
        )
    if backend != "torch":
        raise ValueError(f"unknown backend {backend!r}: use 'torch' or 'vllm'")
    model = as_policy(model)
    stop = StopChecker(resolve_stop_ids(model, tokenizer, stop_token_ids, ignore_eos), stop_strings,
                       tokenizer, max_new_tokens)
    generator = make_generator(seed, next(model.parameters()).device, n)
    if isinstance(generator, RowGenerators) and speculative:
        raise ValueError("per-prompt seeds (a list) need plain decoding: speculative=False")
    start = time.perf_counter()
    stats = {}
    if max_new_tokens == 0:
        out = Outputs(len(prompt_ids) * n, stop)
    elif speculative:
        from reasonrl.sampler.speculative import decode_speculative

        out, stats = decode_speculative(model, prompt_ids, n, max_new_tokens, params, stop, generator, on_tokens)
    else:
        out = decode_plain(model, prompt_ids, n, max_new_tokens, params, stop, generator, on_tokens)
    stats.update(_throughput(out, time.perf_counter() - start))
    return assemble(prompt_ids, n, out.tokens, out.logprobs, out.reasons, tokenizer, stats)


def as_policy(model):
    """A policy as is; a bare transformers causal LM wrapped in `HFPolicy`."""
    if hasattr(model, "make_cache"):
        return model
    from reasonrl.model.hf_policy import HFPolicy

    return HFPolicy(model)


def _throughput(out: Outputs, seconds: float) -> dict:
    tokens = sum(len(t) for t in out.tokens)
    return {"new_tokens": tokens, "time_s": seconds, "tokens_per_s": tokens / max(seconds, 1e-9)}
