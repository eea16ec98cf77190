"""V-ICR-style pseudo-labelling (seed 000), resumable: videos -> tracks -> tubes -> per-second VLM
labels -> a label map -> iterative refinement -> seed 000's files.

1. **Tracks and tubes** per video (:mod:`pseudolabel.tubes`); short tracks are skipped and
   counted.
2. **Labelling**: every tube second is asked for its top-k actions with confidences, as JSON.
3. **Label map**: a predefined ``label_map.txt`` (then every answer is restricted to it), or the
   VLM groups the raw actions of all videos into one (a deterministic grouping when its reply is
   unusable), so one network can learn every video's labels.
4. **Refinement** (``refinement_iterations`` passes): each second is asked again with its own
   earlier answer and its neighbouring seconds' labels, restricted to the label map.
5. **Outputs**: ``<working>/<video>/tubes/metadata.json`` (tracks and tubes),
   ``<working>/<video>/tubes/recognition_results.json`` (top-k per second, final actions,
   id_time_actions), ``<working>/<video>/label_map.txt`` (grouped format), ``<working>/label_map.txt``
   (the run's map), ``<output>/<video>.json`` (frame-level boxes and actions) and
   ``<working>/metadata.json`` (the run: its videos, those skipped as unreadable, its counts). With
   ``skip_recognition`` (seed 000's "detection only"): the tracks and tubes only (``metadata.json``
   files, and each video's tracks as ``<output>/<video>.txt``, MOT), no cache, no VLM.

Every answer is stored in the :class:`~pseudolabel.cache.AnswerCache` the moment it arrives;
a rerun asks only what is missing. A reply that cannot be read is asked once more, then recorded
as invalid; the run goes on. A label outside the label map is dropped and counted (there is no
"other" class: an answer naming only unknown actions counts as invalid).
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


from common.errors import InputError
from common.io import atomic_write_json
from common.progress import ProgressBar
from data.formats.mot import Tracks, rows_from_tracks, write_mot_file
from data.formats.vicr import (ActionCandidate, LabelMap, RecognitionResults, VicrFrame, VicrPerson, VicrTube,
                               VicrVideoInfo, VicrVideoLabels, write_label_map, write_recognition_results,
                               write_vicr_video)
from pseudolabel import replies
from pseudolabel.cache import AnswerCache, prompt_hash
from data.tubes import TubeSecond, plan_tubes, second_of
from pseudolabel.tubes import VideoSource, extract_frames, keep_long_tracks
from pseudolabel.vlm import ServerDown, VLMRequest

REASK = (" Your previous reply could not be read. Reply with JSON only, exactly in the requested form, "
         "with nothing before or after it.")


@dataclass(frozen=True)
class LabellingConfig:
    frames_per_second: int  # frames of a tube second the VLM sees
    context_margin: float  # crop = the person's box widened by this fraction on every side
    min_pixels: int  # pixel budget of one frame
    max_pixels: int
    min_track_frames: int  # shorter tracks are skipped (seed 000: 30)
    top_k: int  # candidates per second
    refinement_iterations: int  # seed 000: 5
    jpeg_quality: int

    def check(self) -> None:
        if self.frames_per_second < 2:
            raise ValueError("frames_per_second must be at least 2 (Qwen3-VL merges frames in pairs)")
        if not 0 <= self.context_margin <= 2 or not 32 * 32 <= self.min_pixels <= self.max_pixels:
            raise ValueError("need context_margin in [0, 2] and 1024 <= min_pixels <= max_pixels")
        if self.min_track_frames < 2 or self.top_k < 1 or self.refinement_iterations < 0:
            raise ValueError("need min_track_frames >= 2, top_k >= 1 and refinement_iterations >= 0")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")


@dataclass
class Stats:
    """What the progress line and the final summary report."""

    requests: int = 0  # asked of the VLM in this run
    cache_hits: int = 0
    invalid: int = 0  # replies that stayed unreadable after one re-ask
    failed: int = 0  # requests the server never answered (not cached: a rerun asks again)
    unmapped: int = 0  # actions outside the label map, dropped
    tracks: int = 0
    short_tracks: int = 0
    tube_seconds: int = 0
    labelled: int = 0  # tube seconds with a label at the end
    skipped: list = field(default_factory=list)  # (path, error) of inputs that could not be read

    def line(self) -> str:
        return (f"requests {self.requests} cache hits {self.cache_hits} invalid {self.invalid}"
                + (f" failed {self.failed}" if self.failed else ""))


@dataclass
class _Video:
    source: VideoSource
    tracks: Tracks
    tubes: list[TubeSecond]
    answers: dict[tuple[int, int], list[ActionCandidate]] = field(default_factory=dict)  # (track, second) -> top-k


class Labeller:
    """Asks the backend, through the cache, with one re-ask of unreadable replies."""

    def __init__(self, backend, cache: AnswerCache, stats: Stats, log):
        self.backend, self.cache, self.stats, self.log = backend, cache, stats, log

    def ask(self, requests: list[VLMRequest], parse, what: str) -> list:
        """``parse(text) -> value or None`` for each request's reply; None where the reply stayed
        invalid after one re-ask, or the request failed. Each request's ``tag`` is ``(kind,
        video, track, second, iteration)``."""
        results: list = [None] * len(requests)
        todo = list(range(len(requests)))
        for attempt in (0, 1):
            replied = self._attempt(requests, todo, attempt, parse, results, what)
            # Only readable-but-invalid replies are asked again; a failed request waits for a rerun.
            todo = [i for i in todo if results[i] is None and i in replied]
        self.stats.invalid += len(todo)
        return results

    def _attempt(self, requests, todo, attempt: int, parse, results: list, what: str) -> set[int]:
        """Asks ``todo`` (from the cache first); fills ``results``; returns who got a reply."""
        replied, pending = set(), []
        for i in todo:
            request = requests[i] if attempt == 0 else _reask(requests[i])
            kind, video, track, second, iteration = request.tag
            key = self.cache.key(video, f"{kind}:{track}", second, iteration, attempt, _request_hash(request),
                                 self.backend.model)
            cached = self.cache.get(key)
            if cached is not None:
                self.stats.cache_hits += 1
                replied.add(i)
                results[i] = parse(cached)
            else:
                pending.append((i, request, key))
        if not pending:
            return replied
        bar = ProgressBar(len(pending), unit="requests")
        done = [0]

        def on_reply(k: int, text: str | None) -> None:
            i, request, key = pending[k]
            kind, video, track, second, iteration = request.tag
            done[0] += 1
            self.stats.requests += 1
            if text is None:
                self.stats.failed += 1
            else:
                self.cache.put(key, text, video=video, track=f"{kind}:{track}", second=second, iteration=iteration,
                               attempt=attempt, model=self.backend.model)
                replied.add(i)
                results[i] = parse(text)
            bar.update(done[0], f"{what} {self.stats.line()}")

        self.backend.run([r for _, r, _ in pending], on_reply)
        bar.close()
        return replied


def _request_hash(request: VLMRequest) -> str:
    return prompt_hash(request.prompt, request.frame_indices, [len(f) for f in request.frames], request.schema,
                       request.max_tokens)


def _reask(request: VLMRequest) -> VLMRequest:
    return VLMRequest(request.prompt + REASK, request.frames, request.frame_indices, request.fps, request.total_frames,
                      request.schema, request.max_tokens, request.tag)


def _tube_request(video: _Video, tube: TubeSecond, prompt: str, schema: dict, iteration: int,
                  max_tokens: int) -> VLMRequest:
    source = video.source
    return VLMRequest(prompt, tube.frames, tube.frame_indices, source.fps, source.total_frames, schema, max_tokens,
                      ("label", source.name, tube.track, tube.second, iteration))


def _seconds(tube: TubeSecond, fps: float) -> tuple[float, float]:
    return tube.frame_indices[0] / fps, (tube.frame_indices[-1] + 1) / fps


def pseudo_label(videos: list[VideoSource], tracks_of, *, backend, config: LabellingConfig, working_dir: Path,
                 output_dir: Path, label_map: LabelMap | None = None, skip_recognition: bool = False,
                 max_tokens: int = 256, log=None, skipped=()) -> Stats:
    """Runs the pipeline over ``videos``; ``tracks_of(video) -> Tracks`` gives each one's tracks.
    ``skipped``: the ``(path, error)`` of inputs that could not be read, for the run's summary."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    stats = Stats(skipped=list(skipped))
    if skip_recognition:
        log("--skip-recognition: tracks and tubes only (tubes/metadata.json, <output>/<video>.txt): no VLM, "
            "no answer cache, no action labels")
    cache = None if skip_recognition else AnswerCache(working_dir / "vlm_cache.sqlite")
    try:
        prepared = []
        for source in videos:
            log(f"{source.name}: tracks and tubes")
            tracks, short = keep_long_tracks(tracks_of(source), config.min_track_frames)
            tubes = plan_tubes(tracks, source.fps, source.width, source.height, config.frames_per_second,
                               config.context_margin, config.min_pixels, config.max_pixels)
            if not skip_recognition:
                extract_frames(source, tubes, config.jpeg_quality, log=log)
                tubes = [t for t in tubes if len(t.frames) >= 2]
            stats.tracks += len(tracks)
            stats.short_tracks += short
            stats.tube_seconds += len(tubes)
            log(f"{source.name}: {len(tracks)} tracks of at least {config.min_track_frames} frames "
                f"({short} shorter ones skipped), {len(tubes)} tube seconds")
            video = _Video(source, tracks, tubes)
            _write_metadata(working_dir / source.name / "tubes" / "metadata.json", video, short, config)
            prepared.append(video)
        if skip_recognition:
            for video in prepared:
                write_mot_file(output_dir / f"{video.source.name}.txt", rows_from_tracks(video.tracks))
        else:
            labeller = Labeller(backend, cache, stats, log)
            try:
                label_map = _label(prepared, labeller, config, label_map, max_tokens, stats, log)
            except ServerDown as exc:
                raise InputError(f"{exc}; the {len(cache)} answers received so far are kept in {cache.path}: "
                                 "rerun when the server answers") from None
            write_label_map(working_dir / "label_map.txt", label_map)
            for video in prepared:
                _write_outputs(video, label_map, working_dir, output_dir)
            stats.labelled = sum(len(v.answers) for v in prepared)
    finally:
        if cache is not None:
            cache.close()
    _write_run(working_dir / "metadata.json", prepared, stats, skip_recognition)
    skipped_text = (f" ({len(stats.skipped)} skipped: {', '.join(str(p) for p, _ in stats.skipped)})"
                    if stats.skipped else "")
    log(f"done: {len(videos)} videos{skipped_text}, {stats.tracks} tracks ({stats.short_tracks} too short), "
        f"{stats.tube_seconds} tube seconds"
        + ("" if skip_recognition else f", {stats.labelled} labelled; {stats.line()}, "
                                       f"{stats.unmapped} labels outside the label map dropped"))
    return stats


