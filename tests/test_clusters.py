"""Fault-signature discovery: embedding manifest, clustering, labels, kNN with abstention, drift."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from vibra.discovery import clustering, embedding, knn
from vibra.discovery.retrain import retrain_reason

from vibra.storage import metrics
from vibra.discovery.evaluation import evaluate
from vibra.settings import load_settings
from vibra.workspace import init_workspace
from vibra_pipelines import cluster, defects, ingest, status, synth

from conftest import CWRU_TOML, run_vibra, stage

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
CLASSES = ("normal", "bearing_outer_race", "imbalance", "bearing_inner_race", "looseness", "bearing_ball")


# -- pure functions against plain references ---------------------------------------------------------

@hsettings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=6), st.integers(1, 150), st.integers(0, 10))
def test_stratified_sample_shares_and_no_repeats(sizes, n, seed):
    groups = np.repeat(np.arange(len(sizes)), sizes)
    idx = clustering.stratified_sample(groups, n, seed)
    assert len(np.unique(idx)) == len(idx) == min(n, len(groups))
    taken = np.bincount(groups[idx], minlength=len(sizes))
    # a group is either taken whole or gets at least as many rows as any larger-taken group minus one share
    short = [g for g in range(len(sizes)) if taken[g] < sizes[g]]
    if short:
        assert min(taken[short]) >= max(taken) - max(1, n // len(sizes))


def test_assign_nearest_matches_brute_force():
    rng = np.random.default_rng(0)
    fit = rng.normal(size=(300, 4))
    labels = rng.integers(-1, 4, size=300)
    new = rng.normal(size=(50, 4))
    got = clustering.assign_nearest(fit, labels, new, k=5)
    d = ((new[:, None, :] - fit[None, :, :]) ** 2).sum(-1)
    for i in range(len(new)):
        votes = labels[np.argsort(d[i])[:5]]
        values, counts = np.unique(votes, return_counts=True)
        assert got[i] in values[counts == counts.max()]


def test_fit_on_a_sample_finds_the_blobs_and_assigns_the_rest():
    rng = np.random.default_rng(3)
    truth = np.repeat([0, 1, 2], 400)
    x = rng.normal(scale=0.3, size=(1200, 4)) + np.array([[0.0] * 4, [5.0] * 4, [-5.0, 5.0, -5.0, 5.0]])[truth]
    groups = np.where(np.arange(1200) % 2, "pump-1", "pump-2")
    fit = clustering.fit(x, groups, sample=300, components=0, neighbors=15, seed=0)
    assert len(fit.sample) == 300 and np.all(np.diff(fit.sample) > 0) and fit.reduced.shape == (300, 4)
    assert fit.min_cluster_size == 15 and fit.noise_ratio < 0.02 and len(fit.cluster_ids) == 3
    clean = fit.labels >= 0
    # every blob is one cluster and every cluster one blob, windows outside the sample included
    assert all(len(set(fit.labels[clean & (truth == t)])) == 1 for t in range(3))
    assert len({(t, c) for t, c in zip(truth[clean], fit.labels[clean])}) == 3
    assert sum(fit.sizes().values()) == clean.sum() and fit.validity > 0.8
    picked, xy = fit.projection(100, seed=0)
    assert len(picked) == 100 and set(picked) <= set(fit.sample) and xy.shape == (100, 2)
    same = clustering.drift_since({"version": "v1", "embedding_version": "e1", "validity": fit.validity,
                                   "centroids": {str(c): v.tolist() for c, v in fit.centroids.items()}}, "e1", fit)
    assert same["previous_version"] == "v1" and same["n_births"] == same["n_deaths"] == 0
    other = clustering.drift_since({"version": "v1", "embedding_version": "e0", "centroids": {"0": [0.0] * 4}}, "e1", fit)
    assert other["n_births"] == 3  # another embedding's centroids are not comparable
    assert clustering.psi_against(None, x) is None and clustering.psi_against(x[:5], x) is None


def test_the_knn_retrain_rule():
    trained = {"embedding_version": "e1", "classes": ["gear", "normal"], "coverage_at_train": 0.10,
               "labelled_clusters": ["c1:0", "c1:1"]}
    now = dict(embedding_version="e1", classes={"gear", "normal"}, coverage=0.10, labelled_clusters={"c1:0", "c1:1"},
               coverage_change=0.2, new_clusters=2)
    assert retrain_reason(trained, **now) is None
    assert retrain_reason(None, **now) == "no kNN trained yet"
    assert retrain_reason(trained, **{**now, "embedding_version": "e2"}) == "the embedding version changed"
    assert retrain_reason(trained, **{**now, "classes": {"gear"}}) == "the labelled defect classes changed"
    assert retrain_reason(trained, **{**now, "coverage": 0.119}) is None  # 19 % relative: under 20 %
    assert retrain_reason(trained, **{**now, "coverage": 0.121}).startswith("label coverage moved from 10.00% to 12.10%")
    assert retrain_reason(trained, **{**now, "labelled_clusters": {"c1:0", "c2:5"}}) is None  # one new cluster
    assert retrain_reason(trained, **{**now, "labelled_clusters": {"c2:4", "c2:5"}}) == \
        "2 clusters labelled since the last training"


def test_psi_reference_formula_and_drift_matching():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(5000, 2))
    same = clustering.psi(ref, rng.normal(size=(5000, 2)))
    moved = clustering.psi(ref, rng.normal(loc=[0.0, 1.0], size=(5000, 2)))
    assert same.max() < 0.02 and moved[0] < 0.02 and moved[1] > 0.25
    edges = np.quantile(ref[:, 1], np.linspace(0, 1, 11)[1:-1])
    cur = rng.normal(loc=1.0, size=5000)
    p = np.bincount(np.searchsorted(edges, ref[:, 1], side="right"), minlength=10) / 5000
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=10) / 5000
    expect = np.sum((np.maximum(q, 1e-4) - np.maximum(p, 1e-4)) * np.log(np.maximum(q, 1e-4) / np.maximum(p, 1e-4)))
    assert clustering.psi(ref[:, 1:], cur[:, None])[0] == pytest.approx(expect)
    prev = {0: np.zeros(3), 1: np.full(3, 5.0)}
    cur_c = {7: np.full(3, 5.1), 8: np.full(3, -9.0)}
    drift = clustering.compare(prev, cur_c, 0.5, 0.4)
    assert drift.matched == [{"cluster_id": 7, "previous_cluster_id": 1, "centroid_shift": pytest.approx(0.1732, abs=1e-3)}]
    assert drift.births == [8] and drift.deaths == [0] and drift.validity_change == pytest.approx(-0.1)


def test_knn_radius_and_abstention_against_numpy():
    rng = np.random.default_rng(2)
    a = rng.normal(0, 0.1, size=(40, 3))
    b = rng.normal(3, 0.5, size=(40, 3))  # a wider class: it gets its own, larger radius
    model = knn.fit(np.vstack([a, b]), np.array(["a"] * 40 + ["b"] * 40), k=3, radius_quantile=0.9, radius_factor=2.0)
    for name, part in (("a", a), ("b", b)):
        x = part.astype(np.float32)
        d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
        own = np.sort(d, axis=1)[:, 1:4].mean(1)
        assert model.radii[name] == pytest.approx(2.0 * np.quantile(own, 0.9), rel=1e-4)
    assert model.radii["b"] > 3 * model.radii["a"] and model.radius == max(model.radii.values())
    # 0.6 from class a's centre: beyond a's radius though well inside b's — one global radius would answer "a"
    defect, conf, _ = knn.predict(model, np.array([[0.05, 0, 0], [3, 3, 3.05], [10, -10, 10], [0.6, 0, 0]]))
    assert defect.tolist() == ["a", "b", "unknown", "unknown"] and conf[0] == 1.0 and conf[2] == 0.0


def test_knn_save_load_keeps_the_radii(tmp_path):
    rng = np.random.default_rng(4)
    x = np.vstack([rng.normal(0, 0.1, (10, 2)), rng.normal(2, 0.4, (10, 2))])
    model = knn.fit(x, np.array(["a"] * 10 + ["outer_race"] * 10), k=3, radius_quantile=0.9, radius_factor=2.0)
    knn.save(model, tmp_path / "m.npz")
    back = knn.load(tmp_path / "m.npz")
    assert back.radii == pytest.approx(model.radii) and back.k == 3
    assert back.reach == pytest.approx(model.reach) and set(back.reach) == {"outer_race"}
    np.testing.assert_array_equal(knn.predict(back, x)[0], knn.predict(model, x)[0])


def test_metrics_file_merges_families_and_parses():
    from prometheus_client.parser import text_string_to_metric_families

    def read(path):
        return {s.name + json.dumps(s.labels, sort_keys=True): s.value
                for fam in text_string_to_metric_families(path.read_text()) for s in fam.samples}

    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "vibra.prom"
    metrics.update(path, gauges=[metrics.gauge("vibra_a", "A.", {metrics.labels(equipment='p"1'): 2.5})])
    metrics.update(path, gauges=[metrics.gauge("vibra_b", "B.", 1)],
                   counters=[metrics.Family("vibra_c_total", "counter", "C.", {(): 2})])
    metrics.update(path, counters=[metrics.Family("vibra_c_total", "counter", "C.", {(): 3})])
    got = read(path)
    assert got['vibra_a{"equipment": "p\\"1"}'] == 2.5 and got["vibra_b{}"] == 1 and got["vibra_c_total{}"] == 5


# -- the embedding -------------------------------------------------------------------------------

def test_embedding_definition_versions_and_vectors():
    bands = ((0.0, 500.0), (500.0, 1000.0))
    d1, d2 = embedding.definition(bands), embedding.definition(((0.0, 400.0), (400.0, 1000.0)))
    assert embedding.version_of(d1) != embedding.version_of(d2)  # a definition change is a new version
    assert embedding.version_of(d1) == embedding.version_of(embedding.definition(bands))
    m = embedding.manifest(d1)
    assert m["dimension"] == len(m["indicators"]) == len(m["normalisation"]["center"]) == 16 + 2
    cols = {name: np.array([2.0, np.nan]) for name in m["indicators"] if not name.startswith("band_")}
    cols.update(rms=np.array([0.5, 0.5]), recording_evidence_outer_race=np.array([10.0, np.nan]),
                recording_evidence_inner_race=np.array([4.0, np.nan]), recording_evidence_ball=np.array([100.0, np.nan]),
                band_0_500=np.array([3.0, 1.0]), band_500_1000=np.array([1.0, 0.0]))
    vec = embedding.vectors(cols, ["band_0_500", "band_500_1000"], 1000.0)
    centre = np.log10(1 / embedding.EVIDENCE_FLOOR)
    # the family profile: log10(e / strongest), clipped at log10(1 / cap): which family, not how big
    for fam, want in (("ball", 0.0), ("outer_race", -1.0), ("inner_race", np.log10(4 / 100))):
        i = m["names"].index(f"recording_evidence_profile_{fam}")
        assert vec[0, i] == pytest.approx((max(want, -np.log10(embedding.EVIDENCE_CAP)) - centre) / 0.15, rel=1e-5)
        assert vec[1, i] == 0.0  # missing physics sits at the centre
    j = m["names"].index("band_share_0_500")
    assert vec[0, j] == pytest.approx((0.75 - 0.2) / 1.2, rel=1e-6) and vec[1, j] == pytest.approx((1.0 - 0.2) / 1.2)
    assert vec.dtype == np.float32


def test_evidence_gate_reads_the_floor_back_from_the_profile():
    from vibra.diagnosis.bearing import FLOOR

    assert embedding.EVIDENCE_FLOOR == FLOOR  # the embedding's floor is the verdict's
    bands = ["band_0_500"]
    m = embedding.manifest(embedding.definition(((0.0, 500.0),)))
    strongest = np.array([FLOOR, FLOOR * 0.99, 30.0, 1.0, np.nan])  # the inner race: the strongest family
    cols = {name: np.ones(5) for name in m["indicators"]}
    cols.update(recording_evidence_outer_race=np.array([1.0, 1.2, 2.0, 1.0, np.nan]),
                recording_evidence_inner_race=strongest, recording_evidence_ball=np.array([1.5, 1.0, 1.0, 0.5, np.nan]))
    got = embedding.has_evidence(embedding.vectors(cols, bands, 1000.0))
    # reference: some family reaches the floor (NaN: no physics, no evidence)
    want = np.nan_to_num(np.fmax.reduce([cols[f"recording_evidence_{f}"] for f in ("outer_race", "inner_race", "ball")]))
    np.testing.assert_array_equal(got, want >= FLOOR)
    vec = embedding.vectors(cols, bands, 1000.0)[:, list(embedding.EVIDENCE_DIMENSIONS)]
    assert (vec[[1, 3, 4]] == 0.0).all()  # below the floor: one point, the centre (noise is not a signature)
    assert embedding.has_evidence(np.empty((0, 5), dtype=np.float32)).shape == (0,)


def test_knn_does_not_learn_absence_as_a_class(tmp_path):
    """A bearing class's labelled windows without evidence are not learned; a window without evidence is never
    given a bearing class (no_fault_evidence), while a healthy class is learned and answered as before."""
    rng = np.random.default_rng(5)
    blob = lambda centre, n=30: rng.normal(scale=0.05, size=(n, 2)) + np.array(centre)  # noqa: E731
    x = np.vstack([blob([0, 0]), blob([3, 0]), blob([0.2, 0.1])])  # healthy, outer race (lines), "ball" (no lines)
    y = np.array(["normal"] * 30 + ["bearing_outer_race"] * 30 + ["bearing_ball"] * 30)
    ev = np.r_[np.zeros(30, bool), np.ones(30, bool), np.zeros(30, bool)]
    model = knn.fit(x, y, k=3, radius_quantile=0.9, radius_factor=2.0, evidence=ev)
    assert model.unlearned == {"bearing_ball": 30} and model.classes == ["bearing_outer_race", "normal"]
    q = np.array([[0.02, 0.01], [3.0, 0.0], [3.0, 0.0], [0.0, 0.0], [9.0, 9.0], [9.0, 9.0]])
    q_ev = np.array([False, True, False, False, True, False])
    defect, conf, _ = knn.predict(model, q, evidence=q_ev)
    assert defect.tolist() == ["normal", "bearing_outer_race", knn.NO_EVIDENCE, "normal", knn.UNKNOWN,
                               knn.NO_EVIDENCE]
    assert conf[2] == 0.0 and conf[5] == 0.0
    # without the gate, absence is learned as "ball": the old behaviour this replaces
    old = knn.fit(x, y, k=3, radius_quantile=0.9, radius_factor=2.0)
    assert knn.predict(old, np.array([[0.2, 0.1]]))[0].tolist() == ["bearing_ball"]
    assert [knn.bearing_family(n) for n in ("bearing_ball", "ball", "outer_race_6205", "football", "imbalance")] == [
        "ball", "ball", "outer_race", None, None]
    knn.save(model, tmp_path / "m.npz")
    assert knn.load(tmp_path / "m.npz").unlearned == {"bearing_ball": 30}
    with pytest.raises(ValueError, match="not learned"):
        knn.fit(x[60:], y[60:], k=3, radius_quantile=0.9, radius_factor=2.0, evidence=ev[60:])


def test_named_families_is_the_verdict_read_back_from_the_profile():
    """The family the embedding says a recording names is what vibra.diagnosis.bearing.verdicts names."""
    from vibra.diagnosis.bearing import FAMILIES, verdicts

    rng = np.random.default_rng(11)
    ev = np.exp(rng.uniform(np.log(0.3), np.log(40.0), size=(400, 3)))
    ev[:40, 1] = ev[:40, 0] * 1.5  # exactly at the ratio: named
    ev[40:60] = [[3.0, 2.0, 1.0]]  # at the ratio, in float32 rows
    ev[60:80] = [[3.0, 2.01, 1.0]]  # just inside it: ambiguous
    ev[80:90] = [[3.0, 3.0 / 1.4998, 1.0]]  # inside it by 1e-4 of the ratio: ambiguous too
    m = embedding.manifest(embedding.definition(((0.0, 500.0),)))
    cols = {name: np.ones(len(ev)) for name in m["indicators"]}
    cols.update({f"recording_evidence_{f}": ev[:, i] for i, f in enumerate(FAMILIES)})
    got = embedding.named_families(embedding.vectors(cols, ["band_0_500"], 1000.0))
    want = verdicts(ev)
    np.testing.assert_array_equal(got, np.where(np.isin(want, FAMILIES), want, ""))
    assert {"outer_race", "inner_race", "ball", ""} <= set(got.tolist())  # every case occurs
    assert embedding.named_families(np.empty((0, 17), dtype=np.float32)).shape == (0,)


def test_a_family_the_recording_names_vouches_for_its_class_beyond_the_radius():
    """A window beyond its class's radius is that class when its recording's evidence names the class's family
    (the same fault at another size); a vote for a class of another family, or no named family, stays unknown."""
    rng = np.random.default_rng(7)
    blob = lambda centre, n=30: rng.normal(scale=0.05, size=(n, 2)) + np.array(centre)  # noqa: E731
    x = np.vstack([blob([0, 0]), blob([3, 0]), blob([0, 3])])
    y = np.array(["bearing_outer_race"] * 30 + ["bearing_inner_race"] * 30 + ["normal"] * 30)
    model = knn.fit(x, y, k=3, radius_quantile=0.9, radius_factor=2.0, evidence=np.ones(90, bool), calibrate=False)
    q = np.array([[0.9, -0.4]] * 4 + [[0.3, 2.2]] * 2 + [[0.0, 0.0]])  # far from outer race; far from normal; at home
    named = np.array(["outer_race", "inner_race", "", None, "outer_race", "", "inner_race"], dtype=object)
    defect, conf, dist = knn.predict(model, q, evidence=np.ones(7, bool), named=named)
    assert (dist[:6] > max(model.radii.values())).all()  # every query but the last is beyond its class's radius
    assert defect.tolist() == ["bearing_outer_race", knn.UNKNOWN, knn.UNKNOWN, knn.UNKNOWN, knn.UNKNOWN,
                               knn.UNKNOWN, "bearing_outer_race"]  # within the radius the vote stands as before
    assert conf[0] == 1.0 and conf[1] == 0.0
    assert knn.predict(model, q[:1], evidence=np.ones(1, bool))[0].tolist() == [knn.UNKNOWN]  # nothing named
    # the vouch reaches as far as the nearest other class's centroid (3 here), not further
    assert model.reach["bearing_outer_race"] == pytest.approx(3.0, abs=0.05) and "normal" not in model.reach
    far = knn.predict(model, np.array([[-2.5, -1.0], [-4.0, -4.0]]), evidence=np.ones(2, bool),
                      named=np.array(["outer_race", "outer_race"], dtype=object))
    assert far[0].tolist() == ["bearing_outer_race", knn.UNKNOWN] and far[2][1] > 3.0
    alone = knn.fit(x[:30], y[:30], k=3, radius_quantile=0.9, radius_factor=2.0, calibrate=False)
    assert knn.predict(alone, q[:1], named=named[:1])[0].tolist() == [knn.UNKNOWN]  # one class: its radius only
    older = knn.KnnModel(x=model.x, y=model.y, k=model.k, radius=model.radius, radii=model.radii)  # saved before
    assert knn.predict(older, q[:1], named=named[:1])[0].tolist() == [knn.UNKNOWN]
    with pytest.raises(ValueError, match="one family"):
        knn.predict(model, q, named=named[:1])
    with pytest.raises(ValueError, match="one family"):
        knn.predict(model, q[:1], named="outer_race")


# -- the pipeline on a seeded synthetic plant -------------------------------------------------------

@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    root = tmp_path_factory.mktemp("clusters")
    ws, _ = init_workspace(root / "ws")
    synth.run(root / "export", n_equipment=6, days=4, seed=3, start=START, sensor_faults=False, workspace=ws)
    # the template has a (commented) [cluster] section: set the key in it
    ws.config_path.write_text(ws.config_path.read_text().replace("[cluster]\n", "[cluster]\numap_components = 0\n", 1))
    settings = load_settings(ws.config_path, {})
    ingest.run(ws, settings, root / "export")
    truth = pl.read_csv(root / "export" / "truth.csv")
    files = status.recordings(ws).select("recording_id", "source_path").with_columns(
        file=pl.col("source_path").str.extract(r"/([^/]+/[^/]+)$"))
    return ws, settings, files.join(truth, on="file")


def test_features_carry_the_embedding_version_and_its_manifest(plant):
    ws, settings, _ = plant
    feats = pl.read_parquet(ws.lake / "features" / "*" / "*" / "*.parquet", hive_partitioning=False)
    version = embedding.version_of(embedding.definition(settings.features.bands_hz))
    assert set(feats["embedding_version"]) == {version}
    manifest = json.loads((ws.artifacts / "models" / "embedding" / version / "manifest.json").read_text())
    assert manifest["dimension"] == feats["embedding"].list.len().unique().item()
    assert manifest["definition_sha256"] == embedding.definition_hash(manifest["definition"])
    assert json.loads((ws.artifacts / "models" / "embedding" / "latest.json").read_text())["version"] == version


def _truth(df: pl.DataFrame) -> pl.DataFrame:
    """True class per window: the fault once it is clear (severity > 0.3), normal before onset."""
    return df.with_columns(truth=pl.when(pl.col("severity") == 0).then(pl.lit("normal"))
                           .when(pl.col("severity") > 0.3).then(pl.col("fault_type")).otherwise(None)
                           ).filter(pl.col("truth").is_not_null())


def test_cluster_label_and_knn_against_synth_truth(plant, tmp_path):
    ws, settings, rec = plant
    result = cluster.run(ws, settings)
    assert result.n_clusters >= 3 and result.windows == result.fitted_on
    manifest = cluster.latest_manifest(ws)
    assert manifest["version"] == result.version and manifest["n_clusters"] == result.n_clusters
    assert set(manifest["sizes"]) == set(manifest["centroids"]) and len(manifest["projection"]["x"]) > 0
    assert manifest["drift"]["previous_version"] is None
    clusters = cluster.read_clusters(ws)
    assert clusters.height == result.windows and clusters["clustering_version"].unique().to_list() == [result.version]
    # one recording per class labelled (the clearest one), the ball fault never
    picks = {}
    for fault in CLASSES[:-1]:
        sub = rec.filter(pl.col("fault_type") == fault).sort("severity")
        picks[fault] = sub["recording_id"][len(sub) // 2 if fault == "normal" else -1]
    for fault, rid in picks.items():
        out = defects.label_recording(ws, settings, rid[:10], fault, who="test")
    assert out["retrain"]["retrained"] and "classes changed" in out["retrain"]["reason"]
    knn_manifest = defects.latest_knn(ws)
    assert knn_manifest["classes"] == sorted(CLASSES[:-1]) and knn_manifest["radius"] > 0
    assert 0 < knn_manifest["coverage_at_train"] < 0.02  # measured 0.0087
    assigned = defects.read_defects(ws)
    df = _truth(clusters.join(assigned.select("recording_id", "channel", "window_index", "defect"),
                              on=["recording_id", "channel", "window_index"]).join(rec, on="recording_id"))
    score = evaluate(df["truth"].to_numpy(), df["cluster_id"].to_numpy(), df["defect"].to_numpy(),
                     df["recording_id"].is_in(list(picks.values())).to_numpy())
    # measured (seed 3, 4 days, embedding rev 2): ARI 0.50; outer 0.98, inner 0.97, imbalance 0.92,
    # looseness 0.84 correct; the never-labelled ball fault abstained on 100 %; healthy windows of the
    # other machines are only 0.20 correct (0.70 called looseness): rev 2 weighs the shape dimensions a
    # third of rev 1 so bearing faults transfer across load and size (CWRU, tests/test_diagnosis.py),
    # and normal vs looseness on other machines rests on those shape dimensions (rev 1: 0.63)
    assert score["ari"] > 0.47
    for fault, floor in (("bearing_outer_race", 0.96), ("bearing_inner_race", 0.95), ("imbalance", 0.9),
                         ("looseness", 0.8)):
        assert score["per_class"][fault]["accuracy"] > floor, (fault, score)
    assert score["per_class"]["bearing_ball"]["abstention"] > 0.98
    assert score["accuracy_seen"] > 0.42, score  # measured 0.446 (rev 1: 0.695)

    # the cluster view names the labels and the physics evidence
    table = defects.cluster_table(ws, settings)
    by_label = {c["label"] for c in table["clusters"]}
    assert {"bearing_outer_race", "bearing_inner_race"} <= by_label  # the bearing faults are clusters of their own
    fan = max(table["clusters"], key=lambda c: c["members"].get("fan-03", 0))
    assert "imbalance" in fan["labels_in_cluster"]  # a cluster holding several labels shows them all
    outer = [c for c in table["clusters"] if c["label"] == "bearing_outer_race"]
    assert any(e["indicator"] == "env_bpfo" for c in outer for e in c["evidence"])

    # labelling the same recording again moves no coverage: no retrain; labelling a cluster does
    again = defects.label_recording(ws, settings, picks["imbalance"], "imbalance")
    assert not again["retrain"]["retrained"]
    noise_free = next(c for c in table["clusters"] if c["label"] is None or c["label_source"].startswith("knn"))
    defect = noise_free["label"] if noise_free["label"] not in (None, "unknown") else "looseness"
    out = defects.label_cluster(ws, settings, noise_free["cluster_id"], defect, who="test")
    assert out["n_windows"] == noise_free["size"] and out["retrain"]["retrained"]

    # re-clustering: drift against the previous clustering; cluster labels survive it (stored per window)
    labelled_before = defects.labelled_windows(ws, clusters).height
    second = cluster.run(ws, settings, min_cluster_size=40)
    assert second.drift["previous_version"] == result.version
    assert second.drift["n_births"] + len(second.drift["matched"]) == second.n_clusters
    assert defects.labelled_windows(ws, cluster.read_clusters(ws)).height == labelled_before
    assert len(list((ws.lake / "clusters").glob("*/*/*.parquet"))) == len(
        list((ws.lake / "clusters").glob(f"*/*/part-{second.version}.parquet")))  # the old files are gone
    prom = ws.metrics_path.read_text()
    assert "vibra_clustering_noise_ratio" in prom and "vibra_clustering_births" in prom


def test_cli_label_import_defects_and_assignments(plant, tmp_path):
    ws, _, rec = plant
    home = ["--home", str(ws.root)]
    if cluster.latest_manifest(ws) is None:
        assert run_vibra("cluster", "--umap-components", "0", *home).returncode == 0
    listed = json.loads(run_vibra("defects", "list", "--json", *home, check=True).stdout)["defects"]
    assert {"normal", "bearing_cage", "gear", "electrical", "sensor_fault", "misalignment"} <= {d["name"] for d in listed}
    assert run_vibra("defects", "add", "coupling_wear", "--description", "worn coupling", *home).returncode == 0
    bad = run_vibra("defects", "add", "Bad Name", *home)
    assert bad.returncode == 1 and "lower-case" in bad.stderr and "Traceback" not in bad.stderr
    pump = rec.filter(pl.col("equipment_id") == "pump-02").sort("recording_id")
    csv = tmp_path / "labels.csv"
    csv.write_text("equipment_id,recording_id,start,end,defect,note\n"
                   f",{pump['recording_id'][0]},,,bearing_outer_race,teardown\n"
                   "pump-02,,2026-01-01T00:00:00Z,2026-01-01T06:00:00Z,normal,commissioning\n")
    out = json.loads(run_vibra("label", "import", str(csv), "--by", "alice", "--json", *home, check=True).stdout)
    assert out["imported"] == 2
    labels = json.loads(run_vibra("label", "list", "--json", *home, check=True).stdout)["labels"]
    mine = [lab for lab in labels if lab.get("created_by") == "alice"]
    assert {lab["kind"] for lab in mine} == {"recording", "range"} and all(lab["source"] == "import:labels.csv" for lab in mine)
    csv.write_text("equipment_id,recording_id,start,end,defect\npump-02,,2026-01-02,2026-01-01,normal\n")
    bad = run_vibra("label", "import", str(csv), *home)
    assert bad.returncode == 1 and "line 2" in bad.stderr and "not after start" in bad.stderr
    bad = run_vibra("label", "cluster", *home, "--", "-1", "normal")
    assert bad.returncode == 1 and "noise" in bad.stderr
    rows = json.loads(run_vibra("defects", "assignments", "--equipment", "pump-02", "--json", *home, check=True).stdout)["assignments"]
    assert rows and all(r["equipment_id"] == "pump-02" for r in rows)
    assert sum(sum(r["windows"].values()) for r in rows) == pl.read_parquet(
        ws.lake / "features" / "*" / "equipment=pump-02" / "*.parquet").height
    shown = json.loads(run_vibra("clusters", "--json", *home, check=True).stdout)
    assert shown["clusters"] and {"size", "members", "first", "last", "label", "label_source", "evidence",
                                  "signature"} <= set(shown["clusters"][0])
    assert "drift" in shown and "psi" in shown


def test_an_older_embedding_is_never_mixed_in(plant, tmp_path):
    ws, settings, _ = plant
    copy = tmp_path / "ws"
    shutil.copytree(ws.root, copy)
    from vibra.workspace import Workspace

    other = Workspace(copy)
    part = sorted((other.lake / "features").glob("*/*/*.parquet"))[0]
    df = pl.read_parquet(part)
    df = df.with_columns(embedding_version=pl.lit("emb-000000000000"),
                         embedding=pl.col("embedding").list.head(5))  # an older, shorter definition
    # committed as the table's own file (an older vibra's), not written over the one the log knows
    older = part.with_name("part-older-embedding.parquet")
    df.write_parquet(older)
    from vibra.storage import lake

    lake.forget(other.root)
    lake.commit(other.table("features"), add=[older], remove=[part])
    result = cluster.run(other, settings)
    assert result.other_embedding_versions == df.height
    live = [str(f) for f in lake.partition_files(other.table("features"))]
    assert result.windows == pl.read_parquet(live, hive_partitioning=False).height - df.height


@pytest.mark.slow
def test_cwru_clusters_and_knn_on_unseen_recordings(tmp_path, real_data):
    """The issue's check on real data, with UMAP: ingest the CWRU drive-end files, cluster, label one
    recording per class (ball never), score the kNN on the other recordings."""
    ws, _ = init_workspace(tmp_path / "ws")
    ws.config_path.write_text(CWRU_TOML)
    src = stage(sorted((real_data / "cwru_12k_de").glob("*.mat")), tmp_path / "src" / "cwru-de", hour_apart=True)
    home = ["--home", str(ws.root)]
    assert run_vibra("ingest", str(src), *home).returncode == 0
    result = json.loads(run_vibra("cluster", "--json", *home, check=True).stdout)  # UMAP, the default
    # measured at seed 0: 17 clusters, noise 0.027; over [cluster] seed 0-3: 15-17 clusters, noise 0.013-0.033
    # (float64 spectra, before 2026-12-02: noise 0.008-0.013 over the same seeds)
    assert result["n_clusters"] >= 4 and result["noise_ratio"] < 0.035
    for name, fault in (("Normal_0.mat", "normal"), ("IR007_0.mat", "bearing_inner_race"),
                        ("OR007@6_0.mat", "bearing_outer_race")):
        assert run_vibra("label", "recording", name, fault, *home).returncode == 0
    score = cwru_score(ws)
    de = score["DE"]
    # measured (embedding rev 2, clusters over UMAP, float32 spectra): drive-end ARI 0.823 at seed 0, and
    # 0.794 / 0.871 / 0.824 at seeds 1-3 (the same four values in another order with float64 spectra: the
    # earlier 0.871 was the kindest of four seeds, not the level; no seed is chosen)
    assert de["ari"] > 0.80
    # unseen recordings of labelled classes (labelled at 0.007 in / 0 hp, Normal_0 the third class): inner race
    # 1.00, outer race 1.00 correct since the recording's named family vouches for its class beyond the radius
    # (before: 0.945 and 0.351 — the other outer-race recordings fell outside the radius and were abstained on,
    # never called another fault); 1.00 correct where it answers
    assert de["per_class"]["IR"]["accuracy"] > 0.97
    assert de["per_class"]["OR"]["accuracy"] > 0.97
    assert de["accuracy_answered"] > 0.98
    assert de["per_class"]["B"]["abstention"] > 0.45


TRUE_NAME = {"Normal": "normal", "IR": "bearing_inner_race", "OR": "bearing_outer_race", "B": "bearing_ball"}


def cwru_score(ws) -> dict:
    """ARI and kNN scores per channel (and all) against the file names' fault type."""
    files = status.recordings(ws).select("recording_id", "source_path").with_columns(
        file=pl.col("source_path").str.extract(r"([^/]+)\.mat$"))
    labelled = {lab["recording_id"] for lab in defects.list_labels(ws) if lab.get("recording_id")}
    df = (cluster.read_clusters(ws).join(defects.read_defects(ws).select("recording_id", "channel", "window_index",
                                                                         "defect"),
                                         on=["recording_id", "channel", "window_index"])
          .join(files, on="recording_id").with_columns(truth=pl.col("file").str.extract(r"^([A-Za-z]+)")))
    df = df.with_columns(defect=pl.col("defect").replace({v: k for k, v in TRUE_NAME.items()}))
    out = {}
    for name, part in [("all", df), *[(c, df.filter(pl.col("channel") == c)) for c in ("DE", "FE", "BA")]]:
        out[name] = evaluate(part["truth"].to_numpy(), part["cluster_id"].to_numpy(), part["defect"].to_numpy(),
                             part["recording_id"].is_in(list(labelled)).to_numpy())
    return out


