"""Publishing: a publisher's files become an asset, and its owner may narrow its policy.

A publish is judged on the paths as sent: every file must lie inside a data root, be the
publisher's to offer, and be readable by jobs (a dataset) or by the provider (an algorithm's
code); the DID is claimed on chain in the publisher's name before the asset is public.
"""

from __future__ import annotations

from pathlib import Path

from atoll.catalog.publish import build_ddo, inspect_published
from atoll.catalog.roots import DataRoots
from atoll.catalog.store import AssetStore
from atoll.errors import BadRequest, Conflict, Forbidden, PolicyRefused
from atoll.models.ddo import DDO, AccessOffer, ComputePolicy, Metadata
from atoll.models.source import SourceAccess
from atoll.provider.containers import ImageRules
from atoll.provider.hosts import HostRules
from atoll.provider.policy import ceiling_of, owner_lookup, widening
from atoll.provider.registrar import DidRegistrar
from atoll.provider.review_policy import check_compute_policy
from atoll.storage.remote import RemoteInputs


class PublishingService:
    """Publishes assets from the data roots and changes their compute policies."""

    def __init__(
        self,
        assets: AssetStore,
        endpoint: str,
        publishers: set[str],
        default_timeout: int,
        default_price: int = 0,
        registrar: DidRegistrar | None = None,
        hosts: HostRules | None = None,
        roots: DataRoots | None = None,
        job_user: tuple[int, int] = (65534, 65534),
        remote: RemoteInputs | None = None,
        images: ImageRules | None = None,
    ) -> None:
        self.assets = assets
        self.endpoint = endpoint
        self.publishers = {p.lower() for p in publishers}
        self.default_timeout = default_timeout
        self.default_price = default_price
        #: registers each DID on chain in its publisher's name before the asset is public
        self.registrar = registrar
        #: which hosts a network allowlist may name
        self.hosts = hosts or HostRules()
        #: where publishers may publish from; none given, nothing can be published
        self.roots = roots or DataRoots([], Path("/nonexistent"))
        self.job_user = job_user
        #: fetches URL and S3 files through the operator's guard; None: only local files
        self.remote = remote
        #: the registries an algorithm's image may come from; none listed, none may
        self.images = images or ImageRules()

    def publish(
        self,
        publisher: str,
        metadata: Metadata,
        locations: list[str],
        policy: ComputePolicy,
        timeout: int | None,
        price: int | None = None,
        access: AccessOffer | None = None,
        source_access: SourceAccess | None = None,
    ) -> DDO:
        """Publish the files at ``locations`` (paths, or URL and S3 locations opened with
        ``source_access``) as one asset of ``publisher``, who must be allowed to publish here;
        nothing is stored unless every file passes. With ``access``, the asset's files may
        also be downloaded under access agreements."""
        if publisher.lower() not in self.publishers:
            raise Forbidden("this address may not publish on this provider")
        check_compute_policy(policy)
        if metadata.provenance is not None:
            raise BadRequest("provenance is set by the provider on derived assets only")
        if metadata.type == "algorithm" and metadata.algorithm is None:
            metadata = metadata.model_copy(update={"algorithm": {"language": "python"}})
            metadata = Metadata.model_validate(metadata.model_dump())
        metadata = self._pinned(metadata)
        self.hosts.check(policy.networkAllowlist)
        files, prints = inspect_published(
            locations,
            publisher,
            self.roots,
            self.job_user,
            self.assets.owners_of_inode,
            # an algorithm's code is copied for the job by the provider; a dataset is read
            # by the job itself
            for_jobs=metadata.type == "dataset",
            remote=self.remote,
            access=source_access,
        )
        ddo = build_ddo(
            publisher,
            metadata,
            files,
            self.endpoint,
            policy,
            timeout or self.default_timeout,
            price=self.default_price if price is None else price,
            access=access is not None,
            access_price=access.price if access is not None else 0,
            access_timeout=access.timeout if access is not None else None,
        )
        if self.registrar is not None:
            if self.assets.exists(ddo.id):
                raise Conflict(f"{ddo.id} is already published")
            self.registrar.claim(ddo)  # on chain, the publisher's, before it is public
        self.assets.add(ddo, files, prints)
        return ddo

    def _pinned(self, metadata: Metadata) -> Metadata:
        """An algorithm's container pinned to a digest, resolved now (once) if it names a
        tag: the digest is what datasets trust and jobs run, whatever the tag names later."""
        info = metadata.algorithm
        if info is None or info.container is None:
            return metadata
        if metadata.type != "algorithm":
            raise BadRequest("only an algorithm runs in a container")
        container = self.images.pin(info.container)
        return metadata.model_copy(
            update={"algorithm": info.model_copy(update={"container": container})}
        )

    def set_policy(self, owner: str, did: str, policy: ComputePolicy) -> DDO:
        """Change the compute policy of ``owner``'s asset; a derived asset's may only narrow
        what the assets it comes from allow."""
        ddo = self.assets.get(did)
        if ddo.owner.lower() != owner.lower():
            raise Forbidden(f"only the owner of {did} may change its policy")
        self.hosts.check(policy.networkAllowlist)
        check_compute_policy(policy)
        ceiling = ceiling_of(self.assets, ddo)
        if ceiling is not None:
            wider = widening(policy, ceiling, owner_lookup(self.assets))
            if wider:
                raise PolicyRefused(
                    f"{did} is derived from assets whose policies do not allow {wider}: "
                    "its owner may narrow its policy, not widen it"
                )
        services = [
            s.model_copy(update={"compute": policy}) if s.type == "compute" else s
            for s in ddo.services
        ]
        updated = ddo.model_copy(update={"services": services})
        self.assets.update(updated)
        return updated
