"""What every source adapter shares: the recipe options common to all sources, and the adapter contract.

An adapter turns one source family's published files into record batches of its declared fields
(normalising layout variants), says which rows the recipe's filters keep and how rows are grouped,
and how a row is labelled in the output. Everything else (validation, ranking, selection, rendering,
writing) is common code that works on those batches. tests/sources/kit.py runs every registered
adapter through this contract; a new adapter is a subclass, a line in registry.py, and a fixture there.

The contract
------------
Required class attributes: `name` (the recipe's `adapter:` value, also its registry key), `fields`
(field -> Arrow type: what every batch carries), `required` (fields that must be present and non-blank,
else the row is rejected `missing:<f>` / `empty:<f>`), `template_family` (templates/<family>.yaml; for
`ReadyConversations` sources it is not read). Optional ones (defaults below): `config_model`,
`extensions`, `kind`, `key_fields`, `source_id_field`, `license`, `task_field`, `exemplar_match`,
`item_field`, `answer_fields`, `piece_bits`.

Reading. `read(file, wanted=None, fields=None, stats=None)` is final (a subclass that defines `read`
fails at import): it calls the overridable `read_records` and passes every batch through `normalise`,
so an adapter cannot skip its own normalisation. Batches hold `fields` (default: all declared), in
declared order, then `_ordinal` (int64) and `_reject` (string, null for a usable row). Rules:
- `_ordinal` identifies a row within its file, is strictly increasing across the batches of a read, and
  is the same in every read of the same file (record position; `record << piece_bits | piece` when one
  record gives several rows, expand.py);
- with `wanted` (sorted ordinals from an earlier read), exactly those rows, in that order, and no other;
- a malformed row is one row with `_reject` set (reasons in rejects.py), never an exception and never
  dropped: the caller counts read = rejected + filtered out + usable;
- a read is a pure function of (adapter config, adapter facts, file, fields, wanted): nothing learnt
  in one read changes another. Per-file counters (problems without solutions, conversations split)
  are added to `stats` (a Counter the caller owns) on full reads (`wanted` None) only.
Hooks to override for reading: `column_map` (field -> column of this file; may read its schema or
first record, and raises SourceError for a file that is not this format), `read_records` (default: the
formats.py reader for the file's format with `column_map`), `normalise` (fill or clean fields of a
batch, which may hold only some fields), `skip_file`, `scan_fields`.

State. Adapters are immutable values that pickle (a Ray worker runs them): `config`, `base_dir` and
`facts`, a plain dict of what was learnt about the files before the scan. `prepare(files)` returns
an adapter with the facts a cheap look at the files gives (FLAN: whether the export is mixed);
adapters with `survey = True` also get `survey_file(file)` run once per file (a task) and
`surveyed(files, results)` on the driver (ShareGPT: which conversations repeat across files). What
the selection scan learns comes back from `scan_facts(batch)` ({key: value}, first seen wins, merged
in file order) and is handed to `group_cap` / `group_weights`. A cache, if any, lives at module level
keyed by the file's content identity, and `release(files)` frees it.

Selection policy (all optional): `row_filter`, `group_column`, `group_cap`, `group_weights`,
`needs_counts`, `tally_column`. Output: `source_column`, `output_columns`, `describe`, `tasks`.

A complete adapter for JSON Lines / JSON / Parquet records {"question", "answer"} (a longer one, with a
filter, is tests/sources/example_adapter.py), registered with `"qa": "mypackage.qa:QAAdapter"` in
registry.py and given templates/qa.yaml:

    class QAConfig(SourceConfig):
        adapter: Literal["qa"] = Field(description="Question / answer pairs.")

    class QAAdapter(Adapter):
        name, config_model, template_family = "qa", QAConfig, "qa"
        fields: ClassVar[dict[str, pa.DataType]] = {"question": pa.string(), "answer": pa.string()}
        required = ("question", "answer")
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, PositiveInt, field_validator

from ..config_base import MAX_INT, PlainNumbers, StrictModel, check_number  # noqa: F401 (adapters import them from here)
from ..errors import SourceError
from . import formats
from .files import InputFile
from .kinds import OutputKind, Templated


def all_of(masks: list[pa.Array]) -> pa.Array | None:
    """The rows every mask keeps (a null counts as not kept); None when there is no mask: keep all."""
    if not masks:
        return None
    mask = masks[0]
    for other in masks[1:]:
        mask = pc.and_(mask, other)
    return pc.fill_null(mask, False)


DataFiles = str | list[str] | dict[str, str | list[str]]


class FewShotConfig(StrictModel):
    """How a templated source's rows become few-shot examples (FLAN 2022 style)."""

    share: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of rows rendered few-shot (a seeded choice per row); the rest are zero-shot."
    )
    shots: PositiveInt | list[PositiveInt] = Field(
        3, description="Exemplars per few-shot row before pruning; a list gives the choices, one picked per row (seeded)."
    )
    style: Literal["inline", "turns"] = Field(
        "inline",
        description="`inline`: exemplars inside the one human turn, laid out by a few-shot pattern (FLAN style); "
        "`turns`: each exemplar is an earlier human/gpt exchange of the conversation, rendered by the row's template.",
    )
    patterns: list[str] | None = Field(
        None, min_length=1, description="Ids of the few-shot patterns to use with style inline (default: all of the family's)."
    )
    max_length: PositiveInt | None = Field(
        None,
        description="Length budget of a whole few-shot example (every turn); exemplars are kept from the first while the "
        "total fits, and a row left with none is rendered zero-shot. Characters, or tokens of `tokenizer`. Default: no budget.",
    )
    tokenizer: str | None = Field(
        None,
        description="Count max_length in tokens of this tokenizer: a tokenizer.json file or a folder holding one "
        "(relative to the recipe), or a Hub model id (from the local cache unless --check-hub). Characters when not set "
        "or not available (said by validate and recorded in the manifest).",
    )


