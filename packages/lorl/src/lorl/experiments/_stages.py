"""The evaluation stage every experiment shares: one `lorl.evaluation.evaluate` call as a
cached, resumable stage of a run folder (optionally in seed groups, optionally through a
result store), with one return type, [`lorl.evaluation.EvaluationResult`][]; and the
stage-name and seed-list rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..runs import RunDir

if TYPE_CHECKING:
    from ..evaluation import EvaluationResult


def stage_name(*parts: Any) -> str:
    """A stage name from parts, characters a stage name cannot hold (an optimizer's
    `:`) replaced by `_`: `stage_name("eval", "ant", "open:ant")` is `eval-ant-open_ant`."""
    text = "-".join(str(p) for p in parts)
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in text)


def seed_list(seeds: int, first_seed: int) -> list[int]:
    """The evaluation seeds `first_seed, first_seed + 1, ...` (`seeds` of them)."""
    return list(range(first_seed, first_seed + seeds))


def _stored_array(x: Any, dtype: Any) -> np.ndarray:
    """An array from its stored (JSON) form, where NaN and infinities are strings."""
    a = np.asarray(x, dtype=object)
    for text, value in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
        a = np.where(a == text, value, a)
    return a.astype(dtype)


def eval_record(final: Any, steps: Any, returns: Any, first_nonfinite: Any) -> dict[str, Any]:
    """The arrays of an evaluation (diverged runs get final return NaN), the form
    `train_seeds` stores and the one evaluation stages of runs before the shared stage
    stored."""
    first = np.asarray(first_nonfinite, np.int64)
    final = np.where(first >= 0, np.nan, np.asarray(final, np.float64))
    return {
        "final_returns": final,
        "steps": np.asarray(steps, np.int64),
        "returns": np.asarray(returns, np.float64),
        "first_nonfinite_update": first,
    }


def concat_records(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The arrays of one evaluation from those of its seed groups (in order; stored or
    not); every part must have the same update steps."""
    steps = [np.asarray(p["steps"], np.int64) for p in parts]
    if any(not np.array_equal(s, steps[0]) for s in steps[1:]):
        raise ValueError("seed groups of one evaluation ran different numbers of updates")

    def cat(key: str, dtype: Any) -> np.ndarray:
        return np.concatenate([_stored_array(p[key], dtype) for p in parts], axis=0)

    return {
        "final_returns": cat("final_returns", np.float64),
        "steps": steps[0],
        "returns": cat("returns", np.float64),
        "first_nonfinite_update": cat("first_nonfinite_update", np.int64),
    }


def _as_result(
    stored: Mapping[str, Any], *, env: str, label: str, seeds: Sequence[int], agent: Any
) -> EvaluationResult:
    """An `EvaluationResult` from a stored stage: its full form, or the arrays-only form
    the OPEN experiments stored before the shared stage (their run folders still resume),
    completed from what the caller knows."""
    from ..evaluation import EvaluationResult

    if "env" in stored:
        return EvaluationResult.from_dict(stored)
    rec = concat_records([stored])
    is_config = dataclasses.is_dataclass(agent) and not isinstance(agent, type)
    config = dataclasses.asdict(agent) if is_config else {}  # pyright: ignore[reportArgumentType]
    # Only the OPEN experiments (PPO) stored this form.
    kind = "a2c" if type(agent).__name__.startswith("A2C") else "ppo"
    return EvaluationResult(
        env=env,
        optimizer=label,
        agent=kind,
        seeds=tuple(int(s) for s in seeds),
        final_returns=rec["final_returns"],
        steps=rec["steps"],
        returns=rec["returns"],
        first_nonfinite_update=rec["first_nonfinite_update"],
        timesteps=int(rec["steps"][-1]) if len(rec["steps"]) else 0,
        seconds=float("nan"),
        agent_config=config,
    )


