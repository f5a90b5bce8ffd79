"""Real runs on 8 forced host CPU devices give the same results as on a 1-device mesh
(runs defined in `_runs.py`): a PPO CartPole run vmapped over 8 seeds with
`lorl.sharding.sharded_vmap`, one ES generation of OPEN with `lorl_meta.ESTrainer(mesh=)`
and one meta-gradient step of Optim4RL with `lorl_meta.MetaGradientTrainer(mesh=)`.

The 1-device reference runs in a subprocess started first, so that its compilations use
the second core while this process compiles the 8-device programs.

Tolerances (float32):

- scalars per run (returns, losses, fitness, outer loss): `rtol=1e-5, atol=1e-6`;
- trained networks and per-unit states: `atol=1e-4` (values are O(1)). Every member or
  unit is computed on one device, but XLA compiles the 8-device program separately and
  may fuse or vectorise it differently; last-bit differences then grow through the inner
  training steps (observed: 26 of 341,248 unit values differing by up to 3.5e-5 after 2
  A2C updates on a gridworld);
- meta-parameters after the meta-gradient trainer's Adam step, whose mean over units is a
  cross-device reduction summed in another order: `atol = 1e-3 * meta_lr`, since Adam's
  first step `meta_lr * g / (|g| + eps)` turns a last-bit difference in a gradient
  component near 0 into a fraction of `meta_lr`.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from . import _runs

RTOL, ATOL = 1e-5, 1e-6
STATE_ATOL = 1e-4
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reference_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "one_device.npz"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.multidevice._runs", str(out)],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process, out
    if process.poll() is None:
        process.kill()


@pytest.fixture(scope="module")
def eight(reference_process):
    out: dict[str, np.ndarray] = {}
    for run in _runs.RUNS.values():
        out.update(run(8))
    return out


@pytest.fixture(scope="module")
def one(reference_process, eight):
    process, path = reference_process
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, f"the 1-device reference failed:\n{output}"
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _keys(results: dict, prefix: str) -> list[str]:
    return sorted(k for k in results if k.startswith(prefix))


@pytest.mark.timeout(1200)
def test_ppo_8_seeds_on_8_devices_equals_1_device(one, eight):
    assert _keys(one, "ppo/") == _keys(eight, "ppo/")
    assert int(eight["ppo/n_devices_used"]) == 8 and int(one["ppo/n_devices_used"]) == 1
    assert eight["ppo/total_loss"].shape == (8, _runs.TINY_PPO.n_updates)
    for key in ("ppo/final_return", "ppo/total_loss"):
        np.testing.assert_allclose(eight[key], one[key], rtol=RTOL, atol=ATOL, err_msg=key)
    np.testing.assert_allclose(eight["ppo/actor_weight"], one["ppo/actor_weight"], atol=STATE_ATOL)
    # The seeds really differ (not 8 copies of one run), and every run is finite.
    assert len({tuple(row) for row in eight["ppo/total_loss"].round(6)}) == 8
    np.testing.assert_array_equal(eight["ppo/nonfinite"], -1)


@pytest.mark.timeout(1200)
def test_es_generation_8_devices_equals_1_device(one, eight):
    assert int(eight["es/n_nonfinite"]) == 0
    for key in ("es/mean_score", "es/max_score", "es/validation_score"):
        np.testing.assert_allclose(eight[key], one[key], rtol=RTOL, atol=ATOL, err_msg=key)
    final = _keys(eight, "es/final/")
    assert final == _keys(one, "es/final/") and final
    for key in final:
        np.testing.assert_allclose(eight[key], one[key], rtol=0, atol=STATE_ATOL, err_msg=key)
    # The generation moved the ES mean, so the equality is not that of a no-op.
    start = _runs._leaves(_runs.es_start())
    assert any(not np.array_equal(eight[f"es/final/{i}"], s) for i, s in enumerate(start))


@pytest.mark.timeout(1200)
def test_meta_gradient_step_8_devices_equals_1_device(one, eight):
    assert int(eight["mg/n_devices_used"]) == 8
    np.testing.assert_allclose(eight["mg/outer_loss"], one["mg/outer_loss"], rtol=RTOL, atol=ATOL)
    units = _keys(eight, "mg/units/")
    assert units == _keys(one, "mg/units/") and units
    for key in units:
        np.testing.assert_allclose(eight[key], one[key], rtol=0, atol=STATE_ATOL, err_msg=key)
    meta_atol = 1e-3 * _runs.MG_CONFIG.meta_lr
    params = _keys(eight, "mg/optimizer/")
    for key in params:
        np.testing.assert_allclose(eight[key], one[key], rtol=0, atol=meta_atol, err_msg=key)
    # The step changed the meta-parameters by about meta_lr.
    start = _runs._leaves(_runs.mg_start())
    change = max(float(np.max(np.abs(eight[f"mg/optimizer/{i}"] - s))) for i, s in enumerate(start))
    assert change > 0.5 * _runs.MG_CONFIG.meta_lr
