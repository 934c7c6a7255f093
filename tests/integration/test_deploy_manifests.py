"""deploy/k8s/overlays/production as Kubernetes would run it.

The overlay is rendered with the pinned kubectl (scripts/check_deploy.py, which CI also runs),
and what the pods would get is checked against the code: the settings production refuses to
start without, each queue's task timeout, the queue-depth metric the workers scale on. The
web server (gunicorn), the websockets server (uvicorn) and a worker are started through the
image's entrypoint with exactly the pods' settings (only the database and Redis swapped for
the test's), and their probes are run as the kubelet would run them.
"""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.tasks import TaskResultStatus
from django.utils import timezone

from project.background import monitoring
from project.background.models import TaskRecord
from scripts import check_deploy
from tests.fixtures.asgi_server import AsgiServer, database_url, free_port, stop, wait_for
from tests.fixtures.database import OWNER

BASE_DIR = Path(settings.BASE_DIR)
ENTRYPOINT = str(BASE_DIR / "scripts" / "container-entrypoint.sh")
KEDA = "keda.sh/v1alpha1"
# The servers: the pages (gunicorn) and the websockets under /ws/ (uvicorn).
SERVERS = ("bazaar-web", "bazaar-websockets")


def find(resources: list[dict], kind: str, name: str) -> dict:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def of_kind(resources: list[dict], kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def container(workload: dict) -> dict:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def pod_labels(workload: dict) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return check_deploy.render()


@pytest.fixture(scope="module")
def pod_env(rendered) -> dict[str, str]:
    """What every pod gets from the settings ConfigMap and the Secret."""
    return check_deploy.pod_settings(rendered)


def site_host(pod_env: dict[str, str]) -> str:
    """The site's host: the first of ALLOWED_HOSTS (the overlay says it once)."""
    return pod_env["ALLOWED_HOSTS"].split(",")[0]


def clean_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A process environment with nothing of this test process's settings in it."""
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "BAZAAR_VAR_DIR": str(tmp_path / "var"),
        **variables,
    }


