"""A tiny model with the parts of the policy interface the training loop touches: a matrix, a
bias, a norm, a router-like buffer updated by `update_moe_bias`, and `save_pretrained`."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


class ToyModel(torch.nn.Module):
    def __init__(self, dim: int = 4, n_out: int = 3, seed: int = 0):
        super().__init__()
        self.dim, self.n_out = dim, n_out
        self.proj = torch.nn.Linear(dim, dim)
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, n_out, bias=False)
        self.register_buffer("e_score_correction_bias", torch.zeros(n_out))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(torch.relu(self.proj(x))))

    def load(self, logits: torch.Tensor) -> torch.Tensor:
        """Tokens per 'expert' when each row picks argmax(logits + bias): shape [1, n_out]."""
        choice = (logits.detach() + self.e_score_correction_bias).argmax(dim=-1)
        return torch.bincount(choice, minlength=self.n_out).float().unsqueeze(0)

    def update_moe_bias(self, load: torch.Tensor, gamma: float) -> None:
        # The DeepSeek-V3 rule: raise the bias of under-loaded experts, lower over-loaded ones.
        self.e_score_correction_bias += gamma * torch.sign(load.mean(dim=-1, keepdim=True) - load).sum(dim=0)

    def save_pretrained(self, directory: str) -> None:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps({"dim": self.dim, "n_out": self.n_out}))
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path / "model.safetensors"))

    def load_weights(self, directory: str | Path) -> None:
        self.load_state_dict(load_file(str(Path(directory) / "model.safetensors")))


def mse_loss_fn(model: ToyModel, batch: tuple[torch.Tensor, torch.Tensor]):
    x, y = batch
    logits = model(x)
    loss = (logits - y).pow(2).mean()
    return loss, {"abs_err": (logits - y).abs().mean().detach()}, model.load(logits)
