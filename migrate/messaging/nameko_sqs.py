"""A Nameko 2.14 entrypoint that consumes SQS queues through boto3.

    from migrate.messaging.nameko_sqs import consume

    class Billing:
        name = "billing"

        @consume("billing-ordering-events")
        def on_ordering_event(self, message):  # a ReceivedMessage
            ...

Configuration (the service's Nameko config):

- `SQS_ENDPOINT_URL`: the emulator's URL; absent means AWS.
- `AWS_REGION`: default us-east-1.
- `max_workers`: Nameko's own; it also bounds how many messages are in
  flight across all queues of the service.

Queue URLs are looked up by name (GetQueueUrl) when the service starts; an
unknown queue stops the start with `QueueNotFound`. The worker context's
data carries the message's `event_id` and its X-Ray `trace_header`, for
logging and tracing providers.

What it guarantees:

- A message is deleted only after its worker returned (or raised
  `AlreadyHandled`, which marks a duplicate). A worker that raises leaves
  the message in the queue: SQS delivers it again after the visibility
  timeout, and after maxReceiveCount receives moves it to the dead-letter
  queue. (Nameko's documented SQS example deletes before knowing; this one
  does not.) Deletes go out in batches of up to ten.
- When the last allowed receive of a message fails, the entrypoint moves it
  to the dead-letter queue itself with the worker's error as its reason
  (`deadletters.bury`), which `migrate dlq` shows.
- At most `max_workers` messages are held at once: the poller asks SQS only
  for as many messages as there are free workers (at most ten per call).
- A worker that runs long keeps its message: while it runs, the message's
  visibility timeout is extended (to the queue's own timeout, every half
  of it), so no other consumer receives it meanwhile. If the service dies,
  the extensions stop and the message returns within one timeout.
- One long-poll loop per queue, each in its own greenthread, polling for at
  most `wait_seconds` (default 1 s), so `nameko run` stops within about a
  second of SIGTERM. On stop, no new worker starts; messages received
  during the stop are made visible again at once; running workers finish
  and their messages are deleted before the service exits.
- An unreachable endpoint or a vanished queue (moto restarted) is logged
  and retried with capped backoff; the service does not die of it.
- On a FIFO queue (its name ends in `.fifo`) order holds per message group
  (the publisher's group is the aggregate id): the messages of one group in
  a batch run one after another, in the order SQS returned them, while
  different groups run concurrently. SQS returns no later message of a
  group while an earlier one is in flight, and a message is deleted before
  its group's next batch can come. When one fails, the rest of its group's
  batch is handed back at once, so it returns after the failed message, not
  before. Messages waiting for their turn are kept invisible, like running
  ones.

What it does not do:

- Deduplicate: handlers do, by event id, through their inbox.
- Keep any order on a standard queue: its workers run concurrently.
- Run without eventlet's monkey patching: boto3 then blocks the whole
  service. `nameko run` patches before it imports the service.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import eventlet
import eventlet.event
import eventlet.patcher
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError
from eventlet.queue import Empty, LightQueue
from eventlet.semaphore import Semaphore
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint, ProviderCollector, SharedExtension

from migrate.kernel.uow import AlreadyHandled
from migrate.messaging import deadletters, queue_ops
from migrate.messaging.clients import EMULATOR_REGION, sqs_client
from migrate.messaging.errors import MalformedMessage, QueueNotFound, SettingInvalid
from migrate.messaging.message import ReceivedMessage

_log = logging.getLogger(__name__)

ENDPOINT_KEY = "SQS_ENDPOINT_URL"
REGION_KEY = "AWS_REGION"
MAX_BACKOFF_SECONDS = 5.0
_FINISHED = object()


class _QueueLoop:
    """What the poller keeps per consumed queue."""

    def __init__(
        self,
        provider: SqsConsumer,
        url: str,
        visibility: int,
        policy: deadletters.RedrivePolicy | None,
    ):
        self.provider = provider
        self.url = url
        self.visibility = visibility
        self.policy = policy
        self.stopping = False
        self.handled: LightQueue = LightQueue()
        self.poll_thread: Any = None
        self.delete_thread: Any = None
        self.group_threads: set[Any] = set()

    @property
    def fifo(self) -> bool:
        return self.url.endswith(".fifo")


class SqsPoller(ProviderCollector, SharedExtension):  # type: ignore[misc]
    """Polls every queue that an entrypoint of the service consumes."""

    def __init__(self) -> None:
        super().__init__()
        self._sqs: BaseClient | None = None
        self._endpoint: str | None = None
        self._loops: dict[SqsConsumer, _QueueLoop] = {}
        self._free_workers: Semaphore | None = None

    def setup(self) -> None:
        if not eventlet.patcher.is_monkey_patched("socket"):
            _log.warning(
                "eventlet has not patched sockets: every SQS call will block "
                "the whole service (run it with `nameko run`)"
            )
        config = self.container.config
        self._endpoint = config.get(ENDPOINT_KEY) or None
        self._sqs = sqs_client(self._endpoint, config.get(REGION_KEY, EMULATOR_REGION))
        self._free_workers = Semaphore(self.container.max_workers)

    def register_provider(self, provider: SqsConsumer) -> None:
        for registered in self._providers:
            if registered.queue_name == provider.queue_name:
                raise SettingInvalid(
                    "queue",
                    provider.queue_name,
                    f"consumed by both {registered.method_name} and "
                    f"{provider.method_name}; one entrypoint per queue",
                )

        super().register_provider(provider)

    def start(self) -> None:
        for provider in self._providers:
            url = self._queue_url(provider.queue_name)
            loop = _QueueLoop(
                provider, url, self._visibility_of(url), self._policy_of(url)
            )
            self._loops[provider] = loop
            loop.poll_thread = self.container.spawn_managed_thread(
                functools.partial(self._poll, loop),
                identifier=f"sqs poll {provider.queue_name}",
            )
            loop.delete_thread = self.container.spawn_managed_thread(
                functools.partial(self._delete_handled, loop),
                identifier=f"sqs delete {provider.queue_name}",
            )
            _log.info("consuming %s with %s", loop.url, provider.method_name)

    def unregister_provider(self, provider: SqsConsumer) -> None:
        loop = self._loops.get(provider)
        if loop is not None:
            loop.stopping = True
            # Once the poll loop and the message groups it started have
            # ended no worker can start for this queue, which is what Nameko
            # expects of a stopped entrypoint.
            _wait(loop.poll_thread)
            for thread in list(loop.group_threads):
                _wait(thread)
        super().unregister_provider(provider)

    def abandon_provider(self, provider: SqsConsumer) -> None:
        """Unregister without waiting for the poll loop (the container is
        being killed)."""
        loop = self._loops.get(provider)
        if loop is not None:
            loop.stopping = True
        super().unregister_provider(provider)

    def stop(self) -> None:
        # Nameko stops shared extensions after every worker has finished, so
        # every handled message is queued for deletion by now.
        for loop in self._loops.values():
            loop.handled.put(_FINISHED)
        for loop in self._loops.values():
            _wait(loop.delete_thread)
        super().stop()

    def kill(self) -> None:
        for loop in self._loops.values():
            loop.stopping = True

    def _queue_url(self, queue_name: str) -> str:
        assert self._sqs is not None
        try:
            url: str = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        except (BotoCoreError, ClientError) as exc:
            raise QueueNotFound(queue_name, self._endpoint, str(exc)) from exc

        return url

    def _visibility_of(self, url: str) -> int:
        assert self._sqs is not None
        answer = self._sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["VisibilityTimeout"]
        )
        return int(answer["Attributes"].get("VisibilityTimeout", "30"))

    def _policy_of(self, url: str) -> deadletters.RedrivePolicy | None:
        assert self._sqs is not None
        try:
            return deadletters.redrive_policy(self._sqs, url)
        except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
            # SQS still dead-letters by itself; only the reason goes unrecorded.
            _log.warning("cannot read the redrive policy of %s: %s", url, exc)
            return None

    def _bury_if_last(
        self, loop: _QueueLoop, message: dict[str, Any], reason: str
    ) -> None:
        if deadletters.is_last_receive(loop.policy, message):
            assert loop.policy is not None
            deadletters.bury(self._sqs, loop.url, loop.policy, message, reason)

    def _keep_invisible(
        self, loop: _QueueLoop, receipt_handle: str, running: list[bool]
    ) -> None:
        """Extend a running worker's message, every half visibility timeout."""
        assert self._sqs is not None
        interval = max(loop.visibility / 2, 0.5)
        while True:
            eventlet.sleep(interval)
            if not running:
                return
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=loop.url,
                    ReceiptHandle=receipt_handle,
                    VisibilityTimeout=max(loop.visibility, 1),
                )
            except (BotoCoreError, ClientError) as exc:
                _log.warning(
                    "could not extend a running message on %s: %s", loop.url, exc
                )

    def _poll(self, loop: _QueueLoop) -> None:
        assert self._sqs is not None and self._free_workers is not None
        provider = loop.provider
        failed_polls = 0
        while not loop.stopping:
            claimed = self._claim_workers(
                min(provider.batch, self._share()), provider.wait_seconds
            )
            if not claimed:
                continue

            try:
                messages = queue_ops.receive(
                    self._sqs,
                    loop.url,
                    max_messages=claimed,
                    wait_seconds=provider.wait_seconds,
                )
            # A poll loop that raised would kill the container; it logs and
            # retries instead.
            except Exception as exc:  # noqa: BLE001
                self._release_workers(claimed)
                failed_polls += 1
                delay = min(MAX_BACKOFF_SECONDS, 0.2 * 2 ** min(failed_polls, 16))
                _log.warning(
                    "cannot poll %s (attempt %d), retrying in %.1f s: %s",
                    loop.url,
                    failed_polls,
                    delay,
                    exc,
                )
                _pause(loop, delay)
                continue

            if failed_polls:
                _log.info(
                    "polling %s again after %d failure(s)", loop.url, failed_polls
                )
                failed_polls = 0
            self._release_workers(claimed - len(messages))
            # Let a loop waiting for workers take them before this one asks
            # again: eventlet's semaphore does not queue its waiters fairly.
            eventlet.sleep(0)
            if loop.stopping:
                self._give_back(loop, messages)
                break

            if loop.fifo:
                for group in _message_groups(messages):
                    self._start_group(loop, group)
                continue

            for message in messages:
                self._dispatch(loop, message)

    def _start_group(self, loop: _QueueLoop, messages: list[dict[str, Any]]) -> None:
        thread = self.container.spawn_managed_thread(
            functools.partial(self._run_group, loop, messages),
            identifier=f"sqs group {loop.provider.queue_name}",
        )
        loop.group_threads.add(thread)
        thread.link(lambda _thread: loop.group_threads.discard(thread))

    def _run_group(self, loop: _QueueLoop, messages: list[dict[str, Any]]) -> None:
        """One message group of a FIFO batch: its messages one after another,
        in the order received. When one fails (or cannot start), the rest
        are handed back at once; SQS holds the group behind the failed one,
        which comes back first after its visibility timeout."""
        beats = [[True] for _ in messages]
        for message, running in zip(messages, beats, strict=True):
            # Queued messages are kept invisible too, or SQS would deliver
            # them again while their group's earlier ones still run.
            eventlet.spawn(
                self._keep_invisible, loop, message["ReceiptHandle"], running
            )
        for index, message in enumerate(messages):
            if loop.stopping:
                self._hand_back(loop, messages[index:], beats[index:])
                return

            done = eventlet.event.Event()
            if not self._dispatch(loop, message, beats[index], done):
                beats[index].clear()
                self._hand_back(loop, messages[index + 1 :], beats[index + 1 :])
                return

            if not done.wait():
                self._hand_back(loop, messages[index + 1 :], beats[index + 1 :])
                return

    def _hand_back(
        self, loop: _QueueLoop, messages: list[dict[str, Any]], beats: list[list[bool]]
    ) -> None:
        for running in beats:
            running.clear()
        self._give_back(loop, messages)

    def _share(self) -> int:
        """Workers one queue may reserve for a poll.

        A loop holds the workers it reserved for as long as its long poll
        waits. Were each loop to reserve them all, an idle queue would hold
        every worker through its empty polls and take them back before a
        busy queue's loop woke: the busy queue would starve.
        """
        return max(1, self.container.max_workers // max(1, len(self._loops)))

    def _claim_workers(self, wanted: int, wait_seconds: int) -> int:
        """Reserve up to `wanted` workers; 0 when none freed up in time."""
        assert self._free_workers is not None
        if not self._free_workers.acquire(timeout=max(wait_seconds, 1)):
            return 0

        claimed = 1
        while claimed < wanted and self._free_workers.acquire(blocking=False):
            claimed += 1
        return claimed

    def _release_workers(self, count: int) -> None:
        assert self._free_workers is not None
        for _ in range(count):
            self._free_workers.release()

    def _give_back(self, loop: _QueueLoop, messages: list[dict[str, Any]]) -> None:
        self._release_workers(len(messages))
        if not messages:
            return

        try:
            queue_ops.release(
                self._sqs, loop.url, [m["ReceiptHandle"] for m in messages]
            )
        except (BotoCoreError, ClientError) as exc:
            _log.warning(
                "could not hand back %d message(s) on %s; they return after the "
                "visibility timeout: %s",
                len(messages),
                loop.url,
                exc,
            )

    def _dispatch(
        self,
        loop: _QueueLoop,
        message: dict[str, Any],
        running: list[bool] | None = None,
        done: Any = None,
    ) -> bool:
        """Start a worker for one message; False when none could start.

        `running` is the message's heartbeat flag when one runs already (a
        message queued in its group); `done` an event that receives True or
        False, whether the worker succeeded, once it has ended.
        """
        provider = loop.provider
        outcome: list[bool] = []
        try:
            received = ReceivedMessage.from_sqs(message)
        except MalformedMessage as exc:
            self._release_workers(1)
            _log.error("leaving %s on %s for the dead-letter queue", exc, loop.url)
            self._bury_if_last(loop, message, f"not an event envelope: {exc}")
            return False

        try:
            worker_ctx = provider.container.spawn_worker(
                provider,
                (received,),
                {},
                # The header travels explicitly: the worker's greenthread
                # does not inherit this one's X-Ray context.
                context_data={
                    "event_id": received.event_id,
                    "trace_header": received.trace_header,
                },
                handle_result=functools.partial(
                    self._handle_result, loop, received, message, outcome
                ),
            )
        except ContainerBeingKilled:
            self._release_workers(1)
            return False

        # The worker's slot is freed when its greenthread ends, however it
        # ends: a dependency failing in worker_setup skips handle_result, and
        # a slot freed only there would leak. Nameko 2.14.1 is its last
        # release, so this private map of worker threads stays as it is.
        thread = provider.container._worker_threads.get(worker_ctx)
        if thread is None:
            self._release_workers(1)
            if done is not None:
                done.send(bool(outcome))
            return True

        # The heartbeat stops itself at its next wake once the worker is
        # done. Killing it from the link callback instead would switch
        # greenthreads inside a finishing one, and a kill of a heartbeat not
        # yet started never came back: the worker slot was never released.
        if running is None:
            running = [True]
            eventlet.spawn(self._keep_invisible, loop, received.receipt_handle, running)
        beating = running

        def finished(_thread: Any) -> None:
            beating.clear()
            self._release_workers(1)
            if done is not None:
                done.send(bool(outcome))

        thread.link(finished)
        return True

    def _handle_result(
        self,
        loop: _QueueLoop,
        received: ReceivedMessage,
        message: dict[str, Any],
        outcome: list[bool],
        worker_ctx: Any,
        result: Any,
        exc_info: Any,
    ) -> tuple[Any, Any]:
        if exc_info is None or issubclass(exc_info[0], AlreadyHandled):
            outcome.append(True)
            loop.handled.put(received.receipt_handle)
        else:
            _log.warning(
                "event %s (%s, message %s, receive %d) stays on %s after %s: %s; "
                "it returns after the visibility timeout",
                received.event_id,
                received.envelope.event_type,
                received.message_id,
                received.receive_count,
                loop.url,
                exc_info[0].__name__,
                exc_info[1],
            )
            self._bury_if_last(loop, message, deadletters.failure(exc_info[1]))
        return result, exc_info

    def _delete_handled(self, loop: _QueueLoop) -> None:
        finished = False
        while not finished:
            handles = [loop.handled.get()]
            # Whatever else finished meanwhile goes out in the same call.
            while len(handles) < queue_ops.SQS_BATCH_LIMIT:
                try:
                    handles.append(loop.handled.get_nowait())
                except Empty:
                    break
            if _FINISHED in handles:
                finished = True
                handles = [h for h in handles if h is not _FINISHED]
            if handles:
                self._delete(loop, handles)

    def _delete(self, loop: _QueueLoop, handles: list[Any]) -> None:
        try:
            queue_ops.delete(self._sqs, loop.url, handles)
        # Deleting is retried by SQS itself: the message comes back and the
        # handler's inbox recognises it. The loop must survive.
        except Exception as exc:  # noqa: BLE001
            _log.warning(
                "could not delete %d handled message(s) on %s; they will be "
                "delivered again: %s",
                len(handles),
                loop.url,
                exc,
            )


def _message_groups(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A FIFO batch split by message group, each in the order received."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        group = message.get("Attributes", {}).get("MessageGroupId", "")
        groups.setdefault(group, []).append(message)
    return list(groups.values())


def _pause(loop: _QueueLoop, seconds: float) -> None:
    """Sleep, but wake within a tenth of a second of the loop stopping."""
    deadline = time.monotonic() + seconds
    while not loop.stopping and time.monotonic() < deadline:
        eventlet.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _wait(thread: Any) -> None:
    if thread is None:
        return

    try:
        thread.wait()
    except BaseException:  # noqa: BLE001
        # A killed greenthread re-raises GreenletExit here; it is gone either way.
        _log.debug("sqs thread ended abnormally", exc_info=True)


class SqsConsumer(Entrypoint):  # type: ignore[misc]
    """The `consume` entrypoint: the worker receives a `ReceivedMessage`."""

    poller = SqsPoller()

    def __init__(
        self,
        queue_name: str,
        wait_seconds: int = 1,
        batch: int = 10,
        expected_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
        **kwargs: Any,
    ):
        if not 0 <= wait_seconds <= 20:
            raise SettingInvalid("wait_seconds", wait_seconds, "SQS polls 0-20 s")

        if not 1 <= batch <= queue_ops.SQS_BATCH_LIMIT:
            raise SettingInvalid("batch", batch, "SQS returns 1-10 messages a call")

        if not isinstance(expected_exceptions, tuple):
            expected_exceptions = (expected_exceptions,)
        self.queue_name = queue_name
        self.wait_seconds = wait_seconds
        self.batch = batch
        super().__init__(
            expected_exceptions=(*expected_exceptions, AlreadyHandled), **kwargs
        )

    def setup(self) -> None:
        self.poller.register_provider(self)

    def stop(self) -> None:
        self.poller.unregister_provider(self)

    def kill(self) -> None:
        self.poller.abandon_provider(self)


consume: Callable[..., Any] = SqsConsumer.decorator
