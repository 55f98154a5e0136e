"""DokployPaas's basic-auth methods against the sandbox fake (recordings 74-84): the id found
by username after a create that answers only `true`, a lost answer retried, the refusals, and
no password in any error or log line although Dokploy echoes it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import structlog
from pydantic import SecretStr

from deployer.adapters.dokploy import DokployPaas
from deployer.adapters.resilience import RetryPolicy, Upstream
from deployer.errors import Gone, PermanentUpstreamError
from deployer.sandbox.server import API_KEY, Sandbox
from deployer.testing import RecordedSleeps

PASSWORD = "s3cret-Pa55word-xyz"


@pytest.fixture
async def paas(sandbox: Sandbox) -> AsyncIterator[DokployPaas]:
    upstream = Upstream("Dokploy", RetryPolicy(attempts=4), sleep=RecordedSleeps())
    client = DokployPaas(sandbox.urls["dokploy"], SecretStr(API_KEY), upstream, 0.5)
    yield client
    await client.close()


async def _app(paas: DokployPaas) -> str:
    project = await paas.ensure_project("ai-stack-alice", "x")
    return (await paas.ensure_application(project, "opencode-alice")).application_id


def _row(sandbox: Sandbox, security_id: str) -> dict[str, str]:
    return dict(sandbox.dokploy.store.security[security_id])


async def test_a_login_is_made_found_changed_and_removed_by_its_id(
    paas: DokployPaas, sandbox: Sandbox
) -> None:
    app = await _app(paas)
    assert await paas.find_basic_auth(app, "alice") is None
    made = await paas.add_basic_auth(app, "alice", PASSWORD)
    assert await paas.find_basic_auth(app, "alice") == made
    assert await paas.find_basic_auth(app, "bob") is None  # matched by username
    assert (_row(sandbox, made)["username"], _row(sandbox, made)["password"]) == (
        "alice",
        PASSWORD,
    )
    await paas.set_basic_auth(made, "alice", "another-one")  # an empty 200 (recording 77)
    assert _row(sandbox, made)["password"] == "another-one"
    assert await paas.remove_basic_auth(made) is True
    assert await paas.remove_basic_auth(made) is False  # already gone: nothing to undo
    assert await paas.find_basic_auth(app, "alice") is None


async def test_a_create_whose_answer_was_lost_is_not_made_twice(
    paas: DokployPaas, sandbox: Sandbox
) -> None:
    app = await _app(paas)
    sandbox.dokploy.faults.lose_response_ops["security.create"] = 1
    made = await paas.add_basic_auth(app, "alice", PASSWORD)
    assert [row["securityId"] for row in sandbox.dokploy.store.security_of(app)] == [made]
    assert _row(sandbox, made)["password"] == PASSWORD
    assert [op for _, op in sandbox.dokploy.calls].count("security.create") == 1


async def test_refusals_say_what_without_the_password(paas: DokployPaas) -> None:
    app = await _app(paas)
    await paas.add_basic_auth(app, "alice", "the-first-one")
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(PermanentUpstreamError) as duplicate:
            await paas.add_basic_auth(app, "alice", PASSWORD)  # the fake echoes it, as real
        with pytest.raises(PermanentUpstreamError) as unknown_app:
            await paas.add_basic_auth("doesNotExist000000000", "alice", PASSWORD)
        with pytest.raises(Gone):
            await paas.set_basic_auth("doesNotExist000000000", "alice", PASSWORD)
    assert duplicate.value.status == 400
    assert "security.create" in str(duplicate.value)
    assert "database refused the insert/update" in str(duplicate.value)
    assert str(unknown_app.value).endswith("Application not found")  # a 400, not a 404 (82)
    for text in (str(duplicate.value), str(unknown_app.value), repr(logs)):
        assert PASSWORD not in text and "the-first-one" not in text
