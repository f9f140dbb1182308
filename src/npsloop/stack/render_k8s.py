"""The Kubernetes base (deploy/k8s/base) from the one list of services (see `deploy_files`)."""

from __future__ import annotations

from typing import Any

from npsloop_schemas import ALL_TOPICS, Topics

from .render_docker import PORT, UID
from .services import SERVICES, ServiceSpec

PARTITIONS = 6  # per topic; KEDA never scales a consumer past this (an idle replica owns nothing)
REPLICAS = 3  # Kafka replicas per partition (min.insync.replicas 2: one broker may be down)
KAFKA_CLUSTER = "npsloop"  # the Strimzi Kafka resource the topics belong to
BOOTSTRAP = f"{KAFKA_CLUSTER}-kafka-bootstrap.kafka:9092"
DAY_MS = 24 * 3600 * 1000
GRACE_S = 60  # preStop (5 s) + a consumer batch with its acks and commit, well inside
PRESTOP_S = 5


def labels(spec: ServiceSpec, component: str | None = None) -> dict[str, str]:
    out = {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/part-of": "npsloop"}
    out["app.kubernetes.io/component"] = component or ("api" if spec.public else "consumer")
    return out


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


SECRETS_DIR = "/run/secrets/npsloop"  # NPSLOOP_SECRETS_DIR in the ConfigMap


def env_from() -> list[dict[str, Any]]:
    return [{"configMapRef": {"name": "npsloop-config"}}]


def secret_volume() -> dict[str, Any]:
    """The Secret `npsloop-secrets` as files (one per key), referenced by name, never inlined; the
    overlays make it (an ExternalSecret in prod)."""
    return {"name": "secrets", "secret": {"secretName": "npsloop-secrets", "defaultMode": 0o440}}


def mounts(spec: ServiceSpec) -> list[dict[str, Any]]:
    return [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True},
        *({"name": f.configmap, "mountPath": f.mount_dir, "readOnly": True} for f in spec.config_files),
    ]


def volumes(spec: ServiceSpec, tmp_size: str) -> list[dict[str, Any]]:
    return [
        {"name": "tmp", "emptyDir": {"sizeLimit": tmp_size}},
        secret_volume(),
        *({"name": f.configmap, "configMap": {"name": f.configmap}} for f in spec.config_files),
    ]


def file_env(spec: ServiceSpec) -> list[dict[str, Any]]:
    return [{"name": f.env, "value": f.path} for f in spec.config_files]


def resources(spec: ServiceSpec) -> dict[str, Any]:
    cpu = "200m" if spec.public else "100m"
    return {"requests": {"cpu": cpu, "memory": "192Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}


def deployment(spec: ServiceSpec) -> dict[str, Any]:
    probe = {"port": "http"}
    container = {
        "name": spec.name,
        "image": f"npsloop-{spec.name}:0.1.0",
        "imagePullPolicy": "Always",
        "ports": [{"name": "http", "containerPort": PORT}],
        **({"env": file_env(spec)} if spec.config_files else {}),
        "envFrom": env_from(),
        "startupProbe": {  # migrations run on start too (a no-op once the Job ran)
            "httpGet": {"path": "/healthz", **probe},
            "periodSeconds": 2,
            "failureThreshold": 60,
        },
        "livenessProbe": {  # the process only: never the broker or the database
            "httpGet": {"path": "/healthz", **probe},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "readinessProbe": {  # Kafka and Postgres answer, no consumer stuck on a batch
            "httpGet": {"path": "/readyz", **probe},
            "periodSeconds": 5,
            "timeoutSeconds": 4,
            "failureThreshold": 3,
        },
        # Endpoints drop the pod before SIGTERM arrives; then the consumer drains its batch.
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_S}}},
        "resources": resources(spec),
        "securityContext": container_security(),
        "volumeMounts": mounts(spec),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec.name, "labels": labels(spec)},
        "spec": {  # no `replicas`: the HPA (ingest) or KEDA (consumers) owns it
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {"app.kubernetes.io/name": spec.name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": labels(spec),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "serviceAccountName": "npsloop",
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": GRACE_S,
                    "securityContext": pod_security(),
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": spec.name}},
                        }
                    ],
                    "containers": [container],
                    "volumes": volumes(spec, "64Mi"),
                },
            },
        },
    }


