"""The fused CPU kernels' build: compiling `kernels.cc` (and its parts), caching,
locking, loading and registering the FFI targets.

The C++ source ships with the package. On first use it is compiled with the system C++
compiler (`$LORL_OPTIM_CXX`, else `c++`, else `g++`) with `FLAGS`, into a user cache
directory (`$LORL_OPTIM_CACHE_DIR`, else `$XDG_CACHE_HOME/lorl_optim`, else
`~/.cache/lorl_optim`), under a name keyed by a hash of the source, the flags, the jaxlib
version, the compiler (path and `--version`) and the CPU's feature flags. Several processes
may compile at once: each writes a private temporary file and renames it into place
(atomic on POSIX). The library is loaded with ctypes and its handlers registered as XLA
FFI targets for the CPU platform.

Stale builds (every change of the source, flags, jaxlib or compiler makes a new file) are
removed after a successful load, by `remove_stale_builds`. The rule, safe with concurrent
processes:

- every process builds, marks and loads its library while holding a *shared* `flock` on
  `<cache>/.lock`, and marks the file as used by setting its mtime to now just before
  loading it;
- the cleanup takes the *exclusive* lock without waiting (if any process is building or
  loading, it skips and leaves everything for a later run), and then removes only other
  `lorl_optim_kernels-*.so` files not used for `STALE_DAYS` days and temporary files of
  builds older than `STALE_TMP_HOURS` hours (a killed compiler's leftovers).

So no file is removed between another process's check that it exists and its load.
Removing a library that a running process has already loaded is harmless on POSIX (the
mapping keeps the file's data until it is unmapped). The age rule keeps the library of
another installed version (another checkout or virtual environment) that is still in
use, so two versions used alternately do not rebuild each other's file. Processes of
older lorl_optim versions take no lock and do not mark their file; for them the age rule
alone applies (a build unused for a week), and a failed load falls back to XLA with a
warning. Without `fcntl` (not POSIX) nothing is removed.

If no compiler is found or compilation fails, `available()` returns False and warns once
(`FusedKernelWarning`); the optimizers then use their XLA implementations.
"""

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jaxlib

SOURCE = Path(__file__).with_name("kernels.cc")
#: Every file of the kernel's source (one translation unit: `kernels.cc` includes the
#: headers); all of them key the build.
SOURCES = (SOURCE, *sorted(Path(__file__).parent.glob("*.h")))
FLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-std=c++17")
TARGETS = {
    "lorl_open_step": "LorlOpenStep",
    "lorl_optim4rl_step": "LorlOptim4RLStep",
    "lorl_math": "LorlMath",
    "lorl_normal": "LorlNormal",
}

# A build unused (mtime, set at every load) for this long is removed; so are temporary
# files of builds started this long ago (a compile takes well under a minute).
STALE_DAYS = 7.0
STALE_TMP_HOURS = 6.0

try:
    import fcntl
except ImportError:  # not POSIX: no locking, so no cleanup
    fcntl = None

_lock = threading.Lock()
_state: dict[str, Any] = {"tried": False, "ok": False, "error": None, "path": None}


class FusedKernelWarning(RuntimeWarning):
    """The fused CPU kernel could not be built or loaded; the XLA path is used."""


def _compiler() -> str | None:
    env = os.environ.get("LORL_OPTIM_CXX")
    if env:
        return env
    return shutil.which("c++") or shutil.which("g++")


