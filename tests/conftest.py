"""Shared fixtures. No mocks of our own code: real series, real providers, real local servers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from greenkfp.components.carbon import CarbonSeries

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def hourly(values, start: datetime = T0) -> CarbonSeries:
    return CarbonSeries.from_points([(start + timedelta(hours=i), v) for i, v in enumerate(values)])


class FixedClock:
    """A clock for code that asks for "now": returns a set time, advanced by sleeps."""

    def __init__(self, now: datetime):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return FixedClock(datetime(2023, 6, 14, 9, 0, tzinfo=timezone.utc))
