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


def _run_job(commands: list[list[str]], timeout: int) -> list[str]:
    """Run one JAX job of `len(commands)` processes on this machine (2 CPU devices each,
    the environment variables of docs/lorl/scaling.md); their standard outputs."""
    port = _free_port()
    procs = []
    for pid, command in enumerate(commands):
        env = dict(os.environ)
        env.update(
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES=str(len(commands)),
            JAX_PROCESS_ID=str(pid),
            XLA_FLAGS="--xla_force_host_platform_device_count=2",
        )
        procs.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err[-3000:]
        outs.append(out)
    return outs


@pytest.mark.timeout(600)
def test_two_processes_share_one_mesh():
    outs = _run_job([[sys.executable, str(WORKER)]] * 2, timeout=540)
    results = [json.loads(out.strip().splitlines()[-1]) for out in outs]
    keys = jax.random.split(jax.random.key(0), 8)
    expected = jax.vmap(lambda k: jax.numpy.sum(jax.random.normal(k, (3,)) ** 2))(keys)
    for pid, result in enumerate(sorted(results, key=lambda r: r["process"])):
        assert result["process"] == pid
        assert (result["devices"], result["local_devices"], result["mesh"]) == (4, 2, 4)
        np.testing.assert_allclose(result["out"], expected, rtol=1e-5, atol=1e-6)


def _lorl_command() -> list[str]:
    """The installed `lorl` script of this interpreter's environment (what users run)."""
    script = pathlib.Path(sys.executable).with_name("lorl")
    assert script.is_file(), f"the lorl script is not installed next to {sys.executable}"
    return [str(script)]


def _evaluate_args(out: pathlib.Path) -> list[str]:
    # 4 seeds of A2C on small_dense_short, 20,480 steps: seconds once compiled.
    return [
        "evaluate",
        "adam:0.003",
        "--env",
        "small_dense_short",
        "--seeds",
        "4",
        "--timesteps",
        "20480",
        "--n-envs",
        "64",
        "--baseline",
        "rmsprop:0.001",
        "--out",
        str(out),
    ]


def _final_returns(out: pathlib.Path) -> dict[str, list[float]]:
    (folder,) = out.iterdir()
    results = json.loads((folder / "results.json").read_text())["evaluation"]["small_dense_short"]
    return {name: r["final_returns"] for name, r in results.items()}


@pytest.mark.timeout(900)
def test_cli_joins_a_two_process_job(tmp_path):
    """`lorl evaluate` started as 2 processes (the environment variables of
    docs/lorl/scaling.md, no launcher) joins one job of 4 devices by itself, and each
    process writes the same results as a single-process run on one device."""
    _run_job(
        [[*_lorl_command(), *_evaluate_args(tmp_path / f"process-{pid}")] for pid in range(2)],
        timeout=840,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    single = subprocess.run(
        [*_lorl_command(), *_evaluate_args(tmp_path / "single")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    expected = _final_returns(tmp_path / "single")
    assert set(expected) == {"adam (lr 0.003)", "rmsprop (lr 0.001)"}
    for pid in range(2):
        got = _final_returns(tmp_path / f"process-{pid}")
        assert set(got) == set(expected)
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6)
        manifest = json.loads(
            next((tmp_path / f"process-{pid}").iterdir()).joinpath("run.json").read_text()
        )
        assert manifest["process_count"] == 2 and len(manifest["devices"]) == 4


def test_cli_reports_a_bad_job_description(tmp_path):
    """A process count without a coordinator address (outside SLURM / Open MPI) is a user
    error: one line, exit code 2, before any compute."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "SLURM_", "OMPI_"))}
    env.update(JAX_NUM_PROCESSES="2", JAX_PROCESS_ID="0")
    done = subprocess.run(
        [*_lorl_command(), "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "coordinator" in done.stderr
