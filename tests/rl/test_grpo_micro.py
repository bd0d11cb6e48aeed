"""Splitting a GRPO minibatch into optim.grad_accum microbatches leaves the gradient unchanged."""

import pytest
import torch

from reasonrl.model import create
from reasonrl.rl.config import RLSection
from reasonrl.rl.step import surrogate_loss
from reasonrl.rl.update import split_micro


def rl_section(aggregation):
    return RLSection(temperature=1.0, eps_low=0.2, eps_high=0.2, beta=0.04, aggregation=aggregation, max_new_tokens=6)


def minibatch(model):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (4, 9), generator=g)
    mask = torch.zeros(4, 8)
    for row, (start, length) in enumerate([(2, 6), (3, 2), (2, 4), (4, 1)]):  # unequal completion lengths
        mask[row, start:start + length] = 1
    with torch.no_grad():
        from reasonrl.rl.losses import token_logprobs
        logp = token_logprobs(model(ids)[:, :-1], ids[:, 1:])
    return {"ids": ids, "mask": mask, "old": logp + 0.05 * torch.randn(4, 8, generator=g),
            "adv": torch.tensor([1.0, -0.5, 0.25, -1.0]), "ref": logp - 0.1}


def grads(model, mbs, rl):
    model.zero_grad()
    for mb in mbs:
        (surrogate_loss(model, mb, rl)[0] / len(mbs)).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean_token_mean", "constant"])
def test_microbatches_give_the_minibatch_gradient(aggregation):
    model = create("tiny", seed=0, vocab_size=64)
    mb = minibatch(model)
    rl = rl_section(aggregation)
    whole = grads(model, split_micro(mb, 1), rl)
    split = grads(model, split_micro(mb, 2), rl)
    assert len(split_micro(mb, 2)) == 2
    assert torch.allclose(whole, split, atol=1e-6, rtol=1e-4)
