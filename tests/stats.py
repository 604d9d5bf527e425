"""Small statistical helpers for the tests (no scipy dependency)."""
from __future__ import annotations

import itertools
import math

import numpy as np

from tests import reference


def chi2_critical(df: int, p: float = 1e-3) -> float:
    """Upper ``p`` quantile of chi-square(df), Wilson-Hilferty approximation.

    Accurate to about 1% for df >= 5 at p = 1e-3, far finer than the gap between a correct
    sampler and a broken one, which gives statistics many times the critical value.
    """
    z = {1e-3: 3.090232, 1e-4: 3.719016}[p]
    h = 2.0 / (9.0 * df)
    return df * (1.0 - h + z * math.sqrt(h)) ** 3


def chi_square(observed: np.ndarray, expected: np.ndarray, min_expected: float = 5.0):
    """Pearson statistic and degrees of freedom, pooling bins expected below 5."""
    small = expected < min_expected
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    keep = exp > 0
    stat = float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum())
    return stat, int(keep.sum()) - 1


def exact_posterior(docs, n_topics, n_items, alpha, beta) -> np.ndarray:
    """p(z | w) for every assignment z of the tokens, in base-K order (token 0 most
    significant), by enumerating all K**N assignments."""
    n_tokens = sum(len(d) for d in docs)
    logp = np.empty(n_topics ** n_tokens)
    for index, z in enumerate(itertools.product(range(n_topics), repeat=n_tokens)):
        n_dk = [[0] * n_topics for _ in docs]
        n_wk = [[0] * n_topics for _ in range(n_items)]
        n_k = [0] * n_topics
        i = 0
        for d, doc in enumerate(docs):
            for w in doc:
                n_dk[d][z[i]] += 1
                n_wk[w][z[i]] += 1
                n_k[z[i]] += 1
                i += 1
        logp[index] = reference.log_joint(n_dk, n_wk, n_k, list(alpha), beta)
    p = np.exp(logp - logp.max())
    return p / p.sum()


def state_index(z: np.ndarray, n_topics: int) -> int:
    index = 0
    for k in z:
        index = index * n_topics + int(k)
    return index


def stationary(matrix) -> np.ndarray:
    """The stationary law pi = pi M of a row-stochastic matrix (irreducible, so unique)."""
    m = np.asarray(matrix, dtype=np.float64)
    system = m.T - np.eye(m.shape[0])
    system[-1] = 1.0  # replace one redundant balance equation by sum(pi) = 1
    rhs = np.zeros(m.shape[0])
    rhs[-1] = 1.0
    return np.linalg.solve(system, rhs)
