"""A Parzen (kernel mixture) density over the unit cube of a space, with inactive axes.

Numeric axes (Float, Int) get Gaussian kernels truncated to [0, 1]; Choice axes a
categorical kernel that keeps the observed option with probability ``1 - eps``;
Fixed axes are left out. One kernel per observation, plus one uniform component
(the prior), all of equal weight.

Densities are taken over the axes *active in the point evaluated*, whatever the
observations used: an observation that did not use an axis contributes the uniform
density there. Two mixtures are therefore always compared on the same axes, which is
what the ratio l(x) / g(x) needs when conditional parameters switch axes on and off.

Joint (``univariate=False``): one kernel per observation over all axes at once, so the
density keeps the observations' combinations of values. Univariate: one mixture per
axis and their product, so each axis is modelled (and sampled) on its own, as the
original TPE does; it needs fewer observations to be informative on each axis.
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

    def __init__(
        self, points: np.ndarray, axes: Axes, *, eps: float, prior_weight: float = 1.0, univariate: bool = False
    ) -> None:
        self.points = points
        self.axes = axes
        self.univariate = univariate
        n, d = points.shape
        # Scott's rule on the unit cube, for a d-dimensional (or one-dimensional) Gaussian kernel density.
        self.sigma = 0.2 * max(n, 1) ** (-1.0 / ((1 if univariate else d) + 4))
        self.eps = eps
        weights = np.ones(n + 1)
        weights[-1] = prior_weight  # the last component is the uniform prior
        self.log_w = np.log(weights / weights.sum())

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` points drawn from the mixture (every axis filled in)."""
        n, d = self.points.shape
        # A component per draw (joint) or per draw and axis (univariate).
        comp = rng.choice(n + 1, size=(size, d) if self.univariate else size, p=np.exp(self.log_w))
        out = rng.random((size, d))  # the prior, and axes a chosen observation did not use
        if self.univariate:
            for row in range(size):
                for i in self.axes.numeric:
                    self._draw_numeric(rng, out, row, i, comp[row, i])
                for i, c in zip(self.axes.categorical, self.axes.n_options, strict=True):
                    self._draw_option(rng, out, row, i, c, comp[row, i])
            return out
        for row, j in enumerate(comp):
            if j == n:
                continue
            for i in self.axes.numeric:
                self._draw_numeric(rng, out, row, i, j)
            for i, c in zip(self.axes.categorical, self.axes.n_options, strict=True):
                self._draw_option(rng, out, row, i, c, j)
        return out

    def _draw_numeric(self, rng: np.random.Generator, out: np.ndarray, row: int, axis: int, j: int) -> None:
        """Draw ``out[row, axis]`` from component j's kernel (left uniform for the prior
        and for an observation that did not use the axis)."""
        if j < len(self.points) and not math.isnan(self.points[j, axis]):
            out[row, axis] = _truncnorm_draw(rng, self.points[j, axis], self.sigma)

    def _draw_option(self, rng: np.random.Generator, out: np.ndarray, row: int, axis: int, c: int, j: int) -> None:
        """Draw a categorical ``out[row, axis]`` (c options) from component j's kernel."""
        if j < len(self.points) and not math.isnan(self.points[j, axis]) and rng.random() >= self.eps:
            out[row, axis] = self.points[j, axis]
        else:
            out[row, axis] = (rng.integers(c) + 0.5) / c

    def log_pdf(self, x: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Log density at each row of ``x`` (m x d), over the axes marked in ``active``."""
        m = x.shape[0]
        n, d = self.points.shape
        # log kernel of component j at row r and axis a: shape (m, n, d); the prior is 0.
        total = np.zeros((m, n, d))
        num = self.axes.numeric
        if num.size and n:
            mu = self.points[:, num][None, :, :]  # (1, n, k)
            xv = x[:, num][:, None, :]  # (m, 1, k)
            s = self.sigma
            z = (xv - mu) / s
            log_k = -0.5 * z**2 - math.log(s * math.sqrt(2 * math.pi))
            log_k = log_k - np.log(ndtr((1 - mu) / s) - ndtr(-mu / s))  # truncation to [0, 1]
            use = ~np.isnan(mu) & active[:, num][:, None, :]
            total[:, :, num] = np.where(use, log_k, 0.0)
        cat = self.axes.categorical
        if cat.size and n:
            c = self.axes.n_options[None, None, :].astype(float)
            obs = np.floor(np.nan_to_num(self.points[:, cat], nan=-1.0) * c[0]).astype(int)[None, :, :]
            xv = np.floor(np.clip(x[:, cat], 0, 1 - 1e-12) * c[0]).astype(int)[:, None, :]
            p = np.where(xv == obs, 1 - self.eps + self.eps / c, self.eps / c)
            log_k = np.log(p * c)  # density per unit length: the option's cell is 1/c wide
            use = (obs >= 0) & active[:, cat][:, None, :]
            total[:, :, cat] = np.where(use, log_k, 0.0)
        if not self.univariate:  # one joint mixture
            return _log_mix(total.sum(axis=2), self.log_w)
        # the product of one mixture per axis; an inactive axis adds nothing
        per_axis = _log_mix(total.transpose(0, 2, 1).reshape(m * d, n), self.log_w).reshape(m, d)
        return np.where(active, per_axis, 0.0).sum(axis=1)  # type: ignore[no-any-return]


def _log_mix(log_k: np.ndarray, log_w: np.ndarray) -> np.ndarray:
    """log sum_j w_j k_j per row of ``log_k`` (rows x n kernels; the uniform prior, whose
    log density is 0, is the last weight)."""
    comps = np.concatenate([log_k, np.zeros((log_k.shape[0], 1))], axis=1) + log_w[None, :]
    top = comps.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(comps - top).sum(axis=1, keepdims=True)))[:, 0]  # type: ignore[no-any-return]


def _truncnorm_draw(rng: np.random.Generator, mu: float, sigma: float) -> float:
    """One draw of N(mu, sigma) truncated to [0, 1], by inverting its CDF."""
    a, b = ndtr(-mu / sigma), ndtr((1 - mu) / sigma)
    u = a + rng.random() * (b - a)
    value = mu + sigma * float(ndtri(min(max(u, 1e-300), 1 - 1e-16)))
    return min(max(value, 0.0), 1.0)
