"""The public API is explicit: __all__ lists exactly the public names (httpx's test, adapted)."""
from __future__ import annotations

import subprocess
import sys

import reliability


def test_all_matches_public_names() -> None:
    import __future__

    public = {name for name, value in vars(reliability).items() if not name.startswith("_")
              and type(value).__name__ != "module" and not isinstance(value, __future__._Feature)}
    assert set(reliability.__all__) == public | {"__version__"}


def test_only_one_module_imports_prometheus_api_client() -> None:
    from pathlib import Path

    root = Path(reliability.__file__).parent
    users = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                   if "prometheus_api_client" in p.read_text())
    assert users == ["source/prom.py"]


def test_import_is_cheap_and_side_effect_free() -> None:
    code = "import sys, reliability; print('scipy' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_no_module_is_over_400_lines() -> None:
    """One module per concept: a module past ~400 lines holds two and should be split at the seam."""
    from pathlib import Path

    root = Path(reliability.__file__).parent
    long = {str(p.relative_to(root)): n for p in root.rglob("*.py")
            if "resources" not in p.parts and (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_each_layer_says_what_it_holds() -> None:
    """`ls reliability/` and each folder's docstring tell the architecture."""
    import importlib

    for layer in ("source", "analysis", "gate", "report"):
        doc = importlib.import_module(f"reliability.{layer}").__doc__ or ""
        assert doc.startswith(f"{layer.capitalize()} layer:"), layer


def test_the_top_level_is_small_and_each_entry_has_a_layer() -> None:
    """`ls reliability/` reads as the architecture: a few modules, every one in the layer contract."""
    import sys
    from pathlib import Path

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    root = Path(reliability.__file__).parent
    modules = sorted(p.stem for p in root.glob("*.py"))
    packages = sorted(p.name for p in root.iterdir() if (p / "__init__.py").exists() and p.name != "resources")
    assert len(modules) <= 10, modules
    pyproject = tomllib.loads((root.parent / "pyproject.toml").read_text())
    contract = next(c for c in pyproject["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    layered = {name.strip().removeprefix("reliability.") for layer in contract["layers"] for name in layer.split("|")}
    unplaced = set(modules + packages) - {"__init__", "__main__"} - layered
    assert unplaced == set(), f"add {sorted(unplaced)} to the layers contract in pyproject.toml"
