"""Test doubles for what GitHub Actions has and this machine does not: the ``gh`` CLI, a
container engine, and a hosting service. Each is a small program put first on the PATH (or
named by ``DEPLOY_HOST_SCRIPT``), keeping its state in a JSON file, so the real scripts run
unchanged. The container double runs the real API (``python -m demandcast.api``) on loopback.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GH = r"""
import json, os, sys
state_path = os.environ["FAKE_GH_STATE"]
state = json.load(open(state_path))
args = sys.argv[1:]
state["calls"].append(args)
if args[:2] == ["pr", "create"]:
    json.dump(state, open(state_path, "w"))
    print("https://github.com/acme/demandcast/pull/8")
    sys.exit(0)
assert args[0] == "api", args
method = args[args.index("-X") + 1] if "-X" in args else "GET"
path = next(a for a in args[1:] if a.startswith("repos/"))
parts = path.split("/")
body = None
if "-F" in args:
    field = args[args.index("-F") + 1]
    assert field.startswith("body=@"), field
    body = open(field[len("body=@"):]).read()
if parts[3] == "pulls":
    out = state["pulls"][parts[4]]
elif parts[3:] == ["issues", parts[4], "comments"] and method == "GET":
    out = [[c for c in state["comments"] if c["pr"] == int(parts[4])]]  # --slurp: pages
elif method == "POST":
    comment = {"id": 100 + len(state["comments"]), "pr": int(parts[4]), "body": body,
               "user": {"login": "github-actions[bot]"}}
    state["comments"].append(comment)
    out = comment
elif method == "PATCH":
    comment = next(c for c in state["comments"] if c["id"] == int(parts[5]))
    comment["body"] = body
    out = comment
else:
    sys.exit(f"fake gh: unexpected call {args}")
json.dump(state, open(state_path, "w"))
print(json.dumps(out))
"""

DOCKER = r"""
import json, os, signal, subprocess, sys
state_path = os.environ["FAKE_DOCKER_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {"calls": []}
args = sys.argv[1:]
state["calls"].append(args)
out = ""
if args[0] == "login":
    state["login_stdin_bytes"] = len(sys.stdin.read())
elif args[0] == "run":
    port = args[args.index("-p") + 1].split(":")[1]
    model_dir = os.environ.get("FAKE_DOCKER_MODEL_DIR", "models/serving")
    log = open(f"{state_path}.{port}.log", "w")
    env = {**os.environ, "PORT": port, "DEMANDCAST_HOST": "127.0.0.1",
           "DEMANDCAST_MODEL_DIR": model_dir, "DEMANDCAST_METRICS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "demandcast.api"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    state.setdefault("running", {})[str(proc.pid)] = log.name
    out = str(proc.pid)
elif args[0] == "logs":
    out = open(state["running"][args[1]]).read()
elif args[0] == "rm":
    os.killpg(int(args[-1]), signal.SIGTERM)
    state["running"].pop(args[-1])
json.dump(state, open(state_path, "w"))
print(out)
"""

HOST = r"""
import json, os, sys
state_path = os.environ["FAKE_HOST_STATE"]
state = json.load(open(state_path))
command = sys.argv[1]
if command == "current":
    print(state.get("image", ""))
elif command == "url":
    print(state["url"])
elif command == "deploy":
    state.setdefault("deploys", []).append(sys.argv[2])
    if sys.argv[2] != os.environ.get("FAKE_HOST_BROKEN_IMAGE"):
        state["image"] = sys.argv[2]
    json.dump(state, open(state_path, "w"))
"""


def install(directory: Path, name: str, source: str) -> Path:
    """Write ``source`` as an executable Python program ``directory/name``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{source.lstrip()}")
    path.chmod(0o755)
    return path


@contextmanager
def hosted_api(state_path: Path) -> Iterator[str]:
    """A hosted endpoint double: /health and /predict answer as the model of the image the
    fake host runs (its tag is the model version). Yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def answer(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def version(self) -> str:
            return json.loads(state_path.read_text()).get("image", ":none").rsplit(":", 1)[1]

        def do_GET(self) -> None:
            self.answer(
                {
                    "status": "ok",
                    "model_version": self.version(),
                    "trained_through": "2014-02-24",
                    "horizon_days": 14,
                }
            )

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.answer({"model_version": self.version(), "predictions": [{"sales": 1.5}]})

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
