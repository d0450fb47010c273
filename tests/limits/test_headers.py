"""RateLimit-* and Retry-After headers from decisions."""

from __future__ import annotations

from qaio.limits import Decision, LimitReq, LocalLimiter, Quota, TokenBucket, rate_limit_headers


def test_headers_for_an_accepted_nginx_request() -> None:
    limiter = LocalLimiter("2r/s", burst=5)
    first = limiter.decide("k", now=0)
    assert rate_limit_headers(first, limiter.quota) == {
        "RateLimit-Limit": "6",
        "RateLimit-Remaining": "5",
        "RateLimit-Reset": "0",
    }
    second = limiter.decide("k", now=0.1)  # 0 - 0.2 + 1 = 0.8 of a burst of 5
    assert second.excess == 0.8
    assert rate_limit_headers(second, limiter.quota)["RateLimit-Remaining"] == "4"
    assert rate_limit_headers(second, limiter.quota)["RateLimit-Reset"] == "1"


def test_retry_after_on_rejection_is_whole_seconds_rounded_up() -> None:
    quota = LimitReq.of("10r/m", burst=2).quota
    headers = rate_limit_headers(Decision(False, excess=3.0, retry_after=6.001), quota)
    assert headers["Retry-After"] == "7"
    assert headers["RateLimit-Remaining"] == "0"
    assert rate_limit_headers(Decision(False, excess=2.5, retry_after=0.05), quota)["Retry-After"] == "1"
    assert "Retry-After" not in rate_limit_headers(Decision(True, delay=0.5, excess=2.0), quota)


def test_headers_for_a_token_bucket() -> None:
    bucket = TokenBucket(10, 2)
    headers = rate_limit_headers(bucket.try_acquire(cost=4, now=0), bucket.quota)
    assert headers == {"RateLimit-Limit": "10", "RateLimit-Remaining": "6", "RateLimit-Reset": "2"}
    refused = bucket.try_acquire(cost=8, now=0)
    assert rate_limit_headers(refused, bucket.quota)["Retry-After"] == "1"


def test_rejection_without_retry_after_falls_back_to_reset() -> None:
    headers = rate_limit_headers(Decision(False, excess=3.0), Quota(limit=3, burst=2, rate=1))
    assert headers["Retry-After"] == "3"
