"""`analysis/identity`: Optim4RL Sections 4.2 and 5.2, Figure 2 (an LSTM reproducing
agent-gradients from raw or sign/log inputs, and the non-iid random control), and with
`data=supervised` Figure 9 (the same on a supervised network's gradients).

Catalogue module: registers its experiment on import.
"""

import dataclasses
from typing import Any, Literal

import numpy as np

from ...runs import RunDir
from .._registry import Experiment, register
from ._gradients import (
    A2CCollect,
    collect_a2c,
    collect_digits,
    fmt,
    json_dumps,
    load_sample,
    rel,
    validate_a2c,
)

PAPER_IDENTITY = {"raw": 0.75, "sign_log": 0.90, "control": 1.0}  # Optim4RL Figure 2
#: Optim4RL Appendix E, Figure 9 (MNIST): "about 30%" raw, "around 80%" processed.
PAPER_IDENTITY_SUPERVISED = {"raw": 0.30, "sign_log": 0.80, "control": None}


@dataclasses.dataclass(frozen=True)
class IdentityConfig:
    """Optim4RL Sections 4.2 and 5.2, Figure 2 (b).

    - `seeds`: training runs per condition and learning rate (10 in the paper).
    - `a2c`: the A2C run whose agent-gradient traces are the data.
    - `n_traced`: parameter elements whose gradient sequences form the data (the public
      code keeps every 100th parameter of the network: ~600 of ~60,000 here).
    - `epochs`: 1,000 (Appendix C.2). `seq_len`: 5 (public code).
    - `learning_rates`: Adam's; the best is reported (Appendix C.2: {3e-3, 1e-3, 3e-4, 1e-4}).
    - `data`: `rl` (the A2C run's agent-gradients, Figure 2) or `supervised` (a CNN's
      gradients on scikit-learn's digits, Figure 9, where the paper uses MNIST, which
      cannot be downloaded here; `lorl.analysis.collect_supervised_gradients`).
    - `sl_epochs`, `sl_batch_size`, `sl_learning_rate`: the supervised run (RMSProp;
      batch 128 and 3e-4 as the Optim4RL public code's configs/collect_mnist.json; digits
      has 1,797 images, so 100 epochs give 1,400 steps where MNIST's 10 give 4,680).
    """

    seeds: int = 10  # Optim4RL Figure 2: 10 runs
    a2c: A2CCollect = dataclasses.field(default_factory=lambda: A2CCollect(per_stage=1000))
    n_traced: int = 600  # Optim4RL public code: every 100th parameter (configs/collect_bdl.json)
    epochs: int = 1000  # Optim4RL Appendix C.2
    seq_len: int = 5  # Optim4RL public code, configs/bdl_identity.json
    learning_rates: tuple[float, ...] = (3e-3, 1e-3, 3e-4, 1e-4)  # Optim4RL Appendix C.2
    data: Literal["rl", "supervised"] = "rl"
    sl_epochs: int = 100  # ours: digits is 33x smaller than MNIST (see above)
    sl_batch_size: int = 128  # Optim4RL public code, configs/collect_mnist.json
    sl_learning_rate: float = 3e-4  # Optim4RL public code, configs/collect_mnist.json


