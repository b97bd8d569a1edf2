"""deploy/k8s rendered by the real kustomize: every manifest validates against the Kubernetes schemas,
the references between them hold, and the ports, probe paths, env var names and config keys they use
are ones tollway really serves and reads (a real `tollway serve` started from the rendered ConfigMap)."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import kubernetes_validate
import psycopg
import pytest
import yaml

from tests.deploy.support import (
    GATEWAY,
    TARGETS,
    config_text,
    find,
    gateway_config,
    gateway_container,
    instructions,
    labels_match,
    one,
    plain_env,
    pod_specs,
    referenced_variables,
    render,
    secret_env,
)
from tests.processes import free_port, running
from tollway.config import load_config
from tollway.config_env import ENV_CONFIG, ENV_HOST, ENV_PORT, SERVE_VARIABLES
from tollway.gateway.command import SHUTDOWN_TIMEOUT_S
from tollway.upstream.proxy import PROXY_VARIABLES

# The oldest Kubernetes still supported by its major clouds' long-term channels, and the newest schema bundled.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CRD_KINDS = {"ServiceMonitor"}  # not in the Kubernetes schemas: checked by hand below
DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")

targets = pytest.mark.parametrize("target", list(TARGETS))


@targets
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(target: str, version: str) -> None:
    docs = render(target)
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any error, unknown fields included
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
                                         "ConfigMap", "Secret", "ServiceMonitor"}


@targets
def test_service_monitors_have_the_prometheus_operator_shape_and_select_a_real_port(target: str) -> None:
    """The fields of monitoring.coreos.com/v1 ServiceMonitor used here, as its CRD defines them."""
    docs = render(target)
    monitors = find(docs, "ServiceMonitor")
    assert monitors
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert set(monitor["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
        selected = [s for s in find(docs, "Service")
                    if labels_match(monitor["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {}))]
        assert selected, f"ServiceMonitor {monitor['metadata']['name']} selects no Service"
        for endpoint in monitor["spec"]["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
            assert endpoint["path"].startswith("/")
            for key in ("interval", "scrapeTimeout"):
                assert key not in endpoint or DURATION.match(endpoint[key]), f"{key} {endpoint[key]!r}"
            for service in selected:
                assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]


@targets
def test_selectors_and_references_point_at_objects_that_exist(target: str) -> None:
    docs = render(target)
    pods = {name: one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"] for name, _ in pod_specs(docs)}
    for service in find(docs, "Service"):
        assert [n for n, labels in pods.items() if labels_match(service["spec"]["selector"], labels)], \
            f"Service {service['metadata']['name']} selects no pods"
    for hpa in find(docs, "HorizontalPodAutoscaler"):
        assert "replicas" not in one(docs, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])["spec"]
    for budget in find(docs, "PodDisruptionBudget"):
        assert labels_match(budget["spec"]["selector"]["matchLabels"], pods[GATEWAY])
    for hpa in find(docs, "HorizontalPodAutoscaler"):
        one(docs, hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"])
    secrets = {s["metadata"]["name"]: set(s.get("stringData", {})) | set(s.get("data", {}))
               for s in find(docs, "Secret")}
    for name, pod in pod_specs(docs):
        for container in pod["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    assert ref["key"] in secrets.get(ref["name"], set()), f"{name}: {env['name']} -> {ref}"
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                one(docs, "ConfigMap", volume["configMap"]["name"])


@targets
def test_the_pod_outlives_the_gateways_drain(target: str) -> None:
    pod = one(render(target), "Deployment", GATEWAY)["spec"]["template"]["spec"]
    pre_stop = gateway_container(render(target))["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > SHUTDOWN_TIMEOUT_S + float(pre_stop[1]) + 5  # + the ledger flush


@targets
def test_the_gateway_listens_where_the_service_and_probes_send_traffic(target: str) -> None:
    docs = render(target)
    container = gateway_container(docs)
    env = plain_env(container)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert int(env[ENV_PORT]) == ports["http"]
    assert env[ENV_HOST] == "0.0.0.0"
    service = one(docs, "Service", GATEWAY)
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", ports["http"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    pod = one(docs, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    config_volume = next(v["name"] for v in pod["volumes"] if "configMap" in v)
    assert env[ENV_CONFIG] == f"{mounts[config_volume]}/tollway.yaml"


@targets
def test_every_env_var_is_one_tollway_reads_and_every_one_the_config_needs_is_set(target: str) -> None:
    docs = render(target)
    container = gateway_container(docs)
    text = config_text(docs)
    _, config = gateway_config(docs)
    needed = {p["api_key_env"] for p in config["providers"].values() if p.get("api_key_env")}
    needed |= set(config.get("server", {}).get("api_keys_env", []))
    needed |= {config["server"]["admin_key_env"]} if config.get("server", {}).get("admin_key_env") else set()
    read = set(SERVE_VARIABLES) | set(PROXY_VARIABLES) | needed | referenced_variables(text)
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), f"a variable is set twice: {names}"
    assert set(names) <= read, f"set but never read by tollway: {set(names) - read}"
    assert needed <= set(names), f"the config needs {needed - set(names)}, which the pod does not set"
    assert not any("valueFrom" not in e and e["name"] in needed for e in container["env"]), "secrets come from Secrets"


@targets
def test_the_configmap_config_loads_with_tollways_own_loader(target: str, tmp_path: Path, monkeypatch) -> None:
    text = config_text(render(target))
    for name in referenced_variables(text):
        monkeypatch.delenv(name, raising=False)  # the defaults written in the file must make a valid config
    path = tmp_path / "tollway.yaml"
    path.write_text(text)
    config, _ = load_config(path)
    assert config.route_groups


def test_the_store_overlays_give_the_gateway_redis_and_postgresql() -> None:
    for target in ("external-services", "dev", "self-hosted"):
        assert {"TOLLWAY_REDIS_URL", "TOLLWAY_DATABASE_URL"} <= set(secret_env(gateway_container(render(target))))
    dev = render("dev")
    assert {d["metadata"]["name"] for d in find(dev, "Service")} >= {"redis", "postgres", GATEWAY}
    urls = one(dev, "Secret", "tollway-stores")["stringData"]
    assert urls["TOLLWAY_REDIS_URL"].startswith("redis://redis:6379/")
    assert urls["TOLLWAY_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in urls["TOLLWAY_DATABASE_URL"]


def test_the_self_hosted_tier_separates_prefill_and_decode() -> None:
    docs = render("self-hosted")

    def engine(name: str) -> tuple[int, dict, list[str]]:
        """Pods (the HPA's minimum where an HPA owns the count), resources and arguments of one tier."""
        deployment = one(docs, "Deployment", name)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        scaler = find(docs, "HorizontalPodAutoscaler", name)
        if scaler:
            assert "replicas" not in deployment["spec"], "an apply would reset what the HPA scaled to"
        count = scaler[0]["spec"]["minReplicas"] if scaler else deployment["spec"]["replicas"]
        return count, container["resources"], container["args"]

    for name, replicas, tp, role in (("vllm-prefill", 2, 2, "kv_producer"), ("vllm-decode", 4, 1, "kv_consumer")):
        count, resources, args = engine(name)
        assert count == replicas
        assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == tp
        assert f"--tensor-parallel-size={tp}" in args
        assert any(a.startswith("--kv-transfer-config=") and f'"kv_role":"{role}"' in a for a in args)
    hpa = one(docs, "HorizontalPodAutoscaler", "vllm-decode")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (4, 20)
    assert hpa["metrics"][0]["type"] == "Pods"
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == "vllm_num_requests_waiting"
    _, config = gateway_config(docs)
    group = config["route_groups"]["chat"]
    self_hosted = group["deployments"][0]
    assert config["providers"][config["deployments"][self_hosted]["provider"]]["kind"] == "vllm"
    assert group["spillover"]["waiting_above"] >= 0
    router_args = one(docs, "Deployment", "vllm-router")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"--prefill=http://vllm-prefill:8000", "--decode=http://vllm-decode:8000"} <= set(router_args)
    assert "http://vllm-router:8000/v1" in config_text(docs)


