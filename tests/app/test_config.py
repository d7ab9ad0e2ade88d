"""Settings.from_env: defaults, parsing, flags over variables, and errors that name the variable."""

from __future__ import annotations

import pytest

from handlers.example import router
from service.app.cli import event_loop_factory
from service.app.config import ENV_VARIABLES, Settings, flag_for, load_handler
from service.errors import ConfigError


def test_defaults_are_the_documented_ones() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.embedded
    assert (settings.queue_url, settings.handler) == ("", "handlers.example:router")
    assert (settings.concurrency, settings.processor) == (10, "bounded")
    assert (settings.max_number_of_messages, settings.wait_time_seconds, settings.visibility_timeout) == (10, 20, 30)
    assert (settings.deletion_interval_s, settings.visibility_heartbeat) == (None, True)
    assert settings.server_settings().effective_deletion_interval_s == 10.0
    assert settings.max_messages_per_s is None
    assert (settings.admin_host, settings.admin_port, settings.admin_token) == ("127.0.0.1", 8080, None)
    assert (settings.drain_timeout_s, settings.exit_after_drain) == (25.0, False)
    assert (settings.log_level, settings.log_format) == ("INFO", "auto")
    assert (settings.publish_queue_url, settings.publish_max_batch) == ("", 100)


def test_every_variable_is_read() -> None:
    environ = {
        "MQ_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
        "MQ_HANDLER": "handlers.example:router",
        "MQ_CONCURRENCY": "32",
        "MQ_PROCESSOR": "Partitioned",
        "MQ_MAX_NUMBER_OF_MESSAGES": "5",
        "MQ_WAIT_TIME_SECONDS": "0",
        "MQ_VISIBILITY_TIMEOUT": "120",
        "MQ_DELETION_INTERVAL_S": "2.5",
        "MQ_MAX_MESSAGES_PER_S": "12.5",
        "MQ_VISIBILITY_HEARTBEAT": "no",
        "MQ_ADMIN_HOST": "0.0.0.0",
        "MQ_ADMIN_PORT": "0",
        "MQ_ADMIN_TOKEN": "s3cret-s3cret-s3cret",
        "MQ_ADMIN_ALLOWED_HOSTS": "mq-service.orders.svc, 10.1.2.3,.internal.example",
        "MQ_DRAIN_TIMEOUT_S": "40",
        "MQ_EXIT_AFTER_DRAIN": "yes",
        "MQ_LOG_LEVEL": "debug",
        "MQ_LOG_FORMAT": "JSON",
        "MQ_PUBLISH_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/out",
        "MQ_PUBLISH_MAX_BATCH": "20",
        "MQ_PUBLISH_INTERVAL_S": "0.2",
        "MQ_S3_BUCKET": "orders-payloads",
        "MQ_S3_PREFIX": "orders/",
        "MQ_S3_THRESHOLD_BYTES": "0",
        "MQ_S3_DELETE_PAYLOADS": "false",
        "MQ_S3_LEGACY_ATTRIBUTE": "true",
        "MQ_S3_MAX_BODY_BYTES": "2097152",
        "MQ_SQS_CLIENT": "Botocore",
        "MQ_EVENT_LOOP": "asyncio",
        "MQ_TRACING_EXPORT": "SDK",
        "MQ_ENVELOPE": "SNS",
        "MQ_IDEMPOTENCY_STORE": "redis://redis.internal:6379/2",
        "MQ_IDEMPOTENCY_KEY": "body",
        "MQ_IDEMPOTENCY_EXPIRES_S": "600",
    }
    assert set(environ) == set(ENV_VARIABLES.values())
    settings = Settings.from_env(environ)
    assert not settings.embedded
    assert (settings.concurrency, settings.processor, settings.max_number_of_messages) == (32, "partitioned", 5)
    assert (settings.wait_time_seconds, settings.visibility_timeout, settings.deletion_interval_s) == (0, 120, 2.5)
    assert (settings.visibility_heartbeat, settings.exit_after_drain) == (False, True)
    assert settings.max_messages_per_s == 12.5
    assert (settings.admin_host, settings.admin_port, settings.admin_token) == ("0.0.0.0", 0, "s3cret-s3cret-s3cret")
    assert settings.admin_allowed_hosts == ("mq-service.orders.svc", "10.1.2.3", ".internal.example")
    assert (settings.drain_timeout_s, settings.log_level, settings.log_format) == (40.0, "DEBUG", "json")
    assert settings.publish_queue_url.endswith("/out")
    assert settings.publish_max_batch == 20
    assert (settings.s3_bucket, settings.s3_prefix, settings.s3_threshold_bytes) == ("orders-payloads", "orders/", 0)
    assert (settings.s3_delete_payloads, settings.s3_legacy_attribute, settings.s3_max_body_bytes) == (
        False,
        True,
        2097152,
    )
    assert (settings.sqs_client, settings.event_loop) == ("botocore", "asyncio")
    assert settings.tracing_export == "sdk"
    assert settings.envelope == settings.server_settings().envelope == "sns"
    assert (settings.idempotency_store, settings.idempotency_key, settings.idempotency_expires_s) == (
        "redis://redis.internal:6379/2",
        "body",
        600,
    )


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("1", True), ("YES", True), ("false", False), ("0", False), ("No", False)]
)
def test_booleans(raw: str, expected: bool) -> None:
    assert Settings.from_env({"MQ_VISIBILITY_HEARTBEAT": raw}).visibility_heartbeat is expected


