"""The item x topic counts on the Python side: the sparse sampler's packed rows and sparse
count entries.

Packed rows (``layout["wc"]`` of a sparse GibbsState, read and written by the kernels in
:mod:`gibbslda._kernels`): item w's row ``wc_val[wc_ptr[w]:wc_ptr[w] + wc_len[w]]`` holds
its non-zero counts as ``count << topic_bits(K) | topic``, largest first.

Sparse entries (what AD-LDA's partitions exchange, :mod:`gibbslda.distributed`): sorted
int64 keys ``item * K + topic`` with their int32 counts or changes, zeros left out.
:func:`set_item_counts` and :func:`apply_item_delta` write them into a state's counts,
dense or packed.
"""
from __future__ import annotations

import numpy as np

from gibbslda._kernels import layout as _layout_kernels

_ONE_KEY = 2**31  # below it, two sort keys share one int64 (a plain sort, no argsort)


def topic_bits(n_topics: int) -> int:
    """Bits a topic id takes in a packed count entry (as the sparse kernel computes it)."""
    return max(1, (n_topics - 1).bit_length())


def packed_counts(words, z, n_topics: int, n_items: int, dtype=None):
    """The sparse sampler's item x topic counts: ``(wc_ptr, wc_val, wc_len)``.

    Item w's row ``wc_val[wc_ptr[w]:wc_ptr[w] + wc_len[w]]`` holds its non-zero counts as
    ``count << topic_bits(K) | topic``, sorted largest first, in a run of capacity
    min(K, frequency of w): at most one entry per token, never V x K. Entries are int32
    while every count fits (an item with fewer than 2**(31 - topic_bits) tokens: 2.1M at
    K = 1000), else int64 (``dtype`` forces one). Built by counting each item's tokens in
    item-major order (:func:`item_major`), O(N + V + sum of row sorts); besides the rows it
    holds 4 bytes a token.
    """
    words = np.ascontiguousarray(words, dtype=np.int32)
    z = np.ascontiguousarray(z, dtype=np.int32)
    bits = topic_bits(n_topics)
    word_ptr, perm = item_major(words, n_items)
    freq = np.diff(word_ptr)
    top = int(freq.max()) if freq.size else 0
    if dtype is None:
        dtype = np.int32 if top < 2 ** (31 - bits) else np.int64
    if top >= 2 ** (63 - bits):
        raise ValueError(f"an item has {top} tokens, too many to pack with {n_topics} "
                         "topics: use sampler='dense'")
    wc_ptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.minimum(freq, n_topics), out=wc_ptr[1:])
    wc_len = np.zeros(n_items, dtype=np.int32)
    wc_val = np.zeros(max(int(wc_ptr[-1]), 1), dtype=dtype)
    _layout_kernels.pack_rows(word_ptr, perm, z, np.int64(n_topics), np.int64(bits),
                              wc_ptr, wc_val, wc_len)
    return wc_ptr, wc_val, wc_len


def item_major(words, n_items: int):
    """The tokens in item-major order: ``(word_ptr, perm)``, item w's tokens (indexes into
    ``words``, increasing) at ``perm[word_ptr[w]:word_ptr[w + 1]]``; ``perm`` is
    ``np.argsort(words, kind="stable")`` built by a counting sort, int32 (int64 from 2**31
    tokens): 4 bytes a token, no int64 sort keys."""
    words = np.ascontiguousarray(words, dtype=np.int32)
    freq = _layout_kernels.item_freq(words, np.int64(n_items))
    word_ptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(freq, out=word_ptr[1:])
    perm = np.empty(words.shape[0], dtype=np.int32 if words.shape[0] < 2**31 else np.int64)
    _layout_kernels.item_order(words, word_ptr, perm)
    return word_ptr, perm


def item_counts(state):
    """``(values, shift)``: every item x topic count of ``state`` (a GibbsState) as
    ``values >> shift`` (1-D, no copy): the sparse sampler's packed rows, or the flattened
    dense matrix. The warp sampler keeps no counts per item: its are built from ``z`` as
    packed rows (a copy, O(N + V))."""
    if state.sampler == "sparse":
        return state.layout["wc"][1], topic_bits(state.n_topics)
    if state.sampler == "warp":
        rows = packed_counts(state.words, state.z, state.n_topics, state.n_items)[1]
        return rows, topic_bits(state.n_topics)
    return state.n_wk.reshape(-1), 0



# -- sparse entries: key = item * K + topic, sorted by key, non-zero ----------------------
def combine(keys_list, values_list):
    """Sum the entries of several sparse count arrays: (sorted keys, int32 sums != 0).

    ``values_list`` holds arrays or scalars. Keys below ``_ONE_KEY`` (V K < 2**31) share
    one int64 with their value, so a plain in-place sort orders them: numpy's vectorised
    sort, about 15x faster than an argsort, and no index array."""
    n = sum(keys.size for keys in keys_list)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    if max(int(keys.max()) for keys in keys_list if keys.size) < _ONE_KEY:
        keys, at = np.empty(n, dtype=np.int64), 0
        for part_keys, part_values in zip(keys_list, values_list):
            part = keys[at:at + part_keys.size]
            part[:] = part_keys
            part <<= 32
            part += part_values  # |value| < 2**31: the low 32 bits hold value + 2**31
            part += 2**31
            at += part_keys.size
        keys.sort()
        values = (keys & 0xFFFFFFFF) - 2**31
        keys >>= 32
    else:
        keys = np.concatenate(keys_list).astype(np.int64, copy=False)
        values = np.concatenate([np.broadcast_to(v, k.shape) for k, v in
                                 zip(keys_list, values_list)]).astype(np.int64)
        order = np.argsort(keys)
        keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    sums = np.add.reduceat(values, starts)
    keep = sums != 0
    return keys[starts[keep]], sums[keep].astype(np.int32)


