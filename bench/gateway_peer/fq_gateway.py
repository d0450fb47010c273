"""fastapi-queue 0.1.1's own example gateway (its README), for bench/gateway.py: routes /, /sync-test and
/async-test, each admitted by DistributedTaskApplyManager under its route's global cap (503 over it).
Redis from $FQ_REDIS_URL."""

from __future__ import annotations

import os
from typing import Any

import aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_queue import DistributedTaskApplyManager

app = FastAPI()
redis = aioredis.Redis.from_url(os.environ["FQ_REDIS_URL"])


def get_response(success_status: bool, result: Any) -> Any:
    if success_status:
        return {"status": 200, "data": result}
    if result == -1:
        return JSONResponse(status_code=503, content="Service Temporarily Unavailable")
    return JSONResponse(status_code=500, content="Internal Server Error")


@app.get("/")
async def root(request: Request) -> Any:
    success_status: bool = False
    async with DistributedTaskApplyManager(redis=redis, request_path=request.url.path) as dtmanager:
        if not dtmanager.success():
            return JSONResponse(status_code=503, content="Service Temporarily Unavailable")
        success_status, result = await dtmanager.rclt(form_data={}, task_level=0)
    return get_response(success_status, result)


@app.get("/sync-test")
async def sync_test(request: Request, x: int) -> Any:
    success_status: bool = False
    async with DistributedTaskApplyManager(redis=redis, request_path=request.url.path) as dtmanager:
        if not dtmanager.success():
            return JSONResponse(status_code=503, content="Service Temporarily Unavailable")
        success_status, result = await dtmanager.rclt(form_data={"x": x}, task_level=0)
    return get_response(success_status, result)


@app.get("/async-test")
async def async_test(request: Request, n: int) -> Any:
    n = min(n, 80)
    success_status: bool = False
    async with DistributedTaskApplyManager(redis=redis, request_path=request.url.path) as dtmanager:
        if not dtmanager.success():
            return JSONResponse(status_code=503, content="Service Temporarily Unavailable")
        success_status, result = await dtmanager.rclt(form_data={"n": n}, task_level=0)
    return get_response(success_status, result)
