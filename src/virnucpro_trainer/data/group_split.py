"""The group split (`split.unit=group`): every fragment of a source record on one side, with each
side aiming at its requested share of each class's *rows* (records differ in size by orders of
magnitude, so shares of the record count can be far off). See docs/data-and-split.md.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from virnucpro_trainer.data.files import CLASS_NAMES
from virnucpro_trainer.data.split_doc import SIDES
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)

# A side of a group split further than this from its requested share of a class's rows is warned of.
ROW_FRACTION_TOLERANCE = 0.01


def requested_fractions(test_fraction: float, val_fraction: float) -> dict[str, float]:
    """The share of each class's rows a group split asks of each side: `val_fraction` is taken
    from what the test side leaves, as in the file split."""
    return {
        "train": (1 - test_fraction) * (1 - val_fraction),
        "val": (1 - test_fraction) * val_fraction,
        "test": test_fraction,
    }


def fill_side(
    order: list[str], sizes: dict[str, int], target: float, reserve: int
) -> tuple[list[str], list[str]]:
    """(records for one side, the rest), both in `order`, the side's rows aimed at `target`.

    First every record, in order, that still fits under the target; then the smallest record left
    if it brings the side closer (it overshoots by less than the side falls short), or, where
    nothing fit, in any case, so that the side gets one. At least `reserve` records are left for
    the sides still to fill. Short of the reserve, the side ends within half the smallest record
    left out of it of its target.
    """
    chosen: list[str] = []
    rows = 0
    for name in order:
        if len(order) - len(chosen) > reserve and rows + sizes[name] <= target:
            chosen.append(name)
            rows += sizes[name]
    taken = set(chosen)
    rest = [name for name in order if name not in taken]
    if len(rest) > reserve:
        smallest = min(rest, key=sizes.__getitem__)  # the first of equals, in order
        if not chosen or rows + sizes[smallest] - target < target - rows:
            chosen.append(smallest)
            rest.remove(smallest)
    return chosen, rest


def swap_closer(
    side: list[str], train: list[str], sizes: dict[str, int], target: float, rounds: int = 8
) -> None:
    """Swap records of `side` with training records (in place) while a swap brings the side's
    rows closer to `target`: each round the swap that comes closest, ties to the first found."""
    for _ in range(rounds):
        gap = target - sum(sizes[n] for n in side)
        pool = sorted(train, key=sizes.__getitem__)  # stable: equals stay in order
        pool_sizes = [sizes[n] for n in pool]
        best, out, into = abs(gap), None, None
        for name in side:
            want = sizes[name] + gap  # the training record that would close the gap
            at = bisect.bisect_left(pool_sizes, want)
            for k in (at - 1, at):
                if 0 <= k < len(pool) and abs(want - pool_sizes[k]) < best:
                    best, out, into = abs(want - pool_sizes[k]), name, pool[k]
        if out is None:
            return
        side[side.index(out)] = into
        train[train.index(into)] = out


def place_records(
    order: list[str], sizes: dict[str, int], targets: dict[str, float]
) -> dict[str, list[str]]:
    """One class's records, shuffled (`order`), to sides with rows aimed at `targets` (side ->
    rows): `fill_side` for test, then for validation from what test left, the rest training; then
    `swap_closer` for test and validation. Every side gets at least one record."""
    test, left = fill_side(order, sizes, targets["test"], reserve=2)
    val, train = fill_side(left, sizes, targets["val"], reserve=1)
    swap_closer(test, train, sizes, targets["test"])
    swap_closer(val, train, sizes, targets["val"])
    return {"train": train, "val": val, "test": test}


def assign_records(
    labels: dict[str, int],
    sizes: dict[str, int],
    test_fraction: float,
    val_fraction: float,
    seed: int,
) -> tuple[dict[str, list[str]], dict]:
    """The group split: (side -> records, the requested and achieved shares of rows per class
    and side). `labels`, `sizes`: each record's class and rows.

    Per class, a seeded shuffle of its records (sorted by name first, so dict order does not
    matter), placed by `place_records` towards the sides' shares of the class's rows. Each class
    gets at least one record on every side, so every side holds both classes.
    """
    rng = np.random.default_rng(seed)
    requested = requested_fractions(test_fraction, val_fraction)
    sides: dict[str, list[str]] = {side: [] for side in SIDES}
    report = {}
    for label, class_name in CLASS_NAMES.items():
        names = sorted(n for n, lab in labels.items() if lab == label)
        if len(names) < 3:
            raise UserError(
                f"only {len(names)} {class_name} source record(s): a split by source record "
                "needs at least 3 per class (train, validation and test each get one). Check "
                "split.record_pattern against the ids, or add data."
            )
        order = [names[i] for i in rng.permutation(len(names))]
        total = sum(sizes[n] for n in names)
        targets = {side: requested[side] * total for side in SIDES}
        of_side = place_records(order, sizes, targets)
        report[class_name] = {"rows": total, "records": len(names)}
        for side in SIDES:
            side_sizes = [sizes[n] for n in of_side[side]]
            report[class_name][side] = {
                "requested": round(requested[side], 6),
                "achieved": round(sum(side_sizes) / total, 6),
                "rows": sum(side_sizes),
                "records": len(side_sizes),
                "largest_record_rows": max(side_sizes),
                "smallest_record_rows": min(side_sizes),
            }
            sides[side] += of_side[side]
    return {side: sorted(names) for side, names in sides.items()}, report


def record_rows(
    records: dict[str, list[str]], labels: dict[str, int]
) -> dict[str, tuple[int, int]]:
    """Each source record's (host, viral) rows. `records`: file -> record of each row."""
    counts: dict[str, list[int]] = {}
    for name, per_row in records.items():
        for record, n in Counter(per_row).items():
            counts.setdefault(record, [0, 0])[labels[name]] += n
    return {r: (host, viral) for r, (host, viral) in counts.items()}


