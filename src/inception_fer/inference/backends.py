"""Inference backends: what turns gray uint8 face crops into emotion probabilities.

- :class:`TorchBackend`: the PyTorch network, its BatchNorm folded into its convolutions, through
  :func:`~inception_fer.evaluation.tta.predict_placed` (CPU or CUDA).
- :class:`OnnxBackend`: the network exported to ONNX (:mod:`inception_fer.export`), run by ONNX
  Runtime on the CPU. The graph normalises the pixels and applies softmax itself, so the TTA
  views are built from the raw pixels (normalisation and the views commute exactly) and their
  probabilities averaged as :func:`predict_probs` averages them.

Both give the same probabilities to about 1e-6.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from ..errors import CheckpointError, DataError, InceptionFerError
from ..evaluation.tta import TTA_MODES, predict_placed, tta_views
from ..export.onnx_export import (
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_NAME,
    in_chans,
    meta_from_onnx_metadata,
    onnx_model_bytes,
)
from ..export.quantize import saturates_here
from ..models.fold_bn import fold_batchnorm
from ..training.checkpoint import Checkpoint, CheckpointMeta
from ..training.fit import resolve_device

BACKENDS: tuple[str, ...] = ("torch", "onnx")
"""Valid backend names."""
PARALLEL_CHUNK = 32
"""Faces per ONNX Runtime run when :class:`OnnxBackend` spreads a batch over its threads: small
enough for each thread's activations to stay in its core's cache (batch 256 on 2 cores, int8:
chunks of 32 or 64 ran 1.3x as fast as chunks of 128)."""


class Backend(ABC):
    """Probabilities of face crops for one model; :attr:`meta` describes the model, which runs
    on :attr:`device`."""

    name: str
    meta: CheckpointMeta
    device: torch.device

    @abstractmethod
    def _predict(self, batch: np.ndarray, tta: str, batch_size: int) -> np.ndarray:
        """Probabilities (N, K) of a non-empty uint8 batch (N, C, S, S)."""

    def predict_probs(
        self, crops: np.ndarray, tta: str = "none", batch_size: int = 64
    ) -> np.ndarray:
        """Softmax probabilities (N, K) float32, in the model's class order, of gray uint8 crops
        (N, S, S), ``batch_size`` crops per forward pass, averaged over the TTA views."""
        if tta not in TTA_MODES:
            raise InceptionFerError(
                f"unknown TTA mode {tta!r}; valid modes: {', '.join(TTA_MODES)}"
            )
        if batch_size < 1:
            raise InceptionFerError(f"batch_size must be at least 1, got {batch_size}")
        size = self.meta.input_size
        if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8:
            kind = getattr(crops, "dtype", type(crops).__name__)
            raise DataError(f"face crops must be a uint8 array, got {kind}")
        if crops.ndim != 3 or crops.shape[1:] != (size, size):
            raise DataError(
                f"face crops must be shaped (N, {size}, {size}), got shape {crops.shape}"
            )
        if not len(crops):
            return np.zeros((0, len(self.meta.class_names)), dtype=np.float32)
        batch = np.repeat(crops[:, None], in_chans(self.meta), axis=1)
        return self._predict(batch, tta, batch_size)


class TorchBackend(Backend):
    """The checkpoint's PyTorch network on ``device``, in eval mode, with its BatchNorm layers
    folded into the convolutions before them (:func:`~inception_fer.models.fold_bn.fold_batchnorm`:
    the same probabilities, faster). ``checkpoint.model`` itself is left as it is."""

    name = "torch"

    def __init__(self, checkpoint: Checkpoint, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.meta = checkpoint.meta
        model = fold_batchnorm(checkpoint.model).to(self.device)
        self.model: nn.Module = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def _predict(self, batch: np.ndarray, tta: str, batch_size: int) -> np.ndarray:
        return predict_placed(
            self.model,
            batch,
            mean=self.meta.mean,
            std=self.meta.std,
            tta=tta,
            batch_size=batch_size,
            device=self.device,
        )


class OnnxBackend(Backend):
    """An exported model (file path or serialised bytes) in ONNX Runtime on the CPU.

    A batch of up to :data:`PARALLEL_CHUNK` faces runs in one session with ``threads`` intra-op
    threads (None: ONNX Runtime's default, one per physical core): the lowest latency for a
    face. A larger batch is split into ``threads`` (None: every CPU this process may use)
    contiguous shares that as many single-threaded sessions run side by side,
    :data:`PARALLEL_CHUNK` faces at a time. ONNX Runtime's intra-op threads synchronise after
    every layer, which costs more than the small layers of these networks take: on 2 cores, at
    batch 256, the shares give 1.2-1.4x the faces/s in int8 and 1.1x in float32. Graph
    optimisation is at its highest level (``ORT_ENABLE_ALL``). Safe to call from several
    threads at once.
    """

    name = "onnx"
    device = torch.device("cpu")

    def __init__(self, model: bytes | str | os.PathLike[str], threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise InceptionFerError(f"threads must be at least 1, got {threads}")
        self.threads = threads or available_cpus()
        source = "the exported model" if isinstance(model, bytes) else str(model)
        if not isinstance(model, bytes) and not Path(model).is_file():
            raise CheckpointError(f"ONNX model not found: {model}")
        self._model = model if isinstance(model, bytes) else os.fspath(model)
        try:
            self.session = self._open_session(threads or 0)  # 0: one per physical core
        except Exception as error:  # ONNX Runtime's errors derive from Exception only
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CheckpointError(f"{source} is not a readable ONNX model: {message}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.meta = meta_from_onnx_metadata(props, source)
        quantization = json.loads(props[METADATA_KEY]).get("quantization", {})
        if saturates_here(quantization):
            warnings.warn(
                f"{source} has full-range int8 weights, which overflow this CPU's int8 kernels "
                "(x86 without VNNI): its probabilities can be far off. Export it again without "
                "--int8-full-range",
                RuntimeWarning,
                stacklevel=2,
            )
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
            raise CheckpointError(
                f"{source} takes {inputs} and gives {outputs}, not {INPUT_NAME!r} and "
                f"{OUTPUT_NAME!r}: export it with `inception-fer export`"
            )
        self._workers: list[ort.InferenceSession] = []
        self._pool: ThreadPoolExecutor | None = None
        self._workers_lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, threads: int | None = None) -> OnnxBackend:
        """Export ``checkpoint`` in memory and open it (about a second for the shipped model)."""
        return cls(onnx_model_bytes(checkpoint), threads=threads)

    def _open_session(self, threads: int) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(self._model, options, providers=["CPUExecutionProvider"])

    def _parallel_sessions(self) -> tuple[list[ort.InferenceSession], ThreadPoolExecutor]:
        """The single-threaded sessions and their thread pool, opened on first use."""
        with self._workers_lock:
            if self._pool is None:
                self._workers = [self._open_session(1) for _ in range(self.threads)]
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="onnx")
            return self._workers, self._pool

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """The graph's probabilities (B, K) of float32 pixels 0-255 (B, C, S, S)."""
        if self.threads == 1 or len(pixels) <= PARALLEL_CHUNK:
            return _run_chunks(self.session, pixels)
        sessions, pool = self._parallel_sessions()
        shares = min(self.threads, -(-len(pixels) // PARALLEL_CHUNK))
        bounds = np.linspace(0, len(pixels), shares + 1).round().astype(int)
        futures = [
            pool.submit(_run_chunks, session, pixels[start:stop])
            for session, start, stop in zip(sessions, bounds[:-1], bounds[1:], strict=False)
        ]
        return np.concatenate([future.result() for future in futures])

    def _predict(self, batch: np.ndarray, tta: str, batch_size: int) -> np.ndarray:
        chunks = []
        for start in range(0, len(batch), batch_size):
            x = torch.from_numpy(batch[start : start + batch_size]).float()
            views = [self.run(v.contiguous().numpy()) for v in tta_views(x, tta)]
            chunks.append(torch.from_numpy(np.stack(views)).mean(dim=0).numpy())
        return np.concatenate(chunks)


def _run_chunks(session: ort.InferenceSession, pixels: np.ndarray) -> np.ndarray:
    """``session``'s probabilities of ``pixels``, :data:`PARALLEL_CHUNK` faces per run."""
    outputs = [
        session.run([OUTPUT_NAME], {INPUT_NAME: pixels[start : start + PARALLEL_CHUNK]})[0]
        for start in range(0, len(pixels), PARALLEL_CHUNK)
    ]
    return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)


def available_cpus() -> int:
    """The number of CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def create_backend(
    name: str,
    model: Checkpoint | str | os.PathLike[str],
    device: str = "cpu",
    *,
    threads: int | None = None,
) -> Backend:
    """The backend ``name`` (one of :data:`BACKENDS`) for a loaded checkpoint, or, for ``onnx``,
    an exported ``.onnx`` file too. ``onnx`` runs on the CPU only (``device`` ``cpu`` or
    ``auto``); ``threads`` is its CPU thread count (see :class:`OnnxBackend`; ``torch`` takes
    PyTorch's process-wide count)."""
    if name not in BACKENDS:
        raise InceptionFerError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}")
    if threads is not None and threads < 1:
        raise InceptionFerError(f"threads must be at least 1, got {threads}")
    if name == "torch":
        if not isinstance(model, Checkpoint):
            raise InceptionFerError(
                f"backend 'torch' needs a checkpoint, not {str(model)!r}; an .onnx file runs "
                "with backend 'onnx'"
            )
        return TorchBackend(model, resolve_device(device))
    if device not in ("cpu", "auto"):
        raise InceptionFerError(
            f"backend 'onnx' runs on the CPU only, not on {device!r}; "
            "use device 'cpu' or backend 'torch'"
        )
    if isinstance(model, Checkpoint):
        return OnnxBackend.from_checkpoint(model, threads=threads)
    return OnnxBackend(model, threads=threads)