def add_entries(keys, values, d_keys, d_values):
    """``(keys, values) + (d_keys, d_values)``, O(nnz + d log nnz); zeros are dropped."""
    values = values.copy()
    at = np.searchsorted(keys, d_keys)
    hit = at < keys.size
    hit[hit] = keys[at[hit]] == d_keys[hit]
    values[at[hit]] += d_values[hit]
    new = ~hit
    if new.any():
        keys = np.insert(keys, at[new], d_keys[new])
        values = np.insert(values, at[new], d_values[new])
    keep = values != 0
    return (keys, values) if keep.all() else (keys[keep], values[keep])


def nonzero_entries(n_wk):
    """The non-zero counts of a dense item x topic matrix as sparse entries."""
    flat = n_wk.reshape(-1)
    keys = np.flatnonzero(flat)
    return keys, flat[keys]


def set_item_counts(state, keys, values, n_k) -> None:
    """Make ``state``'s item x topic counts the given ones (sparse entries ``item * K +
    topic`` with counts, and the topic totals ``n_k``), whatever its tokens are.

    The dense sampler's matrix is overwritten; the sparse sampler's packed rows are built
    anew, with the capacity each item's total count needs (as :func:`packed_counts`
    builds them from a corpus's tokens), so its tokens may be a part of that corpus.
    """
    k, v = state.n_topics, state.n_items
    state.n_k[:] = n_k
    if state.sampler != "sparse":
        state.n_wk[:] = 0
        state.n_wk.reshape(-1)[keys] = values
        return
    freq = np.bincount(keys // k, weights=values, minlength=v).astype(np.int64)
    bits = topic_bits(k)
    dtype = np.int32 if (freq.max() if v else 0) < 2 ** (31 - bits) else np.int64
    wc_ptr = np.zeros(v + 1, dtype=np.int64)
    np.cumsum(np.minimum(freq, k), out=wc_ptr[1:])
    state.layout["wc"] = (wc_ptr, np.zeros(max(int(wc_ptr[-1]), 1), dtype=dtype),
                          np.zeros(v, dtype=np.int32))
    _write_rows(state, np.arange(v), keys, values)


def apply_item_delta(state, keys, values) -> None:
    """Add sparse entries (``item * K + topic``, change) to ``state``'s item counts."""
    if state.sampler != "sparse":
        flat = state.n_wk.reshape(-1)
        flat[keys] += values
        if keys.size and flat[keys].min() < 0:
            raise RuntimeError("an item x topic count fell below zero")
        return
    if keys.size == 0:
        return
    k = state.n_topics
    rows = keys // k
    touched = rows[np.concatenate([[True], rows[1:] != rows[:-1]])]
    wc_ptr, wc_val, wc_len = state.layout["wc"]
    lens = wc_len[touched].astype(np.int64)
    starts = np.cumsum(lens) - lens
    pos = np.repeat(wc_ptr[touched] - starts, lens) + np.arange(int(lens.sum()))
    packed = wc_val[pos].astype(np.int64)
    bits = topic_bits(k)
    old = np.repeat(touched, lens) * k + (packed & ((1 << bits) - 1))
    new_keys, new_values = combine([old, keys], [packed >> bits, values])
    if new_values.size and new_values.min() < 0:
        raise RuntimeError("an item x topic count fell below zero")
    _write_rows(state, touched, new_keys, new_values)


def _write_rows(state, touched, keys, values) -> None:
    """Rewrite the packed rows ``touched`` to hold exactly the entries (keys, values)."""
    wc_ptr, wc_val, wc_len = state.layout["wc"]
    k, bits = state.n_topics, topic_bits(state.n_topics)
    rows = keys // k
    packed = (values.astype(np.int64) << bits) | (keys - rows * k)
    if packed.size and packed.max() < _ONE_KEY:  # rows up, entries down: one int64 sort
        both = np.sort((rows << 31) | (2**31 - 1 - packed))
        rows, packed = both >> 31, 2**31 - 1 - (both & (2**31 - 1))
    else:
        order = np.lexsort((-packed, rows))
        rows, packed = rows[order], packed[order]
    lengths = np.bincount(rows, minlength=state.n_items)
    if np.any(lengths > np.diff(wc_ptr)):
        raise RuntimeError("an item has more topics than tokens: the counts are corrupt")
    wc_len[touched] = lengths[touched]
    # clear the touched rows first: every slot past a row's length must read count 0
    span = np.diff(wc_ptr)[touched]
    slots = np.repeat(wc_ptr[:-1][touched], span) + (
        np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
    wc_val[slots] = 0
    within = np.arange(rows.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    wc_val[wc_ptr[rows] + within] = packed
