"""export/int8_decision.py: an int8 target is met, missed or undecided by a 95% bound, never by one image.

Known values: Clopper-Pearson's rule of three (0 of n -> upper bound 1 - 0.05^(1/n)), the bundled val split's
269 images (one image = 0.37 pt), and the counts the repair's proof models produce.
"""
from __future__ import annotations

import math

import pytest

from shufflenet_deploy.export.int8_decision import (agreement_verdict, binom_cdf, combine, drop_bounds,
                                                     drop_verdict, rate_bounds)


def test_the_bounds_are_the_textbook_ones():
    assert rate_bounds(0, 269)[1] == pytest.approx(1 - 0.05 ** (1 / 269), rel=1e-6)
    assert rate_bounds(269, 269)[0] == pytest.approx(0.05 ** (1 / 269), rel=1e-6)
    lo, hi = rate_bounds(7, 269)
    assert binom_cdf(7, 269, hi) == pytest.approx(0.05, abs=1e-6)          # the exact one-sided bounds
    assert 1 - binom_cdf(6, 269, lo) == pytest.approx(0.05, abs=1e-6)
    assert binom_cdf(3, 10, 0.5) == pytest.approx(176 / 1024)
    lo, hi = drop_bounds(0, 0, 269)                                       # Agresti-Min: width without errors
    assert lo == pytest.approx(-hi) and hi == pytest.approx(1.6448536 * math.sqrt(1) / 271, rel=1e-6)


@pytest.mark.parametrize("disagree, n, target, state, needed", [
    (0, 269, 0.99, "undecided", 299),     # a perfect run on the bundled val split cannot show 99%
    (0, 299, 0.99, "met", None),
    (7, 269, 0.99, "missed", None),       # 2.6% of 269 disagree: decided
    (2, 269, 0.99, "undecided", None),    # 0.74%: needs thousands (checked below)
    (0, 1258, 0.99, "met", None),
])
def test_agreement(disagree, n, target, state, needed):
    v = agreement_verdict(disagree, n, target)
    assert v.state == state and v.images == n
    if needed:
        assert v.needed == needed
    if state == "undecided":
        assert v.needed and v.needed > n and "undecided at %d images" % n in v.text()
        at = agreement_verdict(round(disagree * v.needed / n), v.needed, target)
        assert at.state != "undecided"                                      # the count it names decides it
    assert v.bound[0] <= v.observed <= v.bound[1]


def test_the_drop_is_decided_on_the_images_that_changed():
    assert drop_verdict(7, 0, 269, 0.005).state == "missed"               # 2.6 pt lost: decided
    assert drop_verdict(2, 0, 269, 0.005).state == "undecided"            # 0.74 pt: one image above the target
    assert drop_verdict(0, 0, 269, 0.005).state == "undecided"            # nothing lost, still not 0.5 pt sure
    assert drop_verdict(0, 0, 1258, 0.005).state == "met"
    assert drop_verdict(9, 9, 269, 0.005).observed == 0                   # lost and gained cancel in the point
    assert drop_verdict(9, 9, 269, 0.005).state == "undecided"            # ... not in the noise
    v = drop_verdict(1, 0, 269, 0.005)
    assert v.needed and drop_verdict(round(v.needed / 269), 0, v.needed, 0.005).state != "undecided"


def test_combine():
    met, missed, open_ = (agreement_verdict(0, 1258, .99), agreement_verdict(7, 269, .99),
                          agreement_verdict(0, 269, .99))
    assert combine([met, met]) == "met" and combine([met, open_]) == "undecided"
    assert combine([open_, missed]) == "missed"
