"""The composition root: settings in, a running provider (+ operator + engine) out.

Everything is wired here and only here; components receive what they need and never read
settings or the environment themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from fastapi import FastAPI
from sqlalchemy import Engine as DbEngine
from sqlalchemy.engine import make_url
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from atoll import faults
from atoll.catalog.roots import DataRoot, DataRoots
from atoll.catalog.store import AssetStore
from atoll.chain.access_ledger import AccessLedger
from atoll.chain.deployment import ChainNode
from atoll.chain.embedded import EmbeddedChain
from atoll.chain.keeper import Keeper
from atoll.chain.keeper_turn import KeeperTurn
from atoll.chain.ledger import AgreementLedger
from atoll.chain.rpc_server import rpc_router
from atoll.config import Settings
from atoll.db import connect
from atoll.db.channel import StoreChannel
from atoll.db.lease import AdvisoryLease
from atoll.engine.executor import Executor, SandboxUnavailable
from atoll.engine.jobstore import JobStore
from atoll.engine.notify import Notifier
from atoll.engine.runner import Engine, EngineConfig
from atoll.engine.sweeper import ResultSweeper
from atoll.errors import ConfigError, Unavailable
from atoll.images.store import ImageStore
from atoll.integrity import (
    RESTORE,
    StoreMarker,
    check_chain_file,
    check_identity,
    check_sqlite_store,
)
from atoll.models.job import JobInfo
from atoll.operator.registry import LocalRegistry, WorkflowRegistry
from atoll.provider.access import AccessService
from atoll.provider.agreements import AgreementAuthorizer
from atoll.provider.app import create_provider_app
from atoll.provider.auth import RequestAuth
from atoll.provider.compute import ComputeService
from atoll.provider.containers import ImageRules
from atoll.provider.dryrun import DryRuns
from atoll.provider.hosts import HostRules
from atoll.provider.job_end import OncePerJob
from atoll.provider.metrics import Metrics
from atoll.provider.mock import MockData
from atoll.provider.outcomes import JobOutcomes, Outcome
from atoll.provider.publishing import PublishingService
from atoll.provider.ratelimit import RateLimits
from atoll.provider.registrar import DidRegistrar
from atoll.provider.review import OutputReview
from atoll.provider.review_store import ReviewStore
from atoll.provider.routes.common import ProviderContext
from atoll.provider.starts import reconcile_starts
from atoll.provider.watcher import JobWatcher
from atoll.signing import Key
from atoll.storage import LocalResults, ResultStore
from atoll.storage.cache import SourceCache
from atoll.storage.guard import Limits, SourcePolicy
from atoll.storage.remote import RemoteInputs
from atoll.storage.sources import Inputs
from atoll.ui.app import mount_ui
from atoll.ui.sessions import SessionStore
from atoll.web.limits import RequestLimits
from atoll.web.nonces import NonceStore

if TYPE_CHECKING:
    from atoll.cluster.sources import SourceRules

#: the uid and gid jobs run as without a uid range
NOBODY = 65534


def job_user(settings: Settings) -> tuple[int, int]:
    """The uid and gid a job's files are judged readable by: the first of the job uid range
    (every job uid has the same rights), or nobody's without a range."""
    if settings.sandbox_uid_count > 0:
        return settings.sandbox_uid_first, settings.sandbox_uid_first
    return NOBODY, NOBODY


def default_executor(settings: Settings, remote: RemoteInputs | None = None) -> Executor:
    if settings.cluster_scheduler:
        return cluster_executor(settings, remote)
    from atoll.engine.sandbox import SandboxExecutor

    first, count = settings.sandbox_uid_first, settings.sandbox_uid_count
    return SandboxExecutor(
        cgroup_name=sandbox_name(settings),
        uid_range=(first, first + count - 1) if count > 0 else None,
    )


def sandbox_name(settings: Settings) -> str:
    """The local sandbox's name (its cgroup parent): one per node directory, so that
    recovery after a crash clears this node's leftovers only, never the jobs of another
    node on the same host."""
    node_id = hashlib.sha256(str(settings.jobs_dir.resolve()).encode()).hexdigest()[:12]
    return f"atoll-{node_id}"


