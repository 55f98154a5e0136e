"""Prometheus metrics of one bot process, in its own registry (served at /metrics)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from deployer import Event, EventKind

# The outcome label of a phase's duration, by the kind of event that ended the phase.
_OUTCOMES = {EventKind.PHASE_DONE: "done", EventKind.PHASE_FAILED: "failed"}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "aistack_events", "Deployment events by kind", ["kind"], registry=self.registry
        )
        self.phase_seconds = Histogram(
            "aistack_phase_seconds", "Phase durations", ["phase", "outcome"],
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600), registry=self.registry,
        )  # fmt: skip
        self.slack_calls = Counter(
            "aistack_slack_calls", "Slack Web API calls", ["method", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.tasks = Gauge(
            "aistack_background_tasks", "Background tasks running", registry=self.registry
        )

    def track_tasks(self, count: Callable[[], int]) -> None:
        self.tasks.set_function(lambda: float(count()))


class MetricsNotifier:
    """A Notifier that counts: events by kind, and phase durations."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    async def notify(self, event: Event) -> None:
        self._m.events.labels(kind=str(event.kind)).inc()
        outcome = _OUTCOMES.get(event.kind)
        if outcome is not None and event.duration is not None:
            self._m.phase_seconds.labels(phase=event.phase, outcome=outcome).observe(event.duration)
