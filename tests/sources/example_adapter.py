"""New adapters written from sources/base.py's docstring alone: its own example, and databricks-dolly-15k.

Dolly's records: {"instruction", "context", "response", "category"}; `context` is "" when unused. Used by
the kit's tests to show what a new adapter takes (they are not registered with the package). Adapters
live at module level: a class defined inside a function cannot be pickled for a worker.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from flan_mini.sources.base import Adapter, SourceConfig


class QAConfig(SourceConfig):  # as written in sources/base.py's docstring
    adapter: Literal["qa"] = Field(description="Question / answer pairs.")


class QAAdapter(Adapter):
    name, config_model, template_family = "qa", QAConfig, "qa"
    fields: ClassVar[dict[str, pa.DataType]] = {"question": pa.string(), "answer": pa.string()}
    required = ("question", "answer")


class DollyConfig(SourceConfig):
    adapter: Literal["dolly"] = Field(description="databricks-dolly-15k JSON Lines.")
    categories: list[str] | None = Field(None, description="Keep only these categories (e.g. open_qa).")


class DollyAdapter(Adapter):
    name = "dolly"
    config_model = DollyConfig
    extensions = (".jsonl",)
    fields: ClassVar[dict[str, pa.DataType]] = {
        "instruction": pa.string(), "context": pa.string(), "response": pa.string(), "category": pa.string(),
    }
    required = ("instruction", "response")
    template_family = "alpaca"

    def scan_fields(self) -> tuple[str, ...]:
        return ("category",) if self.config.categories else ()

    def row_filter(self, batch: pa.RecordBatch) -> pa.Array | None:
        if not self.config.categories:
            return None
        return pc.fill_null(pc.is_in(batch.column("category"), pa.array(self.config.categories)), False)
