"""Model replicas behind one call: the backend of this process, or N backends as Ray actors.

A stage cuts its work into items and hands them to `replicas.map_unordered(func, items)`; every
replica runs `func(backend, item)` on its own model and the stage receives `(position, result)`
pairs as they finish. `InProcess` runs the items in order on one backend (no Ray); `RayReplicas`
holds one Ray actor per model replica (one GPU, a tensor-parallel group of GPUs, or some CPUs
each), keeps every replica busy, and returns results in the order they finish. Only the driver
writes files: replicas compute and return, so the nodes of a cluster need no shared folder.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from culturespa.errors import CulturespaError
from culturespa.inference.backends.base import Backend

logger = logging.getLogger(__name__)

IN_FLIGHT_PER_REPLICA = 2
"""Items queued on each replica at a time: the next one is there when the current one ends."""


@runtime_checkable
class Replicas(Protocol):
    """Where a stage's work runs: `size` model replicas behind one call."""

    size: int

    def map_unordered(
        self, func: Callable[[Backend, Any], Any], items: Sequence[Any]
    ) -> Iterator[tuple[int, Any]]:
        """(position in `items`, func(backend, item)) for every item, in the order they finish."""
        ...

    def close(self) -> None: ...


class InProcess:
    """The backend of this process: items run one after the other, in order."""

    size = 1

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def map_unordered(self, func, items):
        for position, item in enumerate(items):
            yield position, func(self.backend, item)

    def close(self) -> None:
        """Nothing to free: whoever built the backend closes it."""


def as_replicas(backend: Backend | Replicas) -> Replicas:
    """A stage's model argument as replicas: a plain backend runs in this process."""
    return backend if isinstance(backend, Replicas) else InProcess(backend)


class _ReplicaActor:
    """One model replica inside a Ray actor. The backend is built on first use, so an actor that
    Ray restarts after a crash loads its model again before its next item."""

    def __init__(self, factory: Callable[[], Backend]) -> None:
        self.factory = factory
        self.backend: Backend | None = None

    def _ensure(self) -> Backend:
        if self.backend is None:
            self.backend = self.factory()
        return self.backend

    def ready(self) -> str:
        """Load the model; where it runs (node and devices), for the log."""
        import os
        import socket

        self._ensure()
        devices = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        return f"{socket.gethostname()}" + (f" (GPUs {devices})" if devices else "")

    def run(self, func: Callable[[Backend, Any], Any], item: Any) -> Any:
        return func(self._ensure(), item)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None


def _one_line(exc: BaseException) -> str:
    """The original error of a failed Ray task or actor, on one line."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and isinstance(
        getattr(cause, "cause", None), BaseException
    ):
        cause = cause.cause  # an actor that died in its constructor: the constructor's error
    text = str(cause if isinstance(cause, BaseException) else exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


class RayReplicas:
    """`replicas` copies of one model as Ray actors, on a local Ray or a cluster.

    `address` "" starts a local Ray on this machine (`num_cpus` caps what it may use), "auto"
    joins the cluster that `ray start` (or RAY_ADDRESS) names, and "ray://host:10001" or
    "host:6379" joins that cluster. Each actor asks Ray for `cpus_per_replica` CPUs and
    `gpus_per_replica` GPUs (None: `gpus_when_available` if the cluster has GPUs, else none), so
    Ray places one replica per GPU (or per group of GPUs) and sets CUDA_VISIBLE_DEVICES for it.
    `factory` builds the backend inside each actor.
    """

    def __init__(
        self,
        factory: Callable[[], Backend],
        replicas: int,
        *,
        address: str = "",
        num_cpus: int | None = None,
        cpus_per_replica: float = 1.0,
        gpus_per_replica: float | None = None,
        gpus_when_available: float = 0.0,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise CulturespaError(
                "the ray section of the config needs Ray: pip install 'culturespa[ray]'"
            ) from None
        self._ray = ray
        self.size = replicas
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            self._connect(address, num_cpus)
        self.address = address or "local"
        try:
            if gpus_per_replica is None:
                has_gpus = ray.cluster_resources().get("GPU", 0) > 0
                gpus_per_replica = gpus_when_available if has_gpus else 0.0
            self._check_resources(replicas, cpus_per_replica, gpus_per_replica, address)
            actor = ray.remote(_ReplicaActor).options(
                num_cpus=cpus_per_replica,
                num_gpus=gpus_per_replica,
                max_restarts=2,
                max_task_retries=2,
            )
            self._actors = [actor.remote(factory) for _ in range(replicas)]
            places = self._get([a.ready.remote() for a in self._actors], "loading the model")
        except BaseException:
            self.close()
            raise
        logger.info("%d replicas on Ray (%s): %s", replicas, self.address, ", ".join(places))

    def _connect(self, address: str, num_cpus: int | None) -> None:
        ray = self._ray
        options = {"include_dashboard": False, "logging_level": logging.WARNING}
        try:
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(address="local", num_cpus=num_cpus, **options)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise CulturespaError(f"ray: cannot start or join {where}: {_one_line(exc)}") from None

    def _check_resources(self, replicas: int, cpus: float, gpus: float, address: str) -> None:
        available = self._ray.cluster_resources()
        short = []
        for name, each in (("CPU", cpus), ("GPU", gpus)):
            need, have = replicas * each, float(available.get(name, 0))
            if need > have:
                short.append(f"{need:g} {name}s ({replicas} x {each:g}), the cluster has {have:g}")
        if not short:
            return
        message = f"ray.replicas {replicas} need " + "; ".join(short)
        if not address:
            raise CulturespaError(
                f"{message}: set fewer ray.replicas, fewer ray.cpus_per_replica or "
                "ray.gpus_per_replica, or join a cluster with ray.address"
            )
        logger.warning("%s; the replicas wait until the cluster grows", message)

    def _get(self, refs, doing: str):
        ray = self._ray
        try:
            return ray.get(refs)
        except ray.exceptions.RayError as exc:
            raise CulturespaError(f"ray: a replica failed {doing}: {_one_line(exc)}") from None

    def map_unordered(self, func, items):
        ray = self._ray
        waiting = deque(enumerate(items))
        running: dict[Any, tuple[int, Any]] = {}

        def submit(actor) -> None:
            if waiting:
                position, item = waiting.popleft()
                running[actor.run.remote(func, item)] = (position, actor)

        for _ in range(IN_FLIGHT_PER_REPLICA):
            for actor in self._actors:
                submit(actor)
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            position, actor = running.pop(done[0])
            result = self._get(done[0], f"on item {position}")
            submit(actor)
            yield position, result

    def close(self) -> None:
        """Stop the actors (their models are freed with them) and leave the Ray we joined."""
        ray = self._ray
        for actor in getattr(self, "_actors", []):
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor)
        self._actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
