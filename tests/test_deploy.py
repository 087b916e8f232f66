"""The deployment examples in deploy/ are valid for their platforms and run imagesync's reconcile loop as it is.

A manifest or a task definition is only read by a cluster or by AWS, long after it was written: these
tests catch what would break it there, offline.

- Every Kubernetes document is validated against the Kubernetes OpenAPI schemas that the
  kubernetes-validate package ships, in their strict form (an unknown or misspelled field fails).
- The ECS task definitions are validated against botocore's `ecs` RegisterTaskDefinition input
  shape and the schedule against `scheduler` CreateSchedule, with botocore's own ParamValidator
  (which checks names, types, required members and lengths) plus the shapes' enums, which
  ParamValidator leaves to the service.
- What no schema knows is checked here: every container runs the imagesync image with a
  `reconcile` command whose flags are the command's own, probes and health checks hit /healthz and
  /readyz on the port the loop listens on, the loop runs as uid 10001 on a read-only root with a
  writable cache, the Indexed Job's shard count is its number of completions.

Each check is proven able to fail on a mutated copy of a document.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import kubernetes_validate
import pytest
import yaml
from botocore.validate import ParamValidator

from imagesync.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
ECS = ROOT / "deploy" / "ecs"
K8S_FILES = ["deployment.yaml", "cronjob.yaml", "indexed-job.yaml", "git-sync.yaml"]
TASK_DEFINITIONS = ["task-definition.json", "service-task-definition.json"]

# The newest Kubernetes release whose schemas kubernetes-validate 1.37 (the floor in pyproject.toml) ships.
KUBERNETES_VERSION = "1.37.0"
IMAGE = "ghcr.io/imagesync/imagesync:0.1.0"
GIT_SYNC_IMAGE = re.compile(r"^registry\.k8s\.io/git-sync/git-sync:v4\.\d+\.\d+$")
UID = 10001
CACHE = "/home/imagesync/.cache"
WORKLOADS = {"Deployment", "Job", "CronJob"}


# --- reading the examples -------------------------------------------------------------------------


def k8s_documents(name: str) -> list[dict[str, Any]]:
    text = (KUBERNETES / name).read_text(encoding="utf-8")
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def all_k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    return [(name, doc) for name in K8S_FILES for doc in k8s_documents(name)]


def doc_id(name: str, doc: dict[str, Any]) -> str:
    return f"{name}:{doc['kind']}/{doc['metadata']['name']}"


def one(name: str, kind: str, metadata_name: str | None = None) -> dict[str, Any]:
    found = [
        doc
        for doc in k8s_documents(name)
        if doc["kind"] == kind and (metadata_name is None or doc["metadata"]["name"] == metadata_name)
    ]
    assert len(found) == 1, f"{name} has {len(found)} {kind} documents"
    return copy.deepcopy(found[0])


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def json_file(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


# --- the reconcile command's interface ------------------------------------------------------------


class ArgsError(ValueError):
    pass


class StrictParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print and exit
        raise ArgsError(message)


DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+s)?$")


def duration(text: str) -> str:
    if not text or not DURATION.match(text):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}")
    return text


def reconcile_parser() -> StrictParser:
    """`imagesync reconcile` exactly as its interface states it, no abbreviations allowed."""
    parser = StrictParser(prog="imagesync reconcile", allow_abbrev=False, add_help=False)
    parser.add_argument("dir", nargs="?")
    parser.add_argument("--interval", type=duration)
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--prune", action="store_true")
    parser.add_argument("--git")
    parser.add_argument("--ref")
    parser.add_argument("--git-path")
    parser.add_argument("--git-cache")
    parser.add_argument("--listen")
    parser.add_argument("--shard")
    parser.add_argument("--target", action="append")
    endpoint = parser.add_mutually_exclusive_group()
    endpoint.add_argument("--sandbox")
    endpoint.add_argument("--endpoint-url")
    parser.add_argument("--profile")
    parser.add_argument("--region")
    parser.add_argument("--log-format", choices=["json"])
    return parser


def parse_reconcile(argv: list[str]) -> argparse.Namespace:
    """The parsed flags of `reconcile ...`; ArgsError for anything the interface does not allow."""
    if not argv or argv[0] != "reconcile":
        raise ArgsError(f"the command is not `reconcile`: {argv[:1]}")
    args = reconcile_parser().parse_args(argv[1:])
    if (args.dir is None) == (args.git is None):
        raise ArgsError("give exactly one of DIR and --git")
    if args.git is None and (args.ref or args.git_path or args.git_cache):
        raise ArgsError("--ref, --git-path and --git-cache need --git")
    if args.git is not None:
        url = urlsplit(args.git)
        if url.username or url.password:
            raise ArgsError("credentials in the --git URL")
    if args.once and args.interval:
        raise ArgsError("--once and --interval together")
    # And imagesync's own parser takes them, as the container would be given them by Kubernetes
    # (`$(VAR)` expanded: the job completion index is a number from 0).
    expanded = [re.sub(r"\$\((\w+)\)", "0", arg) for arg in argv]
    try:
        build_parser().parse_args(expanded)
    except SystemExit as exc:
        raise ArgsError(f"imagesync's own parser refuses {expanded}") from exc
    return args


def listen_port(args: argparse.Namespace) -> int | None:
    if args.listen is None:
        return None
    host, sep, port = args.listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ArgsError(f"--listen is not HOST:PORT: {args.listen!r}")
    return int(port)


# --- checks on Kubernetes documents ---------------------------------------------------------------


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """Strict validation against the shipped schemas of KUBERNETES_VERSION; a kind they lack is an error."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(str(part) for part in error.path)}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [error.message]
    return []


