"""Real MOT footage and still images as training clips: frame ranges, ignore regions, a weighted
mix of sources, CrowdHuman, COCO and YOLO-format files turned into moving clips."""
import json

import cv2
import numpy as np
import pytest
import torch

from common.errors import FormatError, InputError
from data.clip_dataset import ClipDataset, ClipTransform, ClipTransformConfig, collate_clips
from data.sources import SourceConfig, load_source
from data.stills import StillClipSequence, read_coco_persons, read_crowdhuman
from losses.detection_loss import DetectionLoss
from train.trainer import ResumableSampler


@pytest.mark.real_data
def test_pets09_frames_and_boxes_land_on_people(real_data):
    root = real_data / "mot" / "PETS09-S2L1"
    train = load_source(SourceConfig("mot", str(root), frames=(1, 430)), clip_span=15)[0]
    assert len(train) == 430
    dataset = ClipDataset([train], clip_len=8, stride=2, clip_step=2,
                          transform=ClipTransform(ClipTransformConfig(size=(576, 768), train=False)))
    assert max(int(s["frame_indices"].max()) for s in (dataset[0], dataset[len(dataset) - 1])) <= 429  # never past 430
    # People differ from the scene's background (the median over frames); a box shifted off them does not.
    frames = np.stack([train.frame(k).astype(np.float32) for k in range(0, 430, 43)])
    background = np.median(frames, axis=0)
    on, off = [], []
    for k in range(0, 430, 43):
        diff = np.abs(train.frame(k).astype(np.float32) - background).mean(axis=2)
        for x1, y1, x2, y2 in train.annotations(k).boxes.astype(int):
            on.append(diff[max(y1, 0):y2, max(x1, 0):x2].mean())
            off.append(diff[max(y1, 0):y2, min(x2 + 60, 767) - (x2 - x1):min(x2 + 60, 767)].mean())
    assert np.mean(on) > 2 * np.mean(off)
    val = load_source(SourceConfig("mot", str(root), frames=(431, 530)), clip_span=15)[0]
    assert len(val) == 100 and np.array_equal(val.frame(0), train.base.frame(430))
    ignored = [train.annotations(k).ignore_boxes for k in range(len(train))]
    assert sum(len(b) for b in ignored if b is not None) > 0  # zero-marked rows are ignore regions


def test_ignore_regions_are_neither_positive_nor_background():
    from models.heads.detection import level_points
    points = torch.cat(level_points([(8, 8), (4, 4), (2, 2)], (8, 16, 32), "cpu"))
    strides = torch.cat([torch.full((n,), s, dtype=torch.float32) for n, s in ((64, 8), (16, 16), (4, 32))])
    L = len(points)
    det = {"cls_logits": torch.full((1, L, 1), 3.0), "box_ltrb": torch.full((1, L, 4), 8.0),
           "centerness": torch.zeros(1, L), "points": points, "strides": strides}
    loss = DetectionLoss(quality="iou")
    none = torch.zeros(1, 1, 4), torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.bool)
    plain = loss(det, *none)["det_cls"]
    half = loss(det, *none, ignore_boxes=torch.tensor([[[0.0, 0, 64, 32]]]), ignore_valid=torch.ones(1, 1, dtype=torch.bool))
    # A confident score everywhere is wrong on background; inside the ignore region it costs nothing.
    inside = ((points[:, 0] <= 64) & (points[:, 1] <= 32)).float().mean()
    assert torch.isclose(half["det_cls"], plain * (1 - inside), rtol=1e-4)


def test_a_weighted_mix_takes_each_source_as_often_as_asked():
    sampler = ResumableSampler(30, batch_size=1, seed=0, groups=[(10, 2.0), (20, 0.5)])
    assert sampler.length == 30
    order = list(sampler)
    first = [i for i in order if i < 10]
    assert len(first) == 20 and sorted(set(first)) == list(range(10))  # the first source twice
    assert len(order) - len(first) == 10 and len({i for i in order if i >= 10}) == 10  # half of the second
    sampler.set_epoch(1)
    assert [i for i in sampler if i >= 10] != [i for i in order if i >= 10]  # another half next epoch


def _image(path, size=(120, 160)):
    image = np.full((*size, 3), 90, np.uint8)
    image[30:90, 40:60] = (0, 0, 255)  # a person at x 40-60, y 30-90
    cv2.imwrite(str(path), image)


