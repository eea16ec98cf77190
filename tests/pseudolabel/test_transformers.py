"""The transformers backend for real, on a tiny Qwen3-VL built offline with random weights: the
frames' true timestamps reach the prompt, and the whole pipeline runs on a real action clip and
survives the random model's unusable replies."""
import os
import re

import cv2
import numpy as np
import pytest

pytest.importorskip("transformers")

from data.formats.vicr import read_vicr_video  # noqa: E402
from pseudolabel.pipeline import LabellingConfig, pseudo_label  # noqa: E402
from pseudolabel.tubes import find_videos  # noqa: E402
from pseudolabel.vlm import TransformersBackend, VLMRequest  # noqa: E402
from tests.pseudolabel import tiny_qwen3vl  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    torch.set_num_threads(1)  # a model this small is all per-op overhead: threads only wait on each other
    return tiny_qwen3vl.build(tmp_path_factory.mktemp("tiny_qwen3vl"))


def _jpegs(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    return [cv2.imencode(".jpg", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))[1].tobytes() for _ in range(count)]


def test_frames_reach_the_model_with_their_true_timestamps(tiny_model):
    backend = TransformersBackend(str(tiny_model), device="cpu")
    # Four frames of a 30 fps video, at indices 100, 115, 130, 145: the model sees one timestamp
    # per pair of frames, the mean of the pair (3.6 s and 4.6 s), not 24 fps guesses (0.0, 0.1).
    request = VLMRequest("What is the person doing?", _jpegs(4), [100, 115, 130, 145], fps=30.0, total_frames=200,
                         max_tokens=8)
    prompt = backend.processor.decode(backend._inputs(request)["input_ids"][0])
    assert re.findall(r"<[0-9.]+ seconds>", prompt) == ["<3.6 seconds>", "<4.6 seconds>"]
    text = backend.generate(request)
    assert isinstance(text, str)
    images = TransformersBackend(str(tiny_model), device="cpu", frames_as="images")
    assert images.processor.decode(images._inputs(request)["input_ids"][0]).count("<|vision_start|>") == 4
    with pytest.raises(ValueError, match="at least 2 frames"):
        backend._inputs(VLMRequest("x", _jpegs(1), [3], fps=30.0, total_frames=10))


@pytest.mark.real_data
def test_the_pipeline_runs_on_a_real_clip(tiny_model, real_data, tmp_path):
    clip = real_data / "action" / "ApplyEyeMakeup_test.avi"
    (tmp_path / "in").mkdir()
    os.symlink(clip, tmp_path / "in" / clip.name)
    video = find_videos(tmp_path / "in", print)[0][0]
    w, h = video.width, video.height

    def one_person(_):  # a box around the middle of the frame, every frame
        return {1: [(k, np.array([w * 0.25, h * 0.1, w * 0.75, h * 0.95])) for k in range(video.total_frames)]}

    config = LabellingConfig(frames_per_second=2, context_margin=0.1, min_pixels=32 * 32, max_pixels=64 * 64,
                             min_track_frames=30, top_k=5, refinement_iterations=1, jpeg_quality=80)
    backend = TransformersBackend(str(tiny_model), device="cpu")
    stats = pseudo_label([video], one_person, backend=backend, config=config, working_dir=tmp_path / "w",
                         output_dir=tmp_path / "o", max_tokens=32)
    # Random weights write no usable JSON: every answer is re-asked once and recorded as invalid,
    # the run goes on and writes its files (with no actions).
    assert stats.tube_seconds > 0 and stats.invalid == stats.tube_seconds * 2  # labelling and one refinement
    labels = read_vicr_video(tmp_path / "o" / f"{video.name}.json")
    assert list(labels.persons) == ["id_1"] and len(labels.persons["id_1"].frames) == video.total_frames
    assert all(f.action is None for f in labels.persons["id_1"].frames)
