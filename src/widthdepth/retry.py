"""One retry policy for everything widthdepth asks of a server (generation, reward scores).

Retried: timeouts, connection errors, malformed responses and HTTP 408/409/429/5xx. Retry k waits a
uniform draw from [0, min(BACKOFF_CAP, BACKOFF_BASE * 2**k)] seconds (exponential backoff with full
jitter), or what the server asks for in ``Retry-After`` / ``retry-after-ms`` (capped at
RETRY_AFTER_CAP). Not retried: other 4xx; 401/403/404 stop the run (a key, model or URL that
retrying cannot fix). Also the checks of server settings in a spec (no secrets, no unknown names,
finite numbers), shared by the openai: backend and the reward verifier.
"""

from __future__ import annotations

import email.utils
import math
import random
import time

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
FATAL_STATUS = {401: "the server refused the API key (pass --api-key or set $WIDTHDEPTH_API_KEY)",
                403: "the server refused access with this API key",
                404: "the server has no such model or endpoint (check MODEL and URL, e.g. http://host:port/v1)"}
BACKOFF_BASE, BACKOFF_CAP, RETRY_AFTER_CAP = 0.25, 20.0, 60.0


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """How long to wait before retry number `attempt` (0-based)."""
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_CAP)
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt) * random.random()


def retry_after_seconds(headers: object) -> float | None:
    """Seconds asked for by ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            return max(0.0, parsed.timestamp() - time.time())
    return None


class RequestFailed(Exception):
    """A call that retrying did not fix (or may not be retried); `reason` is stored with the attempt."""

    def __init__(self, reason: str, fatal: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.fatal = reason, fatal


def gave_up(reason: str, tries: int) -> RequestFailed:
    return RequestFailed(f"{reason} (gave up after {tries} tr{'y' if tries == 1 else 'ies'})")


# -- settings shared by everything that talks to a server ------------------------------------------
def check_server_settings(where: str, params: dict[str, str], valid: set[str]) -> None:
    """Refuse secrets in a spec (it is stored with the run) and unknown settings, in one line."""
    from widthdepth.errors import WidthdepthError

    for secret in ("api_key", "key", "token"):
        if secret in params:
            raise WidthdepthError(f"{where}: {secret}= would be stored with the run; pass --api-key or set "
                                  "$WIDTHDEPTH_API_KEY (or api_key_env=NAME)")
    unknown = sorted(set(params) - valid)
    if unknown:
        raise WidthdepthError(f"{where}: unknown setting {unknown[0]!r} (valid: {', '.join(sorted(valid))})")


def setting_number(where: str, params: dict[str, str], name: str, default: float, low: float) -> float:
    """A finite number ≥ `low` from params[name] (or `default`), as the default's type."""
    from widthdepth.errors import WidthdepthError

    text = params.get(name)
    if text is None:
        return default
    try:
        number = float(text)
        value = type(default)(number) if math.isfinite(number) else None
    except ValueError:
        value = None
    if value is None or value < low:
        raise WidthdepthError(f"{where}: {name}={text!r} must be a number ≥ {low:g}")
    return value