class SourceConfig(StrictModel):
    """Options every source has, whatever its adapter."""

    name: str = Field(
        description="Unique name of this source in the recipe; used in ids, reports and the `recipe_source` column.",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=64,
    )
    adapter: str = Field(description="Which source family this is (e.g. flan, alpaca): how its files are read.")
    path: str = Field(
        description="A local file or folder (relative to the recipe file), or a Hub dataset id `org/name`.",
        min_length=1,
    )
    data_files: DataFiles | None = Field(
        None,
        description="Glob(s) under `path` selecting the files, or a mapping split -> glob(s); as in datasets.load_dataset.",
    )
    split: str = Field("train", description="Which split to read.", min_length=1)
    revision: str | None = Field(None, description="Hub only: branch, tag or commit to read (default: main).")
    n: int = Field(description="Exact number of rows this source contributes to the output.", gt=0)
    label: str | None = Field(
        None, description="Value of the output `source` column for this source's rows (default: the source name)."
    )
    license: str | None = Field(None, description="Licence of this source's data (Hub licence id, e.g. cc-by-nc-4.0).")
    accept_shortfall: bool = Field(
        False, description="If the source has fewer usable rows than n, write what there is and report it instead of failing."
    )
    max_reject_rate: float = Field(
        0.05, ge=0.0, le=1.0, description="Fail the build if more than this share of the rows read are malformed."
    )
    templates: list[str] | None = Field(
        None, description="Ids of the templates to render this source with (default: every template of its family)."
    )
    fewshot: FewShotConfig | None = Field(
        None, description="Render a share of the rows few-shot, with exemplars from the same source and task (default: all zero-shot)."
    )


