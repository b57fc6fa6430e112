"""The embedded default: hourly TMY3 weather records shipped inside the pvlib wheel, as a TSLib-style CSV.

pvlib installs two Typical Meteorological Year (TMY3) files from NREL's National Solar Radiation
Database in `pvlib/data/`: Greensboro, NC (USAF 723170) and Sand Point, AK (USAF 703165), each
8760 hourly records. TMY months are drawn from different years, so the timestamps are put on one
calendar year (`coerce_year`, local standard time) to make a continuous hourly series. The chosen
variates of the chosen sites become columns `<site>_<variate>` beside one `date` column; columns that
never change (Sand Point's pressure is a constant 1012 mbar in the file) are dropped.

The CSV is written once under `<data_dir>/timeseries/tmy3-<hash>/` with `recipe.json`; the hash covers
the recipe (sites, variates, year, version) and the source files' checksums, so a changed recipe
makes a new entry instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from polyformer.core.errors import ConfigError, DataError

RECIPE_VERSION = 1
SITES = {"greensboro": "723170TYA.CSV", "sand_point": "703165TY.csv"}
VARIATES = {
    "GHI": "GHI (W/m^2)",
    "DNI": "DNI (W/m^2)",
    "DHI": "DHI (W/m^2)",
    "DryBulb": "Dry-bulb (C)",
    "DewPoint": "Dew-point (C)",
    "RHum": "RHum (%)",
    "Pressure": "Pressure (mbar)",
    "Wspd": "Wspd (m/s)",
    "Wdir": "Wdir (degrees)",
    "TotCld": "TotCld (tenths)",
    "OpqCld": "OpqCld (tenths)",
}
DEFAULT_SITES = ("greensboro", "sand_point")
DEFAULT_VARIATES = ("GHI", "DNI", "DHI", "DryBulb", "DewPoint", "RHum", "Pressure", "Wspd")
DEFAULT_TARGET = "greensboro_DryBulb"


def pvlib_data_dir() -> Path:
    """pvlib's installed data folder (where the TMY3 CSVs are)."""
    try:
        import pvlib
    except ImportError as exc:  # pragma: no cover - pvlib is a dependency
        raise DataError("the embedded TMY3 data needs pvlib (pip install pvlib)") from exc
    return Path(pvlib.__file__).parent / "data"


def _check(sites: Sequence[str], variates: Sequence[str]) -> None:
    if not sites or not variates:
        raise ConfigError("data.sites and data.variates need at least one entry each")
    for name, known, what in ((sites, SITES, "site"), (variates, VARIATES, "variate")):
        unknown = [s for s in name if s not in known]
        if unknown:
            raise ConfigError(f"unknown TMY3 {what}(s) {unknown}. Known: {', '.join(known)}")


def read_site(site: str, variates: Sequence[str], coerce_year: int = 2001) -> pd.DataFrame:
    """One site's hourly records as columns `<site>_<variate>`, indexed by naive local standard time."""
    import pvlib

    path = pvlib_data_dir() / SITES[site]
    if not path.is_file():
        raise DataError(f"pvlib has no TMY3 file '{path.name}' in {path.parent}; reinstall pvlib")
    records, _meta = pvlib.iotools.read_tmy3(str(path), coerce_year=coerce_year, map_variables=False)
    frame = records[[VARIATES[v] for v in variates]].astype("float64")
    frame.columns = [f"{site}_{v}" for v in variates]
    frame.index = frame.index.tz_localize(None)
    return frame


def tmy3_frame(
    sites: Sequence[str] = DEFAULT_SITES, variates: Sequence[str] = DEFAULT_VARIATES, coerce_year: int = 2001
) -> tuple[pd.DataFrame, list[str]]:
    """The TSLib-style frame (`date` + variates) and the constant columns that were dropped."""
    _check(sites, variates)
    frame = pd.concat([read_site(s, variates, coerce_year) for s in sites], axis=1, join="inner")
    constant = [c for c in frame.columns if frame[c].nunique() <= 1]
    frame = frame.drop(columns=constant)
    frame.index.name = "date"
    return frame.reset_index(), constant


def recipe(sites: Sequence[str], variates: Sequence[str], coerce_year: int = 2001) -> dict:
    """What the cached CSV is made from; its hash names the cache entry."""
    _check(sites, variates)
    sources = {}
    for s in sites:
        sources[SITES[s]] = hashlib.sha256((pvlib_data_dir() / SITES[s]).read_bytes()).hexdigest()[:16]
    return {"version": RECIPE_VERSION, "sites": list(sites), "variates": list(variates),
            "coerce_year": int(coerce_year), "sources": sources}


def ensure_tmy3(
    data_dir: str | Path,
    sites: Sequence[str] = DEFAULT_SITES,
    variates: Sequence[str] = DEFAULT_VARIATES,
    coerce_year: int = 2001,
) -> Path:
    """The cached CSV for this recipe under `data_dir`, written (atomically) on first use."""
    spec = recipe(sites, variates, coerce_year)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    folder = Path(data_dir).expanduser() / "timeseries" / f"tmy3-{digest}"
    target = folder / "tmy3.csv"
    if target.is_file() and (folder / "recipe.json").is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    frame, dropped = tmy3_frame(sites, variates, coerce_year)
    _atomic_write(target, lambda f: frame.to_csv(f, index=False, date_format="%Y-%m-%d %H:%M:%S"))
    meta = {**spec, "dropped_constant_columns": dropped, "rows": len(frame), "columns": list(frame.columns)}
    _atomic_write(folder / "recipe.json", lambda f: json.dump(meta, f, indent=2))
    return target


def _atomic_write(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
