"""CI's checks of what gets deployed (`make lint` runs them; docs/deployment.md, "What CI checks").

1. hadolint: the Dockerfile is clean.
2. `kubectl kustomize deploy/k8s/overlays/production` renders.
3. Every rendered resource of a built-in kind is valid, strictly (no unknown field), for
   Kubernetes KUBERNETES_VERSION. KEDA's kinds have no built-in schema: they are listed
   here and checked field by field by tests/integration/test_deploy_manifests.py.
4. `manage.py check --deploy --fail-level WARNING` passes with exactly the settings the
   rendered ConfigMap and Secret give the pods.
5. `manage.py makemigrations --check`: the models and the migrations agree.

No Docker daemon runs in CI, so the image itself is not built here.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import kubernetes_validate
import yaml

BASE_DIR = Path(__file__).resolve().parent.parent
OVERLAY = BASE_DIR / "deploy" / "k8s" / "overlays" / "production"
# The oldest Kubernetes the manifests are written for (native preStop sleep, autoscaling/v2,
# policy/v1); kubernetes-validate's schemas go from 1.34 up.
KUBERNETES_VERSION = "1.34.0"
# Custom resources without a schema in kubernetes-validate, checked by the test instead.
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication")}
SETTINGS_CONFIGMAP, SETTINGS_SECRET = "bazaar-settings", "bazaar-secrets"


def tool(name: str) -> str:
    """The virtualenv's copy (pinned in pyproject's dev extras), else one on PATH."""
    bundled = Path(sys.executable).parent / name
    if bundled.is_file():
        return str(bundled)
    found = shutil.which(name)
    if not found:
        sys.exit(
            f"check_deploy: no {name} found, neither in {bundled.parent} nor on PATH. "
            "`make install` brings it on linux/x86_64 (pyproject's dev extras); elsewhere "
            f"install {name} yourself."
        )
    return found


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - our own tools, fixed arguments
        args, cwd=BASE_DIR, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"check_deploy: `{' '.join(args)}` failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def render(overlay: Path = OVERLAY) -> list[dict]:
    text = run(tool("kubectl"), "kustomize", str(overlay))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def validate(resources: list[dict]) -> None:
    failures, custom = [], []
    for resource in resources:
        kind, name = resource["kind"], resource["metadata"]["name"]
        if (resource["apiVersion"], kind) in CUSTOM_KINDS:
            custom.append(f"{kind}/{name}")
            continue
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            failures.append(f"{kind}/{name}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            failures.append(f"{kind}/{name}: {error.message}")
    if failures:
        sys.exit("check_deploy: invalid manifests:\n  " + "\n  ".join(failures))
    print(
        f"{len(resources) - len(custom)} resources valid (strict) for Kubernetes "
        f"{KUBERNETES_VERSION}; {len(custom)} KEDA resources have no built-in schema and are "
        f"checked by tests/integration/test_deploy_manifests.py: {', '.join(custom)}"
    )


def pod_settings(resources: list[dict]) -> dict[str, str]:
    """The environment every pod gets from the settings ConfigMap and Secret."""
    settings = {}
    for resource in resources:
        name = resource["metadata"]["name"]
        if resource["kind"] == "ConfigMap" and name.startswith(f"{SETTINGS_CONFIGMAP}-"):
            settings.update(resource["data"])
        if resource["kind"] == "Secret" and name == SETTINGS_SECRET:
            settings.update(resource["stringData"])
    return settings


def check_deploy(settings: dict[str, str], var_dir: str) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "BAZAAR_VAR_DIR": var_dir,
        **settings,
    }
    python = sys.executable
    print(run(python, "manage.py", "check", "--deploy", "--fail-level", "WARNING", env=env), end="")


def check_migrations(var_dir: str) -> None:
    # The embedded default (SQLite in a throwaway folder): no server needed to compare.
    env = {"PATH": os.environ["PATH"], "BAZAAR_VAR_DIR": var_dir}
    run(sys.executable, "manage.py", "makemigrations", "--check", "--dry-run", env=env)
    print("Migrations match the models.")


def main() -> None:
    run(tool("hadolint"), "Dockerfile")
    print("Dockerfile: hadolint clean.")
    resources = render()
    validate(resources)
    with tempfile.TemporaryDirectory() as var_dir:
        check_deploy(pod_settings(resources), var_dir)
        check_migrations(var_dir)


if __name__ == "__main__":
    main()
