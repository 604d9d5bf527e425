"""How a sampler state lays its tokens out: user x item-block cells for the sharded sweep,
the packed item rows (sparse), the item-major mirror (mh) and the item-major order (warp).

Derived from the tokens and topics only, so :func:`gibbslda.sampler.restore_state` can
rebuild all of it; :mod:`gibbslda.sampler` owns the states.
"""
from __future__ import annotations

import numpy as np

from gibbslda.packed import packed_counts

_EMPTY_I64 = np.zeros(1, dtype=np.int64)
_EMPTY_I32 = np.zeros(1, dtype=np.int32)


def shard_layout(indptr, words, n_items: int, n_shards: int):
    """Split users and items into ``n_shards`` blocks of about equal token counts.

    Returns ``(order, doc_bounds, cell_ptr)``: the permutation that orders each user's
    tokens by item block (the identity when they already are), the user block bounds, and
    the per-user, per-block token offsets after reordering.
    """
    n_users = indptr.shape[0] - 1
    lengths = np.diff(indptr)
    targets = words.shape[0] * np.arange(1, n_shards) / n_shards
    doc_bounds = np.concatenate([[0], np.searchsorted(np.cumsum(lengths), targets,
                                                      side="right"), [n_users]])
    freq = np.bincount(words, minlength=n_items)
    item_bounds = np.concatenate([[0], np.searchsorted(np.cumsum(freq), targets,
                                                       side="right"), [n_items]])
    block = (np.searchsorted(item_bounds, words, side="right") - 1).astype(np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    key = users * n_shards + block
    # A Corpus's tokens are already in this order: skip the O(N log N) sort then.
    ordered = key.shape[0] < 2 or bool(np.all(key[1:] >= key[:-1]))
    order = np.arange(key.shape[0]) if ordered else np.argsort(key, kind="stable")
    cells = np.bincount(key, minlength=n_users * n_shards).reshape(n_users, n_shards)
    cell_ptr = np.empty((n_users, n_shards + 1), dtype=np.int64)
    cell_ptr[:, 0] = indptr[:-1]
    np.cumsum(cells, axis=1, out=cell_ptr[:, 1:])
    cell_ptr[:, 1:] += indptr[:-1, None]
    return order, doc_bounds.astype(np.int64), cell_ptr


def build_layout(state) -> None:
    """Derive the partition and the sampler's indexes (and sparse counts) from z."""
    n_items = state.n_items
    order, doc_bounds, cell_ptr = shard_layout(state.indptr, state.words, n_items,
                                               state.n_shards)
    if not np.array_equal(order, np.arange(state.n_tokens)):
        # Cells must hold only their item block's tokens, or two shards share counts.
        raise ValueError("each user's tokens must be ordered by item block for "
                         f"n_shards={state.n_shards}: build the state with init_state")
    layout = {"doc_bounds": doc_bounds, "cell_ptr": cell_ptr,
              "wc": (_EMPTY_I64, _EMPTY_I32, _EMPTY_I32),
              "wi": (_EMPTY_I64, _EMPTY_I32, _EMPTY_I32)}
    if state.sampler == "sparse":
        layout["wc"] = packed_counts(state.words, state.z, state.n_topics, n_items)
    if state.sampler == "mh":
        freq = np.bincount(state.words, minlength=n_items)
        word_ptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(freq, out=word_ptr[1:])
        if state.n_tokens >= 2**31:
            raise ValueError(f"sampler 'mh' indexes tokens with int32 and takes at most "
                             f"2**31 - 1 tokens, got {state.n_tokens}: use sampler='sparse'")
        by_item = np.argsort(state.words, kind="stable")
        tok_pos = np.empty(state.n_tokens, dtype=np.int32)
        tok_pos[by_item] = np.arange(state.n_tokens, dtype=np.int32)
        layout["wi"] = (word_ptr, np.ascontiguousarray(state.z[by_item]), tok_pos)
    if state.sampler == "warp":
        layout["warp"] = warp_layout(state.indptr, state.words, n_items)
    state.layout = layout


def warp_layout(indptr, words, n_items: int):
    """The warp sampler's indexes: ``(word_ptr, perm, user_bounds, item_bounds)``.

    ``perm`` (int32) lists each item's tokens (user-major indexes, in user order) item
    after item, item w's at ``perm[word_ptr[w]:word_ptr[w + 1]]``: the item-major order,
    4 bytes a token. The bounds split users and items into at most 64 blocks of about
    equal token counts, the units the threads share out; the result does not depend on
    them (every item and user has its own random stream).
    """
    n_tokens = words.shape[0]
    freq = np.bincount(words, minlength=n_items)
    word_ptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(freq, out=word_ptr[1:])
    perm = np.argsort(words, kind="stable").astype(np.int32)
    n_blocks = min(64, max(1, n_tokens // 4096))
    targets = n_tokens * np.arange(1, n_blocks) / n_blocks

    def bounds(ptr):
        last = ptr.shape[0] - 1
        inner = np.minimum(np.searchsorted(ptr[1:-1], targets, side="right") + 1, last)
        edges = np.unique(np.concatenate([[0], inner, [last]])).astype(np.int64)
        return edges if edges.shape[0] > 1 else np.zeros(2, dtype=np.int64)
    return word_ptr, perm, bounds(indptr), bounds(word_ptr)
