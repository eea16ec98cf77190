"""The vision-language models that label tubes, behind one interface.

``backend.run(requests, on_reply)`` answers a list of :class:`VLMRequest` and calls
``on_reply(index, text)`` as each answer arrives (``text`` is None when the request failed for
good: the server stayed down, or every retry timed out), so the caller can store it at once.

* :class:`TransformersBackend`: Qwen3-VL in process (``Qwen3VLForConditionalGeneration`` +
  ``AutoProcessor``). The frames are decoded here and given as one video with
  ``VideoMetadata(fps, frames_indices, total_num_frames)`` and ``do_sample_frames=False``, so the
  prompt carries their true timestamps (without the metadata the processor assumes 24 fps).
* :class:`OpenAIBackend`: any OpenAI-compatible server (``vllm serve Qwen/Qwen3-VL-8B-Instruct``)
  through ``AsyncOpenAI``: bounded concurrency, a timeout per request, retries with exponential
  backoff on connection errors, timeouts, 408, 409, 429 and 5xx; a tube second goes as one video of
  JPEG frames with its frame indices and rate (or as separate images), with a JSON schema as
  ``response_format`` and always a ``max_tokens`` limit. The server is checked before any work
  (``GET {base_url}/models``, :data:`PROBE_TIMEOUT`); when :data:`DOWN_AFTER` attempts in a row get
  no HTTP answer it is checked again, and if it still does not answer the run stops
  (:class:`ServerDown`) instead of sending every request through every retry.
* :class:`ScriptedBackend`: a Python function answers (tests, and the synthetic benchmark's noisy
  ground-truth "VLM" of :mod:`pseudolabel.oracle`).

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
from pseudolabel.replies import SYSTEM

VLM_EXTRA = 'pip install -c constraints.txt -e ".[vlm]"'
PROBE_TIMEOUT = 5.0  # seconds for GET /models: a live server answers it at once, however busy its GPU
DOWN_AFTER = 3  # attempts in a row without an HTTP answer (refused, reset, timed out) before the server is checked
RETRY_DELAY = (0.5, 8.0)  # the first retry's wait, doubled each retry up to the second


class ServerDown(InputError):
    """The server stopped answering mid-run."""


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

    def _client(self):
        # Retries are ours (not the client's): each failed attempt is seen, so a dead server is
        # noticed after a few attempts instead of after every request's full round of retries.
        return self.openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout,
                                       max_retries=0)

    async def _probe(self, client) -> str | None:
        """None when ``GET {base_url}/models`` gets an HTTP answer (any status: some servers do not
        serve the list) within :data:`PROBE_TIMEOUT`, else why not."""
        try:
            await client.with_options(timeout=PROBE_TIMEOUT).models.list()
        except self.openai.APITimeoutError:
            return f"GET /models: no answer within {PROBE_TIMEOUT:g} s"
        except self.openai.APIConnectionError as exc:
            return f"GET /models: {_root_cause(exc)}"
        except (self.openai.APIError, ValueError):  # an HTTP answer, even an error or not a model list
            pass
        return None

    def check_server(self) -> None:
        """Raises :class:`InputError` naming ``base_url`` when no server answers there."""
        async def probe():
            client = self._client()
            try:
                return await self._probe(client)
            finally:
                await client.close()

        problem = asyncio.run(probe())
        if problem:
            raise InputError(f"{self.base_url}: no OpenAI-compatible server answers ({problem}): start it "
                             f"(vllm serve {self.model}) or give the right --base-url")

    async def _run(self, requests: list[VLMRequest], on_reply) -> None:
        client = self._client()
        gate = asyncio.Semaphore(self.concurrency)
        silent = [0]  # attempts in a row, over all requests, that got no HTTP answer
        probing = asyncio.Lock()

        async def no_answer(why: str) -> None:
            silent[0] += 1
            async with probing:  # one check at a time; the others wait for its verdict
                if silent[0] < DOWN_AFTER:
                    return
                problem = await self._probe(client)
                if problem:
                    raise ServerDown(f"{self.base_url}: the server stopped answering ({silent[0]} attempts in a row "
                                     f"failed: {why}; {problem})")
                silent[0] = 0  # it answers: those requests were only slow

        async def ask(request: VLMRequest) -> str | None:
            for attempt in range(self.retries + 1):
                if attempt:
                    await asyncio.sleep(min(RETRY_DELAY[0] * 2 ** (attempt - 1), RETRY_DELAY[1]))
                try:
                    response = await client.chat.completions.create(**self._body(request))
                except self.openai.APIStatusError as exc:
                    silent[0] = 0
                    if 400 <= exc.status_code < 500 and exc.status_code not in (408, 409, 429):
                        raise InputError(f"{self.base_url}: the server refused the request "
                                         f"({exc.status_code}: {str(exc).splitlines()[0][:200]})") from None
                    continue
                except self.openai.APIConnectionError as exc:  # timeouts too
                    await no_answer(_root_cause(exc))
                    continue
                silent[0] = 0
                return response.choices[0].message.content if response.choices else None
            return None  # still failing after the retries: not cached, a rerun asks again

        async def one(index: int, request: VLMRequest) -> None:
            async with gate:
                text = await ask(request)
            on_reply(index, text)

        tasks = [asyncio.ensure_future(one(index, request)) for index, request in enumerate(requests)]
        try:
            await asyncio.gather(*tasks)
        finally:  # the first error (or Ctrl-C) cancels the requests still in flight or waiting
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.close()

    def run(self, requests: list[VLMRequest], on_reply) -> None:
        asyncio.run(self._run(requests, on_reply))


def _root_cause(exc: BaseException) -> str:
    """The innermost error's text ("[Errno 111] Connect call failed"), or the error's own."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


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
    """The backend ``config`` names, a server checked to answer. ``oracle`` answers for ``backend: oracle``."""
    if config.backend == "transformers":
        return TransformersBackend(config.model, device=config.device, dtype=config.dtype, frames_as=config.frames_as)
    if config.backend == "openai":
        backend = OpenAIBackend(config.model, config.base_url, api_key=config.api_key, concurrency=config.concurrency,
                                timeout=config.timeout, retries=config.retries, frames_as=config.frames_as,
                                structured=config.structured)
        backend.check_server()
        return backend
    if oracle is None:
        raise InputError("backend oracle answers from a synthetic benchmark's ground truth: give --oracle-gt DATASET")
    return ScriptedBackend(oracle, model=f"oracle:{oracle.describe()}")
