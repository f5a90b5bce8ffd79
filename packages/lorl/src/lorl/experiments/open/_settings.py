"""The OPEN experiments' configuration pieces (OPEN Tables 3 and 7, Appendix C.2), their
validation, and the learned optimizers and tuned baselines they compare."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ..._lazy import lazy_module
from ..._paper import OPEN_ADAM_RETURNS, OPEN_FIGURE2
from ...runs import ConfigError

if TYPE_CHECKING:
    import lorl_agents as la
    import lorl_meta as lm
    import lorl_optim as lo
else:  # loaded on first use: the catalogue of experiments imports no JAX stack
    la = lazy_module("lorl_agents")
    lm = lazy_module("lorl_meta")
    lo = lazy_module("lorl_optim")


# --------------------------------------------------------------------------- config pieces

#: OPEN Table 7 (Appendix C.3): ES hyperparameters per setting:
#: (sigma_init, sigma_decay, lr, lr_decay, population, eval frequency).
TABLE7 = {
    "minatar": (0.03, 0.999, 0.03, 0.999, 64, 24),
    "ant": (0.01, 0.999, 0.01, 0.999, 32, 24),
    "multi_task": (0.03, 0.998, 0.03, 0.998, 64, 9),
    "gridworld": (0.01, 0.999, 0.005, 0.990, 64, 9),
}

#: OPEN Table 7: "Max Gens" (how long each optimizer was trained) and "Gen Used" (the
#: validated generation used at test time), per learned optimizer and environment.
TABLE7_MAX_GENS = {
    ("open", "asterix"): 350,
    ("open", "breakout"): 500,
    ("open", "freeway"): 700,
    ("open", "space_invaders"): 450,
    ("open", "ant"): 700,
    ("open", "multi_task"): 300,
    ("open", "gridworld"): 350,
    ("optim4rl", "asterix"): 500,
    ("optim4rl", "breakout"): 550,
    ("optim4rl", "freeway"): 300,
    ("optim4rl", "space_invaders"): 400,
    ("optim4rl", "ant"): 700,
    ("optim4rl", "multi_task"): 300,
    ("no_features", "asterix"): 800,
    ("no_features", "breakout"): 850,
    ("no_features", "freeway"): 500,
    ("no_features", "space_invaders"): 600,
    ("no_features", "ant"): 400,
    ("no_features", "multi_task"): 300,
}
TABLE7_GEN_USED = {
    ("open", "asterix"): 336,
    ("open", "breakout"): 312,
    ("open", "freeway"): 648,
    ("open", "space_invaders"): 144,
    ("open", "ant"): 168,
    ("open", "multi_task"): 234,
    ("open", "gridworld"): 333,
    ("optim4rl", "asterix"): 288,
    ("optim4rl", "breakout"): 552,
    ("optim4rl", "freeway"): 216,
    ("optim4rl", "space_invaders"): 24,
    ("optim4rl", "ant"): 480,
    ("optim4rl", "multi_task"): 288,
    ("no_features", "asterix"): 456,
    ("no_features", "breakout"): 816,
    ("no_features", "freeway"): 408,
    ("no_features", "space_invaders"): 264,
    ("no_features", "ant"): 240,
    ("no_features", "multi_task"): 270,
}

#: Adam's final return per environment (OPEN's multi-task normaliser; `lorl._paper`).
ADAM_NORMALISERS = OPEN_ADAM_RETURNS

MINATAR = ("asterix", "breakout", "freeway", "space_invaders")


@dataclasses.dataclass(frozen=True)
class ESSettings:
    """OpenAI-ES settings of one meta-training run (resolved to a [`lorl_meta.ESConfig`][]).
    A field left `None` takes OPEN Table 7's value for the experiment's setting (MinAtar,
    Ant, multi-task or gridworld column).

    **Fields:**

    - `n_generations`: generations (Table 7: "Max Gens" per optimizer and environment).
    - `population_size`: members per generation, even (antithetic pairs) and divisible by
      the number of local devices (Table 7: 64; Ant 32).
    - `sigma_init`, `sigma_decay`, `lr`, `lr_decay`: Table 7.
    - `eval_every`: validate the ES mean every this many generations (Table 7: 24
      MinAtar/Ant, 9 multi-task/gridworld).
    - `n_validation`: validation seeds (Appendix C.3: "a small in-distribution validation
      set"; its size is not stated).
    - `checkpoint_every`: orbax checkpoint every this many generations (and at the end);
      `None`: every `eval_every`.
    """

    n_generations: int | None = None
    population_size: int | None = None
    sigma_init: float | None = None
    sigma_decay: float | None = None
    lr: float | None = None
    lr_decay: float | None = None
    eval_every: int | None = None
    n_validation: int = 8  # not in the paper (Appendix C.3: "small validation set")
    checkpoint_every: int | None = None

    def resolve(self, learned: str, env: str, column: str) -> lm.ESConfig:
        """The [`lorl_meta.ESConfig`][] for meta-training `learned` on `env`, with
        Table 7 column `column` for the fields left `None`."""
        s0, sd, lr, lrd, pop, every = TABLE7[column]
        n = self.n_generations
        if n is None:
            n = TABLE7_MAX_GENS.get((learned, env))
            if n is None:
                raise ConfigError(
                    f"OPEN Table 7 gives no number of generations for {learned!r} on {env!r}; "
                    "set es.n_generations"
                )
        eval_every = every if self.eval_every is None else self.eval_every
        try:
            return lm.ESConfig(
                n_generations=n,
                population_size=pop if self.population_size is None else self.population_size,
                sigma_init=s0 if self.sigma_init is None else self.sigma_init,
                sigma_decay=sd if self.sigma_decay is None else self.sigma_decay,
                lr=lr if self.lr is None else self.lr,
                lr_decay=lrd if self.lr_decay is None else self.lr_decay,
                eval_every=eval_every,
                n_validation=self.n_validation,
                checkpoint_every=(
                    eval_every if self.checkpoint_every is None else self.checkpoint_every
                ),
            )
        except ValueError as e:
            raise ConfigError(f"es: {e}") from None

    def population(self, column: str) -> int:
        return TABLE7[column][4] if self.population_size is None else self.population_size


@dataclasses.dataclass(frozen=True)
class AgentSettings:
    """PPO settings that differ from OPEN Table 3's column for the environment (`None`:
    keep the table's value).

    **Fields:** `n_envs`, `n_steps`, `total_timesteps`, `n_minibatches`, `n_epochs`,
    `width` as in [`lorl_agents.PPOConfig`][]. `total_timesteps` is rounded down to whole
    updates of `n_envs * n_steps` steps (the OPEN reference PPO does the same:
    `NUM_UPDATES = TOTAL_TIMESTEPS // NUM_STEPS // NUM_ENVS`).
    """

    n_envs: int | None = None
    n_steps: int | None = None
    total_timesteps: int | None = None
    n_minibatches: int | None = None
    n_epochs: int | None = None
    width: int | None = None

    def config(self, base: la.PPOConfig, *, width: int | None = None) -> la.PPOConfig:
        """`base` (a Table 3 column) with these settings; `width` overrides `self.width`."""
        changes = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }
        if width is not None:
            changes["width"] = width
        try:
            cfg = dataclasses.replace(base, **changes)
            batch = cfg.n_envs * cfg.n_steps
            return dataclasses.replace(cfg, total_timesteps=cfg.n_updates * batch)
        except ValueError as e:
            raise ConfigError(f"agent: {e}") from None


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """Final evaluation on fresh seeds.

    **Fields:**

    - `n_seeds`: agent seeds per optimizer and environment (OPEN: 16 MinAtar and Ant,
      64 gridworld and ablations, 128 Deep Sea).
    - `seed`: the first evaluation seed; seeds `seed .. seed + n_seeds - 1` are disjoint
      from the meta-training seeds (which derive from the run's `seed` through ES keys).
    - `baselines`: the tuned hand-designed optimizers to compare with (`adam`, `rmsprop`,
      `lion`; tuned per environment, OPEN Appendix C.2).
    - `seed_group`: seeds per compiled program (`0`: all in one). With `k > 0` every
      evaluation runs its seeds `k` at a time, each group a stage of its own, so a killed
      run resumed with `lorl resume` repeats at most one group (a paper-budget MinAtar
      seed is minutes on a CPU); the results equal an uninterrupted run with the same
      `seed_group`.
    """

    n_seeds: int = 16  # OPEN Figure 2: 16 seeds
    seed: int = 10_000
    baselines: tuple[str, ...] = ("adam", "rmsprop", "lion")
    seed_group: int = 0

    def __post_init__(self):
        if isinstance(self.seed_group, bool) or self.seed_group < 0:
            raise ValueError(f"evaluation.seed_group must be >= 0, got {self.seed_group}")

    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.n_seeds))


# --------------------------------------------------------------------------- validation


def check_population(population_size: int) -> None:
    """[`lorl.runs.ConfigError`][] unless the ES population is even and divisible by
    the number of devices (it is sharded over them)."""
    if isinstance(population_size, bool) or population_size < 2 or population_size % 2:
        raise ConfigError(
            f"es.population_size must be even and >= 2 (antithetic +eps/-eps pairs), got "
            f"{population_size}"
        )
    from ...sharding import check_divisible

    check_divisible(population_size, "es.population_size")


def baseline_tables() -> dict[str, Mapping[str, Any]]:
    """Baseline name -> its tuned values per environment key (`lorl_optim.baselines`, OPEN
    Appendix C.2)."""
    return {"adam": lo.baselines.ADAM, "rmsprop": lo.baselines.RMSPROP, "lion": lo.baselines.LION}


def check_baselines(baselines: Sequence[str], envs: Sequence[str]) -> None:
    """[`lorl.runs.ConfigError`][] for an unknown baseline or one without tuned values for
    an environment (OPEN Appendix C.2 tunes Adam only in the gridworld)."""
    tables = baseline_tables()
    for b in baselines:
        if b not in tables:
            raise ConfigError(f"unknown baseline {b!r}; available: {', '.join(tables)}")
        for env in envs:
            key = preset_key(env)
            if key not in tables[b]:
                raise ConfigError(
                    f"baseline {b!r} has no tuned values for {env!r} (OPEN Appendix C.2); "
                    f"tuned for: {', '.join(tables[b])}"
                )


def preset_key(env: str) -> str:
    """The key of `env` in the tuned-baseline tables."""
    if env in MINATAR or env == "ant":
        return env
    return "gridworld"


def require_brax() -> None:
    """[`lorl.runs.ConfigError`][] before compute if Brax (needed for Ant) is missing
    (`lorl.evaluation.require_brax`)."""
    from ...evaluation import require_brax as check

    check("Ant")


# --------------------------------------------------------------------------- optimizers

#: Learned-optimizer kinds and their `lorl_optim.OPEN` flags (OPEN Sections 5, 7.1, 7.2).
OPEN_VARIANTS: dict[str, dict[str, Any]] = {  # OPEN keyword arguments (feature flags)
    "open": {},
    "no_features": {"no_features": True},
    "no_training_proportion": {"use_training_proportion": False},
    "no_batch_proportion": {"use_batch_proportion": False},
    "no_layer_proportion": {"use_layer_proportion": False},
    "no_dormancy": {"use_dormancy": False},
    "no_stochasticity": {"use_stochasticity": False},
    "separated": {"separated": True},
    "separated_no_stochasticity": {"separated": True, "use_stochasticity": False},
}
LEARNED = (*OPEN_VARIANTS, "optim4rl")


def make_learned(kind: str, *, env: str = "breakout", larger: bool = False) -> Any:
    """A learned optimizer of `kind` with zero meta-parameters (the OPEN reference's ES
    initialisation, spec agents_and_meta.md section 4).

    `optim4rl` is Optim4RL at learning rate `0.1 x LR_Adam` of `env` (OPEN Appendix C.2).
    `larger=True` gives OPEN's multi-task size (F = 16, H = 32; Appendix B.5).
    """
    import jax

    key = jax.random.key(0)
    if kind == "optim4rl":
        lr = lo.baselines.optim4rl_learning_rate(preset_key(env))
        opt = lo.Optim4RL(lr, key=key)
    elif kind in OPEN_VARIANTS:
        sizes = {"hidden_size": 16, "mlp_width": 32} if larger else {}
        opt = lo.OPEN(**sizes, **OPEN_VARIANTS[kind], key=key)
    else:
        raise ConfigError(f"unknown learned optimizer {kind!r}; available: {', '.join(LEARNED)}")
    return lm.zero_meta_parameters(opt)


def baseline(name: str, env: str, total_steps: int) -> Any:
    """The tuned optax baseline `name` for `env` (OPEN Appendix C.2), with its learning
    rate annealed over `total_steps` optimizer steps where the paper anneals."""
    fns = {"adam": lo.baselines.adam, "rmsprop": lo.baselines.rmsprop, "lion": lo.baselines.lion}
    return fns[name](preset_key(env), total_steps=total_steps)


# --------------------------------------------------------------------------- shared helpers

SingleEnv = Literal["asterix", "breakout", "freeway", "space_invaders", "ant"]


def base_agent(env: str) -> la.PPOConfig:
    """OPEN Table 3's column for `env`."""
    if env == "ant":
        return la.PPOConfig.brax_ant()
    if env in MINATAR:
        return la.PPOConfig.minatar()
    return la.PPOConfig.gridworld()


def make_env(env: str) -> tuple[Any, Any]:
    if env == "ant":
        require_brax()
        return la.make_env("ant")
    names = {
        "asterix": "Asterix-MinAtar",
        "breakout": "Breakout-MinAtar",
        "freeway": "Freeway-MinAtar",
        "space_invaders": "SpaceInvaders-MinAtar",
    }
    return la.make_env(names[env])


def check_learned(learned: tuple[str, ...], allowed: tuple[str, ...] = LEARNED) -> None:
    if not learned:
        raise ConfigError("learned: name at least one learned optimizer")
    for kind in learned:
        if kind not in allowed:
            raise ConfigError(
                f"learned: unknown or unsupported optimizer {kind!r} here; allowed: "
                f"{', '.join(allowed)}"
            )
    if len(set(learned)) != len(learned):
        raise ConfigError(f"learned: duplicates in {learned}")


def check_common(es: ESSettings, column: str, evaluation: EvalSettings) -> None:
    check_population(es.population(column))
    if evaluation.n_seeds < 1:
        raise ConfigError(f"evaluation.n_seeds must be >= 1, got {evaluation.n_seeds}")


def cpu_es(n_generations: int, population_size: int) -> ESSettings:
    """ES settings of a cpu scale. Validation every generation: the generation with and
    the one without validation are two compiled programs, and on a CPU compiling the
    second costs more than validating 2 seeds each generation."""
    return ESSettings(
        n_generations=n_generations,
        population_size=population_size,
        eval_every=1,
        n_validation=2,
    )


#: What OPEN Figure 2 shows, per environment (`lorl._paper`).
FIG2_PAPER = OPEN_FIGURE2


def minatar_cpu_agent(**overrides: Any) -> AgentSettings:
    # cpu scale: 4 envs x 16 steps x 16 updates = 1,024 steps per run (Table 3: 64 envs
    # x 128 steps, 1e7 steps). ES runs a whole PPO run per member per generation.
    base = AgentSettings(n_envs=4, n_steps=16, total_timesteps=1_024, n_minibatches=2, n_epochs=2)
    return dataclasses.replace(base, **overrides)