def image_store(settings: Settings) -> ImageStore | None:
    """The node's images, pulled from the registries the operator lists and unpacked under
    ``home``; None when none is listed (a job naming an image is then refused)."""
    if not settings.image_registries:
        return None
    return ImageStore(
        settings.image_registries,
        settings.images_dir,
        cache_bytes=settings.image_cache_mb * 1024**2,
    )


def cluster_executor(settings: Settings, remote: RemoteInputs | None = None) -> Executor:
    """Jobs sent to the Dask cluster at ``cluster_scheduler``, over its mutual TLS; their
    URL and S3 sources (``remote``) are fetched on the workers, under its rules."""
    if importlib.util.find_spec("distributed") is None:
        raise ConfigError("cluster_scheduler is set, but: pip install 'atoll[cluster]'")
    from atoll.cluster import address
    from atoll.cluster.certs import security
    from atoll.cluster.executor import DaskExecutor
    from atoll.cluster.sources import WorkerSources

    try:
        address.scheduler(settings.cluster_scheduler)
    except ValueError as e:
        raise ConfigError(f"setting 'cluster_scheduler': {e}") from None
    try:
        sec = security(settings.cluster_certs, "client")
    except FileNotFoundError as e:
        raise ConfigError(f"{e}; create them with: atoll cluster certs") from None
    return DaskExecutor(
        settings.cluster_scheduler,
        sec,
        job_uid=job_user(settings)[0],
        start_timeout=settings.cluster_start_timeout,
        reconnect_timeout=settings.cluster_reconnect_timeout,
        data_roots=(
            [DataRoot.parse(r).path for r in settings.data_roots]
            if settings.cluster_data_on_workers
            else ()
        ),
        sources=None if remote is None else WorkerSources(remote, source_rules(settings)),
    )


def source_limits(settings: Settings) -> Limits:
    return Limits(
        max_bytes=settings.source_max_mb * MIB,
        total_seconds=settings.source_timeout_seconds,
        stall_seconds=settings.source_stall_seconds,
        min_bytes_per_second=settings.source_min_bytes_per_second,
    )


def source_rules(settings: Settings) -> SourceRules:
    """The operator's rules for URL and S3 sources, as they travel to a cluster's workers."""
    from atoll.cluster.sources import SourceRules

    return SourceRules(
        settings.source_hosts,
        settings.source_private_networks,
        settings.source_buckets,
        source_limits(settings),
    )


@dataclass
class OperatorNode:
    """The operator-service + engine half: a registry over a store and a sandbox."""

    db: DbEngine
    jobs: JobStore
    engine: Engine
    registry: LocalRegistry
    #: deletes results past their storage time (started and stopped with the server)
    sweeper: ResultSweeper
    #: on PostgreSQL: job changes passed to and from the other replicas sharing the store
    channel: StoreChannel | None = None


MIB = 1024**2


def remote_inputs(settings: Settings) -> RemoteInputs | None:
    """URL and S3 dataset sources as the operator allows them, with their cache under
    ``home``; None when it allows none (no host, no bucket)."""
    if not settings.source_hosts and not settings.source_buckets:
        return None
    policy = SourcePolicy(
        settings.source_hosts,
        settings.source_private_networks,
        source_limits(settings),
        buckets=settings.source_buckets,
    )
    cache = SourceCache(settings.source_cache_dir, settings.source_cache_mb * MIB)
    return RemoteInputs(policy, cache)


