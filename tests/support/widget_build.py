"""scripts/build_widgets.py (not a package) loaded as a module, for the widget tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BUILD = Path(__file__).resolve().parents[2] / "scripts" / "build_widgets.py"


def build_module():
    """A fresh module of the build script (a test may monkeypatch its STATIC)."""
    spec = importlib.util.spec_from_file_location("build_widgets", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
