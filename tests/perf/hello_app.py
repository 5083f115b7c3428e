"""The baseline: a bare Litestar hello-JSON endpoint under the same server (uvicorn)."""

from __future__ import annotations

import sys

import uvicorn
from litestar import Litestar, get


@get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


app = Litestar([hello], logging_config=None)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