def build_operator(
    settings: Settings,
    db: DbEngine,
    executor: Executor | None = None,
    remote: RemoteInputs | None = None,
) -> OperatorNode:
    """The operator and its engine; ``remote``: the URL and S3 sources the provider in the
    same process already opened, so that one cache (and its fetch locks) serves both."""
    environments = settings.compute_environments()
    for env in environments:
        if not Path(env.runtime_interpreter).is_absolute():
            raise ConfigError(f"environment {env.id!r}: the runtime interpreter must be absolute")
    notifier = Notifier()
    channel = None
    if db.dialect.name == "postgresql":

        def heard(job_id: str) -> None:
            notifier.heard(job_id)
            engine.heard(job_id)

        channel = StoreChannel(db, heard=heard, lost=notifier.heard_all)
        notifier.relay = channel.send
    jobs = JobStore(db, node=settings.replica_name)
    config = EngineConfig(
        jobs_dir=settings.jobs_dir,
        environments=environments,
        max_attempts=settings.max_attempts,
        max_output_files=settings.max_output_files,
        max_output_name_bytes=settings.max_output_name_bytes,
        job_user=job_user(settings),
        node_disk_bytes=settings.results_node_disk_mb * 1024**2,
    )
    settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    if remote is None:
        remote = remote_inputs(settings)
    executor = executor or default_executor(settings, remote)
    engine = Engine(
        jobs,
        executor,
        config,
        notifier,
        inputs=Inputs(engine_remote(executor, remote)),
        results=result_store(settings),
        # the cache of fetched inputs is on this node's disk too
        inputs_usage=remote.cache.size if remote is not None else None,
        images=image_store(settings),
    )
    sweeper = ResultSweeper(jobs, engine, settings.results_sweep_seconds)
    return OperatorNode(db, jobs, engine, LocalRegistry(jobs, engine, notifier), sweeper, channel)


def engine_remote(executor: Executor, remote: RemoteInputs | None) -> RemoteInputs | None:
    """The engine's URL and S3 sources: a cluster's executor has its workers fetch them."""
    on_workers = getattr(executor, "sources", None)
    return on_workers if isinstance(on_workers, RemoteInputs) else remote


def result_store(settings: Settings) -> ResultStore:
    """Where results and logs are kept: under ``home`` (the default) or in the publisher's
    S3 bucket, with the keys of the settings or the server's standard AWS credential chain
    (never handed to a job: its environment is its own)."""
    if settings.results_store != "s3":
        return LocalResults(settings.jobs_dir)
    from atoll.storage.s3_client import S3Credentials, S3Location, make_client
    from atoll.storage.s3_results import S3Results

    location = S3Location.parse(settings.results_s3)
    keys = None
    if settings.results_s3_access_key_id:
        keys = S3Credentials(
            settings.results_s3_access_key_id, settings.results_s3_secret_access_key
        )
    return S3Results(location, make_client(location, keys))


@dataclass
class ProviderNode:
    settings: Settings
    db: DbEngine
    key: Key
    context: ProviderContext
    operator: OperatorNode | None
    chain: ChainNode
    keeper: Keeper
    authorizer: AgreementAuthorizer
    watcher: JobWatcher
    #: on PostgreSQL: runs the keeper while this replica holds the keeper's lease
    keeper_turn: KeeperTurn | None = None

    def claim_sandbox(self) -> None:
        if self.operator is not None:
            claim_sandbox(self.operator)

    def start_keeper(self) -> None:
        if self.keeper_turn is not None:
            self.keeper_turn.start()
        else:
            self.keeper.start()

    def stop_keeper(self) -> None:
        if self.keeper_turn is not None:
            self.keeper_turn.stop()
        else:
            self.keeper.stop()

    def app(self) -> FastAPI:
        settings = self.settings
        job_routes = (
            "/api/services/compute",
            "/api/services/initializeCompute",
            "/api/services/dryrun",
        )
        app = create_provider_app(
            self.context,
            RequestLimits(
                body_bytes=settings.max_body_bytes,
                route_bytes={path: settings.max_job_body_bytes for path in job_routes},
                json_depth=settings.max_json_depth,
                json_values=settings.max_json_values,
            ),
            RateLimits(settings.rate_limit_per_ip, settings.rate_limit_per_address),
            Metrics(JobStore(self.db)),
        )
        if isinstance(self.chain.chain, EmbeddedChain):
            app.include_router(rpc_router(self.chain.chain, on_transaction=self.keeper.poke))
        mount_ui(app, self.context, SessionStore(self.db, settings.ui_session_seconds))
        if settings.trusted_proxies:
            # outermost: the rate limits and the access log see the client the proxy names
            app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
        node = self

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            if node.operator is not None:
                if node.operator.channel is not None:
                    await anyio.to_thread.run_sync(node.operator.channel.start)
                node.operator.engine.recover()
                node.operator.sweeper.start()
            await reconcile_starts(node.authorizer.ledger, node.context.compute.registry)
            await anyio.to_thread.run_sync(node.start_keeper)
            running = await anyio.to_thread.run_sync(node.authorizer.ledger.running_jobs)
            await node.watcher.resume(running)
            yield
            await node.watcher.close()
            node.stop_keeper()
            if node.operator is not None:
                node.operator.sweeper.stop()
                node.operator.engine.shutdown()
                if node.operator.channel is not None:
                    node.operator.channel.stop()
            if node.context.review is not None:
                node.context.review.close()
            node.chain.close()
            close_store(node.db)

        app.router.lifespan_context = lifespan
        return app


