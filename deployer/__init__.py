"""aistack's deployer: plan, run, compensate and remember per-user AI stacks.

This is the surface the bot and the CLI use; everything else is private to the package.
"""

from deployer.assemble import open_deployer
from deployer.core.models import Deployment, Event, PhaseRecord, StackSpec, StackStatus
from deployer.core.names import validate_stack_name
from deployer.core.states import ACTIVE, TERMINAL, DeploymentState, Operation, PhaseState
from deployer.errors import (
    AistackError,
    AuthError,
    ConfigError,
    DeployFailed,
    IllegalTransition,
    InvalidStackName,
    NotFound,
    PermanentError,
    StackBusy,
    TransientError,
    UpstreamUnavailable,
)
from deployer.ports import DeploymentReads, Notifier, Store
from deployer.service import Deployer, PreflightReport
from deployer.settings import DeployerSettings, load_settings

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "AistackError",
    "AuthError",
    "ConfigError",
    "DeployFailed",
    "Deployer",
    "DeployerSettings",
    "Deployment",
    "DeploymentReads",
    "DeploymentState",
    "Event",
    "IllegalTransition",
    "InvalidStackName",
    "NotFound",
    "Notifier",
    "Operation",
    "PermanentError",
    "PhaseRecord",
    "PhaseState",
    "PreflightReport",
    "StackBusy",
    "StackSpec",
    "StackStatus",
    "Store",
    "TransientError",
    "UpstreamUnavailable",
    "load_settings",
    "open_deployer",
    "validate_stack_name",
]
