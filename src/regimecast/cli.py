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
    logger = logging.getLogger("regimecast")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def _quiet_third_party_warnings() -> None:
    """Warnings users can do nothing about (BLAS linkage, ArviZ's refactor notice)."""
    import warnings

    warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
    warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")


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
        f"{df.attrs['volume_series']} (IWM as a cross-check column)"
    )
    if out:
        path = write_panel_csv(df, out)
        typer.echo(f"wrote {path}")


_CONFIG_HELP = "TOML model configuration (default: the packaged copy of models/default.toml)."


DrawsOpt = Annotated[int | None, typer.Option("--draws", help="Override sampler.draws of the config.")]
TuneOpt = Annotated[int | None, typer.Option("--tune", help="Override sampler.tune of the config.")]
ChainsOpt = Annotated[int | None, typer.Option("--chains", help="Override sampler.chains of the config.")]


def _sampler_overrides(draws, tune, chains) -> dict:
    return {k: v for k, v in {"draws": draws, "tune": tune, "chains": chains}.items() if v is not None}


@app.command()
def fit(
    config: Annotated[str | None, typer.Option("--config", help=_CONFIG_HELP)] = None,
    data: Annotated[str | None, typer.Option("--data", help=_DATA_HELP)] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Last month of data to use, YYYY-MM.")] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="Run directory (default runs/fit-<as-of>-<time>).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed + data = same numbers).")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing run directory.")] = False,
    allow_unconverged: Annotated[
        bool, typer.Option("--allow-unconverged", help="Exit 0 even if the convergence gate fails.")
    ] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Fit the synthetic demo economy.")] = False,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    chains: ChainsOpt = None,
) -> None:
    """Fit the macro-regime x policy-state model and write a run directory."""
    from regimecast.config import load_config
    from regimecast.workflow import default_run_dir, fit_run, gate_error

    cfg = load_config(config)
    overrides = _sampler_overrides(draws, tune, chains)
    if overrides:
        cfg = cfg.replace(sampler=overrides)
    run_dir = out or default_run_dir("fit", as_of, demo)
    outcome = fit_run(cfg, out=run_dir, data=data, as_of=as_of, seed=seed, force=force, demo=demo)
    d = outcome.fit.diagnostics
    typer.echo(
        f"fit {outcome.manifest['as_of']}: r-hat max {d.r_hat_max:.3f}, bulk ESS min {d.ess_bulk_min:.0f}, "
        f"tail ESS min {d.ess_tail_min:.0f}, divergences {d.divergences}, sampling {d.sampling_seconds:.0f} s"
    )
    typer.echo(f"wrote {outcome.run_dir}/ (posterior.nc, regimes.csv, diagnostics.json, manifest.json)")
    if outcome.problems and not allow_unconverged:
        raise gate_error(outcome.problems, outcome.run_dir)


