"""One process of the 2-process meta-training job of test_multiprocess_meta.py (or, with
no JAX_* job variables, the same runs in one process on one device without a mesh):

    python -m tests.multidevice._multiprocess_meta_worker OUT_DIR

Joins the job (before anything starts JAX's backend), then runs a tiny ES run and a tiny
A2C meta-gradient run over a mesh of all the job's devices, each uninterrupted and as a
run stopped after a checkpoint and resumed from it, checkpoints and metrics in this
process's own directories. Prints the results as one JSON line.
"""

import json
import os
import pathlib
import sys

import jax

MULTI = "JAX_NUM_PROCESSES" in os.environ
if MULTI:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        os.environ["JAX_COORDINATOR_ADDRESS"],
        int(os.environ["JAX_NUM_PROCESSES"]),
        int(os.environ["JAX_PROCESS_ID"]),
    )

import dataclasses  # noqa: E402

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

import lorl_meta as lm  # noqa: E402
from tests.lorl_meta.common import (  # noqa: E402
    Quadratic,
    optim4rl,
    quadratic_trainer,
    tiny_trainer,
)

SEED = 5
ES_GENERATIONS, ES_STOP = 6, 3  # the stopped run checkpoints at 3 (checkpoint_every=3)
MG_STEPS, MG_STOP = 3, 2  # the stopped run checkpoints at 2 (checkpoint_every=2)


def _host(tree) -> list[list[float]]:
    """The float leaves of `tree` as nested lists (gathered if they span processes)."""
    out = []
    for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array)):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            x = multihost_utils.process_allgather(x, tiled=True)
        out.append(np.asarray(x, np.float64).ravel().tolist())
    return out


def _rows(history) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in history]


def main() -> None:
    out = pathlib.Path(sys.argv[1]) / f"process{jax.process_index()}"
    mesh = Mesh(np.array(jax.devices()), ("batch",)) if MULTI else None

    es_base = quadratic_trainer(ES_GENERATIONS)
    es = lm.ESTrainer(es_base.config, es_base.tasks, mesh=mesh)
    es_stop = lm.ESTrainer(
        dataclasses.replace(es_base.config, n_generations=ES_STOP), es_base.tasks, mesh=mesh
    )
    start = Quadratic(jnp.zeros(5, jnp.float32))
    es_full = es.train(start, seed=SEED, progress=False, log_dir=out / "es-full")
    es_stop.train(start, seed=SEED, progress=False, checkpoint_dir=out / "es-ckpt")
    es_resumed = es.train(
        start, seed=SEED, progress=False, checkpoint_dir=out / "es-ckpt", log_dir=out / "es-res"
    )

    mg_base = tiny_trainer(MG_STEPS)
    mg = lm.MetaGradientTrainer(mg_base.config, mg_base.tasks, mesh=mesh)
    mg_stop = lm.MetaGradientTrainer(
        dataclasses.replace(mg_base.config, n_meta_steps=MG_STOP), mg_base.tasks, mesh=mesh
    )
    mg_full = mg.train(optim4rl(), seed=SEED, progress=False, log_dir=out / "mg-full")
    mg_stop.train(optim4rl(), seed=SEED, progress=False, checkpoint_dir=out / "mg-ckpt")
    mg_resumed = mg.train(
        optim4rl(),
        seed=SEED,
        progress=False,
        checkpoint_dir=out / "mg-ckpt",
        log_dir=out / "mg-res",
    )
    (out / "result.json").write_text(
        json.dumps(
            {
                "process": jax.process_index(),
                "devices": jax.device_count(),
                "local_results": all(
                    x.is_fully_addressable
                    for r in (es_full.optimizer, es_full.final_optimizer, mg_full.optimizer)
                    for x in jax.tree.leaves(eqx.filter(r, eqx.is_array))
                ),
                "es_full": _host(es_full.final_optimizer),
                "es_best": _host(es_full.optimizer),
                "es_resumed": _host(es_resumed.final_optimizer),
                "es_history": _rows(es_full.history),
                "es_resumed_history": _rows(es_resumed.history),
                "mg_full": _host(mg_full.optimizer),
                "mg_resumed": _host(mg_resumed.optimizer),
                "mg_units": _host(mg_full.state.units),
                "mg_history": _rows(mg_full.history),
                "mg_resumed_history": _rows(mg_resumed.history),
            }
        )
    )


if __name__ == "__main__":
    main()
