"""FSDP2 (`torch.distributed.fsdp.fully_shard`) for `run.strategy=fsdp` under torchrun.

    shard_model(model)            # each decoder block one FSDP unit, the rest (embeddings, final
                                  # norm, head, MTP) the root unit; parameters become DTensors
    with gathered(model): ...     # every parameter whole on every rank: sampling, evaluation, export

Each rank keeps 1/W of every parameter, gradient and AdamW moment; a unit's parameters are
all-gathered just before it runs and its gradients reduce-scattered (averaged) after its backward.
Stages call the model through methods such as `forward_train`, not `forward`, so those methods are
registered with FSDP (`register_fsdp_forward_method`) to get the same all-gather hooks.

Generation is the exception: ranks sample different prompts, rows end at different lengths, so
ranks run different numbers of decode steps and per-step collectives would deadlock. `gathered`
unshards every unit once, keeps them whole (no collective until it exits) and reshards afterwards.
(`state_dict()` stays sharded even then: files are written from `full_state_dict`.)
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

# methods stages call on a policy instead of forward (native Transformer and HFPolicy alike)
FORWARD_METHODS = ("forward_train", "hidden_states", "prefix_hidden", "suffix_hidden", "forward_hidden",
                   "mtp_forward", "mtp_logits")


def decoder_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated decoder layers, one FSDP unit each: `layers` of a native model, the first
    ModuleList of `config.num_hidden_layers` modules of a transformers one."""
    if getattr(model, "is_native", False):
        return list(model.layers)
    n = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return list(module)
    raise ValueError(f"run.strategy=fsdp: found no list of {n} decoder layers in {type(model).__name__}")


def shard_model(model: nn.Module) -> nn.Module:
    """Shard `model` in place over every rank of the process group (CPU with gloo, CUDA with nccl),
    moving it to this rank's device. The root unit (embeddings, final norm, head, MTP) stays whole
    after a forward, also for a frozen reference: the log-prob paths read the head's weight after
    the forward returns."""
    from torch.distributed.device_mesh import init_device_mesh

    device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
    mesh = init_device_mesh(device, (torch.distributed.get_world_size(),))
    # PPO: the actor and the critic, each a root of its own (either is called without the other);
    # the rest (the value head) stays whole on every rank, its gradient all-reduced by the trainer
    parts = [getattr(model, name) for name in getattr(model, "fsdp_parts", ())] or [model]
    for part in parts:
        _shard_policy(part, mesh)
    return model


def _shard_policy(model: nn.Module, mesh) -> None:
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    for block in decoder_blocks(model):
        fully_shard(block, mesh=mesh)
    # the root keeps its parameters whole from forward to backward (FSDP's default for the root),
    # so a loss may read the head's weight directly (rl/logprobs.py's fused log-softmax does)
    fully_shard(model, mesh=mesh, reshard_after_forward=False)
    model.keep_whole_after_forward = True  # what `gathered` restores
    for name in FORWARD_METHODS:
        if callable(getattr(model, name, None)):
            register_fsdp_forward_method(model, name)


def is_sharded(model: nn.Module) -> bool:
    """True when `model` (or a part of it, PPO's actor and critic) is sharded by FSDP."""
    return bool(_units(model))


def replicated(params: list[nn.Parameter]) -> list[nn.Parameter]:
    """The parameters FSDP does not hold (whole on every rank): their gradients need an all-reduce."""
    from torch.distributed.tensor import DTensor

    return [p for p in params if not isinstance(p, DTensor)]


def set_gradient_sync(model: nn.Module, on: bool) -> None:
    """Reduce-scatter gradients after this backward (on) or accumulate them locally (off)."""
    for unit in _units(model):
        unit.set_requires_gradient_sync(on, recurse=False)


def _units(model: nn.Module) -> list[nn.Module]:
    from torch.distributed.fsdp import FSDPModule

    return [m for m in model.modules() if isinstance(m, FSDPModule)]


@contextlib.contextmanager
def gathered(model: nn.Module | None) -> Iterator[None]:
    """Every parameter of `model` whole on every rank for the duration (a no-op for a model that
    is not sharded). Every rank must enter it together; inside, ranks may diverge freely."""
    if model is None or not is_sharded(model):
        yield
        return
    units = _units(model)
    for unit in units:
        unit.unshard()
        unit.set_reshard_after_forward(False, recurse=False)
    for module in model.modules():  # caches built from the parameters (HFPolicy's fused projections) are
        if hasattr(module, "refresh_fast_weights"):  # stale: FSDP reuses the unsharded parameter objects
            module.refresh_fast_weights()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
            unit.set_reshard_after_forward(not getattr(unit, "keep_whole_after_forward", False), recurse=False)


