import pytest

from dualctl.eval.stats import difference_interval, mcnemar_exact_p, rate, wilson_interval


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
# method 3 (Wilson score, no continuity correction).
@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
    ],
)
def test_wilson_matches_published_values(successes, trials, low, high):
    got_low, got_high = wilson_interval(successes, trials)
    assert got_low == pytest.approx(low, abs=6e-5)
    assert got_high == pytest.approx(high, abs=6e-5)


def test_wilson_is_symmetric_and_inside_unit_interval():
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=6e-5)
    assert wilson_interval(3, 50) == pytest.approx(
        tuple(1 - x for x in wilson_interval(47, 50)[::-1])
    )
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_narrows_with_more_trials():
    assert rate(25, 50).high - rate(25, 50).low > rate(250, 500).high - rate(250, 500).low


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


# Newcombe (1998), "Interval estimation for the difference between independent proportions",
# example (a): 56/70 vs 48/80, method 10 gives 0.0524 to 0.3339.
def test_newcombe_difference_matches_published_values():
    low, high = difference_interval(rate(56, 70), rate(48, 80))
    assert low == pytest.approx(0.0524, abs=6e-5)
    assert high == pytest.approx(0.3339, abs=6e-5)
    # Example (h): 0/10 vs 0/20 -> -0.1611 to 0.2775.
    low, high = difference_interval(rate(0, 10), rate(0, 20))
    assert (low, high) == pytest.approx((-0.1611, 0.2775), abs=6e-5)


@pytest.mark.parametrize(
    ("lost", "gained", "p"),
    [
        (8, 3, 464 / 2048),  # 2 * P(X <= 3), X ~ Binomial(11, 1/2)
        (10, 0, 2 / 1024),
        (3, 3, 1.0),  # the doubled tail passes 1: capped
        (0, 0, 1.0),  # every episode agrees: no evidence either way
    ],
)
def test_mcnemar_exact_p_is_the_two_sided_binomial_tail_of_the_discordant_pairs(lost, gained, p):
    assert mcnemar_exact_p(lost, gained) == pytest.approx(p)
    assert mcnemar_exact_p(gained, lost) == pytest.approx(p)


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError, match="lost=-1"):
        mcnemar_exact_p(-1, 2)
