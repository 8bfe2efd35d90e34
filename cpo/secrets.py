"""Masking of secrets: API keys and tokens from the environment never reach logs or reports."""

from __future__ import annotations

import re
from collections.abc import Mapping

# Environment variable names whose values are secrets.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION", re.IGNORECASE)
# Values this short are too likely to occur by chance ("1", "true") to be worth masking.
_MIN_LEN = 8
MASK = "****"


class Masker:
    """Replaces every secret value found in the environment by `****`."""

    def __init__(self, env: Mapping[str, str]) -> None:
        values = sorted(
            {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= _MIN_LEN},
            key=len,
            reverse=True,  # longest first, so a secret containing another is masked whole
        )
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)
