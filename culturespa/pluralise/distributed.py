"""The config's `ray` section turned into model replicas on Ray (`culturespa.inference.replicas`)."""

from __future__ import annotations

import functools

from culturespa.inference.backends import build_backend
from culturespa.inference.models import resolve_model
from culturespa.inference.replicas import RayReplicas
from culturespa.pluralise.config import DataConfig


def gpus_wanted(config: DataConfig) -> float:
    """GPUs one replica asks for when the cluster has GPUs and `ray.gpus_per_replica` is unset:
    its tensor-parallel group for vLLM, one for transformers (none on `device: cpu`), none for an
    OpenAI-compatible server, which does the work itself."""
    m = config.model
    if m.backend == "vllm":
        return float(m.tensor_parallel_size)
    if m.backend == "hf":
        return 0.0 if m.device == "cpu" else 1.0
    return 0.0


def ray_replicas(config: DataConfig) -> RayReplicas:
    """`ray.replicas` copies of the config's model as Ray actors.

    The model name is resolved here, once: `default` is converted on this machine, not by every
    replica at the same time (on a cluster, its cache folder must then be readable on every node).
    """
    r, m = config.ray, config.model
    factory = functools.partial(
        build_backend, m.backend, resolve_model(m.name), **m.backend_options()
    )
    return RayReplicas(
        factory,
        r.replicas,
        address=r.address,
        num_cpus=r.num_cpus,
        cpus_per_replica=r.cpus_per_replica,
        gpus_per_replica=r.gpus_per_replica,
        gpus_when_available=gpus_wanted(config),
    )
