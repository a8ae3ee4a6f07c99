"""Deployment packages of the functions, built by the program from `functions/`.

A package holds the function's own package and the shared one, zipped with fixed timestamps and
permissions in sorted order, so the same sources always give the same bytes and `pulumi up` shows no
change when the code has none.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
BUILD_DIR = Path(__file__).resolve().parent.parent / ".build"
SHARED_PACKAGE = "shared"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def package_sources(function: str, functions_dir: Path = FUNCTIONS_DIR) -> list[tuple[str, Path]]:
    """(archive name, source file) of every file the function's package contains."""
    sources = []
    for package in (function, SHARED_PACKAGE):
        root = functions_dir / package
        if not (root / "__init__.py").is_file():
            raise FileNotFoundError(f"{root} is not a Python package")
        for path in sorted(root.rglob("*.py")):
            sources.append((path.relative_to(functions_dir).as_posix(), path))
    return sources


def build_package(function: str, functions_dir: Path = FUNCTIONS_DIR, build_dir: Path = BUILD_DIR) -> Path:
    """Write `<build_dir>/<function>.zip` and return its path."""
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"{function}.zip"
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in package_sources(function, functions_dir):
            entry = zipfile.ZipInfo(name, date_time=_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    partial.replace(target)
    return target
