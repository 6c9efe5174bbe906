"""The ``atoll`` command. Commands parse their arguments and call the SDK or the node; the
work happens there."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

# typer carries its own copy of click; its exceptions are the ones raised
from typer._click import exceptions as click

import atoll
from atoll.cli import (
    access,
    assets,
    backup,
    chain,
    cluster,
    compute,
    demo,
    keys,
    mock,
    policy,
    publish,
    receipt,
    serve,
)
from atoll.cli.common import console, err
from atoll.cli.exits import EPILOG, ERROR, INTERNAL, INTERRUPTED, USAGE
from atoll.cli.review import app as review_app
from atoll.cli.ui import app as ui_app
from atoll.cli.untrusted import markup
from atoll.errors import AtollError

app = typer.Typer(
    name="atoll",
    help="Compute-to-Data: send an algorithm to the data, get back only the results.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # click's plain help: option names are never cut to fit a narrow terminal
    rich_markup_mode=None,
)
app.command("init")(serve.init)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
app.add_typer(keys.app, name="keys")
app.add_typer(publish.app, name="publish")
app.add_typer(assets.app, name="assets")
app.add_typer(compute.app, name="compute")
app.add_typer(access.app, name="access")
app.add_typer(chain.app, name="chain")
app.add_typer(policy.app, name="policy")
app.add_typer(receipt.app, name="receipt")
app.add_typer(mock.app, name="mock")
app.add_typer(review_app, name="review")
app.add_typer(ui_app, name="ui")
app.add_typer(cluster.app, name="cluster")
app.command("worker")(cluster.worker)
app.add_typer(serve.operator_app, name="operator")


def _version(value: bool) -> None:
    if value:
        console.print(f"atoll {atoll.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    pass


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {markup(message)}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else ""


def _first_problem(exc: Any) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def run(args: Sequence[str]) -> int:
    """Run the command line ``args``; every error a user can cause ends here as one line on
    stderr and an exit status from :mod:`atoll.cli.exits`."""
    command = typer.main.get_command(app)
    try:
        code = command.main(list(args), prog_name="atoll", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        console.print(exc.ctx.get_help(), markup=False, highlight=False)
        return 0
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "atoll"
        _fail(f"{exc.format_message()} (see: {where} --help)")
        return USAGE
    except click.ClickException as exc:
        _fail(exc.format_message())
        return exc.exit_code
    except typer.Abort:
        return INTERRUPTED
    except AtollError as exc:
        _fail(exc.message)
        return ERROR
    except KeyboardInterrupt:
        return INTERRUPTED
    except OSError as exc:
        # a file the user named: missing, unreadable, a directory, a full disk
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"{exc.strerror or type(exc).__name__}{where}")
        return ERROR
    except Exception as exc:
        return _unexpected(exc)
    return code if isinstance(code, int) else 0


def _unexpected(exc: Exception) -> int:
    # pydantic and httpx are looked for only where a command loaded them: an exception of
    # theirs cannot come from a command that never did, and --help stays free of them
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        _fail(f"invalid {exc.title}: {_first_problem(exc)}")
        return ERROR
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(exc, httpx.HTTPError | httpx.InvalidURL):
        _fail(f"cannot talk to the provider ({type(exc).__name__}: {_first_line(exc)})")
        return ERROR
    # a fault in atoll, not the user's doing: still one line, naming what to report
    _fail(f"internal error ({type(exc).__name__}: {_first_line(exc)})")
    return INTERNAL


def main() -> None:
    sys.exit(run(sys.argv[1:]))
