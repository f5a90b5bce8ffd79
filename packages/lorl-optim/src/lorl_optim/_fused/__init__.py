"""The fused CPU kernels (`kernels.cc`): compilation, caching, loading, FFI calls.

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
import jax.numpy as jnp
import jaxlib
import numpy as np
from jaxtyping import Array, Float, Int, UInt32

SOURCE = Path(__file__).with_name("kernels.cc")
FLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-std=c++17")
TARGETS = {
    "lorl_open_step": "LorlOpenStep",
    "lorl_optim4rl_step": "LorlOptim4RLStep",
    "lorl_math": "LorlMath",
    "lorl_normal": "LorlNormal",
}
# Actor-noise modes of `lorl_open_step` (kernels.cc, `NoiseMode`).
NOISE_NONE, NOISE_GIVEN, NOISE_KEY, NOISE_KEY_MASK = 0, 1, 2, 3
# Up to this many parameters `lorl_open_step` keeps phase 1's seven log features for phase
# 2 instead of recomputing them (7 floats per parameter, 28 MB at 1M, held per calling
# thread between calls); above, it recomputes them. Speed only: results are the same.
LOG_CACHE_MAX_COLUMNS = 1 << 22

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
    source = SOURCE.read_bytes()
    digest = hashlib.sha256()
    for part in (source, " ".join(FLAGS).encode(), jaxlib.__version__.encode()):
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


# ----------------------------------------------------------------------------- calls


def _require_kernel() -> None:
    if not available():
        raise RuntimeError(f"the fused CPU kernel is unavailable: {error()!r}")


def offsets_array(sizes: tuple[int, ...]) -> Int[np.ndarray, " leaves_plus_one"]:
    """Leaf boundaries `(0, s0, s0 + s1, ...)` as int32."""
    return np.cumsum((0, *sizes)).astype(np.int32)


def kernel_noise_key(key: Any) -> UInt32[Array, "2"] | None:
    """The two key words from which the kernel can draw `jax.random.normal(key, (1, n))`
    itself, or None when it cannot (another PRNG implementation, or the non-default
    `jax_threefry_partitionable=False`, under which the bits of an element also depend on
    `n`).

    **Arguments:**

    - `key`: a typed PRNG key or a raw `uint32[2]` key.

    **Returns:**

    `uint32[2]` key data, or None.
    """
    partitionable = bool(getattr(jax.config, "jax_threefry_partitionable"))  # noqa: B009
    if not partitionable or str(jax.random.key_impl(key)) != "threefry2x32":
        return None
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    if key.shape != (2,) or key.dtype != jnp.uint32:
        return None
    return key


def normal(key_data: UInt32[Array, "2"], n: int) -> tuple[UInt32[Array, " n"], Float[Array, " n"]]:
    """The kernel's own draw of `jax.random.bits(key, (n,))` and
    `jax.random.normal(key, (n,))` (for the tests).

    **Arguments:**

    - `key_data`: `kernel_noise_key(key)`.
    - `n`: number of values.

    **Returns:**

    `(bits, normal values)`.
    """
    _require_kernel()
    bits, values = jax.ffi.ffi_call(
        "lorl_normal",
        (jax.ShapeDtypeStruct((n,), jnp.uint32), jax.ShapeDtypeStruct((n,), jnp.float32)),
    )(key_data)
    return bits, values


def open_step(
    g: Float[Array, " n"],
    p: Float[Array, " n"] | None,
    slots: Float[Array, "s n"],
    rows: Float[Array, "r n"],
    eps: Float[Array, " n"] | None,
    key_data: UInt32[Array, "2"] | None,
    leaf_noise: Float[Array, " leaves"],
    wi: Float[Array, "nets k gates"],
    bi: Float[Array, "leaves gates"],
    nets: Float[Array, "nets w"],
    leaf_net: Int[Array, " leaves"],
    sizes: tuple[int, ...],
    *,
    hidden: int,
    width: int,
    n_out: int,
    alphas: tuple[float, float, float],
    log_eps: float,
    ln_eps: float,
    norm_eps: float,
) -> tuple[Float[Array, "s n"], Float[Array, " n"]]:
    """One whole OPEN step in one kernel call (`lorl_open_step`): the per-tensor
    statistics of the raw features, their normalisation folded into each leaf's GRU
    input weights, then the network and `u_hat` for every column.

    **Arguments:** flat inputs as described in kernels.cc (`OpenStepImpl`); `wi` are
    each network's GRU input weights transposed to `(inputs, 3F)` *without* the
    per-tensor normalisation (the kernel scales the raw-feature rows of each leaf by
    `1 / sqrt(norm_eps + mean square)`), `bi` the per-leaf biases with every per-leaf
    constant input folded in; `leaf_net` picks each leaf's network; `nets` the packed
    networks (`pack_open_network`). Actor noise: with `key_data` (`kernel_noise_key`)
    the kernel draws `jax.random.normal(key, (1, n))` itself, only for leaves whose
    `leaf_noise` is non-zero, times `eps` if given (a per-element actor mask); without
    it `eps` is the noise itself (None: no stochasticity). Up to `LOG_CACHE_MAX_COLUMNS`
    parameters the kernel keeps its first phase's log features for the second.

    **Returns:**

    `(new slots, u_hat)`.
    """
    n = g.shape[0]
    cache_logs = n <= LOG_CACHE_MAX_COLUMNS
    if key_data is not None:
        noise = NOISE_KEY if eps is None else NOISE_KEY_MASK
    else:
        noise = NOISE_NONE if eps is None else NOISE_GIVEN
    new_slots, u_hat = jax.ffi.ffi_call(
        "lorl_open_step",
        (jax.ShapeDtypeStruct(slots.shape, jnp.float32), jax.ShapeDtypeStruct((n,), jnp.float32)),
        vmap_method="sequential",
        input_output_aliases={2: 0},
    )(
        g,
        g if p is None else p,
        slots,
        rows,
        jnp.zeros((1,), jnp.float32) if eps is None else eps,
        jnp.zeros((2,), jnp.uint32) if key_data is None else key_data,
        leaf_noise,
        wi,
        bi,
        nets,
        leaf_net,
        jnp.asarray(offsets_array(sizes)),
        hidden=hidden,
        width=width,
        n_out=n_out,
        has_p=p is not None,
        noise=np.int64(noise),
        a1=np.float32(alphas[0]),
        a2=np.float32(alphas[1]),
        a3=np.float32(alphas[2]),
        log_eps=np.float32(log_eps),
        ln_eps=np.float32(ln_eps),
        norm_eps=np.float32(norm_eps),
        cache_logs=cache_logs,
    )
    return new_slots, u_hat


def _centred(layer: Any) -> tuple[Array, Array]:
    w = layer.weight - jnp.mean(layer.weight, axis=0, keepdims=True)
    return w, layer.bias - jnp.mean(layer.bias)


def pack_open_network(net: Any) -> Float[Array, " w"]:
    """One OPEN network's weights in the kernel's packed layout (kernels.cc, `OpenNet`);
    the LayerNorm centring is folded into the layers as in `lorl_optim.MLP`."""
    l0, l1, l2 = net.mlp.layers
    n1, n2 = net.mlp.norms
    w0, b0 = _centred(l0)
    w1, b1 = _centred(l1)
    parts = [
        net.gru.weight_hh.T,
        net.gru.bias_hn,
        w0.T,
        b0,
        n1.scale,
        n1.bias,
        w1.T,
        b1,
        n2.scale,
        n2.bias,
        l2.weight.T,
        l2.bias,
    ]
    return jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in parts])


def pack_optim4rl(opt: Any) -> Float[Array, " w"]:
    """Optim4RL's weights in the kernel's packed layout (kernels.cc, `O4Net`)."""
    parts = []
    for gru, mlp in ((opt.gru1, opt.mlp1), (opt.gru2, opt.mlp2)):
        parts += [gru.weight_ih.T, gru.bias_ih, gru.weight_hh.T, gru.bias_hn]
        for layer in mlp.layers:
            parts += [layer.weight.T, layer.bias]
    return jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in parts])


def optim4rl_step(
    g: Float[Array, " n"],
    slots: Float[Array, "s n"],
    net: Float[Array, " w"],
    *,
    hidden: int,
    widths: tuple[int, int],
    learning_rate: float,
    clip: float,
    sign_bias: float,
    eps1: float,
    eps2: float,
) -> tuple[Float[Array, "s n"], Float[Array, " n"]]:
    """Optim4RL's per-parameter networks and `delta_theta` (the kernel `lorl_optim4rl_step`).

    **Arguments:** flat gradient, state, packed weights (`pack_optim4rl`) and the static
    configuration.

    **Returns:**

    `(new slots, delta_theta)`.
    """
    new_slots, delta = jax.ffi.ffi_call(
        "lorl_optim4rl_step",
        (
            jax.ShapeDtypeStruct(slots.shape, jnp.float32),
            jax.ShapeDtypeStruct(g.shape, jnp.float32),
        ),
        vmap_method="sequential",
        input_output_aliases={1: 0},
    )(
        g,
        slots,
        net,
        hidden=hidden,
        width1=widths[0],
        width2=widths[1],
        lr=np.float32(learning_rate),
        clip=np.float32(clip),
        sign_bias=np.float32(sign_bias),
        eps1=np.float32(eps1),
        eps2=np.float32(eps2),
    )
    return new_slots, delta


def math_op(x: Float[Array, " n"], op: str) -> Float[Array, " n"]:
    """The kernel's approximation of `op` ("exp", "log", "sigmoid", "tanh", "rsqrt")
    applied elementwise (for tests of the documented error bounds).

    **Arguments:**

    - `x`: float32 vector.
    - `op`: the function's name.

    **Returns:**

    The approximated values.
    """
    _require_kernel()
    index = ("exp", "log", "sigmoid", "tanh", "rsqrt").index(op)
    return jax.ffi.ffi_call("lorl_math", jax.ShapeDtypeStruct(x.shape, jnp.float32))(
        x, op=np.int64(index)
    )


# ------------------------------------------------------------------- backend selection

BACKENDS = ("auto", "xla", "fused")


def fused_wanted(backend: str, dtype: Any) -> bool:
    """Whether an optimizer with this `backend` field should use the fused kernel for
    parameters of `dtype` (float32 only; builds the kernel on first use).

    **Arguments:**

    - `backend`: "auto", "xla" or "fused".
    - `dtype`: the flat parameter dtype.

    **Returns:**

    True to use the fused path (on CPU; "auto" still runs XLA on other platforms).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == "xla" or jnp.dtype(dtype) != jnp.float32:
        return False
    return available()


