"""PPO with a critic (value head + GAE), for comparison with GRPO as in the R1 paper.

The critic is a copy of the policy's network with a scalar head; actor and critic are one module
for the shared trainer, so a single optimizer step updates both.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from reasonrl.rl.config import RLSection
from reasonrl.rl.rollout import RolloutBatch
from reasonrl.rl.update import policy_forward

CRITIC_FILE = "critic.safetensors"


class ActorCritic(nn.Module):
    fsdp_parts = ("actor", "critic")  # sharded as policies of their own (train/fsdp.py)

    def __init__(self, actor: nn.Module, critic: nn.Module):
        super().__init__()
        self.actor, self.critic = actor, critic
        hidden = _hidden_size(actor)
        self.value_head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    @classmethod
    def create(cls, policy: nn.Module, ckpt=None) -> "ActorCritic":
        model = cls(policy, copy.deepcopy(policy))
        if ckpt is not None and (Path(ckpt) / CRITIC_FILE).exists():
            from safetensors.torch import load_file

            state = load_file(str(Path(ckpt) / CRITIC_FILE))
            model.critic.load_state_dict({k[len("critic."):]: v for k, v in state.items() if k.startswith("critic.")})
            model.value_head.load_state_dict({k[len("value_head."):]: v for k, v in state.items()
                                              if k.startswith("value_head.")})
        return model

    def forward_train(self, ids, **kwargs):
        return self.actor.forward_train(ids, **kwargs)

    def values(self, ids: torch.Tensor) -> torch.Tensor:
        """V at every input position: (B, T)."""
        return self.value_head(self.critic.hidden_states(ids)).squeeze(-1)

    def set_activation_checkpointing(self, on: bool) -> None:
        self.actor.set_activation_checkpointing(on)
        self.critic.set_activation_checkpointing(on)

    def update_moe_bias(self, moe_load, gamma=None) -> None:
        if hasattr(self.actor, "update_moe_bias"):
            self.actor.update_moe_bias(moe_load, gamma)

    def save_pretrained(self, path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """`state_dict`: this module's whole weights (an FSDP run's consolidated ones) to write
        instead of the modules' own."""
        from safetensors.torch import save_file

        if state_dict is None:
            self.actor.save_pretrained(path)
            state = {f"critic.{k}": v for k, v in self.critic.state_dict().items()}
            state.update({f"value_head.{k}": v for k, v in self.value_head.state_dict().items()})
        else:
            actor = {k.removeprefix("actor."): v for k, v in state_dict.items() if k.startswith("actor.")}
            self.actor.save_pretrained(path, state_dict=actor)
            state = {k: v for k, v in state_dict.items() if k.startswith(("critic.", "value_head."))}
        save_file({k: v.contiguous() for k, v in _untied(state).items()}, str(Path(path) / CRITIC_FILE))


def _untied(state: dict) -> dict:
    seen, out = {}, {}
    for key, tensor in state.items():
        ptr = tensor.data_ptr()
        out[key] = tensor.clone() if ptr in seen else tensor
        seen[ptr] = key
    return out


def _hidden_size(model) -> int:
    cfg = model.config
    return cfg.hidden_size


def to_completion_layout(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, L-1) prompt-offset rows -> left-aligned completion rows (N, Tc) and the gather index."""
    starts = mask.argmax(dim=1)  # (N,) first completion target
    width = int(mask.sum(dim=1).max().item())
    index = (starts[:, None] + torch.arange(width, device=mask.device)).clamp(max=mask.shape[1] - 1)  # (N, Tc)
    return x.gather(1, index), index


def ppo_advantages(rl: RLSection, batch: RolloutBatch, values: torch.Tensor, ref):
    """Per-token GAE advantages (whitened) and returns, in the batch's (N, L-1) layout."""
    from reasonrl.rl.advantages import gae, ppo_token_rewards

    comp_mask, index = to_completion_layout(batch.mask, batch.mask)
    old, _ = to_completion_layout(batch.old_logp, batch.mask)
    ref_c = old if ref is None else to_completion_layout(ref, batch.mask)[0]
    vals, _ = to_completion_layout(values, batch.mask)
    rewards = ppo_token_rewards(batch.rewards, old, ref_c, comp_mask, rl.beta if ref is not None else 0.0)
    adv, ret = gae(rewards, vals, comp_mask, rl.gamma, rl.lam)
    mean, std = _token_mean_std(adv, comp_mask)
    adv = (adv - mean) / (std + 1e-8) * comp_mask
    out_adv = torch.zeros_like(batch.mask).scatter_add(1, index, adv)
    out_ret = torch.zeros_like(batch.mask).scatter_add(1, index, ret * comp_mask)
    return out_adv, out_ret


def _token_mean_std(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of x over the masked tokens of the global batch (every rank's rows under torchrun)."""
    from reasonrl.train.distributed import all_reduce_sum

    sums = all_reduce_sum(torch.stack([(x * mask).sum(), mask.sum()]))  # (2,)
    mean = sums[0] / sums[1]
    return mean, all_reduce_sum(((x - mean) ** 2 * mask).sum()).div(sums[1]).sqrt()


def ppo_loss(model: ActorCritic, mb: dict, rl: RLSection):
    from reasonrl.rl.losses import ppo_policy_loss, value_loss

    logp, entropy, load = policy_forward(model.actor, mb["ids"], mb["mask"], rl.temperature, rl.logprobs,
                                         mb.get("prompt_len"))
    actor_loss, metrics = ppo_policy_loss(logp, mb["old"], mb["adv"], mb["mask"], num_tokens=mb["num_tokens"],
                                          is_weights=mb.get("tis"), **rl.clip_options())
    values = model.values(mb["ids"])[:, :-1]
    v_loss, v_metrics = value_loss(values, mb["old_v"], mb["ret"], mb["mask"], rl.value_clip, mb["num_tokens"])
    metrics.update(v_metrics)
    metrics["entropy"] = (entropy * mb["mask"]).sum() / mb["mask"].sum().clamp(min=1)
    return actor_loss + rl.vf_coef * v_loss, metrics, load
