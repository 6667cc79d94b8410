"""The one chunk policy: rows per chunk under a fixed memory budget.

Every pass over many rows (encoding, importance sampling, validation scores,
closed-form variances, column statistics) works in chunks whose largest
intermediate tensor holds at most :data:`CHUNK_ELEMENTS` numbers, in the
style of scikit-learn's ``working_memory``. No torch or sklearn here.
"""

from __future__ import annotations

#: Numbers in the largest intermediate tensor of one chunk (8 MiB of
#: float32, 16 MiB of float64).
CHUNK_ELEMENTS = 1 << 21


def rows_per_chunk(width: int, n_draws: int = 1, live: int = 1) -> int:
    """Rows per chunk when each row needs ``live * n_draws * width`` numbers.

    Parameters
    ----------
    width : int
        Numbers per row and draw in the widest intermediate tensor (for a
        network, its widest layer).
    n_draws : int, default=1
        Draws per row processed together (importance samples).
    live : int, default=1
        How many tensors of that size are alive at once (a float64 temporary
        counts twice).

    Returns
    -------
    n_rows : int
        At least 1.
    """
    return max(1, CHUNK_ELEMENTS // max(1, int(live) * int(n_draws) * int(width)))


#: Rows per inference block (fewer where the memory budget or
#: :data:`BLOCK_DRAWS` asks): scores and codes pass every row through the
#: module in blocks of exactly this shape.
BLOCK_ROWS = 256
#: At most this many rows times draws per block: the decoder's input then
#: stays in cache, and a call on a few rows pads little.
BLOCK_DRAWS = 4096
#: Blocks are a multiple of this many rows where the budget allows: matrix
#: kernels work in tiles of rows, and a row in a partial tile may round
#: differently from one in a full tile.
BLOCK_ALIGN = 64


def block_rows(width: int, n_draws: int = 1) -> int:
    """Rows of every inference block: :data:`BLOCK_ROWS` within the budget.

    A constant of the model (its width and number of draws), never of the
    data, so that every row meets matrix products of one shape; a multiple
    of :data:`BLOCK_ALIGN` (or, when the budget allows fewer rows, of the
    largest power of two it allows).
    """
    rows = min(BLOCK_ROWS, rows_per_chunk(width, n_draws))
    rows = max(1, min(rows, BLOCK_DRAWS // max(1, int(n_draws))))
    align = min(BLOCK_ALIGN, 1 << (rows.bit_length() - 1))
    return rows - rows % align


def chunks(n_rows: int, size: int):
    """Consecutive slices of at most ``size`` rows covering ``range(n_rows)``."""
    for start in range(0, n_rows, size):
        yield slice(start, min(start + size, n_rows))
