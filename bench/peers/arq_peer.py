"""arq driver: ArqRedis.enqueue_job, Job.result (polling GET, every 1 ms); worker via `arq` CLI."""

from __future__ import annotations

from typing import Any, ClassVar

from _common import REDIS_URL, RESULT_TIMEOUT_S, mark_done
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

VIA = "Job.result(poll_delay=0.001) (polls GET)"
REDIS = RedisSettings.from_dsn(REDIS_URL)
# For `arq --custom-log-dict`: the CLI's default logs two INFO lines per job.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}


async def noop(ctx: dict[str, Any]) -> None:
    """The benchmark's no-op job."""
    mark_done()


class WorkerSettings:
    """arq polls its queue every 0.5 s and runs 10 jobs at once by default, capping a no-op drain near
    20 jobs/s; 10 ms and 100 jobs keep an idle worker at 100 polls/s."""

    functions: ClassVar = [noop]
    redis_settings = REDIS
    max_jobs = 100
    poll_delay = 0.01


async def setup() -> ArqRedis:
    return await create_pool(REDIS)


async def enqueue(pool: ArqRedis) -> None:
    await pool.enqueue_job("noop")


async def roundtrip(pool: ArqRedis) -> None:
    job = await pool.enqueue_job("noop")
    assert job is not None
    await job.result(timeout=RESULT_TIMEOUT_S, poll_delay=0.001)
