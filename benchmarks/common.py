"""What every benchmark does with its numbers: one aligned line each, and a JSON file on
request (``--json FILE``)."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict[str, float], json_path: Path | None) -> None:
    """Print ``result`` one ``name value`` line each; also write it to ``json_path``."""
    width = max(map(len, result), default=0)
    for key, value in result.items():
        print(f"{key:{width}s}  {value:10.3f}")
    if json_path:
        json_path.write_text(json.dumps(result, indent=2) + "\n")
