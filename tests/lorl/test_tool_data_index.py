"""`tools/data_index.py`: `docs/data/index.md` lists every recorded JSON file with what
produced it; a file added or moved without regenerating the index fails here."""

import importlib.util
import pathlib

import pytest

_TOOL = pathlib.Path(__file__).resolve().parents[2] / "tools" / "data_index.py"


@pytest.fixture(scope="module")
def tool():
    if not _TOOL.is_file():
        pytest.skip("tools/ is not part of this checkout")
    spec = importlib.util.spec_from_file_location("data_index", _TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_index_is_current(tool):
    assert tool.INDEX.is_file(), "run python tools/data_index.py"
    assert tool.INDEX.read_text() == tool.render(), "run python tools/data_index.py"


def test_every_file_is_listed_with_a_producer(tool):
    text = tool.render()
    files = sorted(tool.DATA.rglob("*.json"))
    assert files, "no recorded data found"
    for path in files:
        rel = path.relative_to(tool.DATA).as_posix()
        row = next(line for line in text.splitlines() if line.startswith(f"| [{rel}]("))
        assert "(not recorded)" not in row, f"{rel}: no producer known; add to PRODUCERS"


def test_stale_index_is_detected(tool, tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "x").mkdir(parents=True)
    (data / "x" / "bench_optim_new.json").write_text('{"command": "python tools/bench_optim.py"}')
    monkeypatch.setattr(tool, "DATA", data)
    monkeypatch.setattr(tool, "INDEX", data / "index.md")
    text = tool.render()
    row = "| [x/bench_optim_new.json](x/bench_optim_new.json) | `python tools/bench_optim.py` |"
    assert row in text
    (data / "index.md").write_text(text)
    (data / "x" / "study_open_2.json").write_text("{}")
    assert tool.render() != text  # a new file changes the index
    assert "tools/study_meta_open.py" in tool.render()