def run_core(
    opt: Any,
    data: Any,
    xla_core: Any,
    fused_core: Any,
    sizes: tuple[int, ...],
    backend: str,
    use_fused: bool,
) -> Any:
    """`xla_core(opt, data, sizes)`, computed by `fused_core` when `use_fused`.

    The fused path is a `jax.custom_jvp` whose JVP rule is the JVP of the XLA core, so
    forward- and reverse-mode derivatives (meta-gradients) are those of the XLA
    implementation. With `backend="auto"` the kernel is chosen per lowering platform
    (`jax.lax.platform_dependent`): CPU runs the kernel, other platforms the XLA core.

    **Arguments:**

    - `opt`: the optimizer module (its arrays are the meta-parameters).
    - `data`: pytree of arrays (None allowed) read by both cores.
    - `xla_core`, `fused_core`: functions `(opt, data, sizes) -> outputs`.
    - `sizes`: static leaf sizes.
    - `backend`: the optimizer's `backend` field.
    - `use_fused`: result of `fused_wanted` and the optimizer's own support check.

    **Returns:**

    The core's outputs.
    """

    def xla(o: Any, d: Any) -> Any:
        return xla_core(o, d, sizes)

    if not use_fused:
        return xla(opt, data)

    def fused(o: Any, d: Any) -> Any:
        return fused_core(o, d, sizes)

    @jax.custom_jvp
    def core(o: Any, d: Any) -> Any:
        if backend == "fused":
            return fused(o, d)
        return jax.lax.platform_dependent(o, d, cpu=fused, default=xla)

    @core.defjvp
    def _core_jvp(primals: Any, tangents: Any) -> Any:
        return jax.jvp(xla, primals, tangents)

    return core(opt, data)
