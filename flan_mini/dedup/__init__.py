"""Exact and near-duplicate removal with MinHash LSH (datasketch's definitions, computed columnar).

Modules, in pipeline order: config (the recipe's `dedup:` section), texts (which text is compared),
flan_mini.textnorm (normalisation), shingle (tokens to shingle hashes and exact keys), minhash (signatures),
lsh (bands and candidate pairs), sketch (batches on N processes, two passes), verify (exact Jaccard of
candidate pairs on their shingle sets), clusters (union-find and keepers),
report (clusters table and stats), stage (`dedup_table`), folder (`dedup_folder`), command (`flan-mini dedup`).

The package itself imports nothing (so `--help` stays cheap): import from its modules, e.g.
`from flan_mini.dedup.command import dedup_command`.
"""
