"""deploy/ follows from the one list of services, and keeps the rules of issue 12: every Deployment
probes, drains and runs locked down; consumers never scale past their partitions; each service has
an image; the alerts and the dashboard only name metrics the services export."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from npsloop.stack import deploy_files, render_k8s
from npsloop.stack.services import SERVICES
from npsloop_platform import metrics

REPO = Path(__file__).resolve().parents[1]


def base_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for spec in SERVICES:
        docs += [d for d in yaml.safe_load_all((REPO / "deploy/k8s/base" / f"{spec.name}.yaml").read_text()) if d]
    return docs


def test_the_generated_files_are_what_the_list_of_services_makes() -> None:
    stale = [rel for rel, text in deploy_files.files().items() if (REPO / rel).read_text() != text]
    assert not stale, f"run `make deploy-files`: {stale}"


def test_every_service_has_an_image_a_deployment_a_budget_and_a_scaler() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in base_docs()}
    for spec in SERVICES:
        assert (REPO / "services" / spec.name / "Dockerfile").exists()
        for kind in ("Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"):
            assert (kind, spec.name) in kinds
        assert ("HorizontalPodAutoscaler" if spec.public else "ScaledObject", spec.name) in kinds
        assert (("Job", f"migrate-{spec.name}") in kinds) == spec.database
        dockerfile = (REPO / "services" / spec.name / "Dockerfile").read_text()
        assert f"--package {spec.member}" in dockerfile and "--frozen" in dockerfile and "USER 10001" in dockerfile


def test_deployments_probe_drain_and_run_locked_down() -> None:
    for doc in base_docs():
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert pod["terminationGracePeriodSeconds"] > container["lifecycle"]["preStop"]["sleep"]["seconds"] + 30
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"]
        assert sc["seccompProfile"]["type"] == "RuntimeDefault" and not sc["allowPrivilegeEscalation"]
        assert container["envFrom"] == [{"configMapRef": {"name": "npsloop-config"}}]  # secrets as files, not env
        secrets = next(v for v in pod["volumes"] if "secret" in v)
        assert secrets["secret"]["secretName"] == "npsloop-secrets"
        assert {"name": secrets["name"], "mountPath": "/run/secrets/npsloop", "readOnly": True} in container["volumeMounts"]
        assert not any("value" in e and "PASSWORD" in e["name"] for e in container.get("env", []))


def test_consumers_never_scale_past_the_partitions_of_what_they_consume() -> None:
    partitions = {d["spec"]["topicName"]: d["spec"]["partitions"] for d in render_k8s.topics()}
    for doc in base_docs():
        if doc["kind"] == "ScaledObject":
            topics = [t["metadata"]["topic"] for t in doc["spec"]["triggers"]]
            assert topics and doc["spec"]["maxReplicaCount"] <= min(partitions[t] for t in topics)
    for spec in SERVICES:  # and every topic a service consumes is declared, with its DLQ
        for topic in spec.topics:
            assert topic in partitions and f"{topic}.dlq.{spec.group}" in partitions


def exported_metric_names() -> set[str]:
    names: set[str] = set()
    for collector in [v for v in vars(metrics).values() if hasattr(v, "_type") and hasattr(v, "_name")]:
        base = collector._name
        names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return names


def test_alerts_and_dashboard_name_only_exported_metrics() -> None:
    text = (REPO / "deploy/prometheus/alerts.yaml").read_text() + (REPO / "deploy/grafana/npsloop.json").read_text()
    used = set(re.findall(r"npsloop_[a-z_]+", text)) - {"npsloop_platform"}
    assert used, "no metric named"
    unknown = used - exported_metric_names()
    assert not unknown, unknown
    alerts = {r["alert"] for g in yaml.safe_load((REPO / "deploy/prometheus/alerts.yaml").read_text())["groups"] for r in g["rules"]}
    assert {"NpsloopConsumerLagGrowing", "NpsloopDeadLetters", "NpsloopOutboxStuck", "NpsloopSlaBreachesRising"} <= alerts


async def test_the_migrations_job_command_migrates_and_exits(database_url: str, monkeypatch: Any) -> None:
    from sqlalchemy import text

    from npsloop_platform.db import Database
    from npsloop_platform.migrate import migrate_service

    monkeypatch.setenv("DATABASE_URL", database_url)
    assert await migrate_service("npsloop_actions") == ["access", "actions"]
    db = Database(database_url, pool_size=1)
    try:
        async with db.session() as session:
            tables = (
                await session.execute(text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'actions'"))
            ).scalar_one()
    finally:
        await db.stop()
    assert tables >= 4
