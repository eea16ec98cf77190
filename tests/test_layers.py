"""The packages form layers, and no import runs upward (function-level imports included):

    common < data, models, losses < tracking < evaluation, train < pseudolabel < scripts

A lower layer that needs something of a higher one is a sign that the thing lives in the wrong
place; this test names each such import with its file and line."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"common": 0, "data": 1, "models": 1, "losses": 1, "tracking": 2, "evaluation": 3, "train": 3,
          "pseudolabel": 4, "webapp": 4, "scripts": 5}


def _imports(path: Path):
    """``(line, top-level package)`` of every absolute import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def upward_imports() -> list[str]:
    found = []
    for package, layer in LAYERS.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, imported in _imports(path):
                if LAYERS.get(imported, -1) > layer:
                    found.append(f"{path.relative_to(ROOT)}:{line}: {package} (layer {layer}) imports {imported} "
                                 f"(layer {LAYERS[imported]})")
    return found


def test_no_import_runs_upward():
    assert upward_imports() == []


def test_the_walk_sees_function_level_imports(tmp_path):
    """The walk itself: an import inside a function body is found too."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tracking.pipeline import Pipeline\n")
    assert list(_imports(module)) == [(2, "tracking")]


def test_every_package_has_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "config"}
    assert packages <= set(LAYERS), f"give {sorted(packages - set(LAYERS))} a layer in LAYERS"