def open_store(settings: Settings) -> DbEngine:
    """The store, once it has shown itself whole (SQLite) and at the newest schema."""
    url = make_url(settings.db_url) if settings.db_url.startswith("sqlite") else None
    if url is not None and url.database and url.database != ":memory:":
        check_sqlite_store(Path(url.database), StoreMarker.load(settings.home))
    return connect(settings.db_url)


def open_checked_chain(settings: Settings, db: DbEngine, key: Key) -> ChainNode:
    """The chain, once its file (embedded) is whole and the store says it is this node's."""
    if not settings.chain_url:
        check_chain_file(settings.chain_file)
    try:
        chain = ChainNode.open(
            settings.chain_url, settings.chain_file, settings.address_book_file, key.private_key
        )
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"the chain file cannot be opened ({exc}): {RESTORE}") from None
    try:
        check_identity(settings.home, db, chain, key.address)
        chain.ensure_access(settings.address_book_file)
    except BaseException:
        chain.close()
        db.dispose()
        raise
    return chain


def close_store(db: DbEngine) -> None:
    """Checkpoint a SQLite store's log into the file and close every connection, so that
    ``atoll.db`` alone holds everything."""
    if db.dialect.name == "sqlite":
        with contextlib.suppress(Exception), db.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()


def build_provider(settings: Settings, executor: Executor | None = None) -> ProviderNode:
    try:
        faults.arm(settings.crash_at)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    key = Key.load(settings.provider_key_file)
    db = open_store(settings)
    chain = open_checked_chain(settings, db, key)
    remote = remote_inputs(settings)
    operator: OperatorNode | None = None
    registry: WorkflowRegistry
    if settings.operator_url:
        from atoll.operator.client import OperatorClient

        registry = OperatorClient(settings.operator_url, key)
    else:
        operator = build_operator(settings, db, executor, remote)
        registry = operator.registry
    assets = AssetStore(db)
    ledger = AgreementLedger(db, node=settings.replica_name)
    access_ledger = AccessLedger(db)
    keeper = Keeper(
        chain,
        ledger,
        assets.exists,
        settle_margin=settings.settle_margin_seconds,
        access=access_ledger,
        files_of=lambda did: len(assets.files(did)),
    )
    environments = settings.compute_environments()
    derived_dir = settings.home / "derived"
    review = OutputReview(ReviewStore(db), assets, registry, key)
    if remote is not None:
        review.local_copy = remote.local_copy
    if operator is not None:
        # the checks of a job's files begin as soon as its engine has kept them, and of its
        # log as soon as its sandbox has exited
        operator.engine.on_published = review.check_soon
        operator.engine.on_exited = review.log_soon
    outcomes = JobOutcomes(
        db,
        assets,
        key,
        chain,
        {e.id: e for e in environments},
        derived_dir,
        settings.endpoint,
        settings.compute_timeout_seconds,
        review,
    )

    async def job_ended(info: JobInfo) -> Outcome:
        # the receipt first: its hash is what the keeper records on chain. A crash anywhere
        # here leaves the job "running" in the ledger, so the watcher hands it on again at
        # the next start, and each step finds what the last run already did.
        faults.point("end.ended")

        def record(outcome: Outcome) -> None:
            faults.point("end.outcome")
            keeper.job_ended(info, outcome.receipt.receipt.sha256())
            faults.point("end.recorded")

        # recorded in the worker thread that stores the receipt: one trip fewer for
        # everyone waiting to hear of the end
        return await outcomes.finish(info, registry, then=record)

    # the watcher and every waiting client ask at once when a job ends: handled once
    job_end = OncePerJob(job_ended)
    watcher = JobWatcher(registry, job_end)
    authorizer = AgreementAuthorizer(chain, ledger, watcher)
    nonces = NonceStore(db)
    roots = DataRoots.from_settings(settings.data_roots, settings.home)
    hosts = HostRules(settings.network_hosts, settings.network_private_hosts)
    images = ImageRules(settings.image_registries)
    publishing = PublishingService(
        assets=assets,
        endpoint=settings.endpoint,
        publishers=set(settings.publishers) | {key.address},
        default_timeout=settings.compute_timeout_seconds,
        default_price=settings.default_price,
        registrar=DidRegistrar(chain),
        hosts=hosts,
        roots=roots,
        job_user=job_user(settings),
        remote=remote,
        images=images,
    )
    compute = ComputeService(
        assets=assets,
        registry=registry,
        authorizer=authorizer,
        environments=environments,
        hosts=hosts,
        roots=roots,
        job_user=job_user(settings),
        held_dir=derived_dir,
        images=images,
    )
    context = ProviderContext(
        publishing=publishing,
        compute=compute,
        auth=RequestAuth(nonces),
        nonces=nonces,
        provider_address=key.address,
        chain=chain,
        chain_url=settings.chain_url,
        outcomes=outcomes,
        on_job_end=job_end,
        review=review,
    )
    context.access = AccessService(chain, access_ledger, assets, Inputs(remote), keeper.poke)
    context.mocks = MockData(db, assets, settings.home / "mock")
    context.dryruns = DryRuns(
        db,
        compute,
        context.mocks,
        settings.dry_run_rate_limit,
        settings.dry_run_concurrency,
        review.checker,
    )
    turn = None
    if db.dialect.name == "postgresql":
        holder = f"atoll-keeper {settings.replica_name}".strip()
        turn = KeeperTurn(keeper, AdvisoryLease(db, "keeper", holder))
    return ProviderNode(
        settings, db, key, context, operator, chain, keeper, authorizer, watcher, turn
    )


