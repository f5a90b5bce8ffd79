"""`study/optim4rl-sensitivity`: is Optim4RL hyperparameter-free, or did its tuning burden
move to the meta-hyperparameters? A grid over the meta learning rate and the reset
interval (and optionally M), each cell meta-trained from scratch; training-side (the
units' returns over meta-training, non-finite meta-steps) and deployment-side (the
meta-trained optimizer at other agent learning rates) sensitivity, every cell beside the
untrained initialisation it started from."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np

from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from ..optim4rl._common import INIT_LABEL, check_units, init_file, optimizer_file
from ..optim4rl._settings import LPG, EvalConfig, MetaConfig, make_evals, meta_train, validate_lpg

#: Optim4RL Appendix C.3: "the meta learning rate from {3e-5, 1e-4, 3e-4, 1e-3}".
PAPER_META_LRS = (3e-5, 1e-4, 3e-4, 1e-3)
#: Optim4RL Appendix C.3: m in {256, 512} on the gridworlds.
PAPER_RESET_INTERVALS = (256, 512)


@dataclasses.dataclass(frozen=True)
class SensitivityConfig:
    """The sensitivity grid.

    **Fields:**

    - `env`: the gridworld meta-trained and evaluated on.
    - `meta_lrs`, `reset_intervals`, `inner_updates`: the grid (meta learning rate, `m`,
      `M`); every cell meta-trains from the same initialisation (`meta.seed`).
    - `meta`: the rest of meta-training (`meta.lr`, `meta.reset_interval`,
      `meta.inner_updates` are set by each cell).
    - `eval`: the A2C evaluation (fresh seeds) of each cell's optimizer and of the
      initialisation.
    - `deploy_lrs`: agent learning rates each meta-trained optimizer is also deployed at
      (deployment-side sensitivity; the training rate is the gridworld's, 1e-2 on
      small_dense_short).
    """

    env: LPG
    meta: MetaConfig
    eval: EvalConfig
    meta_lrs: tuple[float, ...] = PAPER_META_LRS
    reset_intervals: tuple[int, ...] = PAPER_RESET_INTERVALS
    inner_updates: tuple[int, ...] = (4,)  # Optim4RL Appendix C: M = 4
    deploy_lrs: tuple[float, ...] = (3e-3, 3e-2)

    def __post_init__(self):
        if not (self.meta_lrs and self.reset_intervals and self.inner_updates):
            raise ValueError("meta_lrs, reset_intervals and inner_updates must be non-empty")
        if any(not lr > 0 for lr in (*self.meta_lrs, *self.deploy_lrs)):
            raise ValueError("learning rates must be > 0")
        if any(m < 1 for m in (*self.reset_intervals, *self.inner_updates)):
            raise ValueError("reset_intervals and inner_updates must be >= 1")

    def cells(self) -> list[tuple[float, int, int]]:
        """`(meta_lr, m, M)` of every grid cell."""
        return list(itertools.product(self.meta_lrs, self.reset_intervals, self.inner_updates))


def cell_name(meta_lr: float, m: int, big_m: int) -> str:
    return f"lr{meta_lr:g}-m{m}-M{big_m}"


def _cpu() -> SensitivityConfig:
    # cpu scale (ours): 32 units of 1 environment, 60 meta-iterations per cell, m in
    # {16, 32} (n >= m), the paper's four meta learning rates; evaluation 4 seeds x 64
    # environments x 150 updates (192k steps; the paper 3e7). 8 cells.
    return SensitivityConfig(
        env="small_dense_short",
        meta=MetaConfig(steps=60, units=32, reset_interval=32, checkpoint_every=20),
        eval=EvalConfig(seeds=4, n_envs=64, updates=150, baselines=()),
        reset_intervals=(16, 32),
    )


def _paper() -> SensitivityConfig:
    # the paper's meta-training (n = 512 one-environment units, 3e7 steps of the units
    # per cell at M = 4) and evaluation (10 seeds x 512 environments x 2,929 updates)
    return SensitivityConfig(
        env="small_dense_short",
        meta=MetaConfig(steps=733, units=512, reset_interval=256),
        eval=EvalConfig(seeds=10, n_envs=512, updates=2929, baselines=()),
    )


def _validate(cfg: SensitivityConfig) -> None:
    validate_lpg([cfg.env])
    for m in cfg.reset_intervals:
        check_units(cfg.meta.units, m, cfg.meta.pipeline)
    if cfg.meta.optimizer_path is not None:
        raise ConfigError("meta.optimizer_path makes no sense here: every cell is meta-trained")


def _run(cfg: SensitivityConfig, run_dir: RunDir) -> dict[str, Any]:
    from ...evaluation import load_optimizer

    _validate(cfg)
    evals = make_evals(run_dir, cfg.eval)
    out: dict[str, Any] = {"env": cfg.env, "cells": {}, "control": None}
    for meta_lr, m, big_m in cfg.cells():
        name = cell_name(meta_lr, m, big_m)
        meta = dataclasses.replace(cfg.meta, lr=meta_lr, reset_interval=m, inner_updates=big_m)
        stored = meta_train(run_dir, f"meta-{name}", kind="optim4rl", envs=[cfg.env], meta=meta)
        path = optimizer_file(run_dir, stored)
        _, trained = evals(f"eval-{name}", path, cfg.env, f"Optim4RL {name}")
        deployed = {}
        for lr in cfg.deploy_lrs:
            opt = load_optimizer(path).with_learning_rate(lr)  # pyright: ignore[reportAttributeAccessIssue]
            _, deployed[f"{lr:g}"] = evals(
                f"eval-{name}-lr{lr:g}", opt, cfg.env, f"{name} at {lr:g}"
            )
        history = stored.get("history") or []
        returns = [h.get(f"{cfg.env}/episode_return") for h in history]
        out["cells"][name] = {
            "meta_lr": meta_lr,
            "reset_interval": m,
            "inner_updates": big_m,
            "evaluation": trained,
            "deployed": deployed,
            "meta_returns": [r for r in returns if isinstance(r, float)],
            "n_nonfinite_meta_steps": stored.get("n_nonfinite_meta_steps", 0),
        }
        init = init_file(run_dir, stored)
        if out["control"] is None and init is not None:  # one initialisation for every cell
            _, out["control"] = evals("eval-init", init, cfg.env, f"Optim4RL ({INIT_LABEL})")
    return out


def _scores(r: dict[str, Any]) -> np.ndarray:
    return np.asarray([float(x) for x in r["final_returns"]], np.float64)


def _mean_ci(scores: np.ndarray) -> Any:
    """The mean with its 95% bootstrap interval (`None` for fewer than two runs)."""
    from ... import stats

    if len(scores) < 2 or not np.all(np.isfinite(scores)):
        return None
    return stats.aggregate({"x": scores}, metrics=("mean",), seed=0)["x"]["mean"]


def _fmt(iv: Any, scores: np.ndarray) -> str:
    if iv is None:
        return f"{np.nanmean(scores):.2f}"
    return f"{iv.point:.2f} [{iv.low:.2f}, {iv.high:.2f}]"


def _report(run_dir: RunDir) -> str:
    from ..._report import header
    from ...plots import heatmap

    res = run_dir.load_results()
    md = header(
        run_dir,
        "Optim4RL's sensitivity to its meta-hyperparameters",
        "the comparative study (003): is Optim4RL hyperparameter-free?",
    )
    control = res.get("control")
    ctrl = _mean_ci(_scores(control)) if control else None
    md += f"Evaluation on `{res['env']}`; every cell meta-trained from the same initialisation"
    if control:
        md += f", whose final return is {_fmt(ctrl, _scores(control))} (the control)"
    md += ". A cell helped only where its interval lies above the control's.\n\n"
    cells = res["cells"]
    deploy = sorted({lr for c in cells.values() for lr in c["deployed"]}, key=float)
    head = ["cell (meta lr, m, M)", "final return: mean [95% CI]", "above the control"]
    head += [f"deployed at lr {lr}" for lr in deploy]
    head += ["non-finite meta-steps", "units' return, first → last"]
    md += "| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
    means: dict[tuple[float, int], float] = {}
    for name, c in cells.items():
        scores = _scores(c["evaluation"])
        iv = _mean_ci(scores)
        above = "–" if iv is None or ctrl is None else ("yes" if iv.low > ctrl.high else "no")
        row = [name, _fmt(iv, scores), above]
        row += [
            f"{np.nanmean(_scores(c['deployed'][lr])):.2f}" if lr in c["deployed"] else "–"
            for lr in deploy
        ]
        mr = c["meta_returns"]
        row += [str(c["n_nonfinite_meta_steps"]), f"{mr[0]:.2f} → {mr[-1]:.2f}" if mr else "–"]
        md += "| " + " | ".join(row) + " |\n"
        means.setdefault((c["meta_lr"], c["reset_interval"]), float(np.nanmean(scores)))
    md += "\n"
    lrs = sorted({k[0] for k in means})
    ms = sorted({k[1] for k in means})
    grid = np.asarray([[means.get((lr, m), np.nan) for m in ms] for lr in lrs])
    try:
        png = heatmap(
            grid,
            [f"{lr:g}" for lr in lrs],
            [str(m) for m in ms],
            run_dir.plots_dir / "sensitivity.png",
            xlabel="reset interval m",
            ylabel="meta learning rate",
            title="mean final return (first M of the grid)",
        )
        md += f"![sensitivity](plots/{png.name})\n"
    except Exception as e:  # a plot must not cost the report
        md += f"(heatmap failed: {type(e).__name__}: {e})\n"
    return md


SENSITIVITY = register(
    Experiment(
        name="study/optim4rl-sensitivity",
        summary="Optim4RL meta-trained over a grid of meta learning rates x reset intervals "
        "(x M), each against its untrained initialisation and deployed at other agent lrs",
        reproduces="the comparative study (003): Optim4RL's meta-hyperparameter sensitivity",
        scales={"cpu": _cpu, "paper": _paper},
        run=_run,
        report=_report,
        validate=_validate,
    )
)
