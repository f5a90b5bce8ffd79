"""The multidevice tests need 8 CPU devices, forced with
`XLA_FLAGS=--xla_force_host_platform_device_count=8` before JAX starts (`nox -s
multidevice` sets it). Without the flag every test is skipped with that reason; under the
nox session the `require_8_devices` fixture makes a missing flag impossible to miss."""

import os

import jax
import pytest

N_DEVICES = 8
FLAG = f"--xla_force_host_platform_device_count={N_DEVICES}"


# Module scope: autouse fixtures of a scope run before the other fixtures of that scope,
# so the expensive module-scoped runs are never computed when the tests will be skipped.
@pytest.fixture(scope="module", autouse=True)
def require_8_devices():
    count = jax.device_count()
    if count != N_DEVICES:
        if FLAG in os.environ.get("XLA_FLAGS", ""):
            pytest.fail(f"XLA_FLAGS has {FLAG} but JAX sees {count} devices")
        pytest.skip(f"needs {N_DEVICES} devices: run with XLA_FLAGS={FLAG} (nox -s multidevice)")
    assert jax.device_count() == N_DEVICES
