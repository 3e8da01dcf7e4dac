"""The build's stages: one contract (contract.py) and one module per stage, in the order `build()` runs them.

    select -> render -> dedup -> decontaminate -> pick -> shuffle -> write -> reports -> manifest -> card

select.py, render.py: choose and render each source's candidates; removals.py: dedup and decontamination,
each returning the ids it removes and why; pick.py: the one rule for the exact rows written; write.py: the
shuffle, the shards and the files beside them. pipeline.py lists the stages and runs them with `run_stages`.
"""
