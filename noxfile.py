"""Every check a contributor or CI runs.

A bare `nox` runs what CI runs: `lint`, one `tests` session per package (each in a fresh
environment holding only that package, its lorl dependencies and its test extra -- this
proves the package installs and works alone), `multidevice` (8 forced host CPU devices)
and `docs`. Slow studies live behind the
`slow` marker (`nox -s slow`).
"""

import re
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).parent
PACKAGES_DIR = ROOT / "packages"
PYTHON = "3.11"


def _packages() -> dict[str, Path]:
    """Distribution name -> package folder, for every package in the monorepo."""
    found = {}
    for pyproject in sorted(PACKAGES_DIR.glob("*/pyproject.toml")):
        meta = tomllib.loads(pyproject.read_text())["project"]
        found[meta["name"]] = pyproject.parent
    return found


def _req_name(req: str) -> str:
    return re.split(r"[\s;\[<>=!~]", req.strip(), maxsplit=1)[0]


def _local_closure(name: str, packages: dict[str, Path]) -> list[str]:
    """Monorepo packages that `name` (with its `test` extra) needs, dependencies first.

    pip cannot find unpublished lorl packages on an index, so the sessions install them
    from their folders, in dependency order, before the package under test.
    """
    order: list[str] = []

    def visit(dist: str, with_test_extra: bool) -> None:
        if dist in order:
            return
        meta = tomllib.loads((packages[dist] / "pyproject.toml").read_text())["project"]
        reqs = list(meta.get("dependencies", []))
        if with_test_extra:
            reqs += meta.get("optional-dependencies", {}).get("test", [])
        for req in reqs:
            if _req_name(req) in packages:
                visit(_req_name(req), False)
        order.append(dist)

    visit(name, True)
    return order


def _module(dist: str) -> str:
    return dist.replace("-", "_")


PACKAGES = _packages()


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and basedpyright over every package."""
    session.install("ruff>=0.8", "basedpyright>=1.20")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    for dist in PACKAGES:
        session.install("-e", str(PACKAGES[dist]))
    session.run("basedpyright")


def _run_package_tests(session: nox.Session, package: str, marker: str) -> None:
    """Install `package` alone (with its lorl dependencies) and run its tests."""
    closure = _local_closure(package, PACKAGES)
    for dist in closure[:-1]:
        session.install(str(PACKAGES[dist]))
    session.install(f"{PACKAGES[package]}[test]")
    module = _module(package)
    session.run(
        "pytest",
        f"tests/{module}",
        f"--jaxtyping-packages={module},beartype.beartype",
        "-m",
        marker,
        *session.posargs,
    )


@nox.session(python=PYTHON)
@nox.parametrize("package", list(PACKAGES))
def tests(session: nox.Session, package: str) -> None:
    """The package's tests, in a fresh environment holding only that package."""
    _run_package_tests(session, package, "not slow")


@nox.session(python=PYTHON)
def multidevice(session: nox.Session) -> None:
    """Multi-device logic of `lorl` on the CPU: 8 forced host devices must give the same
    results as 1 device (tests/multidevice; each test also checks the device count)."""
    closure = _local_closure("lorl", PACKAGES)
    for dist in closure[:-1]:
        session.install(str(PACKAGES[dist]))
    session.install(f"{PACKAGES['lorl']}[test]")
    session.run(
        "pytest",
        "tests/multidevice",
        "--jaxtyping-packages=lorl,beartype.beartype",
        "-m",
        "not slow",
        *session.posargs,
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"},
    )


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation; warnings are errors."""
    session.install(
        "mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.27", "ruff>=0.8"
    )
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip


@nox.session(python=PYTHON, default=False)
@nox.parametrize("package", list(PACKAGES))
def slow(session: nox.Session, package: str) -> None:
    """The slow studies of one package (not part of CI)."""
    _run_package_tests(session, package, "slow")
