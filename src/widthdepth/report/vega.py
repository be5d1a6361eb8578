"""Vega-Lite in and out of the page: the JavaScript that draws the figures (vega, vega-lite and
vega-embed, bundled by vl-convert once per vl-convert version and kept in the user's cache, so a
report is one self-contained file that works offline) and PNG export for papers (`report --static`).

    script = javascript()                       # ≈ 0.9 MB, inlined once per report
    png = to_png(spec, {"cells": rows})         # the figure as the page would draw it, default settings
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "widthdepth"


_SCRIPT: str | None = None


def javascript() -> str:
    """The bundle (vega-embed, vega-lite, vega; globals `vegaEmbed`, `vega`, `vegaLite`): from the cache,
    or bundled now (about 2 s) and cached where the cache folder is writable."""
    global _SCRIPT
    if _SCRIPT is not None:
        return _SCRIPT
    import vl_convert

    path = _cache_dir() / f"vega-bundle-{vl_convert.__version__}.js"
    try:
        _SCRIPT = path.read_text(encoding="utf-8")
        return _SCRIPT
    except OSError:
        pass
    _SCRIPT = vl_convert.javascript_bundle()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False) as handle:
            handle.write(_SCRIPT)
        os.replace(handle.name, path)  # atomic: two reports bundling at once both leave a whole file
    except OSError:
        pass  # a read-only home: bundled again next time
    return _SCRIPT


def to_png(spec: dict, datasets: dict[str, list[dict]], scale: float = 2.0) -> bytes:
    """The figure as PNG, its interactive settings at their defaults."""
    import vl_convert

    return vl_convert.vegalite_to_png({**spec, "datasets": datasets}, scale=scale)
