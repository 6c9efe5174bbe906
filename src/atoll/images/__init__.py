"""OCI images as algorithm runtimes: references, pulling by digest from the operator's
registries, safe unpacking into a cache keyed by digest.

Modules: ``reference`` (parsing ``registry/repo[:tag][@sha256:…]``), ``access`` (the
registries an operator lists), ``trust`` (Ocean's containerSectionChecksum), ``registry`` (the
distribution API client), ``pull`` (manifests and blobs into an OCI layout, verified), ``scan``
(hostile layers refused by name), ``unpack`` (umoci, then set-ID bits dropped), ``cache``
(size cap, LRU eviction, locking), ``store`` (all of it, for a job), ``errors``.
"""
