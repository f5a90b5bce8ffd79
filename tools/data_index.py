"""Write `docs/data/index.md`: every recorded benchmark and study JSON under `docs/data/`,
what produced it and the page that discusses it (issue 20 item 7).

"Produced by" is the file's own `command` field where it records one (the exact command
that wrote it, possibly with an older output path); otherwise the tool that writes files
of that name (`PRODUCERS`, by file-name prefix). "Discussed in" lists the docs pages
that mention the file. `--check` exits non-zero, without writing, when the index is out
of date (a JSON file added, moved or removed since the index was written).

    python tools/data_index.py            # rewrite docs/data/index.md
    python tools/data_index.py --check    # CI-style check
"""

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "data"
INDEX = DATA / "index.md"

#: File-name prefix -> the tool that writes such files (for files without a `command`).
PRODUCERS = {
    "bench_quality_": "tools/bench_agents_quality.py",
    "bench_speed": "tools/bench_agents_speed.py",
    "bench_vs_purejaxrl": "tools/bench_vs_purejaxrl.py",
    "bench_meta_gradient": "tools/bench_meta_gradient.py",
    "tune_a2c_": "tools/tune_a2c_baselines.py",
    "throughput": "tools/bench_gridworlds.py (or `lorl-gridworlds bench`)",
    "bench_compile_cache": "tools/bench_compile_cache.py",
    "bench_paper_cost": "tools/bench_paper_cost.py",
    "study_comparison": "`lorl run study/comparison` (report data)",
    "study_sensitivity": "`lorl run study/optim4rl-sensitivity` (report data)",
    "study_open": "tools/study_meta_open.py",
    "study_optim4rl_es": "tools/study_meta_optim4rl_es.py",
    "study_optim4rl": "tools/study_meta_optim4rl.py",
    "bench_optim_ab": "tools/bench_optim_ab.py",
    "bench_optim_layernorm": "tools/bench_optim_layernorm.py",
    "bench_optim": "tools/bench_optim.py",
    "optim4rl_reference_": "the authors' Optim4RL code, run outside the repository",
}


def _producer(path: pathlib.Path) -> str:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = None
    command = data.get("command") if isinstance(data, dict) else None
    if isinstance(command, str) and command.strip():
        text = " ".join(command.split())
        return f"`{text[:160]}{' ...' if len(text) > 160 else ''}`"
    if path.parent.name == "published-open":
        return "tools/published_open_results.py from `lorl run open/published` folders"
    for prefix in sorted(PRODUCERS, key=len, reverse=True):
        if path.name.startswith(prefix):
            return PRODUCERS[prefix]
    return "(not recorded)"


def _pages(path: pathlib.Path) -> list[str]:
    """Docs pages (relative to `docs/data/`) that mention the file by name."""
    out = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        if page == INDEX:
            continue
        if path.name in page.read_text():
            rel = page.relative_to(ROOT / "docs")
            out.append(f"[{rel}](../{rel.as_posix()})")
    return out


def render() -> str:
    """The index page's text."""
    lines = [
        "# Recorded data",
        "",
        "Every benchmark and study result the docs quote, as JSON under `docs/data/<package>/`",
        "(the package whose code it measures; `lorl` for the integration experiments).",
        "Written by `python tools/data_index.py`; a test fails when a file is missing here.",
        "",
    ]
    files = sorted(p for p in DATA.rglob("*.json"))
    groups: dict[str, list[pathlib.Path]] = {}
    for p in files:
        groups.setdefault(p.relative_to(DATA).parts[0], []).append(p)
    for group, paths in groups.items():
        lines += [f"## {group}", "", "| file | produced by | discussed in |", "|---|---|---|"]
        for p in paths:
            rel = p.relative_to(DATA).as_posix()
            pages = ", ".join(_pages(p)) or "–"
            lines.append(f"| [{rel}]({rel}) | {_producer(p)} | {pages} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if the index is out of date")
    args = p.parse_args()
    text = render()
    if args.check:
        if not INDEX.is_file() or INDEX.read_text() != text:
            sys.exit(f"{INDEX} is out of date: run python tools/data_index.py")
        return
    INDEX.write_text(text)
    print(f"wrote {INDEX} ({text.count('](')} links)")


if __name__ == "__main__":
    main()