def _label(videos: list[_Video], labeller: Labeller, config: LabellingConfig, label_map: LabelMap | None,
           max_tokens: int, stats: Stats, log) -> LabelMap:
    k = config.top_k
    allowed = [label_map.names[i] for i in label_map.ids()] if label_map else None
    matcher = replies.LabelMatcher(label_map) if label_map else None

    def parse_with(m):
        def parse(text):
            parsed = replies.parse_candidates(text, k, m)
            stats.unmapped += parsed.unmapped
            return parsed.candidates
        return parse

    # Labelling: every tube second of every video.
    items = [(v, t) for v in videos for t in v.tubes]
    requests = [_tube_request(v, t, replies.labelling_prompt(t.second, *_seconds(t, v.source.fps), k, allowed),
                              replies.answer_schema(k, allowed), 0, max_tokens) for v, t in items]
    answers = labeller.ask(requests, parse_with(matcher), "labelling")
    if label_map is None:
        label_map = _group(answers, labeller, max_tokens, log)
        matcher = replies.LabelMatcher(label_map)
        allowed = [label_map.names[i] for i in label_map.ids()]
        answers = [_remap(a, matcher, k) for a in answers]
    for (video, tube), answer in zip(items, answers):
        if answer:
            video.answers[(tube.track, tube.second)] = answer

    # Refinement: each pass asks every second again with its neighbours' labels from the last one.
    for iteration in range(1, config.refinement_iterations + 1):
        requests = []
        for video, tube in items:
            earlier = video.answers.get((tube.track, tube.second), [])
            neighbours = {s: video.answers[(tube.track, s)][0].action for s in (tube.second - 1, tube.second + 1)
                          if (tube.track, s) in video.answers}
            prompt = replies.refinement_prompt(tube.second, *_seconds(tube, video.source.fps), k, allowed, earlier,
                                               neighbours)
            requests.append(_tube_request(video, tube, prompt, replies.answer_schema(k, allowed), iteration, max_tokens))
        answers = labeller.ask(requests, parse_with(matcher), f"refinement {iteration}/{config.refinement_iterations}")
        for (video, tube), answer in zip(items, answers):
            if answer:  # an invalid reply keeps the second's earlier answer
                video.answers[(tube.track, tube.second)] = answer
    return label_map


