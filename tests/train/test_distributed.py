"""Data-parallel training on 2 gloo ranks (spawned processes, one thread each): the update of a
sharded global batch equals one process's on the whole batch, and every rank ends identical."""

import io
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

TINY = dict(hidden_size=32, num_hidden_layers=2, q_lora_rank=16, kv_lora_rank=16, moe_intermediate_size=32,
            intermediate_size=64, n_routed_experts=4, n_group=1, topk_group=1, first_k_dense_replace=1,
            vocab_size=64, num_attention_heads=2, num_key_value_heads=2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batch():
    """A global batch of 4 windows (B, T + 1) with SFT labels: prompts and a padded tail ignored."""
    from reasonrl.train.sft_data import IGNORE

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 64, (4, 17), generator=g)
    labels = ids.clone()
    for row, cut in enumerate([3, 9, 5, 14]):  # uneven token counts per row, so per-rank means would differ
        labels[row, :cut] = IGNORE
    return ids, labels


def train(loss: str, steps: int = 3, strategy: str = "ddp") -> dict[str, torch.Tensor]:
    """`steps` optimizer steps on this process's share of `batch()`; the final state dict (whole:
    under fsdp rank 0's consolidated one, with `local_fraction`, the share of the weights this
    rank held)."""
    from reasonrl.model import create
    from reasonrl.ranks import world_size
    from reasonrl.stages.pretrain import lm_loss
    from reasonrl.stages.sft import sft_loss, sharded_microbatches
    from reasonrl.train.distributed import rank_slice
    from reasonrl.train.loop import OptimConfig, Trainer

    torch.set_num_threads(1)
    model = create("tiny", seed=0, **TINY).train()
    trainer = Trainer(model, OptimConfig(lr=1e-2, moe_bias_gamma=0.01), strategy=strategy)
    ids, labels = batch()
    for _ in range(steps):
        if loss == "lm":
            trainer.step(lm_loss, [ids[rank_slice(len(ids))]])
        elif world_size() > 1:
            trainer.step(sft_loss, sharded_microbatches(ids, labels, 1, model))
        else:
            trainer.step(sft_loss, [(ids, labels)])
    if trainer.sharded:
        from reasonrl.train.fsdp import full_state_dict

        local = sum(p.to_local().numel() for p in model.parameters())
        return {**full_state_dict(model), "local_fraction": torch.tensor(local / sum(p.numel() for p in model.parameters()))}
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _worker(rank: int, port: int, loss: str, strategy: str, queue) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    from reasonrl.train.distributed import process_group

    with process_group():
        state = train(loss, strategy=strategy)
    buffer = io.BytesIO()
    torch.save(state, buffer)  # bytes, not shared-memory tensors: the worker exits before they are read
    queue.put((rank, buffer.getvalue()))


def two_ranks(loss: str, strategy: str = "ddp") -> list[dict[str, torch.Tensor]]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_worker, args=(r, port, loss, strategy, queue)) for r in range(2)]
    for p in procs:
        p.start()
    states = {rank: torch.load(io.BytesIO(data)) for rank, data in (queue.get(timeout=120) for _ in procs)}
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return [states[0], states[1]]


@pytest.mark.parametrize("loss", ["lm", "sft"])
def test_two_ranks_equal_one_process_and_each_other(loss, monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    single = train(loss)
    rank0, rank1 = two_ranks(loss)
    from reasonrl.model import create

    start = create("tiny", seed=0, **TINY).state_dict()
    moved = [k for k in single if not torch.equal(single[k], start[k])]
    assert any("e_score_correction_bias" in k for k in moved), "the MoE bias update did not run"
    assert len(moved) > len(single) // 2, "the test trains too little to compare"
    for key, value in single.items():
        assert torch.equal(rank0[key], rank1[key]), f"ranks differ in {key}"
        torch.testing.assert_close(rank0[key], value, rtol=1e-4, atol=1e-5, msg=f"{key}: 2 ranks != 1 process")


def test_a_batch_that_does_not_split_over_the_ranks_is_one_line(monkeypatch):
    from reasonrl.train.distributed import check_divisible, rank_slice

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    check_divisible("sft", data__batch_size=8)
    assert rank_slice(8) == slice(6, 8)
    with pytest.raises(ValueError, match=r"^sft: data.batch_size=6 does not split over WORLD_SIZE=4 ranks: use a "
                                         r"multiple of 4$"):
        check_divisible("sft", data__batch_size=6)


@pytest.mark.parametrize("loss", ["lm", "sft"])
def test_fsdp_shards_the_weights_and_trains_like_one_process(loss, monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    single = train(loss)
    rank0, rank1 = two_ranks(loss, "fsdp")
    assert float(rank0["local_fraction"]) == pytest.approx(0.5, abs=0.05)  # each rank holds half of every tensor
    assert float(rank1["local_fraction"]) == pytest.approx(0.5, abs=0.05)
    for key, value in single.items():
        torch.testing.assert_close(rank0[key], value, rtol=1e-4, atol=1e-5, msg=f"{key}: FSDP on 2 ranks != 1 process")