def concat_results(parts: Sequence[EvaluationResult]) -> EvaluationResult:
    """One evaluation from its seed groups' results (in order): seeds and per-seed arrays
    joined, wall times added; everything else must agree."""
    from ..evaluation import EvaluationResult

    first = parts[0]
    for p in parts[1:]:
        if (p.env, p.agent, p.timesteps) != (first.env, first.agent, first.timesteps):
            raise ValueError("seed groups of one evaluation differ in environment or budget")
    rec = concat_records([p.to_dict() for p in parts])
    return EvaluationResult(
        env=first.env,
        optimizer=first.optimizer,
        agent=first.agent,
        seeds=tuple(s for p in parts for s in p.seeds),
        final_returns=rec["final_returns"],
        steps=rec["steps"],
        returns=rec["returns"],
        first_nonfinite_update=rec["first_nonfinite_update"],
        timesteps=first.timesteps,
        seconds=float(sum(p.seconds for p in parts)),
        agent_config=first.agent_config,
        tuning=first.tuning,
    )


def stored_form(result: EvaluationResult) -> dict[str, Any]:
    """`result` in JSON types (lists, NaN as `"nan"`) without its wall time: the form the
    OPEN experiments keep their evaluations in, the same for a fresh, a resumed and a
    repeated run of one configuration (the stage's own file keeps the wall time)."""
    from ..runs import to_jsonable

    return {k: v for k, v in to_jsonable(result.to_dict()).items() if k != "seconds"}


def evaluate_stage(
    run_dir: RunDir,
    stage: str,
    optimizer: Any,
    env: str,
    *,
    seeds: Sequence[int],
    timesteps: int | None = None,
    agent: Any = None,
    agent_overrides: Mapping[str, Any] | None = None,
    label: str | None = None,
    on_nonfinite: Literal["raise", "record"] = "record",
    store: str | None = None,
    seed_group: int = 0,
) -> EvaluationResult:
    """Train fresh agents with `optimizer` on `env` for every seed
    ([`lorl.evaluation.evaluate`][]; on a level distribution one level is drawn per seed)
    as a cached stage of `run_dir`: a resumed run loads it instead of training again.

    **Arguments:**

    - `run_dir`, `stage`: the run folder and the stage's name.
    - `optimizer`, `env`, `seeds`, `timesteps`, `agent`, `agent_overrides`, `label`,
      `on_nonfinite`: as for `lorl.evaluation.evaluate` (a run whose optimizer produced
      NaN/inf updates has final return NaN, reported and never averaged, with
      `"record"`).
    - `store`: a `lorl.evaluation.ResultStore` folder: only the seeds it lacks are
      trained, and those are added to it.
    - `seed_group`: `k > 0` runs the seeds `k` at a time, each group stored as a stage of
      its own (`<stage>-seeds-<first>-<last>`) before the whole is stored as `stage`, so a
      killed run resumed repeats only the group it was in. (The per-seed numbers of a
      group can differ in the last digits from those of one batch of all seeds: the
      compiled program depends on the batch size; the statistics do not.)

    **Returns:**

    The [`lorl.evaluation.EvaluationResult`][] of all seeds.
    """
    from ..evaluation import evaluate, evaluate_with_store

    seeds = [int(s) for s in seeds]
    name = label if label is not None else str(optimizer)

    def one(group: list[int]) -> dict[str, Any]:
        kwargs = {
            "seeds": group,
            "timesteps": timesteps,
            "agent": agent,
            "agent_overrides": agent_overrides,
            "label": label,
            "on_nonfinite": on_nonfinite,
            "progress": True,
        }
        if store is not None:
            return evaluate_with_store(store, optimizer, env, **kwargs).to_dict()
        return evaluate(optimizer, env, **kwargs).to_dict()

    def load(stored: Mapping[str, Any], group: Sequence[int]) -> EvaluationResult:
        return _as_result(stored, env=env, label=name, seeds=group, agent=agent)

    def compute() -> dict[str, Any]:
        if seed_group < 1 or seed_group >= len(seeds):
            return one(seeds)
        parts = []
        for i in range(0, len(seeds), seed_group):
            group = seeds[i : i + seed_group]
            part = stage_name(stage, "seeds", group[0], group[-1])
            parts.append(load(run_dir.stage(part, lambda g=group: one(g)), group))
        return concat_results(parts).to_dict()

    return load(run_dir.stage(stage, compute), seeds)