# --- a real gateway from the rendered manifests -----------------------------------------------------------

def _get(url: str) -> tuple[int, str]:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=10) as resp:
        return resp.status, resp.read().decode()


def _serve_as_the_pod_would(docs, tmp_path: Path, emulator, extra_env: dict[str, str]):
    """`tollway serve` with the pod's command, its plain env, the ConfigMap's tollway.yaml, test values for
    its Secrets, and the providers' ${..._BASE_URL} pointed at the emulator. Only the port is free-chosen."""
    container = gateway_container(docs)
    config = tmp_path / "tollway.yaml"
    config.write_text(config_text(docs))
    port = free_port()
    env = {**plain_env(container), ENV_CONFIG: str(config), ENV_PORT: str(port), "HOME": str(tmp_path),
           **{name: f"test-{name.lower()}" for name in secret_env(container)}, **extra_env}
    env.update({name: emulator.base_url(dialect) for name, dialect in
                (("DEEPSEEK_BASE_URL", "deepseek"), ("DASHSCOPE_BASE_URL", "qwen"), ("VLLM_BASE_URL", "vllm"))})
    env["VLLM_METRICS_URL"] = f"{emulator.url}/vllm/metrics"
    cmd = [sys.executable, "-m", "tollway.cli", "serve"]  # the image's ENTRYPOINT, no arguments
    return running(cmd, f"http://127.0.0.1:{port}/healthz", tmp_path / "gateway.log", env=env), port, env


