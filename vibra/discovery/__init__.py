"""Fault-signature discovery: window embeddings, UMAP + HDBSCAN clusters, the defect kNN,
their evaluation, and whether a training set is ready (readiness verdicts)."""