def _remap(candidates: list[ActionCandidate] | None, matcher: replies.LabelMatcher, k: int):
    """Raw-action candidates -> candidates named by the label map (merged where two map to one)."""
    if not candidates:
        return candidates
    text = json.dumps({"actions": [{"action": c.action, "confidence": c.confidence} for c in candidates]})
    return replies.parse_candidates(text, k, matcher).candidates


def _group(answers: list, labeller: Labeller, max_tokens: int, log) -> LabelMap:
    """One label map for the raw actions of every video: the VLM's grouping when usable, else
    the deterministic one."""
    counts = Counter(c.action for answer in answers if answer for c in answer)
    actions = sorted(counts, key=lambda a: (-counts[a], a))
    if not actions:
        stats = labeller.stats
        why = (f"{stats.failed} requests got no answer: check the server" if stats.failed else
               f"{stats.invalid} replies stayed unreadable (they are in {labeller.cache.path}): check the model")
        log(f"warning: no tube second got a readable label, so the label map is empty ({why})")
        return LabelMap({})
    request = VLMRequest(replies.grouping_prompt(actions), schema=replies.GROUPING_SCHEMA,
                         max_tokens=max(max_tokens, 32 * len(actions)), tag=("group", "*", 0, 0, 0))
    groups = labeller.ask([request], lambda text: replies.parse_groups(text, actions), "grouping")[0]
    if groups is None:
        log(f"note: the grouping reply was unusable: {len(actions)} raw actions grouped by their normalised text")
        groups = replies.fallback_groups(actions, counts)
    return replies.label_map_from_groups(groups, counts)