def local_value(tensor: torch.Tensor) -> torch.Tensor:
    """A plain tensor for a DTensor (the whole value: it is collective for sharded ones)."""
    from torch.distributed.tensor import DTensor

    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def all_finite(model: nn.Module) -> bool:
    """Every rank's shard of every floating-point parameter and buffer is finite (collective)."""
    from torch.distributed.tensor import DTensor

    bad = 0.0
    for tensor in list(model.parameters()) + list(model.buffers()):
        local = tensor.to_local() if isinstance(tensor, DTensor) else tensor
        if local.is_floating_point() and not bool(torch.isfinite(local).all()):
            bad = 1.0
    from reasonrl.train.distributed import all_reduce_sum

    return all_reduce_sum(torch.tensor(bad)).item() == 0  # on the backend's device (nccl: CUDA only)


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole, unsharded state dict on CPU for rank 0 to write (collective: every rank calls it;
    the others get an empty dict). A model that is not sharded returns its own state_dict."""
    if not is_sharded(model):
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a whole state dict (one every rank holds) into `model`, sharded or not."""
    if not is_sharded(model):
        model.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))


def sharded_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as each rank holds it (DTensors), for a distributed checkpoint."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(model)


def optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's state keyed by parameter name (sharded as the parameters are), the form a
    distributed checkpoint reshards to any number of ranks."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer)


def load_sharded(directory, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Load a distributed checkpoint's optimizer (and, for a sharded model, its weights) under this
    run's rank count, whatever the saving run's was; a model that is not sharded keeps the weights
    it loaded from the consolidated files, which are the same values."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_model_state_dict

    state = {"optimizer": _saved_entries(optimizer_state(model, optimizer), directory)}
    if is_sharded(model):
        state["model"] = sharded_model_state(model)
    dcp.load(state, checkpoint_id=str(directory))  # reshards to this run's ranks (plain tensors: one process)
    if "model" in state:
        set_model_state_dict(model, state["model"])
    optimizer.load_state_dict(_numbered(model, optimizer, state["optimizer"]))


def _param_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    names = {id(p): name for name, p in model.named_parameters()}
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


def _numbered(model: nn.Module, optimizer: torch.optim.Optimizer, named: dict) -> dict:
    """Name-keyed optimizer state -> `optimizer.state_dict()`'s numbering (parameters in optimizer
    order). Loading it with `load_state_dict` keeps a parameter without saved state without any,
    where `set_optimizer_state_dict` would refuse it."""
    index = {name: i for i, name in enumerate(_param_names(model, optimizer))}
    return {"state": {index[fqn]: value for fqn, value in named["state"].items()},
            "param_groups": [{**group, "params": [index[fqn] for fqn in group["params"]]}
                             for group in named["param_groups"]]}


def _saved_entries(template: dict, directory) -> dict:
    """`template` (a fresh optimizer's state, one entry per parameter) cut to the parameters the
    checkpoint holds state for: a parameter that never had a gradient (MTP in RL) has none, and
    must stay without, as AdamW leaves it."""
    from torch.distributed.checkpoint import FileSystemReader

    prefix = "optimizer.state."
    saved = {key[len(prefix):].rsplit(".", 1)[0] for key in FileSystemReader(str(directory)).read_metadata()
             .state_dict_metadata if key.startswith(prefix)}  # "<fqn>.<exp_avg|step|...>" -> fqn
    return {**template, "state": {fqn: v for fqn, v in template["state"].items() if fqn in saved}}


def load_full_optimizer(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Load a plain `optimizer.state_dict()` (as one process or DDP saves it) into the optimizer of
    a sharded model: each moment is split like its parameter."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = {}
    for index, entry in saved["state"].items():
        p = params[int(index)]
        state[index] = {key: distribute_tensor(v.to(p.to_local().device), p.device_mesh, p.placements)
                        if isinstance(p, DTensor) and torch.is_tensor(v) and v.shape == p.shape else v
                        for key, v in entry.items()}
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})


def clip_grad_norm(params: list[nn.Parameter], max_norm: float) -> float:
    """`clip_grad_norm_` over sharded and whole parameters together (PPO's value head is whole on
    every rank): shards' squares summed over ranks, the whole ones' counted once."""
    import math

    from torch.distributed.tensor import DTensor

    squares = torch.zeros((), dtype=torch.float32, device=params[0].grad.device if params else None)
    for p in params:
        if isinstance(p, DTensor):
            squares += p.grad.to_local().float().pow(2).sum()
    torch.distributed.all_reduce(squares)
    for p in replicated(params):
        squares += p.grad.float().pow(2).sum()
    total = float(squares.sqrt())
    if math.isfinite(total):
        coef = min(1.0, max_norm / (total + 1e-6))
        for p in params:
            p.grad.mul_(coef)
    return total
