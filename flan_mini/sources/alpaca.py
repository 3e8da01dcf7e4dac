"""The Alpaca family (Alpaca, GPT4-Alpaca, Code-Alpaca): `instruction`, optional `input`, `output`.

Published as JSON arrays (the original GitHub files: `alpaca_data.json`, `alpaca_gpt4_data.json`,
`code_alpaca_20k.json`) and as Hub Parquet with an extra `text` column (the Alpaca prompt already
applied), which is ignored: our templates build the turns. `input` is "" when unused.
The records have no id: a row's `index` (its position in its file, from 0) is its source id.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from .base import Adapter, SourceConfig
from .files import InputFile
from .formats import ORDINAL


class AlpacaConfig(SourceConfig):
    adapter: Literal["alpaca"] = Field(description="Alpaca-format instruction data (instruction, input, output).")


class AlpacaAdapter(Adapter):
    name = "alpaca"
    config_model = AlpacaConfig
    extensions = (".json", ".jsonl", ".jsonl.gz", ".parquet")
    fields: ClassVar[dict[str, pa.DataType]] = {
        "instruction": pa.string(), "input": pa.string(), "output": pa.string(), "index": pa.int64(),
    }
    required = ("instruction", "output")
    key_fields = ("instruction", "input", "output")  # the content; not the position
    source_id_field = "index"
    template_family = "alpaca"

    def column_map(self, file: InputFile, fmt: str) -> dict[str, str | None]:
        return {"instruction": "instruction", "input": "input", "output": "output", "index": None}

    def normalise(self, batch: pa.RecordBatch, file: InputFile) -> pa.RecordBatch:
        # An absent or null `input` means the same as the published "": no input.
        index = batch.schema.get_field_index("input")
        if index >= 0:
            batch = batch.set_column(index, "input", pc.fill_null(batch.column(index), ""))
        position = batch.schema.get_field_index("index")
        if position >= 0:  # the record's position in its file (the reader's ordinal), its only identity there
            batch = batch.set_column(position, "index", batch.column(ORDINAL))
        return batch