def test_flags_win_over_variables_and_empty_means_unset() -> None:
    environ = {"MQ_CONCURRENCY": "3", "MQ_PROCESSOR": "", "MQ_ADMIN_TOKEN": ""}
    settings = Settings.from_env(environ, {"MQ_CONCURRENCY": "7"})
    assert settings.concurrency == 7
    assert settings.processor == "bounded"
    assert settings.admin_token is None


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("MQ_CONCURRENCY", "0", "an integer from 1 to 100000"),
        ("MQ_CONCURRENCY", "ten", "an integer from 1 to 100000"),
        ("MQ_PROCESSOR", "fastest", "one of bounded, unbounded, partitioned"),
        ("MQ_MAX_NUMBER_OF_MESSAGES", "11", "an integer from 1 to 10"),
        ("MQ_WAIT_TIME_SECONDS", "21", "an integer from 0 to 20"),
        ("MQ_VISIBILITY_TIMEOUT", "0", "an integer from 1 to 43200"),
        ("MQ_VISIBILITY_TIMEOUT", "43201", "an integer from 1 to 43200"),
        ("MQ_DELETION_INTERVAL_S", "0", "more than 0"),
        ("MQ_DELETION_INTERVAL_S", "30", "less than MQ_VISIBILITY_TIMEOUT (30)"),
        ("MQ_VISIBILITY_HEARTBEAT", "maybe", "true/false, 1/0 or yes/no"),
        ("MQ_ADMIN_PORT", "65536", "an integer from 0 to 65535"),
        ("MQ_DRAIN_TIMEOUT_S", "-1", "from 0"),
        ("MQ_EXIT_AFTER_DRAIN", "2", "true/false"),
        ("MQ_LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("MQ_LOG_FORMAT", "xml", "one of auto, json, text"),
        ("MQ_QUEUE_URL", "sqs://orders", "an http(s) SQS queue URL"),
        ("MQ_PUBLISH_QUEUE_URL", "orders", "an http(s) SQS queue URL"),
        ("MQ_HANDLER", "handlers.example.router", "an import path module:attribute"),
        ("MQ_PUBLISH_MAX_BATCH", "0", "an integer from 1 to 1000"),
        ("MQ_SQS_CLIENT", "boto3", "one of lean, botocore"),
        ("MQ_EVENT_LOOP", "trio", "one of auto, asyncio, uvloop"),
        ("MQ_ENVELOPE", "sqs", "one of auto, sns, eventbridge, s3, none"),
    ],
)
def test_invalid_values_name_the_variable_and_what_is_allowed(variable: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.name == variable
    assert str(caught.value).startswith(f"{variable}: ")
    assert allowed in caught.value.allowed


def test_an_invalid_flag_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"^--concurrency \(MQ_CONCURRENCY\): '-1' is not allowed"):
        Settings.from_env({"MQ_CONCURRENCY": "4"}, {"MQ_CONCURRENCY": "-1"})
    assert flag_for("MQ_DELETION_INTERVAL_S") == "--deletion-interval-s"


