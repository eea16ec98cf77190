"""common/device.py: the device names --device accepts, and the thread count a block borrows."""
import pytest
import torch

from common.device import resolve_device, torch_threads
from common.errors import InputError


def test_torch_threads_is_restored_after_the_block_even_when_it_raises():
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    with torch_threads(wanted):
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(wanted):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with torch_threads(None):  # None: the caller's setting, untouched
        assert torch.get_num_threads() == before


@pytest.mark.parametrize("name, message", [("gpu", "expected auto, cpu, cuda, cuda:N or mps"),
                                           ("cuda:0x", "expected auto, cpu")])
def test_bad_device_names_are_one_line_errors(name, message):
    with pytest.raises(InputError, match=message):
        resolve_device(name)
    assert resolve_device("cpu") == torch.device("cpu")
