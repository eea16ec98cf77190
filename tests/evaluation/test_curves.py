"""Learning curves from TensorBoard logs, across a resumed run."""
import pytest

from common.errors import InputError
from evaluation.curves import merge_scalars, plot_curves, read_scalars


def _run(path, points):
    from torch.utils.tensorboard import SummaryWriter
    with SummaryWriter(str(path / "tb")) as writer:
        for step, value in points:
            writer.add_scalar("loss/total", value, step)
    return path


def test_a_resumed_run_replaces_the_lost_steps(tmp_path):
    # killed at step 30 after a checkpoint at step 20; the continuation logs from step 20 again
    first = _run(tmp_path / "a", [(0, 5.0), (10, 4.0), (20, 3.0), (30, 2.9)])
    second = _run(tmp_path / "b", [(20, 3.1), (30, 2.5), (40, 2.0)])
    steps, values = merge_scalars([read_scalars(first), read_scalars(second)])["loss/total"]
    assert steps == [0, 10, 20, 30, 40]
    assert values == pytest.approx([5.0, 4.0, 3.1, 2.5, 2.0])
    out = plot_curves([first, second], tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_folder_without_logs_is_named(tmp_path):
    with pytest.raises(InputError, match="no TensorBoard logs"):
        read_scalars(tmp_path)
