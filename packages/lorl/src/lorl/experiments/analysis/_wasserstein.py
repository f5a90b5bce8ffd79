"""`analysis/wasserstein`: Optim4RL Appendix E, Table 11 (the Wasserstein distance of each
training stage's gradients to the whole run, RL vs supervised learning; digits replaces
MNIST, which cannot be downloaded here).

Catalogue module: registers its experiment on import.
"""

import dataclasses
from typing import Any

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

PAPER_TABLE_11 = {
    "MNIST": {"beginning": 4.0642e-4, "middle": 0.7205e-4, "end": 1.4204e-4},
    "big_dense_long": {"beginning": 7.1583e-4, "middle": 1.1726e-4, "end": 6.7967e-4},
}


@dataclasses.dataclass(frozen=True)
class WassersteinConfig:
    """Optim4RL Appendix E, Table 11: Wasserstein distance of each stage to the whole run.

    - `seed`: PRNG seed.
    - `a2c`: the RL run (A2C in `big_dense_long`, RMSProp 3e-3).
    - `sl_epochs`, `sl_batch_size`, `sl_learning_rate`: the supervised run on
      scikit-learn's digits (MNIST in the paper: 10 epochs, batch 128, RMSProp 3e-4 in the
      Optim4RL public code's `configs/collect_mnist.json`).
    """

    seed: int = 0
    a2c: A2CCollect = dataclasses.field(default_factory=A2CCollect)
    sl_epochs: int = 10  # Optim4RL Appendix E
    sl_batch_size: int = 128  # Optim4RL public code, configs/collect_mnist.json
    sl_learning_rate: float = 3e-4  # Optim4RL public code, configs/collect_mnist.json


def _validate_wasserstein(c: WassersteinConfig) -> None:
    from ...runs import ConfigError

    validate_a2c(c.a2c)
    if c.sl_epochs < 1 or not 1 <= c.sl_batch_size <= 1797:
        raise ConfigError("sl_epochs must be >= 1 and sl_batch_size in [1, 1797] (digits)")


def _wasserstein_cpu() -> WassersteinConfig:
    return WassersteinConfig(
        a2c=A2CCollect(n_envs=64, total_timesteps=64 * 20 * 150, per_stage=4000)
    )


def _run_wasserstein(c: WassersteinConfig, run_dir: RunDir) -> dict[str, Any]:

    from ...analysis import wasserstein_to_whole

    rl = collect_a2c(run_dir, "a2c", c.a2c, 0, c.seed)
    sl = collect_digits(
        run_dir, epochs=c.sl_epochs, batch_size=c.sl_batch_size,
        learning_rate=c.sl_learning_rate, n_stages=c.a2c.n_stages,
        per_stage=c.a2c.per_stage, n_traced=0, seed=c.seed + 1,
    )  # fmt: skip
    sl_metrics = run_dir.load_result("digits")
    return {
        "raw": {
            "digits": wasserstein_to_whole(sl, "raw"),
            c.a2c.env: wasserstein_to_whole(rl, "raw"),
        },
        "log10": {
            "digits": wasserstein_to_whole(sl, "log10"),
            c.a2c.env: wasserstein_to_whole(rl, "log10"),
        },
        "digits_final_train_accuracy": float(np.mean(sl_metrics["accuracy"][-10:])),
        "a2c_env": c.a2c.env,
        "zero_fraction": {
            "digits": float(np.average(sl.whole_run()[0] == 0, weights=sl.whole_run()[1])),
            c.a2c.env: float(np.average(rl.whole_run()[0] == 0, weights=rl.whole_run()[1])),
        },
        "paper": PAPER_TABLE_11,
    }


def _report_wasserstein(run_dir: RunDir) -> str:
    from ...analysis import plot_stage_histograms, stage_indices

    r = run_dir.load_results()
    sl = load_sample(run_dir, "digits")
    idx = stage_indices(sl.n_stages)
    fig8 = run_dir.plots_dir / "figure8_digits_stages.png"
    plot_stage_histograms(
        {k: sl.stage(v) for k, v in idx.items()}, str(fig8), title="digits CNN gradients (RMSProp)"
    )
    env = r["a2c_env"]
    lines = [
        "# Wasserstein distance of stage to whole run (Optim4RL Appendix E, Table 11)",
        "",
        f"Config: `{json_dumps(run_dir.config_dict)}`",
        "",
        "scikit-learn's digits replaces MNIST (MNIST cannot be downloaded here). "
        "`scipy.stats.wasserstein_distance`; the whole run is the stage samples pooled, "
        "weighted by stage size.",
        "",
        "| task | W(beginning, all) | W(middle, all) | W(end, all) "
        "| paper (beginning / middle / end) |",
        "|---|---|---|---|---|",
    ]
    for task, paper in (("digits", "MNIST"), (env, "big_dense_long")):
        for tr in ("raw", "log10"):
            w = r[tr][task]
            p = r["paper"][paper]
            ps = " / ".join(f"{p[k]:.3g}" for k in ("beginning", "middle", "end"))
            lines.append(
                f"| {task}, {'g' if tr == 'raw' else 'log10 abs(g)'} | "
                + " | ".join(fmt(w[k]) for k in ("beginning", "middle", "end"))
                + f" | {paper}: {ps if tr == 'raw' else '(not reported)'} |"
            )
    lines += [
        "",
        f"Zero fractions (whole run): digits {fmt(r['zero_fraction']['digits'])}, "
        f"{env} {fmt(r['zero_fraction'][env])}. Digits training accuracy at the end "
        f"{fmt(r['digits_final_train_accuracy'])}.",
        "",
        f"![digits]({rel(run_dir, fig8)})",
        "",
    ]
    return "\n".join(lines)


register(
    Experiment(
        name="analysis/wasserstein",
        summary=(
            "Wasserstein distance of each training stage's gradients to the whole run: "
            "RL vs supervised (digits)"
        ),
        reproduces="Optim4RL Appendix E, Table 11 (and Figure 8)",
        scales={"cpu": _wasserstein_cpu, "paper": WassersteinConfig},
        run=_run_wasserstein,
        report=_report_wasserstein,
        validate=_validate_wasserstein,
    )
)


# -- analysis/identity ----------------------------------------------------------------

#: Optim4RL Figure 2 (b), read off the curves (Sections 4.2, 5.2).
