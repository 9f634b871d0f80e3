"""A Parzen (kernel mixture) density over the unit cube of a space, with inactive axes.

Numeric axes (Float, Int) get Gaussian kernels truncated to [0, 1]; Choice axes a
categorical kernel that keeps the observed option with probability ``1 - eps``;
Fixed axes are left out. One kernel per observation, plus one uniform component
(the prior), all of equal weight.

Densities are taken over the axes *active in the point evaluated*, whatever the
observations used: an observation that did not use an axis contributes the uniform
density there. Two mixtures are therefore always compared on the same axes, which is
what the ratio l(x) / g(x) needs when conditional parameters switch axes on and off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = ["Axes", "Parzen"]


@dataclass(frozen=True)
class Axes:
    """Which coordinates are numeric, which are categorical (and with how many options)."""

    numeric: np.ndarray  # indices
    categorical: np.ndarray  # indices
    n_options: np.ndarray  # options per categorical axis


class Parzen:
    """The mixture built on ``points`` (n x d, NaN where a parameter was inactive)."""

    def __init__(self, points: np.ndarray, axes: Axes, *, eps: float, prior_weight: float = 1.0) -> None:
        self.points = points
        self.axes = axes
        n, d = points.shape
        # Scott's rule on the unit cube, as for a d-dimensional Gaussian kernel density.
        self.sigma = 0.2 * max(n, 1) ** (-1.0 / (d + 4))
        self.eps = eps
        weights = np.ones(n + 1)
        weights[-1] = prior_weight  # the last component is the uniform prior
        self.log_w = np.log(weights / weights.sum())

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` points drawn from the mixture (every axis filled in)."""
        n, d = self.points.shape
        comp = rng.choice(n + 1, size=size, p=np.exp(self.log_w))
        out = rng.random((size, d))  # the prior, and axes a chosen observation did not use
        for row, j in enumerate(comp):
            if j == n:
                continue
            centre = self.points[j]
            for i in self.axes.numeric:
                if not math.isnan(centre[i]):
                    out[row, i] = _truncnorm_draw(rng, centre[i], self.sigma)
            for i, c in zip(self.axes.categorical, self.axes.n_options, strict=True):
                if not math.isnan(centre[i]) and rng.random() >= self.eps:
                    out[row, i] = centre[i]
                else:
                    out[row, i] = (rng.integers(c) + 0.5) / c
        return out

    def log_pdf(self, x: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Log density at each row of ``x`` (m x d), over the axes marked in ``active``."""
        m = x.shape[0]
        n = self.points.shape[0]
        # log kernel of component j at row r, summed over axes: shape (m, n); the prior is 0.
        total = np.zeros((m, n))
        num = self.axes.numeric
        if num.size and n:
            mu = self.points[:, num][None, :, :]  # (1, n, k)
            xv = x[:, num][:, None, :]  # (m, 1, k)
            s = self.sigma
            z = (xv - mu) / s
            log_k = -0.5 * z**2 - math.log(s * math.sqrt(2 * math.pi))
            log_k = log_k - np.log(ndtr((1 - mu) / s) - ndtr(-mu / s))  # truncation to [0, 1]
            use = ~np.isnan(mu) & active[:, num][:, None, :]
            total += np.where(use, log_k, 0.0).sum(axis=2)
        cat = self.axes.categorical
        if cat.size and n:
            c = self.axes.n_options[None, None, :].astype(float)
            obs = np.floor(np.nan_to_num(self.points[:, cat], nan=-1.0) * c[0]).astype(int)[None, :, :]
            xv = np.floor(np.clip(x[:, cat], 0, 1 - 1e-12) * c[0]).astype(int)[:, None, :]
            p = np.where(xv == obs, 1 - self.eps + self.eps / c, self.eps / c)
            log_k = np.log(p * c)  # density per unit length: the option's cell is 1/c wide
            use = (obs >= 0) & active[:, cat][:, None, :]
            total += np.where(use, log_k, 0.0).sum(axis=2)
        comps = np.concatenate([total, np.zeros((m, 1))], axis=1) + self.log_w[None, :]
        top = comps.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(comps - top).sum(axis=1, keepdims=True)))[:, 0]  # type: ignore[no-any-return]


def _truncnorm_draw(rng: np.random.Generator, mu: float, sigma: float) -> float:
    """One draw of N(mu, sigma) truncated to [0, 1], by inverting its CDF."""
    a, b = ndtr(-mu / sigma), ndtr((1 - mu) / sigma)
    u = a + rng.random() * (b - a)
    value = mu + sigma * float(ndtri(min(max(u, 1e-300), 1 - 1e-16)))
    return min(max(value, 0.0), 1.0)
