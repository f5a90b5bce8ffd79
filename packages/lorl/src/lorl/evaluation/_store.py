"""A store of finished evaluation runs, keyed by what determines them (optimizer identity,
environment, agent configuration, budget, seed), so that a study or a repeated
`lorl evaluate` computes only the seeds it does not have yet."""

import contextlib
import hashlib
import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import lorl_optim as lo

from ..runs import ConfigError, to_jsonable
from ._evaluate import EvaluationResult, _seed_list, agent_config_for, evaluate

#: Version of a stored record; records of another version are not read.
STORE_VERSION = 1


def optimizer_identity(optimizer: Any) -> str:
    """What identifies an optimizer for the result store.

    - a name (`"adam"`, `"open:breakout"`, `"adam:3e-4+wd=1e-4"`): the name itself;
    - a path to a saved learned optimizer: the SHA-256 of the file's bytes (so a renamed
      copy is the same optimizer, a re-trained one another);
    - a `lorl_optim` learned optimizer: the SHA-256 of its `lorl_optim.save` bytes.

    **Raises:**

    [`lorl.runs.ConfigError`][] for an optax transformation or anything else without a
    stable identity (evaluate it without a store).
    """
    if isinstance(optimizer, os.PathLike):
        optimizer = os.fspath(optimizer)
    if isinstance(optimizer, str):
        text = optimizer.strip()
        path = pathlib.Path(text)
        if path.is_file():
            return "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
        if path.is_dir():
            from ._optimizers import load_optimizer

            return optimizer_identity(load_optimizer(path))
        return "name:" + text
    if isinstance(optimizer, lo.AbstractLearnedOptimizer):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            saved = lo.save(pathlib.Path(tmp) / "o.eqx", optimizer)
            return "file:" + hashlib.sha256(saved.read_bytes()).hexdigest()
    raise ConfigError(
        f"a {type(optimizer).__name__} has no stable identity for the result store; pass a "
        "name, a saved optimizer's path or a lorl_optim learned optimizer (or evaluate it "
        "without a store)"
    )


