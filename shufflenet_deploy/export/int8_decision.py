"""Is an int8 accuracy target met, missed, or undecided on N images? A decision a user can trust.

The int8 target (int8_repair.Int8Target) is checked on a finite set of evaluation images, so a one-image
difference (0.37 pt on the bundled 269-image val split) is within noise. Each criterion is decided by a one-sided
95% confidence bound, never by the point estimate alone:

- **agreement** (top-1 agreement of int8 with fp32): the disagreements are a binomial count; the Clopper-Pearson
  (exact) bound of the disagreement rate is compared with 1 - target. 0 disagreements in 269 images bound the
  rate by 1.1% only, so a 99% target is undecided there (299 images decide it).
- **drop** (fp32 top-1 minus int8 top-1, points): a paired difference over the same images. Only the images where
  fp32 and int8 disagree on correctness move it (lost: fp32 right, int8 wrong; gained: the reverse), the pairs
  McNemar's test looks at; the bound is the Agresti-Min adjusted Wald interval for paired proportions (half an
  image added to each cell, so zero lost images still leave an honest width).

A criterion is "met" when the whole bound is inside the target, "missed" when the whole bound is outside, else
"undecided at N images", with the number of images that would decide it if the rates held. The repair
(int8_repair.py) acts only on decided differences: it never ships a slower artifact on an undecided one.
"""
from __future__ import annotations

import math
from ..int8_records import Verdict

ALPHA = 0.05  # one-sided: 95% confidence
_Z = 1.6448536269514722  # the standard normal's 95th percentile
MAX_IMAGES = 10_000_000


def _log_binom_pmf(k: int, n: int, p: float) -> float:
    if p <= 0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1:
        return 0.0 if k == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return min(1.0, sum(math.exp(_log_binom_pmf(i, n, p)) for i in range(k + 1)))


def _bisect(f, lo: float = 0.0, hi: float = 1.0) -> float:
    """The p in [lo, hi] where the decreasing f crosses 0."""
    for _ in range(60):
        mid = (lo + hi) / 2
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def rate_bounds(k: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Clopper-Pearson one-sided (1 - alpha) lower and upper bounds of a binomial rate k/n."""
    lower = 0.0 if k == 0 else _bisect(lambda p: alpha - (1 - binom_cdf(k - 1, n, p)))
    upper = 1.0 if k == n else _bisect(lambda p: binom_cdf(k, n, p) - alpha)
    return lower, upper


def drop_bounds(lost: int, gained: int, n: int, z: float = _Z) -> tuple[float, float]:
    """Agresti-Min adjusted Wald bounds of the paired difference (lost - gained) / n."""
    b, c, m = lost + 0.5, gained + 0.5, n + 2
    diff = (b - c) / m
    se = math.sqrt(max(b + c - (b - c) ** 2 / m, 0.0)) / m
    return diff - z * se, diff + z * se


def _state(bound: tuple[float, float], good_below: float) -> str:
    """met when the whole bound is at or below the limit, missed when above, else undecided."""
    if bound[1] <= good_below + 1e-12:
        return "met"
    if bound[0] > good_below + 1e-12:
        return "missed"
    return "undecided"


def _needed(decide, n: int) -> int | None:
    """The smallest image count >= n at which decide(count) is decided (the rates held), None within MAX_IMAGES."""
    hi = n
    while decide(hi) == "undecided":
        hi *= 2
        if hi > MAX_IMAGES:
            return None
    lo = max(n, hi // 2)
    while lo < hi:
        mid = (lo + hi) // 2
        if decide(mid) == "undecided":
            lo = mid + 1
        else:
            hi = mid
    return hi


def agreement_verdict(disagree: int, n: int, target: float) -> Verdict:
    """Agreement of at least TARGET (a fraction) with `disagree` of n images disagreeing."""
    limit = 1 - target

    def decide(count: int) -> str:
        k = round(disagree * count / n)
        return _state(rate_bounds(k, count), limit)

    lo, hi = rate_bounds(disagree, n)
    state = _state((lo, hi), limit)
    needed = None
    if state == "undecided" and disagree / n != limit:
        needed = _needed(decide, n + 1)
    return Verdict("agreement", state, 1 - disagree / n, (1 - hi, 1 - lo), n, needed)


def drop_verdict(lost: int, gained: int, n: int, target: float) -> Verdict:
    """A top-1 drop of at most TARGET (points/100): lost / gained = images only fp32 / only int8 got right."""
    def decide(count: int) -> str:
        scale = count / n
        return _state(drop_bounds(round(lost * scale), round(gained * scale), count), target)

    bound = drop_bounds(lost, gained, n)
    state = _state(bound, target)
    needed = None
    if state == "undecided" and (lost - gained) / n != target:
        needed = _needed(decide, n + 1)
    return Verdict("drop", state, (lost - gained) / n, bound, n, needed)


def combine(verdicts: list[Verdict]) -> str:
    """missed if any criterion is missed, met if all are met, else undecided."""
    states = {v.state for v in verdicts}
    return "missed" if "missed" in states else "met" if states == {"met"} else "undecided"
