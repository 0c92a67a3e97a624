from __future__ import annotations

from config import Settings
from config.celery import QUEUES
from workers.celery_app import create_celery


def test_delivery_settings_follow_the_reference(settings: Settings) -> None:
    conf = create_celery(settings).conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_send_task_events is True
    assert conf.task_send_sent_event is True
    assert conf.worker_hijack_root_logger is False
    visibility = conf.broker_transport_options["visibility_timeout"]
    # Anything waiting or running longer than this would be delivered twice.
    assert visibility > conf.task_time_limit + settings.max_retry_delay
    assert conf.result_backend_transport_options["visibility_timeout"] == visibility
    assert conf.broker_transport_options["global_keyprefix"] == settings.broker_key_prefix


def test_every_task_is_routed_to_a_declared_queue(settings: Settings) -> None:
    app = create_celery(settings)
    app.loader.import_default_modules()
    declared = {queue.name for queue in app.conf.task_queues}
    assert declared == set(QUEUES)
    ours = [name for name in app.tasks if not name.startswith("celery.")]
    assert ours, "no calsync task registered"
    for name in ours:
        route = app.amqp.router.route({}, name)
        assert route["queue"].name in declared, name
    assert app.amqp.router.route({}, "tasks.health.ping")["queue"].name == "maintenance"


def test_beat_uses_a_leader_lock_when_redis_is_there(settings: Settings) -> None:
    conf = create_celery(settings).conf
    assert conf.beat_scheduler == "redbeat.RedBeatScheduler"
    assert conf.redbeat_redis_url == settings.broker_url
    assert conf.redbeat_lock_timeout < 5 * 60  # a standby takes over within minutes


def test_without_redis_beat_falls_back_to_its_schedule_file(settings: Settings) -> None:
    amqp = settings.model_copy(update={"broker_url": "amqp://guest:guest@127.0.0.1:5672//"})
    conf = create_celery(amqp).conf
    assert conf.beat_scheduler != "redbeat.RedBeatScheduler"
    assert conf.beat_schedule_filename.startswith(str(settings.data_dir))


def test_on_rabbitmq_sends_are_confirmed_and_names_carry_the_prefix(settings: Settings) -> None:
    amqp = settings.model_copy(update={"broker_url": "amqp://guest:guest@127.0.0.1:5672//",
                                       "broker_key_prefix": "blue:"})  # fmt: skip
    app = create_celery(amqp)
    assert app.conf.broker_transport_options == {"confirm_publish": True}
    assert {queue.name for queue in app.conf.task_queues} == {f"blue:{q}" for q in QUEUES}
    assert app.conf.control_exchange == "blue:celery"
    app.loader.import_default_modules()
    routed = app.amqp.router.route({}, "tasks.calendar_sync.sync_calendar")["queue"]
    assert (routed.name, routed.exchange.name) == ("blue:sync", "blue:calsync")
