"""The layering contract, read from the source (every import, module-level or inside a function).

Layers from the top: runtime, export, avatar, tracking, capture, core. A module imports only
from its own layer or the layers below it. avatar/, export/ and runtime/ use tracking/ only for
face tracking and the face model, never for the shared utilities that belong in core/ (so
those cannot creep back into tracking/). Nothing imports runtime/cli.py: only the entry points
(run_live.py, the `splatcam` script) call it.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("core", "capture", "tracking", "avatar", "export", "runtime")  # bottom to top
# tracking/ modules and names that are plumbing, not face tracking or the face model.
TRACKING_INTERNALS = {"tracking.npz_file", "tracking.native_log", "tracking.download", "tracking.mesh_render"}
SHARED_UTILITIES = {"user_cache_dir", "file_checksum", "write_npz_atomic", "UserError"}


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every absolute import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; use the absolute module name"
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
    return found


def project_imports():
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            for module, names, line in imports(path):
                if module.split(".")[0] in LAYERS:
                    yield layer, f"{path.relative_to(REPO)}:{line}", module, names


def test_every_layer_exists():
    assert all((REPO / layer / "__init__.py").is_file() for layer in LAYERS)


def test_modules_import_only_their_own_layer_or_below():
    upward = [f"{where} ({layer}) imports {module}" for layer, where, module, _ in project_imports()
              if LAYERS.index(module.split(".")[0]) > LAYERS.index(layer)]
    assert not upward, "\n".join(upward)


def test_higher_layers_use_tracking_only_for_faces():
    misuse = []
    for layer, where, module, names in project_imports():
        if layer in ("avatar", "export", "runtime") and module.split(".")[0] == "tracking":
            if module in TRACKING_INTERNALS or module == "tracking.rotations":
                misuse.append(f"{where} imports {module}")
            misuse += [f"{where} imports {name} from {module} (use core/)" for name in names
                       if name in SHARED_UTILITIES]
    assert not misuse, "\n".join(misuse)


def test_nothing_imports_the_cli():
    callers = [where for _, where, module, names in project_imports()
               if module == "runtime.cli" or (module == "runtime" and "cli" in names)]
    assert not callers, "\n".join(callers)
