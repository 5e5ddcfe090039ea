"""The `ray` section of the build-data config: the model-bound stages on Ray actors."""

from __future__ import annotations

from dataclasses import dataclass, field

from culturespa.errors import CulturespaError
from culturespa.fields import check_at_least, check_field_types, invalid


@dataclass
class RaySection:
    """The model-bound stages (generate, answer) on Ray: one actor per model replica."""

    address: str = field(
        metadata={
            "help": "'' starts a local Ray on this machine; 'auto' joins the cluster of `ray start` "
            "(or RAY_ADDRESS); 'ray://host:10001' or 'host:6379' joins that cluster"
        },
        default="",
    )
    replicas: int = field(
        metadata={
            "help": "model replicas (Ray actors), each answering its own chunks; also the number "
            "of topic groups of a generation round (generated questions depend on it)"
        },
        default=1,
    )
    cpus_per_replica: float = field(
        metadata={"help": "CPUs Ray reserves for each replica (its torch threads on a CPU)"},
        default=1.0,
    )
    gpus_per_replica: float | None = field(
        metadata={
            "help": "GPUs Ray reserves for each replica; none: model.tensor_parallel_size for "
            "vllm, 1 for hf unless model.device is cpu or the cluster has no GPU, 0 for openai"
        },
        default=None,
    )
    num_cpus: int | None = field(
        metadata={"help": "local Ray only: CPUs it may use (none: all of this machine's)"},
        default=None,
    )

    def __post_init__(self) -> None:
        check_field_types(self, "config: ray.")
        address = self.address.strip()
        if address and address != "auto" and not _is_ray_address(address):
            raise invalid(
                "config: ray.address",
                self.address,
                "'' (a local Ray), 'auto', 'ray://host:port' or 'host:port'",
            )
        self.address = address
        check_at_least("config: ray.replicas", self.replicas, 1)
        if self.cpus_per_replica < 0:
            raise invalid("config: ray.cpus_per_replica", self.cpus_per_replica, "a number >= 0")
        if self.gpus_per_replica is not None and self.gpus_per_replica < 0:
            raise invalid("config: ray.gpus_per_replica", self.gpus_per_replica, "a number >= 0")
        if self.num_cpus is not None:
            check_at_least("config: ray.num_cpus", self.num_cpus, 1)
            if address:
                raise CulturespaError(
                    "config: ray.num_cpus caps a local Ray only; a cluster's CPUs are set by "
                    "`ray start --num-cpus` on each node"
                )


def _is_ray_address(address: str) -> bool:
    """'ray://host:port' or 'host:port' with a port number."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return bool(host) and port.isdigit() and " " not in address
