"""`study/optim4rl-sensitivity` (gridworld, A2C; the Ant grid of `_sensitivity_ant` shares
this module's grid and report): is Optim4RL hyperparameter-free, or did its tuning burden
move to the meta-hyperparameters? A grid over the meta learning rate and the reset
interval (and optionally M), each cell meta-trained from scratch; training-side (the
units' returns over meta-training, non-finite meta-steps) and deployment-side (the
meta-trained optimizer at other agent learning rates and under other lambda, discount and
entropy weights) sensitivity, every cell and every deployment beside the untrained
initialisation it started from."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
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
#: Optim4RL Tables 8-10: the A2C lambda, entropy weight and discount values other than the
#: defaults (0.95, 0.01, 0.995).
PAPER_A2C_SETTINGS = (
    "lam=0.9", "lam=0.99", "lam=0.995",  # Optim4RL Table 8
    "ent_coef=0.005", "ent_coef=0.02", "ent_coef=0.04",  # Optim4RL Table 9
    "gamma=0.9", "gamma=0.95", "gamma=0.99",  # Optim4RL Table 10
)  # fmt: skip


def parse_setting(text: str) -> tuple[str, float]:
    """`"name=value"` (an agent hyperparameter and its value) -> `(name, value)`."""
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise ConfigError(
            f"deploy_settings: {text!r} is not 'name=value' with a number (e.g. lam=0.9)"
        ) from None


def check_settings(settings: tuple[str, ...], make_agent_config: Callable[..., Any]) -> None:
    """Every deployment setting names a field of the agent's config with a value the agent
    accepts (the agent config's own checks run on it)."""
    for text in settings:
        name, value = parse_setting(text)
        try:
            make_agent_config(**{name: value})
        except TypeError:
            raise ConfigError(
                f"deploy_settings: {name!r} is not a hyperparameter of this study's agent"
            ) from None
        except ValueError as e:
            raise ConfigError(f"deploy_settings: {text}: {e}") from None


class SensitivityGrid:
    """What every sensitivity config shares (its fields `meta_lrs`, `reset_intervals`,
    `inner_updates`, `deploy_lrs`, `deploy_settings`): their checks and the grid."""

    meta_lrs: tuple[float, ...]
    reset_intervals: tuple[int, ...]
    inner_updates: tuple[int, ...]
    deploy_lrs: tuple[float, ...]
    deploy_settings: tuple[str, ...]

    def __post_init__(self):
        if not (self.meta_lrs and self.reset_intervals and self.inner_updates):
            raise ValueError("meta_lrs, reset_intervals and inner_updates must be non-empty")
        if any(not lr > 0 for lr in (*self.meta_lrs, *self.deploy_lrs)):
            raise ValueError("learning rates must be > 0")
        if any(m < 1 for m in (*self.reset_intervals, *self.inner_updates)):
            raise ValueError("reset_intervals and inner_updates must be >= 1")
        for text in self.deploy_settings:
            parse_setting(text)

    def cells(self) -> list[tuple[float, int, int]]:
        """`(meta_lr, m, M)` of every grid cell."""
        return list(itertools.product(self.meta_lrs, self.reset_intervals, self.inner_updates))


@dataclasses.dataclass(frozen=True)
class SensitivityConfig(SensitivityGrid):
    """The sensitivity grid on a gridworld (A2C).

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
    - `deploy_settings`: A2C hyperparameters (`"name=value"`: `lam`, `ent_coef`, `gamma`,
      ...) each optimizer is also deployed under, one at a time (Optim4RL Tables 8-10).
    """

    env: LPG
    meta: MetaConfig
    eval: EvalConfig
    meta_lrs: tuple[float, ...] = PAPER_META_LRS
    reset_intervals: tuple[int, ...] = PAPER_RESET_INTERVALS
    inner_updates: tuple[int, ...] = (4,)  # Optim4RL Appendix C: M = 4
    deploy_lrs: tuple[float, ...] = (3e-3, 3e-2)  # ours: 0.3x and 3x the training rate
    deploy_settings: tuple[str, ...] = PAPER_A2C_SETTINGS


def cell_name(meta_lr: float, m: int, big_m: int) -> str:
    return f"lr{meta_lr:g}-m{m}-M{big_m}"


def _setting_stage(text: str) -> str:
    name, value = parse_setting(text)
    return f"{name}{value:g}"


# ------------------------------------------------------------------------------ the grid


def run_grid(
    cfg: Any,
    run_dir: RunDir,
    train: Callable[[str, float, int, int], dict[str, Any]],
    evals: Callable[..., tuple[str, dict[str, Any]]],
) -> dict[str, Any]:
    """Meta-train every cell (`train(stage, meta_lr, m, M)`), evaluate it (`evals`, e.g. an
    `optim4rl._common.Evals`: `evals(stage, optimizer, env, label, **overrides)`), deploy it at
    `cfg.deploy_lrs` and under `cfg.deploy_settings`; the untrained initialisation (the
    same for every cell) is evaluated under every one of these as the control."""
    from ...evaluation import load_optimizer

    def deployments(stage: str, path: str, label: str) -> tuple[dict, dict, dict]:
        _, main = evals(stage, path, cfg.env, label)
        at_lr = {}
        for lr in cfg.deploy_lrs:
            opt = load_optimizer(path).with_learning_rate(lr)  # pyright: ignore[reportAttributeAccessIssue]
            _, at_lr[f"{lr:g}"] = evals(f"{stage}-lr{lr:g}", opt, cfg.env, f"{label} at {lr:g}")
        under = {}
        for text in cfg.deploy_settings:
            name, value = parse_setting(text)
            _, under[text] = evals(
                f"{stage}-{_setting_stage(text)}",
                path,
                cfg.env,
                f"{label}, {text}",
                **{name: value},
            )
        return main, at_lr, under

    out: dict[str, Any] = {"env": cfg.env, "cells": {}, "control": None}
    for meta_lr, m, big_m in cfg.cells():
        name = cell_name(meta_lr, m, big_m)
        stored = train(f"meta-{name}", meta_lr, m, big_m)
        trained, deployed, settings = deployments(
            f"eval-{name}", optimizer_file(run_dir, stored), f"Optim4RL {name}"
        )
        history = stored.get("history") or []
        returns = [h.get(f"{cfg.env}/episode_return") for h in history]
        out["cells"][name] = {
            "meta_lr": meta_lr,
            "reset_interval": m,
            "inner_updates": big_m,
            "evaluation": trained,
            "deployed": deployed,
            "deployed_settings": settings,
            "meta_returns": [r for r in returns if isinstance(r, float)],
            "n_nonfinite_meta_steps": stored.get("n_nonfinite_meta_steps", 0),
        }
        init = init_file(run_dir, stored)
        if out["control"] is None and init is not None:  # one initialisation for every cell
            main, at_lr, under = deployments("eval-init", init, f"Optim4RL ({INIT_LABEL})")
            out["control"] = main
            out["control_deployed"] = at_lr
            out["control_settings"] = under
    return out


# ------------------------------------------------------------------------ gridworld (A2C)


def _check_a2c(settings: tuple[str, ...]) -> None:
    from lorl_agents import A2CConfig

    check_settings(settings, lambda **kw: A2CConfig(**kw))


def _validate(cfg: SensitivityConfig) -> None:
    validate_lpg([cfg.env])
    for m in cfg.reset_intervals:
        check_units(cfg.meta.units, m, cfg.meta.pipeline)
    if cfg.meta.optimizer_path is not None:
        raise ConfigError("meta.optimizer_path makes no sense here: every cell is meta-trained")
    _check_a2c(cfg.deploy_settings)


def _run(cfg: SensitivityConfig, run_dir: RunDir) -> dict[str, Any]:
    _validate(cfg)

    def train(stage: str, meta_lr: float, m: int, big_m: int) -> dict[str, Any]:
        meta = dataclasses.replace(cfg.meta, lr=meta_lr, reset_interval=m, inner_updates=big_m)
        return meta_train(run_dir, stage, kind="optim4rl", envs=[cfg.env], meta=meta)

    return run_grid(cfg, run_dir, train, make_evals(run_dir, cfg.eval))


def _cpu() -> SensitivityConfig:
    # cpu scale (ours): 32 units of 1 environment, 60 meta-iterations per cell, m in
    # {16, 32} (n >= m), the paper's four meta learning rates; evaluation 4 seeds x 64
    # environments x 150 updates (192k steps; the paper 3e7). 8 cells, each also deployed
    # at two other learning rates and under one changed value of each of lambda, the
    # entropy weight and the discount (Tables 8-10's extremes).
    return SensitivityConfig(
        env="small_dense_short",
        meta=MetaConfig(steps=60, units=32, reset_interval=32, checkpoint_every=20),
        eval=EvalConfig(seeds=4, n_envs=64, updates=150, baselines=()),
        reset_intervals=(16, 32),
        deploy_settings=("lam=0.9", "ent_coef=0.04", "gamma=0.9"),
    )


def _paper() -> SensitivityConfig:
    # the paper's meta-training (n = 512 one-environment units, 3e7 steps of the units
    # per cell at M = 4) and evaluation (10 seeds x 512 environments x 2,929 updates)
    return SensitivityConfig(
        env="small_dense_short",
        meta=MetaConfig(steps=733, units=512, reset_interval=256),
        eval=EvalConfig(seeds=10, n_envs=512, updates=2929, baselines=()),
    )


# ------------------------------------------------------------------------------- report


def _scores(r: Mapping[str, Any]) -> np.ndarray:
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


def _cell(r: Mapping[str, Any] | None, control: Mapping[str, Any] | None) -> str:
    """`mean [95% CI]`, with `(above)` / `(below)` where the interval clears the control's."""
    if r is None:
        return "–"
    scores = _scores(r)
    iv = _mean_ci(scores)
    text = _fmt(iv, scores)
    ctrl = None if control is None else _mean_ci(_scores(control))
    if iv is not None and ctrl is not None:
        if iv.low > ctrl.high:
            text += " (above)"
        elif iv.high < ctrl.low:
            text += " (below)"
    return text


def sensitivity_report(run_dir: RunDir) -> str:
    from ..._report import header

    res = run_dir.load_results()
    md = header(
        run_dir,
        "Optim4RL's sensitivity to its meta-hyperparameters",
        "the comparative study (003): is Optim4RL hyperparameter-free?",
    )
    control = res.get("control")
    md += f"Evaluation on `{res['env']}`; every cell meta-trained from the same initialisation"
    if control:
        md += f", whose final return is {_cell(control, None)} (the control)"
    md += (
        ". Cells: mean final return [95% bootstrap CI]; *(above)* / *(below)*: the interval "
        "lies above / below the control's under the same deployment.\n\n"
    )
    cells = res["cells"]
    deploy = sorted({lr for c in cells.values() for lr in c["deployed"]}, key=float)
    settings = list(
        dict.fromkeys(s for c in cells.values() for s in c.get("deployed_settings", {}))
    )
    head = ["cell (meta lr, m, M)", "final return", "non-finite meta-steps"]
    head += ["units' return, first → last"]
    md += "## Training side\n\n| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
    for name, c in cells.items():
        mr = c["meta_returns"]
        row = [name, _cell(c["evaluation"], control), str(c["n_nonfinite_meta_steps"])]
        row += [f"{mr[0]:.2f} → {mr[-1]:.2f}" if mr else "–"]
        md += "| " + " | ".join(row) + " |\n"
    if deploy or settings:
        cdep, cset = res.get("control_deployed", {}), res.get("control_settings", {})
        head = ["cell"] + [f"lr {lr}" for lr in deploy] + list(settings)
        md += "\n## Deployment side\n\n| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
        if control:
            row = [f"{INIT_LABEL} (control)"]
            row += [_cell(cdep.get(lr), None) for lr in deploy]
            row += [_cell(cset.get(s), None) for s in settings]
            md += "| " + " | ".join(row) + " |\n"
        for name, c in cells.items():
            row = [name] + [_cell(c["deployed"].get(lr), cdep.get(lr)) for lr in deploy]
            row += [_cell(c.get("deployed_settings", {}).get(s), cset.get(s)) for s in settings]
            md += "| " + " | ".join(row) + " |\n"
    md += "\n" + _heatmaps(run_dir, cells)
    return md


def _heatmaps(run_dir: RunDir, cells: Mapping[str, Any]) -> str:
    """One heatmap (meta lr x m) per M: the mean final return, its CI written in the cell."""
    from ...plots import heatmap

    md = ""
    for big_m in sorted({c["inner_updates"] for c in cells.values()}):
        at = {
            (c["meta_lr"], c["reset_interval"]): c["evaluation"]
            for c in cells.values()
            if c["inner_updates"] == big_m
        }
        lrs = sorted({k[0] for k in at})
        ms = sorted({k[1] for k in at})
        means = np.full((len(lrs), len(ms)), np.nan)
        notes = [["n/a"] * len(ms) for _ in lrs]
        for (lr, m), r in at.items():
            i, j = lrs.index(lr), ms.index(m)
            scores = _scores(r)
            iv = _mean_ci(scores)
            means[i, j] = float(np.nanmean(scores))
            notes[i][j] = _fmt(iv, scores).replace(" [", "\n[")
        name = "sensitivity.png" if big_m == 4 else f"sensitivity-M{big_m}.png"
        try:
            png = heatmap(
                means,
                [f"{lr:g}" for lr in lrs],
                [str(m) for m in ms],
                run_dir.plots_dir / name,
                xlabel="reset interval m",
                ylabel="meta learning rate",
                title=f"mean final return [95% CI], M = {big_m}",
                annotations=notes,
            )
            md += f"![sensitivity, M = {big_m}](plots/{png.name})\n"
        except Exception as e:  # a plot must not cost the report
            md += f"(heatmap failed: {type(e).__name__}: {e})\n"
    return md


SENSITIVITY = register(
    Experiment(
        name="study/optim4rl-sensitivity",
        summary="Optim4RL meta-trained over a grid of meta learning rates x reset intervals "
        "(x M), each against its untrained initialisation, deployed at other agent lrs and "
        "A2C settings",
        reproduces="the comparative study (003): Optim4RL's meta-hyperparameter sensitivity",
        scales={"cpu": _cpu, "paper": _paper},
        run=_run,
        report=sensitivity_report,
        validate=_validate,
    )
)
