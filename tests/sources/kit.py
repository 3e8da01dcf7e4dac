"""The adapter test kit: the contract of flan_mini/sources/base.py, checked on any adapter and its files.

`check_adapter(adapter, files)` runs every check; each is also a function of its own, so a failure
names the broken promise. The files must be in the adapter's real published format and should hold a
few malformed rows, so that rejects are exercised too.
"""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pyarrow as pa

from flan_mini.rejects import reject_reasons
from flan_mini.select_tasks import scan_file
from flan_mini.sources.base import Adapter, read_file
from flan_mini.sources.files import InputFile
from flan_mini.sources.formats import ORDINAL, REJECT


def prepared(adapter: Adapter, files: list[InputFile]) -> Adapter:
    """The adapter as the selection prepares it: facts from the files, and their survey if it has one."""
    adapter = adapter.prepare(files)
    if adapter.survey:
        read = [f for f in files if not adapter.skip_file(f)]
        adapter = adapter.surveyed(read, [adapter.survey_file(f) for f in read])
    return adapter


def check_declarations(adapter: Adapter) -> None:
    """The required class attributes are there and consistent."""
    assert isinstance(adapter.name, str) and adapter.name
    assert adapter.fields and all(isinstance(kind, pa.DataType) for kind in adapter.fields.values())
    assert set(adapter.required) <= set(adapter.fields)
    assert set(adapter.identity_fields) <= set(adapter.fields)
    for name in (adapter.source_id_field, adapter.task_field, adapter.item_field):
        assert name is None or name in adapter.fields
    assert adapter.kind.renders == hasattr(adapter, "template_family")
    assert set(adapter.scan_fields()) <= set(adapter.fields)


def check_ordinals(adapter: Adapter, file: InputFile) -> pa.Table:
    """Ordinals increase strictly and are the same in every read, whichever fields are read."""
    table, _ = read_file(adapter, file)
    assert table.column_names == [*adapter.fields, ORDINAL, REJECT]
    ordinals = table.column(ORDINAL).to_numpy()
    assert (np.diff(ordinals) > 0).all(), f"{file.display}: ordinals not strictly increasing"
    again, _ = read_file(adapter, file)
    assert again.equals(table), f"{file.display}: a second read differs"
    scanned, _ = read_file(adapter, file, fields=adapter.scan_fields())
    assert np.array_equal(scanned.column(ORDINAL).to_numpy(), ordinals), f"{file.display}: the scan sees other rows"
    return table


def check_wanted(adapter: Adapter, file: InputFile, table: pa.Table, rng: np.random.Generator) -> None:
    """A read with `wanted` returns exactly those rows, in order, with the same content as a full read."""
    ordinals = table.column(ORDINAL).to_numpy()
    if not len(ordinals):
        return
    for size in {1, max(1, len(ordinals) // 3), len(ordinals)}:
        positions = np.sort(rng.choice(len(ordinals), size, replace=False))
        got, stats = read_file(adapter, file, wanted=ordinals[positions])
        assert got.column(ORDINAL).to_numpy().tolist() == ordinals[positions].tolist()
        assert got.to_pylist() == table.take(pa.array(positions)).to_pylist()
        assert not stats, "counters are counted on full reads only"


def check_counts(adapter: Adapter, file: InputFile, table: pa.Table) -> None:
    """Every row read is rejected, filtered out or usable: the scan's counts add up to the rows read."""
    result = scan_file(adapter, file, 0, None)
    counts = result.counts
    assert counts.rows_read == table.num_rows
    assert counts.rows_read == sum(counts.scan_rejected.values()) + counts.rows_filtered + counts.matched
    # The scan reads fewer fields, so it may find fewer problems, never other ones: a row it rejects is rejected in full.
    scanned, _ = read_file(adapter, file, fields=adapter.scan_fields())
    scan_bad = _rejected(adapter, scanned)
    assert len(scan_bad) == sum(counts.scan_rejected.values()) and scan_bad <= _rejected(adapter, table)
    _, stats = read_file(adapter, file)
    assert counts.adapter_stats == stats


def _rejected(adapter: Adapter, table: pa.Table) -> set[int]:
    if not table.num_rows:
        return set()
    reasons = reject_reasons(table.combine_chunks().to_batches()[0], adapter)
    return set(table.column(ORDINAL).to_numpy()[np.asarray(reasons.is_valid())].tolist())


def check_file_order(adapter: Adapter, files: list[InputFile]) -> None:
    """Each file reads the same whatever the order the source's files are given in."""
    forward = prepared(adapter, files)
    backward = prepared(adapter, files[::-1])
    assert forward.facts == backward.facts
    for file in files:
        if not forward.skip_file(file):
            assert read_file(forward, file)[0].equals(read_file(backward, file)[0]), file.display


def check_pickles(adapter: Adapter, files: list[InputFile]) -> None:
    """The adapter pickles (a Ray worker runs it) and reads the same after unpickling."""
    copy = pickle.loads(pickle.dumps(adapter))
    assert type(copy) is type(adapter) and copy.config == adapter.config and copy.facts == adapter.facts
    for file in files:
        if not adapter.skip_file(file):
            mine, theirs = read_file(adapter, file), read_file(copy, file)
            assert mine[0].equals(theirs[0]) and mine[1] == theirs[1], file.display


def check_adapter(adapter: Adapter, files: list[InputFile], seed: int = 0) -> Counter:
    """Every check of the kit; returns the reject reasons seen (so a caller can insist some were)."""
    assert files, "the kit needs files"
    check_declarations(adapter)
    adapter = prepared(adapter, files)
    rng = np.random.default_rng(seed)
    reasons = Counter()
    for file in files:
        if adapter.skip_file(file):
            continue
        table = check_ordinals(adapter, file)
        check_wanted(adapter, file, table, rng)
        check_counts(adapter, file, table)
        if table.num_rows:  # the reader's reasons, and required fields missing or blank
            reasons.update(r for r in reject_reasons(table.combine_chunks().to_batches()[0], adapter).to_pylist() if r)
    check_file_order(adapter, files)
    check_pickles(adapter, files)
    return reasons