def effective(container: dict[str, Any], pod: dict[str, Any], field: str) -> Any:
    """A security setting as the kubelet applies it: the container's, else the pod's."""
    value = container.get("securityContext", {}).get(field)
    return pod.get("securityContext", {}).get(field) if value is None else value


def port_number(container: dict[str, Any], port: int | str) -> int | None:
    if isinstance(port, int):
        return port
    for entry in container.get("ports", []):
        if entry.get("name") == port:
            return int(entry["containerPort"])
    return None


def container_problems(doc: dict[str, Any], pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    name = container["name"]
    problems: list[str] = []
    if container.get("image") != IMAGE:
        problems.append(f"{name}: image {container.get('image')!r} is not {IMAGE}")
    if container.get("command") not in (None, ["imagesync"]):
        problems.append(f"{name}: command {container['command']!r} replaces the image's imagesync entrypoint")
    argv = [str(arg) for arg in container.get("args", [])]
    try:
        args = parse_reconcile(argv)
        port = listen_port(args)
    except ArgsError as error:
        return [*problems, f"{name}: {error}"]

    # $(VAR) in args is expanded only from the container's env; an undefined one stays literal.
    env_names = {entry["name"] for entry in container.get("env", [])}
    for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", " ".join(argv)):
        if var not in env_names:
            problems.append(f"{name}: args use $({var}), which no env entry defines")

    if doc["kind"] == "Deployment":
        if args.once:
            problems.append(f"{name}: a Deployment runs the loop, not --once")
        if port is None:
            problems.append(f"{name}: a Deployment must --listen for its probes")
    elif not args.once:
        problems.append(f"{name}: a {doc['kind']} must run --once")

    if port is not None:
        if port_number(container, "metrics") != port:
            problems.append(f"{name}: no containerPort named metrics on the --listen port {port}")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            http = container.get(probe, {}).get("httpGet")
            if http is None:
                problems.append(f"{name}: no {probe} httpGet")
                continue
            if http.get("path") != path:
                problems.append(f"{name}: {probe} path {http.get('path')!r} is not {path}")
            if port_number(container, http.get("port", "")) != port:
                problems.append(f"{name}: {probe} port {http.get('port')!r} is not the --listen port {port}")
        annotations = doc["spec"]["template"]["metadata"].get("annotations", {}) if doc["kind"] == "Deployment" else {}
        if annotations.get("prometheus.io/scrape") != "true" or annotations.get("prometheus.io/port") != str(port):
            problems.append(f"{name}: the pod's prometheus.io annotations do not scrape port {port}")

    if args.shard is not None:
        problems.extend(shard_problems(doc, name, args.shard))

    if effective(container, pod, "runAsNonRoot") is not True:
        problems.append(f"{name}: runAsNonRoot is not true")
    if effective(container, pod, "runAsUser") != UID:
        problems.append(f"{name}: runAsUser is not {UID}")
    security = container.get("securityContext", {})
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{name}: allowPrivilegeEscalation is not false")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{name}: readOnlyRootFilesystem is not true")
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        problems.append(f"{name}: capabilities do not drop ALL")
    if (effective(container, pod, "seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: seccompProfile is not RuntimeDefault")
    for key in ("requests", "limits"):
        if not {"memory"} <= set(container.get("resources", {}).get(key, {})):
            problems.append(f"{name}: no memory {key}")

    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    mounts = {mount["mountPath"]: mount for mount in container.get("volumeMounts", [])}
    cache = mounts.get(CACHE)
    if cache is None or "emptyDir" not in volumes.get(cache["name"], {}):
        problems.append(f"{name}: no emptyDir mounted at {CACHE} (the root filesystem is read-only)")
    if args.git_cache is not None and not args.git_cache.startswith(CACHE + "/"):
        problems.append(f"{name}: --git-cache {args.git_cache} is not under the writable {CACHE}")
    if args.dir is not None and not any(
        args.dir == path or args.dir.startswith(path.rstrip("/") + "/") for path in mounts
    ):
        problems.append(f"{name}: the manifests directory {args.dir} is on no volume")
    return problems


def shard_problems(doc: dict[str, Any], name: str, shard: str) -> list[str]:
    indexed = re.fullmatch(r"\$\(JOB_COMPLETION_INDEX\)/(\d+)", shard)
    if doc["kind"] == "Job" and doc["spec"].get("completionMode") == "Indexed":
        completions = doc["spec"].get("completions")
        if indexed is None or int(indexed.group(1)) != completions:
            return [f"{name}: --shard {shard} is not $(JOB_COMPLETION_INDEX)/{completions} (completions)"]
        container = next(c for c in pod_spec(doc)["containers"] if c["name"] == name)
        sources = [entry for entry in container.get("env", []) if entry["name"] == "JOB_COMPLETION_INDEX"]
        field = sources[0].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") if sources else None
        if field != "metadata.annotations['batch.kubernetes.io/job-completion-index']":
            return [f"{name}: JOB_COMPLETION_INDEX does not come from the job-completion-index annotation"]
        return []
    fixed = re.fullmatch(r"(\d+)/(\d+)", shard)
    if fixed is None or not int(fixed.group(1)) < int(fixed.group(2)):
        return [f"{name}: --shard {shard} is not INDEX/COUNT with INDEX < COUNT"]
    return []


def workload_problems(doc: dict[str, Any]) -> list[str]:
    """Everything a Deployment, Job or CronJob must get right beyond its schema."""
    pod = pod_spec(doc)
    problems: list[str] = []
    for container in pod["containers"]:
        problems.extend(container_problems(doc, pod, container))
    for container in pod.get("initContainers", []):
        if not GIT_SYNC_IMAGE.match(container.get("image", "")):
            problems.append(f"{container['name']}: init container image {container.get('image')!r} is not git-sync v4")
        elif effective(container, pod, "runAsNonRoot") is not True:
            problems.append(f"{container['name']}: runAsNonRoot is not true")
    if pod.get("serviceAccountName") != "imagesync":
        problems.append("the pod does not run as the imagesync service account (IRSA or Pod Identity)")
    if pod.get("terminationGracePeriodSeconds", 30) < 60:
        problems.append("terminationGracePeriodSeconds is under 60")
    if doc["kind"] == "Deployment":
        if doc["spec"].get("replicas") != 1:
            problems.append("a Deployment of the loop runs 1 replica")
        if doc["spec"].get("strategy", {}).get("type") != "Recreate":
            problems.append("a Deployment of the loop uses strategy Recreate")
    if doc["kind"] == "CronJob" and doc["spec"].get("concurrencyPolicy") != "Forbid":
        problems.append("a CronJob's concurrencyPolicy is not Forbid")
    if doc["kind"] == "Job" and doc["spec"].get("completionMode") == "Indexed":
        if doc["spec"].get("parallelism") != doc["spec"].get("completions"):
            problems.append("an Indexed Job's parallelism is not its completions")
    return problems


# --- checks on the ECS documents ------------------------------------------------------------------


@pytest.fixture(scope="module")
def botocore_session() -> Any:
    return botocore.session.get_session()


def input_shape(session: Any, service: str, operation: str) -> Any:
    return session.get_service_model(service).operation_model(operation).input_shape


def enum_errors(value: Any, shape: Any, path: str = "") -> list[str]:
    """Enum members ParamValidator does not check (the service would refuse them)."""
    if shape.type_name == "structure" and isinstance(value, dict):
        return [
            error
            for key, item in value.items()
            if key in shape.members
            for error in enum_errors(item, shape.members[key], f"{path}.{key}" if path else key)
        ]
    if shape.type_name == "list" and isinstance(value, list):
        return [error for i, item in enumerate(value) for error in enum_errors(item, shape.member, f"{path}[{i}]")]
    if shape.type_name == "map" and isinstance(value, dict):
        return [error for key, item in value.items() for error in enum_errors(item, shape.value, f"{path}.{key}")]
    if shape.type_name == "string" and getattr(shape, "enum", None) and value not in shape.enum:
        return [f"{path}: {value!r} is not one of {shape.enum}"]
    return []


def shape_errors(session: Any, service: str, operation: str, params: dict[str, Any]) -> list[str]:
    shape = input_shape(session, service, operation)
    report = ParamValidator().validate(params, shape)
    errors = [report.generate_report()] if report.has_errors() else []
    return errors + enum_errors(params, shape)


def task_problems(task: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if task.get("networkMode") != "awsvpc" or "FARGATE" not in task.get("requiresCompatibilities", []):
        problems.append("not a Fargate task in awsvpc mode")
    for role in ("taskRoleArn", "executionRoleArn"):
        if not str(task.get(role, "")).startswith("arn:aws:iam::"):
            problems.append(f"no {role}")
    volumes = {volume["name"] for volume in task.get("volumes", [])}
    for container in task["containerDefinitions"]:
        name = container["name"]
        if container.get("image") != IMAGE:
            problems.append(f"{name}: image {container.get('image')!r} is not {IMAGE}")
        if "entryPoint" in container:
            problems.append(f"{name}: entryPoint replaces the image's imagesync entrypoint")
        try:
            args = parse_reconcile(list(container.get("command", [])))
            port = listen_port(args)
        except ArgsError as error:
            problems.append(f"{name}: {error}")
            continue
        if container.get("user") != str(UID):
            problems.append(f"{name}: user is not {UID}")
        if container.get("readonlyRootFilesystem") is not True:
            problems.append(f"{name}: readonlyRootFilesystem is not true")
        if not any(
            mount.get("containerPath") == CACHE and mount.get("sourceVolume") in volumes
            for mount in container.get("mountPoints", [])
        ):
            problems.append(f"{name}: no task volume mounted at {CACHE}")
        if container.get("logConfiguration", {}).get("logDriver") != "awslogs":
            problems.append(f"{name}: logs do not go to CloudWatch (awslogs)")
        if args.log_format != "json":
            problems.append(f"{name}: logs are not JSON")
        if args.once:
            continue
        # A long-running service: ECS replaces the task when the loop stops answering /healthz.
        if port is None:
            problems.append(f"{name}: the loop does not --listen for its health check")
            continue
        mapped = [entry.get("containerPort") for entry in container.get("portMappings", [])]
        if port not in mapped:
            problems.append(f"{name}: the --listen port {port} is not mapped")
        check = " ".join(container.get("healthCheck", {}).get("command", []))
        if f"127.0.0.1:{port}/healthz" not in check:
            problems.append(f"{name}: the healthCheck does not fetch /healthz on port {port}")
    return problems


def schedule_problems(schedule: dict[str, Any], task: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if not re.fullmatch(r"rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\)", schedule["ScheduleExpression"]):
        problems.append(f"ScheduleExpression {schedule['ScheduleExpression']!r} is neither rate() nor cron()")
    target = schedule["Target"]
    if not re.fullmatch(r"arn:aws:ecs:[a-z0-9-]+:\d{12}:cluster/.+", target["Arn"]):
        problems.append("the Target is not an ECS cluster")
    ecs = target.get("EcsParameters", {})
    arn = ecs.get("TaskDefinitionArn", "")
    if not re.fullmatch(rf"arn:aws:ecs:[a-z0-9-]+:\d{{12}}:task-definition/{re.escape(task['family'])}(:\d+)?", arn):
        problems.append(f"TaskDefinitionArn {arn!r} is not the family {task['family']}")
    if ecs.get("LaunchType") != "FARGATE":
        problems.append("LaunchType is not FARGATE")
    network = ecs.get("NetworkConfiguration", {}).get("awsvpcConfiguration", {})
    if not network.get("Subnets") or not network.get("SecurityGroups"):
        problems.append("no subnets or security groups")
    if network.get("AssignPublicIp") != "DISABLED":
        problems.append("AssignPublicIp is not DISABLED")
    scheduled = task["containerDefinitions"][0].get("command", [])
    if "--once" not in scheduled:
        problems.append("the scheduled task does not run --once")
    return problems


# --- Kubernetes: schemas --------------------------------------------------------------------------


def test_the_pinned_kubernetes_version_is_shipped() -> None:
    assert kubernetes_validate.utils.major_minor(KUBERNETES_VERSION) in {
        kubernetes_validate.utils.major_minor(version) for version in kubernetes_validate.utils.all_versions()
    }


def test_every_kubernetes_file_has_documents() -> None:
    kinds = {name: sorted(doc["kind"] for doc in k8s_documents(name)) for name in K8S_FILES}
    assert kinds == {
        "deployment.yaml": ["ConfigMap", "Deployment", "Service", "ServiceAccount"],
        "cronjob.yaml": ["CronJob"],
        "indexed-job.yaml": ["Job"],
        "git-sync.yaml": ["Deployment", "Deployment"],
    }


@pytest.mark.parametrize(
    ("name", "doc"), all_k8s_documents(), ids=[doc_id(name, doc) for name, doc in all_k8s_documents()]
)
def test_kubernetes_document_matches_the_strict_schema(name: str, doc: dict[str, Any]) -> None:
    assert schema_errors(doc) == []


@pytest.mark.parametrize(
    ("name", "doc"), all_k8s_documents(), ids=[doc_id(name, doc) for name, doc in all_k8s_documents()]
)
def test_every_document_refuses_an_unknown_field(name: str, doc: dict[str, Any]) -> None:
    mutated = copy.deepcopy(doc)
    mutated["metadata"]["lables"] = mutated["metadata"].pop("labels", {})
    errors = schema_errors(mutated)
    assert len(errors) == 1 and "'lables' was unexpected" in errors[0]


def test_a_misspelled_field_fails_the_schema() -> None:
    doc = one("deployment.yaml", "Deployment")
    container = pod_spec(doc)["containers"][0]
    container["securityContex"] = container.pop("securityContext")
    errors = schema_errors(doc)
    assert len(errors) == 1 and "'securityContex' was unexpected" in errors[0]


def test_a_misspelled_field_deep_in_a_cronjob_fails_the_schema() -> None:
    doc = one("cronjob.yaml", "CronJob")
    pod_spec(doc)["containers"][0]["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080, "prot": 8080}}
    errors = schema_errors(doc)
    assert errors and "'prot' was unexpected" in " ".join(errors)


def test_a_wrong_type_and_a_missing_required_field_fail_the_schema() -> None:
    doc = one("indexed-job.yaml", "Job")
    doc["spec"]["completions"] = "4"
    assert schema_errors(doc) and "is not of type 'integer'" in schema_errors(doc)[0]
    service = one("deployment.yaml", "Service")
    del service["spec"]["ports"][0]["port"]
    assert schema_errors(service) and "'port' is a required property" in schema_errors(service)[0]


def test_an_unknown_kind_or_api_version_fails() -> None:
    doc = one("deployment.yaml", "Deployment")
    doc["apiVersion"] = "apps/v1beta1"
    assert schema_errors(doc) and "Couldn't find schema" in schema_errors(doc)[0]


# --- Kubernetes: what the schemas cannot see ------------------------------------------------------

WORKLOAD_DOCS = [(name, doc) for name, doc in all_k8s_documents() if doc["kind"] in WORKLOADS]


@pytest.mark.parametrize(("name", "doc"), WORKLOAD_DOCS, ids=[doc_id(name, doc) for name, doc in WORKLOAD_DOCS])
def test_workload_runs_reconcile_as_the_interface_states_it(name: str, doc: dict[str, Any]) -> None:
    assert workload_problems(doc) == []


def test_every_workload_file_runs_the_imagesync_image() -> None:
    images = {container["image"] for _, doc in WORKLOAD_DOCS for container in pod_spec(doc)["containers"]}
    assert images == {IMAGE}
    assert {doc["kind"] for _, doc in WORKLOAD_DOCS} == WORKLOADS


def test_the_deployment_runs_the_loop_it_is_documented_to_run() -> None:
    container = pod_spec(one("deployment.yaml", "Deployment"))["containers"][0]
    assert container["args"] == [
        "reconcile",
        "/manifests",
        "--interval",
        "30m",
        "--listen",
        "0.0.0.0:8080",
        "--log-format",
        "json",
    ]


def test_the_service_account_is_annotated_for_irsa() -> None:
    account = one("deployment.yaml", "ServiceAccount")
    assert re.fullmatch(
        r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    )
    text = (KUBERNETES / "deployment.yaml").read_text(encoding="utf-8")
    assert "Pod Identity" in text and "create-pod-identity-association" in text


def test_the_service_selects_the_deployment_on_its_metrics_port() -> None:
    service = one("deployment.yaml", "Service")
    deployment = one("deployment.yaml", "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    names = {port["name"] for port in pod_spec(deployment)["containers"][0]["ports"]}
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["metrics"]
    assert "metrics" in names


def test_the_git_sync_variants_select_their_own_pods() -> None:
    deployments = [doc for doc in k8s_documents("git-sync.yaml") if doc["kind"] == "Deployment"]
    instances = [doc["metadata"]["labels"]["app.kubernetes.io/instance"] for doc in deployments]
    assert len(set(instances)) == 2
    for doc in deployments:
        assert doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == doc["metadata"]["name"]
        assert doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] == doc["metadata"]["name"]


def test_the_git_sync_sidecar_shares_the_checkout_the_loop_reads() -> None:
    pod = pod_spec(one("git-sync.yaml", "Deployment", "imagesync-git-sync"))
    init, sidecar = pod["initContainers"]
    assert {"name": "GITSYNC_ONE_TIME", "value": "true"} in init["env"]
    assert sidecar.get("restartPolicy") == "Always" and not any(e["name"] == "GITSYNC_ONE_TIME" for e in sidecar["env"])
    root = next(arg.split("=", 1)[1] for arg in sidecar["args"] if arg.startswith("--root="))
    link = next(arg.split("=", 1)[1] for arg in sidecar["args"] if arg.startswith("--link="))
    git_volume = next(m["name"] for m in sidecar["volumeMounts"] if m["mountPath"] == root)
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == git_volume)
    loop = pod["containers"][0]
    assert any(m["name"] == git_volume and m["mountPath"] == root for m in loop["volumeMounts"])
    assert parse_reconcile(loop["args"]).dir.startswith(f"{root}/{link}/")
    # The token is read from the mounted Secret, never passed as --password.
    assert not any(arg.startswith("--password=") for arg in sidecar["args"])
    secret_file = next(arg.split("=", 1)[1] for arg in sidecar["args"] if arg.startswith("--password-file="))
    secret_mount = next(m for m in sidecar["volumeMounts"] if secret_file.startswith(m["mountPath"] + "/"))
    assert (
        next(v for v in pod["volumes"] if v["name"] == secret_mount["name"])["secret"]["secretName"] == "imagesync-git"
    )


def test_the_git_variant_keeps_its_token_out_of_args() -> None:
    container = pod_spec(one("git-sync.yaml", "Deployment", "imagesync-git"))["containers"][0]
    args = parse_reconcile(container["args"])
    assert (args.git, args.ref, args.git_path) == ("https://github.com/example/golden-images.git", "main", "manifests")
    env = {entry["name"]: entry for entry in container["env"]}
    assert env["GIT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "imagesync-git"
    assert env["GIT_CONFIG_KEY_0"]["value"] == "credential.helper"
    # Kubernetes would expand $(GIT_TOKEN) into the pod spec; ${GIT_TOKEN} reaches the helper's shell.
    assert (
        "${GIT_TOKEN}" in env["GIT_CONFIG_VALUE_0"]["value"]
        and "$(GIT_TOKEN)" not in env["GIT_CONFIG_VALUE_0"]["value"]
    )
    assert not any("GIT_TOKEN" in arg for arg in container["args"])


def test_the_configmap_holds_manifests_imagesync_validates(tmp_path: Path) -> None:
    configmap = one("deployment.yaml", "ConfigMap")
    for key, text in configmap["data"].items():
        (tmp_path / key).write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "imagesync", "validate", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    settings = yaml.safe_load(configmap["data"]["imagesync.yaml"])
    # A file lock lives in one pod: replicas and Jobs can only share a DynamoDB or S3 lock.
    assert settings["lock"]["backend"] in {"dynamodb", "s3"}


def _mutated(name: str, selector: str, change: Any) -> list[str]:
    kind, _, metadata_name = selector.partition("/")
    doc = one(name, kind, metadata_name or None)
    change(doc, pod_spec(doc), pod_spec(doc)["containers"][0])
    assert schema_errors(doc) == [], "the mutation must stay schema-valid: only the semantic check may catch it"
    return workload_problems(doc)


def _set_arg(container: dict[str, Any], flag: str, value: str) -> None:
    args = container["args"]
    args[args.index(flag) + 1] = value


MUTATIONS = {
    "liveness probe path": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: c["livenessProbe"]["httpGet"].update(path="/health"),
        "livenessProbe path '/health' is not /healthz",
    ),
    "readiness probe path": (
        "git-sync.yaml",
        "Deployment/imagesync-git-sync",
        lambda d, p, c: c["readinessProbe"]["httpGet"].update(path="/healthz"),
        "readinessProbe path '/healthz' is not /readyz",
    ),
    "probe port": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: c["readinessProbe"]["httpGet"].update(port=9090),
        "readinessProbe port 9090 is not the --listen port 8080",
    ),
    "listen port": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: _set_arg(c, "--listen", "0.0.0.0:9090"),
        "no containerPort named metrics on the --listen port 9090",
    ),
    "unknown flag": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: c["args"].append("--intervall"),
        "unrecognized arguments: --intervall",
    ),
    "abbreviated flag": (
        "cronjob.yaml",
        "CronJob",
        lambda d, p, c: c["args"].__setitem__(2, "--on"),
        "unrecognized arguments: --on",
    ),
    "bad duration": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: _set_arg(c, "--interval", "30 minutes"),
        "not a duration",
    ),
    "another command": (
        "cronjob.yaml",
        "CronJob",
        lambda d, p, c: c["args"].__setitem__(0, "apply"),
        "the command is not `reconcile`",
    ),
    "entrypoint replaced": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: c.update(command=["sh", "-c"]),
        "replaces the image's imagesync entrypoint",
    ),
    "other image": (
        "indexed-job.yaml",
        "Job",
        lambda d, p, c: c.update(image="ghcr.io/imagesync/imagesync:latest"),
        "is not ghcr.io/imagesync/imagesync:0.1.0",
    ),
    "shard count": (
        "indexed-job.yaml",
        "Job",
        lambda d, p, c: _set_arg(c, "--shard", "$(JOB_COMPLETION_INDEX)/3"),
        "is not $(JOB_COMPLETION_INDEX)/4 (completions)",
    ),
    "completions": (
        "indexed-job.yaml",
        "Job",
        lambda d, p, c: d["spec"].update(completions=5, parallelism=5),
        "is not $(JOB_COMPLETION_INDEX)/5 (completions)",
    ),
    "index source": (
        "indexed-job.yaml",
        "Job",
        lambda d, p, c: c["env"][0]["valueFrom"]["fieldRef"].update(fieldPath="metadata.name"),
        "JOB_COMPLETION_INDEX does not come from the job-completion-index annotation",
    ),
    "undefined variable": (
        "indexed-job.yaml",
        "Job",
        lambda d, p, c: c.update(env=c["env"][1:]),
        "args use $(JOB_COMPLETION_INDEX), which no env entry defines",
    ),
    "cronjob without once": (
        "cronjob.yaml",
        "CronJob",
        lambda d, p, c: c["args"].remove("--once"),
        "a CronJob must run --once",
    ),
    "concurrency": (
        "cronjob.yaml",
        "CronJob",
        lambda d, p, c: d["spec"].update(concurrencyPolicy="Allow"),
        "concurrencyPolicy is not Forbid",
    ),
    "root user": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: c["securityContext"].update(runAsUser=0),
        "runAsUser is not 10001",
    ),
    "pod-level user only": (
        "cronjob.yaml",
        "CronJob",
        lambda d, p, c: (c["securityContext"].pop("runAsUser"), p["securityContext"].update(runAsUser=1000)),
        "runAsUser is not 10001",
    ),
    "non-root off": (
        "indexed-job.yaml",
        "Job",
        lambda d, p, c: (c["securityContext"].pop("runAsNonRoot"), p["securityContext"].pop("runAsNonRoot")),
        "runAsNonRoot is not true",
    ),
    "writable root": (
        "git-sync.yaml",
        "Deployment/imagesync-git",
        lambda d, p, c: c["securityContext"].update(readOnlyRootFilesystem=False),
        "readOnlyRootFilesystem is not true",
    ),
    "capabilities": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: c["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
        "capabilities do not drop ALL",
    ),
    "no cache volume": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: c.update(volumeMounts=[m for m in c["volumeMounts"] if m["mountPath"] != CACHE]),
        "no emptyDir mounted at /home/imagesync/.cache",
    ),
    "manifests off any volume": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: c["args"].__setitem__(1, "/srv/manifests"),
        "the manifests directory /srv/manifests is on no volume",
    ),
    "token in the git URL": (
        "git-sync.yaml",
        "Deployment/imagesync-git",
        lambda d, p, c: _set_arg(c, "--git", "https://x-access-token:ghp_secret@github.com/example/golden-images.git"),
        "credentials in the --git URL",
    ),
    "two replicas rolling": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: d["spec"].update(strategy={"type": "RollingUpdate"}),
        "uses strategy Recreate",
    ),
    "scrape annotation": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: d["spec"]["template"]["metadata"]["annotations"].update({"prometheus.io/port": "9090"}),
        "prometheus.io annotations do not scrape port 8080",
    ),
    "short grace": (
        "deployment.yaml",
        "Deployment",
        lambda d, p, c: p.update(terminationGracePeriodSeconds=10),
        "terminationGracePeriodSeconds is under 60",
    ),
}


