"""Install the dashboard's browser libraries from package.json and copy them into the package.

    python3 tools/build_assets.py          # npm ci, then copy (run by setup.py's build_py too)
    python3 tools/build_assets.py --check  # exit 1 when a vendored file is missing

The libraries (htmx, Chart.js, GrapesJS and its MJML plugin) are declared in package.json
with their lockfile, installed by ``npm ci`` from the npm registry into node_modules/, and
their distributed builds are copied into ``src/courriel/web/dashboard/static/vendor/``,
which the dashboard serves itself (never a CDN: the server works with no internet). That
folder is not committed (.gitignore); this script makes it. It needs Node.js and npm.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "src" / "courriel" / "web" / "dashboard" / "static" / "vendor"
# node_modules path -> name in vendor/
FILES = {
    "htmx.org/dist/htmx.min.js": "htmx.min.js",
    "chart.js/dist/chart.umd.min.js": "chart.umd.min.js",
    "grapesjs/dist/grapes.min.js": "grapes.min.js",
    "grapesjs/dist/css/grapes.min.css": "grapes.min.css",
    "grapesjs-mjml/dist/index.js": "grapesjs-mjml.min.js",
}


def missing() -> list[str]:
    """The vendored files that are not there."""
    return [name for name in FILES.values() if not (VENDOR / name).is_file()]


def build(*, install: bool = True) -> None:
    """``npm ci`` (when asked), then copy the distributed files into vendor/.

    Raises:
        RuntimeError: npm is not installed, ``npm ci`` failed, or a file is missing.
    """
    modules = ROOT / "node_modules"
    if install:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not installed: the dashboard's assets need Node.js and npm")
        result = subprocess.run(  # noqa: S603 - a fixed command, no shell
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"npm ci failed with exit status {result.returncode}")
    VENDOR.mkdir(parents=True, exist_ok=True)
    for source, name in FILES.items():
        path = modules / source
        if not path.is_file():
            raise RuntimeError(f"{path} is missing after npm ci")
        shutil.copyfile(path, VENDOR / name)


def main() -> int:
    """Command line: build, or --check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether vendor/ is complete")
    parser.add_argument("--no-install", action="store_true", help="copy from node_modules only")
    args = parser.parse_args()
    if args.check:
        gone = missing()
        for name in gone:
            print(f"missing: {VENDOR / name}", file=sys.stderr)
        return 1 if gone else 0
    try:
        build(install=not args.no_install)
    except RuntimeError as exc:
        print(f"build_assets: {exc}", file=sys.stderr)
        return 1
    print(f"dashboard assets in {VENDOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
