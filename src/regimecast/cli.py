"""The ``regimecast`` command line: a thin shell over the library functions.

Every command turns a :class:`~regimecast.errors.RegimecastError` into one line on stderr and a
non-zero exit code; tracebacks are kept for real bugs.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from regimecast.errors import RegimecastError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Bayesian regime-switching forecasts of the macro liquidity cycle.",
)

log = logging.getLogger("regimecast")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")) -> None:
    _setup_logging(verbose)


_DATA_HELP = "Data store folder (default: $REGIMECAST_DATA, else ./data)."


@app.command()
def fetch(
    series: Annotated[
        list[str] | None,
        typer.Option(
            "--series",
            "-s",
            help="Series to download (repeatable; default: all): CPIAUCSL, IWM, ^RUT...",
        ),
    ] = None,
    data: Annotated[str | None, typer.Option("--data", help=_DATA_HELP)] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait per download.")
    ] = 30.0,
) -> None:
    """Download FRED series and Yahoo daily bars into the data store and update manifest.json."""
    from rich.console import Console
    from rich.table import Table

    from regimecast.data import fetch as fetch_data
    from regimecast.data import resolve_store

    store = resolve_store(data)
    written = fetch_data(store, series or None, timeout=timeout)
    table = Table(title=f"fetched into {store}")
    for col in ("file", "rows", "first", "last observation", "sha256"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for rel, e in written.items():
        table.add_row(
            rel, str(e["rows"]), e["first_observation"], str(e["last_observation"]), e["sha256"][:12]
        )
    Console().print(table)
    typer.echo(f"manifest: {store / 'manifest.json'}")


@app.command()
def panel(
    data: Annotated[str | None, typer.Option("--data", help=_DATA_HELP)] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Last month to use, YYYY-MM (nothing later is read).")
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="Write the panel to this CSV file (atomically).")
    ] = None,
    min_months: Annotated[
        int, typer.Option("--min-months", help="Fail unless this many complete macro months exist.")
    ] = 0,
) -> None:
    """Build the monthly panel; print its range, missing months and last observations; save it."""
    import math

    from rich.console import Console
    from rich.table import Table

    from regimecast.data import (
        load_panel,
        require_history,
        resolve_store,
        summarize_panel,
        write_panel_csv,
    )
    from regimecast.data.columns import MACRO_COLUMNS

    store = resolve_store(data)
    df = load_panel(store, as_of=as_of)
    if min_months:
        require_history(df, min_months, what="the panel (--min-months)", columns=MACRO_COLUMNS)
    console = Console()
    console.print(
        f"panel {df.index[0]:%Y-%m} .. {df.index[-1]:%Y-%m}: {len(df)} months x {df.shape[1]} "
        f"columns (store {store}, as-of {df.attrs['as_of']})"
    )
    src = Table(title="sources (after the as-of cut)")
    for col in ("series", "file", "frequency", "first", "last observation"):
        src.add_column(col)
    for key, info in df.attrs["sources"].items():
        src.add_row(key, info["file"], info["frequency"], str(info["first"]), str(info["last"]))
    console.print(src)
    summ = summarize_panel(df)
    tab = Table(title="panel columns")
    for col in ("column", "first", "last", "missing", "missing months", "last value"):
        tab.add_column(col, justify="right" if col in ("missing", "last value") else "left")
    for name, r in summ.iterrows():
        v = r["last_value"]
        tab.add_row(
            str(name),
            str(r["first"]),
            str(r["last"]),
            str(r["missing"]),
            r["missing_months"],
            "" if v is None or math.isnan(v) else f"{v:,.4g}",
        )
    console.print(tab)
    console.print(
        f"balance sheet: BOGMBASE before {df.attrs['balance_sheet_splice']}; small-cap volume: "
        f"^RUT x {df.attrs['volume_ratio']:.5g} before {df.attrs['volume_splice']} "
        f"({df.attrs['volume_overlap_months']} overlap months)"
    )
    if out:
        path = write_panel_csv(df, out)
        typer.echo(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``regimecast`` script."""
    try:
        app(args=argv, standalone_mode=False)
    except RegimecastError as err:
        typer.echo(f"error: {err}", err=True)
        return err.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except Exception as err:  # click usage errors
        import click

        if isinstance(err, click.ClickException):
            err.show()
            return err.exit_code
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
