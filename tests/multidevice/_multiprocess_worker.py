"""One process of the 2-process CPU job of test_multiprocess.py: joins the job with
`jax.distributed.initialize` (before anything starts JAX's backend), runs `sharded_vmap`
over the global mesh of 4 devices (2 per process) and prints the gathered result as JSON."""

import json
import os

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(
    os.environ["JAX_COORDINATOR_ADDRESS"],
    int(os.environ["JAX_NUM_PROCESSES"]),
    int(os.environ["JAX_PROCESS_ID"]),
)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402

from lorl import sharding  # noqa: E402


def per_seed(key):
    return jnp.sum(jax.random.normal(key, (3,)) ** 2)


assert sharding.initialize_distributed() is True  # already joined: a no-op
keys = jax.random.split(jax.random.key(0), 8)
out = sharding.sharded_vmap(per_seed, what="seeds")(keys)
gathered = multihost_utils.process_allgather(out, tiled=True)
print(
    json.dumps(
        {
            "process": jax.process_index(),
            "devices": jax.device_count(),
            "local_devices": jax.local_device_count(),
            "mesh": sharding.local_mesh().size,
            "out": np.asarray(gathered).tolist(),
        }
    )
)
