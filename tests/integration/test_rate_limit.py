"""Stripe request pacing: in one process, and shared by processes through a real Redis."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
import redis as redis_lib

from webapp.services.stripe.pacing import KEY, LocalRateLimiter, RedisRateLimiter

RATE = 50.0  # calls per second
CALLS = 30
BURST = 5


def _call_times(limiter, threads: int, calls: int) -> list[float]:
    """Times at which ``calls`` calls spread over ``threads`` threads were let through."""
    times: list[float] = []
    lock = threading.Lock()
    per_thread = calls // threads

    def work() -> None:
        for _ in range(per_thread):
            limiter()
            with lock:
                times.append(time.monotonic())

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted(times)


def _assert_paced(times: list[float], rate: float, burst: int) -> None:
    """After the first ``burst`` calls, ``rate`` a second: never faster (a call never goes
    before its slot), and not much slower (only a loaded machine's late wake-ups)."""
    expected = (len(times) - burst) / rate
    for n in range(burst, len(times)):
        # One interval of slack: the first call is timed a little after its slot was taken.
        assert times[n] - times[0] >= (n - burst) / rate, (n, times[n] - times[0])
    assert times[-1] - times[0] <= expected + 1.5, (times[-1] - times[0], expected)


@pytest.fixture
def redis(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    client.delete(KEY)
    yield client
    client.delete(KEY)


def test_local_limiter_paces_threads_at_the_rate():
    times = _call_times(LocalRateLimiter(RATE, burst=BURST), threads=6, calls=CALLS)

    assert len(times) == CALLS
    _assert_paced(times, RATE, BURST)


def test_redis_limiter_paces_threads_at_the_rate(redis):
    times = _call_times(RedisRateLimiter(redis, RATE, burst=BURST), threads=6, calls=CALLS)

    _assert_paced(times, RATE, BURST)


class _CountingRedis(redis_lib.Redis):
    """A Redis client that counts the commands it sends (the server's own stats are shared
    with the other tests running at the same time)."""

    sent = 0
    lock = threading.Lock()

    def execute_command(self, *args, **options):
        with self.lock:
            self.sent += 1
        return super().execute_command(*args, **options)


def test_redis_limiter_costs_one_redis_call_per_request(redis, redis_url):
    """Waiting callers sleep until their slot: none polls Redis again."""
    client = _CountingRedis.from_url(redis_url)
    limiter = RedisRateLimiter(client, RATE, burst=BURST)
    limiter()  # loads the script
    client.sent = 0

    _call_times(limiter, threads=6, calls=CALLS)

    assert client.sent == CALLS


def _worker(redis_url: str, start: float, calls: int, queue) -> None:
    limiter = RedisRateLimiter(redis_lib.Redis.from_url(redis_url), RATE, burst=BURST)
    time.sleep(max(0.0, start - time.time()))
    for _ in range(calls):
        limiter()
        queue.put(time.time())


def test_processes_share_one_budget(redis, redis_url):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start = time.time() + 2  # once both processes are up
    processes = [
        context.Process(target=_worker, args=(redis_url, start, CALLS // 2, queue))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    times = sorted(queue.get(timeout=30) for _ in range(CALLS))
    for process in processes:
        process.join(timeout=10)

    _assert_paced(times, RATE, BURST)


def test_without_redis_each_process_paces_itself():
    unreachable = redis_lib.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = RedisRateLimiter(unreachable, RATE, burst=BURST)

    times = _call_times(limiter, threads=3, calls=CALLS)

    _assert_paced(times, RATE, BURST)
