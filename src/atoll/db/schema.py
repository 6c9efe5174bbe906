"""Tables. One metadata for every component, so one URL serves a single-host install."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

assets = Table(
    "assets",
    metadata,
    Column("did", String(80), primary_key=True),
    Column("owner", String(42), nullable=False, index=True),
    Column("type", String(16), nullable=False),
    Column("name", String(256), nullable=False),
    #: lower-cased name, description and author, for text search on any backend
    Column("search_text", Text, nullable=False),
    Column("created", String(32), nullable=False),
    Column("ddo", JSON, nullable=False),
)

asset_tags = Table(
    "asset_tags",
    metadata,
    Column("did", String(80), ForeignKey("assets.did", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Index("ix_asset_tags_tag", "tag"),
)

#: where an asset's files are; read only by the provider's workflow builder
asset_files = Table(
    "asset_files",
    metadata,
    Column("did", String(80), ForeignKey("assets.did", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("location", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(128), nullable=False),
)

#: what each published file looked like when its checksum was last confirmed: a file that
#: still matches needs no rehash; (dev, ino) also tells whether a file is published already
asset_fingerprints = Table(
    "asset_fingerprints",
    metadata,
    Column("did", String(80), ForeignKey("assets.did", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    # text: inode and device numbers may use all 64 bits
    Column("dev", String(24), nullable=False),
    Column("ino", String(24), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", String(24), nullable=False),
    Column("ctime_ns", String(24), nullable=False),
    Index("ix_asset_fingerprints_inode", "dev", "ino"),
)

nonces = Table(
    "nonces",
    metadata,
    #: "consumer" for provider requests, "operator" for provider → operator calls
    Column("scope", String(16), primary_key=True),
    Column("address", String(42), primary_key=True),
    Column("nonce", BigInteger, nullable=False),
)

#: every nonce an address used within the provider's time window (see web/nonces.py);
#: rows older than the window are deleted, since the window alone refuses them
used_nonces = Table(
    "used_nonces",
    metadata,
    #: "consumer" for provider requests, "operator" for provider → operator calls
    Column("scope", String(16), primary_key=True),
    Column("address", String(42), primary_key=True),
    Column("nonce", BigInteger, primary_key=True),
    Index("ix_used_nonces_nonce", "nonce"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("owner", String(42), nullable=False, index=True),
    Column("did", String(80), nullable=False),
    Column("agreement_id", String(80), nullable=False, default=""),
    Column("environment", String(64), nullable=False),
    Column("status", Integer, nullable=False, index=True),
    Column("status_text", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("started", Float),
    Column("finished", Float),
    Column("stopreq", Integer, nullable=False, default=0),
    Column("removed", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    #: the workflow as registered (holds file locations: never served)
    Column("workflow", JSON, nullable=False),
    #: no longer written: results are in job_manifests and job_results
    Column("results", JSON, nullable=False),
    #: when the job's results and logs go (its environment's storage time after its end);
    #: null: kept until deleted
    Column("expires_at", Float, index=True),
    #: 0 kept; 1 expired, no longer served, deletion perhaps unfinished; 2 deleted
    Column("expired", Integer, nullable=False, default=0, server_default="0"),
    #: the provider replica whose engine runs the job ("": the store has one provider)
    Column("node", String(128), nullable=False, default="", server_default=""),
    #: a page of an owner's jobs, newest first (the dashboard's jobs page)
    Index("ix_jobs_owner_created", "owner", "created"),
)

#: a job's results at a glance, written once when it ends: a status reads this, never the list
job_manifests = Table(
    "job_manifests",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    #: sha256 of the canonical JSON of the whole list of results
    Column("sha256", String(64), nullable=False),
)

#: each result file of a job, read by index for a download or a page of the list
job_results = Table(
    "job_results",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("filename", Text, nullable=False),
    Column("filesize", BigInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("sha256", String(64), nullable=False),
)

#: on-chain agreements for this provider's assets, as the keeper and the provider track them
agreements = Table(
    "agreements",
    metadata,
    Column("agreement_id", String(66), primary_key=True),
    Column("did", String(80), nullable=False),
    Column("consumer", String(42), nullable=False),
    Column("max_jobs", Integer, nullable=False),
    #: jobs started and not given back (a job the provider failed to deliver is given back)
    Column("used", Integer, nullable=False, default=0),
    #: block timestamp after which compute can no longer be fulfilled
    Column("deadline", BigInteger, nullable=False),
    #: "" while open, then "released" (publisher paid) or "refunded" (consumer paid back)
    Column("settled", String(16), nullable=False, default=""),
)

agreement_jobs = Table(
    "agreement_jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("agreement_id", String(66), primary_key=True),
    #: "starting" (counted, registration unconfirmed), "running", "delivered" or "undelivered"
    Column("state", String(16), nullable=False),
    #: sha256 of the job's result manifest, once delivered
    Column("manifest", String(64), nullable=False, default=""),
    #: the provider replica that started the job ("": the store has one provider)
    Column("node", String(128), nullable=False, default="", server_default=""),
    Index("ix_agreement_jobs_agreement", "agreement_id"),
)

#: data access agreements for this provider's assets (the keeper settles them like compute)
access_agreements = Table(
    "access_agreements",
    metadata,
    Column("agreement_id", String(66), primary_key=True),
    Column("did", String(80), nullable=False),
    Column("consumer", String(42), nullable=False),
    #: how many files the asset has: the agreement is served in full when each was once
    Column("files", Integer, nullable=False),
    #: block timestamp after which access can no longer be fulfilled
    Column("deadline", BigInteger, nullable=False),
    #: "" while open, then "released", "refunded" or "expired" (never paid)
    Column("settled", String(16), nullable=False, default=""),
)

#: complete downloads of each file under an access agreement
access_downloads = Table(
    "access_downloads",
    metadata,
    Column("agreement_id", String(66), primary_key=True),
    Column("idx", Integer, primary_key=True),
    #: downloads served to the file's last byte
    Column("completed", Integer, nullable=False, default=0),
)

keeper_cursor = Table(
    "keeper_cursor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("block", BigInteger, nullable=False),
)

#: what the provider made of each ended job: its signed receipt, and the asset its outputs
#: became when the consumer asked for one
job_outcomes = Table(
    "job_outcomes",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("receipt", JSON, nullable=False),
    Column("derived_did", String(80), nullable=False, default=""),
)

#: which node this store belongs to (store id, chain, contracts, provider), written at the
#: node's first start and checked at every start (:mod:`atoll.db.identity`)
node_identity = Table(
    "node_identity",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Text, nullable=False),
)

#: a dataset's mock data: uploaded by its owner, or generated from a schema inferred from
#: its real file, which the owner approves before anything is offered
mock_data = Table(
    "mock_data",
    metadata,
    Column("did", String(80), ForeignKey("assets.did", ondelete="CASCADE"), primary_key=True),
    #: "uploaded" or "generated"
    Column("source", String(16), nullable=False),
    #: "proposed" (a generated schema awaiting the owner's approval) or "offered"
    Column("state", String(16), nullable=False),
    #: the generated schema (the owner's to see before approval); null for an upload
    Column("mock_schema", JSON),
    #: which of the dataset's files the schema was inferred from
    Column("file_index", Integer, nullable=False, default=0),
    #: the provider's copy of the mock file; empty until offered
    Column("location", Text, nullable=False, default=""),
    Column("sha256", String(64), nullable=False, default=""),
    Column("size", BigInteger, nullable=False, default=0),
    Column("rows", Integer, nullable=False, default=0),
    Column("columns", JSON, nullable=False),
    Column("updated", Float, nullable=False),
)

#: jobs run on mock data: no agreement, no payment; the consumer they belong to and, once
#: they have ended, the check report a real job's outputs would get
dry_runs = Table(
    "dry_runs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("consumer", String(42), nullable=False, index=True),
    Column("did", String(80), nullable=False),
    Column("created", Float, nullable=False),
    Column("report", JSON),
)

#: the disclosure checks' report on each ended job, and the output policy it was held under
job_checks = Table(
    "job_checks",
    metadata,
    Column("job_id", String(64), primary_key=True),
    #: the job's consumer, who may never review its outputs
    Column("owner", String(42), nullable=False),
    #: the job's datasets, whose columns a reviewer compares an output's with
    Column("inputs", JSON, nullable=False),
    Column("mode", String(8), nullable=False),
    Column("reviewers_required", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("report", JSON, nullable=False),
    Column("created", Float, nullable=False),
)

#: who may review each checked job: its datasets' owners and the reviewers their policies name
job_reviewers = Table(
    "job_reviewers",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("address", String(42), primary_key=True),
    Index("ix_job_reviewers_address", "address"),
)

#: each checked output or log: released, held for review, rejected, or changed after the check
job_releases = Table(
    "job_releases",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("kind", String(8), nullable=False),
    #: the job's own name for the file: shown to reviewers, to the consumer once released
    Column("filename", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    #: the provider-signed release record of a file released after review
    Column("release", JSON),
)

#: every reviewer's decision on a held file, with the signed request that made it
review_decisions = Table(
    "review_decisions",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("reviewer", String(42), primary_key=True),
    Column("decision", String(8), nullable=False),
    Column("reason", Text, nullable=False),
    Column("body_digest", String(64), nullable=False),
    Column("nonce", BigInteger, nullable=False),
    Column("signature", Text, nullable=False),
    Column("created", Float, nullable=False),
)

#: the dashboard's sign-in sessions: only a hash of each cookie is kept, so a copy of the
#: store signs nobody in
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("address", String(42), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    #: how the session was opened: "siwe" (a browser wallet) or "cli" (``atoll ui login``)
    Column("method", String(8), nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
    Column("revoked", Float),
)

#: single-use values of the dashboard's sign-in: SIWE nonces, CLI challenges and one-time
#: codes (a code is kept as its hash); each is deleted when used or expired
ui_challenges = Table(
    "ui_challenges",
    metadata,
    Column("value_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    #: the address a CLI code signs in; empty for nonces and challenges
    Column("address", String(42), nullable=False),
    Column("expires", Float, nullable=False),
)
