import os
import time

import pytest

from reasonrl.rewards import RewardRuntime, ScoreResult, parse_spec, score

UV = "tests.rewards.user_verifiers"
GOOD = "<think>ok</think><answer>\\boxed{4}</answer>"
BAD = "<answer>5</answer> extra"


def test_weighted_sum_and_metrics(runtime):
    examples = [{"answer": "4"}, {"answer": "4"}]
    result = runtime.score([GOOD, BAD], examples, spec={"accuracy": 1.0, "format": 0.5})
    rewards, metrics = result
    assert rewards == [1.5, 0.0]
    assert metrics["reward/accuracy"] == 0.5
    assert metrics["reward/format"] == 0.5
    assert metrics["reward/mean"] == 0.75
    assert metrics["reward/std"] == 0.75  # population std of [1.5, 0]
    assert metrics["reward/accuracy/timeout_frac"] == 0.0
    assert result.components == {"accuracy": [1.0, 0.0], "format": [1.0, 0.0]}
    assert result.item(0) == {"reward": 1.5, "rewards": {"accuracy": 1.0, "format": 1.0},
                              "reward_status": {}}


def test_accuracy_follows_meta_verifier(runtime):
    examples = [{"answer": "Paris", "meta": {"verifier": "exact"}},
                {"answer": "B", "choices": ["x", "y"], "meta": {"verifier": "choice"}},
                {"answer": "1/2"}]
    texts = ["<answer>paris</answer>", "<answer>(B)</answer>", "\\boxed{0.5}"]
    rewards, _ = runtime.score(texts, examples, spec={"accuracy": 1.0})
    assert rewards == [1.0, 1.0, 1.0]
    rewards, _ = runtime.score(texts, examples, spec={"accuracy": {"weight": 2.0, "default": "numeric"}})
    assert rewards == [2.0, 2.0, 2.0]


def test_none_is_excluded_from_the_mean_and_counted(runtime):
    spec = {"numeric": 1.0, "overlong": {"weight": 1.0, "max_len": 10, "cache_len": 4}}
    result = runtime.score(["\\boxed{3}", "\\boxed{3}"], [{"answer": "3"}, {"answer": "x"}],
                           spec=spec, completion_lengths=[8, 20])
    assert result.components["numeric"] == [1.0, None]
    assert result.metrics["reward/numeric"] == 1.0
    assert result.metrics["reward/numeric/none_frac"] == 0.5
    assert result.components["overlong"] == [-0.5, -1.0]
    assert result.rewards == [0.5, -1.0]


def test_user_verifier_with_options(runtime):
    spec = {f"{UV}:length_over_ten": {"weight": 2.0, "scale": 0.25}}
    rewards, metrics = runtime.score(["short", "much longer text"], [{}, {}], spec=spec)
    assert rewards == [0.0, 0.5]
    assert metrics[f"reward/{UV}:length_over_ten"] == 0.125


def test_sleeping_verifier_does_not_stall_the_batch(runtime):
    spec = {f"{UV}:sleep_forever": 1.0, "format": 1.0}
    texts = ["fine", "sleep now", "fine", "fine", "sleep again", "fine"]
    start = time.monotonic()
    result = runtime.score(texts, [{}] * 6, spec=spec, timeout_s=1.0)
    elapsed = time.monotonic() - start
    assert elapsed < 6.0  # two timeouts of 1 s, run in parallel on 2 workers, plus restarts
    assert result.status[f"{UV}:sleep_forever"] == ["ok", "timeout", "ok", "ok", "timeout", "ok"]
    assert result.components[f"{UV}:sleep_forever"] == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    assert result.metrics[f"reward/{UV}:sleep_forever/timeout_frac"] == pytest.approx(2 / 6)
    assert result.reasons[f"{UV}:sleep_forever"][1] == "exceeded 1 s"
    # the pool recovered: the next batch works
    assert runtime.score(["fine"], [{}], spec=spec).rewards == [1.0]


