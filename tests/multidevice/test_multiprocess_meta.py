"""Multi-process meta-training: a 2-process JAX job on this CPU (2 devices per process,
gloo collectives) runs a tiny ES run and a tiny A2C meta-gradient run over a mesh of all
4 devices, each uninterrupted and stopped after a checkpoint then resumed. Every process
gets the same result as the same runs in one process on one device, the resumed runs
equal the uninterrupted ones, and each process holds a full checkpoint copy in its own
directory (the worker: `_multiprocess_meta_worker.py`)."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from .test_multiprocess import _free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKER = "tests.multidevice._multiprocess_meta_worker"


def _start(out: pathlib.Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", WORKER, str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[list[dict], dict]:
    """The 2-process job and the 1-process reference, started together (both cores
    compile at once); their results."""
    tmp = tmp_path_factory.mktemp("multiprocess_meta")
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
        procs.append(_start(tmp / "job", env))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    procs.append(_start(tmp / "single", env))
    for proc in procs:
        _, err = proc.communicate(timeout=840)
        assert proc.returncode == 0, err[-3000:]
    job = [json.loads((tmp / "job" / f"process{i}" / "result.json").read_text()) for i in (0, 1)]
    single = json.loads((tmp / "single" / "process0" / "result.json").read_text())
    return job, {"single": single, "dir": tmp}


def _close(a, b, atol):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def _close_rows(a, b, rtol):
    assert [sorted(r) for r in a] == [sorted(r) for r in b]
    for ra, rb in zip(a, b, strict=True):
        for k in ra:
            if isinstance(ra[k], float):
                np.testing.assert_allclose(ra[k], rb[k], rtol=rtol, atol=1e-6, err_msg=k)
            else:
                assert ra[k] == rb[k], k


@pytest.mark.timeout(900)
def test_two_process_meta_training_equals_one_process(runs):
    job, ref = runs
    single = ref["single"]
    for pid, got in enumerate(job):
        assert got["process"] == pid and got["devices"] == 4
        assert got["local_results"]  # the returned optimizers hold process-local arrays
        # ES: the population is split over 4 devices; fitness and the ES mean are computed
        # the same way up to float rounding.
        _close(got["es_full"], single["es_full"], atol=1e-5)
        _close(got["es_best"], single["es_best"], atol=1e-5)
        _close_rows(got["es_history"], single["es_history"], rtol=1e-4)
        # Meta-gradients: the mean over units is a cross-device (cross-process) sum added
        # in another order, and Adam turns a rounding difference of a near-zero gradient
        # entry into a visible step difference: after 3 meta-steps of meta_lr = 1e-2 the
        # meta-parameters agree within 1e-2 * meta_lr, the units within 1e-5, the metrics
        # within rtol 1e-4 (measured: 2.3e-5, 1.5e-6 and 2.3e-6; ES: 4e-9 and 1.7e-7).
        _close(got["mg_full"], single["mg_full"], atol=1e-4)
        _close(got["mg_units"], single["mg_units"], atol=1e-5)
        _close_rows(got["mg_history"], single["mg_history"], rtol=1e-4)
    # Both processes hold the same (replicated or gathered) result.
    assert job[0]["mg_full"] == job[1]["mg_full"] and job[0]["es_full"] == job[1]["es_full"]


@pytest.mark.timeout(900)
def test_two_process_run_resumed_from_a_checkpoint_equals_the_uninterrupted_run(runs):
    job, ref = runs
    for got in [*job, ref["single"]]:
        # Same job, same device layout: resuming is exact.
        assert got["es_resumed"] == got["es_full"]
        assert got["mg_resumed"] == got["mg_full"]
        assert got["es_resumed_history"] == got["es_history"]
        assert got["mg_resumed_history"] == got["mg_history"]
    # Every process wrote a full checkpoint copy to its own directory.
    job_dir = ref["dir"] / "job"
    for kind in ("es-ckpt", "mg-ckpt"):
        copies = [job_dir / f"process{i}" / kind / "steps" for i in (0, 1)]
        steps = [sorted(p.name for p in c.iterdir() if p.name.isdigit()) for c in copies]
        assert steps[0] == steps[1] and steps[0]
        a, b = (np.load(c / steps[0][-1] / "arrays.npz") for c in copies)
        assert a.files == b.files
        for name in a.files:
            assert np.array_equal(a[name], b[name]), (kind, name)
