import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny models: thread hand-off costs more than it saves, and spinning threads starve on a shared CPU
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
