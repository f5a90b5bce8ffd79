"""The identity-function experiment (Optim4RL Sections 4.2 and 5.2, Figure 2): can an
LSTM(8) + MLP[16, 16] reproduce its input gradient sequence, `g_hat_t = g_t`?

Data: per-element gradient sequences over training (`traces` of a
[`lorl.analysis.GradientCollector`][], shape `(time, elements)`). The model runs along
time for every element (a learned optimizer's view of one parameter). Training as in the
Optim4RL public code (`agents/RNNIndentity.py`, `configs/bdl_identity.json`): the time
axis is cut into chunks of `seq_len = 5` steps, the LSTM state is carried across the
chunks of an epoch and reset at each epoch, one Adam step per chunk on the mean squared
error; an epoch's accuracy is the mean over its chunks (training accuracy).
"""

from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ._errors import AnalysisError

#: Optim4RL Equation (2): `eps = 1e-18` in `log(|g| + eps)`.
SIGN_LOG_EPS = 1e-18
#: Optim4RL Section 4.2: a prediction is correct within +-10% of the target.
TOLERANCE = 0.1

Inputs = Literal["raw", "sign_log"]


def sign_log_features(
    g: Float[Array, "*shape"], eps: float = SIGN_LOG_EPS
) -> Float[Array, "*shape 2"]:
    """Optim4RL's gradient processing, Equation (2): `g -> [sgn(g), log(|g| + eps)]`
    (natural log), stacked on a new last axis.

    **Arguments:**

    - `g`: gradients.
    - `eps`: 1e-18 in the paper.

    **Returns:**

    The features, shape `(*g.shape, 2)`.
    """
    return jnp.stack([jnp.sign(g), jnp.log(jnp.abs(g) + eps)], axis=-1)


def identity_accuracy(
    prediction: Float[Array, "*shape"], target: Float[Array, "*shape"], tolerance: float = TOLERANCE
) -> Float[Array, ""]:
    """Fraction of predictions within `tolerance` of the target *with the target's sign*:
    correct iff `min((1-e) g, (1+e) g) <= g_hat <= max((1-e) g, (1+e) g)` (Optim4RL
    Section 4.2, `e = 0.1`). A zero target is matched only by an exact zero.

    **Arguments:**

    - `prediction`, `target`: arrays of the same shape.
    - `tolerance`: `e`.

    **Returns:**

    The accuracy in [0, 1].
    """
    lo = jnp.minimum((1 - tolerance) * target, (1 + tolerance) * target)
    hi = jnp.maximum((1 - tolerance) * target, (1 + tolerance) * target)
    correct = (prediction >= lo) & (prediction <= hi)
    return jnp.mean(correct.astype(jnp.float32))


class IdentityRNN(eqx.Module):
    """LSTM (hidden 8) followed by an MLP with hidden sizes [16, 16] (ReLU) and one output
    (Optim4RL Appendix C.2), applied to one scalar sequence."""

    lstm: eqx.nn.LSTMCell
    mlp: eqx.nn.MLP
    inputs: Inputs = eqx.field(static=True)

    def __init__(self, inputs: str = "raw", hidden: int = 8, width: int = 16, *, key: PRNGKeyArray):
        """**Arguments:**

        - `inputs`: `"raw"` (the gradient itself) or `"sign_log"` (Equation (2)).
        - `hidden`, `width`: LSTM size 8 and MLP widths 16 (Optim4RL Appendix C.2).
        - `key`: PRNG key.
        """
        if inputs not in ("raw", "sign_log"):
            raise AnalysisError(f"inputs must be 'raw' or 'sign_log', got {inputs!r}")
        k1, k2 = jax.random.split(key)
        self.lstm = eqx.nn.LSTMCell(1 if inputs == "raw" else 2, hidden, key=k1)
        self.mlp = eqx.nn.MLP(hidden, 1, width, 2, activation=jax.nn.relu, key=k2)
        self.inputs = inputs

    def init_hidden(self) -> tuple[Float[Array, " h"], Float[Array, " h"]]:
        z = jnp.zeros((self.lstm.hidden_size,), jnp.float32)
        return z, z

    def __call__(
        self, hidden: tuple[Float[Array, " h"], Float[Array, " h"]], g: Float[Array, ""]
    ) -> tuple[tuple[Float[Array, " h"], Float[Array, " h"]], Float[Array, ""]]:
        """One step: `(new_hidden, g_hat)`."""
        x = g[None] if self.inputs == "raw" else sign_log_features(g)
        hidden = self.lstm(x, hidden)
        return hidden, self.mlp(hidden[0])[0]