def test_the_token_stays_out_of_summary_and_repr() -> None:
    settings = Settings.from_env({"MQ_ADMIN_TOKEN": "s3cret-s3cret-s3cret"})
    assert "s3cret-s3cret-s3cret" not in repr(settings)
    assert "s3cret-s3cret-s3cret" not in str(settings.summary())
    assert settings.summary()["admin_token_set"] is True


def test_load_handler_imports_the_path() -> None:
    assert load_handler("handlers.example:router") is router
    method: object = load_handler("handlers.example:router.handle")
    assert method == router.handle


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("handlers.nonexistent:router", "importing handlers.nonexistent"),
        ("handlers.example:nothing", "handlers.example has no nothing"),
        ("handlers.example:DEFAULT_SLOW_SECONDS", "a callable handler"),
    ],
)
def test_load_handler_failures_are_config_errors(path: str, why: str) -> None:
    with pytest.raises(ConfigError, match=r"^MQ_HANDLER: ") as caught:
        load_handler(path)
    assert why in caught.value.allowed


def test_the_deletion_interval_follows_the_visibility_timeout_unless_set() -> None:
    settings = Settings.from_env({"MQ_VISIBILITY_TIMEOUT": "5"})
    assert settings.server_settings().effective_deletion_interval_s == 2.5
    assert Settings.from_env({"MQ_VISIBILITY_TIMEOUT": "600"}).server_settings().effective_deletion_interval_s == 10.0


def test_an_explicit_conflicting_deletion_interval_names_both_variables() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"MQ_VISIBILITY_TIMEOUT": "5", "MQ_DELETION_INTERVAL_S": "6"})
    assert raised.value.name == "MQ_DELETION_INTERVAL_S"
    assert "less than MQ_VISIBILITY_TIMEOUT (5)" in str(raised.value)


def test_the_event_loop_is_uvloop_when_installed_unless_asyncio_is_chosen() -> None:
    import uvloop  # noqa: PLC0415 - a dependency where the service runs

    assert event_loop_factory("auto") is uvloop.new_event_loop
    assert event_loop_factory("uvloop") is uvloop.new_event_loop
    assert event_loop_factory("asyncio") is None


def test_the_sqs_client_kind_reaches_the_consumers_settings() -> None:
    assert Settings.from_env({}).server_settings().sqs_client == "lean"
    assert Settings.from_env({"MQ_SQS_CLIENT": "botocore"}).server_settings().sqs_client == "botocore"


@pytest.mark.parametrize(
    "token",
    [
        "   ",
        "short-t0ken",
        "sixteen chars ok",
        "t0ken-with-\u00e9-accent",
        "t0ken-with-a-tab\there",
        " padded-t0ken-1234 ",
    ],
    ids=["blank", "shorter than 16", "a space", "non-ASCII", "a control character", "padded"],
)
def test_a_token_that_cannot_work_is_refused_naming_the_rule(token: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"MQ_ADMIN_TOKEN": token})
    message = str(raised.value)
    assert "MQ_ADMIN_TOKEN" in message
    assert "at least 16 visible ASCII characters" in message
    assert token.strip() not in message or not token.strip()  # the secret is never echoed


def test_a_token_of_16_visible_characters_is_taken_as_given() -> None:
    assert Settings.from_env({"MQ_ADMIN_TOKEN": "Ab3$-~!x_Yz.09=+"}).admin_token == "Ab3$-~!x_Yz.09=+"


@pytest.mark.parametrize("value", ["a b", "http://x", ",", "host/path"])
def test_bad_allowed_hosts_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="MQ_ADMIN_ALLOWED_HOSTS"):
        Settings.from_env({"MQ_ADMIN_ALLOWED_HOSTS": value})
