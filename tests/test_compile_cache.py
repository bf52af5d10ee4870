"""No compile on the user's clock: the CLI puts numba's cache in the user's cache folder, and UMAP's and
pynndescent's numba functions are cached there too, so a second process loads what the first compiled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from vibra_cli import main as cli_main

# fit a small UMAP in a fresh process; count, over UMAP's and pynndescent's numba functions, what was loaded
# from the disk cache (hits) and what was compiled (misses)
PROBE = """
import json, sys
import numpy as np
from numba.core.dispatcher import Dispatcher
from vibra.discovery import clustering


def dispatchers():
    for name, module in list(sys.modules.items()):
        if module is not None and name.split(".")[0] in ("umap", "pynndescent"):
            yield from (v for v in vars(module).values() if isinstance(v, Dispatcher))


clustering._umap()
# a few functions declared with their signature compile when umap is imported, before any cache is turned on
eager = {id(d): sum(d.stats.cache_misses.values()) for d in dispatchers()}
clustering.reduce(np.random.default_rng(0).normal(size=(300, 8)), 5, 15, 0)
hits, misses = 0, []
for d in dispatchers():
    hits += sum(d.stats.cache_hits.values())
    misses += [d.py_func.__qualname__] * (sum(d.stats.cache_misses.values()) - eager.get(id(d), 0))
print(json.dumps({"hits": hits, "misses": sorted(set(misses))}))
"""


def test_the_cli_points_numba_at_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cli_main.numba_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "cache" / "vibra" / "numba")
    assert (tmp_path / "cache" / "vibra" / "numba").is_dir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))  # the user's own choice is kept
    cli_main.numba_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


def test_a_second_process_loads_umap_from_the_cache_instead_of_compiling(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                                      check=True).stdout) for _ in range(2)]
    assert runs[0]["misses"], "the first process should compile (an empty cache)"
    assert any(Path(tmp_path / "numba").glob("umap_*/**/*.nbi"))  # UMAP's own functions, not only pynndescent's
    assert runs[1]["misses"] == [] and runs[1]["hits"] > 0, runs[1]