@app.command()
def forecast(
    config: Annotated[str | None, typer.Option("--config", help=_CONFIG_HELP)] = None,
    data: Annotated[str | None, typer.Option("--data", help=_DATA_HELP)] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Forecast origin, YYYY-MM.")] = None,
    horizon: Annotated[int | None, typer.Option("--horizon", help="Months ahead (default 24).")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Run directory for the forecast.")] = None,
    from_run: Annotated[
        str | None, typer.Option("--from-run", help="Reuse a fitted run directory instead of fitting.")
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option("--scenario", help="Hypothetical prints, e.g. 'cpi_mom_ann:2024-04=0.0,2024-05=-1.0'."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing run directory.")] = False,
    allow_unconverged: Annotated[
        bool, typer.Option("--allow-unconverged", help="Forecast even if the fit fails its gate.")
    ] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Run on the synthetic demo economy.")] = False,
    auto_data: Annotated[
        bool,
        typer.Option("--auto-data", help="Fetch into an empty store first; fall back to --demo when offline."),
    ] = False,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    chains: ChainsOpt = None,
) -> None:
    """Fit (or reuse --from-run), forecast the months ahead, and write events, fan charts and a report."""
    from rich.console import Console
    from rich.progress import Progress

    from regimecast.config import load_config
    from regimecast.report import headline_table
    from regimecast.workflow import forecast_run

    console = Console(stderr=True)
    if auto_data and not demo and from_run is None:
        demo = not _ensure_data(data, console)
    cfg = None
    if config is not None or any(v is not None for v in (draws, tune, chains)):
        cfg = load_config(config)
        overrides = _sampler_overrides(draws, tune, chains)
        if overrides:
            cfg = cfg.replace(sampler=overrides)
    if demo:
        console.print("[bold red]SYNTHETIC DEMO DATA[/]: not a forecast; the economy is simulated.")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("simulating paths", total=None)

        def progress(i: int, n: int) -> None:
            bar.update(task, completed=i, total=n)

        outcome = forecast_run(
            config=cfg, out=out, data=data, as_of=as_of, horizon=horizon, from_run=from_run,
            seed=seed, force=force, allow_unconverged=allow_unconverged, scenario=scenario,
            demo=demo, progress=progress,
        )
    if demo:
        typer.echo("*** SYNTHETIC DEMO DATA - not a forecast ***")
    typer.echo(headline_table(outcome.summary))
    typer.echo(f"report: {outcome.run_dir / 'report.html'} (and report.md, events.csv, fan_*.png)")


@app.command()
def backtest(
    start: Annotated[str, typer.Option("--start", help="First origin, YYYY-MM.")],
    end: Annotated[str, typer.Option("--end", help="Last origin, YYYY-MM.")],
    out: Annotated[str, typer.Option("--out", help="Backtest directory (origins/, scores, report).")],
    config: Annotated[str | None, typer.Option("--config", help=_CONFIG_HELP)] = None,
    data: Annotated[str | None, typer.Option("--data", help=_DATA_HELP)] = None,
    every: Annotated[int, typer.Option("--every", help="Months between origins.")] = 3,
    horizon: Annotated[int, typer.Option("--horizon", help="Months ahead at each origin.")] = 24,
    refit: Annotated[str, typer.Option("--refit", help="auto | always | every:N")] = "auto",
    scheduler: Annotated[
        str, typer.Option("--scheduler", help="local (a LocalCluster), none (this process) or tcp://host:port.")
    ] = "local",
    workers: Annotated[int, typer.Option("--workers", help="Worker processes of the local cluster.")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted backtest.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Delete an existing backtest and start again.")] = False,
) -> None:
    """Real-time forecasts at past origins, scored against what happened and against baselines."""
    from rich.console import Console
    from rich.progress import Progress

    from regimecast.backtest.run import run_backtest
    from regimecast.config import load_config
    from regimecast.data import resolve_store

    cfg = load_config(config)
    bar = Progress(console=Console(stderr=True), transient=True)
    task = bar.add_task("origins", total=None)

    def progress(i: int, n: int) -> None:  # the bar starts with the first origin, after every check
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=i, total=n)

    try:
        outcome = run_backtest(
            cfg, store=resolve_store(data), out=out, start=start, end=end, every=every, horizon=horizon,
            refit=refit, scheduler=None if scheduler == "none" else scheduler, workers=workers, seed=seed,
            resume=resume, force=force, progress=progress,
        )
    finally:
        if bar.live.is_started:
            bar.stop()
    methods = outcome.origins["method"].value_counts().to_dict()
    typer.echo(f"{len(outcome.origins)} origins: " + ", ".join(f"{n} {m}" for m, n in sorted(methods.items())))
    typer.echo(f"report: {outcome.out / 'report.html'} (and origins.csv, scores.csv, timeline.png)")


@app.command()
def update(
    from_run: Annotated[str, typer.Option("--from-run", help="The run to update (made by fit, forecast or update).")],
    data: Annotated[str | None, typer.Option("--data", help=_DATA_HELP)] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Last month of data to take in, YYYY-MM (default: latest).")
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="New run directory (default: beside the parent, update-<as-of>-<time>).")
    ] = None,
    refit: Annotated[
        str, typer.Option("--refit", help="auto: refit when the weights cannot be trusted; always; never.")
    ] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Random seed (resampling, forecast).")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing run directory.")] = False,
    allow_unconverged: Annotated[
        bool, typer.Option("--allow-unconverged", help="Update a parent that failed its gate; keep a failed refit.")
    ] = False,
) -> None:
    """Take new prints into a run: reweight its posterior (or refit), forecast, and say what changed."""
    from regimecast.update import print_summary, update_run

    outcome = update_run(from_run, data=data, as_of=as_of, out=out, refit=refit, seed=seed, force=force,
                         allow_unconverged=allow_unconverged)
    typer.echo(print_summary(outcome))
    if outcome.run_dir is not None:
        typer.echo(f"wrote {outcome.run_dir}/ (posterior.nc, forecast, report, news.csv, changes.csv, changes.md)")


def _ensure_data(data: str | None, console) -> bool:
    """True when the store holds data (fetching into it when empty); False when none is reachable."""
    from regimecast.data import fetch as fetch_data
    from regimecast.data import resolve_store
    from regimecast.errors import FetchError

    store = resolve_store(data)
    if (store / "fred" / "CPIAUCSL.csv").is_file():
        return True
    console.print(f"data store {store} is empty: fetching from FRED and Yahoo ...")
    try:
        fetch_data(store, None)
        return True
    except FetchError as err:
        console.print(
            f"[yellow]no data reachable[/] ({err}).\n"
            "Run `regimecast fetch` when online, or point --data / REGIMECAST_DATA at a data store.\n"
            "Running on the synthetic demo economy instead (--demo)."
        )
        return False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``regimecast`` script."""
    _quiet_third_party_warnings()
    try:
        app(args=argv, standalone_mode=False)
    except RegimecastError as err:
        typer.echo(f"error: {err}", err=True)
        return err.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except typer.Exit as err:
        return int(err.exit_code or 0)
    except Exception as err:
        # usage errors of typer's (vendored) click: one line, like every other error
        if hasattr(err, "format_message") and isinstance(getattr(err, "exit_code", None), int):
            ctx = getattr(err, "ctx", None)
            where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            typer.echo(f"error: {err.format_message()}{where}", err=True)
            return err.exit_code
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
