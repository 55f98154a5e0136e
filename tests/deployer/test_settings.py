import pytest
from pydantic import ValidationError

from deployer.errors import ConfigError
from deployer.settings import load_settings

REQUIRED = {
    "AISTACK_DOKPLOY_URL": "https://dokploy.example.com",
    "AISTACK_DOKPLOY_API_KEY": "dk-secret-value",
    "AISTACK_HETZNER_TOKEN": "hz-secret-value",
    "AISTACK_DNS_ZONE": "example.com",
    "AISTACK_DOMAIN_SUFFIX": "ai.example.com",
    "AISTACK_INGRESS_IP": "203.0.113.10",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_complete_environment_builds_stack_specs(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    spec = settings.stack.spec_for("alice")
    assert spec.project_name == "ai-stack-alice"
    assert spec.app_name == "opencode-alice"
    assert spec.url == "https://alice.ai.example.com"
    assert settings.dns.record_name("alice") == "alice.ai"


def test_missing_variable_is_named(env: pytest.MonkeyPatch) -> None:
    env.delenv("AISTACK_DOKPLOY_API_KEY")
    with pytest.raises(ConfigError, match="AISTACK_DOKPLOY_API_KEY is required"):
        load_settings()


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("AISTACK_DOKPLOY_URL", "dokploy.example.com", "AISTACK_DOKPLOY_URL"),
        ("AISTACK_INGRESS_IP", "not-an-ip", "AISTACK_INGRESS_IP"),
        ("AISTACK_DNS_MODE", "cname", "AISTACK_DNS_MODE"),
        ("AISTACK_DOMAIN_SUFFIX", "ai.other.org", "must be inside AISTACK_DNS_ZONE"),
        ("AISTACK_PROJECT_PATTERN", "ai-stack", "AISTACK_PROJECT_PATTERN"),
        ("AISTACK_STACK_ENV", "not json", "AISTACK_STACK_ENV"),
    ],
)
def test_malformed_variable_is_named(
    env: pytest.MonkeyPatch, var: str, value: str, says: str
) -> None:
    env.setenv(var, value)
    with pytest.raises(ConfigError, match=says):
        load_settings()


def test_config_errors_never_show_secret_values(env: pytest.MonkeyPatch) -> None:
    env.setenv("AISTACK_DNS_TTL", "5")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "AISTACK_DNS_TTL" in str(caught.value)
    assert "secret-value" not in str(caught.value)
    assert "secret-value" not in repr(load_settings(dns_ttl=60))


def test_dot_env_file_is_read(env: pytest.MonkeyPatch, tmp_path: object) -> None:
    env.delenv("AISTACK_INGRESS_IP")
    with open(".env", "w") as handle:
        handle.write("AISTACK_INGRESS_IP=198.51.100.7\n")
    assert str(load_settings().ingress_ip) == "198.51.100.7"


def test_a_records_are_matched_to_stacks_and_nothing_else(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.dns.stack_of_record("alice.ai") == "alice"
    for other in ("alice", "www.ai", "*.ai", "@", "a.b.ai", "Alice.ai", "mail"):
        assert settings.dns.stack_of_record(other) is None, other


@pytest.mark.parametrize(
    ("stack_env", "key"),
    [
        ('{"TOKEN": "sk-live-4242 ${{project.X}}"}', "TOKEN"),
        ('{"OK": "fine", "PATH_END": "sk-live-4242\\\\"}', "PATH_END"),
        ('{"BAD KEY": "sk-live-4242"}', "BAD KEY"),
    ],
)
def test_stack_env_that_dokploy_would_change_is_refused(
    env: pytest.MonkeyPatch, stack_env: str, key: str
) -> None:
    env.setenv("AISTACK_STACK_ENV", stack_env)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "AISTACK_STACK_ENV" in message and repr(key) in message
    assert "sk-live-4242" not in message


def test_stack_env_with_quotes_comments_and_newlines_is_accepted(env: pytest.MonkeyPatch) -> None:
    env.setenv("AISTACK_STACK_ENV", '{"A": "it\'s #1", "B": "say \\"hi\\"\\nbye"}')
    assert load_settings().stack_env == {"A": "it's #1", "B": 'say "hi"\nbye'}


def test_the_groups_hold_the_checked_values_and_are_built_once(env: pytest.MonkeyPatch) -> None:
    env.setenv("AISTACK_DOKPLOY_URL", "https://dokploy.example.com/")
    env.setenv("AISTACK_RETRY_ATTEMPTS", "3")
    env.setenv("AISTACK_DNS_POLL_INITIAL", "0.5")
    env.setenv("AISTACK_QUEUE_LIMIT", "90")
    settings = load_settings()
    assert settings.dokploy.url == "https://dokploy.example.com"  # as checked: no slash
    assert (settings.dns.zone, settings.dns.mode, settings.dns.poll_initial) == (
        "example.com", "record", 0.5,
    )  # fmt: skip
    assert settings.resilience.retry.attempts == 3
    assert settings.resilience.retry.maximum == settings.retry_max == 16.0
    assert settings.health.statuses == (200, 301, 302, 401)
    assert settings.deadlines.deploy_start_timeout == 60.0
    assert (settings.worker.queue_limit_seconds, settings.worker.idle_seconds) == (90.0, 1.0)
    assert settings.store.database_url == "sqlite:///./aistack.db"
    assert settings.stack is settings.stack and settings.dns is settings.dns
    shown = repr(settings.dokploy) + repr(settings.dns) + repr(settings.stack)
    assert "secret-value" not in shown


def test_a_copy_with_changes_is_checked_again_and_its_groups_follow(
    env: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    assert settings.dns.ttl == 60
    changed = settings.model_copy(update={"dns_ttl": 300})
    assert (changed.dns.ttl, settings.dns.ttl) == (300, 60)
    with pytest.raises(ValidationError, match="dns_ttl"):
        settings.model_copy(update={"dns_ttl": 5})
