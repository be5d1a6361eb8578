"""JSON for every file widthdepth writes (verdict.json, allocation.json): JSON has no NaN or
infinity, so NaN (undefined: no problem reached the cell) becomes null and an infinite value (a
cost never reached) becomes the string "inf" or "-inf", which the report reads back as "never".

    json.dumps(json_safe({"accuracy": math.nan, "ratio": math.inf}))   # {"accuracy": null, "ratio": "inf"}
"""

from __future__ import annotations

import math
from typing import Any


def json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
