"""JupyterLab settings the course needs wherever it runs: shut a notebook's kernel down when its
tab closes.

JupyterLab keeps a kernel running after its tab closes; going 00 → 01 → 02 would then hold three
kernels of about 1 GB each, past Binder's 2 GB (Binder restarts the server beyond it) and past what
a workshop machine can give each learner. The setting goes into the environment's
`share/jupyter/lab/settings/overrides.json`, which JupyterLab reads as its defaults (a learner can
still change it in Settings), merged with whatever is there already.

    python tools/jupyterlab_settings.py [--prefix PREFIX]   # PREFIX: the environment (sys.prefix)

`./course start`, `./course test` and Binder's postBuild run it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COURSE_SETTINGS = {"@jupyterlab/notebook-extension:tracker": {"kernelShutdown": True}}


def overrides_path(prefix: Path) -> Path:
    return prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def install(prefix: Path) -> Path:
    path = overrides_path(prefix)
    try:
        overrides = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except json.JSONDecodeError as error:
        raise SystemExit(f"{path} is not valid JSON ({error}); fix or remove it, then run this again.") from error
    for plugin, values in COURSE_SETTINGS.items():
        overrides.setdefault(plugin, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(overrides, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", type=Path, default=Path(sys.prefix), help="the environment (default: this one)")
    args = parser.parse_args(argv)
    print(f"JupyterLab: kernels shut down when their tab closes ({install(args.prefix)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