def _validate_identity(c: IdentityConfig) -> None:
    from ...runs import ConfigError

    n_updates = validate_a2c(c.a2c)
    if c.seeds < 1 or c.epochs < 1 or c.n_traced < 1 or not c.learning_rates:
        raise ConfigError("seeds, epochs, n_traced must be >= 1 and learning_rates non-empty")
    if c.data not in ("rl", "supervised"):
        raise ConfigError(f"data must be 'rl' or 'supervised', got {c.data!r}")
    if c.data == "rl" and not 1 <= c.seq_len <= n_updates:
        raise ConfigError(f"seq_len must lie in [1, {n_updates}] (the A2C run's updates)")
    if c.data == "supervised":
        steps = c.sl_epochs * (1797 // max(c.sl_batch_size, 1))
        if c.sl_epochs < 1 or not 1 <= c.sl_batch_size <= 1797 or not c.sl_learning_rate > 0:
            raise ConfigError("sl_epochs >= 1, sl_batch_size in [1, 1797] (digits), lr > 0")
        if not 1 <= c.seq_len <= steps:
            raise ConfigError(f"seq_len must lie in [1, {steps}] (the supervised run's steps)")


def _identity_cpu() -> IdentityConfig:
    return IdentityConfig(
        seeds=2,
        a2c=A2CCollect(n_envs=64, total_timesteps=64 * 20 * 150, per_stage=1000),
        n_traced=128,
        epochs=150,
        learning_rates=(3e-3, 1e-3),
    )


def _run_identity(c: IdentityConfig, run_dir: RunDir) -> dict[str, Any]:
    import jax

    from ...analysis import random_control_data, train_identity

    if c.data == "supervised":
        sample = collect_digits(
            run_dir, epochs=c.sl_epochs, batch_size=c.sl_batch_size,
            learning_rate=c.sl_learning_rate, n_stages=c.a2c.n_stages,
            per_stage=c.a2c.per_stage, n_traced=c.n_traced, seed=1,
        )  # fmt: skip
        paper = PAPER_IDENTITY_SUPERVISED
    else:
        sample = collect_a2c(run_dir, "a2c", c.a2c, c.n_traced, 0)
        paper = PAPER_IDENTITY
    traces = np.asarray(sample.traces, np.float32)
    control = np.asarray(random_control_data(*traces.shape, key=jax.random.key(7)))
    data = {"raw": (traces, "raw"), "sign_log": (traces, "sign_log"), "control": (control, "raw")}
    out: dict[str, Any] = {"paper": paper, "data_shape": list(traces.shape), "data": c.data}
    for cond, (d, inputs) in data.items():

        def compute(d=d, inputs=inputs):
            runs = {}
            for lr in c.learning_rates:
                runs[str(lr)] = [
                    train_identity(
                        d,
                        inputs,
                        epochs=c.epochs,
                        seq_len=c.seq_len,
                        learning_rate=lr,
                        key=jax.random.key(100 + s),
                    )
                    for s in range(c.seeds)
                ]
            return runs

        runs = run_dir.stage(f"identity-{cond}", compute)
        # Per-epoch accuracy oscillates; "final" is the mean over the last tenth of the
        # epochs, "best" the best epoch (the Optim4RL code logs its best performance).
        tail = max(1, c.epochs // 10)

        def final_of(r: dict[str, Any], key: str = "accuracy", tail: int = tail) -> float:
            return float(np.mean(r[key][-tail:]))

        # The paper picks the best learning rate: highest mean (over seeds) final accuracy.
        best_lr = max(runs, key=lambda lr: np.mean([final_of(r) for r in runs[lr]]))
        best = runs[best_lr]
        final = np.array([final_of(r) for r in best])
        se = float(final.std(ddof=1) / np.sqrt(len(final))) if len(final) > 1 else float("nan")
        out[cond] = {
            "best_learning_rate": float(best_lr),
            "final_accuracy_mean": float(final.mean()),
            "final_accuracy_se": se,
            "final_accuracy_per_seed": final.tolist(),
            "final_accuracy_nonzero_mean": float(
                np.mean([final_of(r, "accuracy_nonzero") for r in best])
            ),
            "best_epoch_accuracy_mean": float(np.mean([np.max(r["accuracy"]) for r in best])),
            "nonzero_fraction": float(best[0]["nonzero_fraction"]),
            "curve_mean": np.mean([r["accuracy"] for r in best], axis=0).tolist(),
            "curve_nonzero_mean": np.mean([r["accuracy_nonzero"] for r in best], axis=0).tolist(),
        }
    return out


def _report_identity(run_dir: RunDir) -> str:
    from matplotlib.figure import Figure

    r = run_dir.load_results()
    fig = Figure(figsize=(9, 3.3))
    axes = fig.subplots(1, 2)
    labels = {"raw": "gradients", "sign_log": "processed gradients", "control": "random (non-iid)"}
    for cond, label in labels.items():
        axes[0].plot(r[cond]["curve_mean"], label=label)
        axes[1].plot(r[cond]["curve_nonzero_mean"], label=label)
    axes[0].set_title("accuracy (paper's definition)")
    axes[1].set_title("accuracy on non-zero targets")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = run_dir.plots_dir / "figure2_identity.png"
    fig.savefig(path, dpi=110)
    from ...analysis import plot_stage_histograms

    data_path = run_dir.plots_dir / "figure2a_data.png"
    supervised = r.get("data") == "supervised"
    traces = load_sample(run_dir, "digits" if supervised else "a2c").traces
    plot_stage_histograms(
        {"all traced agent-gradients": traces.ravel()}, str(data_path), title="identity data"
    )
    figure = "Appendix E, Figure 9: digits" if supervised else "Sections 4.2, 5.2, Figure 2"
    lines = [
        f"# Identity-function experiment (Optim4RL {figure})",
        "",
        f"Config: `{json_dumps(run_dir.config_dict)}`",
        "",
        f"Data: {r['data_shape'][0]} optimizer steps x {r['data_shape'][1]} parameter elements. "
        "Final accuracy: mean over the last tenth of the epochs, then over seeds; best "
        "epoch: the highest per-epoch accuracy, mean over seeds.",
        "",
        "| inputs | final accuracy (mean ± s.e.) | on non-zero targets | best epoch "
        "| non-zero fraction of data | best lr | paper |",
        "|---|---|---|---|---|---|---|",
    ]
    for cond, label in labels.items():
        x = r[cond]
        lines.append(
            f"| {label} | {fmt(x['final_accuracy_mean'])} ± {fmt(x['final_accuracy_se'], 2)} | "
            f"{fmt(x['final_accuracy_nonzero_mean'])} | {fmt(x['best_epoch_accuracy_mean'])} | "
            f"{fmt(x['nonzero_fraction'])} | "
            f"{fmt(x['best_learning_rate'])} | {_paper_cell(r['paper'][cond])} |"
        )
    lines += [
        "",
        f"![identity]({rel(run_dir, path)}) ![data (Figure 2 (a))]({rel(run_dir, data_path)})",
        "",
    ]
    return "\n".join(lines)


def _paper_cell(value: float | None) -> str:
    return "–" if value is None else f"~{value:.0%}"


register(
    Experiment(
        name="analysis/identity",
        summary=(
            "LSTM(8)+MLP[16,16] reproducing agent-gradients: raw vs sign/log inputs vs "
            "random control"
        ),
        reproduces="Optim4RL Sections 4.2, 5.2, Figure 2 (data=supervised: Figure 9)",
        scales={"cpu": _identity_cpu, "paper": IdentityConfig},
        run=_run_identity,
        report=_report_identity,
        validate=_validate_identity,
    )
)
