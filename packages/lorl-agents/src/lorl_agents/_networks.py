"""Actor-critic networks: A2C shared-torso nets (Optim4RL) and PPO actor + critic (OPEN)."""

import abc
import math
from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from ._dormancy import DORMANCY_EPS, neuron_scores

#: Hidden-layer activations by name; `swish` (`x * sigmoid(x)`, also called SiLU) is Brax's
#: PPO default (`brax.training.agents.ppo.networks.make_ppo_networks`, `linen.swish`).
_ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "swish": jax.nn.swish,
}


def _activation(name: str) -> Callable[[Array], Array]:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; allowed: {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


@jax.jit
def _orthonormal_columns(a: Float[Array, "rows cols"]) -> Float[Array, "rows cols"]:
    """Gram-Schmidt with one re-orthogonalisation pass (CGS2), column by column.

    Written with matrix products only: batched LAPACK QR (what `jax.nn.initializers.
    orthogonal` uses) deadlocked under `vmap` over seeds on this project's CPU machine, while
    this vmaps freely. Equals the Q of a QR decomposition whose R has a positive diagonal.
    """
    n = a.shape[1]
    index = jnp.arange(n)

    def body(j, q):
        earlier = (index < j).astype(q.dtype)
        v = q[:, j]
        for _ in range(2):
            v = v - q @ ((q.T @ v) * earlier)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, n, body, a)


def orthogonal_init(
    shape: tuple[int, int], gain: float, *, key: PRNGKeyArray
) -> Float[Array, "out in"]:
    """Orthogonal initialisation (Saxe et al. 2014) of an `(out, in)` weight matrix.

    **Arguments:**

    - `shape`: `(out_features, in_features)`.
    - `gain`: scale of the orthogonal matrix.
    - `key`: PRNG key.

    **Returns:**

    `gain` times a matrix with orthonormal rows or columns (whichever are fewer), drawn
    uniformly (Haar measure). Safe to `vmap` over keys.
    """
    out_features, in_features = shape
    rows, cols = max(shape), min(shape)
    q = _orthonormal_columns(jax.random.normal(key, (rows, cols), dtype=jnp.float32))
    w = q if out_features >= in_features else q.T
    return gain * w


def _orthogonal_linear(
    in_features: int, out_features: int, gain: float, *, key: PRNGKeyArray
) -> eqx.nn.Linear:
    layer = eqx.nn.Linear(in_features, out_features, key=key)
    weight = orthogonal_init((out_features, in_features), gain, key=key)
    return eqx.tree_at(
        lambda lin: (lin.weight, lin.bias),
        layer,
        (weight, jnp.zeros((out_features,), jnp.float32)),
    )


# Standard deviation of a standard normal truncated to [-2, 2]: dividing by it makes the
# truncated draw's std equal the requested one (as `jax.nn.initializers.variance_scaling`).
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def lecun_normal_init(
    shape: tuple[int, ...], fan_in: int, *, key: PRNGKeyArray
) -> Float[Array, "..."]:
    """LeCun-normal initialisation, Flax's and Haiku's default for dense and conv kernels.

    A normal truncated at two standard deviations, rescaled so its standard deviation is
    `1 / sqrt(fan_in)` (`jax.nn.initializers.lecun_normal`, i.e. `variance_scaling(1.0,
    "fan_in", "truncated_normal")`).

    **Arguments:**

    - `shape`: shape of the weight array.
    - `fan_in`: number of inputs of one output unit (for a conv: in_channels x kernel area).
    - `key`: PRNG key.

    **Returns:**

    A float32 array of `shape`. Safe to `vmap` over keys.
    """
    if fan_in < 1:
        raise ValueError(f"fan_in must be >= 1, got {fan_in}")
    std = 1.0 / math.sqrt(fan_in) / _TRUNCATED_NORMAL_STD
    return std * jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)


def _lecun_zero_bias(layer: eqx.nn.Linear | eqx.nn.Conv2d, *, key: PRNGKeyArray):
    """`layer` with LeCun-normal weights (fan-in over all but the output axis) and zero
    bias: the Flax `nn.Dense` / `nn.Conv` defaults."""
    weight = layer.weight
    fan_in = math.prod(weight.shape[1:])
    assert layer.bias is not None
    return eqx.tree_at(
        lambda lay: (lay.weight, lay.bias),
        layer,
        (lecun_normal_init(weight.shape, fan_in, key=key), jnp.zeros_like(layer.bias)),
    )


