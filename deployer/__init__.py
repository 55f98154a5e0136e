"""aistack's deployer: plan, run, compensate and remember per-user AI stacks.

This is the surface the bot, the CLI, the benches and the chaos run use; everything else is
private to the package (an import-linter contract in `make lint` holds the bot to it, and
tests/deployer/test_public_api.py fails when a name is added or removed here alone).
"""

from deployer.adapters.stores import open_store
from deployer.assemble import open_deployer
from deployer.clock import SystemClock
from deployer.core.events import EventKind
from deployer.core.lifetime import duration_seconds
from deployer.core.models import Deployment, Event, PhaseRecord, StackSpec, StackStatus
from deployer.core.names import validate_stack_name
from deployer.core.phases import PhaseDef, phases_for
from deployer.core.releases import Release, Revert, env_fingerprint, reverted
from deployer.core.states import ACTIVE, TERMINAL, DeploymentState, Operation, PhaseState
from deployer.engine.records import Takeover
from deployer.engine.worker import Worker
from deployer.errors import (
    AistackError,
    AuthError,
    ConfigError,
    DeployFailed,
    Gone,
    IllegalTransition,
    InvalidStackName,
    LifetimeTooLong,
    NotFound,
    PermanentError,
    QuotaExceeded,
    StackBusy,
    TransientError,
    UpstreamError,
    UpstreamUnavailable,
)
from deployer.inventory import PreflightReport
from deployer.logs import configure_logging
from deployer.ports import Clock, DeploymentReads, LiveStack, Notifier, Store
from deployer.service import Deployer
from deployer.settings import DeployerSettings, describe_validation_error, load_settings
from deployer.stack_logs import StackLogs

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "AistackError",
    "AuthError",
    "Clock",
    "ConfigError",
    "DeployFailed",
    "Deployer",
    "DeployerSettings",
    "Deployment",
    "DeploymentReads",
    "DeploymentState",
    "Event",
    "EventKind",
    "Gone",
    "IllegalTransition",
    "InvalidStackName",
    "LifetimeTooLong",
    "LiveStack",
    "NotFound",
    "Notifier",
    "Operation",
    "PermanentError",
    "PhaseDef",
    "PhaseRecord",
    "PhaseState",
    "PreflightReport",
    "QuotaExceeded",
    "Release",
    "Revert",
    "StackBusy",
    "StackLogs",
    "StackSpec",
    "StackStatus",
    "Store",
    "SystemClock",
    "Takeover",
    "TransientError",
    "UpstreamError",
    "UpstreamUnavailable",
    "Worker",
    "configure_logging",
    "describe_validation_error",
    "duration_seconds",
    "env_fingerprint",
    "load_settings",
    "open_deployer",
    "open_store",
    "phases_for",
    "reverted",
    "validate_stack_name",
]
