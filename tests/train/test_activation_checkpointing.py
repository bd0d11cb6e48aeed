"""optim.activation_checkpointing: recomputing each decoder block in backward gives the same
log-probs and gradients as keeping its activations (native MoE model, transformers policies),
and the trainer's updates match."""

import pytest
import torch

from reasonrl.model import create
from reasonrl.train.loop import OptimConfig, Trainer
from tests.rl.test_shared_prompt import grouped_batch, scored, tiny_llama_tied, tiny_qwen2

MODELS = {
    "native": lambda: create("tiny", seed=0, vocab_size=97, first_k_dense_replace=1),
    "qwen2": tiny_qwen2,
    "llama-tied": tiny_llama_tied,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_recomputed_blocks_give_the_same_logprobs_and_gradients(name):
    ids, mask = grouped_batch(97)
    model = MODELS[name]().train()
    kept, kept_grads = scored(model, ids, mask, None)
    model.set_activation_checkpointing(True)
    recomputed, grads = scored(model, ids, mask, None)
    torch.testing.assert_close(recomputed.logp, kept.logp, rtol=0, atol=1e-6)
    assert grads.keys() == kept_grads.keys() and len(grads) > 4
    for key, grad in kept_grads.items():
        torch.testing.assert_close(grads[key], grad, rtol=1e-5, atol=1e-7, msg=key)


def test_recomputation_saves_the_blocks_activations():
    """What autograd keeps for backward, counted with saved-tensor hooks: far less with it on."""
    ids, _ = grouped_batch(97, empty_row=False)

    def saved_bytes(on: bool) -> int:
        model = MODELS["native"]().train()
        model.set_activation_checkpointing(on)
        total = [0]

        def pack(t):
            total[0] += t.numel() * t.element_size()
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model.forward_train(ids, mtp=False).logits.sum()
        return total[0]
    assert saved_bytes(True) < 0.5 * saved_bytes(False)


def test_the_trainer_turns_it_on_and_updates_alike():
    from reasonrl.stages.pretrain import lm_loss

    ids, _ = grouped_batch(97, empty_row=False)
    states = []
    for on in (False, True):
        model = MODELS["native"]().train()
        trainer = Trainer(model, OptimConfig(lr=1e-2, activation_checkpointing=on))
        assert model.activation_checkpointing is on
        for _ in range(2):
            trainer.step(lm_loss, [ids])
        states.append(model.state_dict())
    for key, value in states[0].items():
        torch.testing.assert_close(states[1][key], value, rtol=1e-4, atol=1e-6, msg=key)
