"""No compile on the user's clock: the CLI puts numba's cache in the user's cache folder, and UMAP's and
pynndescent's numba functions are cached there too, so a second process loads what the first compiled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def numba_cache(tmp_path_factory) -> Path:
    """One numba cache for this file: empty for the first test below, warm for the next."""
    return tmp_path_factory.mktemp("numba")


def test_a_second_process_loads_umap_from_the_cache_instead_of_compiling(numba_cache):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache)}
    runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                                      check=True).stdout) for _ in range(2)]
    assert runs[0]["misses"], "the first process should compile (an empty cache)"
    assert any(numba_cache.glob("umap_*/**/*.nbi"))  # UMAP's own functions, not only pynndescent's
    assert runs[1]["misses"] == [] and runs[1]["hits"] > 0, runs[1]


WARM = """
import json
import numpy as np
from vibra.discovery import clustering

clustering.warm_up(15).join()
import pynndescent.pynndescent_ as nnd

before = {name: len(getattr(nnd, name).overloads) for name in ("nn_descent", "nn_descent_internal")}
clustering.reduce(np.random.default_rng(1).normal(size=(clustering.NN_DESCENT_FROM + 10, 8)), 5, 15, 0)
after = {name: len(getattr(nnd, name).overloads) for name in ("nn_descent", "nn_descent_internal")}
print(json.dumps({"before": before, "after": after}))
"""


def test_the_warm_up_compiles_the_nn_descent_umap_then_uses(numba_cache):
    """pynndescent's NN-descent cannot be cached (its distance is an argument); `vibra demo` compiles it in a thread
    while other work runs. UMAP must then find it compiled for its own argument types: no second compile. (After the
    test above, so that UMAP's cacheable functions load from the cache it filled.)"""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache)}
    out = json.loads(subprocess.run([sys.executable, "-c", WARM], env=env, capture_output=True, text=True,
                                    check=True).stdout)
    assert out["before"] == {"nn_descent": 1, "nn_descent_internal": 1}, out  # the warm-up compiled them
    assert out["after"] == out["before"], out  # and UMAP's fit on 4,106 points reused them
