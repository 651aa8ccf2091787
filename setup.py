"""Build hook: the dashboard's browser libraries are installed from package.json (npm ci)
and copied into the package's static folder before the package is built
(tools/build_assets.py). Without Node.js the package still builds and runs; the dashboard
then says which assets are missing and how to add them. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _assets() -> None:
    spec = importlib.util.spec_from_file_location(
        "build_assets", ROOT / "tools" / "build_assets.py"
    )
    if spec is None or spec.loader is None or not (ROOT / "package.json").is_file():
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not module.missing():
        return
    try:
        module.build()
    except RuntimeError as exc:
        print(f"warning: dashboard assets not built: {exc}", file=sys.stderr)


class BuildPy(build_py):
    """build_py that first makes the dashboard's vendored assets."""

    def run(self) -> None:
        _assets()
        super().run()


setup(cmdclass={"build_py": BuildPy})
