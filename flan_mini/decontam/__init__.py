"""Benchmark decontamination: rows of the mixture that contain evaluation items (word n-gram overlap) are found,
reported and (by default) removed.

Modules, in pipeline order: config (the recipe's `decontaminate:` section), readers (each benchmark's published
format, and the built-ins' defaults), benchmarks (files to items and their text segments), ngrams (the hashed
n-gram index and the vectorised scan), stage (batches through the index, and the build's stage), report
(manifest, card, terminal, matches file), folder (`decontaminate_folder`), command (`flan-mini decontaminate`).

The package itself imports nothing (so `--help` stays cheap): import from its modules, e.g.
`from flan_mini.decontam.command import decontaminate_command`.
"""
