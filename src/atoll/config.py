"""One settings object for every component.

Values come, in rising priority, from the defaults below, ``$ATOLL_HOME/settings.toml`` and
``ATOLL_*`` environment variables. Secrets (the database URL, key files) are read here and
handed to the parts that need them; nothing else reads the environment.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atoll.errors import ConfigError
from atoll.home import DEFAULT_PORT, default_home

if TYPE_CHECKING:
    from atoll.images.access import RegistryAccess

    # a pydantic model: built only where environments are read, not by every command
    from atoll.models.environment import Environment


@dataclass(frozen=True)
class Settings:
    """Every setting of a node, with its default; :func:`load_settings` builds one."""

    home: Path = field(default_factory=default_home)
    #: SQLAlchemy URL; empty means SQLite in ``home``
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: the URL written into DDOs as ``serviceEndpoint``; empty means http://host:port
    public_url: str = ""
    #: jobs that run at once on this engine
    max_concurrent_jobs: int = 2
    #: a job interrupted by a restart is re-run this many times, then failed
    max_attempts: int = 2
    #: this provider's name among the replicas sharing one PostgreSQL store (distinct and
    #: stable for each: a restarted replica recovers the jobs started under its name);
    #: empty: the store's only provider
    replica_name: str = ""
    #: "in-process" or the URL of a standalone operator service
    operator_url: str = ""
    #: addresses allowed to call a standalone operator service (the provider's address)
    operator_allowed: tuple[str, ...] = ()
    #: addresses allowed to publish assets on this provider; empty means the provider key only
    publishers: tuple[str, ...] = ()
    #: directories publishers may publish files from: ``"/srv/data"`` for every publisher,
    #: ``"/srv/alice=0xA…|0xB…"`` for those publishers only; none declared, nothing can be
    #: published. Nothing inside ``home`` is ever publishable.
    data_roots: tuple[str, ...] = ()
    #: hosts (``host``, ``host:port``, ``*.domain``) datasets' network allowlists may name;
    #: empty means any public host
    network_hosts: tuple[str, ...] = ()
    #: loopback, private or this host's own addresses allowlists may name all the same
    network_private_hosts: tuple[str, ...] = ()
    #: hosts datasets' URL and S3 sources may be fetched from: ``host``, ``host:port`` or
    #: ``*.domain``, https only unless written ``http://host``, every publisher's unless
    #: followed by ``=0xA…|0xB…``; none listed, no URL source is taken
    source_hosts: tuple[str, ...] = ()
    #: loopback or private addresses (or networks, ``10.0.0.0/8``) a source may lead to all
    #: the same; an IP literal in ``source_hosts`` is listed by that
    source_private_networks: tuple[str, ...] = ()
    #: S3 buckets read with the provider's own AWS credentials when a publisher gives no
    #: keys: ``bucket``, or ``bucket=0xA…|0xB…`` for those publishers only
    source_buckets: tuple[str, ...] = ()
    #: caps on one fetch of a source: its size, its time, and a window in which at least
    #: ``source_min_bytes_per_second`` must come on average (a stall or a trickle fails)
    source_max_mb: int = 10240
    source_timeout_seconds: float = 3600.0
    source_stall_seconds: float = 30.0
    source_min_bytes_per_second: int = 1024
    #: fetched sources kept under ``home``, in MiB; the least recently used go first
    source_cache_mb: int = 20480
    #: interpreter the sandbox runs algorithms with, and the read-only host paths it needs
    runtime_interpreter: str = "/usr/bin/python3"
    runtime_paths: tuple[str, ...] = ()
    job_memory_mb: int = 512
    job_pids: int = 64
    job_cpus: float = 1.0
    job_wall_seconds: float = 600.0
    job_output_mb: int = 256
    job_log_mb: int = 8
    #: a job whose outputs and log files hold more files than this has none of them published
    #: (its log still is); every result is listed in its receipt, so this bounds receipts too
    max_output_files: int = 1000
    #: results whose path (relative to /data/outputs or /data/logs) is longer, in UTF-8
    #: bytes, are left out
    max_output_name_bytes: int = 255
    compute_timeout_seconds: int = 3600
    #: JSON-RPC URL of an EVM node; empty means the embedded chain in ``home``
    chain_url: str = ""
    #: price of a compute service, in the token's smallest unit, when the publisher gives none
    default_price: int = 0
    #: before an agreement's time out, settle what was delivered this many seconds early
    settle_margin_seconds: int = 60
    #: host uids for jobs, one per running job (and gid alike): a range no account uses;
    #: a count of 0 runs every job as uid 65534 (then RLIMIT_NPROC cannot be used)
    sandbox_uid_first: int = 200_000
    sandbox_uid_count: int = 1_000
    #: the Dask scheduler jobs are sent to (``tls://host:port``); empty: jobs run on this
    #: host's own sandbox
    cluster_scheduler: str = ""
    #: the cluster's certificates (``atoll cluster certs``); empty: ``home``/cluster-certs
    cluster_certs_dir: str = ""
    #: seconds a job may wait for a worker of the cluster to start it
    cluster_start_timeout: float = 600.0
    #: seconds the jobs that lost the cluster's scheduler wait for it to answer again (then
    #: they are sent again) before they end interrupted
    cluster_reconnect_timeout: float = 120.0
    #: what an ``atoll worker`` advertises: jobs at once, and MiB of memory for their limits
    #: (0: the host's memory)
    cluster_worker_slots: int = 2
    cluster_worker_memory_mb: int = 0
    #: the files under ``data_roots`` are on the workers that hold them (``atoll worker
    #: --data-root``), not on a filesystem every worker shares: a job runs only where its
    #: datasets are
    cluster_data_on_workers: bool = False
    #: crash tests only: a step boundary (atoll.faults.POINTS) where the process kills itself
    crash_at: str = ""
    #: ``[[environments]]`` tables; none means one "default" environment from the job_*
    #: settings above
    environments: tuple[Environment, ...] = ()
    #: ``[[image_registries]]`` tables (host, username, password, insecure): the only
    #: registries images are pulled from; none listed, no image is pulled
    image_registries: tuple[RegistryAccess, ...] = ()
    #: unpacked images kept under ``home``, in MiB; the least recently used go first
    image_cache_mb: int = 4096
    #: the largest request body the provider reads, and the larger one of the routes that
    #: carry an algorithm's raw code (compute, initializeCompute)
    max_body_bytes: int = 1 << 20
    max_job_body_bytes: int = 4 << 20
    #: JSON bodies nested deeper, or holding more values, are refused before parsing
    max_json_depth: int = 64
    max_json_values: int = 100_000
    #: requests to each unsigned route (faucet, initializeCompute, nonce, asset search), per
    #: client IP and per address, as "N/minute" (several: "N/minute;M/hour"); empty: no limit
    rate_limit_per_ip: str = "300/minute"
    rate_limit_per_address: str = "60/minute"
    #: reverse proxies (addresses or networks) whose X-Forwarded-For names the client; by
    #: default none, so that no caller picks the IP its rate limit is counted against
    trusted_proxies: tuple[str, ...] = ()
    #: dry runs (free jobs on mock data) per address, and how many may run at once in all
    dry_run_rate_limit: str = "3/minute;30/hour"
    dry_run_concurrency: int = 2
    #: how long a dashboard sign-in lasts, in seconds
    ui_session_seconds: float = 8 * 3600.0
    #: the server log's level: critical, error, warning, info (one line per request), debug
    log_level: str = "info"
    #: where results and logs are kept: "local" (under ``home``) or "s3" (``results_s3``)
    results_store: str = "local"
    #: the publisher's bucket and prefix for results: ``s3://bucket/prefix`` with
    #: ``?region=…`` and ``&endpoint=https://host:port`` for an S3-compatible store
    results_s3: str = field(default="", repr=False)
    #: keys for that bucket; empty: the standard AWS credential chain of the server
    results_s3_access_key_id: str = field(default="", repr=False)
    results_s3_secret_access_key: str = field(default="", repr=False)
    #: seconds results are kept after a job ends, for environments that set no
    #: ``storage_expiry`` of their own; 0: kept until the consumer deletes them
    results_storage_expiry: float = 7 * 24 * 3600.0
    #: how often the sweeper looks for results past their storage time, in seconds
    results_sweep_seconds: float = 300.0
    #: the node's space for results, logs and inputs, in MiB: past it, new jobs are refused
    #: (503) until results expire or are deleted; 0: no cap
    results_node_disk_mb: int = 0

    def compute_environments(self) -> list[Environment]:
        from atoll.models.environment import Environment

        if self.environments:
            # an environment that names no storage time of its own keeps the node's
            return [
                e
                if "storage_expiry" in e.model_fields_set
                else e.model_copy(update={"storage_expiry": self.results_storage_expiry})
                for e in self.environments
            ]
        return [
            Environment(
                id="default",
                cpu=self.job_cpus,
                memory_mb=self.job_memory_mb,
                disk_mb=self.job_output_mb,
                log_mb=self.job_log_mb,
                pids=self.job_pids,
                max_duration=self.job_wall_seconds,
                max_jobs=self.max_concurrent_jobs,
                runtime_interpreter=self.runtime_interpreter,
                runtime_paths=list(self.runtime_paths),
                storage_expiry=self.results_storage_expiry,
            )
        ]

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'atoll.db'}"

    @property
    def endpoint(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def provider_key_file(self) -> Path:
        return self.home / "provider.key"

    @property
    def user_key_file(self) -> Path:
        return self.home / "key"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def images_dir(self) -> Path:
        """The cache of unpacked algorithm images (``image_cache_mb`` at most)."""
        return self.home / "images"

    @property
    def chain_file(self) -> Path:
        return self.home / "chain" / "chain.sqlite"

    @property
    def address_book_file(self) -> Path:
        return self.home / "addresses.json"

    @property
    def source_cache_dir(self) -> Path:
        return self.home / "sources"

    @property
    def settings_file(self) -> Path:
        return self.home / "settings.toml"

    @property
    def cluster_certs(self) -> Path:
        """Where the cluster's certificates are kept."""
        return (
            Path(self.cluster_certs_dir) if self.cluster_certs_dir else self.home / "cluster-certs"
        )


