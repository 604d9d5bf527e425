"""Metropolis-Hastings cells with O(1) proposals (LightLDA's cycle of item and user proposals).

The target for token i is the collapsed conditional
pi(k) proportional to (n_dk + alpha_k)(n_wk + beta) / (n_k + V beta), all counts without i.
Two proposals alternate, each drawn in O(1) and accepted with the exact MH ratio, so every
step leaves pi invariant and the chain targets the LDA posterior:

- item proposal q(k) proportional to n_wk + beta (counts with i): pick one of item w's
  tokens uniformly and take its topic, or (with weight K beta) a uniform topic; the
  topics of each item's tokens are mirrored, item-major, in ``word_z`` (token i sits at
  ``tok_pos[i]``) so the pick is one read from a contiguous run;
  acceptance min(1, (n_dt + alpha_t)(n_s + V beta) / ((n_ds + alpha_s)(n_t + V beta)));
- user proposal q(k) proportional to n_dk + alpha_k (counts with i): pick one of the user's
  tokens uniformly and take its topic, or (weight sum(alpha)) a topic drawn from alpha;
  acceptance min(1, (n_wt + beta)(n_s + V beta) / ((n_ws + beta)(n_t + V beta))).

Token i's own topic ``z[i]`` (and its mirror in ``word_z``) always holds the chain's current
state s during its steps, which is what makes "counts with i" in the proposals exact.

References
----------
Yuan et al. (2015), "LightLDA: Big topic models on modest computer clusters", WWW.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from gibbslda._rng import uniform


@njit(cache=True, nogil=True)
def mh_cell(tok, wi, n_wk, n_k, alpha, alpha_cdf, beta, rng, d0, d1, b, mh_steps):
    indptr, cell_ptr, words, z = tok
    word_ptr, word_z, tok_pos = wi
    n_topics = n_k.shape[0]
    v_beta = n_wk.shape[0] * beta
    k_beta = n_topics * beta
    alpha_sum = alpha_cdf[n_topics - 1]
    n_dk = np.zeros(n_topics, dtype=np.int32)
    for d in range(d0, d1):
        if cell_ptr[d, b] == cell_ptr[d, b + 1]:
            continue
        start = indptr[d]
        n_d = indptr[d + 1] - start
        for i in range(start, start + n_d):
            n_dk[z[i]] += 1
        for i in range(cell_ptr[d, b], cell_ptr[d, b + 1]):
            w = words[i]
            s = z[i]
            n_dk[s] -= 1
            n_wk[w, s] -= 1
            n_k[s] -= 1
            w_start = word_ptr[w]
            n_w = word_ptr[w + 1] - w_start
            for _ in range(mh_steps):
                u = uniform(rng) * (n_w + k_beta)
                if u < n_w:
                    t = word_z[w_start + np.int64(u)]
                else:
                    t = min(np.int64((u - n_w) / beta), n_topics - 1)
                if t != s:
                    num = (n_dk[t] + alpha[t]) * (n_k[s] + v_beta)
                    den = (n_dk[s] + alpha[s]) * (n_k[t] + v_beta)
                    if num >= den or uniform(rng) * den < num:  # accept w.p. min(1, num/den)
                        s = t
                        z[i] = s
                        word_z[tok_pos[i]] = s
                u = uniform(rng) * (n_d + alpha_sum)
                if u < n_d:
                    t = z[start + np.int64(u)]
                else:
                    t = min(np.searchsorted(alpha_cdf, u - n_d, side="right"), n_topics - 1)
                if t != s:
                    num = (n_wk[w, t] + beta) * (n_k[s] + v_beta)
                    den = (n_wk[w, s] + beta) * (n_k[t] + v_beta)
                    if num >= den or uniform(rng) * den < num:
                        s = t
                        z[i] = s
                        word_z[tok_pos[i]] = s
            n_dk[s] += 1
            n_wk[w, s] += 1
            n_k[s] += 1
        for i in range(start, start + n_d):
            n_dk[z[i]] -= 1