def test_crowdhuman_and_coco_files_become_moving_clips(tmp_path):
    _image(tmp_path / "a1.jpg")
    (tmp_path / "train.odgt").write_text(json.dumps({"ID": "a1", "gtboxes": [
        {"tag": "person", "fbox": [40, 30, 20, 60], "extra": {"ignore": 0}},
        {"tag": "mask", "fbox": [100, 10, 30, 30]}]}) + "\n")
    images = read_crowdhuman(tmp_path / "train.odgt", tmp_path)
    assert images[0].boxes.tolist() == [[40, 30, 60, 90]] and images[0].ignore_boxes.tolist() == [[100, 10, 130, 40]]
    (tmp_path / "coco.json").write_text(json.dumps({
        "images": [{"id": 7, "file_name": "a1.jpg"}], "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
        "annotations": [{"image_id": 7, "bbox": [40, 30, 20, 60], "category_id": 1, "iscrowd": 0},
                        {"image_id": 7, "bbox": [0, 0, 10, 10], "category_id": 2, "iscrowd": 0},
                        {"image_id": 7, "bbox": [100, 10, 30, 30], "category_id": 1, "iscrowd": 1}]}))
    coco = read_coco_persons(tmp_path / "coco.json", tmp_path)
    assert coco[0].boxes.tolist() == images[0].boxes.tolist() and coco[0].ignore_boxes.tolist() == [[100, 10, 130, 40]]
    clip = StillClipSequence(images[0], length=8, seed=3)
    centres = []
    for t in range(8):
        ann, frame = clip.annotations(t), clip.frame(t)
        assert ann.track_ids.tolist() == [1] and (ann.actions == -1).all()
        x1, y1, x2, y2 = ann.boxes[0].round().astype(int)
        assert frame[y1 + 5:y2 - 5, x1 + 4:x2 - 4, 2].mean() > 200  # the box still holds the red person
        centres.append((ann.boxes[0, :2] + ann.boxes[0, 2:]) / 2)
    # One smooth motion: the box centre moves with no kinks (second differences under 0.03 px for
    # 300 seeds). Not its corner: the bounding box of a rotated person switches corners where the
    # rotation passes zero, a kink of up to 0.9 px that made a corner-based check flaky (the
    # motion's seed includes the image path, here a fresh temporary folder).
    steps = np.diff(np.array(centres), axis=0)
    assert np.abs(steps).sum() > 0 and np.abs(np.diff(steps, axis=0)).max() < 0.1
    batch = collate_clips([ClipDataset([clip], clip_len=4, stride=2, num_actions=6)[0]])
    assert batch["ignore_mask"].any() and (batch["identities"] == -1).all()
    (tmp_path / "bad.odgt").write_text('{"ID": "x", "gtboxes": [{"tag": "person", "fbox": [1, 2]}]}\n')
    with pytest.raises(FormatError, match=r"bad.odgt: line 1 gtboxes\[0\].fbox: expected a box"):
        read_crowdhuman(tmp_path / "bad.odgt", tmp_path)


def test_yolo_label_folders_become_moving_clips_of_their_people(tmp_path):
    images, labels = tmp_path / "images" / "train", tmp_path / "labels" / "train"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for name in ("a1", "b2", "c3"):
        _image(images / f"{name}.jpg")
    # a1: the person (class 0) at x 40-60, y 30-90 of 160x120, and a car; b2: only a car; c3: no label file.
    (labels / "a1.txt").write_text("0 0.3125 0.5 0.125 0.5\n2 0.9 0.1 0.1 0.1\n\n")
    (labels / "b2.txt").write_text("2 0.5 0.5 0.2 0.2\n")
    clips = load_source(SourceConfig("yolo", str(images)), clip_span=8, seed=3)
    assert [c.name for c in clips] == ["still:a1.jpg"]
    assert np.allclose(clips[0].image.in_pixels(160, 120)[0], [[40, 30, 60, 90]])
    for t in (0, 7):
        ann, frame = clips[0].annotations(t), clips[0].frame(t)
        assert ann.track_ids.tolist() == [1]
        x1, y1, x2, y2 = ann.boxes[0].round().astype(int)
        assert frame[y1 + 5:y2 - 5, x1 + 4:x2 - 4, 2].mean() > 200  # the box still holds the red person
    # Another person class (a single-class dataset numbered otherwise), the labels folder given.
    cars = load_source(SourceConfig("yolo", str(images), annotations=str(labels), person_class=2), clip_span=8)
    assert [c.name for c in cars] == ["still:a1.jpg", "still:b2.jpg"]
    with pytest.raises(InputError, match=r"no image under .* with a person \(class 5\)"):
        load_source(SourceConfig("yolo", str(images), person_class=5), clip_span=8)
    (labels / "a1.txt").write_text("0 0.3 0.5 0.1 0.5\n0 120 60 20 60\n")  # pixels, not fractions
    with pytest.raises(FormatError, match=r"a1.txt:2: box \[120.0, 60.0, 20.0, 60.0\] is not in fractions"):
        load_source(SourceConfig("yolo", str(images)), clip_span=8)
    (labels / "a1.txt").write_text("person 0.3 0.5 0.1 0.5\n")
    with pytest.raises(FormatError, match=r"a1.txt:1: expected 'class cx cy w h' numbers"):
        load_source(SourceConfig("yolo", str(images)), clip_span=8)
    (labels / "a1.txt").write_text("0 0.3 0.5\n")
    with pytest.raises(FormatError, match=r"a1.txt:1: expected 'class cx cy w h'"):
        load_source(SourceConfig("yolo", str(images)), clip_span=8)
    with pytest.raises(InputError, match=r"no 'images' folder in the path"):
        load_source(SourceConfig("yolo", str(labels)), clip_span=8)
    with pytest.raises(InputError, match=r"YOLO label folder not found"):
        load_source(SourceConfig("yolo", str(images), annotations=str(tmp_path / "nowhere")), clip_span=8)