def test_knn_centroid_share_is_calibrated_by_leaving_each_class_out(tmp_path):
    rng = np.random.default_rng(5)
    centres = np.array([[0, 0], [4, 0], [0, 4]], dtype=float)
    x = np.vstack([c + rng.normal(0, 0.1, (30, 2)) for c in centres])
    y = np.repeat(["a", "b", "c"], 30)
    model = knn.fit(x, y, k=3, radius_quantile=0.9, radius_factor=2.0)
    # far-apart tight classes: even half-way to the nearest centroid keeps a left-out class out
    assert model.centroid_share == 0.5
    assert model.radii["a"] == pytest.approx(0.5 * 4.0, rel=0.05)
    # a point 1.5 from a (well beyond its own spread, short of half-way to b) is now answered
    assert knn.predict(model, np.array([[1.5, 0.0]]))[0].tolist() == ["a"]
    plain = knn.fit(x, y, k=3, radius_quantile=0.9, radius_factor=2.0, calibrate=False)
    assert plain.centroid_share == 0.0 and knn.predict(plain, np.array([[1.5, 0.0]]))[0].tolist() == ["unknown"]
    # a fourth class between a and b: left out, it would sit inside a half-way radius, so the share drops
    x4 = np.vstack([x, np.array([2.0, 0.0]) + rng.normal(0, 0.1, (30, 2))])
    y4 = np.concatenate([y, np.repeat("d", 30)])
    held = knn.fit(x4[y4 != "d"], y4[y4 != "d"], k=3, radius_quantile=0.9, radius_factor=2.0)
    assert knn.calibrate_share(x4, y4, k=3, radius_quantile=0.9, radius_factor=2.0) < held.centroid_share
    # two classes: nothing can be left out, so no share
    assert knn.fit(x[:60], y[:60], k=3, radius_quantile=0.9, radius_factor=2.0).centroid_share == 0.0
    knn.save(model, tmp_path / "m.npz")
    assert knn.load(tmp_path / "m.npz").centroid_share == 0.5
