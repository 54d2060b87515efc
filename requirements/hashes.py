"""Add the sha256 of every PyPI file to a pinned lock file, for pip's hash-checking mode.

    python requirements/hashes.py requirements/pipeline.lock   # rewrites it in place

Reads the ``name==version`` pins (comment lines at the top are kept), asks ``pip-compile
--generate-hashes`` (pip-tools) for the hashes of those exact versions, and writes them back.
A pin that pip-compile writes with extras (``pandas[parquet]==2.3.3``) is written both with and
without them: in hash-checking mode pip needs a pinned line for each form a dependency asks for.
Used by ``make lock``; pip-tools is installed in the throwaway venv there.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

BLOCK = re.compile(
    r"^(?P<name>[A-Za-z0-9_.-]+)(?P<extras>\[[^]]+\])?==(?P<rest>.*?)(?=^\S|\Z)", re.M | re.S
)


def hashed(pins: list[str], pip_compile: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.txt", Path(tmp) / "out.txt"
        source.write_text("\n".join(pins) + "\n")
        subprocess.run(
            [
                pip_compile,
                "--quiet",
                "--generate-hashes",
                "--allow-unsafe",
                "--no-header",
                "--no-emit-index-url",
                "--no-emit-find-links",
                "--no-annotate",
                "--output-file",
                str(target),
                str(source),
            ],
            check=True,
        )
        text = target.read_text()
    blocks = []
    for match in BLOCK.finditer(text):
        plain = f"{match['name']}=={match['rest'].rstrip()}\n"
        blocks.append(plain)
        if match["extras"]:
            blocks.append(f"{match['name']}{match['extras']}=={match['rest'].rstrip()}\n")
    return "".join(blocks)


def main() -> None:
    path = Path(sys.argv[1])
    pip_compile = sys.argv[2] if len(sys.argv) > 2 else "pip-compile"
    lines = path.read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    pins = [
        line.split(" ")[0] for line in lines if re.match(r"^[A-Za-z0-9_.-]+(\[[^]]+\])?==", line)
    ]
    path.write_text("\n".join(header) + ("\n" if header else "") + hashed(pins, pip_compile))


if __name__ == "__main__":
    main()