def record_labels(
    records: dict[str, list[str]],
    labels: dict[str, int],
    rows: dict[str, tuple[int, int]] | None = None,
) -> dict[str, int]:
    """Each source record's class: that of its fragments, or of most of them (with a warning)
    where a record has fragments of both classes. `records`: file -> record of each row; `rows`:
    `record_rows` of them, where already counted."""
    counts = record_rows(records, labels) if rows is None else rows
    mixed = sorted(r for r, (host, viral) in counts.items() if host and viral)
    if mixed:
        log.warning(
            "%d source records have both viral and host fragments (e.g. %s); each stays on one "
            "side, stratified as the class of most of its fragments",
            len(mixed),
            ", ".join(mixed[:5]),
        )
    return {r: int(viral > host) for r, (host, viral) in counts.items()}


def log_row_fractions(doc: dict, folder: Path) -> None:
    """Log a group split's requested and achieved share of each class's rows per side; warn where
    the test or validation side misses it by more than a percentage point (records too large)."""
    fractions = doc.get("row_fractions")
    if doc.get("group_method") is None or fractions is None:
        d = doc["distribution"]
        total = sum(d[side]["sequences"] for side in SIDES)
        test = d["test"]["sequences"] / total if total else 0.0
        requested = doc["split_ratio"]
        message = (
            "this group split was made before group splits aimed at shares of rows: its fractions "
            "are of each class's record count, and its test side holds %.1f%% of all rows "
            "(split.test_fraction=%s); move or delete %s to make it afresh with row targets"
        )
        emit = log.warning if abs(test - requested) > ROW_FRACTION_TOLERANCE else log.info
        emit(message, 100 * test, requested, folder)
        return
    for class_name, of_class in fractions.items():
        log.info(
            "group split, %s rows (%d in %d records): %s",
            class_name,
            of_class["rows"],
            of_class["records"],
            "; ".join(
                f"{side} {of_class[side]['achieved']:.2%} (requested "
                f"{of_class[side]['requested']:.2%}; {of_class[side]['rows']} rows, "
                f"{of_class[side]['records']} record{'s' * (of_class[side]['records'] != 1)})"
                for side in SIDES
            ),
        )
        for side in ("test", "val"):
            got = of_class[side]
            if abs(got["achieved"] - got["requested"]) > ROW_FRACTION_TOLERANCE + 1e-9:
                log.warning(
                    "group split: the %s side holds %.2f%% of the %s rows, not the requested "
                    "%.2f%% (%d of %d rows in %d of %d records; the largest on this side has %d "
                    "rows, the smallest on the training side %d): its records are too few or too "
                    "large to come closer, with every side holding at least one. More or smaller "
                    "records (split.record_pattern) or other fractions get closer",
                    side,
                    100 * got["achieved"],
                    class_name,
                    100 * got["requested"],
                    got["rows"],
                    of_class["rows"],
                    got["records"],
                    of_class["records"],
                    got["largest_record_rows"],
                    of_class["train"]["smallest_record_rows"],
                )
