"""The vision-language models that label tubes, behind one interface.

``backend.run(requests, on_reply)`` answers a list of :class:`VLMRequest` and calls
``on_reply(index, text)`` as each answer arrives (``text`` is None when the request failed for
good: the server stayed down, or every retry timed out), so the caller can store it at once.

* :class:`TransformersBackend`: Qwen3-VL in process (``Qwen3VLForConditionalGeneration`` +
  ``AutoProcessor``). The frames are decoded here and given as one video with
  ``VideoMetadata(fps, frames_indices, total_num_frames)`` and ``do_sample_frames=False``, so the
  prompt carries their true timestamps (without the metadata the processor assumes 24 fps).
* :class:`OpenAIBackend`: any OpenAI-compatible server (``vllm serve Qwen/Qwen3-VL-8B-Instruct``)
  through ``AsyncOpenAI``: bounded concurrency, a timeout per request, the client's own retries
  with exponential backoff on connection errors, timeouts, 429 and 5xx; a tube second goes as one
  video of JPEG frames with its frame indices and rate (or as separate images), with a JSON schema
  as ``response_format`` and always a ``max_tokens`` limit.
* :class:`ScriptedBackend`: a Python function answers (tests, and the synthetic benchmark's noisy
  ground-truth "VLM" of :mod:`data.pseudolabel.oracle`).

transformers, av and openai are the optional ``vlm`` extra: they are imported only here, when a
backend is built.
"""
from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from common.errors import InputError
from data.pseudolabel.replies import SYSTEM

VLM_EXTRA = 'pip install -c constraints.txt -e ".[vlm]"'


@dataclass
class VLMRequest:
    """One question: a text prompt, and for a tube second its frames (JPEG bytes, all one size)
    with their indices in the video and the video's rate and length."""

    prompt: str
    frames: list[bytes] = field(default_factory=list)
    frame_indices: list[int] = field(default_factory=list)
    fps: float = 0.0
    total_frames: int = 0
    schema: dict | None = None
    max_tokens: int = 256
    tag: tuple = ()  # what the request is about (kind, video, track, second, iteration, attempt): for scripted answers

    def timestamps(self) -> list[float]:
        return [i / self.fps for i in self.frame_indices] if self.fps else []


def decode_frames(frames: list[bytes]) -> np.ndarray:
    """JPEG bytes -> ``(T, H, W, 3)`` RGB uint8."""
    decoded = [cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR) for f in frames]
    return np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in decoded])


class ScriptedBackend:
    """``answer(request) -> text`` answers each request (``None`` for a failed one)."""

    def __init__(self, answer: Callable[[VLMRequest], str | None], model: str = "scripted"):
        self.answer, self.model = answer, model

    def run(self, requests: list[VLMRequest], on_reply) -> None:
        for index, request in enumerate(requests):
            on_reply(index, self.answer(request))


class TransformersBackend:
    """Qwen3-VL run by transformers in this process (GPU when there is one, else CPU).
    ``model`` is a hub id or a local folder (``save_pretrained`` layout)."""

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", frames_as: str = "video"):
        try:
            import torch
            from transformers import AutoProcessor, Qwen3VLForConditionalGeneration
        except ImportError as exc:
            raise InputError(f"the transformers backend needs the vlm extra ({VLM_EXTRA}): {exc}") from None
        from common.device import resolve_device

        self.model, self.frames_as = model, frames_as
        self.device = resolve_device(device)
        torch_dtype = {"auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
        try:
            self.processor = AutoProcessor.from_pretrained(model)
            self.net = Qwen3VLForConditionalGeneration.from_pretrained(model, dtype=torch_dtype).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise InputError(f"{model}: cannot load a Qwen3-VL model and processor ({str(exc).splitlines()[0][:160]})") from None

    def _inputs(self, request: VLMRequest):
        from transformers.video_utils import VideoMetadata

        content = []
        kwargs = {}
        if request.frames:
            frames = decode_frames(request.frames)
            if self.frames_as == "video":
                if len(frames) < 2:  # Qwen3-VL merges frames in pairs (temporal patch 2)
                    raise ValueError("a video needs at least 2 frames")
                content.append({"type": "video"})
                kwargs.update(videos=[frames], do_sample_frames=False, video_metadata=[VideoMetadata(
                    total_num_frames=request.total_frames, fps=request.fps, frames_indices=list(request.frame_indices))])
            else:
                content += [{"type": "image"} for _ in frames]
                kwargs["images"] = list(frames)
        content.append({"type": "text", "text": request.prompt})
        messages = [{"role": "system", "content": [{"type": "text", "text": SYSTEM}]}, {"role": "user", "content": content}]
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.processor(text=[text], return_tensors="pt", **kwargs).to(self.device)

    def generate(self, request: VLMRequest) -> str:
        import torch
        inputs = self._inputs(request)
        with torch.inference_mode():
            out = self.net.generate(**inputs, max_new_tokens=request.max_tokens, do_sample=False)
        return self.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]

    def run(self, requests: list[VLMRequest], on_reply) -> None:
        for index, request in enumerate(requests):
            on_reply(index, self.generate(request))


