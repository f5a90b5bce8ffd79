"""Environment names `lorl.evaluation` accepts, and the agent each one is trained with."""

import dataclasses
import difflib
import importlib.util
from typing import Any, Literal

import lorl_agents as la
import lorl_gridworlds as lg
from lorl_optim.baselines import ENV_ALIASES

from ..runs import ConfigError

#: The MinAtar games under their gymnax names -> lorl's short names, from the one table of
#: environment spellings (`lorl_optim.baselines.ENV_ALIASES`); the short name is also the
#: game's key in the tuned-baseline tables.
_PRESET_KEY: dict[str, str] = {
    gymnax: short for gymnax, short in ENV_ALIASES.items() if gymnax.endswith("-MinAtar")
}

#: Short names for the gymnax environments of the papers (OPEN Section 6 and 7.2): every
#: MinAtar spelling of `ENV_ALIASES`, and the other gymnax tasks lorl's experiments use.
GYMNAX_ALIASES: dict[str, str] = {
    **{short: gymnax for gymnax, short in _PRESET_KEY.items()},
    **{
        alias: {s: g for g, s in _PRESET_KEY.items()}[short]
        for alias, short in ENV_ALIASES.items()
        if not alias.endswith("-MinAtar")
    },
    "deep_sea": "DeepSea-bsuite",
    "deepsea": "DeepSea-bsuite",
    "cartpole": "CartPole-v1",
}

Family = Literal["lpg", "levels", "minatar", "gymnax", "brax"]


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """How `lorl.evaluation` treats one environment name.

    - `name`: the canonical name (`"small_dense_short"`, `"Breakout-MinAtar"`, `"ant"`, ...).
    - `family`: `"lpg"` (Optim4RL's six gridworlds: A2C), `"levels"` (OPEN's gridworld
      level distributions: PPO, one level drawn per seed), `"minatar"`, `"gymnax"` (other
      gymnax environments) or `"brax"` (PPO).
    - `agent`: the default agent, `"a2c"` or `"ppo"`.
    - `preset`: the key of this environment in the tuned-baseline tables (`None`: no
      tuned values).
    """

    name: str
    family: Family
    agent: Literal["a2c", "ppo"]
    preset: str | None


def known_env_names() -> list[str]:
    """Every environment name (and alias) `lorl.evaluation.evaluate` accepts."""
    import gymnax

    names = list(lg.LPG_NAMES) + list(lg.DISTRIBUTIONS) + list(la.GYMNAX_ENVS)
    names += list(GYMNAX_ALIASES) + list(la.BRAX_ENVS)
    names += [n for n in gymnax.registered_envs if n not in names]
    return names


def env_spec(name: str) -> EnvSpec:
    """The [`lorl.evaluation.EnvSpec`][] of `name`.

    **Raises:**

    [`lorl.runs.ConfigError`][] for an unknown name (naming the closest known ones), or a
    Brax task when Brax is not installed (saying how to install it).
    """
    import gymnax

    if name in lg.LPG_NAMES:
        return EnvSpec(name, "lpg", "a2c", name)
    if name in lg.DISTRIBUTIONS or name == "rand_all":
        return EnvSpec("all" if name == "rand_all" else name, "levels", "ppo", "gridworld")
    gname = GYMNAX_ALIASES.get(name, name)
    if gname in gymnax.registered_envs:
        if gname.endswith("-MinAtar"):
            return EnvSpec(gname, "minatar", "ppo", _PRESET_KEY.get(gname))
        return EnvSpec(gname, "gymnax", "ppo", None)
    bname = name.removeprefix("brax/")
    if bname in la.BRAX_ENVS:
        require_brax(bname)
        return EnvSpec(bname, "brax", "ppo", "ant")
    close = difflib.get_close_matches(name, known_env_names(), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(
        f"unknown environment {name!r}.{hint} Known: the Optim4RL gridworlds "
        f"({', '.join(lg.LPG_NAMES)}), OPEN's level distributions "
        f"({', '.join(lg.DISTRIBUTIONS)}), MinAtar ({', '.join(_PRESET_KEY.values())}), "
        f"other gymnax names, Brax ({', '.join(la.BRAX_ENVS)})."
    )


def require_brax(task: str = "Brax") -> None:
    """Raise [`lorl.runs.ConfigError`][] (before any compute) if Brax is not installed."""
    if importlib.util.find_spec("brax") is None:
        raise ConfigError(
            f"{task} needs Brax, which is not installed. Install the extra: "
            "pip install './packages/lorl[brax]' (or: pip install 'lorl-agents[brax]')"
        )


def default_agent_config(spec: EnvSpec, agent: str) -> Any:
    """The papers' agent configuration for an environment.

    - A2C on an Optim4RL gridworld: `A2CConfig.small_gridworld()` (MLP torso) for the
      `small_*` grids, `A2CConfig.big_gridworld()` (CNN torso) for the `big_*` grids
      (Optim4RL Appendix C).
    - PPO: OPEN Table 3's MinAtar column for MinAtar and other gymnax environments,
      except `CartPole-v1` (PureJaxRL's CartPole settings); the Ant column for every Brax
      task; the Gridworld column for OPEN's level distributions.
    """
    if agent == "a2c":
        if spec.family != "lpg":
            raise ConfigError(
                f"A2C is implemented for the Optim4RL gridworlds only (discrete actions, "
                f"channels-last grid observations); {spec.name!r} uses PPO"
            )
        return (
            la.A2CConfig.big_gridworld()
            if spec.name.startswith("big")
            else la.A2CConfig.small_gridworld()
        )
    if spec.family == "brax":
        return la.PPOConfig.brax_ant()
    if spec.family in ("levels", "lpg"):
        return la.PPOConfig.gridworld()
    if spec.name == "CartPole-v1":
        return la.PPOConfig.cartpole()
    return la.PPOConfig.minatar()


def make(spec: EnvSpec) -> tuple[Any, Any]:
    """`(env, default env_params)` of an environment spec."""
    if spec.family in ("lpg", "levels"):
        return lg.make(spec.name)
    return la.make_env(spec.name)