def on_test_services(pod_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The pods' settings with the test database (as the app role) and the test Redis."""
    return clean_env(
        tmp_path,
        **{
            **pod_env,
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CACHE_KEY_PREFIX": f"{settings.CACHES['default']['KEY_PREFIX']}-deploy",
            "MEDIA_ROOT": str(tmp_path / "files" / "media"),
            "PRIVATE_FILES_ROOT": str(tmp_path / "files" / "private"),
        },
    )


SETTINGS_VIEW = """
import json
import django
django.setup()
from django.conf import settings
from project.background import conf
print(json.dumps({
    "database": settings.DATABASES["default"]["ENGINE"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "embedded_dispatcher": settings.EVENTS_EMBEDDED_DISPATCHER,
    "mailer": settings.MAILERS["default"]["BACKEND"],
    "static_storage": settings.STORAGES["staticfiles"]["BACKEND"],
    "debug": settings.DEBUG,
    "queues": {queue: conf.queue_timeout(queue) for queue in conf.queue_names()},
}))
"""


@pytest.fixture(scope="module")
def pod_settings(pod_env, tmp_path_factory) -> dict:
    """project.settings as a pod loads it from the rendered ConfigMap and Secret."""
    env = clean_env(tmp_path_factory.mktemp("settings"), **pod_env)
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", SETTINGS_VIEW],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "project.settings"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# A value of the right shape for variables that are checked, not just required.
STAND_INS = {"API_JWT_KEYS": "stand-in=Zq4vN8tR2xL6pW0sB3mY7cJ1hK5dF9gA-uE_oI2nQ7w"}


def required_in_production(tmp_path: Path) -> list[str]:
    """The variables project.settings refuses to start without when BAZAAR_MODE=production,
    found by starting it with none and adding each one it names until it starts."""
    env = clean_env(tmp_path, BAZAAR_MODE="production")
    found: list[str] = []
    for _ in range(20):
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-c", "import project.settings"],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return found
        missing = re.search(r"(\w+) must be set when BAZAAR_MODE=production", result.stderr)
        assert missing, f"settings failed for another reason:\n{result.stderr}"
        found.append(missing[1])
        env[missing[1]] = STAND_INS.get(missing[1], "required.example.com")
    raise AssertionError(f"settings still refuse to start after {found}")


def test_every_variable_production_requires_reaches_every_pod(rendered, pod_env, tmp_path):
    required = required_in_production(tmp_path)

    assert "SECRET_KEY" in required
    assert "API_JWT_KEYS" in required
    assert [name for name in required if not pod_env.get(name)] == []
    workloads = [*of_kind(rendered, "Deployment").values(), *of_kind(rendered, "Job").values()]
    configmap = next(
        name for name in of_kind(rendered, "ConfigMap") if name.startswith("bazaar-settings-")
    )
    for workload in workloads:
        sources = container(workload)["envFrom"]
        assert {"configMapRef": {"name": configmap}} in sources, workload["metadata"]["name"]
        assert {"secretRef": {"name": "bazaar-secrets"}} in sources, workload["metadata"]["name"]


def test_the_pods_settings_are_the_production_shape(pod_settings):
    assert pod_settings["database"] == "project.db.backends.postgresql"
    # Django's Redis cache with one pool per process, Sentinel-aware (project.redis_cache).
    assert pod_settings["cache"] == "project.redis_cache.RedisCache"
    assert pod_settings["channel_layer"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    # The dispatcher Deployment delivers events; the web pods must not.
    assert pod_settings["embedded_dispatcher"] is False
    assert pod_settings["mailer"] == "project.background.smtp.EmailBackend"
    assert pod_settings["static_storage"] == (
        "whitenoise.storage.CompressedManifestStaticFilesStorage"
    )
    assert pod_settings["debug"] is False


def test_one_worker_deployment_per_queue_and_every_process_kind(rendered, pod_settings):
    deployments = of_kind(rendered, "Deployment")
    workers = {
        name.removeprefix("bazaar-worker-"): container(deployment)["args"]
        for name, deployment in deployments.items()
        if name.startswith("bazaar-worker-")
    }

    assert workers == {queue: ["worker", queue] for queue in pod_settings["queues"]}
    assert container(deployments["bazaar-web"])["args"] == ["web"]
    assert container(deployments["bazaar-websockets"])["args"] == ["websockets"]
    assert container(deployments["bazaar-dispatcher"])["args"] == ["dispatcher"]
    assert container(find(rendered, "Job", "bazaar-migrate"))["args"] == ["migrate"]
    assert len({container(d)["image"] for d in deployments.values()}) == 1


def test_termination_grace_outlasts_each_queues_task_timeout(rendered, pod_settings):
    for queue, timeout in pod_settings["queues"].items():
        pod = find(rendered, "Deployment", f"bazaar-worker-{queue}")["spec"]["template"]["spec"]
        pre_stop = pod["containers"][0].get("lifecycle", {}).get("preStop", {})
        pre_stop_seconds = pre_stop.get("sleep", {}).get("seconds", 0)
        # run_worker lets running tasks finish for the queue's timeout + 5 s after SIGTERM.
        assert pod["terminationGracePeriodSeconds"] > pre_stop_seconds + timeout + 5, queue

    entrypoint = Path(ENTRYPOINT).read_text()
    graceful = {
        "bazaar-web": int(re.search(r"--graceful-timeout (\d+)", entrypoint)[1]),  # gunicorn
        "bazaar-websockets": int(re.search(r"--timeout-graceful-shutdown (\d+)", entrypoint)[1]),
    }
    for name, seconds in graceful.items():
        pod = find(rendered, "Deployment", name)["spec"]["template"]["spec"]
        pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] > pre_stop + seconds, name


@pytest.mark.parametrize("name", SERVERS)
def test_server_probes_are_healthz_and_readyz_on_the_http_port(rendered, name):
    web = container(find(rendered, "Deployment", name))

    assert web["ports"] == [{"name": "http", "containerPort": 8000}]
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert web[probe]["httpGet"]["port"] == "http"


def test_worker_probes_run_worker_alive_for_their_queue(rendered, pod_settings):
    for queue in pod_settings["queues"]:
        worker = container(find(rendered, "Deployment", f"bazaar-worker-{queue}"))
        command = ["python", "manage.py", "worker_alive", queue]
        assert worker["livenessProbe"]["exec"]["command"] == command
        assert worker["startupProbe"]["exec"]["command"] == command


@pytest.mark.parametrize("name", SERVERS)
def test_servers_autoscale_on_cpu_and_memory_with_the_stated_behaviour(rendered, name):
    hpa = find(rendered, "HorizontalPodAutoscaler", name)

    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]}
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }
    assert hpa["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 60
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert hpa["spec"]["minReplicas"] >= 2
    # Utilization is of the requests: the container must state both.
    requests = container(find(rendered, "Deployment", name))["resources"]["requests"]
    assert set(requests) == {"cpu", "memory"}


def test_workers_scale_on_their_queue_depth_above_1000(rendered, pod_settings):
    """KEDA's kinds have no schema in kubernetes-validate: their fields are checked here."""
    scaled = of_kind(rendered, "ScaledObject")
    auth = find(rendered, "TriggerAuthentication", "bazaar-keda-postgres")
    secret = find(rendered, "Secret", "bazaar-secrets")

    assert set(scaled) == {f"bazaar-worker-{queue}" for queue in pod_settings["queues"]}
    for name, scaled_object in scaled.items():
        spec = scaled_object["spec"]
        assert scaled_object["apiVersion"] == KEDA
        assert spec["scaleTargetRef"] == {"name": name}
        find(rendered, "Deployment", name)
        assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "postgresql"
        assert trigger["metadata"]["targetQueryValue"] == "1000"
        assert trigger["authenticationRef"] == {"name": "bazaar-keda-postgres"}
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert auth["apiVersion"] == KEDA
    (reference,) = auth["spec"]["secretTargetRef"]
    assert reference["parameter"] == "connection"
    assert reference["name"] == "bazaar-secrets"
    assert reference["key"] in secret["stringData"]


@pytest.mark.django_db
def test_the_scaling_query_counts_what_bazaar_task_queue_depth_reports(rendered):
    now = timezone.now()
    states = [
        # (queue, status, due in seconds, how many)
        ("emails", TaskResultStatus.READY, -5, 7),
        ("emails", TaskResultStatus.READY, 600, 2),  # waiting for a retry: not yet work
        ("emails", TaskResultStatus.RUNNING, -5, 3),
        ("emails", TaskResultStatus.SUCCESSFUL, -5, 4),
        ("critical", TaskResultStatus.READY, -1, 5),
        ("analytics", TaskResultStatus.FAILED, -5, 1),
    ]
    before = {queue: stats["depth"] for queue, stats in monitoring.queue_stats().items()}
    number = 0
    for queue, status, due, count in states:
        for _ in range(count):
            number += 1
            TaskRecord.objects.create(
                id=f"deploy-{number}",
                task_path="shop.tasks.example",
                queue=queue,
                status=status,
                enqueued_at=now - timedelta(minutes=1),
                next_attempt_at=now + timedelta(seconds=due),
            )
    depths = {queue: stats["depth"] for queue, stats in monitoring.queue_stats().items()}

    counted = {}
    with connection.cursor() as cursor:
        for name, scaled_object in of_kind(rendered, "ScaledObject").items():
            cursor.execute(scaled_object["spec"]["triggers"][0]["metadata"]["query"])
            counted[name.removeprefix("bazaar-worker-")] = cursor.fetchone()[0]

    assert counted == depths
    assert counted["emails"] - before["emails"] == 7
    assert counted["critical"] - before["critical"] == 5
    assert counted["analytics"] - before["analytics"] == 0


def test_keda_reads_the_queue_depth_without_the_apps_row_scope(rendered, django_db_blocker):
    """KEDA's connection is a plain one as the app role, not Django's (which starts every
    connection in the 'system' row-level-security scope): the task table must not hide rows
    from it. Committed rows, so they are seen from another connection."""
    query = find(rendered, "ScaledObject", "bazaar-worker-default")["spec"]["triggers"][0]
    now = timezone.now()
    with django_db_blocker.unblock():
        TaskRecord.objects.create(
            id="deploy-keda-view",
            task_path="shop.tasks.example",
            queue="default",
            enqueued_at=now,
            next_attempt_at=now - timedelta(seconds=1),
        )
        try:
            with psycopg.connect(database_url()) as keda:
                seen = keda.execute(query["metadata"]["query"]).fetchone()[0]
        finally:
            TaskRecord.objects.filter(id="deploy-keda-view").delete()

    assert seen >= 1


def test_ingress_sends_websockets_to_uvicorn_and_pages_to_gunicorn(rendered, pod_env):
    websockets = find(rendered, "Ingress", "bazaar-websockets")
    pages = find(rendered, "Ingress", "bazaar-web")
    host = site_host(pod_env)
    deployments = of_kind(rendered, "Deployment")

    for ingress, path in ((websockets, "/ws/"), (pages, "/")):
        (rule,) = ingress["spec"]["rules"]
        assert rule["host"] == host
        assert ingress["spec"]["tls"][0]["hosts"] == [host]
        (route,) = rule["http"]["paths"]
        assert route["path"] == path
        name = ingress["metadata"]["name"]
        assert route["backend"]["service"] == {"name": name, "port": {"name": "http"}}
        service = find(rendered, "Service", name)
        assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
        served_by = [
            deployment
            for deployment in deployments.values()
            if service["spec"]["selector"].items() <= pod_labels(deployment).items()
        ]
        assert [d["metadata"]["name"] for d in served_by] == [name]
    assert container(deployments["bazaar-websockets"])["args"] == ["websockets"]
    assert container(deployments["bazaar-web"])["args"] == ["web"]
    timeouts = websockets["metadata"]["annotations"]
    assert int(timeouts["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(timeouts["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600


def test_every_deployment_has_a_disruption_budget_over_its_pods(rendered):
    budgets = of_kind(rendered, "PodDisruptionBudget")
    deployments = of_kind(rendered, "Deployment")

    assert set(budgets) == set(deployments)
    for name, budget in budgets.items():
        selector = budget["spec"]["selector"]["matchLabels"]
        covered = [
            d
            for d, deployment in deployments.items()
            if selector.items() <= pod_labels(deployment).items()
        ]
        assert covered == [name]
        assert budget["spec"]["maxUnavailable"] == 1


def test_only_the_migrate_job_gets_the_owner_roles_url(rendered):
    job = container(find(rendered, "Job", "bazaar-migrate"))
    migrate_secret = find(rendered, "Secret", "bazaar-migrate-secrets")

    (variable,) = job["env"]
    assert variable["name"] == "DATABASE_MIGRATE_URL"
    assert variable["valueFrom"]["secretKeyRef"] == {
        "name": "bazaar-migrate-secrets",
        "key": "DATABASE_MIGRATE_URL",
    }
    assert "DATABASE_MIGRATE_URL" in migrate_secret["stringData"]
    for deployment in of_kind(rendered, "Deployment").values():
        assert "bazaar-migrate-secrets" not in json.dumps(deployment)
    assert "DATABASE_MIGRATE_URL" not in find(rendered, "Secret", "bazaar-secrets")["stringData"]


def test_the_rollout_phases_put_the_migrate_job_before_every_deployment(rendered):
    """docs/deployment.md's rollout applies by label: first what has no component label
    (settings, secrets, volume), then component=migrate, then every other component."""

    def phase(resource: dict) -> str:
        component = resource["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        return "shared" if component is None else "migrate" if component == "migrate" else "rest"

    phases = {(r["kind"], r["metadata"]["name"]): phase(r) for r in rendered}

    assert [name for name, where in phases.items() if where == "migrate"] == [
        ("Job", "bazaar-migrate")
    ]
    assert {where for (kind, _), where in phases.items() if kind == "Deployment"} == {"rest"}
    for kind in ("Namespace", "ConfigMap", "Secret", "PersistentVolumeClaim"):
        assert {where for (k, _), where in phases.items() if k == kind} == {"shared"}, kind


def test_the_migrate_job_connects_as_the_owner_role(rendered, pod_env, django_db_setup, tmp_path):
    """The Job's command with the pods' settings, DATABASE_URL naming a role that does not
    exist: `migrate` must use DATABASE_MIGRATE_URL (--plan: it changes nothing)."""
    job = container(find(rendered, "Job", "bazaar-migrate"))
    test_database = connection.settings_dict
    owner_url = (
        f"postgres://{OWNER.name}:{OWNER.password}@{test_database['HOST'] or '127.0.0.1'}:"
        f"{test_database['PORT'] or 5432}/{test_database['NAME']}"
    )
    env = {
        **on_test_services(pod_env, tmp_path),
        "DATABASE_URL": owner_url.replace(f"{OWNER.name}:{OWNER.password}", "bazaar_nobody:x"),
        job["env"][0]["name"]: owner_url,
    }

    result = subprocess.run(  # noqa: S603
        [ENTRYPOINT, *job["args"], "--plan"], env=env, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "No planned migration operations." in result.stdout


def test_the_site_host_is_said_once_in_the_overlay(tmp_path):
    """An operator changes ALLOWED_HOSTS in the overlay; the Ingress and the probes follow."""
    k8s = tmp_path / "k8s"
    shutil.copytree(check_deploy.OVERLAY.parent.parent, k8s)
    overlay = k8s / "overlays" / "production"
    (overlay / "settings.env").write_text(
        "ALLOWED_HOSTS=market.example.org,www.market.example.org\nEMAIL_HOST=smtp.example.org\n"
    )

    resources = check_deploy.render(overlay)

    for ingress in of_kind(resources, "Ingress").values():
        assert ingress["spec"]["rules"][0]["host"] == "market.example.org"
        assert ingress["spec"]["tls"][0]["hosts"] == ["market.example.org"]
    for name in SERVERS:
        server = container(find(resources, "Deployment", name))
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert server[probe]["httpGet"]["httpHeaders"] == [
                {"name": "Host", "value": "market.example.org"}
            ], (name, probe)


def test_the_entrypoint_refuses_an_unknown_process():
    result = subprocess.run(  # noqa: S603
        [ENTRYPOINT, "webserver"], capture_output=True, text=True, check=False
    )

    assert result.returncode == 64
    assert "usage:" in result.stderr


# --- The processes, started as the pods start them --------------------------------------


def get_page(
    port: int, path: str, headers: dict[str, str]
) -> tuple[int, http.client.HTTPMessage, str]:
    """Status, headers (any case) and body of a GET."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        client.request("GET", path, headers=headers)
        reply = client.getresponse()
        return reply.status, reply.headers, reply.read().decode()
    finally:
        client.close()


@dataclass
class ServerPod(AsgiServer):
    """`container-entrypoint.sh <role>` (`web` or `websockets`) with a pod's environment, on
    a free port (PORT)."""

    role: str = "web"
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> "ServerPod":
        self.port = self.port or free_port()
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603
                [ENTRYPOINT, self.role],
                env={**self.env, "PORT": str(self.port)},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._accepting, timeout=60, interval=0.2)
        return self


def start_pod(role: str, pod_env: dict[str, str], directory: Path) -> ServerPod:
    env = on_test_services(pod_env, directory)
    return ServerPod(log=directory / f"{role}.log", role=role, env=env).start()


@pytest.fixture(scope="module")
def web_pod(pod_env, django_db_setup, tmp_path_factory) -> Iterator[int]:
    pod = start_pod("web", pod_env, tmp_path_factory.mktemp("web-pod"))
    try:
        yield pod.port
    finally:
        pod.stop()


@pytest.fixture(scope="module")
def websockets_pod(pod_env, django_db_setup, tmp_path_factory) -> Iterator[int]:
    pod = start_pod("websockets", pod_env, tmp_path_factory.mktemp("websockets-pod"))
    try:
        yield pod.port
    finally:
        pod.stop()


@pytest.mark.parametrize(("name", "pod"), [(SERVERS[0], "web_pod"), (SERVERS[1], "websockets_pod")])
def test_the_server_probes_pass_as_the_kubelet_sends_them(rendered, pod_env, name, pod, request):
    port = request.getfixturevalue(pod)
    server = container(find(rendered, "Deployment", name))

    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = server[probe]["httpGet"]
        headers = {header["name"]: header["value"] for header in get["httpHeaders"]}
        status, _, body = get_page(port, get["path"], headers)
        assert status == 200, (probe, body)
    _, _, readiness = get_page(port, "/readyz", {"Host": site_host(pod_env)})
    assert json.loads(readiness)["database"] == "ok"
    assert json.loads(readiness)["cache"] == "ok"


def test_the_web_pod_is_gunicorn_and_the_websockets_pod_uvicorn(pod_env, web_pod, websockets_pod):
    host = {"Host": site_host(pod_env)}

    assert get_page(web_pod, "/healthz", host)[1]["server"] == "gunicorn"
    assert get_page(websockets_pod, "/healthz", host)[1]["server"] == "uvicorn"


def test_without_the_probes_host_header_production_django_refuses(web_pod):
    """Why the probes carry a Host: the kubelet's default is the pod's address."""
    status, _, _ = get_page(web_pod, "/healthz", {"Host": "10.1.2.3:8000"})

    assert status == 400


def test_the_images_healthcheck_asks_healthz_with_an_allowed_host(pod_env, web_pod, tmp_path):
    """The Dockerfile's HEALTHCHECK for a web container (container-healthz.py): healthy
    while the server answers, unhealthy with a reason when nothing listens."""
    env = clean_env(tmp_path, **pod_env)
    healthz = [sys.executable, str(BASE_DIR / "scripts" / "container-healthz.py")]

    healthy = subprocess.run([*healthz, str(web_pod)], env=env, capture_output=True, check=False)  # noqa: S603
    down = subprocess.run(  # noqa: S603
        [*healthz, str(free_port())], env=env, capture_output=True, text=True, check=False
    )

    assert healthy.returncode == 0, healthy.stderr
    assert down.returncode == 1
    assert "/healthz did not answer" in down.stderr


def test_pages_redirect_to_https_but_the_probes_do_not(pod_env, web_pod):
    """The kubelet probes over plain HTTP; a browser's plain-HTTP request is sent to https."""
    host = site_host(pod_env)

    status, headers, _ = get_page(web_pod, "/", {"Host": host})
    probed, _, _ = get_page(web_pod, "/healthz", {"Host": host})

    assert status == 301
    assert headers["location"] == f"https://{host}/"
    assert probed == 200


def probe(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run an exec probe as the kubelet does: in the container's environment and workdir."""
    return subprocess.run(  # noqa: S603
        command, cwd=BASE_DIR, env=env, capture_output=True, text=True, check=False
    )


def test_a_worker_pod_passes_its_liveness_probe_and_stops_on_sigterm(
    rendered, pod_env, transactional_db, tmp_path
):
    """transactional_db: what the cluster's scheduler writes is flushed afterwards."""
    deployment = find(rendered, "Deployment", "bazaar-worker-critical")
    worker = container(deployment)
    env = on_test_services(pod_env, tmp_path)
    liveness = worker["livenessProbe"]["exec"]["command"]

    before = probe(liveness, env)
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603
            [ENTRYPOINT, *worker["args"]],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        started = time.monotonic()
        # Each probe run costs a Django start-up: run it once the heartbeat is there.
        heartbeat = Path(env["BAZAAR_VAR_DIR"]) / "run" / "worker-critical.alive"
        wait_for(heartbeat.exists, timeout=90, interval=0.2)
        alive_after = time.monotonic() - started
        after = probe(liveness, env)
        process.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        process.wait(
            timeout=deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        )
        stopped_after = time.monotonic() - stopping
    finally:
        stop(process)

    assert before.returncode == 1
    assert "the critical worker is not running" in before.stderr
    assert after.returncode == 0, after.stderr
    assert "The critical worker is alive" in after.stdout
    assert process.returncode == 0, log.read_text()
    print(
        f"worker heartbeat after {alive_after:.1f} s, stopped {stopped_after:.1f} s after SIGTERM"
    )
