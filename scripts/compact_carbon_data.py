"""Compact the shared hourly carbon-intensity CSVs into the package's embedded data file.

Reads ``../shared/data/carbon_intensity/ZONE/ZONE_YEAR_hourly.csv`` (Electricity Maps data,
ODbL 1.0) and writes ``components/carbon/data/intensity_hourly.npz``: one row per zone, one
column per hour from the first hour of the data, values in centi-gCO2eq/kWh as uint32 so the
round trip is exact. The attribution travels beside it in ``components/carbon/data/NOTICE.md``.

Usage: python scripts/compact_carbon_data.py [--source DIR]
"""

from __future__ import annotations

import argparse
import csv
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "carbon_intensity"
TARGET = ROOT / "components" / "carbon" / "data"
COLUMNS = {
    "lifecycle": "Carbon Intensity gCO\u2082eq/kWh (LCA)",
    "direct": "Carbon Intensity gCO\u2082eq/kWh (direct)",
}


def read_zone(zone_dir: Path) -> tuple[list[datetime], dict[str, list[int]], bool]:
    hours: list[datetime] = []
    values: dict[str, list[int]] = {name: [] for name in COLUMNS}
    estimated = True
    for path in sorted(zone_dir.glob("*_hourly.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                hours.append(datetime.fromisoformat(row["Datetime (UTC)"]).replace(tzinfo=timezone.utc))
                for name, column in COLUMNS.items():
                    values[name].append(round(float(row[column]) * 100))
                estimated &= row["Data Estimated"].strip().lower() == "true"
    return hours, values, estimated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    args = parser.parse_args()

    zones = sorted(p.name for p in args.source.iterdir() if p.is_dir())
    first_hours = None
    arrays: dict[str, list[list[int]]] = {name: [] for name in COLUMNS}
    fully_estimated = []
    for zone in zones:
        hours, values, estimated = read_zone(args.source / zone)
        steps = {int((b - a).total_seconds()) for a, b in zip(hours, hours[1:])}
        if steps != {3600}:
            raise SystemExit(f"{zone}: hours are not contiguous (steps seen: {sorted(steps)})")
        if first_hours is None:
            first_hours = (hours[0], len(hours))
        elif (hours[0], len(hours)) != first_hours:
            raise SystemExit(f"{zone}: covers {hours[0]} + {len(hours)}h, expected {first_hours}")
        for name in COLUMNS:
            arrays[name].append(values[name])
        fully_estimated.append(estimated)

    TARGET.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        TARGET / "intensity_hourly.npz",
        zones=np.array(zones),
        start_epoch_s=np.int64(first_hours[0].timestamp()),
        fully_estimated=np.array(fully_estimated),
        **{name: np.array(rows, dtype=np.uint32) for name, rows in arrays.items()},
    )
    shutil.copyfile(args.source / "NOTICE.md", TARGET / "NOTICE.md")
    print(f"wrote {len(zones)} zones x {first_hours[1]} hours to {TARGET / 'intensity_hourly.npz'}")


if __name__ == "__main__":
    main()
