"""How a sampler state lays its tokens out: user x item-block cells for the sharded sweep,
the packed item rows (sparse), the item-major mirror (mh) and the item-major order (warp).

Derived from the tokens and topics only, so :func:`gibbslda.sampler.restore_state` can
rebuild all of it; :mod:`gibbslda.sampler` owns the states. Everything is built by
counting (:mod:`gibbslda._kernels.layout`), never by sorting int64 keys: besides the
state's own arrays, building a layout holds at most one int32 (4 bytes) index per token
(8 with shards when the tokens must be reordered). One shard needs no partition: its
cells are the users themselves.
"""
from __future__ import annotations

import numpy as np

from gibbslda._kernels import layout as _kernels
from gibbslda.packed import item_major, packed_counts

_EMPTY_I64 = np.zeros(1, dtype=np.int64)
_EMPTY_I32 = np.zeros(1, dtype=np.int32)


def shard_layout(indptr, words, n_items: int, n_shards: int):
    """Split users and items into ``n_shards`` blocks of about equal token counts.

    Returns ``(order, doc_bounds, cell_ptr)``: the permutation that orders each user's
    tokens by item block (the identity when they already are), the user block bounds, and
    the per-user, per-block token offsets after reordering.
    """
    doc_bounds, cell_ptr, item_block, ordered = shard_cells(indptr, words, n_items,
                                                            n_shards)
    if ordered:
        return np.arange(words.shape[0]), doc_bounds, cell_ptr
    return block_order(indptr, words, item_block, cell_ptr), doc_bounds, cell_ptr


def shard_cells(indptr, words, n_items: int, n_shards: int):
    """The partition without the permutation: ``(doc_bounds, cell_ptr, item_block,
    ordered)``, ``ordered`` saying whether each user's tokens already are in item-block
    order (a Corpus's are: its tokens are sorted by item within a user). O(N + V + D P)
    and no per-token array; with one shard, the users themselves."""
    n_users = indptr.shape[0] - 1
    if n_shards == 1:
        cell_ptr = np.empty((n_users, 2), dtype=np.int64)
        cell_ptr[:, 0], cell_ptr[:, 1] = indptr[:-1], indptr[1:]
        return (np.array([0, n_users], dtype=np.int64), cell_ptr,
                np.zeros(n_items, dtype=np.int32), True)
    targets = words.shape[0] * np.arange(1, n_shards) / n_shards
    doc_bounds = np.concatenate([[0], np.searchsorted(np.cumsum(np.diff(indptr)), targets,
                                                      side="right"), [n_users]])
    freq = _kernels.item_freq(words, n_items)
    item_bounds = np.concatenate([[0], np.searchsorted(np.cumsum(freq), targets,
                                                       side="right"), [n_items]])
    item_block = (np.searchsorted(item_bounds, np.arange(n_items), side="right")
                  - 1).astype(np.int32)
    cell_ptr = np.empty((n_users, n_shards + 1), dtype=np.int64)
    ordered = _kernels.cell_offsets(indptr, words, item_block, cell_ptr)
    return doc_bounds.astype(np.int64), cell_ptr, item_block, bool(ordered)


def block_order(indptr, words, item_block, cell_ptr) -> np.ndarray:
    """The stable permutation (int64, N) that puts each user's tokens in item-block order
    (``np.argsort(user * P + block, kind="stable")``), by counting."""
    order = np.empty(words.shape[0], dtype=np.int64)
    _kernels.block_order(indptr, words, item_block, cell_ptr, order)
    return order


def build_layout(state, shards=None) -> None:
    """Derive the partition and the sampler's indexes (and sparse counts) from z.

    ``shards``: the ``(doc_bounds, cell_ptr)`` the caller already derived (init_state and
    restore_state do, to put the tokens in block order), so nothing is built twice;
    without it they are derived here and the tokens must already be in block order.
    """
    n_items = state.n_items
    if shards is None:
        doc_bounds, cell_ptr, _, ordered = shard_cells(state.indptr, state.words, n_items,
                                                       state.n_shards)
        if not ordered:
            # Cells must hold only their item block's tokens, or two shards share counts.
            raise ValueError("each user's tokens must be ordered by item block for "
                             f"n_shards={state.n_shards}: build the state with init_state")
    else:
        doc_bounds, cell_ptr = shards
    layout = {"doc_bounds": doc_bounds, "cell_ptr": cell_ptr,
              "wc": (_EMPTY_I64, _EMPTY_I32, _EMPTY_I32),
              "wi": (_EMPTY_I64, _EMPTY_I32, _EMPTY_I32)}
    if state.sampler == "sparse":
        layout["wc"] = packed_counts(state.words, state.z, state.n_topics, n_items)
    if state.sampler == "mh":
        if state.n_tokens >= 2**31:
            raise ValueError(f"sampler 'mh' indexes tokens with int32 and takes at most "
                             f"2**31 - 1 tokens, got {state.n_tokens}: use sampler='sparse'")
        word_ptr, perm = item_major(state.words, n_items)
        word_z = np.empty(state.n_tokens, dtype=np.int32)
        tok_pos = np.empty(state.n_tokens, dtype=np.int32)
        _kernels.mirror(perm, state.z, word_z, tok_pos)
        layout["wi"] = (word_ptr, word_z, tok_pos)
    if state.sampler == "warp":
        layout["warp"] = warp_layout(state.indptr, state.words, n_items)
    state.layout = layout


def warp_layout(indptr, words, n_items: int):
    """The warp sampler's indexes: ``(word_ptr, perm, user_bounds, item_bounds)``.

    ``perm`` (int32) lists each item's tokens (user-major indexes, in user order) item
    after item, item w's at ``perm[word_ptr[w]:word_ptr[w + 1]]``: the item-major order,
    4 bytes a token, built by a counting sort. The bounds split users and items into at
    most 64 blocks of about equal token counts, the units the threads share out; the
    result does not depend on them (every item and user has its own random stream).
    """
    n_tokens = words.shape[0]
    word_ptr, perm = item_major(words, n_items)
    n_blocks = min(64, max(1, n_tokens // 4096))
    targets = n_tokens * np.arange(1, n_blocks) / n_blocks

    def bounds(ptr):
        last = ptr.shape[0] - 1
        inner = np.minimum(np.searchsorted(ptr[1:-1], targets, side="right") + 1, last)
        edges = np.unique(np.concatenate([[0], inner, [last]])).astype(np.int64)
        return edges if edges.shape[0] > 1 else np.zeros(2, dtype=np.int64)
    return word_ptr, perm, bounds(indptr), bounds(word_ptr)
