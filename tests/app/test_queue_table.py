"""The queue table: a TOML file of queues, each overriding the top level, which overrides the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.app.cli import main
from service.app.queues import QueueTable, read_table
from service.errors import ConfigError

URL = "https://sqs.eu-west-1.amazonaws.com/123456789012"


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mq.toml"
    path.write_text(text)
    return str(path)


def test_without_a_file_the_variables_are_a_table_of_one_queue() -> None:
    table = read_table({"MQ_QUEUE_URL": f"{URL}/orders", "MQ_CONCURRENCY": "4"}, {})
    assert (table.path, table.max_in_flight, table.embedded) == ("", None, False)
    assert table.names == ["orders"]
    assert table.queues[0].settings == table.settings
    assert (table.settings.concurrency, table.queues[0].weight) == (4, 1)


def test_without_a_queue_url_the_one_queue_is_the_embedded_one() -> None:
    table = read_table({}, {})
    assert table.embedded
    assert table.names == ["mq-service"]


def test_tables_override_the_top_level_which_overrides_the_environment(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        f"""
concurrency = 6
processor = "unbounded"
admin_port = 9090
max_in_flight = 12

[[queues]]
url = "{URL}/orders"
handler = "handlers.example:router"
concurrency = 3
weight = 3

[[queues]]
name = "low"
url = "{URL}/low-priority"
processor = "partitioned"
visibility_timeout = 90
envelope = "sns"
max_messages_per_s = 2.5
visibility_heartbeat = false
""",
    )
    environ = {"MQ_CONCURRENCY": "2", "MQ_WAIT_TIME_SECONDS": "5", "MQ_ADMIN_PORT": "8081", "MQ_QUEUE_URL": f"{URL}/x"}
    table = read_table(environ, {}, path)
    assert isinstance(table, QueueTable)
    assert (table.path, table.max_in_flight, table.names) == (path, 12, ["orders", "low"])
    assert table.settings.admin_port == 9090
    orders, low = table.queues
    assert (orders.url, orders.weight, orders.settings.concurrency, orders.settings.processor) == (
        f"{URL}/orders",
        3,
        3,
        "unbounded",
    )
    assert orders.settings.wait_time_seconds == 5  # from the environment
    assert (low.url, low.weight, low.settings.concurrency, low.settings.processor) == (
        f"{URL}/low-priority",
        1,
        6,
        "partitioned",
    )
    assert (low.settings.visibility_timeout, low.settings.envelope, low.settings.max_messages_per_s) == (90, "sns", 2.5)
    assert low.settings.visibility_heartbeat is False
    assert low.settings.server_settings().processor == "partitioned"


def test_the_file_comes_from_mq_config_and_a_flag_beats_the_top_level(tmp_path: Path) -> None:
    path = _write(
        tmp_path, f'concurrency = 6\n[[queues]]\nurl = "{URL}/a"\n[[queues]]\nurl = "{URL}/b"\nconcurrency = 1\n'
    )
    table = read_table({"MQ_CONFIG": path}, {"MQ_CONCURRENCY": "9"})
    assert [queue.settings.concurrency for queue in table.queues] == [9, 1]


def test_queues_without_urls_are_created_on_the_embedded_server(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[queues]]\nname = "orders"\n[[queues]]\nname = "audit.fifo"\n')
    table = read_table({"MQ_QUEUE_URL": f"{URL}/not-inherited"}, {}, path)
    assert table.embedded
    assert table.names == ["orders", "audit.fifo"]


@pytest.mark.parametrize(
    ("text", "where", "allowed"),
    [
        ('[[queues]]\nname = "a"\nconcurrency = 0\n', "[[queues]] a: concurrency", "an integer from 1 to 100000"),
        ('[[queues]]\nname = "a"\nadmin_port = 1\n', "[[queues]] a: admin_port", "a per-queue setting"),
        ('[[queues]]\nname = "a"\nweight = 0\n', "[[queues]] a: weight", "an integer from 1 to 1000"),
        ('[[queues]]\nname = "a"\nprocessor = ["x"]\n', "[[queues]] a: processor", "a string, a number or a"),
        ("[[queues]]\nconcurrency = 2\n", "[[queues]] #1: name", "needed without a url"),
        ('[[queues]]\nname = "a b"\n', "[[queues]] a b: name", "a queue name"),
        ('[[queues]]\nname = "a"\n[[queues]]\nname = "a"\n', "[[queues]] a: name", "a name no other queue has"),
        (f'[[queues]]\nname = "a"\n[[queues]]\nurl = "{URL}/b"\n', "[[queues]] a: url", "every queue has one"),
        ('[[queues]]\nname = "a"\nurl = "sqs://a"\n', "[[queues]] a: url", "an http(s) SQS queue URL"),
        ("concurency = 2\n", "concurency", "a service setting"),
        ("max_in_flight = 0\n", "max_in_flight", "an integer from 1 to 100000"),
        ('[[queues]]\nname = "a"\ndeletion_interval_s = 40\n', "[[queues]] a: deletion_interval_s", "less than"),
    ],
)
def test_a_bad_file_names_the_file_the_table_and_the_key(tmp_path: Path, text: str, where: str, allowed: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        read_table({}, {}, path)
    assert caught.value.name == f"{path}: {where}"
    assert allowed in caught.value.allowed


def test_an_unreadable_or_malformed_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="a readable TOML file"):
        read_table({}, {}, str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="a valid TOML file"):
        read_table({}, {}, _write(tmp_path, "[[queues]\n"))


def test_the_command_refuses_a_bad_file_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, f'[[queues]]\nurl = "{URL}/a"\nhandler = "handlers.nowhere:router"\n')
    assert main(["run", "--config", path], environ={}) == 2
    error = capsys.readouterr().err
    assert f"{path}: [[queues]] a: handler" in error
    assert main(["run"], environ={"MQ_CONFIG": _write(tmp_path, "[[queues]]\nweight = 2\n")}) == 2
    assert "[[queues]] #1: name" in capsys.readouterr().err
