"""Networks: initialisation, shapes, context trees, dormancy on a hand-built network."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest

import lorl_agents as la


@pytest.mark.parametrize("shape", [(64, 400), (64, 64), (3, 64), (1, 16)])
def test_orthogonal_init_is_orthogonal(shape):
    w = la.orthogonal_init(shape, 2.0, key=jax.random.key(1))
    out_f, in_f = shape
    gram = w @ w.T if out_f <= in_f else w.T @ w
    np.testing.assert_allclose(gram, 4.0 * np.eye(min(shape)), atol=1e-4)


@pytest.mark.timeout(120)
def test_network_init_vmaps_over_seeds_without_deadlock():
    keys = jax.random.split(jax.random.key(0), 4)
    nets = eqx.filter_vmap(lambda k: la.PPONetwork((10, 10, 4), 3, continuous=False, key=k))(keys)
    w = nets.actor[0].weight  # (4 seeds, 64, 400)
    assert w.shape == (4, 64, 400)
    single = la.PPONetwork((10, 10, 4), 3, continuous=False, key=keys[2])
    np.testing.assert_allclose(w[2], single.actor[0].weight, atol=1e-5)
    assert not np.allclose(w[0], w[1])


def test_ppo_network_init_and_shapes():
    net = la.PPONetwork((4,), 2, continuous=False, width=8, key=jax.random.key(0))
    head = net.actor[-1].weight
    np.testing.assert_allclose(head @ head.T, 1e-4 * np.eye(2), atol=1e-7)  # gain 0.01
    for layer in net.actor + net.critic:
        assert layer.bias is not None
        np.testing.assert_array_equal(layer.bias, 0.0)
    logits, value, acts = net(jnp.ones(4))
    assert logits.shape == (2,) and value.shape == ()
    assert [a.shape for a in acts] == [(8,), (8,), (2,), (8,), (8,), (1,)]
    assert net.layer_names() == (
        "actor/0", "actor/1", "actor/2", "critic/0", "critic/1", "critic/2"
    )  # fmt: skip


def test_ppo_network_separate_critic_sizes():
    """Optim4RL's Ant networks: a 32 x 4 policy and a 64 x 5 value net (here 3 x 4 and
    5 x 2); per-layer activations, dormancy and layer proportions follow each network."""
    net = la.PPONetwork(
        (4,), 2, continuous=True, width=3, n_hidden=4, critic_width=5, critic_hidden=2,
        key=jax.random.key(0),
    )  # fmt: skip
    assert [layer.weight.shape for layer in net.actor] == [(3, 4), (3, 3), (3, 3), (3, 3), (2, 3)]
    assert [layer.weight.shape for layer in net.critic] == [(5, 4), (5, 5), (1, 5)]
    _, _, acts = jax.vmap(net)(jnp.ones((6, 4)))
    assert [a.shape[1:] for a in acts] == [(3,)] * 4 + [(2,)] + [(5,)] * 2 + [(1,)]
    params = eqx.filter(net, eqx.is_inexact_array)
    dorm = eqx.filter(net.dormancy(acts), eqx.is_array)
    assert jax.tree.structure(dorm) == jax.tree.structure(params)
    lp = [float(x) for x in jax.tree.leaves(eqx.filter(net.layer_proportions(), eqx.is_array))]
    actor = [0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1]
    assert lp == [*actor, 0, 0, 0.5, 0.5, 1, 1, 1]  # critic, then log_std (an actor head)
    same = la.PPONetwork((4,), 2, continuous=False, width=3, n_hidden=1, key=jax.random.key(1))
    assert [layer.weight.shape for layer in same.critic] == [(3, 4), (1, 3)]
    with pytest.raises(ValueError, match="critic_width 0"):
        la.PPONetwork((4,), 2, continuous=False, critic_width=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="critic_width must be >= 1"):
        la.PPOConfig(critic_width=0)
    with pytest.raises(ValueError, match="critic_hidden must be >= 0"):
        la.PPOConfig(critic_hidden=-1)


@pytest.mark.parametrize("activation", ["relu", "tanh", "swish"])
def test_ppo_network_activation_matches_numpy_forward_pass(activation):
    """Each hidden activation against a NumPy forward pass with the network's own weights;
    swish is x * sigmoid(x) (Brax's PPO default), not tanh or relu."""
    numpy_act = {
        "relu": lambda z: np.maximum(z, 0.0),
        "tanh": np.tanh,
        "swish": lambda z: z / (1.0 + np.exp(-z)),
    }[activation]
    net = la.PPONetwork(
        (3,), 2, continuous=True, width=5, n_hidden=2, critic_width=4, critic_hidden=3,
        activation=activation, key=jax.random.key(3),
    )  # fmt: skip
    x = np.array([0.7, -1.3, 2.1])

    def forward(layers):
        h, hidden = x, []
        for layer in layers[:-1]:
            h = numpy_act(np.asarray(layer.weight) @ h + np.asarray(layer.bias))
            hidden.append(h)
        return np.asarray(layers[-1].weight) @ h + np.asarray(layers[-1].bias), hidden

    policy, actor_hidden = forward(net.actor)
    value, critic_hidden = forward(net.critic)
    out_policy, out_value, acts = net(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(out_policy, policy, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_value, value[0], rtol=1e-5, atol=1e-6)
    for got, want in zip(acts[:2] + acts[3:6], actor_hidden + critic_hidden, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if activation == "swish":  # differs from the other two on negative inputs
        assert np.any(np.asarray(acts[0]) < 0)
    assert la.PPOConfig(activation=activation).activation == activation


def test_unknown_activation_is_refused():
    # ValueError from the checks; TypeCheckError first where the jaxtyping hook is on
    errors = (ValueError, jaxtyping.TypeCheckError)
    with pytest.raises(errors, match="gelu"):
        la.PPOConfig(activation="gelu")  # pyright: ignore[reportArgumentType]
    with pytest.raises(errors, match="gelu"):
        la.PPONetwork((3,), 2, continuous=False, activation="gelu", key=jax.random.key(0))  # pyright: ignore[reportArgumentType]


def _leaves(tree):
    return jax.tree.leaves(eqx.filter(tree, eqx.is_array))


def test_context_trees_match_params_continuous():
    net = la.PPONetwork((3,), 2, continuous=True, width=4, n_hidden=2, key=jax.random.key(0))
    params = eqx.filter(net, eqx.is_inexact_array)
    _, _, acts = jax.vmap(net)(jnp.ones((5, 3)))
    dorm = eqx.filter(net.dormancy(acts), eqx.is_array)
    lp = eqx.filter(net.layer_proportions(), eqx.is_array)
    am = eqx.filter(net.actor_mask(), eqx.is_array)
    for tree in (dorm, lp, am):
        assert jax.tree.structure(tree) == jax.tree.structure(params)
    for d, p in zip(jax.tree.leaves(dorm), jax.tree.leaves(params), strict=True):
        assert d.shape == p.shape
    # actor: 3 layers (w, b each) then log_std; critic: 3 layers. Leaf order follows fields.
    lp_values = [float(x) for x in jax.tree.leaves(lp)]
    assert lp_values == [0, 0, 0.5, 0.5, 1, 1, 0, 0, 0.5, 0.5, 1, 1, 1]
    am_values = [bool(x) for x in jax.tree.leaves(am)]
    assert am_values == [True] * 6 + [False] * 6 + [True]


def test_a2c_network_cnn_channels_last_and_context():
    net = la.A2CNetwork((5, 4, 3), 9, torso="cnn", key=jax.random.key(0))
    logits, value, acts = net(jnp.ones((5, 4, 3)))
    assert logits.shape == (9,) and value.shape == ()
    assert [a.shape for a in acts] == [(5, 4, 16), (32,), (9,), (1,)]
    lp = [float(x) for x in _leaves(net.layer_proportions())]
    assert lp == [0, 0, 0.5, 0.5, 1, 1, 1, 1]
    am = [bool(x) for x in _leaves(net.actor_mask())]
    assert am == [True] * 6 + [False] * 2
    with pytest.raises(ValueError, match="channels-last"):
        la.A2CNetwork((20,), 9, torso="cnn", key=jax.random.key(0))


def test_neuron_scores_and_dormant_fraction_hand_computed():
    # batch of 2, 4 neurons: mean |h| = [1, 0, 3, 0] -> mean 1 -> scores [1, 0, 3, 0]
    h = jnp.array([[1.0, 0.0, 2.0, 0.0], [-1.0, 0.0, 4.0, 0.0]])
    np.testing.assert_allclose(la.neuron_scores(h, eps=0.0), [1.0, 0.0, 3.0, 0.0])
    np.testing.assert_allclose(la.dormant_fraction(h, tau=0.0), 0.5)
    np.testing.assert_allclose(la.dormant_fraction(h, tau=1.0), 0.75)  # 1 <= 1 counts
    np.testing.assert_allclose(la.dormant_fraction(jnp.zeros((3, 2))), 1.0)


def test_dormancy_on_hand_built_network():
    """A ReLU net whose first hidden neuron never fires: its weights, bias and (nothing
    else) get score ~0; the metric counts 1 of 2 hidden neurons as dormant."""
    net = la.PPONetwork((2,), 2, continuous=False, width=2, n_hidden=1, key=jax.random.key(0))
    w1 = jnp.array([[-1.0, -1.0], [1.0, 2.0]])  # neuron 0: relu(-x0 - x1) = 0 for x >= 0
    net = eqx.tree_at(lambda n: n.actor[0].weight, net, w1)
    obs = jnp.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    _, _, acts = jax.vmap(net)(obs)
    # neuron 1: relu(x0 + 2 x1) = [1, 2, 6] -> mean 3; neuron 0 mean 0 -> scores [0, 2]
    dorm = net.dormancy(acts)
    np.testing.assert_allclose(dorm.actor[0].weight, [[0.0, 0.0], [2.0, 2.0]], atol=1e-9)
    np.testing.assert_allclose(dorm.actor[0].bias, [0.0, 2.0], atol=1e-9)
    assert float(la.dormant_fraction(acts[0])) == 0.5


@pytest.mark.parametrize("kernel", [2, 3])
def test_im2col_convolution_matches_equinox_conv(kernel):
    conv = eqx.nn.Conv2d(5, 16, kernel, 1, padding="SAME", key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (13, 9, 5))
    expected = jnp.moveaxis(conv(jnp.moveaxis(x, -1, 0)), 0, -1)
    np.testing.assert_allclose(la.conv_same_channels_last(conv, x), expected, atol=1e-5)


def test_lecun_normal_init_statistics():
    fan_in = 300
    w = np.asarray(la.lecun_normal_init((400, fan_in), fan_in, key=jax.random.key(3)))
    std = 1.0 / np.sqrt(fan_in)
    # 120,000 draws: the sample std is within ~0.3% of the truth; the truncation at two
    # standard deviations of the underlying normal (std / 0.8796) bounds every entry.
    assert abs(w.std() / std - 1.0) < 0.02
    assert abs(w.mean()) < 0.01 * std
    assert np.abs(w).max() <= 2.0 * std / 0.87962566 + 1e-6
    assert np.abs(w).max() > 1.9 * std / 0.87962566
    with pytest.raises(ValueError, match="fan_in"):
        la.lecun_normal_init((2, 2), 0, key=jax.random.key(0))


def test_a2c_network_init_is_flax_default():
    """Flax `nn.Conv` / `nn.Dense` defaults (the Optim4RL reference code): LeCun-normal
    weights with fan-in over all but the output axis, zero biases."""
    net = la.A2CNetwork((13, 9, 5), 9, torso="cnn", key=jax.random.key(0))
    assert net.conv is not None
    for layer, fan_in in [
        (net.conv, 5 * 2 * 2),
        (net.torso, 13 * 9 * 16),
        (net.policy_head, 32),
        (net.value_head, 32),
    ]:
        assert layer.bias is not None
        np.testing.assert_array_equal(layer.bias, 0.0)
        w = np.asarray(layer.weight)
        bound = 2.0 / np.sqrt(fan_in) / 0.87962566 + 1e-6
        assert np.abs(w).max() <= bound
    # The 59,904 torso weights pin the std down to ~0.5%.
    assert abs(np.asarray(net.torso.weight).std() * np.sqrt(13 * 9 * 16) - 1.0) < 0.03
    # jaxtyping's runtime check (as in CI) rejects the Literal first; without it, our own
    # ValueError does.
    with pytest.raises((ValueError, jaxtyping.TypeCheckError), match="init"):
        la.A2CNetwork((4, 4, 2), 9, torso="cnn", init="he", key=jax.random.key(0))  # pyright: ignore[reportArgumentType]


@pytest.fixture(scope="module")
def big_dense_long_obs():
    lg = pytest.importorskip("lorl_gridworlds")
    env, params = lg.make("big_dense_long")
    keys = jax.random.split(jax.random.key(0), 256)
    obs, _ = jax.vmap(lambda k: env.reset(k, params))(keys)
    return obs


def _torso_dormancy(init, obs, key):
    net = la.A2CNetwork(obs.shape[1:], 9, torso="cnn", init=init, key=key)
    _, _, acts = jax.vmap(net)(obs)
    return float(la.dormant_fraction(acts[1])), np.asarray(acts[0])


def test_a2c_cnn_torso_responds_to_sparse_observations_at_init(big_dense_long_obs):
    """Regression for the `big_dense_long` collapse (docs/agents/benchmarks.md): with
    Equinox's default init the conv's nonzero biases turn every empty cell into the same
    constant, each torso unit is nearly constant over observations, and 16-31% of the torso
    is already dead at initialisation (then most of the rest after a few RMSProp steps).
    With the Flax-default init an empty cell gives exactly zero and no torso unit is dead.
    """
    obs = big_dense_long_obs
    assert obs.shape == (256, 13, 9, 5)
    empty = np.asarray(obs.sum(-1) == 0)  # cells with no object and no agent
    for seed in range(4):
        dormant, conv_out = _torso_dormancy("lecun", obs, jax.random.key(seed))
        assert dormant == 0.0
        # A 2x2 SAME conv reads a cell and its right / lower neighbours (pad after): where
        # all of them are empty, the output is exactly zero (no bias).
        shifted = np.pad(empty, ((0, 0), (0, 1), (0, 1)), constant_values=True)
        all_empty = shifted[:, :-1, :-1] & shifted[:, 1:, :-1] & shifted[:, :-1, 1:]
        all_empty &= shifted[:, 1:, 1:]
        assert all_empty.mean() > 0.8
        np.testing.assert_array_equal(conv_out[all_empty], 0.0)
    # The old default, same seeds: the failure this test guards against.
    old = [_torso_dormancy("equinox", obs, jax.random.key(s))[0] for s in range(4)]
    assert np.mean(old) > 0.1
