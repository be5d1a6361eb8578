"""Vega-Lite in and out of the page: the JavaScript that draws the figures (vega, vega-lite and
vega-embed, bundled by vl-convert once per vl-convert version and kept in the user's cache, so a
report is one self-contained file that works offline) and PNG export for papers (`report --static`).

    script = javascript()                       # ≈ 0.9 MB, inlined once per report
    png = to_png(spec, {"cells": rows})         # the figure as the page would draw it, default settings
"""

from __future__ import annotations

import contextlib
import functools
import os

from widthdepth.backends.embedded import cache_dir


@functools.lru_cache(maxsize=1)
def javascript() -> str:
    """The bundle (vega-embed, vega-lite, vega; globals `vegaEmbed`, `vega`, `vegaLite`): from the user's
    cache (`backends.embedded.cache_dir`, as the assembled models), else bundled now (about 2 s) and kept
    there. Where the cache cannot be written (a read-only home) the bundle is made again by each process."""
    import vl_convert

    path = cache_dir() / f"vega-bundle-{vl_convert.__version__}.js"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    script = vl_convert.javascript_bundle()
    partial = path.with_suffix(f".{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(script, encoding="utf-8")
        partial.replace(path)  # atomic: two reports bundling at once both leave a whole file
    except OSError:  # an unwritable cache costs the 2 s again, nothing else; no half file is left
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return script


def to_png(spec: dict, datasets: dict[str, list[dict]], scale: float = 2.0) -> bytes:
    """The figure as PNG, its interactive settings at their defaults."""
    import vl_convert

    return vl_convert.vegalite_to_png({**spec, "datasets": datasets}, scale=scale)
