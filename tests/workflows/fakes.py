"""Test doubles for what GitHub Actions has and this machine does not: the ``gh`` CLI, a
container engine, a hosting service and a container registry. Each program is put first on the
PATH (or named by ``DEPLOY_HOST_SCRIPT``), keeping its state in a JSON file, so the real scripts
run unchanged. The container double runs the real API (``python -m demandcast.api``) on
loopback; the registry double answers the OCI distribution API as GHCR does for a public or a
private package.
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
def value(flag):
    return args[args.index(flag) + 1]
def done(out="", code=0):
    json.dump(state, open(state_path, "w"))
    if out:
        print(out)
    sys.exit(code)
if args[:2] == ["pr", "create"]:
    if state.get("pr_create_fails"):
        print("pull request create failed: GraphQL: GitHub Actions is not permitted to create "
              "or approve pull requests (createPullRequest)", file=sys.stderr)
        done(code=1)
    state.setdefault("pulls_created", []).append({"head": value("--head"), "body": value("--body")})
    done("https://github.com/acme/demandcast/pull/8")
if args[:2] == ["auth", "status"]:
    done(code=0 if state.get("logged_in", True) else 1)
if args[0] in ("variable", "secret") and args[1] == "list":
    kind = args[0] + "s" + ("@" + value("--env") if "--env" in args else "")
    done(json.dumps([{"name": n} for n in state.get(kind, [])]))
if args[:2] == ["issue", "list"]:
    issues = state.get("issues", [])
    done(json.dumps([{"number": i["number"], "title": i["title"]} for i in issues]))
if args[:2] == ["issue", "create"]:
    issues = state.setdefault("issues", [])
    body = open(value("--body-file")).read()
    issues.append({"number": len(issues) + 1, "title": value("--title"), "comments": [body]})
    done(f"https://github.com/acme/demandcast/issues/{len(issues)}")
if args[:2] == ["issue", "comment"]:
    issue = next(i for i in state["issues"] if i["number"] == int(args[2]))
    issue["comments"].append(open(value("--body-file")).read())
    done()
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
import hashlib, json, os, signal, subprocess, sys
state_path = os.environ["FAKE_DOCKER_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {"calls": []}
args = sys.argv[1:]
state["calls"].append(args)
out = ""
def digest(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
if args[0] == "login":
    state["login_stdin_bytes"] = len(sys.stdin.read())
elif args[0] == "push":
    tag = args[-1]
    state.setdefault("pushed", []).append(tag)
    if "--digestfile" in args:  # podman
        open(args[args.index("--digestfile") + 1], "w").write(digest(tag))
elif args[0] == "inspect":
    tag = args[-1]
    name = tag.rsplit(":", 1)[0]
    pushed = tag in state.get("pushed", [])
    out = json.dumps([f"{name}@{digest(tag)}"] if pushed else [])
elif args[:2] == ["buildx", "build"]:
    if "--metadata-file" in args:
        tags = [args[i + 1] for i, a in enumerate(args) if a == "-t"]
        meta = {"containerimage.digest": digest(" ".join(tags)), "image.name": ",".join(tags)}
        json.dump(meta, open(args[args.index("--metadata-file") + 1], "w"))
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
elif command == "pull-access":
    print(state.get("pull", "credentials"))
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
            """The model of the image the host runs: ``versions`` maps an image reference (a
            digest) to it; a tag is the version itself."""
            state = json.loads(state_path.read_text())
            image = state.get("image", ":none")
            return state.get("versions", {}).get(image) or image.rsplit(":", 1)[1]

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


@contextmanager
def registry(public: bool) -> Iterator[str]:
    """A container registry double that answers as GHCR does an anonymous client: ``/v2/...``
    manifests want a bearer token (401 naming the token service), the token service gives anyone
    a token, and the manifest is then served for a public package and refused (403 DENIED) for a
    private one. Yields its ``host:port``."""

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            host = f"127.0.0.1:{self.server.server_address[1]}"
            if self.path.startswith("/token"):
                self.reply(200, {"token": "anonymous"})
            elif self.headers.get("Authorization") != "Bearer anonymous":
                challenge = f'Bearer realm="http://{host}/token",service="fake-registry"'
                self.reply(
                    401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": challenge}
                )
            elif public:
                self.reply(200, {"schemaVersion": 2, "manifests": []})
            else:
                self.reply(403, {"errors": [{"code": "DENIED", "message": "denied"}]})

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
