"""Test modules share code only through tests/support/: no module under tests/ (or bench/) imports a test
module or a conftest, so each helper has one home and moving or deleting a test breaks no other."""

from __future__ import annotations

from tests.support.repo import ROOT, imports, module_name

SUPPORT = ROOT / "tests" / "support"


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    sources = sorted([*ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/**/*.py")])
    private = {
        module_name(path)
        for path in sources
        if path.is_relative_to(ROOT / "tests")
        and path.name != "__init__.py"
        and not path.is_relative_to(SUPPORT)
    }
    crossing = sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sources
        for module in imports(path) & private
        if module != module_name(path)
    )
    assert crossing == [], "shared helpers belong in tests/support/:\n" + "\n".join(crossing)
