"""lorl.analysis meta-gradient measurements against hand-computed values and synthetic
gradients of known signal-to-noise ratio."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lorl_optim as lo
from lorl.analysis import AnalysisError, directional_derivatives, gradient_snr, gru_saturation


class _Parts(eqx.Module):
    a: jax.Array
    b: jax.Array


def test_gradient_snr_by_hand():
    # 4 units, 2 coordinates: mean (1, 0); variances (ddof 1) 2/3 and 4/3.
    a = jnp.asarray([[0.0, 1.0], [2.0, -1.0], [1.0, 1.0], [1.0, -1.0]])
    b = jnp.zeros((4, 3))
    out = gradient_snr(_Parts(a, b), ["a", "b"])
    se = np.sqrt((2 / 3 + 4 / 3) / 4)
    assert out["a"]["mean_norm"] == pytest.approx(1.0)
    assert out["a"]["standard_error"] == pytest.approx(se)
    assert out["a"]["snr"] == pytest.approx(1.0 / se)
    assert out["a"]["unit_norm"] == pytest.approx((1 + np.sqrt(5) + np.sqrt(2) + np.sqrt(2)) / 4)
    # Even units (0, 1), (1, 1) -> mean (0.5, 1); odd (2, -1), (1, -1) -> (1.5, -1).
    cos = (0.75 - 1) / (np.hypot(0.5, 1) * np.hypot(1.5, 1))
    assert out["a"]["split_half_cosine"] == pytest.approx(cos)
    assert out["b"]["mean_norm"] == 0.0 and out["b"]["split_half_cosine"] == 0.0
    assert out["all"]["mean_norm"] == pytest.approx(1.0)


def test_gradient_snr_separates_noise_from_signal():
    noise = jax.random.normal(jax.random.key(0), (512, 200))
    pure = gradient_snr(noise)["all"]
    assert 0.9 < pure["snr"] < 1.1 and abs(pure["split_half_cosine"]) < 0.2
    signal = gradient_snr(noise + 1.0)["all"]  # mean norm sqrt(200) vs se ~ sqrt(200/512)
    assert signal["snr"] > 15 and signal["split_half_cosine"] > 0.9
    with pytest.raises(AnalysisError, match="at least 4 units"):
        gradient_snr(noise[:3])
    with pytest.raises(AnalysisError, match="no part"):
        gradient_snr(_Parts(noise, noise), ["c"])
    with pytest.raises(AnalysisError, match="1 of 512 units have non-finite"):
        gradient_snr(noise.at[3, 7].set(jnp.nan))


def test_directional_derivatives_of_a_quadratic():
    x = {"w": jnp.asarray([1.0, 2.0])}
    f = lambda t: jnp.sum(t["w"] ** 2) + 3 * t["w"][0]
    d = {"w": jnp.asarray([3.0, 4.0])}  # unit direction (0.6, 0.8); gradient (5, 4)
    for s in directional_derivatives(f, x, d, [1e-2, 1e-1, 1.0]):
        assert s == pytest.approx(0.6 * 5 + 0.8 * 4, rel=1e-5)  # exact for a quadratic
    with pytest.raises(AnalysisError, match="zero"):
        directional_derivatives(f, x, {"w": jnp.zeros(2)}, [1e-2])
    with pytest.raises(AnalysisError, match="positive"):
        directional_derivatives(f, x, d, [0.0])


def test_gru_saturation_by_hand_and_at_large_inputs():
    # Hidden 1, input 1, only the candidate's input weight a: r = z = 1/2 and
    # h' = tanh(a x) / 2 + h / 2, so dh'/dx = a (1 - tanh(a x)^2) / 2.
    a = 0.5
    gru = lo.GRU(jnp.asarray([[0.0], [0.0], [a]]), jnp.zeros(3), jnp.zeros((3, 1)), jnp.zeros(1))
    x = jnp.full((4, 1, 2), 2.0)
    out = gru_saturation(gru, x)
    assert out["r"] == out["z"] == out["n"] == 0.0
    assert out["input_sensitivity"] == pytest.approx(a * (1 - np.tanh(a * 2.0) ** 2) / 2, rel=1e-5)
    # At 2 log|g| ~ -14 (|g| ~ 1e-3) the same cell's candidate saturates.
    big = gru_saturation(gru, jnp.full((4, 1, 2), -14.0), threshold=4.0)
    assert big["n"] == 1.0 and big["r"] == 0.0
    assert big["input_sensitivity"] < 1e-2
    with pytest.raises(AnalysisError, match="inputs must be"):
        gru_saturation(gru, jnp.zeros((4, 2, 2)))