def _write_metadata(path: Path, video: _Video, short: int, config: LabellingConfig) -> None:
    s = video.source
    atomic_write_json(path, {
        "video": {"name": s.name, "path": str(s.path), "fps": s.fps, "width": s.width, "height": s.height,
                  "total_frames": s.total_frames},
        "min_track_frames": config.min_track_frames, "skipped_short_tracks": short,
        "tracks": {f"id_{t}": {"first_frame": items[0][0], "last_frame": items[-1][0], "frames": len(items)}
                   for t, items in video.tracks.items()},
        "tubes": [{"id": f"id_{t.track}", "second": t.second, "frame_indices": t.frame_indices, "crop": list(t.crop),
                   "size": list(t.size)} for t in video.tubes]})


def _write_run(path: Path, videos: list[_Video], stats: Stats, skip_recognition: bool) -> None:
    counts = {k: v for k, v in vars(stats).items() if k != "skipped"}
    atomic_write_json(path, {
        "videos": {v.source.name: str(v.source.path) for v in videos},
        "skipped": [{"path": str(p), "error": error} for p, error in stats.skipped],
        "skip_recognition": skip_recognition, "stats": counts})


def _write_outputs(video: _Video, label_map: LabelMap, working_dir: Path, output_dir: Path) -> None:
    s = video.source
    ids = label_map.name_to_id()
    by_track: dict[int, dict[int, list[ActionCandidate]]] = {}
    for (track, second), answer in video.answers.items():
        by_track.setdefault(track, {})[second] = answer
    tubes = {f"id_{t}": VicrTube(temporal_labels=dict(sorted(seconds.items())),
                                 final_actions=[(sec, a[0].action, a[0].confidence) for sec, a in sorted(seconds.items())])
             for t, seconds in sorted(by_track.items())}
    groups = {label_map.names[i]: list(label_map.groups.get(i, [])) for i in label_map.ids()}
    write_recognition_results(working_dir / s.name / "tubes" / "recognition_results.json",
                              RecognitionResults(str(s.path), RecognitionResults.labelmap_of(label_map), groups, tubes))
    write_label_map(working_dir / s.name / "label_map.txt", label_map)
    persons = {}
    for track, items in video.tracks.items():
        seconds = by_track.get(track, {})
        frames = []
        for frame, box in items:
            top = seconds.get(second_of(frame, s.fps), [None])[0]
            action = top.action if top is not None else None
            # Whole pixels, as V-ICR writes them.
            frames.append(VicrFrame(frame, round(frame / s.fps, 4), tuple(int(round(float(v))) for v in box), action,
                                    ids.get(action.lower()) if action else None))
        timeline = {sec: (a[0].action, ids.get(a[0].action.lower())) for sec, a in sorted(seconds.items())}
        persons[f"id_{track}"] = VicrPerson(frames=frames, action_timeline=timeline)
    info = VicrVideoInfo(s.name, s.fps, s.width, s.height, s.total_frames, s.total_frames / s.fps)
    write_vicr_video(output_dir / f"{s.name}.json", VicrVideoLabels(info, label_map, persons))