@pytest.mark.parametrize("case", list(MUTATIONS), ids=list(MUTATIONS))
def test_a_semantic_mistake_is_caught(case: str) -> None:
    name, selector, change, expected = MUTATIONS[case]
    problems = _mutated(name, selector, change)
    assert any(expected in problem for problem in problems), problems


def test_an_init_container_other_than_git_sync_is_caught() -> None:
    doc = one("git-sync.yaml", "Deployment", "imagesync-git-sync")
    pod_spec(doc)["initContainers"][0]["image"] = "alpine/git:latest"
    assert any("is not git-sync v4" in problem for problem in workload_problems(doc))


# --- ECS ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TASK_DEFINITIONS)
def test_task_definition_matches_register_task_definition(botocore_session: Any, name: str) -> None:
    assert shape_errors(botocore_session, "ecs", "RegisterTaskDefinition", json_file(ECS / name)) == []


@pytest.mark.parametrize("name", TASK_DEFINITIONS)
def test_task_definition_runs_reconcile_as_the_interface_states_it(name: str) -> None:
    assert task_problems(json_file(ECS / name)) == []


def test_the_two_task_definitions_are_a_scheduled_run_and_a_service() -> None:
    once = parse_reconcile(json_file(ECS / "task-definition.json")["containerDefinitions"][0]["command"])
    loop = parse_reconcile(json_file(ECS / "service-task-definition.json")["containerDefinitions"][0]["command"])
    assert once.once and once.listen is None
    assert not loop.once and loop.interval == "30m" and listen_port(loop) == 8080