def _cache_dir() -> Path:
    env = os.environ.get("LORL_OPTIM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lorl_optim"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor()


@contextlib.contextmanager
def _cache_lock(cache: Path, *, exclusive: bool) -> Iterator[bool]:
    """`flock` on `<cache>/.lock`: shared (waits) for building and loading, exclusive
    (does not wait) for the cleanup. Yields whether the lock is held."""
    if fcntl is None:
        yield not exclusive
        return
    cache.mkdir(parents=True, exist_ok=True)
    fd = os.open(cache / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX | fcntl.LOCK_NB) if exclusive else fcntl.LOCK_SH)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def remove_stale_builds(cache: Path, keep: Path | None = None) -> list[Path]:
    """Remove stale kernel builds from the cache (the rule is in this module's docstring):
    other `lorl_optim_kernels-*.so` files unused for `STALE_DAYS` days and temporary
    build files older than `STALE_TMP_HOURS` hours, only if no process holds the cache
    lock.

    **Arguments:**

    - `cache`: the cache directory.
    - `keep`: a library never removed (this process's).

    **Returns:**

    The removed files (empty if the lock was busy).
    """
    removed: list[Path] = []
    if not cache.is_dir():
        return removed
    with _cache_lock(cache, exclusive=True) as held:
        if not held:
            return removed
        now = time.time()
        for f in cache.glob("lorl_optim_kernels-*.so"):
            if keep is not None and f.name == keep.name:
                continue
            tmp = f.name.endswith(".tmp.so")
            limit = 3600.0 * STALE_TMP_HOURS if tmp else 86400.0 * STALE_DAYS
            try:
                if now - f.stat().st_mtime > limit:
                    f.unlink()
                    removed.append(f)
            except FileNotFoundError:
                pass
    return removed


def _build(compiler: str, cache: Path) -> Path:
    """Compile (if not cached) and return the path of the shared library."""
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    digest = hashlib.sha256()
    for path in SOURCES:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for part in (" ".join(FLAGS).encode(), jaxlib.__version__.encode()):
        digest.update(part + b"\0")
    for part in (compiler, version, _cpu_flags(), platform.machine()):
        digest.update(part.encode() + b"\0")
    path = cache / f"lorl_optim_kernels-{digest.hexdigest()[:20]}.so"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp.so", dir=cache)
    os.close(fd)
    try:
        cmd = [compiler, *FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", tmp]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(
                f"compiling the fused kernel failed ({' '.join(cmd)}):\n{result.stderr[-3000:]}"
            )
        os.replace(tmp, path)  # atomic: concurrent builders all write complete files
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def available() -> bool:
    """Whether the fused CPU kernel is built, loaded and registered (builds it on the
    first call; warns once with `FusedKernelWarning` if that fails).

    **Returns:**

    True if the fused kernels can be used on CPU.
    """
    with _lock:
        if _state["tried"]:
            return bool(_state["ok"])
        _state["tried"] = True
        try:
            compiler = _compiler()
            if compiler is None:
                raise RuntimeError("no C++ compiler found (set LORL_OPTIM_CXX or install g++)")
            cache = _cache_dir()
            with _cache_lock(cache, exclusive=False):
                path = _build(compiler, cache)
                with contextlib.suppress(OSError):
                    os.utime(path)  # mark as used (the cleanup's age rule)
                lib = ctypes.cdll.LoadLibrary(str(path))
            for name, symbol in TARGETS.items():
                capsule = jax.ffi.pycapsule(getattr(lib, symbol))
                jax.ffi.register_ffi_target(name, capsule, platform="cpu")
            _state.update(ok=True, path=path, lib=lib)
            try:
                remove_stale_builds(cache, keep=path)
            except OSError as e:  # housekeeping must never disable the kernel
                warnings.warn(f"lorl_optim: could not clean the kernel cache: {e}", stacklevel=2)
        except Exception as e:
            _state.update(ok=False, error=e)
            warnings.warn(
                f"lorl_optim: the fused CPU kernel is unavailable, using the XLA "
                f"implementation instead ({type(e).__name__}: {e})",
                FusedKernelWarning,
                stacklevel=2,
            )
        return bool(_state["ok"])


def error() -> BaseException | None:
    """The exception that made the kernel unavailable (None if it loaded or was not tried).

    **Returns:**

    The exception, or None.
    """
    return _state["error"]


def _require_kernel() -> None:
    if not available():
        raise RuntimeError(f"the fused CPU kernel is unavailable: {error()!r}")
