"""Calendar time features from `freq`, as Time-Series-Library's `timeF` encoding (`timeenc=1`).

Each feature is a calendar field scaled to [-0.5, 0.5]; which fields are used depends on the
sampling frequency, coarsest data getting the fewest:

| freq                   | features                                                        |
|------------------------|-----------------------------------------------------------------|
| s (secondly)           | second-of-minute, minute-of-hour, hour-of-day, day-of-week, day-of-month, day-of-year |
| t / min (minutely)     | minute-of-hour, hour-of-day, day-of-week, day-of-month, day-of-year |
| h (hourly)             | hour-of-day, day-of-week, day-of-month, day-of-year             |
| d, b (daily, business) | day-of-week, day-of-month, day-of-year                          |
| w (weekly)             | day-of-month, week-of-year                                      |
| m, q (monthly, quarterly) | month-of-year                                                |
| y, a (yearly)          | none                                                            |

A multiple such as `15min` or `3h` uses the features of its unit.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from polyformer.core.errors import ConfigError


def _second(d):
    return d.second / 59.0 - 0.5


def _minute(d):
    return d.minute / 59.0 - 0.5


def _hour(d):
    return d.hour / 23.0 - 0.5


def _weekday(d):
    return d.dayofweek / 6.0 - 0.5


def _monthday(d):
    return (d.day - 1) / 30.0 - 0.5


def _yearday(d):
    return (d.dayofyear - 1) / 365.0 - 0.5


def _month(d):
    return (d.month - 1) / 11.0 - 0.5


def _week(d):
    return (d.isocalendar().week.to_numpy(dtype=np.float64) - 1) / 52.0 - 0.5


_DAILY = [_weekday, _monthday, _yearday]
FEATURES = {
    "s": [_second, _minute, _hour, *_DAILY],
    "t": [_minute, _hour, *_DAILY],
    "h": [_hour, *_DAILY],
    "d": _DAILY,
    "b": _DAILY,
    "w": [_monthday, _week],
    "m": [_month],
    "q": [_month],
    "y": [],
}
_UNITS = {"min": "t", "t": "t", "s": "s", "sec": "s", "h": "h", "d": "d", "b": "b", "w": "w",
          "m": "m", "ms": "m", "me": "m", "q": "q", "qs": "q", "qe": "q", "y": "y", "a": "y", "ys": "y",
          "ye": "y"}


def freq_unit(freq: str) -> str:
    """The unit letter of a frequency string: '15min' -> 't', 'h' -> 'h', 'W-SUN' -> 'w'."""
    match = re.fullmatch(r"\s*\d*\s*([A-Za-z]+)(-[A-Za-z]+)?\s*", str(freq))
    unit = match.group(1).lower() if match else None
    if unit not in _UNITS:
        raise ConfigError(
            f"unknown freq '{freq}'. Use s, t (or min), h, d, b, w, m, q or y, optionally with a multiple "
            "such as 15min or 3h (Time-Series-Library's --freq)."
        )
    return _UNITS[unit]


def n_time_features(freq: str) -> int:
    """How many time features `freq` gives."""
    return len(FEATURES[freq_unit(freq)])


def time_features(dates, freq: str) -> np.ndarray:
    """Time features of `dates` as float32 `[T, F]` (F = `n_time_features(freq)`)."""
    index = pd.DatetimeIndex(dates)
    feats = FEATURES[freq_unit(freq)]
    if not feats:
        return np.zeros((len(index), 0), dtype=np.float32)
    return np.stack([np.asarray(f(index), dtype=np.float64) for f in feats], axis=1).astype(np.float32)
