import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """2 shared CPU cores: keep model tests single-threaded and deterministic."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(previous)
