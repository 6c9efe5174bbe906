"""Atoll's engine on a Dask cluster: an Executor backend that places each job on a Dask
worker (:mod:`~atoll.cluster.executor`), the worker side that runs it in that node's own
sandbox (:mod:`~atoll.cluster.worker`), the wire form of a job (:mod:`~atoll.cluster.wire`)
and the certificates of a closed cluster (:mod:`~atoll.cluster.certs`)."""
