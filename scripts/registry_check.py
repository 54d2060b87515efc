#!/usr/bin/env python3
"""Can anyone pull this image without credentials? The first deploy's check, before a host that
pulls anonymously (a Hugging Face Space) is pointed at an image it cannot read.

    scripts/registry_check.py IMAGE[@sha256:DIGEST | :TAG]

Asks the registry for the image's manifest the way an anonymous client does (the OCI
distribution API: a 401 names a token service; an anonymous token is asked for the repository's
``pull`` scope, and the manifest asked for again with it). GHCR answers so for a public package,
and refuses a private one, which is what a new GHCR package is. Registries on localhost or
127.0.0.1 are spoken to over plain HTTP (as a container engine does), others over HTTPS;
REGISTRY_CHECK_URL (e.g. http://127.0.0.1:5000) sends the requests to another base URL: a mirror
of the registry, or a test double.

Exit 0 = anonymously pullable; 3 = not (the reason on stderr); 2 = could not tell (the registry
did not answer). Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
PULLABLE, PRIVATE, UNKNOWN = 0, 3, 2


class Unreachable(Exception):
    """The registry did not answer."""


def parse(ref: str) -> tuple[str, str, str]:
    """``IMAGE[@digest|:tag]`` -> (registry host, repository, reference); Docker Hub's defaults
    for a bare name (``python`` -> registry-1.docker.io, library/python, latest)."""
    name, _, digest = ref.partition("@")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = "registry-1.docker.io", name if "/" in name else f"library/{name}"
    tag = "latest"
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
    return host, path, digest or tag


def base_url(host: str) -> str:
    if os.environ.get("REGISTRY_CHECK_URL"):
        return os.environ["REGISTRY_CHECK_URL"].rstrip("/")
    plain = host.split(":")[0] in ("localhost", "127.0.0.1")
    return f"{'http' if plain else 'https'}://{host}"


def get(url: str, token: str | None = None, accept: str | None = None) -> tuple[int, dict, bytes]:
    headers = {"User-Agent": "demandcast-registry-check"}
    if accept:
        headers["Accept"] = accept
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(f"{url}: {getattr(exc, 'reason', exc)}") from None


def challenge(headers: dict) -> dict[str, str]:
    """The parameters of a ``WWW-Authenticate: Bearer realm=...,service=...`` header."""
    value = next((v for k, v in headers.items() if k.lower() == "www-authenticate"), "")
    return dict(re.findall(r'(\w+)="([^"]*)"', value)) if value.lower().startswith("bearer") else {}


def check(ref: str) -> tuple[int, str]:
    host, repository, reference = parse(ref)
    manifest = f"{base_url(host)}/v2/{repository}/manifests/{reference}"
    status, headers, _ = get(manifest, accept=ACCEPT)
    if status == 401:
        params = challenge(headers)
        if "realm" not in params:
            return PRIVATE, f"{host} wants credentials for {repository} (no token service)"
        query = {"scope": f"repository:{repository}:pull"}
        if "service" in params:
            query["service"] = params["service"]
        status, _, body = get(f"{params['realm']}?{urllib.parse.urlencode(query)}")
        if status != 200:
            return PRIVATE, f"{host} gives no anonymous pull token for {repository} (HTTP {status})"
        try:
            answer = json.loads(body)
        except ValueError:
            return UNKNOWN, f"{params['realm']}: the answer is not JSON"
        token = answer.get("token") or answer.get("access_token")
        status, _, _ = get(manifest, token=token, accept=ACCEPT)
    if status == 200:
        return PULLABLE, f"{ref}: anyone can pull it"
    if status in (401, 403):
        return PRIVATE, f"{host} refuses an anonymous pull of {repository} (HTTP {status}): private"
    if status == 404:
        return PRIVATE, f"{host} has no {repository}@{reference} for an anonymous client (HTTP 404)"
    return UNKNOWN, f"{manifest}: HTTP {status}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.splitlines()[3].strip(), file=sys.stderr)
        return UNKNOWN
    try:
        code, message = check(args[0])
    except Unreachable as exc:
        code, message = UNKNOWN, f"could not reach the registry: {exc}"
    print(message, file=sys.stdout if code == PULLABLE else sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
