"""The rule for sequence ids, one for training and evaluate.py alike: every id is non-empty and
free of tabs, carriage returns and newlines (each prediction table is tab-separated, one row a
line), and no id names two rows, in one file or across files (predictions could not be told
apart). Files whose ids cannot be matched to rows (None) have their rows named `<file>#<row>`
instead, and are left out of both checks.
"""

from __future__ import annotations

from collections.abc import Sequence

from virnucpro_trainer.errors import UserError

FORBIDDEN = {"\t": "a tab", "\n": "a newline", "\r": "a carriage return"}


def id_problem(seq_id: str) -> str | None:
    """What is wrong with one id ('is empty', 'holds a tab', ...), or None."""
    if not seq_id:
        return "is empty"
    found = [name for char, name in FORBIDDEN.items() if char in seq_id]
    return f"holds {' and '.join(found)}" if found else None


def check_id_text(where: object, ids: list[str]) -> None:
    """A UserError naming `where` (a file), the first bad id (repr) and its row."""
    # one scan in C over all ids first: a data set has millions of them, almost always fine
    joined = "\x00".join(ids)
    if "" not in ids and not any(char in joined for char in FORBIDDEN):
        return
    row = next(i for i, seq_id in enumerate(ids) if id_problem(seq_id))
    raise UserError(
        f"{where}: sequence id {ids[row]!r} at row {row} {id_problem(ids[row])}: ids must be "
        "non-empty and hold no tab, newline or carriage return (the prediction tables are "
        "tab-separated, one row a line); fix the ids upstream"
    )


def check_unique_ids(names: Sequence[str], ids: Sequence[list[str] | None]) -> None:
    """A UserError naming both files (and rows) when one id names two rows. `ids[i]` are the ids
    of file `names[i]`, or None where they cannot be matched to its rows."""
    known = [file_ids for file_ids in ids if file_ids is not None]
    if len({seq_id for file_ids in known for seq_id in file_ids}) == sum(map(len, known)):
        return
    first: dict[str, tuple[int, int]] = {}
    for f, file_ids in enumerate(ids):
        for row, seq_id in enumerate(file_ids or ()):
            g, other_row = first.setdefault(seq_id, (f, row))
            if (g, other_row) == (f, row):
                continue
            where = (
                f"twice in {names[f]} (rows {other_row} and {row})"
                if g == f
                else f"in {names[g]} (row {other_row}) and {names[f]} (row {row})"
            )
            raise UserError(
                f"sequence id {seq_id!r} names two rows, {where}: ids must be unique across all "
                "files, or rows could not be told apart in the predictions (was a file copied or "
                "merged twice?)"
            )


def check_table_ids(names: Sequence[str], ids: Sequence[list[str] | None]) -> None:
    """Both rules on every file of a feature table (a store built before the text rule existed
    was never checked when its files were read)."""
    for name, file_ids in zip(names, ids, strict=True):
        if file_ids is not None:
            check_id_text(name, file_ids)
    check_unique_ids(names, ids)
