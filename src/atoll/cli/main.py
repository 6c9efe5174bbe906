"""The ``atoll`` command. Commands parse their arguments and call the SDK or the node; the
work happens there."""

from __future__ import annotations

import sys

import typer

from atoll.cli import assets, backup, chain, compute, demo, keys, node, policy, publish, receipt
from atoll.cli.common import err
from atoll.errors import AtollError

app = typer.Typer(
    name="atoll",
    help="Compute-to-Data: send an algorithm to the data, get back only the results.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("init")(node.init)
app.command("serve")(node.serve)
app.command("demo")(demo.demo)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
app.add_typer(keys.app, name="keys")
app.add_typer(publish.app, name="publish")
app.add_typer(assets.app, name="assets")
app.add_typer(compute.app, name="compute")
app.add_typer(chain.app, name="chain")
app.add_typer(policy.app, name="policy")
app.add_typer(receipt.app, name="receipt")
app.add_typer(node.operator_app, name="operator")


def main() -> None:
    try:
        app()
    except AtollError as exc:
        # one line whatever the terminal's width: scripts and logs read it as one
        err.print(f"[red]error:[/red] {exc.message}", soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
