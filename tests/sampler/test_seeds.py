"""Per-prompt seeds: a prompt's completions depend on its own seed only, not on the batch."""

import pytest

from reasonrl.sampler import generate
from tests.sampler.helpers import random_prompts, tiny_qwen2


def test_a_prompts_completions_do_not_depend_on_the_rest_of_the_batch():
    hf = tiny_qwen2()
    p = random_prompts([3, 9, 6])
    # stop tokens finish rows at different steps, so finished rows are compacted out mid-decode
    options = dict(n=3, max_new_tokens=14, stop_token_ids=[5, 7, 9], temperature=1.0)
    together = generate(hf, p, seed=[11, 12, 13], **options)
    alone = generate(hf, [p[1]], seed=[12], **options)
    swapped = generate(hf, [p[2], p[1]], seed=[13, 12], **options)
    assert together.completion_ids[3:6] == alone.completion_ids == swapped.completion_ids[3:6]
    flat = lambda rows: [x for row in rows for x in row]  # noqa: E731
    assert flat(together.logprobs[3:6]) == pytest.approx(flat(alone.logprobs), abs=1e-5)
    assert "stop" in together.finish_reasons and "length" in together.finish_reasons  # both kinds of rows
    assert len({tuple(r) for r in together.completion_ids[:3]}) == 3  # a prompt's samples still differ
    batch_stream = generate(hf, p, seed=11, **options)
    assert batch_stream.completion_ids != together.completion_ids


def test_per_prompt_seeds_are_refused_where_unsupported():
    hf = tiny_qwen2()
    with pytest.raises(ValueError, match="torch backend"):
        generate(hf, random_prompts([3]), seed=[1], max_new_tokens=2, backend="vllm")
