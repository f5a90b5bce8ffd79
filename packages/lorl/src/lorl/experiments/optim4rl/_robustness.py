"""`optim4rl/robustness`: Optim4RL under other A2C discount, lambda and entropy-weight values
(Optim4RL Appendix D, Tables 8-10).

Catalogue module: registers its experiments on import.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from ._common import (
    INIT_LABEL,
    check_units,
    init_file,
    optimizer_file,
    report,
)
from ._settings import (
    LPG,
    EvalConfig,
    MetaConfig,
    cpu_eval,
    cpu_meta,
    make_evals,
    meta_train,
    paper_eval,
    paper_meta,
    validate_lpg,
)

#: Optim4RL Tables 8-10: (task, hyperparameter, value) -> mean ± s.e. over 10 runs.
PAPER_ROBUSTNESS: dict[str, dict[str, dict[float, str]]] = {
    "small_dense_short": {
        "lam": {
            0.9: "11.51 ± 0.11",
            0.95: "11.25 ± 0.09",
            0.99: "10.81 ± 0.10",
            0.995: "10.66 ± 0.10",
        },
        "ent_coef": {
            0.005: "11.01 ± 0.09",
            0.01: "11.13 ± 0.05",
            0.02: "11.29 ± 0.07",
            0.04: "11.25 ± 0.09",
        },
        "gamma": {
            0.9: "12.47 ± 0.08",
            0.95: "12.32 ± 0.05",
            0.99: "11.48 ± 0.05",
            0.995: "11.01 ± 0.10",
        },
    },
    "big_dense_long": {
        "lam": {
            0.9: "23.35 ± 0.44",
            0.95: "23.57 ± 0.35",
            0.99: "21.31 ± 0.37",
            0.995: "20.55 ± 0.31",
        },
        "ent_coef": {
            0.005: "22.41 ± 0.34",
            0.01: "22.45 ± 0.46",
            0.02: "22.59 ± 0.25",
            0.04: "19.96 ± 0.75",
        },
        "gamma": {
            0.9: "18.13 ± 1.89",
            0.95: "25.01 ± 0.82",
            0.99: "25.45 ± 0.27",
            0.995: "22.07 ± 0.47",
        },
    },
}


@dataclasses.dataclass(frozen=True)
class RobustnessConfig:
    """Optim4RL meta-trained once, then evaluated with other A2C hyperparameters
    (Optim4RL Appendix D, Tables 8-10).

    **Fields:**

    - `env`: the gridworld.
    - `lam`, `ent_coef`, `gamma`: the values tried for GAE lambda (Table 8), the entropy
      weight (Table 9) and the discount (Table 10); the others stay at the paper's
      defaults (0.95, 0.01, 0.995).
    - `meta`, `eval`: meta-training and evaluation (`eval.baselines` are ignored).
    """

    env: LPG
    meta: MetaConfig
    eval: EvalConfig
    lam: tuple[float, ...] = (0.9, 0.95, 0.99, 0.995)  # Optim4RL Table 8
    ent_coef: tuple[float, ...] = (0.005, 0.01, 0.02, 0.04)  # Optim4RL Table 9
    gamma: tuple[float, ...] = (0.9, 0.95, 0.99, 0.995)  # Optim4RL Table 10


def _run_robustness(config: RobustnessConfig, run_dir: RunDir) -> dict[str, Any]:
    from tqdm.auto import tqdm

    out: dict[str, Any] = {"env": config.env, "evaluation": {}}
    out["meta"] = {
        "optim4rl": meta_train(
            run_dir, "meta-optim4rl", kind="optim4rl", envs=[config.env], meta=config.meta
        )
    }
    path = optimizer_file(run_dir, out["meta"]["optim4rl"])
    # the untrained initialisation under each setting is the control
    init = init_file(run_dir, out["meta"]["optim4rl"])
    evals = make_evals(run_dir, config.eval)
    jobs = [(h, v) for h in ("lam", "ent_coef", "gamma") for v in getattr(config, h)]
    for h, v in tqdm(jobs, desc=run_dir.experiment, unit="setting"):
        _, r = evals(f"eval-{h}-{v:g}", path, config.env, f"{h}={v:g}", **{h: v})
        out["evaluation"].setdefault(h, {})[f"{v:g}"] = r
        if init is not None:
            label = f"{h}={v:g} ({INIT_LABEL})"
            _, r = evals(f"eval-{h}-{v:g}-init", init, config.env, label, **{h: v})
            out.setdefault("control", {}).setdefault(h, {})[f"{v:g}"] = r
    return out


def _report_robustness(run_dir: RunDir) -> str:
    from ..._report import mean_se

    res = run_dir.load_results()
    env = res["env"]
    md = report(run_dir, [])
    names = {"lam": "lambda (Table 8)", "ent_coef": "entropy weight (Table 9)"}
    names["gamma"] = "discount (Table 10)"
    control = res.get("control", {})

    def cell(r: Mapping[str, Any] | None) -> str:
        if r is None:
            return "–"
        return mean_se([float("nan") if x == "nan" else x for x in r["final_returns"]])

    for h, values in res["evaluation"].items():
        md += (
            f"## {names[h]}\n\n| value | ours: mean ± s.e. | {INIT_LABEL} (control) | paper "
            "|\n|---|---|---|---|\n"
        )
        for v, r in values.items():
            paper = PAPER_ROBUSTNESS.get(env, {}).get(h, {}).get(float(v), "–")
            md += f"| {v} | {cell(r)} | {cell(control.get(h, {}).get(v))} | {paper} |\n"
        md += "\n"
    return md


def _validate_robustness(config: RobustnessConfig) -> None:
    validate_lpg([config.env])
    check_units(config.meta.units, config.meta.reset_interval, config.meta.pipeline)
    for h in ("lam", "ent_coef", "gamma"):
        for v in getattr(config, h):
            if not 0 <= v <= 1:
                raise ConfigError(f"{h} values must lie in [0, 1], got {v}")


register(
    Experiment(
        name="optim4rl/robustness",
        summary="Optim4RL under other A2C lambda, entropy weight and discount values",
        reproduces="Optim4RL Appendix D, Tables 8-10",
        scales={
            "cpu": lambda: RobustnessConfig(
                env="small_dense_short",
                meta=cpu_meta(steps=100),
                eval=cpu_eval(seeds=4, updates=150),
                lam=(0.9, 0.99),
                ent_coef=(0.005, 0.04),
                gamma=(0.9, 0.99),
            ),
            "paper": lambda: RobustnessConfig(
                env="small_dense_short", meta=paper_meta(), eval=paper_eval()
            ),
        },
        run=_run_robustness,
        report=_report_robustness,
        validate=_validate_robustness,
    )
)


# Brax meta-training through PPO (Fig. 4 Ant, Table 1 Ant/Humanoid) registers on import.
