"""MTP self-speculative decoding [V3 2.2, R1]: draft one token with MTP module 0, verify with the model.

Per row, each step feeds the main model [cur, draft] at positions [p, p+1]:
  - logits at p give the target distribution P of token p+1; the draft d ~ Q (the MTP module's
    distribution, tempered and filtered like P) is accepted with probability min(1, P(d) / Q(d)),
    otherwise token p+1 is drawn from norm(max(P - Q, 0)): token p+1 is then exactly P-distributed
    (the standard speculative-sampling argument); greedy accepts iff d == argmax P;
  - when d is accepted, logits at p+1 give a bonus token p+2 for free.
Then the MTP module consumes (h_p, token p+1) [and (h_{p+1}, token p+2)] and drafts the next token.
Rejected drafts leave junk in cache slot p+1 (main and MTP); slot = position means the next step
overwrites it before any query can attend to it.

Only MTP module 0 drafts: `mtp_logits` exposes logits, not the hidden state a deeper module chains on.
"""

from __future__ import annotations

import torch

from reasonrl.sampler.batching import LiveRows, StopChecker, right_pad
from reasonrl.sampler.engine import (
    Outputs,
    SamplingParams,
    choose,
    draw,
    draw_probs,
    filter_logprobs,
    prefill,
    tempered_logprobs,
)


def supports_speculative(model) -> bool:
    return hasattr(model, "mtp_logits") and len(getattr(model, "mtp", ())) > 0


def draft_from(logits: torch.Tensor, params: SamplingParams, generator):
    """Draft tokens [r] and the draft distribution Q [r, V] (None when greedy)."""
    if params.greedy:
        return logits.argmax(-1), None
    q = torch.softmax(filter_logprobs(tempered_logprobs(logits, params), params), -1)
    return draw_probs(q, generator), q


def verify(logp: torch.Tensor, draft, q, params: SamplingParams, generator):
    """Tempered target log-probs [r, 2, V] for positions p+1, p+2 -> (first [r], bonus [r], accepted [r])."""
    if params.greedy:
        first = logp[:, 0].argmax(-1)
        return first, logp[:, 1].argmax(-1), first == draft
    filtered = filter_logprobs(logp.flatten(0, 1), params).unflatten(0, logp.shape[:2])
    p0 = torch.softmax(filtered[:, 0], -1)
    pd, qd = p0.gather(-1, draft[:, None])[:, 0], q.gather(-1, draft[:, None])[:, 0]
    u = torch.rand(pd.shape, generator=generator, device=pd.device)
    accepted = u * qd < pd  # u < P(d) / Q(d) without dividing by zero
    residual = (p0 - q).clamp_min(0)
    empty = residual.sum(-1, keepdim=True) <= 0  # P == Q: acceptance is certain, any fallback is fine
    residual = torch.where(empty, p0, residual)
    first = torch.where(accepted, draft, draw_probs(residual, generator))
    return first, draw(filtered[:, 1], generator), accepted


def _mtp_prefill(model, ids, hidden, lengths, cache):
    """MTP cache slots 0..L-2 of each unique prompt: pairs (h_t, prompt token t+1)."""
    if ids.shape[1] > 1:
        T = ids.shape[1] - 1
        pos = torch.arange(T, device=ids.device)[None].expand(ids.shape[0], T)
        model.mtp_logits(hidden[:, :T], ids[:, 1:], positions=pos, cache=cache, depth=0)


def decode_speculative(model, prompts, n, max_new_tokens, params, stop: StopChecker, generator,
                       on_tokens=None):
    """-> (Outputs, stats with acceptance_rate). Same Outputs as `decode_plain`."""
    if not supports_speculative(model):
        raise ValueError("speculative decoding needs a native model with MTP modules (num_nextn_predict_layers >= 1)")
    device = next(model.parameters()).device
    ids, lengths = right_pad(prompts, device)
    # +2: the verify step writes one slot past `cur`, which may be an uncounted bonus token
    cache = model.make_cache(len(prompts), int(lengths.max()) + max_new_tokens + 2)
    out = Outputs(len(prompts) * n, stop, on_tokens)
    live = LiveRows(len(prompts) * n, device)
    proposed = accepted_total = 0
    with torch.inference_mode():
        last, hidden = prefill(model, ids, lengths, cache, with_hidden=True)  # [B, V], [B, T, d]
        _mtp_prefill(model, ids, hidden, lengths, cache)
        fan = torch.arange(len(prompts), device=device).repeat_interleave(n)
        cache.keep(fan)
        rows = torch.arange(len(fan), device=device)
        h_last = hidden[fan, lengths[fan] - 1]  # [R, d]: main hidden at the last prompt position
        cur, lp = choose(last[fan], params, generator)
        out.add(live, cur.tolist(), lp.tolist())
        pos = lengths[fan]  # position of `cur`, not yet in the main cache
        mtp = model.mtp_logits(h_last[:, None], cur[:, None], positions=(pos - 1)[:, None], cache=cache)
        draft, q = draft_from(mtp[:, -1], params, generator)
        while live.n_active > 0:
            keep = live.compaction()
            if keep is not None:
                cache.keep(keep)
                cur, pos, draft, rows = cur[keep], pos[keep], draft[keep], rows[: len(keep)]
                q = None if q is None else q[keep]
            active = torch.tensor(live.active, device=device)
            steps = torch.stack([pos, pos + 1], 1)  # [r, 2]
            logits, h = model.forward_hidden(torch.stack([cur, draft], 1), positions=steps, cache=cache)
            logp = tempered_logprobs(logits, params)  # [r, 2, V]
            first, bonus, acc = verify(logp, draft, q, params, generator)
            lp0 = logp[:, 0].gather(-1, first[:, None])[:, 0]
            lp1 = logp[:, 1].gather(-1, bonus[:, None])[:, 0]
            proposed += int(active.sum())
            accepted_total += int((acc & active).sum())
            out.add(live, first.tolist(), lp0.tolist())
            out.add(live, bonus.tolist(), lp1.tolist(), valid=acc.tolist())
            mtp = model.mtp_logits(h, torch.stack([first, bonus], 1), positions=steps, cache=cache)
            draft, q = draft_from(mtp[rows, acc.long()], params, generator)
            cur = torch.where(acc, bonus, first)
            # finished rows stay where they are so their junk writes stay inside the cache
            pos = torch.where(active, pos + 1 + acc.long(), pos)
    return out, {"acceptance_rate": accepted_total / max(proposed, 1), "drafts": proposed}

