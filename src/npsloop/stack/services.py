"""The one list of services. The local stack (`make up`), the benchmark, the images, the Kubernetes
manifests and the dashboards are all made from it: a new service is one entry here, then
`make deploy-files` regenerates what is derived from it."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigFile:
    """A file of deploy/k8s/base that a service reads, as a generated ConfigMap mounted read-only:
    a changed file changes the ConfigMap's name, which rolls the pods."""

    configmap: str
    source: str  # in deploy/k8s/base
    key: str  # the file name in the mount
    mount_dir: str
    env: str  # the setting that names the file

    @property
    def path(self) -> str:
        return f"{self.mount_dir}/{self.key}"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int  # its port in the local stack (127.0.0.1)
    summary: str
    database: bool = True  # owns tables (or reads API keys): needs DATABASE_URL, gets a migrations step
    group: str | None = None  # its consumer group, for lag (status, KEDA, alerts)
    topics: tuple[str, ...] = ()  # what the group consumes (the KEDA triggers)
    public: bool = False  # takes traffic from outside: scaled on CPU (HPA) rather than on lag
    replicas: int = 1  # replicas in Kubernetes before autoscaling
    lag_threshold: int = 500  # KEDA: target lag per replica
    config_files: tuple[ConfigFile, ...] = ()  # files it reads, mounted from ConfigMaps in Kubernetes

    @property
    def package(self) -> str:
        return f"npsloop_{self.name}"

    @property
    def member(self) -> str:
        """Its uv workspace member (the image installs only this one)."""
        return f"npsloop-{self.name}"

    @property
    def app(self) -> str:
        return f"{self.package}.main:create_app"

    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "ingest",
        8001,
        "POST /v1/feedback: publishes feedback.received.v1 after Kafka's ack",
        public=True,
        replicas=2,
    ),
    ServiceSpec(
        "classifier",
        8002,
        "score band, sentiment, themes: feedback.classified.v1",
        database=False,
        group="classifier",
        topics=("feedback.received.v1",),
    ),
    ServiceSpec(
        "actions",
        8003,
        "cases in PostgreSQL, published through the outbox",
        group="actions",
        topics=("feedback.classified.v1", "notification.status.v1"),
        # the policy: rules by segment, SLAs, root causes (make policy-check POLICY=deploy/k8s/base/actions-policy.toml)
        config_files=(
            ConfigFile(
                "npsloop-actions-policy", "actions-policy.toml", "policy.toml", "/etc/npsloop", "NPSLOOP_POLICY_FILE"
            ),
        ),
    ),
    ServiceSpec(
        "notifier",
        8004,
        "emails and call tasks, with retries and dedupe",
        group="notifier",
        topics=("notification.requested.v1",),
        lag_threshold=100,
    ),
    ServiceSpec(
        "reporting",
        8005,
        "NPS statistics, KPIs and weekly digests (a read model)",
        group="reporting",
        topics=("feedback.classified.v1", "case.events.v1", "notification.status.v1"),
    ),
)

BY_NAME: dict[str, ServiceSpec] = {s.name: s for s in SERVICES}


def installed_services() -> tuple[ServiceSpec, ...]:
    return tuple(s for s in SERVICES if s.installed())


def missing_services() -> tuple[ServiceSpec, ...]:
    return tuple(s for s in SERVICES if not s.installed())
