"""The client loads none of the provider's heavy parts: importing the SDK, building the CLI's
help, and commands that only talk to a provider (its chain included) run without them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import running_provider

#: what a node needs and a client must not load (py-evm's package is ``eth``)
HEAVY = ("sqlalchemy", "eth", "vyper", "py_ecc", "web3", "aiohttp", "fastapi", "eth_account")

REPORT = f"""
import json, sys
heavy = {HEAVY!r}
print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""


def _loaded(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", code + REPORT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return loaded


def test_importing_the_sdk_loads_nothing_of_the_provider() -> None:
    code = (
        "import atoll, atoll.sdk\n"
        "from atoll.sdk import ProviderClient, Wallet\n"
        "from atoll import Key, Metadata, ComputePolicy, JobInfo, JobStatus, SignedReceipt\n"
        "from atoll import Agreement, AtollError\n"
    )
    assert _loaded(code) == []


def test_the_cli_help_loads_nothing_of_the_provider() -> None:
    code = (
        "from atoll.cli.main import run\n"
        "for args in (['--help'], ['compute', '--help'], ['compute', 'run', '--help'],\n"
        "             ['serve', '--help'], ['chain', '--help']):\n"
        "    assert run(args) == 0, args\n"
    )
    assert _loaded(code) == []


def test_provider_commands_of_the_cli_load_nothing_of_the_provider(tmp_path: Path) -> None:
    """Asking a provider for jobs, its chain and your balances on it (through the chain's
    JSON-RPC) stays thin, heavy as the provider serving it is."""
    with running_provider(tmp_path / "home") as p:
        key = tmp_path / "key"
        key.write_text("0x" + p.consumer._key().private_key.hex())
        code = (
            "from atoll.cli.main import run\n"
            f"common = ['--provider', {p.url!r}, '--key', {str(key)!r}]\n"
            "assert run(['compute', 'list', *common]) == 0\n"
            "assert run(['chain', 'status', '--json', *common]) == 0\n"
        )
        assert _loaded(code) == []
