"""Numba kernels that build arrays by counting instead of sorting: a corpus's tokens from
CSR counts, the item-major order of the tokens, the shard cells, the sparse sampler's
packed item rows and the mh sampler's item-major mirror.

Each is O(N + V) (plus a sort of each item's few topics, or of a user's unsorted row),
writes into int32 arrays the caller sized, and allocates nothing per token: numpy's
``argsort``, ``unique`` and ``bincount`` would each hold an int64 (8 bytes a token) copy.

Glossary: d user, w item, k topic, z topic of a token, b item block (shard).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def item_freq(words, n_items):
    """Tokens per item, int64 (V,): ``np.bincount(words, minlength=V)`` without its int64
    copy of ``words``."""
    freq = np.zeros(n_items, dtype=np.int64)
    for i in range(words.shape[0]):
        freq[words[i]] += 1
    return freq


@njit(cache=True, nogil=True)
def item_order(words, word_ptr, perm):
    """Stable counting sort of the tokens by item: ``perm[word_ptr[w]:word_ptr[w + 1]]``
    lists item w's tokens in increasing order (``np.argsort(words, kind="stable")``)."""
    fill = word_ptr[:-1].copy()
    for i in range(words.shape[0]):
        w = words[i]
        perm[fill[w]] = i
        fill[w] += 1


@njit(cache=True, nogil=True)
def mirror(perm, z, word_z, tok_pos):
    """The mh sampler's item-major mirror: ``word_z = z[perm]`` and ``tok_pos`` its
    inverse (token i sits at ``tok_pos[i]`` in item-major order)."""
    for j in range(perm.shape[0]):
        i = perm[j]
        word_z[j] = z[i]
        tok_pos[i] = j


@njit(cache=True, nogil=True)
def pack_rows(word_ptr, perm, z, n_topics, bits, wc_ptr, wc_val, wc_len):
    """Fill the packed item rows: item w's non-zero counts as ``count << bits | topic``,
    largest first, at ``wc_val[wc_ptr[w]:]``, their number in ``wc_len[w]``. ``wc_val``
    comes zeroed (slots past a row's length must read count 0)."""
    counts = np.zeros(n_topics, dtype=np.int64)
    seen = np.empty(n_topics, dtype=np.int64)
    row = np.empty(n_topics, dtype=np.int64)
    for w in range(word_ptr.shape[0] - 1):
        m = 0
        for j in range(word_ptr[w], word_ptr[w + 1]):
            k = z[perm[j]]
            if counts[k] == 0:
                seen[m] = k
                m += 1
            counts[k] += 1
        for i in range(m):
            k = seen[i]
            row[i] = (counts[k] << bits) | k
            counts[k] = 0
        values = np.sort(row[:m])
        start = wc_ptr[w]
        for i in range(m):
            wc_val[start + i] = values[m - 1 - i]
        wc_len[w] = m


@njit(cache=True, nogil=True)
def cell_offsets(indptr, words, item_block, cell_ptr):
    """Per user, the offsets of its tokens of each item block (``cell_ptr``, D x (P + 1),
    as they are once each user's tokens are ordered by block); returns whether every
    user's tokens already are."""
    n_blocks = cell_ptr.shape[1] - 1
    ordered = True
    for d in range(indptr.shape[0] - 1):
        cell_ptr[d, 0] = indptr[d]
        for b in range(n_blocks):
            cell_ptr[d, b + 1] = 0
        last = 0
        for i in range(indptr[d], indptr[d + 1]):
            b = item_block[words[i]]
            if b < last:
                ordered = False
            last = b
            cell_ptr[d, b + 1] += 1
        for b in range(n_blocks):
            cell_ptr[d, b + 1] += cell_ptr[d, b]
    return ordered


@njit(cache=True, nogil=True)
def block_order(indptr, words, item_block, cell_ptr, order):
    """The stable reorder of each user's tokens by item block: ``order[j]`` is the token
    that goes to place j (``np.argsort(user * P + block, kind="stable")``)."""
    n_blocks = cell_ptr.shape[1] - 1
    fill = np.empty(n_blocks, dtype=np.int64)
    for d in range(indptr.shape[0] - 1):
        for b in range(n_blocks):
            fill[b] = cell_ptr[d, b]
        for i in range(indptr[d], indptr[d + 1]):
            b = item_block[words[i]]
            order[fill[b]] = i
            fill[b] += 1


@njit(cache=True, nogil=True)
def row_sums(indptr, data):
    """Sum of ``data`` over each CSR row, int64 (D,)."""
    sums = np.zeros(indptr.shape[0] - 1, dtype=np.int64)
    for d in range(sums.shape[0]):
        for i in range(indptr[d], indptr[d + 1]):
            sums[d] += data[i]
    return sums


@njit(cache=True, nogil=True)
def row_tokens(indptr, indices, data, token_ptr, words):
    """Expand CSR counts to tokens: row d's column c, ``data`` times, at
    ``words[token_ptr[d]:token_ptr[d + 1]]`` in increasing column order (a row whose
    columns are out of order is sorted, stably; repeated columns simply add up)."""
    for d in range(indptr.shape[0] - 1):
        start, stop = indptr[d], indptr[d + 1]
        at = token_ptr[d]
        in_order = True
        for i in range(start + 1, stop):
            if indices[i] < indices[i - 1]:
                in_order = False
                break
        if in_order:
            for i in range(start, stop):
                for _ in range(data[i]):
                    words[at] = indices[i]
                    at += 1
        else:
            for j in np.argsort(indices[start:stop], kind="mergesort"):
                for _ in range(data[start + j]):
                    words[at] = indices[start + j]
                    at += 1


@njit(cache=True, nogil=True)
def group_rows(rows, cols, counts, indptr, indices, data):
    """Counting sort of (row, col, count) triples by row into CSR ``(indices, data)`` over
    the offsets ``indptr`` (from the rows' counts), keeping the input order in a row."""
    fill = indptr[:-1].copy()
    for i in range(rows.shape[0]):
        at = fill[rows[i]]
        indices[at] = cols[i]
        data[at] = counts[i]
        fill[rows[i]] += 1


@njit(cache=True, nogil=True)
def count_topics(words, z, n_wk, n_k):
    """Count the assignments into ``n_k`` (K,) and, unless it is a V x 0 placeholder,
    ``n_wk`` (V x K); both come zeroed."""
    dense = n_wk.shape[1] > 0
    for i in range(z.shape[0]):
        if dense:
            n_wk[words[i], z[i]] += 1
        n_k[z[i]] += 1
