"""What the rl section refuses under torchrun, one reason each (the launch test checks the CLI)."""

import pytest

from reasonrl.rl.config import RLSection

OK = dict(sampling_seeds="prompt", prompts_per_step=4, minibatch_size=0)


def test_one_process_accepts_everything_and_two_ranks_a_split_batch():
    assert RLSection(dynamic_sampling=True, prompts_per_step=3).distributed_problem(1) is None
    assert RLSection(**OK).distributed_problem(2) is None
    assert RLSection(**{**OK, "minibatch_size": 8}).distributed_problem(2) is None
    assert RLSection(**{**OK, "algorithm": "ppo"}).distributed_problem(2) is None  # the critic trains alike


@pytest.mark.parametrize("change, reason", [
    ({"sampling_seeds": "batch"}, "set rl.sampling_seeds=prompt"),
    ({"prompts_per_step": 6}, "rl.prompts_per_step=6 does not split over WORLD_SIZE=4"),
    ({"minibatch_size": 6}, "rl.minibatch_size=6 does not split over WORLD_SIZE=4"),
    ({"dynamic_sampling": True}, "rl.dynamic_sampling=true is not supported under torchrun"),
])
def test_two_or_more_ranks_refuse_what_they_cannot_run(change, reason):
    problem = RLSection(**{**OK, "prompts_per_step": 8, **change}).distributed_problem(4)
    assert problem is not None and reason in problem and "\n" not in problem
