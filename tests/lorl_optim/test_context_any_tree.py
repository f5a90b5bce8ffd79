"""`lorl_optim.open_context` on an Equinox-layout tree ((out, in) weights) and on
hand-computed activations; `neuron_scores` against its definition."""

import jax.numpy as jnp
import numpy as np

import lorl_optim as lo


def test_neuron_scores_definition():
    acts = jnp.asarray([[1.0, -3.0, 0.0], [3.0, 1.0, 0.0]])  # mean |h|: 2, 2, 0
    a = np.asarray([2.0, 2.0, 0.0]) + lo.DORMANCY_EPS
    np.testing.assert_allclose(lo.neuron_scores(acts), a / a.mean(), rtol=1e-6)


def test_equinox_layout_and_values():
    params = {
        "pi": {
            "l0": {"weight": jnp.ones((3, 2)), "bias": jnp.ones(3)},
            "l1": {"weight": jnp.ones((1, 3))},
        },
        "v": {"l2": {"weight": jnp.ones((1, 2)), "bias": jnp.ones(1)}},
    }
    acts = {
        "l0": jnp.asarray([[1.0, 0.0, 2.0]]),  # scores 1, 0, 2 (up to eps)
        "l1": jnp.asarray([[5.0]]),
        "l2": jnp.asarray([[-1.0]]),
    }
    ctx = lo.open_context(
        params, acts, networks={"pi": ["l0", "l1"], "v": ["l2"]}, actor="pi", kernel_layout="out_in"
    )
    d = ctx["dormancy"]["pi"]["l0"]
    assert d["weight"].shape == (3, 1) and d["bias"].shape == (3,)
    np.testing.assert_allclose(d["weight"][:, 0], [1.0, 0.0, 2.0], atol=1e-6)
    assert jnp.broadcast_to(d["weight"], (3, 2)).shape == (3, 2)  # fits the (out, in) weight
    assert float(ctx["layer_proportions"]["pi"]["l0"]["weight"]) == 0.0
    assert float(ctx["layer_proportions"]["pi"]["l1"]["weight"]) == 1.0
    assert float(ctx["layer_proportions"]["v"]["l2"]["bias"]) == 0.0  # one layer: 0
    assert bool(ctx["actor_mask"]["pi"]["l1"]["weight"]) and not bool(
        ctx["actor_mask"]["v"]["l2"]["weight"]
    )
