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

# the report screenshots in docs/ (the demo's fleet page and its outer-race pump's page), from a fresh demo
screenshots: setup
    rm -rf /tmp/vibra-shots && {{venv}}/bin/vibra demo --home /tmp/vibra-shots > /dev/null
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=/tmp/vibra-shots/profile --window-size=1340,900 --screenshot=docs/report-fleet.png file:///tmp/vibra-shots/reports/index.html
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=/tmp/vibra-shots/profile --window-size=1340,2600 --screenshot=docs/report-machine.png file:///tmp/vibra-shots/reports/machines/pump-02.html

# the test suite (what CI runs)
test: setup
    {{venv}}/bin/python -m pytest

# static checks
lint: setup
    {{venv}}/bin/ruff check vibra cli pipelines flows tests benchmarks

# benchmarks; writes BENCHMARKS.md (readers.py adds its section: peak RSS reading a 2 GiB TDMS file;
# lake.py its section, ~30 min: Delta against plain Parquet, 10,000 appends, a 10,000-machine day, compaction;
# workers.py its section: ingest on 1 and 2 worker processes, vibra cluster and vibra demo from an empty numba cache;
# chain.py its section: the per-recording chain stage by stage)
bench: setup
    {{venv}}/bin/python benchmarks/run.py
    {{venv}}/bin/python benchmarks/readers.py
    {{venv}}/bin/python benchmarks/lake.py
    {{venv}}/bin/python benchmarks/workers.py
    {{venv}}/bin/python benchmarks/chain.py

# real-data quality figures into their BENCHMARKS.md sections: diagnosis (CWRU leave-one-condition-out, FEMTO, IMS) and RUL (FEMTO leave-one-bearing-out, IMS)
bench-real: setup
    {{venv}}/bin/python benchmarks/real_recording.py
    {{venv}}/bin/python benchmarks/real_diagnosis.py
    {{venv}}/bin/python benchmarks/real_knn.py
    {{venv}}/bin/python benchmarks/real_rul.py
    {{venv}}/bin/python benchmarks/real_warning.py

# the nightly Prefect flow over a fresh synthetic plant, locally (no server needed)
flows-demo: setup
    {{venv}}/bin/python -m vibra_flows.demo

