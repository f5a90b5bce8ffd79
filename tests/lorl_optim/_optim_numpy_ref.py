"""Independent NumPy re-implementations (float64, one parameter at a time, params-major)
written from the spec (`optimizers.md`) and the papers, used as test oracles."""

import numpy as np

# Offsets of the default-size OPEN flat vector, copied from the spec's layout table
# (section 2), NOT from the package: (name, shape) in file order.


def open_table(n_in: int, f: int, h: int, n_out: int) -> dict[str, tuple[int, tuple[int, ...]]]:
    names = [
        ("gru/hn/bias", (f,)),
        ("gru/hn/kernel", (f, f)),
        ("gru/hr/kernel", (f, f)),
        ("gru/hz/kernel", (f, f)),
        ("gru/in/bias", (f,)),
        ("gru/in/kernel", (n_in, f)),
        ("gru/ir/bias", (f,)),
        ("gru/ir/kernel", (n_in, f)),
        ("gru/iz/bias", (f,)),
        ("gru/iz/kernel", (n_in, f)),
        ("mlp/layers_0/bias", (h,)),
        ("mlp/layers_0/kernel", (f, h)),
        ("mlp/layers_1/bias", (h,)),
        ("mlp/layers_1/scale", (h,)),
        ("mlp/layers_3/bias", (h,)),
        ("mlp/layers_3/kernel", (h, h)),
        ("mlp/layers_4/bias", (h,)),
        ("mlp/layers_4/scale", (h,)),
        ("mlp/layers_6/bias", (n_out,)),
        ("mlp/layers_6/kernel", (h, n_out)),
    ]
    table, off = {}, 0
    for name, shape in names:
        table[name] = (off, shape)
        off += int(np.prod(shape))
    table["__size__"] = (off, ())
    return table


# The spec's table, literally (default size): used to check `open_table` itself.
SPEC_DEFAULT_OFFSETS = {
    "gru/hn/bias": 0,
    "gru/hn/kernel": 8,
    "gru/hr/kernel": 72,
    "gru/hz/kernel": 136,
    "gru/in/bias": 200,
    "gru/in/kernel": 208,
    "gru/ir/bias": 360,
    "gru/ir/kernel": 368,
    "gru/iz/bias": 520,
    "gru/iz/kernel": 528,
    "mlp/layers_0/bias": 680,
    "mlp/layers_0/kernel": 696,
    "mlp/layers_1/bias": 824,
    "mlp/layers_1/scale": 840,
    "mlp/layers_3/bias": 856,
    "mlp/layers_3/kernel": 872,
    "mlp/layers_4/bias": 1128,
    "mlp/layers_4/scale": 1144,
    "mlp/layers_6/bias": 1160,
    "mlp/layers_6/kernel": 1163,
}