_TYPES = {f.name: f for f in fields(Settings)}


def _coerce(name: str, raw: Any) -> Any:
    kind = str(_TYPES[name].type)
    if name == "environments":
        return _environments(raw)
    if name == "image_registries":
        from atoll.images.access import parse_registries

        try:
            return parse_registries(raw)
        except ValueError as exc:
            raise ConfigError(f"setting 'image_registries': {exc}") from None
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith("tuple"):
            if isinstance(raw, str):
                items = tuple(p.strip() for p in raw.split(",") if p.strip())
            else:
                items = tuple(str(p) for p in raw)
            if name == "data_roots":
                _check_roots(items)
            return items
        if kind == "Path":
            return Path(raw).expanduser()
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: {raw!r} is not a valid {kind}") from exc


def _check_roots(entries: tuple[str, ...]) -> None:
    from atoll.catalog.roots import DataRoot

    for entry in entries:
        try:
            DataRoot.parse(entry)
        except ValueError as exc:
            raise ConfigError(f"setting 'data_roots': {exc}") from None


def _environments(raw: Any) -> tuple[Environment, ...]:
    from atoll.models.environment import Environment

    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
        envs = tuple(Environment.model_validate(e) for e in items)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"setting 'environments': {_first_line(exc)}") from None
    ids = [e.id for e in envs]
    if len(set(ids)) != len(ids):
        raise ConfigError("setting 'environments': two environments share an id")
    from atoll.images.allow import allowlist_entry_valid

    for env in envs:
        for n, entry in enumerate(env.images):
            # a typo would match nothing (closed), but say so rather than refuse in silence
            if not allowlist_entry_valid(entry):
                raise ConfigError(
                    f"setting 'environments': {env.id}: images entry {n} is not sha256:<hex>, "
                    "registry/repository or *"
                )
    return envs


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_settings(home: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: defaults < settings.toml < ATOLL_* environment < ``overrides``."""
    base = Settings(home=home) if home is not None else Settings()
    values: dict[str, Any] = {}
    if base.settings_file.exists():
        try:
            data = tomllib.loads(base.settings_file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"settings.toml is not valid TOML: {exc}") from exc
        for key, raw in data.items():
            if key not in _TYPES or key == "home":
                raise ConfigError(f"settings.toml: unknown setting {key!r}")
            values[key] = _coerce(key, raw)
    for name in _TYPES:
        env = os.environ.get(f"ATOLL_{name.upper()}")
        if env is not None and name != "home":
            values[name] = _coerce(name, env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = replace(base, **values)
    _check_output_caps(settings)
    _check_results(settings)
    _check_sources(settings)
    _check_proxies(settings)
    _check_cluster(settings)
    return settings


def _check_cluster(settings: Settings) -> None:
    # the scheduler's address is checked where the cluster's part is loaded (atoll.node)
    if settings.cluster_worker_slots < 1:
        raise ConfigError("setting 'cluster_worker_slots' must be 1 or more")
    if settings.cluster_worker_memory_mb < 0:
        raise ConfigError("setting 'cluster_worker_memory_mb' must be 0 (the host's) or more")
    if settings.cluster_start_timeout <= 0 or settings.cluster_reconnect_timeout <= 0:
        raise ConfigError(
            "settings 'cluster_start_timeout' and 'cluster_reconnect_timeout' must be > 0"
        )


def _check_proxies(settings: Settings) -> None:
    for entry in settings.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"setting 'trusted_proxies': {entry!r} is not an IP address or network"
            ) from None


def _check_results(settings: Settings) -> None:
    if settings.results_store not in ("local", "s3"):
        raise ConfigError("setting 'results_store' must be 'local' or 's3'")
    if settings.results_store == "s3":
        from atoll.storage.s3_client import S3Location

        try:
            S3Location.parse(settings.results_s3)
        except ValueError as exc:
            # the message never repeats the setting: it may hold a bucket or endpoint only
            # the operator should see
            raise ConfigError(f"setting 'results_s3': {exc}") from None
    if bool(settings.results_s3_access_key_id) != bool(settings.results_s3_secret_access_key):
        raise ConfigError(
            "settings 'results_s3_access_key_id' and 'results_s3_secret_access_key' go together"
        )
    if settings.results_storage_expiry < 0:
        raise ConfigError("setting 'results_storage_expiry' must be 0 (kept) or more seconds")
    if settings.results_sweep_seconds <= 0:
        raise ConfigError("setting 'results_sweep_seconds' must be more than 0")
    if settings.results_node_disk_mb < 0:
        raise ConfigError("setting 'results_node_disk_mb' must be 0 (no cap) or more")


def _check_sources(settings: Settings) -> None:
    from atoll.storage.guard import SourcePolicy

    try:
        SourcePolicy(
            settings.source_hosts, settings.source_private_networks, buckets=settings.source_buckets
        )
    except ValueError as exc:
        raise ConfigError(f"source settings: {exc}") from None
    if settings.source_max_mb < 1 or settings.source_cache_mb < 1:
        raise ConfigError("settings 'source_max_mb' and 'source_cache_mb' must be 1 or more")
    if settings.source_stall_seconds <= 0 or settings.source_timeout_seconds <= 0:
        raise ConfigError(
            "settings 'source_stall_seconds' and 'source_timeout_seconds' must be > 0"
        )


def _check_output_caps(settings: Settings) -> None:
    if settings.max_output_files < 1:
        raise ConfigError("setting 'max_output_files' must be 1 or more")
    # room for a useful name, and never a path near PATH_MAX once under the job's directory
    if not 16 <= settings.max_output_name_bytes <= 1024:
        raise ConfigError("setting 'max_output_name_bytes' must be from 16 to 1024")