def test_schedule_matches_create_schedule(botocore_session: Any) -> None:
    assert shape_errors(botocore_session, "scheduler", "CreateSchedule", json_file(ECS / "schedule.json")) == []


def test_schedule_runs_the_scheduled_task_privately() -> None:
    assert schedule_problems(json_file(ECS / "schedule.json"), json_file(ECS / "task-definition.json")) == []


def test_ecs_shape_mistakes_are_caught(botocore_session: Any) -> None:
    task = json_file(ECS / "task-definition.json")
    container = task["containerDefinitions"][0]
    # Kubernetes spells it readOnlyRootFilesystem; ECS does not.
    container["readOnlyRootFilesystem"] = container.pop("readonlyRootFilesystem")
    errors = shape_errors(botocore_session, "ecs", "RegisterTaskDefinition", task)
    assert errors and 'Unknown parameter in containerDefinitions[0]: "readOnlyRootFilesystem"' in errors[0]

    task = json_file(ECS / "task-definition.json")
    task["containerDefinitions"][0]["stopTimeout"] = "60"
    errors = shape_errors(botocore_session, "ecs", "RegisterTaskDefinition", task)
    assert errors and "Invalid type for parameter containerDefinitions[0].stopTimeout" in errors[0]

    task = json_file(ECS / "task-definition.json")
    task["networkMode"] = "awsvcp"
    errors = shape_errors(botocore_session, "ecs", "RegisterTaskDefinition", task)
    assert errors == ["networkMode: 'awsvcp' is not one of ['bridge', 'host', 'awsvpc', 'none']"]

    schedule = json_file(ECS / "schedule.json")
    del schedule["FlexibleTimeWindow"]
    errors = shape_errors(botocore_session, "scheduler", "CreateSchedule", schedule)
    assert errors and 'Missing required parameter in input: "FlexibleTimeWindow"' in errors[0]

    schedule = json_file(ECS / "schedule.json")
    schedule["Target"]["EcsParameters"]["NetworkConfiguration"]["AwsvpcConfiguration"] = schedule["Target"][
        "EcsParameters"
    ]["NetworkConfiguration"].pop("awsvpcConfiguration")
    errors = shape_errors(botocore_session, "scheduler", "CreateSchedule", schedule)
    assert (
        errors and 'Unknown parameter in Target.EcsParameters.NetworkConfiguration: "AwsvpcConfiguration"' in errors[0]
    )

    schedule = json_file(ECS / "schedule.json")
    schedule["Target"]["EcsParameters"]["LaunchType"] = "FARGTE"
    errors = shape_errors(botocore_session, "scheduler", "CreateSchedule", schedule)
    assert errors == ["Target.EcsParameters.LaunchType: 'FARGTE' is not one of ['EC2', 'FARGATE', 'EXTERNAL']"]


