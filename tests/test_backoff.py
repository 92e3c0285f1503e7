"""The retry backoff policy and the ALL sentinel, without a store."""

from __future__ import annotations

import copy
import pickle

import pytest

import queuestore as qs
from queuestore._backoff import RetryBackoff, backoff_policy, check_backoff


def test_delay_grows_by_factor_up_to_max() -> None:
    policy = RetryBackoff(base=1.0, factor=2.0, max=600.0, jitter=0.0)
    assert [policy.delay(n) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert policy.delay(10) == 600.0
    assert policy.delay(100_000) == 600.0, "a huge retry count does not overflow"


def test_jitter_spreads_within_its_bounds() -> None:
    policy = RetryBackoff(base=10.0, factor=1.0, max=10.0, jitter=0.2)
    draws = [policy.delay(0) for _ in range(200)]
    assert all(8.0 <= d <= 12.0 for d in draws)
    assert len(set(draws)) > 1
    assert policy.delay(0, spread=1.2) == pytest.approx(12.0)
    base, factor, most, spread = policy.script_args()
    assert (base, factor, most) == (10.0, 1.0, 10.0)
    assert 0.8 <= spread <= 1.2


def test_none_means_no_policy_and_bad_values_name_the_field() -> None:
    assert backoff_policy("none") is None
    assert backoff_policy(None) is None
    for bad, field in (
        (RetryBackoff(base=0.0), "base"),
        (RetryBackoff(factor=0.5), "factor"),
        (RetryBackoff(base=10.0, max=1.0), "max"),
        (RetryBackoff(jitter=1.5), "jitter"),
    ):
        with pytest.raises(qs.ConfigurationError) as info:
            check_backoff(bad)
        assert info.value.field == f"options.retry_backoff.{field}"


def test_all_is_one_sentinel() -> None:
    assert repr(qs.ALL) == "queuestore.ALL"
    assert qs.AllJobs() is qs.ALL
    assert isinstance(qs.ALL, qs.AllJobs)
    assert copy.deepcopy(qs.ALL) is qs.ALL
    assert pickle.loads(pickle.dumps(qs.ALL)) is qs.ALL
