"""Multi-host runs: a thin wrapper over `jax.distributed.initialize` (public as
`lorl.sharding.initialize_distributed`). It imports JAX only to join a job, so the command
line can call it first without loading the JAX stacks for a single-process run."""

import os
import sys
from collections.abc import Sequence

from .runs import ConfigError


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def _cluster_process_count() -> int | None:
    """The process count a cluster manager that JAX auto-detects announces, if any."""
    slurm = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID")
    if all(v in os.environ for v in slurm):
        return _env_int("SLURM_NTASKS")
    if "OMPI_MCA_orte_hnp_uri" in os.environ or "OMPI_MCA_ess_base_jobid" in os.environ:
        return _env_int("OMPI_COMM_WORLD_SIZE")
    return None


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | None = None,
    *,
    timeout: int = 300,
) -> bool:
    """Join a multi-host JAX job, or do nothing in a single-process run.

    It must run before JAX starts its backend (before any computation or
    `jax.devices()`). `import lorl` and `lorl.sharding` do not start it, but
    `lorl.evaluation`, `lorl.experiments`, `lorl.analysis` and the lorl-gridworlds /
    lorl-agents / lorl-meta packages do (gymnax creates arrays at import time), so call
    this first (the `lorl` command does, see `docs/lorl/scaling.md`). If the job was
    joined already it returns `True` without doing anything; if the backend was started
    first it raises a `lorl.runs.ConfigError` saying so.
    After it, `jax.devices()` (and so [`lorl.sharding.local_mesh`][]) lists the devices of every
    process; `jax.local_devices()` those of this process. Every process must then run
    the same program on the same global inputs (e.g. keys from the same seed).

    Arguments not given are read from the environment: `JAX_COORDINATOR_ADDRESS`
    (`host:port` of process 0), `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`,
    `JAX_LOCAL_DEVICE_IDS` (comma-separated); under SLURM (`srun`) or Open MPI
    (`mpirun`) JAX detects all of them itself.

    It is a no-op returning `False` when the job has one process: no coordinator
    address or process count given, and no multi-process SLURM/Open MPI job detected, or
    `num_processes == 1`. Calling it again after a successful initialisation is also a
    no-op (returning `True`).

    **Arguments:**

    - `coordinator_address`: `"host:port"` of process 0 (any free port all agree on).
    - `num_processes`: the number of processes in the job.
    - `process_id`: this process's index in `0 .. num_processes - 1`.
    - `local_device_ids`: restrict this process to these local devices (e.g. one GPU per
      process).
    - `timeout`: seconds to wait for the other processes to connect.

    **Returns:**

    `True` if the process is part of an initialised multi-process job, `False` if this
    is a single-process run.

    **Raises:**

    `lorl.runs.ConfigError` for inconsistent arguments (e.g. a process count
    without a coordinator address outside SLURM/Open MPI, or `process_id` out of range);
    `RuntimeError` from JAX if a JAX computation already ran in this process.
    """
    jax_module = sys.modules.get("jax")  # not imported yet: no job can have been joined
    if jax_module is not None and jax_module.distributed.is_initialized():
        return True
    address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    n = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    pid = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    cluster_n = _cluster_process_count()
    if n is None:
        n = cluster_n
    if n is not None and n < 1:
        raise ConfigError(f"num_processes must be at least 1, got {n}")
    if n is None and address is None:
        return False  # nothing says this is a multi-process job
    if n == 1:
        return False
    if pid is not None and n is not None and not 0 <= pid < n:
        raise ConfigError(f"process_id {pid} is outside 0 .. {n - 1}")
    if cluster_n is None and (address is None or n is None or pid is None):
        raise ConfigError(
            "a multi-process run outside SLURM/Open MPI needs coordinator_address, "
            "num_processes and process_id (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
            f"JAX_PROCESS_ID); got {address!r}, {n!r}, {pid!r}"
        )
    import jax

    try:
        jax.distributed.initialize(
            coordinator_address=address,
            num_processes=n,
            process_id=pid,
            local_device_ids=list(local_device_ids) if local_device_ids is not None else None,
            initialization_timeout=timeout,
        )
    except RuntimeError as e:
        if "must be called before" not in str(e):
            raise
        raise ConfigError(
            "jax.distributed must be initialised before JAX starts its backend, and "
            "importing lorl.evaluation, lorl.experiments, lorl.analysis or the lorl "
            "sub-packages already does (gymnax creates arrays at import). Call "
            "lorl.sharding.initialize_distributed() first (docs/lorl/scaling.md, "
            "'Several hosts')."
        ) from e
    return True