def unpack(vec: np.ndarray, table: dict) -> dict[str, np.ndarray]:
    out = {}
    for name, (off, shape) in table.items():
        if name == "__size__":
            continue
        size = int(np.prod(shape))
        out[name] = np.asarray(vec[off : off + size], np.float64).reshape(shape)
    return out


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def flax_gru(w: dict, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """flax GRUCell on one parameter: x (in,), h (F,); kernels (in, out)."""
    r = sigmoid(x @ w["gru/ir/kernel"] + w["gru/ir/bias"] + h @ w["gru/hr/kernel"])
    z = sigmoid(x @ w["gru/iz/kernel"] + w["gru/iz/bias"] + h @ w["gru/hz/kernel"])
    n = np.tanh(
        x @ w["gru/in/kernel"] + w["gru/in/bias"] + r * (h @ w["gru/hn/kernel"] + w["gru/hn/bias"])
    )
    return (1 - z) * n + z * h


def layer_norm(x, scale, bias, eps=1e-6):
    mu = x.mean()
    var = ((x - mu) ** 2).mean()
    return (x - mu) / np.sqrt(var + eps) * scale + bias


def open_mlp(w: dict, h: np.ndarray) -> np.ndarray:
    a = h @ w["mlp/layers_0/kernel"] + w["mlp/layers_0/bias"]
    a = np.maximum(layer_norm(a, w["mlp/layers_1/scale"], w["mlp/layers_1/bias"]), 0)
    a = a @ w["mlp/layers_3/kernel"] + w["mlp/layers_3/bias"]
    a = np.maximum(layer_norm(a, w["mlp/layers_4/scale"], w["mlp/layers_4/bias"]), 0)
    return a @ w["mlp/layers_6/kernel"] + w["mlp/layers_6/bias"]


BETAS = [0.1, 0.5, 0.9, 0.99, 0.999, 0.9999]


def open_step(
    weights,
    leaves_p,
    leaves_g,
    mom,
    hid,
    *,
    tp,
    bp,
    lp,
    dorm,
    actor,
    eps,
    no_features=False,
    critic_weights=None,
):
    """One OPEN step on lists of leaves (float64). `mom[i]` (6, *shape), `hid[i]`
    (F, *shape), `lp[i]` scalar, `dorm[i]` broadcastable, `actor[i]` bool, `eps[i]` noise
    (shape of leaf). `weights` may be a dict (shared) and `critic_weights` a second dict.
    Returns (updates to add, new mom, new hid)."""
    u_hat_all, new_mom, new_hid = [], [], []
    for i, (p, g) in enumerate(zip(leaves_p, leaves_g, strict=True)):
        p = np.asarray(p, np.float64)
        g = np.asarray(g, np.float64)
        m = np.stack([b * mom[i][k] + (1 - b) * g for k, b in enumerate(BETAS)])
        raw = [p] + [np.sign(m[k]) for k in range(6)]
        raw += [np.log(np.abs(m[k]) + 1e-13) for k in range(6)]
        raw += [np.sign(g), np.log(np.abs(g) + 1e-13)]
        feats = [x / np.sqrt(1e-5 + np.mean(x**2)) for x in raw]
        if no_features:
            feats = feats[1:]
        else:
            feats += [
                np.full(p.shape, tp),
                np.full(p.shape, lp[i]),
                np.full(p.shape, bp),
                np.broadcast_to(dorm[i], p.shape),
            ]
        w = weights if (critic_weights is None or actor[i]) else critic_weights
        u_hat = np.zeros(p.shape)
        h_new = np.zeros(hid[i].shape)
        for idx in np.ndindex(p.shape):
            x = np.array([f[idx] for f in feats])
            h = flax_gru(w, x, hid[i][(slice(None), *idx)])
            o = open_mlp(w, h)
            val = 1e-3 * o[0] * np.exp(1e-3 * o[1])
            if not no_features and actor[i]:
                val += 1e-3 * o[2] * eps[i][idx]
            u_hat[idx] = val
            h_new[(slice(None), *idx)] = h
        u_hat_all.append(u_hat)
        new_mom.append(m)
        new_hid.append(h_new)
    mean = np.concatenate([u.ravel() for u in u_hat_all]).mean()
    updates = [-(u - mean) for u in u_hat_all]
    return updates, new_mom, new_hid


# ----------------------------------------------------------------------- Optim4RL family
def gru_from_module(gru) -> dict:
    """Our GRU's (out, in) stacked [r, z, n] weights as flax-style (in, out) kernels."""
    wi, bi = np.asarray(gru.weight_ih, np.float64), np.asarray(gru.bias_ih, np.float64)
    wh, bhn = np.asarray(gru.weight_hh, np.float64), np.asarray(gru.bias_hn, np.float64)
    f = bhn.shape[0]
    s = {"r": slice(0, f), "z": slice(f, 2 * f), "n": slice(2 * f, 3 * f)}
    return {
        "gru/ir/kernel": wi[s["r"]].T,
        "gru/iz/kernel": wi[s["z"]].T,
        "gru/in/kernel": wi[s["n"]].T,
        "gru/ir/bias": bi[s["r"]],
        "gru/iz/bias": bi[s["z"]],
        "gru/in/bias": bi[s["n"]],
        "gru/hr/kernel": wh[s["r"]].T,
        "gru/hz/kernel": wh[s["z"]].T,
        "gru/hn/kernel": wh[s["n"]].T,
        "gru/hn/bias": bhn,
    }


def relu_mlp(mlp, x: np.ndarray) -> np.ndarray:
    layers = [
        (np.asarray(lay.weight, np.float64), np.asarray(lay.bias, np.float64)) for lay in mlp.layers
    ]
    for w, b in layers[:-1]:
        x = np.maximum(w @ x + b, 0)
    w, b = layers[-1]
    return w @ x + b


def optim4rl_step(opt, g: np.ndarray, h1: np.ndarray, h2: np.ndarray, lr: float):
    """Algorithm 1 on a flat gradient vector; h1, h2 (F, n)."""
    g = np.clip(np.asarray(g, np.float64), -1, 1)
    w1, w2 = gru_from_module(opt.gru1), gru_from_module(opt.gru2)
    out, nh1, nh2 = np.zeros_like(g), np.zeros_like(h1), np.zeros_like(h2)
    for j in range(g.shape[0]):
        gs, gl = np.sign(g[j]), np.log(abs(g[j]) + 1e-18)
        a = flax_gru(w1, np.array([gs, gl]), h1[:, j])
        o1, o2 = relu_mlp(opt.mlp1, a)
        m_sign = 1.0 if np.tanh(o1 + 1.0) >= 0 else -1.0
        m = gs * m_sign * np.exp(o2)
        b = flax_gru(w2, np.array([2 * gl]), h2[:, j])
        v = np.exp(relu_mlp(opt.mlp2, b)[0])
        out[j] = -lr * m / np.sqrt(v + 1e-18)
        nh1[:, j], nh2[:, j] = a, b
    return out, nh1, nh2


def linear_optim_step(opt, g, h, lr):
    g = np.clip(np.asarray(g, np.float64), -1, 1)
    w = gru_from_module(opt.gru)
    out, nh = np.zeros_like(g), np.zeros_like(h)
    for j in range(g.shape[0]):
        a = flax_gru(w, np.array([np.sign(g[j]), np.log(abs(g[j]) + 1e-18)]), h[:, j])
        ca, cb = relu_mlp(opt.mlp, a)
        out[j] = -lr * (ca * g[j] + cb)
        nh[:, j] = a
    return out, nh


def l2lgd2_step(opt, g, h, lr, p=10.0):
    g = np.clip(np.asarray(g, np.float64), -1, 1)
    w = gru_from_module(opt.gru)
    out, nh = np.zeros_like(g), np.zeros_like(h)
    for j in range(g.shape[0]):
        lg = np.log(abs(g[j]) + 1e-18) / p
        x = np.array([lg, np.sign(g[j])]) if lg >= -1 else np.array([-1.0, np.exp(p) * g[j]])
        a = flax_gru(w, x, h[:, j])
        (o,) = relu_mlp(opt.mlp, a)
        out[j] = -lr * np.exp(o) * g[j]
        nh[:, j] = a
    return out, nh
