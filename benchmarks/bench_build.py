"""Build speed and memory, printed as figures (not a test): `tox -e bench`.

Targets: a full build of all three environments (templates and access matrices) under 2 s and
under 100 MiB peak traced allocation on a CI core.
"""

from __future__ import annotations

import json
import statistics
import time
import tracemalloc
from pathlib import Path

from scrybe_kms.access import access_markdown
from scrybe_kms.files import load_stack
from scrybe_kms.template import render
from scrybe_kms.validators import ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeat: int = 5) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), max(samples)


def main() -> None:
    configs = {env: load_stack(ROOT / "stacks" / f"{env}.py") for env in ENVIRONMENTS}
    print(f"{'step':<34}{'median ms':>12}{'max ms':>10}")
    for env, cfg in configs.items():
        median, worst = timed(lambda cfg=cfg: render(cfg))
        print(f"{'render ' + env:<34}{median * 1000:>12.1f}{worst * 1000:>10.1f}")
        template = json.loads(render(cfg))
        median, worst = timed(lambda cfg=cfg, template=template: access_markdown(template, cfg))
        print(f"{'access matrix ' + env:<34}{median * 1000:>12.1f}{worst * 1000:>10.1f}")
    tracemalloc.start()
    start = time.perf_counter()
    for cfg in configs.values():
        access_markdown(json.loads(render(cfg)), cfg)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"full build (3 envs, traced): {elapsed * 1000:.0f} ms, peak {peak / 2**20:.1f} MiB "
          f"(targets: < 2000 ms, < 100 MiB)")


if __name__ == "__main__":
    main()
