"""Fault signatures: `vibra cluster`, `clusters` and the defect catalog `vibra defects ...`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from vibra_cli import output
from vibra_cli.options import EquipmentIds, Home, Json, Since, Who, context, machines, utc, nothing_yet


def cluster_cli(
    since: Since = None,
    min_cluster_size: Annotated[Optional[int], typer.Option(min=2, help="Smallest cluster HDBSCAN keeps "
                                                            "[cluster] min_cluster_size (0 = auto).")] = None,
    umap_components: Annotated[Optional[int], typer.Option(min=0, help="UMAP dimensions before HDBSCAN; 0 = no "
                                                           "UMAP [cluster] umap_components.")] = None,
    sample: Annotated[Optional[int], typer.Option(min=100, help="Windows the clustering is fitted on "
                                                  "[cluster] sample.")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Find fault signatures: UMAP + HDBSCAN over the window embeddings; writes data/lake/clusters and a
    clustering manifest (with the drift against the previous clustering), then re-assigns defects.

    UMAP compiles its kernels the first time after install (about a minute; cached in ~/.cache/vibra/numba for
    every later run); --umap-components 0 skips UMAP.

    Example: vibra cluster --since 2026-01-01 --min-cluster-size 50
    """
    from vibra_pipelines import cluster, defects

    ws, settings = context(home, {"cluster.min_cluster_size": min_cluster_size,
                                   "cluster.umap_components": umap_components, "cluster.sample": sample})
    result = cluster.run(ws, settings, since=utc(since), progress=output.stages(as_json))
    defects.after_cluster(ws, settings, result, progress=output.stages(as_json))
    output.emit(result.as_dict(), as_json, lambda: output.cluster_summary(result))


def clusters_cli(home: Home = None, as_json: Json = False) -> None:
    """The latest clustering: per cluster its size, machines, time span, label (and where it came from)
    and the physics evidence that stands out against the fleet median; drift against the previous one.

    Example: vibra clusters --json
    """
    from vibra_pipelines import defects

    ws, settings = context(home)
    payload = defects.cluster_table(ws, settings)
    output.emit(payload, as_json, lambda: output.clusters_table(payload))


defects_app = typer.Typer(help="The defect catalog and the kNN's assignments. Example: vibra defects list",
                          no_args_is_help=True)


@defects_app.command("list")
def defects_list_cli(home: Home = None, as_json: Json = False) -> None:
    """The defect catalog (seeded with the common machine faults).

    Example: vibra defects list --json
    """
    from vibra_pipelines import defects

    ws, _ = context(home)
    rows = defects.defect_types(ws)
    output.emit(rows, as_json, lambda: output.rows_table(rows, "defect catalog", ["name", "description", "source"]))


@defects_app.command("add")
def defects_add_cli(name: Annotated[str, typer.Argument(metavar="NAME", help="Defect name: lower-case, digits, _.")],
                    description: Annotated[str, typer.Option("--description", help="What it means.")] = "",
                    by: Who = None, home: Home = None, as_json: Json = False) -> None:
    """Add a defect type to the catalog.

    Example: vibra defects add coupling_wear --description "worn coupling: 2x and 3x"
    """
    from vibra_pipelines import defects

    ws, settings = context(home)
    row = defects.add_defect(ws, settings, name, description, by)
    output.emit(row, as_json, lambda: output.say(f"added defect {name}"))


@defects_app.command("assignments")
def defects_assignments_cli(equipment: EquipmentIds = None, home: Home = None, as_json: Json = False) -> None:
    """Per machine and recording: windows per defect the kNN assigned (`unknown` = abstained).

    Example: vibra defects assignments --equipment pump-02 --json
    """
    from vibra_pipelines import defects

    ws, settings = context(home)
    equipment = machines(ws, settings, equipment)
    rows = defects.assignments(ws, equipment)
    nothing_yet(not rows, "no defect assignments yet: label a cluster or recording (vibra label), which trains "
                          "the kNN")
    output.emit(rows, as_json, lambda: output.assignments_table(rows))


@defects_app.command("train")
def defects_train_cli(home: Home = None, as_json: Json = False) -> None:
    """Retrain the defect kNN on every labelled window now and re-assign (normally automatic).

    Example: vibra defects train
    """
    from vibra_pipelines import defects

    ws, settings = context(home)
    payload = defects.train_now(ws, settings)
    output.emit(payload, as_json, lambda: output.say(
        f"kNN {payload['knn']['version']}: {payload['knn']['n_labels']} labelled windows, classes "
        f"{', '.join(payload['knn']['classes'])}, radius {payload['knn']['radius']:.3g}; "
        f"{payload['assignment']['assigned']} windows assigned"))