def _task_mutation(name: str, change: Any) -> list[str]:
    task = json_file(ECS / name)
    change(task["containerDefinitions"][0])
    return task_problems(task)


def test_ecs_semantic_mistakes_are_caught() -> None:
    def health_path(container: dict[str, Any]) -> None:
        container["healthCheck"]["command"][-1] = container["healthCheck"]["command"][-1].replace("/healthz", "/")

    assert "imagesync: the healthCheck does not fetch /healthz on port 8080" in _task_mutation(
        "service-task-definition.json", health_path
    )
    assert "imagesync: user is not 10001" in _task_mutation("task-definition.json", lambda c: c.update(user="root"))
    assert "imagesync: readonlyRootFilesystem is not true" in _task_mutation(
        "task-definition.json", lambda c: c.update(readonlyRootFilesystem=False)
    )
    assert "imagesync: unrecognized arguments: --shards" in _task_mutation(
        "task-definition.json", lambda c: c["command"].extend(["--shards", "0/2"])
    )
    assert "imagesync: the --listen port 9090 is not mapped" in _task_mutation(
        "service-task-definition.json",
        lambda c: c["command"].__setitem__(c["command"].index("--listen") + 1, "0.0.0.0:9090"),
    )
    assert "imagesync: logs do not go to CloudWatch (awslogs)" in _task_mutation(
        "task-definition.json", lambda c: c["logConfiguration"].update(logDriver="json-file")
    )
    assert "imagesync: no task volume mounted at /home/imagesync/.cache" in _task_mutation(
        "task-definition.json", lambda c: c.update(mountPoints=[])
    )

    schedule = json_file(ECS / "schedule.json")
    task = json_file(ECS / "task-definition.json")
    schedule["Target"]["EcsParameters"]["NetworkConfiguration"]["awsvpcConfiguration"]["AssignPublicIp"] = "ENABLED"
    schedule["Target"]["EcsParameters"]["TaskDefinitionArn"] = schedule["Target"]["EcsParameters"][
        "TaskDefinitionArn"
    ].replace("imagesync-reconcile", "imagesync-reconcile-loop")
    schedule["ScheduleExpression"] = "every 1 hour"
    assert schedule_problems(schedule, task) == [
        "ScheduleExpression 'every 1 hour' is neither rate() nor cron()",
        "TaskDefinitionArn 'arn:aws:ecs:us-east-1:111111111111:task-definition/imagesync-reconcile-loop:1' "
        "is not the family imagesync-reconcile",
        "AssignPublicIp is not DISABLED",
    ]
    task["containerDefinitions"][0]["command"].remove("--once")
    assert "the scheduled task does not run --once" in schedule_problems(json_file(ECS / "schedule.json"), task)


