"""What distillation reads: a sequence's own boxes and identities with a VLM's soft action labels
per track and second; unlabelled people are masked, never negatives; labels outside the map are
dropped and counted; validation labels move onto the pseudo-label map by name."""
import numpy as np
import pytest

from common.errors import InputError
from data.clip_dataset import ClipDataset
from data.formats.vicr import ActionCandidate, LabelMap, RecognitionResults, VicrTube, write_label_map, \
    write_recognition_results
from data.sequences import RenamedActions, mot_split, with_pseudo_labels


def test_soft_labels_replace_actions_and_unlabelled_people_are_masked(small_dataset, tmp_path):
    seq = mot_split(small_dataset, "train")[0]
    tracks = sorted(seq.track_ids())
    labelled = tracks[0]
    label_map = LabelMap({0: "running", 1: "walking"}, {0: ["jogging"]})
    tube = VicrTube({0: [ActionCandidate("jogging", 0.6), ActionCandidate("walking", 0.3), ActionCandidate("dancing", 0.1)]},
                    [(0, "running", 0.6)])
    write_recognition_results(tmp_path / seq.name / "tubes" / "recognition_results.json",
                              RecognitionResults(str(seq.root), ["running", "walking"], {}, {f"id_{labelled}": tube}))
    write_label_map(tmp_path / "label_map.txt", label_map)
    with pytest.warns(UserWarning, match="1 candidate labels outside"):
        seqs, loaded = with_pseudo_labels(mot_split(small_dataset, "train"), tmp_path)
    assert loaded.names == label_map.names and seqs[0].unmapped == 1
    assert type(seqs[1]).__name__ == "MotSequence"  # no pseudo-labels for it: it keeps its own labels
    frame = next(i for i in range(10) if labelled in seqs[0].annotations(i).track_ids)  # second 0
    ann = seqs[0].annotations(frame)
    k = list(ann.track_ids).index(labelled)
    np.testing.assert_allclose(ann.soft_actions[k], [2 / 3, 1 / 3])  # jogging -> running; dancing dropped
    assert (ann.actions == -1).all()  # hard labels are not used
    others = [i for i, t in enumerate(ann.track_ids) if t != labelled]
    assert (ann.soft_actions[others] == 0).all()  # unlabelled: no target at all
    later = seqs[0].annotations(len(seqs[0]) - 1)  # a second the VLM did not label
    assert (later.soft_actions == 0).all()
    clip = ClipDataset(seqs[:1], clip_len=4, stride=1, num_actions=2)[0]
    assert clip["soft_actions"].shape[-1] == 2 and (clip["actions"] == -1).all()


def test_validation_labels_move_onto_the_pseudo_map_by_name(small_dataset):
    seq = mot_split(small_dataset, "val")[0]
    source = seq.label_map
    target = LabelMap({0: "walking", 1: "standing", 2: "flying"})
    renamed = RenamedActions(seq, source, target)
    for index in range(len(seq)):
        before, after = seq.annotations(index), renamed.annotations(index)
        for a, b in zip(before.actions, after.actions):
            name = source.names.get(int(a))
            assert b == {"walking": 0, "standing": 1}.get(name, -1)


def test_a_working_folder_without_results_is_one_line(small_dataset, tmp_path):
    write_label_map(tmp_path / "label_map.txt", LabelMap({0: "a"}))
    with pytest.raises(InputError, match="no recognition_results.json for any of the sequences"):
        with_pseudo_labels(mot_split(small_dataset, "train"), tmp_path)