def claim_sandbox(operator: OperatorNode) -> None:
    """Claim the local sandbox's name on this host before the node serves: a node
    directory served twice would otherwise have its second process clear away the first's
    running jobs as leftovers. Unavailable when another process holds it."""
    from atoll.engine.sandbox import SandboxExecutor

    executor = operator.engine.executor
    if isinstance(executor, SandboxExecutor):
        try:
            executor.claim()
        except SandboxUnavailable as e:
            raise Unavailable(f"this node cannot run jobs: {e}") from None


def operator_app(
    settings: Settings, allowed: set[str], executor: Executor | None = None
) -> FastAPI:
    """The standalone Operator-Service: its own engine, reached only by allowed callers."""
    from atoll.operator.http import create_operator_app

    if not allowed:
        raise ConfigError("no caller is allowed: give the provider's address (--allow ADDRESS)")
    db = connect(settings.db_url)
    operator = build_operator(settings, db, executor)
    claim_sandbox(operator)
    app = create_operator_app(operator.registry, NonceStore(db), allowed)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if operator.channel is not None:
            await anyio.to_thread.run_sync(operator.channel.start)
        operator.engine.recover()
        operator.sweeper.start()
        yield
        operator.sweeper.stop()
        operator.engine.shutdown()
        if operator.channel is not None:
            operator.channel.stop()

    app.router.lifespan_context = lifespan
    return app
