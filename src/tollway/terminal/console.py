"""The console tables are printed on: the terminal's width, or a wide one when output is piped.

Rich assumes 80 columns when stdout is not a terminal, which folds or truncates money columns; a
report piped to a file or another program must keep every figure whole.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console

PIPED_WIDTH = 240


def output_console(**options: Any) -> Console:
    """A console for tables; `options` go to rich's Console (e.g. highlight=False)."""
    console = Console(**options)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(width=PIPED_WIDTH, **options)
    return console
