"""`lorl` commands keep compiled programs in JAX's persistent compilation cache, so a
repeated run or a `lorl resume` does not compile again."""

import json
import os
import subprocess
import sys

from lorl._cli import CACHE_ENV, compilation_cache_dir

TINY = [
    "run",
    "open/published",
    "envs=breakout",
    "multi=false",
    "evaluation.baselines=",
    "evaluation.n_seeds=2",
    "agent.n_envs=8",
    "agent.n_steps=16",
    "agent.total_timesteps=256",
    "agent.n_minibatches=2",
    "agent.n_epochs=1",
]


def test_cache_folder_precedence(tmp_path):
    assert compilation_cache_dir({CACHE_ENV: "/x/y"}) == "/x/y"
    for off in ("off", "0", "", "false", "No"):
        assert compilation_cache_dir({CACHE_ENV: off, "JAX_COMPILATION_CACHE_DIR": "/j"}) is None
    assert compilation_cache_dir({"JAX_COMPILATION_CACHE_DIR": "/j"}) == "/j"
    assert compilation_cache_dir({"XDG_CACHE_HOME": "/c"}) == os.path.join("/c", "lorl", "jax")
    default = compilation_cache_dir({})
    assert default is not None and default.endswith(os.path.join(".cache", "lorl", "jax"))


def _lorl(args, env):
    code = "import sys; from lorl._cli import main; sys.argv[0] = 'lorl'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True
    )


def test_a_repeated_run_compiles_nothing_new(tmp_path):
    cache = tmp_path / "cache"
    # Every program is stored (the CLI's default stores those compiling for 0.5 s or more,
    # and on a loaded machine a program near that threshold is stored by one run only).
    env = {
        **os.environ,
        CACHE_ENV: str(cache),
        "JAX_PLATFORMS": "cpu",
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    first = _lorl([*TINY, "--out", str(tmp_path), "--name", "a"], env)
    assert first.returncode == 0, first.stderr[-2000:]
    entries = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert entries, "the first run stored no compiled program"
    second = _lorl([*TINY, "--out", str(tmp_path), "--name", "b"], env)
    assert second.returncode == 0, second.stderr[-2000:]
    # every program of the second run came from the cache: nothing new was stored
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == entries
    a, b = (json.loads((tmp_path / n / "results.json").read_text()) for n in "ab")
    assert a["evaluation"] == b["evaluation"]  # same numbers from cached programs
