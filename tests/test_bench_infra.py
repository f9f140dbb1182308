"""The benchmarks' own measuring instruments, checked against real processes."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from bench.infra import CpuMeter, jvm_compiler_cpu


def _pid_listening_on(port: int) -> int:
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return int(conn.pid)
    raise AssertionError(f"nothing listens on {port}")


@pytest.mark.kafka
def test_the_jit_compiler_cpu_of_the_broker_is_read_from_its_threads(kafka_bootstrap: str) -> None:
    broker = _pid_listening_on(int(kafka_bootstrap.rsplit(":", 1)[1]))
    compiled = jvm_compiler_cpu(broker)
    assert compiled > 0  # a JVM compiles while it starts; Kafka's startup is hot enough for C1 and C2
    assert compiled < sum(psutil.Process(broker).cpu_times()[:2])  # a part of the process, not all of it
    assert jvm_compiler_cpu(os.getpid()) == 0.0  # no JVM here
    assert jvm_compiler_cpu(None) == 0.0


def test_a_part_is_shown_on_its_own_and_is_not_a_process_of_its_own() -> None:
    meter = CpuMeter()
    meter.add("me", os.getpid())
    calls = iter([1.0, 1.25])
    meter.add_part("of it, a part", lambda: next(calls))
    meter.start()
    spent = time.process_time()
    while time.process_time() - spent < 0.05:  # five of /proc's 10 ms ticks at least, however fast the VM
        sum(i * i for i in range(10_000))
    meter.stop()
    assert meter.used["of it, a part"] == pytest.approx(0.25)
    assert meter.used["me"] >= 0.03
    assert set(meter.parts) == {"of it, a part"} and set(meter.pids) == {"me"}
