"""A small FastAPI app behind gunicorn + uvicorn's UvicornWorker: the process-manager stack that
drainit's gunicorn tests (tests/gunicorn.rs) and the rolling-restart benchmark
(bench/rolling-restart --app gunicorn) run under drainit.

    gunicorn -w 2 -k uvicorn.workers.UvicornWorker -b 127.0.0.1:8000 app:app

The process tree is what an init has to get right: drainit -> gunicorn's master (the arbiter)
-> its workers. The master handles HUP (reload), USR2 (re-exec), TTIN/TTOU (one worker more or
less) and TERM (graceful stop); the workers reset HUP and USR2 to their default action, so
either signal sent straight to a worker kills it, and the requests it was serving fail.

Routes (each answer names the worker's pid, so a test can tell which process answered):
    GET  /            200 "hello from PID"; `?delay=MS` answers after MS milliseconds (max 10 s)
    POST /            200 "got N bytes from PID": reads the whole body; `?delay=MS` as for GET
    GET  /healthz     200 "ok": what `drainit --ready-check http://127.0.0.1:PORT/healthz` polls

Versions are pinned in requirements.txt; scripts/install-deps.sh installs them into a virtual
environment (/opt/drainit-venv unless DRAINIT_VENV says otherwise).
"""

import asyncio
import os

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

app = FastAPI()


async def pause(delay: int) -> None:
    if delay > 0:
        await asyncio.sleep(min(delay, 10_000) / 1000)


@app.get("/", response_class=PlainTextResponse)
async def hello(delay: int = 0) -> str:
    await pause(delay)
    return f"hello from {os.getpid()}\n"


@app.post("/", response_class=PlainTextResponse)
async def upload(request: Request, delay: int = 0) -> str:
    body = await request.body()
    await pause(delay)
    return f"got {len(body)} bytes from {os.getpid()}\n"


@app.get("/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    return "ok\n"
