"""Run the Jangin app with the capture router on 127.0.0.1:PORT (settings from JANGIN_* env).

Used by the ingest tests as a real uvicorn subprocess (they kill it with SIGKILL and restart it).
"""

from __future__ import annotations

import sys

import uvicorn

from jangin.capture.server import register
from jangin.core.server import create_app
from jangin.core.settings import get_settings

if __name__ == "__main__":
    app = create_app(get_settings(), routers=[], extra=[register])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
