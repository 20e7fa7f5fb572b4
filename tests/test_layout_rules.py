"""Repository rules that are configuration, not code: how tests are selected and imported."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_slow_tests_are_deselected_by_default_and_run_by_the_test_script():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    addopts = re.search(r"^addopts\s*=\s*(.+)$", pyproject, flags=re.M).group(1)
    assert "-m 'not slow'" in addopts or '-m \\"not slow\\"' in addopts
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert re.search(r"pytest -q -m slow", script), "scripts/test.sh must run the slow tests explicitly"


def test_tests_import_the_apps_only_as_dynmm_edge_apps():
    """`apps` is also importable from the repo root; importing it under that second name makes a
    second copy of every module (own globals, own defaults bound at import)."""
    bad = []
    for f in sorted((ROOT / "tests").rglob("*.py")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(r"\s*(from apps(\.| import)|import apps\b)", line):
                bad.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bad, "import dynmm_edge.apps instead:\n" + "\n".join(bad)
