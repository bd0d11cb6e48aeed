"""Padding rollouts into a training batch, and joining / selecting rows (DAPO dynamic sampling)."""

import torch

from reasonrl.rl.rollout import RolloutBatch, concat, pad_batch, select_rows


def test_pad_batch_aligns_mask_and_old_logprobs_with_next_token_targets():
    ids, mask, old = pad_batch([[5, 6], [7]], [[8, 9, 2], [3]], [[-0.1, -0.2, -0.3], [-0.4]], pad_id=0)
    assert ids.tolist() == [[5, 6, 8, 9, 2], [7, 3, 0, 0, 0]]
    # target t is ids[:, t + 1]: row 0's completion starts at target 1, row 1's at target 0
    assert mask.tolist() == [[0, 1, 1, 1], [1, 0, 0, 0]]
    assert torch.allclose(old, torch.tensor([[0, -0.1, -0.2, -0.3], [-0.4, 0, 0, 0]]))


def batch(prompts, completions, rewards):
    ids, mask, old = pad_batch(prompts, completions, [[-1.0] * len(c) for c in completions], pad_id=0)
    n = len(prompts)
    return RolloutBatch([{"id": str(i)} for i in range(n)], ["p"] * n, [str(c) for c in completions], ids, mask, old,
                        [len(c) for c in completions], [False] * n, torch.tensor(rewards),
                        {"accuracy": list(rewards)}, {}, 100.0)


def test_select_then_concat_keeps_rows_aligned_and_repads():
    a = batch([[1], [1]], [[4], [4, 5]], [0.0, 1.0])
    b = batch([[1, 2]], [[6, 7, 8]], [0.5])
    joined = concat([select_rows(a, [1]), b], pad_id=0)
    assert joined.ids.tolist() == [[1, 4, 5, 0, 0], [1, 2, 6, 7, 8]]
    assert joined.mask.tolist() == [[1, 1, 0, 0], [0, 1, 1, 1]]
    assert joined.rewards.tolist() == [1.0, 0.5] and joined.components["accuracy"] == [1.0, 0.5]
    assert joined.lengths == [2, 3] and joined.texts == ["[4, 5]", "[6, 7, 8]"]
