# vibra developer tasks. `pip install rust-just` provides `just`.
set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"

# create the virtual environment and install vibra with test and dev tools
setup:
    test -x {{venv}}/bin/python || python3 -m venv {{venv}}
    {{venv}}/bin/pip install -q -e '.[dev]'

# synthetic plant → ingest → status in a fresh workspace
demo: setup
    {{venv}}/bin/vibra demo

# the test suite (what CI runs)
test: setup
    {{venv}}/bin/python -m pytest

# static checks
lint: setup
    {{venv}}/bin/ruff check vibra cli pipelines flows tests benchmarks

# benchmarks; writes BENCHMARKS.md
bench: setup
    {{venv}}/bin/python benchmarks/run.py

# the nightly Prefect flow over a fresh synthetic plant, locally (no server needed)
flows-demo: setup
    {{venv}}/bin/python -m vibra_flows.demo

# benchmarks on the real bearing data in ../shared/data/real; writes their sections of BENCHMARKS.md
bench-real: setup
    {{venv}}/bin/python benchmarks/real_rul.py
