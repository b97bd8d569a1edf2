"""Terminal tables that fit the screen without cutting a figure: key columns always, others while they fit.

Why: rich squeezes a table that is too wide by truncating cells (`2…`, `0.001…`), which turns figures
into lies of omission. Here every column is measured first. Key columns are always shown and numbers are
never wrapped or cut; secondary columns are added, in the order given, while the table still fits the
console, and the caption names the ones left out. `--wide` shows every column: the table is then as wide
as it needs to be, and a terminal narrower than that wraps the lines rather than losing characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

BORDER_PER_COLUMN = 3  # one space of padding each side and one rule between columns
BORDER_EDGE = 1


WRAPPED_MIN = 8  # a wrapping column (names) keeps at least this many characters a line


@dataclass(frozen=True, slots=True)
class Column:
    """One column: key columns are always shown; numbers are never broken.

    wrap: names, which may fold anywhere onto more lines. phrase: cells of several words (a figure with a
    remark), which may break only between words. rank orders the secondary columns by importance
    (lowest first) when it differs from their place.
    """

    header: str
    key: bool = False
    left: bool = False
    wrap: bool = False
    phrase: bool = False
    rank: int = 0


@dataclass(slots=True)
class TableSpec:
    """A table before it meets a screen: rows are lists of cells (rich markup allowed); None starts a section."""

    title: str
    columns: list[Column]
    rows: list[list[str] | None] = field(default_factory=list)
    caption: str | None = None

    def add_row(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def add_section(self) -> None:
        self.rows.append(None)


def _cell_width(cell: str) -> int:
    return Text.from_markup(cell).cell_len


def natural_widths(spec: TableSpec) -> list[int]:
    """Each column's width with nothing cut or wrapped."""
    widths = [_cell_width(column.header) for column in spec.columns]
    for row in spec.rows:
        for index, cell in enumerate(row or ()):
            widths[index] = max(widths[index], _cell_width(cell))
    return widths


def longest_words(spec: TableSpec) -> list[int]:
    """Each column's longest word: the narrowest a phrase column can be without breaking a figure."""
    widths = [max(map(_cell_width, column.header.split() or [""])) for column in spec.columns]
    for row in spec.rows:
        for index, cell in enumerate(row or ()):
            words = Text.from_markup(cell).plain.split() or [""]
            widths[index] = max(widths[index], *map(len, words))
    return widths


def chosen_columns(spec: TableSpec, width: int, wide: bool) -> list[int]:
    """Indexes of the columns to show: all with `wide`, else the key ones and then any others that fit."""
    if wide:
        return list(range(len(spec.columns)))
    widths = [w + BORDER_PER_COLUMN for w in natural_widths(spec)]
    chosen = {i for i, column in enumerate(spec.columns) if column.key}
    used = BORDER_EDGE + sum(widths[i] for i in chosen)
    for index in sorted(range(len(spec.columns)), key=lambda i: spec.columns[i].rank):
        if index in chosen:
            continue
        if used + widths[index] > width:
            break  # the order given is the order of importance: no later, narrower column jumps the queue
        chosen.add(index)
        used += widths[index]
    return sorted(chosen)


def build(spec: TableSpec, width: int, wide: bool) -> tuple[Table, int]:
    """The rich Table for a console `width` columns wide, and the width the table needs at least."""
    shown = chosen_columns(spec, width, wide)
    natural, words = natural_widths(spec), longest_words(spec)
    hidden = [spec.columns[i].header for i in range(len(spec.columns)) if i not in shown]
    caption = spec.caption
    if hidden:
        note = f"not shown at {width} columns: {', '.join(hidden)} (--wide shows every column)"
        caption = f"{caption}\n{note}" if caption else note
    table = Table(title=spec.title, caption=caption, header_style="bold")
    needed = BORDER_EDGE
    for index in shown:
        column = spec.columns[index]
        justify: Literal["left", "right"] = "left" if column.left else "right"
        if (column.wrap or column.phrase) and not wide:
            least = words[index] if column.phrase else min(natural[index], WRAPPED_MIN)
            table.add_column(column.header, justify=justify, overflow="fold", min_width=least)
            needed += least + BORDER_PER_COLUMN
        else:
            table.add_column(column.header, justify=justify, no_wrap=True, min_width=natural[index])
            needed += natural[index] + BORDER_PER_COLUMN
    for row in spec.rows:
        if row is None:
            table.add_section()
        else:
            table.add_row(*(row[i] for i in shown))
    full = BORDER_EDGE + sum(natural[i] + BORDER_PER_COLUMN for i in shown)
    return table, full if wide else needed


def print_fitted(console: Console, specs: Sequence[TableSpec], wide: bool) -> None:
    """Print each table fitted to the console; wider than the console only when nothing else keeps it whole."""
    screen = console.width
    for spec in specs:
        table, needed = build(spec, screen, wide)
        console.width = max(screen, needed)  # print(width=) is capped at the console's width
        try:
            console.print(table, crop=False)
        finally:
            console.width = screen