def _check_the_pod_paths(docs, port: int, env: dict[str, str]) -> None:
    container = gateway_container(docs)
    for probe in ("readinessProbe", "livenessProbe"):
        status, body = _get(f"http://127.0.0.1:{port}{container[probe]['httpGet']['path']}")
        assert status == 200, f"{probe}: {body}"
    for monitor in find(docs, "ServiceMonitor", GATEWAY):
        for endpoint in monitor["spec"]["endpoints"]:
            status, body = _get(f"http://127.0.0.1:{port}{endpoint['path']}")
            assert status == 200 and "# TYPE" in body and "tollway_" in body
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions", method="POST",
        data=b'{"model": "chat", "messages": [{"role": "user", "content": "hello"}]}',
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {env['TOLLWAY_CLIENT_KEY']}"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as resp:
        assert resp.status == 200


@pytest.mark.slow
def test_a_gateway_started_from_the_base_serves_every_path_it_uses(tmp_path, emulator) -> None:
    docs = render("base")
    context, port, env = _serve_as_the_pod_would(docs, tmp_path, emulator, {})
    with context:
        _check_the_pod_paths(docs, port, env)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["external-services", "self-hosted"])
def test_a_gateway_from_a_store_overlay_runs_on_real_redis_and_postgresql(target, tmp_path, emulator, redis_url,
                                                                          postgres_url) -> None:
    docs = render(target)
    stores = {"TOLLWAY_REDIS_URL": redis_url, "TOLLWAY_DATABASE_URL": postgres_url}
    context, port, env = _serve_as_the_pod_would(docs, tmp_path, emulator, stores)
    with context:
        _check_the_pod_paths(docs, port, env)

    first = gateway_config(docs)[1]["route_groups"]["chat"]["deployments"][0]
    with psycopg.connect(postgres_url) as conn:  # the gateway has stopped: its ledger rows are flushed
        deployments = [row[0] for row in conn.execute("SELECT deployment FROM requests")]
    assert deployments == [first], "the request's row is in the PostgreSQL named by TOLLWAY_DATABASE_URL, " \
                                   "from the group's first deployment (self-hosted first in the self-hosted tier)"


@pytest.mark.slow
def test_the_containers_healthcheck_command_passes_against_a_running_gateway(tmp_path, emulator) -> None:
    healthcheck = next(args for name, args in instructions() if name == "HEALTHCHECK")
    command = yaml.safe_load(healthcheck[healthcheck.index("CMD") + len("CMD"):].strip())  # exec form: JSON
    context, port, env = _serve_as_the_pod_would(render("base"), tmp_path, emulator, {})
    with context:
        passed = subprocess.run([sys.executable, *command[1:]], env={ENV_PORT: str(port)}, timeout=10)
        assert passed.returncode == 0
    failed = subprocess.run([sys.executable, *command[1:]], env={ENV_PORT: str(port)}, timeout=10,
                            capture_output=True)
    assert failed.returncode != 0, "the healthcheck fails once nothing listens"
