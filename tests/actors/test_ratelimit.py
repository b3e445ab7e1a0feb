from __future__ import annotations

from actors.ratelimit import SlidingWindowLimiter


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_allows_up_to_the_limit_in_the_window_then_refuses() -> None:
    now = FakeTime()
    limiter = SlidingWindowLimiter(3, 60, now)
    assert [limiter.allow("u") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("other")  # keys are independent
    now.t += 60.001
    assert limiter.allow("u")


def test_window_slides_rather_than_resetting() -> None:
    now = FakeTime()
    limiter = SlidingWindowLimiter(2, 10, now)
    assert limiter.allow("u")
    now.t += 6
    assert limiter.allow("u")
    now.t += 5  # the first attempt left the window, the second has not
    assert limiter.allow("u")
    assert not limiter.allow("u")
    assert 0 < limiter.retry_after("u") <= 10


def test_block_holds_for_its_duration() -> None:
    now = FakeTime()
    limiter = SlidingWindowLimiter(1, 10, now, block_seconds=100)
    assert limiter.allow("ip")
    assert not limiter.allow("ip")
    now.t += 50
    assert not limiter.allow("ip")
    now.t += 51
    assert limiter.allow("ip")


def test_zero_disables_and_prune_forgets_idle_keys() -> None:
    now = FakeTime()
    assert all(SlidingWindowLimiter(0, 1, now).allow("x") for _ in range(100))
    limiter = SlidingWindowLimiter(5, 1, now)
    limiter.allow("a")
    now.t += 2
    assert limiter.prune() == 1
    assert limiter.hits == {}
