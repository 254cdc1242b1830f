"""The ``regimecast`` command line: a thin shell over the library functions.

Every command turns a :class:`~regimecast.errors.RegimecastError` into one line on stderr and a
non-zero exit code; tracebacks are kept for real bugs.
"""

from __future__ import annotations

import logging
import sys

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