class OpenAIBackend:
    """An OpenAI-compatible chat-completions server (vLLM, SGLang, a hosted API)."""

    def __init__(self, model: str, base_url: str, api_key: str = "EMPTY", concurrency: int = 8, timeout: float = 120.0,
                 retries: int = 4, frames_as: str = "video", structured: bool = True):
        try:
            import openai
        except ImportError as exc:
            raise InputError(f"the openai backend needs the vlm extra ({VLM_EXTRA}): {exc}") from None
        self.openai = openai
        self.model, self.base_url, self.api_key = model, base_url, api_key
        self.concurrency, self.timeout, self.retries = max(int(concurrency), 1), timeout, retries
        self.frames_as, self.structured = frames_as, structured

    def _body(self, request: VLMRequest) -> dict:
        content = []
        extra = {}
        encoded = [base64.b64encode(f).decode("ascii") for f in request.frames]
        if encoded and self.frames_as == "video":
            content.append({"type": "video_url", "video_url": {"url": "data:video/jpeg;base64," + ",".join(encoded)}})
            # The frames' true indices and rate: the server must not resample or assume a rate.
            extra["media_io_kwargs"] = {"video": {"fps": request.fps, "frames_indices": list(request.frame_indices),
                                                  "total_num_frames": request.total_frames, "do_sample_frames": False}}
        else:
            content += [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + e}} for e in encoded]
        content.append({"type": "text", "text": request.prompt})
        body = {"model": self.model, "max_tokens": request.max_tokens, "temperature": 0.0,
                "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]}
        if request.schema is not None and self.structured:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": request.schema, "strict": True}}
        if extra:
            body["extra_body"] = extra
        return body

    async def _run(self, requests: list[VLMRequest], on_reply) -> None:
        client = self.openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout,
                                         max_retries=self.retries)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(index: int, request: VLMRequest) -> None:
            async with gate:
                try:
                    response = await client.chat.completions.create(**self._body(request))
                    text = response.choices[0].message.content if response.choices else None
                except self.openai.APIStatusError as exc:
                    if 400 <= exc.status_code < 500 and exc.status_code not in (408, 409, 429):
                        raise InputError(f"{self.base_url}: the server refused the request "
                                         f"({exc.status_code}: {str(exc).splitlines()[0][:200]})") from None
                    text = None  # still failing after the client's retries
                except self.openai.APIConnectionError:  # timeouts too, after the client's retries
                    text = None
            on_reply(index, text)

        try:
            await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
        finally:
            await client.close()

    def run(self, requests: list[VLMRequest], on_reply) -> None:
        asyncio.run(self._run(requests, on_reply))


@dataclass(frozen=True)
class VLMConfig:
    """Which backend labels the tubes and how (``config/pseudo_label.yaml`` holds the defaults)."""

    backend: str  # transformers | openai | oracle
    model: str
    base_url: str
    api_key: str
    concurrency: int
    timeout: float
    retries: int
    frames_as: str  # video | images
    structured: bool
    device: str
    dtype: str
    max_tokens: int

    def check(self) -> None:
        if self.backend not in ("transformers", "openai", "oracle"):
            raise ValueError(f"backend must be transformers, openai or oracle, got {self.backend!r}")
        if self.frames_as not in ("video", "images"):
            raise ValueError(f"frames_as must be video or images, got {self.frames_as!r}")
        if self.dtype not in ("auto", "bf16", "fp16", "fp32"):
            raise ValueError(f"dtype must be auto, bf16, fp16 or fp32, got {self.dtype!r}")
        if self.concurrency < 1 or self.timeout <= 0 or self.retries < 0 or self.max_tokens < 16:
            raise ValueError("need concurrency >= 1, timeout > 0, retries >= 0 and max_tokens >= 16")


def build_backend(config: VLMConfig, oracle=None):
    """The backend ``config`` names. ``oracle`` answers for ``backend: oracle``."""
    if config.backend == "transformers":
        return TransformersBackend(config.model, device=config.device, dtype=config.dtype, frames_as=config.frames_as)
    if config.backend == "openai":
        return OpenAIBackend(config.model, config.base_url, api_key=config.api_key, concurrency=config.concurrency,
                             timeout=config.timeout, retries=config.retries, frames_as=config.frames_as,
                             structured=config.structured)
    if oracle is None:
        raise InputError("backend oracle answers from a synthetic benchmark's ground truth: give --oracle-gt DATASET")
    return ScriptedBackend(oracle, model=f"oracle:{oracle.describe()}")
