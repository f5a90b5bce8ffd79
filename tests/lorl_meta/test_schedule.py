"""The pipeline-training reset schedule (Optim4RL, Section 5.1)."""

import numpy as np
import pytest

import lorl_meta as lm


def test_offsets_of_the_paper_figure():
    # Figure 3(a): n = m = 3, one unit reset per iteration, in order.
    np.testing.assert_array_equal(lm.reset_offsets(3, 3), [0, 1, 2])


@pytest.mark.parametrize("n, m", [(1, 5), (2, 2), (4, 3), (8, 4), (512, 256), (512, 512), (5, 9)])
def test_offsets_are_evenly_spaced_integers_over_the_interval(n, m):
    r = lm.reset_offsets(n, m)
    assert r.dtype == np.int32 and r.shape == (n,)
    assert r.min() >= 0 and r.max() <= m - 1
    if n > 1:
        assert r[0] == 0 and r[-1] == m - 1
        # Nearest integers to the evenly spaced reals.
        ideal = np.linspace(0, m - 1, n)
        assert np.all(np.abs(r - ideal) <= 0.5 + 1e-9)
        assert np.all(np.diff(r) >= 0)


@pytest.mark.parametrize("n, m", [(3, 3), (4, 3), (8, 4), (6, 10)])
def test_every_unit_is_reset_exactly_once_per_interval(n, m):
    r = lm.reset_offsets(n, m)
    masks = np.stack([np.asarray(lm.reset_mask(r, t, m)) for t in range(3 * m)])
    counts = masks.reshape(3, m, n).sum(axis=1)
    np.testing.assert_array_equal(counts, np.ones((3, n)))
    # Unit i is reset exactly at the iterations t with t mod m == r_i.
    for t in range(3 * m):
        np.testing.assert_array_equal(masks[t], r == t % m)


@pytest.mark.parametrize("bad", [0, -1])
def test_reset_interval_below_one_is_rejected(bad):
    with pytest.raises(ValueError, match="reset_interval"):
        lm.reset_offsets(4, bad)
    with pytest.raises(ValueError, match="reset_interval"):
        lm.MetaGradientConfig(n_meta_steps=10, reset_interval=bad)
