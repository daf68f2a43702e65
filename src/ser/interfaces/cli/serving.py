"""`ser serve` (HTTP API) and `ser app` (Streamlit)."""

from __future__ import annotations

import argparse
import sys

from ser.audio import DEFAULT_MAX_DURATION_S
from ser.interfaces.cli.base import needs


def cmd_serve(args: argparse.Namespace) -> int:
    from ser.interfaces.api import ServerConfig, serve

    serve(args.host, args.port, ServerConfig(
        model=args.model, max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration, max_sync_duration_s=args.max_sync_duration,
        timeout_s=args.timeout, max_concurrency=args.max_concurrency, max_jobs=args.max_jobs))
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    import os
    from importlib.resources import files
    from importlib.util import find_spec

    app_file = str(files("ser") / "interfaces" / "app.py")
    env = dict(os.environ, SER_APP_MAX_UPLOAD_MB=str(args.max_upload_mb))
    if args.model:
        env["SER_MODEL"] = str(args.model)
    if args.live_port and all(find_spec(m) for m in ("fastapi", "uvicorn", "websockets")):
        env["SER_LIVE_PORT"] = str(args.live_port)
        _start_live_server(args)
    cmd = [sys.executable, "-m", "streamlit", "run", app_file,
           "--server.address", args.host, "--server.port", str(args.port),
           # One limit, said once: the uploader shows it, and refuses larger files itself.
           "--server.maxUploadSize", str(int(max(1, round(args.max_upload_mb)))),
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--client.toolbarMode", "viewer"]
    # Replace this process with Streamlit's, so that signals (Ctrl-C, terminate) reach it.
    os.execve(sys.executable, cmd, env)


def _start_live_server(args: argparse.Namespace) -> None:
    """`ser serve` beside the app, for its live page (Streamlit cannot stream results back
    while the microphone records). On Linux it is told to end when the app ends."""
    import signal
    import subprocess

    def die_with_parent():
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass

    cmd = [sys.executable, "-m", "ser", "serve", "--host", args.host, "--port", str(args.live_port),
           "--max-upload-mb", str(args.max_upload_mb)] + (["--model", str(args.model)] if args.model else [])
    subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     preexec_fn=die_with_parent if sys.platform.startswith("linux") else None)


def _add_server_args(p: argparse.ArgumentParser, port: int) -> None:
    """What `ser serve` and `ser app` share: where to listen, which model, upload limit."""
    p.add_argument("--host", default="127.0.0.1", help="listen address (default loopback)")
    p.add_argument("--port", type=int, default=port, help="TCP port to listen on")
    p.add_argument("--model", default=None,
                   help="a shipped model's name (default, reference, light) or a bundle folder")
    p.add_argument("--max-upload-mb", type=float, default=25.0,
                   help="largest upload accepted (MB); larger files get a clear refusal")


def add_parsers(sub) -> None:
    p = sub.add_parser("serve", help="serve the HTTP API (FastAPI + uvicorn)")
    _add_server_args(p, port=8000)
    p.add_argument("--max-duration", type=float, default=DEFAULT_MAX_DURATION_S,
                   help="longest audio (s), as a job")
    p.add_argument("--max-sync-duration", type=float, default=30.0,
                   help="longest audio (s) for /v1/predict; longer goes to /v1/jobs")
    p.add_argument("--max-jobs", type=int, default=8, help="jobs queued or running at once")
    p.add_argument("--timeout", type=float, default=60.0, help="per-request limit (s)")
    p.add_argument("--max-concurrency", type=int, default=2, help="concurrent analyses")
    p.set_defaults(func=cmd_serve, needs=needs("api"))

    p = sub.add_parser("app", help="start the Streamlit web app")
    _add_server_args(p, port=8501)
    p.add_argument("--live-port", type=int, default=8502,
                   help="port of the live page's server (`ser serve`, started beside the app); "
                        "0: no live page")
    p.set_defaults(func=cmd_app, needs=needs("app"))
