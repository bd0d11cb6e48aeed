import pytest

from reasonrl.rewards import RewardRuntime


@pytest.fixture(scope="session")
def runtime():
    """One pool for the whole test session, as the trainer holds one for a run."""
    rt = RewardRuntime(timeout_s=10.0, num_workers=2)
    yield rt
    rt.close()
