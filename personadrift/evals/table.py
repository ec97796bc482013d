"""Printing rate tables (base rates, eval results) and AUROC sweeps with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def rates_table(rates: dict, title: str) -> Table:
    labels: list[str] = []
    for row in rates.values():
        labels += [k for k in row if k not in labels and k != "n"]
    table = Table(title=title)
    table.add_column("family")
    for lab in labels:
        table.add_column(lab, justify="right")
    table.add_column("n", justify="right")
    for fam, row in rates.items():
        cells = [f"{row[lab]:.3f}" if lab in row else "" for lab in labels]
        table.add_row(fam, *cells, str(row["n"]))
    return table


def sweep_table(layers: dict, title: str) -> Table:
    """Per-layer AUROC: one column per family of the answer direction, and the pre direction."""
    table = Table(title=title)
    table.add_column("layer", justify="right")
    fams = list(next(iter(layers["answer"].values())))
    for fam in fams:
        table.add_column(f"answer/{fam}", justify="right")
    table.add_column("pre (turns>=2)", justify="right")
    for layer, row in layers["answer"].items():
        pre = layers["pre"][layer]
        table.add_row(str(layer), *[_auroc_cell(row[f]) for f in fams], _auroc_cell(pre))
    return table


def _auroc_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def show(*tables: Table) -> None:
    console = Console()
    for t in tables:
        console.print(t)
