"""A 2-process JAX job on this CPU (2 devices per process, 4 in all, gloo collectives):
`lorl.sharding.sharded_vmap` over the global mesh gives the same results as `jax.vmap` in
one process. This is the multi-host path of `docs/lorl/scaling.md` on one machine."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

WORKER = pathlib.Path(__file__).with_name("_multiprocess_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(600)
def test_two_processes_share_one_mesh():
    port = _free_port()
    procs = []
    for pid in range(2):
        env = dict(os.environ)
        env.update(
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(pid),
            XLA_FLAGS="--xla_force_host_platform_device_count=2",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=540)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    keys = jax.random.split(jax.random.key(0), 8)
    expected = jax.vmap(lambda k: jax.numpy.sum(jax.random.normal(k, (3,)) ** 2))(keys)
    for pid, result in enumerate(sorted(results, key=lambda r: r["process"])):
        assert result["process"] == pid
        assert (result["devices"], result["local_devices"], result["mesh"]) == (4, 2, 4)
        np.testing.assert_allclose(result["out"], expected, rtol=1e-5, atol=1e-6)