def test_crashing_and_raising_verifiers_are_counted(runtime):
    spec = {f"{UV}:crash": 1.0, f"{UV}:raises": 1.0, f"{UV}:nothing": 1.0}
    result = runtime.score(["crash", "fine"], [{}, {}], spec=spec)
    assert result.status[f"{UV}:crash"] == ["error", "ok"]
    assert "worker died" in result.reasons[f"{UV}:crash"][0]
    assert result.status[f"{UV}:raises"] == ["error", "error"]
    assert result.reasons[f"{UV}:raises"][0] == "ValueError: broken verifier"
    assert result.metrics[f"reward/{UV}:raises/error_frac"] == 1.0
    assert result.metrics[f"reward/{UV}:nothing/none_frac"] == 1.0
    assert f"reward/{UV}:nothing" not in result.metrics
    assert result.rewards == [0.0, 1.0]


def test_failure_value_is_configurable():
    with RewardRuntime({f"{UV}:raises": 1.0}, failure_value=-1.0) as rt:
        assert rt.score(["x"], [{}]).rewards == [-1.0]


def test_in_process_spec_starts_no_pool():
    rt = RewardRuntime({"format": 1.0, "tag_count": 0.5})
    assert rt.score([" <think>a</think><answer>b</answer>"], [{}]).rewards == [1.5]
    assert rt._pool is None
    rt.close()


def test_module_level_score_and_result_type():
    result = score(["\\boxed{2}"], [{"answer": "2"}], {"numeric": 1.0})
    assert isinstance(result, ScoreResult)
    assert list(result) == [[1.0], result.metrics]


def test_spec_errors_are_raised_at_parse_time():
    with pytest.raises(TypeError):
        parse_spec({"accuracy": {"weight": 1.0, "extract": "boxed"}})
    with pytest.raises(KeyError):
        parse_spec({"nonexistent": 1.0})
    with pytest.raises(ValueError):
        RewardRuntime().score(["a"], [{}])


def test_pool_is_reused_across_calls(runtime):
    runtime.score(["\\boxed{1}"], [{"answer": "1"}], spec={"math": 1.0})
    pids = [w.proc.pid for w in runtime._pool.workers]
    start = time.monotonic()
    runtime.score(["\\boxed{1}"] * 8, [{"answer": "1"}] * 8, spec={"math": 1.0})
    assert time.monotonic() - start < 1.0
    assert [w.proc.pid for w in runtime._pool.workers] == pids
    assert all(os.path.exists(f"/proc/{pid}") for pid in pids)


def test_per_component_timeout_and_user_verifier_in_meta(runtime):
    spec = {"accuracy": {"weight": 1.0, "timeout_s": 0.5}}
    examples = [{"meta": {"verifier": f"{UV}:sleep_forever"}}, {"meta": {"verifier": "no_such"}}]
    start = time.monotonic()
    result = runtime.score(["sleep", "x"], examples, spec=spec, timeout_s=60.0)
    assert time.monotonic() - start < 5.0  # the spec's 0.5 s wins over the call's 60 s
    assert result.status["accuracy"] == ["timeout", "error"]
    assert result.reasons["accuracy"][0] == "exceeded 0.5 s"
    assert "no_such" in result.reasons["accuracy"][1]


def test_unpicklable_example_is_an_error_not_a_crash(runtime):
    examples = [{"answer": "1", "callback": lambda: None}, {"answer": "1"}]
    result = runtime.score(["\\boxed{1}"] * 40, examples * 20, spec={"math": 1.0})
    assert result.status["math"] == ["error", "ok"] * 20  # chunks are retried item by item
    assert "cannot send to worker" in result.reasons["math"][0]


def test_spawn_start_method_works():
    with RewardRuntime({f"{UV}:length_over_ten": 1.0, "math": 1.0}, num_workers=1,
                       start_method="spawn") as rt:
        rewards, _ = rt.score(["\\boxed{3} is the answer"], [{"answer": "3"}])
        assert rewards == [2.0]
        assert rt._pool.ctx.get_start_method() == "spawn"


def test_plain_fork_is_refused():
    with pytest.raises(ValueError, match="forkserver"):
        RewardRuntime({f"{UV}:nothing": 1.0}, start_method="fork")
