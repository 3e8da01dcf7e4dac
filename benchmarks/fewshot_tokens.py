"""Few-shot budgets in tokens: rendering the scale benchmark's code sources with every text tokenised (before)
against the byte-bound shortcut (token_bound.py: only texts that might not fit are tokenised), same output.

Uses the inputs and the recipe benchmarks/build_scale.py generated (run it once first; nothing is generated
here): the paper recipe's code sources (few-shot, 1,200-token budgets in tokens of the offline BPE tokenizer),
selected as the build selects them, then rendered twice per source. Prints per source the render time, the texts
and bytes tokenised each way, and whether the rendered rows are byte-identical.

    python benchmarks/fewshot_tokens.py                 # the 0.1M-row recipe
    python benchmarks/fewshot_tokens.py --recipe benchmarks/.cache/scale/recipe-1.0000-2.yaml
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = ROOT / "benchmarks" / ".cache" / "scale" / "recipe-0.0746-2.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE, help="a recipe written by build_scale.py")
    args = parser.parse_args()
    if not args.recipe.exists():
        sys.exit(f"{args.recipe} does not exist: run `python benchmarks/build_scale.py --sizes 0.1` once first")

    import pyarrow as pa

    from flan_mini.compose import render_rows
    from flan_mini.lengths import TokenMeasure
    from flan_mini.plan import make_plan
    from flan_mini.recipe import load_recipe
    from flan_mini.sample import KEY, select_source
    from flan_mini.token_bound import utf8_lengths

    class Counting(TokenMeasure):
        texts = 0
        bytes = 0

        def lengths(self, texts):
            self.texts += len(texts)
            self.bytes += sum(utf8_lengths(texts))
            return super().lengths(texts)

    loaded = load_recipe(args.recipe)
    plan = make_plan(loaded, check_output=False)
    dedup, decontam = loaded.recipe.dedup, loaded.recipe.decontaminate  # the candidates a build renders, as pipeline.py
    oversample = ((dedup.oversample if dedup is not None and dedup.enabled else 0.0)
                  + (decontam.extra_share() if decontam is not None and decontam.enabled else 0.0))
    print(f"recipe {args.recipe.name}; few-shot sources with a budget in tokens")
    print(f"{'source':<14} {'rows':>8} {'way':<9} {'render s':>9} {'texts tokenised':>16} {'MB tokenised':>13}  output")
    for source in plan.sources:
        spec = source.render
        if spec is None or not isinstance(spec.measure, TokenMeasure) or not spec.fewshot or not spec.fewshot.max_length:
            continue
        selection = select_source(source.adapter, source.files, seed=plan.seed, extra=math.ceil(source.config.n * oversample))
        table = selection.table
        keys = table.column(KEY).to_numpy()
        results = {}
        for way, slack in (("all", None), ("shortcut", spec.measure.slack)):
            measure = Counting(spec.measure.tokenizer, spec.measure.name, spec.measure.source)
            measure._slack = slack
            spec.measure = measure
            start = time.perf_counter()
            rendered = render_rows(table, spec, keys, plan.seed, source.config.name)
            seconds = time.perf_counter() - start
            results[way] = pa.table({"c": rendered.conversations, "t": rendered.template_id, "n": rendered.num_shots})
            same = "" if way == "all" else ("identical" if results[way].equals(results["all"]) else "DIFFERENT")
            print(f"{source.config.name:<14} {table.num_rows:>8,} {way:<9} {seconds:>9.2f} {measure.texts:>16,} "
                  f"{measure.bytes / 1e6:>13.1f}  {same}")


if __name__ == "__main__":
    main()
