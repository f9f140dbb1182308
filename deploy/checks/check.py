"""The offline checks of deploy/ (`make deploy-check`, part of `make test`), run with the tools of
.cache/deploy-tools (deploy/checks/requirements.txt):

1. `kubectl kustomize` renders every overlay;
2. every rendered resource validates: built-in kinds with kubernetes-validate (strict), the custom
   ones (KEDA, Strimzi, External Secrets) with the schemas in deploy/checks/crds; a kind with no
   schema fails;
3. checkov passes on the rendered manifests and the Dockerfiles (skips justified in checkov.yaml);
4. hadolint passes on every Dockerfile;
5. compose.yaml validates against the Compose Specification schema (vendored by check-jsonschema).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
DEPLOY = HERE.parent
REPO = DEPLOY.parent
OUT = REPO / ".cache" / "deploy-check"
BIN = Path(sys.executable).parent
KUBERNETES_VERSION = "1.33.0"  # the oldest release we support (the preStop `sleep` action is GA there)
OVERLAYS = sorted(p.name for p in (DEPLOY / "k8s" / "overlays").iterdir() if p.is_dir())


def step(name: str) -> None:
    print(f"\n== {name}", flush=True)


def run(argv: list[str]) -> None:
    print("$ " + " ".join(argv), flush=True)
    subprocess.run(argv, check=True, cwd=REPO)


def crd_schemas() -> dict[tuple[str, str], dict[str, object]]:
    out = {}
    for path in (HERE / "crds").glob("*.json"):
        group_version, kind = path.stem.rsplit("_", 1)
        group, version = group_version.rsplit("_", 1)
        out[(f"{group}/{version}", kind)] = json.loads(path.read_text())
    return out


def validate(rendered: Path) -> int:
    schemas, count, failures = crd_schemas(), 0, []
    for doc in yaml.safe_load_all(rendered.read_text()):
        if not doc:
            continue
        count += 1
        what = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        schema = schemas.get((doc.get("apiVersion"), doc.get("kind")))
        try:
            if schema is not None:
                jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
            else:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except jsonschema.ValidationError as exc:
            failures.append(f"{what}: {exc.message} at {'/'.join(map(str, exc.absolute_path))}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            failures.append(f"{what}: no schema ({exc.message}); add one to deploy/checks/crds")
    for failure in failures:
        print(f"  INVALID {failure}")
    if failures:
        raise SystemExit(f"{rendered.name}: {len(failures)} of {count} resources are invalid")
    print(f"  {rendered.name}: {count} resources valid (Kubernetes {KUBERNETES_VERSION} and CRD schemas)")
    return count


def schemas_bite() -> None:
    """The CRD schemas refuse what the API server would prune or reject: a check that can fail."""
    schemas = crd_schemas()
    bad = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {
            "scaleTargetRef": {"name": "x"},
            "maxReplicas": 3,  # typo of maxReplicaCount
            "triggers": [{"type": "kafka", "metadata": {"bootstrapServers": "k:9092", "lagThreshold": 5}}],
        },
    }
    errors = list(jsonschema.Draft202012Validator(schemas[("keda.sh/v1alpha1", "ScaledObject")]).iter_errors(bad))
    messages = " | ".join(e.message for e in errors)
    assert "maxReplicas" in messages and "consumerGroup" in messages and "5 is not of type" in messages, messages
    strimzi = "kafka.strimzi.io/v1beta2"
    topic = {"apiVersion": strimzi, "kind": "KafkaTopic", "metadata": {"name": "t"}, "spec": {"partitions": 0}}
    errors = list(jsonschema.Draft202012Validator(schemas[(strimzi, "KafkaTopic")]).iter_errors(topic))
    assert len(errors) == 2, [e.message for e in errors]  # no strimzi.io/cluster label, 0 partitions
    print("  the CRD schemas refuse a typo, a missing field, a wrong type, a missing label")


def main() -> int:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("kubectl not found (make deploy-check installs Debian's kubectl/kubernetes-client)")
    OUT.mkdir(parents=True, exist_ok=True)
    step("kubectl kustomize: every overlay renders")
    rendered = []
    for overlay in OVERLAYS:
        path = OUT / f"{overlay}.yaml"
        with path.open("w") as out:
            subprocess.run([kubectl, "kustomize", f"deploy/k8s/overlays/{overlay}"], check=True, cwd=REPO, stdout=out)
        print(f"  deploy/k8s/overlays/{overlay} -> {path.relative_to(REPO)}")
        rendered.append(path)
    step("schemas: kubernetes-validate and the CRD schemas")
    for path in rendered:
        validate(path)
    dockerfiles = sorted(str(p.relative_to(REPO)) for p in (REPO / "services").glob("*/Dockerfile"))
    schemas_bite()
    step("checkov: the rendered overlays and the Dockerfiles")
    config = str((HERE / "checkov.yaml").relative_to(REPO))
    files = [arg for path in [*(str(p.relative_to(REPO)) for p in rendered), *dockerfiles] for arg in ("-f", path)]
    run([str(BIN / "checkov"), "--config-file", config, "--framework", "kubernetes", "dockerfile", *files])
    step("hadolint")
    run([str(BIN / "hadolint"), "--failure-threshold", "info", *dockerfiles])
    print(f"  {len(dockerfiles)} Dockerfiles clean")
    step("compose.yaml against the Compose Specification")
    run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "deploy/compose.yaml"])
    print("\ndeploy checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
