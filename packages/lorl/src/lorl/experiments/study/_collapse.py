"""`study/policy-collapse`: does Adam's beta2 = 0.999 make PPO on Ant collapse, and does L2
regularisation keep a learned optimizer (Optim4RL) from collapsing? (The comparative
study, `../shared/papers/003_*`, Section 5.4.) A run collapsed when its return lost more
than a stated fraction of its gain and did not recover (`lorl.stats.collapsed`)."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import numpy as np

from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from .._stages import evaluate_stage, stage_name
from ..open import _common as oc

CLAIM = (
    "Standard Adam (beta1 = 0.9, beta2 = 0.999) often collapses on Ant; L2 regularisation "
    "of the learned Optim4RL significantly mitigates collapse (003, Section 5.4)."
)


@dataclasses.dataclass(frozen=True)
class CollapseConfig:
    """The policy-collapse study.

    **Fields:**

    - `env`: the PPO environment (the study: `ant`; any `lorl.evaluation` PPO environment
      with OPEN-tuned Adam values works).
    - `adam_b2`: beta2 values of Adam with beta1 = 0.9 (optax's default) at OPEN's tuned
      learning rate and annealing for `env`; besides these, OPEN's tuned Adam itself (Ant:
      beta1 0.99, beta2 0.99) runs. Default: 0.999, the setting 003 blames.
    - `optim4rl_path`: a saved Optim4RL (e.g. `optim4rl/from-scratch-ant`'s run folder);
      run at OPEN's Optim4RL learning rate for `env` without and with L2 (`l2`); without
      a path these are recorded as not run.
    - `l2`: the L2 coefficient(s) (003 does not print one; ours).
    - `drop`, `window`: the collapse rule (`lorl.stats.collapsed`).
    - `agent`: PPO settings that differ from OPEN Table 3 (`None`: the paper budget).
    - `n_seeds`, `seed`: evaluation seeds.
    """

    env: str = "ant"
    adam_b2: tuple[float, ...] = (0.999,)  # optax's default, 003 Section 5.4
    optim4rl_path: str | None = None
    l2: tuple[float, ...] = (1e-4,)  # not in 003; our choice
    drop: float = 0.5
    window: int = 5
    agent: oc.AgentSettings = dataclasses.field(default_factory=oc.AgentSettings)
    n_seeds: int = 16  # OPEN Figure 2
    seed: int = 10_000

    def __post_init__(self):
        if self.n_seeds < 1:
            raise ValueError(f"n_seeds must be >= 1, got {self.n_seeds}")
        if not 0 < self.drop <= 1 or self.window < 1:
            raise ValueError("drop must lie in (0, 1] and window be >= 1")
        if any(c < 0 for c in self.l2):
            raise ValueError("l2 coefficients must be >= 0")
        if any(not 0 <= b < 1 for b in self.adam_b2):
            raise ValueError("adam_b2 values must lie in [0, 1)")


def _cpu() -> CollapseConfig:
    # cpu scale (ours): Ant with 64 environments x 10 steps x 30 updates (19,200 steps; the
    # paper 5e7), 2 seeds: it shows the study runs end to end, far too short to collapse.
    return CollapseConfig(
        agent=oc.AgentSettings(
            n_envs=64, n_steps=10, total_timesteps=64 * 10 * 30, n_minibatches=4, n_epochs=2
        ),
        n_seeds=2,
    )


def _validate(cfg: CollapseConfig) -> None:
    import lorl_optim as lo

    if cfg.env != "ant" and cfg.env not in oc.MINATAR:
        raise ConfigError(
            f"env {cfg.env!r}: choose ant or a MinAtar game ({', '.join(oc.MINATAR)}), where "
            "OPEN tuned Adam (Appendix C.2)"
        )
    assert oc.preset_key(cfg.env) in lo.baselines.ADAM
    if cfg.env == "ant":
        oc.require_brax()
    if cfg.optim4rl_path is not None and not pathlib.Path(cfg.optim4rl_path).exists():
        raise ConfigError(f"optim4rl_path {cfg.optim4rl_path!r} does not exist")
    cfg.agent.config(oc.base_agent(cfg.env))


def _optimizers(cfg: CollapseConfig, agent: Any) -> dict[str, Any]:
    """Label -> optimizer (or a `"not run: ..."` string)."""
    import optax

    import lorl_optim as lo

    key = oc.preset_key(cfg.env)
    preset = lo.baselines.ADAM[key]
    out: dict[str, Any] = {f"adam (OPEN-tuned: b1 {preset.b1:g}, b2 {preset.b2:g})": "adam"}
    lr = lo.baselines.linear_annealing(
        preset.learning_rate, agent.optimizer_steps, agent.steps_per_update
    ) if preset.anneal else preset.learning_rate  # fmt: skip
    for b2 in cfg.adam_b2:
        out[f"adam (b1 0.9, b2 {b2:g})"] = optax.adam(lr, b1=0.9, b2=b2)
    if cfg.optim4rl_path is None:
        out["optim4rl"] = "not run: no optim4rl_path given"
        return out
    from ...evaluation import load_optimizer

    opt = load_optimizer(cfg.optim4rl_path).with_learning_rate(  # pyright: ignore[reportAttributeAccessIssue]
        lo.baselines.optim4rl_learning_rate(key)
    )
    out["optim4rl"] = opt
    for c in cfg.l2:
        out[f"optim4rl + l2 {c:g}"] = lo.regularised(opt, l2=c)
    return out


def _run(cfg: CollapseConfig, run_dir: RunDir) -> dict[str, Any]:
    from ... import stats

    _validate(cfg)
    agent = cfg.agent.config(oc.base_agent(cfg.env))
    seeds = list(range(cfg.seed, cfg.seed + cfg.n_seeds))
    evaluation: dict[str, Any] = {}
    not_run: dict[str, str] = {}
    collapse: dict[str, Any] = {}
    for label, opt in _optimizers(cfg, agent).items():
        if isinstance(opt, str) and opt.startswith("not run: "):
            not_run[label] = opt.removeprefix("not run: ")
            continue
        r = evaluate_stage(run_dir, stage_name("eval", label), opt, cfg.env, seeds=seeds,
                           agent=agent, label=label)  # fmt: skip
        evaluation[label] = r.to_dict()
        mask = stats.collapsed(r.returns, drop=cfg.drop, window=cfg.window)
        collapse[label] = {"collapsed": mask.tolist(), "rate": float(np.mean(mask))}
    return {
        "env": cfg.env,
        "evaluation": evaluation,
        "collapse": collapse,
        "not_run": not_run,
        "agent": dataclasses.asdict(agent),
        "rule": {"drop": cfg.drop, "window": cfg.window},
    }


def _report(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    out = oc.header(
        run_dir, "Policy collapse and regularisation", "the comparative study (003), Section 5.4"
    )
    rule = res["rule"]
    out += [
        f"`{res['env']}`, {res['agent']['total_timesteps']:,} steps per run. A run collapsed when "
        f"its return lost more than {rule['drop']:.0%} of its gain (peak minus first return) "
        f"and the mean of its last {rule['window']} returns stayed below that "
        "(`lorl.stats.collapsed`).",
        "",
        "| optimizer | collapsed runs | collapse rate |",
        "|---|---:|---:|",
    ]
    for label, c in res["collapse"].items():
        out.append(
            f"| {label} | {sum(c['collapsed'])} of {len(c['collapsed'])} | {c['rate']:.2f} |"
        )
    for label, why in res["not_run"].items():
        out.append(f"| {label} | not run: {why} | |")
    out.append("")
    out += oc.per_env_block(run_dir, {res["env"]: res["evaluation"]})
    out += ["## The study's claim", "", f"- {CLAIM}", ""]
    return "\n".join(out)


COLLAPSE = register(
    Experiment(
        name="study/policy-collapse",
        summary="PPO on Ant: OPEN-tuned Adam vs Adam with beta2 0.999, Optim4RL with and "
        "without L2; collapse rate per optimizer",
        reproduces="the comparative study (003), Section 5.4: policy collapse and L2",
        scales={"cpu": _cpu, "paper": CollapseConfig},
        run=_run,
        report=_report,
        validate=_validate,
    )
)