class ResultStore:
    """Finished evaluation runs on disk, one small JSON file per (optimizer identity,
    environment, agent configuration, seed); the agent configuration includes the budget
    (`total_timesteps`) and every other setting, and a grid-searched baseline's key also
    includes its tuning seeds.

    Writes are atomic (a killed writer leaves no partial record), so several processes may
    share a store; a record computed twice is simply written twice with the same key.
    """

    def __init__(self, root: str | os.PathLike[str]):
        """**Arguments:**

        - `root`: the folder (created if missing).
        """
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(
        identity: str, env: str, agent_config: Mapping[str, Any], seed: int, extra: Any = None
    ) -> str:
        """The record key: SHA-256 of the canonical JSON of its inputs (the environment
        under its canonical name, so `"breakout"` and `"Breakout-MinAtar"` share records)."""
        from ._envs import env_spec

        with contextlib.suppress(ConfigError):  # an unknown environment keeps its name
            env = env_spec(env).name
        payload = {
            "version": STORE_VERSION,
            "optimizer": identity,
            "env": env,
            "agent": to_jsonable(dict(agent_config)),
            "seed": int(seed),
            "extra": to_jsonable(extra),
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _path(self, key: str) -> pathlib.Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record of `key`, or `None`."""
        path = self._path(key)
        if not path.is_file():
            return None
        record = json.loads(path.read_text())
        return record if record.get("version") == STORE_VERSION else None

    def put(self, key: str, record: Mapping[str, Any]) -> None:
        """Store `record` (JSON-convertible) under `key`, atomically."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(to_jsonable({**record, "version": STORE_VERSION})))
        os.replace(tmp, path)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json"))

    def add(self, identity: str, result: EvaluationResult, extra: Any = None) -> int:
        """Store every seed of a finished evaluation (e.g. one recorded before the store
        existed, read with `EvaluationResult.from_dict`) under `identity`.

        **Returns:**

        The number of records written.
        """
        for i, seed in enumerate(result.seeds):
            key = self.key(identity, result.env, result.agent_config, seed, extra)
            self.put(key, _record(result, i))
        return len(result.seeds)


def _record(result: EvaluationResult, i: int) -> dict[str, Any]:
    return {
        "optimizer": result.optimizer,
        "env": result.env,
        "agent": result.agent,
        "seed": result.seeds[i],
        "final_return": result.final_returns[i],
        "steps": result.steps,
        "returns": result.returns[i],
        "first_nonfinite_update": result.first_nonfinite_update[i],
        "timesteps": result.timesteps,
        "seconds": result.seconds / max(len(result.seeds), 1),
        "agent_config": result.agent_config,
        "tuning": result.tuning,
    }


def _floats(x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=object)
    for text, value in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
        a = np.where(a == text, value, a)
    return a.astype(np.float64)


def evaluate_with_store(
    store: ResultStore | str | os.PathLike[str],
    optimizer: Any,
    env: str,
    *,
    seeds: int | Sequence[int],
    agent: Any = None,
    timesteps: int | None = None,
    agent_overrides: Mapping[str, Any] | None = None,
    tuning_seeds: Any = None,
    progress: bool = False,
    **kwargs: Any,
) -> EvaluationResult:
    """[`lorl.evaluation.evaluate`][] that reuses the runs `store` already holds and
    stores the ones it computes: only the missing seeds are trained (in one program).

    **Arguments:**

    - `store`: a [`lorl.evaluation.ResultStore`][] or its folder.
    - `optimizer`, `env`, `seeds`, `agent`, `timesteps`, `agent_overrides`,
      `tuning_seeds`, `progress`, `kwargs`: as for `evaluate` (the optimizer needs a
      stable identity, `optimizer_identity`).

    **Returns:**

    An [`lorl.evaluation.EvaluationResult`][] over all `seeds`, in order; `seconds` is
    the time spent now plus the stored runs' share of theirs.
    """
    if not isinstance(store, ResultStore):
        store = ResultStore(store)
    seed_list = _seed_list(seeds)
    identity = optimizer_identity(optimizer)
    _, config = agent_config_for(env, agent, timesteps, agent_overrides)
    import dataclasses

    from ._envs import env_spec

    canonical = env_spec(env).name
    agent_dict = dataclasses.asdict(config)
    extra = {"tuning_seeds": list(tuning_seeds)} if isinstance(tuning_seeds, list | tuple) else (
        {"tuning_seeds": int(tuning_seeds)} if tuning_seeds is not None else None
    )  # fmt: skip
    keys = {s: store.key(identity, canonical, agent_dict, s, extra) for s in seed_list}
    missing = [s for s in seed_list if store.get(keys[s]) is None]
    if missing:
        more = {} if tuning_seeds is None else {"tuning_seeds": tuning_seeds}
        fresh = evaluate(
            optimizer, env, seeds=missing, agent=config, progress=progress, **more, **kwargs
        )
        for i, seed in enumerate(fresh.seeds):
            store.put(keys[seed], _record(fresh, i))
    records = [store.get(keys[s]) for s in seed_list]
    assert all(r is not None for r in records)
    first = records[0]
    assert first is not None
    return EvaluationResult(
        env=first["env"],
        optimizer=first["optimizer"],
        agent=first["agent"],
        seeds=seed_list,
        final_returns=_floats([r["final_return"] for r in records if r]),
        steps=np.asarray(first["steps"], np.int64),
        returns=_floats([r["returns"] for r in records if r]),
        first_nonfinite_update=np.asarray(
            [r["first_nonfinite_update"] for r in records if r], np.int64
        ),
        timesteps=int(first["timesteps"]),
        seconds=float(sum(float(r["seconds"]) for r in records if r)),
        agent_config=dict(first["agent_config"]),
        tuning=first.get("tuning"),
    )
