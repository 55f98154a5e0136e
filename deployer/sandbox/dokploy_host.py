"""What the fake Dokploy's host does when a deployment runs: the build log and the container's
environment.

A docker-source deploy pulls the image, then (re)creates the Swarm service with the env that
`prepareEnvironmentVariables` makes of the stored texts; a redeploy skips the pull. On a
failure Dokploy appends a closing line to the log and leaves `errorMessage` null: the log is
the only place that says why (recordings 96, 97). Lines the recordings show are copied; the
success lines are plausible stand-ins, as no recorded host had a Docker engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer.sandbox.dotenv import UnresolvedReference, expand, parse

STARTED = "Initializing deployment"
PULL_FAILED = "❌ Pulling image failed"
CLOSING = "Error occurred ❌, check the logs for details."
DEPLOYED = "Docker Deployed: ✅"
# The Docker API socket is missing on a host without an engine (second session, finding 5).
NO_SOCKET = "connect ENOENT /var/run/docker.sock"


class _Failed(Exception):
    """A build step failed; `lines` go to the log before Dokploy's closing line."""

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0] if lines else "")
        self.lines = list(lines)


@dataclass(frozen=True)
class Build:
    """One deployment's outcome: its status, its log lines and, when a container started, the
    environment it got."""

    status: str  # done | error
    log: list[str]
    env: dict[str, str] | None


def run_build(
    image: str | None,
    env_texts: tuple[str | None, str | None, str | None],
    *,
    rebuild: bool,
    docker_error: str | None,
    failing: bool,
) -> Build:
    """Run the steps of a deploy (pull, then service) or a redeploy (service only).

    `env_texts` are the application's, the project's and the environment's env text.
    `docker_error` is what this host's docker CLI prints (None: a working engine); `failing`
    makes the first step fail on a working engine (the fake's `fail_deploys`)."""
    log = [STARTED]
    try:
        if not rebuild:
            log += _pull(image, docker_error or (_missing_tag(image) if failing else None))
        env = _container_env(*env_texts)
        if docker_error is not None:
            raise _Failed(NO_SOCKET)
        if failing:
            raise _Failed(f"Error response from daemon: No such image: {image}")
    except _Failed as failed:
        return Build("error", [*log, *failed.lines, CLOSING], None)
    return Build("done", [*log, DEPLOYED], env)


def _missing_tag(image: str | None) -> str:
    """The docker CLI's answer for a tag that does not exist: the fake's stock failure."""
    return f"Error response from daemon: manifest for {image} not found: manifest unknown"


def _pull(image: str | None, error: str | None) -> list[str]:
    if not image:
        raise _Failed("Docker image not found")
    if error is not None:
        raise _Failed(f"Pulling {image}", error, PULL_FAILED, "")
    return [f"Pulling {image}", f"Status: Downloaded newer image for {image}"]


def _container_env(
    service_env: str | None, project_env: str | None, environment_env: str | None
) -> dict[str, str]:
    """prepareEnvironmentVariables: an unknown `${{...}}` reference fails the deployment."""
    try:
        return expand(parse(service_env or ""), parse(project_env or ""),
                      parse(environment_env or ""))  # fmt: skip
    except UnresolvedReference as exc:
        raise _Failed(str(exc)) from None


def log_tail(lines: list[str], tail: int) -> str:
    """`deployment.readLogs`: the last `tail` lines of the log file, each ending in a newline."""
    return "".join(f"{line}\n" for line in lines[-tail:])