@pytest.mark.real_data
def test_coco128_yolo_labels_hold_its_people(real_data):
    root = real_data / "coco128"
    clips = load_source(SourceConfig("yolo", str(root / "images" / "train2017"),
                                     annotations=str(root / "object_detection" / "labels" / "train2017")), clip_span=8)
    # Its README counts 62 label files with people; 000000000659.txt has no image, and a label
    # without its image is left out (as ultralytics does).
    assert len(clips) == 61
    for clip in clips[:5]:
        frame = clip.frame(0)
        h, w = frame.shape[:2]
        people, ignored = clip.image.in_pixels(w, h)  # before the clip's random motion
        assert len(people) >= 1 and len(ignored) == 0
        assert (people[:, :2] >= 0).all() and (people[:, 2] <= w).all() and (people[:, 3] <= h).all()
        assert (people[:, 2:] > people[:, :2]).all()


def test_a_frame_range_past_the_end_is_refused_naming_the_source(small_dataset):
    """It was clipped to the sequence without a word (and a range wholly past the end then failed
    in the ReID loss)."""
    from common.errors import InputError
    seq = small_dataset / "train" / "SYN-train-01"  # 40 frames
    assert len(load_source(SourceConfig("mot", str(seq), frames=(31, 40)), clip_span=4)[0]) == 10
    with pytest.raises(InputError) as info:
        load_source(SourceConfig("mot", str(seq), frames=(1, 900)), clip_span=4, where="config.data.sources[0]")
    assert str(info.value) == f"config.data.sources[0].frames: [1, 900] but {seq} has 40 frames"


def test_val_sources_validate_a_run_that_trains_on_data_root(small_dataset, tmp_path):
    """val_sources without sources were ignored: validation silently used data.root's val split."""
    from omegaconf import OmegaConf

    from train.config import check_train_config
    from train.run import build_datasets, compose_config
    cfg = compose_config([f"data.root={small_dataset}", "data.size=[128,192]", "data.clip_len=4", "data.stride=1",
                          f"runs_root={tmp_path}"])
    cfg.data.val_sources = [{"kind": "mot", "root": str(small_dataset / "train" / "SYN-train-02"), "frames": [1, 20]}]
    config = check_train_config(OmegaConf.to_container(cfg, resolve=True))
    train_set, val_set, label_map, _ = build_datasets(config.data)
    assert [(s.name, len(s)) for s in val_set.sequences] == [("SYN-train-02", 20)]
    assert sorted(s.name for s in train_set.sequences) == ["SYN-train-01", "SYN-train-02"]
    assert label_map.names[0] == "standing"


def test_a_dataset_format_is_registered_once_and_does_something():
    from data.registry import register_format, source_kinds
    with pytest.raises(ValueError, match="'mot' is already registered"):
        register_format("mot", load=lambda source, ctx: [])
    with pytest.raises(ValueError, match="give load"):
        register_format("nothing")
    with pytest.raises(ValueError, match="find_gt needs gt_layout"):
        register_format("no-layout", find_gt=lambda folder: [])
    assert source_kinds() == ["synthetic", "mot", "crowdhuman", "coco", "yolo", "clips"]


def test_a_source_of_an_unknown_kind_built_in_code_is_named(tmp_path):
    from common.errors import InputError
    with pytest.raises(InputError, match=r"^config.data.sources\[0\].kind: expected one of 'synthetic', .*, got 'mott'$"):
        load_source(SourceConfig("mott", str(tmp_path)), clip_span=4, where="config.data.sources[0]")