def _fill(module: eqx.Module, fn: Callable[[Array], Array]) -> eqx.Module:
    """Replace every array leaf `x` of `module` with `fn(x)`."""
    return jax.tree.map(lambda x: fn(x) if eqx.is_array(x) else x, module)


def _fill_scores(layer: eqx.Module, scores: Float[Array, " out"]) -> eqx.Module:
    """Give every parameter of a layer the score of its output neuron (axis 0)."""

    def broadcast(x: Array) -> Array:
        return jnp.broadcast_to(scores.reshape((-1,) + (1,) * (x.ndim - 1)), x.shape)

    return _fill(layer, broadcast)


def _constant(value: float | bool) -> Callable[[Array], Array]:
    dtype = jnp.bool_ if isinstance(value, bool) else jnp.float32
    return lambda x: jnp.asarray(value, dtype=dtype)


def conv_same_channels_last(
    conv: eqx.nn.Conv2d, x: Float[Array, "height width in_channels"]
) -> Float[Array, "height width out_channels"]:
    """`conv` (stride 1, "SAME" padding) applied to a channels-last image, computed as one
    matrix product over image patches (im2col).

    Same numbers as `conv` itself, but on this project's CPU the gradient of XLA's
    convolution inside the training `scan` was ~8x slower than this formulation (A2C on
    `big_dense_long`: 2.5 s per update instead of ~0.6 s), so the A2C CNN uses this.

    **Arguments:**

    - `conv`: an `eqx.nn.Conv2d` with stride 1, dilation 1, one group and "SAME" padding.
    - `x`: the image, channels last.

    **Returns:**

    The convolution's output, channels last.
    """
    if tuple(conv.stride) != (1, 1) or tuple(conv.dilation) != (1, 1) or conv.groups != 1:
        raise ValueError(
            "conv_same_channels_last needs stride 1, dilation 1 and one group; got "
            f"stride {conv.stride}, dilation {conv.dilation}, groups {conv.groups}"
        )
    _, _, kh, kw = conv.weight.shape
    height, width, _ = x.shape
    # "SAME" as Equinox pads it: (k - 1) // 2 before, the rest after.
    pad = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2), ((kw - 1) // 2, kw - 1 - (kw - 1) // 2)
    xp = jnp.pad(x, (*pad, (0, 0)))
    offsets = [(i, j) for i in range(kh) for j in range(kw)]
    patches = jnp.concatenate([xp[i : i + height, j : j + width] for i, j in offsets], axis=-1)
    kernel = jnp.concatenate([conv.weight[:, :, i, j].T for i, j in offsets], axis=0)
    out = patches @ kernel
    if conv.bias is not None:
        out = out + jnp.broadcast_to(conv.bias.reshape(-1), out.shape)
    return out


class AbstractActorCritic(eqx.Module):
    """An actor-critic network that also reports its per-layer activations.

    Every network is called on one (unbatched) observation and returns
    `(policy_output, value, activations)`: the logits (discrete) or the Gaussian mean
    (continuous), the scalar value, and one array per layer (neurons on the last axis) for
    dormancy. It also builds the per-parameter context trees learned optimizers receive;
    each has the structure of the network itself, so `eqx.filter(tree, eqx.is_array)`
    matches `eqx.filter(network, eqx.is_inexact_array)`.
    """

    @abc.abstractmethod
    def __call__(
        self, obs: Float[Array, "..."]
    ) -> tuple[Float[Array, " n_out"], Float[Array, ""], tuple[Float[Array, "..."], ...]]:
        raise NotImplementedError

    @abc.abstractmethod
    def layer_names(self) -> tuple[str, ...]:
        """Names of the layers, in the order of the returned activations."""
        raise NotImplementedError

    @abc.abstractmethod
    def dormancy(self, activations: tuple[Float[Array, "..."], ...]) -> PyTree[Array]:
        """Per-parameter dormancy: each parameter gets the score of its output neuron."""
        raise NotImplementedError

    @abc.abstractmethod
    def layer_proportions(self) -> PyTree[Float[Array, ""]]:
        """One scalar per parameter leaf: `i / (n_layers - 1)` for its layer `i`."""
        raise NotImplementedError

    @abc.abstractmethod
    def actor_mask(self) -> PyTree[Bool[Array, ""]]:
        """One boolean per parameter leaf: does it belong to the actor."""
        raise NotImplementedError


def _proportion(i: int, n: int) -> float:
    return i / (n - 1) if n > 1 else 0.0


class PPONetwork(AbstractActorCritic):
    """Separate actor and critic MLPs as in the OPEN paper (Appendix C.1, Table 3).

    Each is `Linear -> act -> ... -> Linear` with `n_hidden` hidden layers of `width` (the
    critic's may differ: `critic_width`, `critic_hidden`);
    orthogonal weights (gain `sqrt(2)` hidden, `0.01` actor head, `1.0` critic head) and zero
    biases (PureJaxRL's PPO, which the OPEN paper follows). A continuous actor outputs the
    Gaussian mean and owns a state-independent `log_std`, initialised to zero. Observations
    are flattened.
    """

    actor: tuple[eqx.nn.Linear, ...]
    critic: tuple[eqx.nn.Linear, ...]
    log_std: Float[Array, " action_dim"] | None
    obs_shape: tuple[int, ...] = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    continuous: bool = eqx.field(static=True)

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        n_outputs: int,
        *,
        continuous: bool,
        width: int = 64,
        n_hidden: int = 2,
        critic_width: int | None = None,
        critic_hidden: int | None = None,
        activation: Literal["relu", "tanh", "swish"] = "relu",
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `obs_shape`: shape of one observation (flattened by the network).
        - `n_outputs`: number of actions (discrete) or action dimensions (continuous).
        - `continuous`: Gaussian policy if true, categorical otherwise.
        - `width`, `n_hidden`: hidden layer size and count (OPEN: 64 x 2 for MinAtar and
            Ant, 16 x 2 for gridworlds; Table 3).
        - `critic_width`, `critic_hidden`: the critic's, if different from the actor's
            (`None`: the same; Optim4RL's Ant runs use a 32 x 4 policy and a 64 x 5 value
            net).
        - `activation`: `"relu"`, `"tanh"` or `"swish"` (`x * sigmoid(x)`, Brax's PPO
            default).
        - `key`: PRNG key.
        """
        _activation(activation)
        critic_width = width if critic_width is None else critic_width
        critic_hidden = n_hidden if critic_hidden is None else critic_hidden
        if min(width, critic_width, n_outputs) < 1 or min(n_hidden, critic_hidden) < 0:
            raise ValueError(
                f"need widths >= 1, hidden layer counts >= 0, n_outputs >= 1; got width "
                f"{width}, n_hidden {n_hidden}, critic_width {critic_width}, critic_hidden "
                f"{critic_hidden}, n_outputs {n_outputs}"
            )
        obs_dim = math.prod(obs_shape)
        actor_key, critic_key = jax.random.split(key)

        def mlp(k, out, head_gain, layer_width, n_layers):
            sizes = [obs_dim] + [layer_width] * n_layers
            keys = jax.random.split(k, n_layers + 1)
            hidden = [
                _orthogonal_linear(sizes[i], sizes[i + 1], math.sqrt(2.0), key=keys[i])
                for i in range(n_layers)
            ]
            head = _orthogonal_linear(sizes[-1], out, head_gain, key=keys[-1])
            return (*hidden, head)

        self.actor = mlp(actor_key, n_outputs, 0.01, width, n_hidden)
        self.critic = mlp(critic_key, 1, 1.0, critic_width, critic_hidden)
        self.log_std = jnp.zeros((n_outputs,), jnp.float32) if continuous else None
        self.obs_shape = tuple(obs_shape)
        self.activation = activation
        self.continuous = continuous

    def __call__(
        self, obs: Float[Array, "..."]
    ) -> tuple[Float[Array, " n_out"], Float[Array, ""], tuple[Float[Array, "..."], ...]]:
        act = _activation(self.activation)
        x = obs.reshape(-1)
        activations = []
        h = x
        for layer in self.actor[:-1]:
            h = act(layer(h))
            activations.append(h)
        policy = self.actor[-1](h)
        activations.append(policy)
        h = x
        for layer in self.critic[:-1]:
            h = act(layer(h))
            activations.append(h)
        value = self.critic[-1](h)
        activations.append(value)
        return policy, value[0], tuple(activations)

    def layer_names(self) -> tuple[str, ...]:
        return tuple(f"actor/{i}" for i in range(len(self.actor))) + tuple(
            f"critic/{i}" for i in range(len(self.critic))
        )

    def dormancy(self, activations: tuple[Float[Array, "..."], ...]) -> PyTree[Array]:
        n = len(self.actor)
        scores = [neuron_scores(a, DORMANCY_EPS) for a in activations]
        actor = tuple(
            _fill_scores(layer, s) for layer, s in zip(self.actor, scores[:n], strict=True)
        )
        critic = tuple(
            _fill_scores(layer, s) for layer, s in zip(self.critic, scores[n:], strict=True)
        )
        out = eqx.tree_at(lambda net: (net.actor, net.critic), self, (actor, critic))
        if self.log_std is not None:
            # log_std[j] shapes the distribution of action dim j: its downstream neuron is
            # the actor head's output j.
            out = eqx.tree_at(lambda net: net.log_std, out, scores[n - 1])
        return out

    def layer_proportions(self) -> PyTree[Float[Array, ""]]:
        n_a, n_c = len(self.actor), len(self.critic)
        actor = tuple(
            _fill(layer, _constant(_proportion(i, n_a))) for i, layer in enumerate(self.actor)
        )
        critic = tuple(
            _fill(layer, _constant(_proportion(i, n_c))) for i, layer in enumerate(self.critic)
        )
        out = eqx.tree_at(lambda net: (net.actor, net.critic), self, (actor, critic))
        if self.log_std is not None:
            # The OPEN reference counts a continuous actor's log_std as its last layer.
            out = eqx.tree_at(lambda net: net.log_std, out, jnp.asarray(1.0, jnp.float32))
        return out

    def actor_mask(self) -> PyTree[Bool[Array, ""]]:
        actor = tuple(_fill(layer, _constant(True)) for layer in self.actor)
        critic = tuple(_fill(layer, _constant(False)) for layer in self.critic)
        out = eqx.tree_at(lambda net: (net.actor, net.critic), self, (actor, critic))
        if self.log_std is not None:
            out = eqx.tree_at(lambda net: net.log_std, out, jnp.asarray(True))
        return out


class A2CNetwork(AbstractActorCritic):
    """The shared-torso actor-critic of the Optim4RL paper (Appendix C), ReLU throughout.

    - `torso="mlp"` ("small" gridworlds): flatten -> Linear(32) -> ReLU.
    - `torso="cnn"` ("big" gridworlds): Conv(16 features, 2x2, stride 1, SAME) -> ReLU ->
      flatten -> Linear(32) -> ReLU, on channels-last `(H, W, C)` observations.

    followed by a policy head (one logit per action) and a value head.

    Initialisation (`init`): the paper does not state one; its reference code builds these
    layers with Flax's defaults, LeCun-normal weights and **zero biases** (`"lecun"`, the
    default). Equinox's own defaults (`"equinox"`: uniform weights *and biases* in
    `+-1/sqrt(fan_in)`) break the CNN torso on the sparse LPG observations: almost every
    cell is empty, so the conv output there is `relu(bias)`, a constant that dominates the
    1,872 inputs of the torso's `Linear`; every torso unit is then nearly constant across
    observations, the ~20% whose constant is negative never fire, and the first RMSProp or
    Adam step (which moves every weight by about the learning rate in the same direction)
    shifts the pre-activations by O(1) and silences most of the rest (`big_dense_long`:
    0.88 of the torso dormant after 5 updates, 1.0 by update 150; see
    `docs/agents/benchmarks.md`, "big_dense_long dormancy"). `"equinox"` is kept only to
    reproduce that diagnosis.
    """

    conv: eqx.nn.Conv2d | None
    torso: eqx.nn.Linear
    policy_head: eqx.nn.Linear
    value_head: eqx.nn.Linear
    obs_shape: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        n_actions: int,
        *,
        torso: Literal["mlp", "cnn"],
        hidden: int = 32,
        conv_features: int = 16,
        init: Literal["lecun", "equinox"] = "lecun",
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `obs_shape`: shape of one observation; `(H, W, C)` for the CNN torso.
        - `n_actions`: number of discrete actions.
        - `torso`: `"mlp"` or `"cnn"`.
        - `hidden`: torso output size (Optim4RL: 32).
        - `conv_features`: conv channels (Optim4RL: 16).
        - `init`: `"lecun"` (Flax defaults, as the Optim4RL reference code) or `"equinox"`
            (Equinox's defaults; collapses on the big gridworlds, see above).
        - `key`: PRNG key.
        """
        if init not in ("lecun", "equinox"):
            raise ValueError(f"unknown init {init!r}; allowed: 'lecun', 'equinox'")
        conv_key, torso_key, pi_key, v_key = jax.random.split(key, 4)
        if torso == "cnn":
            if len(obs_shape) != 3:
                raise ValueError(
                    "the CNN torso needs channels-last (H, W, C) observations; got "
                    f"observation shape {tuple(obs_shape)}"
                )
            height, width, channels = obs_shape
            self.conv = eqx.nn.Conv2d(
                channels, conv_features, kernel_size=2, stride=1, padding="SAME", key=conv_key
            )
            torso_in = height * width * conv_features
        elif torso == "mlp":
            self.conv = None
            torso_in = math.prod(obs_shape)
        else:
            raise ValueError(f"unknown torso {torso!r}; allowed: 'mlp', 'cnn'")
        self.torso = eqx.nn.Linear(torso_in, hidden, key=torso_key)
        self.policy_head = eqx.nn.Linear(hidden, n_actions, key=pi_key)
        self.value_head = eqx.nn.Linear(hidden, 1, key=v_key)
        if init == "lecun":
            if self.conv is not None:
                self.conv = _lecun_zero_bias(self.conv, key=jax.random.fold_in(conv_key, 1))
            self.torso = _lecun_zero_bias(self.torso, key=jax.random.fold_in(torso_key, 1))
            self.policy_head = _lecun_zero_bias(self.policy_head, key=jax.random.fold_in(pi_key, 1))
            self.value_head = _lecun_zero_bias(self.value_head, key=jax.random.fold_in(v_key, 1))
        self.obs_shape = tuple(obs_shape)

    def __call__(
        self, obs: Float[Array, "..."]
    ) -> tuple[Float[Array, " n_out"], Float[Array, ""], tuple[Float[Array, "..."], ...]]:
        activations = []
        if self.conv is not None:
            # Channels-last throughout: channels are the neurons for dormancy.
            h = jax.nn.relu(conv_same_channels_last(self.conv, obs))
            activations.append(h)
            x = h.reshape(-1)
        else:
            x = obs.reshape(-1)
        h = jax.nn.relu(self.torso(x))
        activations.append(h)
        logits = self.policy_head(h)
        value = self.value_head(h)
        activations += [logits, value]
        return logits, value[0], tuple(activations)

    def layer_names(self) -> tuple[str, ...]:
        conv = ("conv",) if self.conv is not None else ()
        return (*conv, "torso", "policy_head", "value_head")

    def _replace(self, layers: list[eqx.Module]) -> PyTree[Array]:
        if self.conv is not None:
            return eqx.tree_at(
                lambda n: (n.conv, n.torso, n.policy_head, n.value_head), self, tuple(layers)
            )
        return eqx.tree_at(lambda n: (n.torso, n.policy_head, n.value_head), self, tuple(layers))

    def _layers(self) -> list[eqx.Module]:
        conv = [self.conv] if self.conv is not None else []
        return [*conv, self.torso, self.policy_head, self.value_head]

    def dormancy(self, activations: tuple[Float[Array, "..."], ...]) -> PyTree[Array]:
        scores = [neuron_scores(a, DORMANCY_EPS) for a in activations]
        return self._replace(
            [_fill_scores(lay, s) for lay, s in zip(self._layers(), scores, strict=True)]
        )

    def layer_proportions(self) -> PyTree[Float[Array, ""]]:
        # The two heads are both the last layer: depth = torso layers + 1.
        layers = self._layers()
        n = len(layers) - 1
        depths = [*range(n - 1), n - 1, n - 1]
        return self._replace(
            [
                _fill(lay, _constant(_proportion(d, n)))
                for lay, d in zip(layers, depths, strict=True)
            ]
        )

    def actor_mask(self) -> PyTree[Bool[Array, ""]]:
        # The shared torso shapes the policy, so it counts as actor; only the value head
        # is critic.
        layers = self._layers()
        flags = [True] * (len(layers) - 1) + [False]
        return self._replace(
            [_fill(lay, _constant(f)) for lay, f in zip(layers, flags, strict=True)]
        )
