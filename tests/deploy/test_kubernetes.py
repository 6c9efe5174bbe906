"""The Kubernetes deployment (deploy/kubernetes): every resource it renders validates against
the Kubernetes schemas (offline, the schemas bundled with kubernetes-validate), and what
matters holds: two provider replicas, the workers' security context, secrets referenced and
never written, and commands, flags and ports that the ``atoll`` command really has.

The kustomization is rendered here without kustomize or kubectl (neither is assumed): it uses
only ``namespace``, ``resources`` and ``images``, which this renderer applies; where kubectl
is installed, its rendering is compared with this one.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml

# typer carries its own copy of click: its commands and exceptions are these
from typer._click import core as click_core
from typer._click import exceptions as click

from atoll.cli.main import app
from atoll.config import Settings, load_settings
from atoll.engine.sandbox.seccomp import DENIED

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes"
#: the versions validated against: the oldest with every field used (appArmorProfile), and
#: the newest the package bundles
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
#: what this renderer applies; anything else in the kustomization fails the test
KNOWN = {"apiVersion", "kind", "namespace", "resources", "images"}
CLUSTER_SCOPED = {"Namespace"}
#: settings that are secret: never in a ConfigMap or a literal value
SECRET_SETTINGS = {"database_url"} | {f.name for f in dataclasses.fields(Settings) if not f.repr}
#: what the worker itself does that a job's filter refuses: mount the jobs' capped outputs,
#: and bubblewrap's namespaces
WORKER_SYSCALLS = {
    *("mount", "umount", "umount2", "pivot_root", "chroot", "unshare", "setns"),
    *("fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr"),
}
WORKER_CAPS = {
    "SYS_ADMIN",
    "SETUID",
    "SETGID",
    "SETPCAP",
    "CHOWN",
    "FOWNER",
    "DAC_OVERRIDE",
    "KILL",
}

Doc = dict[str, Any]


def render(base: Path = BASE) -> list[Doc]:
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    assert set(kustomization) <= KNOWN, f"not rendered here: {set(kustomization) - KNOWN}"
    images = {i["name"]: i for i in kustomization.get("images", [])}
    docs: list[Doc] = []
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((base / resource).read_text()):
            if doc is None:
                continue
            if "namespace" in kustomization and doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = kustomization["namespace"]
            for container in containers(doc):
                image = images.get(container["image"])
                if image is not None:
                    container["image"] = f"{image['newName']}:{image['newTag']}"
            docs.append(doc)
    return docs


def pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "Job"):
        spec: Doc = doc["spec"]["template"]["spec"]
        return spec
    return None


def containers(doc: Doc) -> Iterator[Doc]:
    spec = pod_spec(doc)
    if spec is not None:
        yield from spec.get("initContainers", [])
        yield from spec["containers"]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def container(docs: list[Doc], kind: str, name: str) -> Doc:
    (only,) = list(containers(find(docs, kind, name)))
    return only


def parse(args: list[str]) -> tuple[str, dict[str, Any]]:
    """The command ``atoll ARGS`` names and its parsed options, as the real CLI parses them
    (an unknown command or flag, or a value of the wrong type, raises)."""
    command: click_core.Command = typer.main.get_command(app)
    ctx = command.make_context("atoll", list(args))
    path = []
    while hasattr(command, "resolve_command"):
        rest = [*ctx._protected_args, *ctx.args]
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        path.append(name)
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return " ".join(path), ctx.params


def option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return render()


@pytest.mark.parametrize("version", VERSIONS)
def test_every_resource_validates_against_the_kubernetes_schemas(
    docs: list[Doc], version: str
) -> None:
    assert len(docs) >= 8
    for doc in docs:
        # strict: a misspelt or misplaced field is an error, not ignored
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_can_fail(docs: list[Doc]) -> None:
    worker = find(docs, "DaemonSet", "atoll-worker")
    broken = json.loads(json.dumps(worker))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilitys"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed here")
def test_this_rendering_is_kustomizes() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(BASE)], capture_output=True, text=True, check=True
    ).stdout

    def key(d: Doc) -> tuple[str, str]:
        return d["kind"], d["metadata"]["name"]

    theirs = sorted(yaml.safe_load_all(out), key=key)
    assert theirs == sorted(render(), key=key)


def test_the_provider_runs_two_replicas_of_atoll_serve(docs: list[Doc]) -> None:
    provider = find(docs, "Deployment", "atoll-provider")
    assert provider["spec"]["replicas"] == 2
    args = container(docs, "Deployment", "atoll-provider")["args"]
    command, params = parse(args)
    assert command == "serve"
    ports = {
        p["name"]: p["containerPort"]
        for p in container(docs, "Deployment", "atoll-provider")["ports"]
    }
    assert params["port"] == ports["http"]
    assert params["host"] == "0.0.0.0"


def test_every_container_runs_a_real_atoll_command_with_real_flags(docs: list[Doc]) -> None:
    commands = {}
    for doc in docs:
        for c in containers(doc):
            assert "command" not in c  # the image's entrypoint is atoll
            commands[doc["metadata"]["name"]] = parse(c["args"])[0]
    assert commands == {
        "atoll-provider": "serve",
        "atoll-scheduler": "cluster scheduler",
        "atoll-worker": "worker",
    }
    entrypoint = re.search(
        r"^ENTRYPOINT (.*)$", (ROOT / "deploy" / "Containerfile").read_text(), re.M
    )
    assert entrypoint is not None
    assert json.loads(entrypoint.group(1))[0].endswith("/atoll")


def test_a_flag_the_cli_lacks_is_caught() -> None:
    with pytest.raises(click.UsageError):
        parse(["worker", "--scheduler", "tls://s:1", "--no-such-flag"])
    with pytest.raises(click.BadParameter):
        parse(["worker", "--scheduler", "tls://s:1", "--metrics-port", "many"])


def test_ports_and_addresses_agree(docs: list[Doc]) -> None:
    config = find(docs, "ConfigMap", "atoll-config")["data"]
    scheduler_args = container(docs, "Deployment", "atoll-scheduler")["args"]
    _, scheduler = parse(scheduler_args)
    service = find(docs, "Service", "atoll-scheduler")
    (port,) = service["spec"]["ports"]
    address = f"tls://{service['metadata']['name']}:{port['port']}"
    assert config["ATOLL_CLUSTER_SCHEDULER"] == address
    worker_args = container(docs, "DaemonSet", "atoll-worker")["args"]
    _, worker = parse(worker_args)
    assert worker["scheduler"] == address
    worker_ports = {
        p["name"]: p["containerPort"] for p in container(docs, "DaemonSet", "atoll-worker")["ports"]
    }
    assert worker["metrics_port"] == worker_ports["metrics"]
    scheduler_ports = {
        p["name"]: p["containerPort"]
        for p in container(docs, "Deployment", "atoll-scheduler")["ports"]
    }
    assert scheduler["port"] == scheduler_ports["dask"]
    # every Service selects a workload and targets a port its container names
    for svc in (d for d in docs if d["kind"] == "Service"):
        selector = svc["spec"]["selector"]
        targets = [
            d
            for d in docs
            if pod_spec(d) is not None
            and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(targets) == 1, svc["metadata"]["name"]
        named = {p["name"] for c in containers(targets[0]) for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in named


def test_the_cluster_certificates_are_secrets_mounted_where_each_process_reads_them(
    docs: list[Doc],
) -> None:
    certs_dir = find(docs, "ConfigMap", "atoll-config")["data"]["ATOLL_CLUSTER_CERTS_DIR"]
    for kind, name, role in (
        ("Deployment", "atoll-provider", "client"),
        ("Deployment", "atoll-scheduler", "scheduler"),
        ("DaemonSet", "atoll-worker", "worker"),
    ):
        doc = find(docs, kind, name)
        c = container(docs, kind, name)
        if "--certs" in c["args"]:
            assert option(c["args"], "--certs") == certs_dir
        (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == certs_dir]
        (volume,) = [
            v for v in doc["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
        ]
        assert volume["secret"]["secretName"] == f"atoll-cluster-{role}"
        assert mount.get("readOnly") is True


def test_secrets_are_referenced_never_written(docs: list[Doc]) -> None:
    assert not [d for d in docs if d["kind"] == "Secret"]
    config = find(docs, "ConfigMap", "atoll-config")["data"]
    secret_vars = {f"ATOLL_{s.upper()}" for s in SECRET_SETTINGS}
    assert "ATOLL_DATABASE_URL" in secret_vars and "ATOLL_RESULTS_S3" in secret_vars
    assert not secret_vars & set(config)
    referenced: set[str] = set()
    for doc in docs:
        for c in containers(doc):
            for env in c.get("env", []):
                if env["name"] in secret_vars:
                    assert "value" not in env, env["name"]
                    referenced.add(env["valueFrom"]["secretKeyRef"]["name"])
                else:
                    assert "://" not in str(env.get("value", "")) or "@" not in env["value"]
        spec = pod_spec(doc)
        for volume in spec.get("volumes", []) if spec else []:
            if "secret" in volume:
                referenced.add(volume["secret"]["secretName"])
    provider = container(docs, "Deployment", "atoll-provider")
    assert {e["name"] for e in provider["env"]} >= {
        "ATOLL_DATABASE_URL",
        "ATOLL_RESULTS_S3",
        "ATOLL_RESULTS_S3_ACCESS_KEY_ID",
        "ATOLL_RESULTS_S3_SECRET_ACCESS_KEY",
    }
    # the README says how to create every Secret the deployment reads
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"secret generic (\S+)", readme))
    for loop in re.findall(r"for role in ([a-z ]+);", readme):
        documented |= {n.replace("$role", r) for n in documented for r in loop.split()}
    assert referenced <= documented


def test_the_config_map_holds_only_real_settings(
    docs: list[Doc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = find(docs, "ConfigMap", "atoll-config")["data"]
    names = {f.name for f in dataclasses.fields(Settings)}
    for key, value in config.items():
        assert key.startswith("ATOLL_") and key[6:].lower() in names, key
        monkeypatch.setenv(key, value)
    # what the Secrets give the provider
    monkeypatch.setenv("ATOLL_RESULTS_S3", "s3://bucket/results")
    settings = load_settings(tmp_path)
    assert settings.cluster_scheduler == config["ATOLL_CLUSTER_SCHEDULER"]


def test_the_worker_has_what_the_sandbox_needs_and_no_more(docs: list[Doc]) -> None:
    worker = find(docs, "DaemonSet", "atoll-worker")
    c = container(docs, "DaemonSet", "atoll-worker")
    context = c["securityContext"]
    assert context["runAsUser"] == 0
    assert context["privileged"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert set(context["capabilities"]["add"]) == WORKER_CAPS
    assert context["seccompProfile"] == {
        "type": "Localhost",
        "localhostProfile": "atoll-worker.json",
    }
    assert context["appArmorProfile"] == {"type": "Unconfined"}
    spec = worker["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
    # cgroup delegation: the node's cgroup tree, where the worker makes the jobs' cgroups
    volumes = {v["name"]: v for v in spec["volumes"]}
    (cgroup,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/sys/fs/cgroup"]
    assert volumes[cgroup["name"]]["hostPath"]["path"] == "/sys/fs/cgroup"
    # the sandbox stages its jobs under /run, writable despite the read-only root
    assert context["readOnlyRootFilesystem"] is True
    assert any(m["mountPath"] == "/run" for m in c["volumeMounts"])
    # a stop drains the worker (SIGUSR1) before it ends
    assert "kill -USR1 1" in " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
    # the jobs' directories are the provider's, at the same path
    provider = container(docs, "Deployment", "atoll-provider")
    jobs = {m["mountPath"] for m in c["volumeMounts"] if m["name"] == "jobs"}
    assert jobs == {m["mountPath"] for m in provider["volumeMounts"] if m["name"] == "jobs"}


def test_the_other_processes_have_no_privilege(docs: list[Doc]) -> None:
    for kind, name in (("Deployment", "atoll-provider"), ("Deployment", "atoll-scheduler")):
        context = container(docs, kind, name)["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert not {"SYS_ADMIN", "SETUID", "SETGID"} & set(context["capabilities"].get("add", []))
        assert find(docs, kind, name)["spec"]["template"]["spec"]["securityContext"][
            "seccompProfile"
        ] == {"type": "RuntimeDefault"}
    scheduler = find(docs, "Deployment", "atoll-scheduler")["spec"]["template"]["spec"]
    assert scheduler["securityContext"]["runAsNonRoot"] is True


def test_the_workers_seccomp_profile_refuses_what_jobs_are_refused_but_mounts(
    docs: list[Doc],
) -> None:
    profile = json.loads((BASE / "seccomp" / "atoll-worker.json").read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    (rule,) = profile["syscalls"]
    assert rule["action"] == "SCMP_ACT_ERRNO"
    assert set(rule["names"]) == set(DENIED) - WORKER_SYSCALLS
    assert set(DENIED) >= WORKER_SYSCALLS