def random_control_data(
    n_steps: int,
    n_elements: int,
    low_start: float = 1.0,
    low_end: float = 4.0,
    *,
    key: PRNGKeyArray,
) -> Float[Array, "n_steps n_elements"]:
    """The non-iid random control of Optim4RL Section 4.2: values uniform on an interval
    of length 2 whose lower end rises over time (here linearly from `low_start` to
    `low_end`; the paper does not give the numbers).

    **Arguments:**

    - `n_steps`, `n_elements`: the shape, as the agent-gradient traces it stands in for.
    - `low_start`, `low_end`: the lower end at the first and last step.
    - `key`: PRNG key.

    **Returns:**

    The data, `(n_steps, n_elements)`.
    """
    low = jnp.linspace(low_start, low_end, n_steps, dtype=jnp.float32)[:, None]
    return low + 2.0 * jax.random.uniform(key, (n_steps, n_elements), jnp.float32)


@eqx.filter_jit
def _train(model, data, learning_rate, epochs: int, seq_len: int):
    n_steps, n_elements = data.shape
    n_chunks = n_steps // seq_len
    chunks = data[: n_chunks * seq_len].reshape(n_chunks, seq_len, n_elements)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt = optax.adam(learning_rate)
    with jax.numpy_dtype_promotion("standard"):
        opt_state = opt.init(params)

    def chunk_loss(params, hidden, chunk):
        m = eqx.combine(params, static)

        def t_step(h, x):
            h, y = jax.vmap(m)(h, x)
            return h, y

        hidden, pred = jax.lax.scan(t_step, hidden, chunk)
        nonzero = chunk != 0
        lo = jnp.minimum((1 - TOLERANCE) * chunk, (1 + TOLERANCE) * chunk)
        hi = jnp.maximum((1 - TOLERANCE) * chunk, (1 + TOLERANCE) * chunk)
        correct = (pred >= lo) & (pred <= hi)
        counts = jnp.stack([jnp.sum(correct & nonzero), jnp.sum(nonzero)]).astype(jnp.float32)
        return jnp.mean((pred - chunk) ** 2), (hidden, identity_accuracy(pred, chunk), counts)

    def chunk_step(carry, chunk):
        params, opt_state, hidden = carry
        (loss, (hidden, acc, counts)), grads = jax.value_and_grad(chunk_loss, has_aux=True)(
            params, hidden, chunk
        )
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = opt.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        return (params, opt_state, jax.lax.stop_gradient(hidden)), (loss, acc, counts)

    def epoch(carry, _):
        params, opt_state = carry
        h0 = jax.tree.map(
            lambda z: jnp.broadcast_to(z, (n_elements, *z.shape)), model.init_hidden()
        )
        (params, opt_state, _), (loss, acc, counts) = jax.lax.scan(
            chunk_step, (params, opt_state, h0), chunks
        )
        total = jnp.sum(counts, axis=0)
        acc_nonzero = total[0] / jnp.maximum(total[1], 1.0)
        return (params, opt_state), (jnp.mean(loss), jnp.mean(acc), acc_nonzero)

    _, (losses, accs, accs_nz) = jax.lax.scan(epoch, (params, opt_state), None, length=epochs)
    return losses, accs, accs_nz


def train_identity(
    data: Float[Array, "time elements"] | Float[np.ndarray, "time elements"],
    inputs: str = "raw",
    *,
    epochs: int = 1000,
    seq_len: int = 5,
    learning_rate: float = 1e-3,
    key: PRNGKeyArray,
) -> dict[str, Any]:
    """Train an [`lorl.analysis.IdentityRNN`][] to output its input sequence.

    **Arguments:**

    - `data`: per-element sequences, `(time, elements)` (e.g. `GradientSample.traces`).
    - `inputs`: `"raw"` or `"sign_log"` (the model's input representation; the target is
      always the raw value).
    - `epochs`: passes over the data (Optim4RL Appendix C.2: 1,000).
    - `seq_len`: truncated-backpropagation chunk (5, Optim4RL public code).
    - `learning_rate`: Adam's (the paper picks the best of 3e-3, 1e-3, 3e-4, 1e-4).
    - `key`: PRNG key for the model.

    **Returns:**

    `{"loss", "accuracy", "accuracy_nonzero"}`, each `(epochs,)`: per-epoch training loss,
    accuracy (Optim4RL's definition: a zero target needs an exact zero), and accuracy over
    the non-zero targets only; and `"nonzero_fraction"` of the data.
    """
    data = jnp.asarray(data, jnp.float32)
    if data.ndim != 2 or data.shape[0] < seq_len or data.shape[1] < 1:
        raise AnalysisError(
            f"data must be (time >= seq_len = {seq_len}, elements >= 1); got {data.shape}"
        )
    if epochs < 1:
        raise AnalysisError(f"epochs must be >= 1, got {epochs}")
    if not bool(jnp.all(jnp.isfinite(data))):
        raise AnalysisError("data contains NaN or infinite values")
    model = IdentityRNN(inputs, key=key)
    losses, accs, accs_nz = _train(
        model, data, jnp.asarray(learning_rate, jnp.float32), epochs, seq_len
    )
    return {
        "loss": np.asarray(losses),
        "accuracy": np.asarray(accs),
        "accuracy_nonzero": np.asarray(accs_nz),
        "nonzero_fraction": float(np.mean(np.asarray(data) != 0)),
    }