class Adapter:
    """Base class of source adapters (the contract is the module docstring). Subclasses set the class
    attributes and override the hooks they need; instances are immutable once made."""

    name: ClassVar[str]
    config_model: ClassVar[type[SourceConfig]] = SourceConfig
    extensions: ClassVar[tuple[str, ...]] = (".parquet", ".jsonl", ".jsonl.gz", ".json")
    # The normalised fields every batch carries, with their Arrow types.
    fields: ClassVar[dict[str, pa.DataType]]
    # Fields that must be present and non-blank; a row missing one is rejected with that reason.
    required: ClassVar[tuple[str, ...]]
    # What the rows become in the output (kinds.py): rendered through templates, conversations already,
    # or FLAN's own templated rows.
    kind: ClassVar[OutputKind] = Templated()
    # A field holding the record's own id in its source (ShareGPT id, CodeContests name, ...), written to
    # the output's `source_id` column as a string; None: the source has none (the column is null).
    source_id_field: ClassVar[str | None] = None
    # The fields that make up a row's identity (its key). Default: all fields.
    key_fields: ClassVar[tuple[str, ...] | None] = None
    # templates/<template_family>.yaml holds this source's templates.
    template_family: ClassVar[str]
    license: ClassVar[str | None] = None
    # Rendering. A field naming each row's task (e.g. CodeSearchNet's docstring_to_code /
    # code_to_docstring): rows get templates of their task, exemplars of their task.
    task_field: ClassVar[str | None] = None
    # Fields an exemplar must share with its query (e.g. the programming language).
    exemplar_match: ClassVar[tuple[str, ...]] = ()
    # A field identifying the underlying item: rows sharing its value (two solutions of one problem)
    # are never exemplars of each other, since one would give the other's answer away.
    item_field: ClassVar[str | None] = None
    # Task (None: every task) -> fields that hold or contain the answer; templates must not show them in the prompt.
    answer_fields: ClassVar[dict[str | None, tuple[str, ...]]] = {}
    # When one record becomes several rows (expand.py): a row's ordinal is record << piece_bits | piece (0: not so).
    piece_bits: ClassVar[int] = 0
    # True when `survey_file` must see every file before the scan (ShareGPT's repeats across files).
    survey: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "read" in cls.__dict__:  # read applies normalise; an override would silently skip it
            raise TypeError(f"{cls.__name__} overrides Adapter.read; override read_records (and normalise) instead")

    def __init__(self, config: SourceConfig, base_dir: Path | None = None, facts: dict | None = None):
        self.config = config
        self.base_dir = base_dir  # the recipe's folder: relative paths in adapter options resolve against it
        self.facts: dict = dict(facts or {})  # learnt from the files before the scan (plain, picklable data)

    def with_facts(self, **facts) -> Adapter:
        """A copy of this adapter knowing `facts` as well (adapters are not changed in place)."""
        return type(self)(self.config, self.base_dir, {**self.facts, **facts})

    def with_config(self, config: SourceConfig) -> Adapter:
        return type(self)(config, self.base_dir, self.facts)

    @property
    def identity_fields(self) -> tuple[str, ...]:
        return self.key_fields or tuple(self.fields)

    # -- reading -----------------------------------------------------------------------------------
    def column_map(self, file: InputFile, fmt: str) -> dict[str, str | None]:
        """Field -> column name in this file. Default: the field's own name."""
        return {name: name for name in self.fields}

    def scan_fields(self) -> tuple[str, ...]:
        """The fields the selection scan needs (for filters and groups). Everything else is read only
        for the rows chosen, which is what keeps the scan fast on sources of millions of rows."""
        return ()

    def skip_file(self, file: InputFile) -> bool:
        """True when the file's name alone shows the recipe's filters exclude all of its rows."""
        return False

    def read(self, file: InputFile, wanted: np.ndarray | None = None, fields: tuple[str, ...] | None = None,
             stats: Counter | None = None) -> Iterator[pa.RecordBatch]:
        """Batches of `fields` (default: all declared fields) plus `_ordinal` and `_reject` (see formats.py);
        with `wanted` (sorted ordinals), only those rows. Final: see the module docstring."""
        selected = dict(self.fields) if fields is None else {name: self.fields[name] for name in fields}
        last = -1
        for batch in self.read_records(file, wanted, selected, stats if stats is not None else Counter()):
            ordinals = batch.column(formats.ORDINAL).to_numpy()
            if len(ordinals) and (ordinals[0] <= last or (len(ordinals) > 1 and (np.diff(ordinals) <= 0).any())):
                raise SourceError(f"{file.display}: the {self.name} adapter gave rows out of order (its ordinals must "
                                  "increase strictly); this is a bug in the adapter")
            last = int(ordinals[-1]) if len(ordinals) else last
            yield self.normalise(batch, file)

    def read_records(self, file: InputFile, wanted: np.ndarray | None, fields: dict[str, pa.DataType],
                     stats: Counter) -> Iterator[pa.RecordBatch]:
        """The file's batches of `fields` (+ `_ordinal`, `_reject`), before `normalise`. Default: the
        format's reader (formats.py) with `column_map`."""
        fmt = formats.detect_format(file.path)
        yield from formats.READERS[fmt](file.path, self.column_map(file, fmt), fields, wanted)

    def normalise(self, batch: pa.RecordBatch, file: InputFile) -> pa.RecordBatch:
        """Fill or clean fields after reading (e.g. values derived from the file name). The batch may
        hold only some of the fields (a scan reads only `scan_fields`)."""
        return batch

    # -- facts about the files, learnt before the scan -------------------------------------------------
    def prepare(self, files: list[InputFile]) -> Adapter:
        """This adapter with what a cheap look at the files says (e.g. whether a FLAN export is mixed
        already); called when a plan is made and again before selecting. Default: nothing to learn."""
        return self

    def survey_file(self, file: InputFile) -> object:
        """With `survey`: what the driver needs to know of one file before the scan (runs as a task)."""
        return None

    def surveyed(self, files: list[InputFile], results: list) -> Adapter:
        """With `survey`: this adapter knowing what `survey_file` said of each file (on the driver)."""
        return self

    def release(self, files: list[InputFile]) -> None:
        """Free module-level caches of these files (called once selecting is done). Default: none."""

    # -- selecting ---------------------------------------------------------------------------------
    def row_filter(self, batch: pa.RecordBatch) -> pa.Array | None:
        """Boolean mask of the rows the recipe's filters keep (None: all)."""
        return None

    def scan_facts(self, batch: pa.RecordBatch) -> dict | None:
        """What the scan learns from a batch of usable rows that `group_cap` / `group_weights` need (FLAN:
        task -> submix); merged over batches and files in file order, the first value of a key kept."""
        return None

    def group_column(self, batch: pa.RecordBatch) -> pa.Array | None:
        """Per-row group (e.g. FLAN task) when the recipe caps rows per group; None: no groups."""
        return None

    def group_cap(self, group: str, learnt: dict) -> int | None:
        """The most rows a group may weigh in the mixture (FLAN's per-task cap); `learnt`: the scan's facts."""
        return None

    def group_weights(self, groups: list[str], rows: list[int], learnt: dict) -> tuple[list[int], list[int]] | None:
        """(integer weights, most rows) per group, when they are not min(rows, cap) (e.g. FLAN 2022's mixture)."""
        return None

    def needs_counts(self) -> bool:
        """True when group_weights needs every group's row count before the scan keeps candidates (the
        selection then counts first, so each group keeps only its quota's candidates: bounded memory)."""
        return False

    def tally_column(self, batch: pa.RecordBatch) -> pa.Array | None:
        """A per-row value whose distribution over the scanned rows is reported (e.g. FLAN's task)."""
        return None

    # -- output ------------------------------------------------------------------------------------
    def source_column(self, table: pa.Table) -> pa.Array:
        """The output `source` value of each row (default: the recipe's label, or the source name)."""
        return pa.array([self.config.label or self.config.name] * table.num_rows, pa.string())

    def output_columns(self, table: pa.Table, computed: dict[str, pa.Array]) -> dict[str, pa.Array]:
        """Output columns whose values the rows bring themselves (a chat dataset's kept columns), replacing
        the `computed` ones; default: none."""
        return {}

    def describe(self) -> dict:
        """Adapter-specific settings shown by dry runs (filters and the like)."""
        return {}

    def tasks(self) -> tuple[str, ...]:
        """The tasks this source's rows can carry, after the recipe's filters (empty: no task field)."""
        return ()


def read_file(adapter: Adapter, file: InputFile, fields: tuple[str, ...] | None = None,
              wanted: np.ndarray | None = None) -> tuple[pa.Table, Counter]:
    """One file's rows (`fields` + `_ordinal`, `_reject`; only `wanted` if given) and the adapter's counters
    for it: the pure function the contract promises, in one call (tests, tools; the selection streams)."""
    stats = Counter()
    batches = list(adapter.read(file, wanted, fields, stats))
    if batches:
        return pa.Table.from_batches(batches), stats
    selected = adapter.fields if fields is None else {name: adapter.fields[name] for name in fields}
    return formats._batch_schema(selected).empty_table(), stats