# --- the README's section on running it continuously ----------------------------------------------

# The reconcile command's metrics, as its interface names them.
METRICS = {
    "imagesync_reconcile_total",
    "imagesync_reconcile_duration_seconds",
    "imagesync_last_success_timestamp_seconds",
    "imagesync_drift_resources",
    "imagesync_pending_changes",
    "imagesync_api_calls_total",
    "imagesync_throttled_total",
    "imagesync_source_revision_info",
}


def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Run it continuously\n")
    end = text.index("\n## ", start + 1)
    assert text[end:].startswith("\n## Performance\n"), "the section sits just before ## Performance"
    return text[start:end]


def test_the_readme_names_only_the_reconcile_metrics() -> None:
    named = set(re.findall(r"\bimagesync_[a-z_]+", readme_section()))
    assert named == METRICS


def test_the_readme_alerts_are_well_formed_rules() -> None:
    block = re.search(r"```yaml\n(.*?)```", readme_section(), re.S)
    assert block
    rules = yaml.safe_load(block.group(1))["groups"][0]["rules"]
    assert {rule["alert"] for rule in rules} >= {"ImagesyncDriftPersists", "ImagesyncNoSuccess", "ImagesyncRunsFailing"}
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for"} and rule["expr"].count("(") == rule["expr"].count(")")


def test_the_readme_names_every_deploy_file_and_only_those() -> None:
    section = readme_section()
    named = set(re.findall(r"`((?:deploy/(?:kubernetes|ecs)/)?[a-z-]+\.(?:yaml|json))`", section))
    named |= set(re.findall(r"file://(deploy/ecs/[a-z-]+\.json)", section))
    files = {path.name for path in (ROOT / "deploy").rglob("*") if path.is_file()}
    assert {Path(name).name for name in named} - {"imagesync.yaml"} == files
    for name in re.findall(r"file://(deploy/ecs/[a-z-]+\.json)", section):
        assert (ROOT / name).is_file()
