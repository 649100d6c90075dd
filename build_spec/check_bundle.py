"""Runs a built bundle the way a user would and fails on any error (`make bundle-test`).

    python build_spec/check_bundle.py [EXECUTABLE]

Default executable: dist/resnet-studio/resnet-studio (onedir), else dist/onefile/resnet-studio.
It runs from an empty folder with no Python environment variables, so a bundle that
only works beside the source tree or inside the venv fails here:

1. `--version` prints app.__version__;
2. `--self-test` passes (model, samples, main window offscreen, a training step);
3. `classify --json` on the shipped sample images (drawings and phone photos) labels each
   one with the digit in its file name.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import __version__  # noqa: E402

CANDIDATES = [ROOT / "dist" / "resnet-studio" / "resnet-studio", ROOT / "dist" / "onefile" / "resnet-studio"]


def run(exe: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as cwd:
        t0 = time.perf_counter()
        proc = subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    print(f"$ {exe.name} {' '.join(args)}  -> exit {proc.returncode} in {time.perf_counter() - t0:.1f} s")
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        sys.stderr.write(proc.stderr[-4000:])
    return proc


def main(argv: list[str]) -> int:
    exe = Path(argv[0]).resolve() if argv else next((p for p in CANDIDATES if p.is_file()), CANDIDATES[0])
    if not exe.is_file():
        print(f"error: no bundle at {exe}; run `make bundle` first", file=sys.stderr)
        return 1
    problems = []

    proc = run(exe, "--version")
    if proc.returncode != 0 or __version__ not in proc.stdout:
        problems.append(f"--version printed {proc.stdout.strip()!r}, expected {__version__}")

    proc = run(exe, "--self-test")
    print("  " + (proc.stdout.strip().splitlines() or ["(no output)"])[-1])
    if proc.returncode != 0:
        problems.append("--self-test failed: " + " | ".join(proc.stderr.strip().splitlines()[-6:]))

    samples = ROOT / "resources" / "samples"
    proc = run(exe, "classify", "--json", str(samples))
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        problems.append(f"classify exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    wrong = []
    for r in results:
        m = re.fullmatch(r"(?:digit|photo)_(\d)\.(?:png|jpg)", Path(r["path"]).name)
        if m and r.get("label") != m.group(1):
            wrong.append(f"{Path(r['path']).name} -> {r.get('label')}")
    n_digits = sum(1 for r in results if re.fullmatch(r"(?:digit|photo)_\d\.(?:png|jpg)", Path(r["path"]).name))
    print(f"  classify: {n_digits - len(wrong)}/{n_digits} sample images correct")
    if n_digits < 10 or wrong:
        problems.append(f"classify: {n_digits} sample results, wrong: {wrong}")

    for p in problems:
        print(f"FAILED {p}", file=sys.stderr)
    if not problems:
        print(f"bundle OK: {exe}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