def service(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": spec.name, "labels": labels(spec)},
        "spec": {
            "selector": {"app.kubernetes.io/name": spec.name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def disruption_budget(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": spec.name, "labels": labels(spec)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": spec.name}}},
    }


def network_policy(spec: ServiceSpec) -> dict[str, Any]:
    """Only the HTTP port is open: to anyone for the public API, else to this namespace and monitoring."""
    sources: list[dict[str, Any]] = (
        []
        if spec.public
        else [
            {"podSelector": {}},
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        ]
    )
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": PORT}]}
    if sources:
        rule["from"] = sources
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": spec.name, "labels": labels(spec)},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": spec.name}},
            "policyTypes": ["Ingress"],
            "ingress": [rule],
        },
    }


def migration_job(spec: ServiceSpec) -> dict[str, Any]:
    container = {
        "name": "migrate",
        "image": f"npsloop-{spec.name}:0.1.0",
        "imagePullPolicy": "Always",
        "command": ["python", "-m", "npsloop_platform.migrate", spec.package],
        **({"env": file_env(spec)} if spec.config_files else {}),
        "envFrom": env_from(),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": container_security(),
        "volumeMounts": mounts(spec),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"migrate-{spec.name}", "labels": labels(spec, "migrations")},
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": 900,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels(spec, "migrations")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "serviceAccountName": "npsloop",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": volumes(spec, "16Mi"),
                },
            },
        },
    }


def ingest_hpa(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": spec.name, "labels": labels(spec)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": spec.replicas,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }


def scaled_object(spec: ServiceSpec) -> dict[str, Any]:
    assert spec.group is not None
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": spec.name, "labels": labels(spec)},
        "spec": {
            "scaleTargetRef": {"name": spec.name},
            "minReplicaCount": spec.replicas,
            "maxReplicaCount": PARTITIONS,  # a consumer past the partition count would sit idle
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "triggers": [
                {
                    "type": "kafka",
                    "metadata": {
                        "bootstrapServers": BOOTSTRAP,
                        "consumerGroup": spec.group,
                        "topic": topic,
                        "lagThreshold": str(spec.lag_threshold),
                        "offsetResetPolicy": "earliest",
                        "allowIdleConsumers": "false",
                    },
                }
                for topic in spec.topics
            ],
        },
    }


def kafka_topic(name: str, *, retention_days: int, partitions: int = PARTITIONS) -> dict[str, Any]:
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {
            "name": name,
            "labels": {"strimzi.io/cluster": KAFKA_CLUSTER, "app.kubernetes.io/part-of": "npsloop"},
        },
        "spec": {
            "topicName": name,
            "partitions": partitions,
            "replicas": REPLICAS,
            "config": {
                # events are facts, not state: deleted by age, never compacted
                "cleanup.policy": "delete",
                "retention.ms": retention_days * DAY_MS,
                "min.insync.replicas": 2,
            },
        },
    }


def topics() -> list[dict[str, Any]]:
    out = [kafka_topic(t, retention_days=7) for t in ALL_TOPICS]
    for spec in SERVICES:  # a DLQ per consumed topic and group: kept a month for inspection and replay
        if spec.group:
            out += [kafka_topic(Topics.dlq(t, spec.group), retention_days=30, partitions=1) for t in spec.topics]
    return out


def service_resources(spec: ServiceSpec) -> list[dict[str, Any]]:
    docs = [deployment(spec), service(spec), disruption_budget(spec), network_policy(spec)]
    if spec.database:
        docs.append(migration_job(spec))
    docs.append(ingest_hpa(spec) if spec.public else scaled_object(spec))
    return docs
