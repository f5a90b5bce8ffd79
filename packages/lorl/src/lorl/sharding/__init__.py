"""Sharding of independent units (seeds, population members, training units) over all
devices with `jax.sharding` (`Mesh`, `NamedSharding`, `PartitionSpec`; no `pmap`), and
multi-host runs through `jax.distributed`. See `docs/lorl/scaling.md`."""

from .._distributed import initialize_distributed as initialize_distributed
from ._mesh import (
    check_divisible as check_divisible,
    leading_sharding as leading_sharding,
    local_mesh as local_mesh,
    replicate as replicate,
    replicated_sharding as replicated_sharding,
    shard_leading as shard_leading,
)
from ._vmap import sharded_vmap as sharded_vmap
