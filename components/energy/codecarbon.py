"""Energy of a block of work, from CodeCarbon, labelled measured or modeled.

``EnergyTracker`` wraps CodeCarbon's ``OfflineEmissionsTracker`` (or, with ``mode="online"``,
its ``EmissionsTracker``) in a context manager. The result is an ``EnergyMeasurement`` that says
how the figures were produced::

    with EnergyTracker(country_iso_code="GBR", hardware=resolve_profile("n2-standard-4")) as tracker:
        model.fit(X, y)
    tracker.result.energy_kwh, tracker.result.method   # e.g. 3.1e-05, "modeled"

How CodeCarbon gets its figures, and how this module reports them:

* ``method="measured"`` only when every part CodeCarbon tracked was read from hardware energy
  counters on this run: RAPL for the CPU (``intel_rapl`` mode), NVML for NVIDIA GPUs (AMD SMI
  for AMD GPUs); ``"mixed"`` when some were (RAPL for the CPU, the RAM modeled, say). We check
  this from the tracker's hardware objects after the run, not from the platform.
* ``method="modeled"`` when CodeCarbon used a model. Without RAPL, CodeCarbon 3.x uses its
  ``cpu_load`` model: power = TDP x (0.1 + 0.9 x load^3), where load is the whole machine's
  CPU load (psutil) and TDP comes from CodeCarbon's CPU registry (or 4 W per thread for a
  model it does not know, or a generic 85 W) unless the profile gives it. Without psutil it
  uses 50% of TDP. RAM is always modeled. The caveat (:func:`~.model.modeled_caveat`) quotes
  the error band CodeCarbon's documentation gives for its TDP model.
* ``method="unavailable"`` when CodeCarbon failed. A CodeCarbon failure never breaks the
  caller's work: the block runs and the result says why there is no figure. An exception
  raised by the block itself propagates unchanged.

The hardware profile (:class:`~.profiles.HardwareProfile`, the same one SCI uses) is handed
to CodeCarbon through its own knobs, so training's modeled energy rests on the same figures:

* ``cpu_tdp_w`` -> ``force_cpu_power``. CodeCarbon's ``cpu_load`` model then uses this TDP
  instead of its registry guess. The profile is the machine the job runs on, so the TDP is not
  scaled; CodeCarbon charges the fit ``TDP x (its process's CPU time / wall time / CPU count)``
  (``tracking_mode="process"``; a note says when this machine's CPU count differs from the
  profile's ``vcpus``). Process tracking, not the whole machine's load: a training pod shares
  its node, and with the machine's load the same seeded fit was charged 2x more energy when a
  neighbour slowed it down (the machine's power for twice the wall time); its own CPU time does
  not move with its neighbours.
* ``ram_gb`` -> ``force_ram_power`` = ``ram_gb`` x :data:`~.model.TEADS_RAM_W_PER_GB`, the RAM
  model SCI uses, instead of CodeCarbon's DIMM count.
* **Measured wins.** ``force_cpu_power`` switches CodeCarbon's RAPL reading off, so where
  CodeCarbon can read RAPL (or a Raspberry Pi PMIC) the profile's TDP is *not* passed: the CPU
  is measured, a note says the profile's TDP was not applied, and, the RAM being modeled, the
  method is ``"mixed"``.

Everything that changes a figure or could open a network connection is passed to CodeCarbon
explicitly, so a stray ``.codecarbon.config`` (in ``$HOME`` or the working directory) or a
``CODECARBON_*`` environment variable cannot change the result: no PUE/WUE, no forced
intensity, no Electricity Maps token and no HTTP endpoint in offline mode, CSV output only,
``tracking_mode="process"``, ``allow_multiple_runs=True`` (no lock file, no signal handlers).
In offline mode CodeCarbon opens no network connection (checked in the tests with an audit
hook). The online tracker does: it geolocates the machine by IP (geojs.io, then ipinfo.io) and
probes cloud metadata at 169.254.169.254; without network CodeCarbon falls back to Canada /
Quebec, which this module records in ``notes``.

CodeCarbon writes ``emissions.csv`` into ``output_dir`` (created if missing), or into a fresh
temporary directory (kept, so the CSV outlives the block) when ``output_dir`` is None; never
into the working directory. It appends a row per run, so the CSV may hold earlier runs: our
row is the one whose ``run_id`` is ``codecarbon_run_id``.

CodeCarbon's logger (``"codecarbon"``, which does not propagate) is held at ``log_level`` while
the tracker runs and left there; other loggers are untouched. CodeCarbon's ``start()`` and
``stop()`` swallow exceptions and only log them, so this module reads those log records (at
WARNING and above, whatever ``log_level`` shows) to report the reason of a failure. CodeCarbon's
logger is process-wide: do not run several ``EnergyTracker`` blocks at once from different
threads.

No kfp import here; CodeCarbon itself is imported only when a tracker starts.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._checks import positive
from .model import TEADS_RAM_W_PER_GB, modeled_caveat
from .profiles import HardwareProfile

__all__ = ["ZONE_COUNTRY", "EnergyMeasurement", "EnergyTracker", "codecarbon_location"]

UNITS = {
    "energy": "kWh",
    "power": "W",
    "emissions": "g CO2eq",
    "intensity": "gCO2eq/kWh",
    "duration": "s",
    "time": "ISO 8601, UTC",
}

#: Embedded grid zone -> CodeCarbon's offline location (ISO 3166-1 alpha-3 country, region).
#: A region is given only where CodeCarbon's offline data has one (US states from EPA eGRID,
#: Canadian provinces); elsewhere CodeCarbon uses the country's yearly average. US-MIDA-PJM
#: spans 13 states and DC, so it gets the US average rather than one state's; DE-LU is priced
#: as Germany (Luxembourg is a small share of the bidding zone).
ZONE_COUNTRY: dict[str, tuple[str, str | None]] = {
    "AU-NSW": ("AUS", None),
    "AU-VIC": ("AUS", None),
    "BR-SP": ("BRA", None),
    "CA-ON": ("CAN", "ontario"),
    "CL-SIC": ("CHL", None),
    "DE-LU": ("DEU", None),
    "GB": ("GBR", None),
    "IN-WE": ("IND", None),
    "JP-TK": ("JPN", None),
    "KR": ("KOR", None),
    "SG": ("SGP", None),
    "US-CAL-CISO": ("USA", "california"),
    "US-MIDA-PJM": ("USA", None),
    "US-NY-NYIS": ("USA", "new york"),
    "US-TEX-ERCO": ("USA", "texas"),
    "ZA": ("ZAF", None),
}


def codecarbon_location(zone: str) -> tuple[str, str | None]:
    """CodeCarbon's offline ``(country_iso_code, region)`` for an embedded grid zone.

    Raises:
        ValueError: ``zone`` is not one of the embedded zones (the message lists them).
    """
    try:
        return ZONE_COUNTRY[zone]
    except (KeyError, TypeError):
        raise ValueError(
            f"zone {zone!r} has no CodeCarbon location; known zones: {', '.join(sorted(ZONE_COUNTRY))}"
        ) from None


# --------------------------------------------------------------------------- measurement


@dataclass(frozen=True)
class EnergyMeasurement:
    """Energy, power and CodeCarbon's emissions for one tracked block, with how they were got.

    Energies in kWh, powers in W (averages over the run), emissions in grams CO2eq, intensity
    in gCO2eq/kWh, times in UTC. Figures are None when unavailable (or, for the GPU, when
    there is no GPU). ``notes`` lists what CodeCarbon did that a reader should know (fallbacks,
    profile values not applied); ``codecarbon_settings`` the settings passed to CodeCarbon.
    """

    available: bool
    reason: str | None
    method: str
    method_detail: str
    energy_kwh: float | None
    cpu_energy_kwh: float | None
    ram_energy_kwh: float | None
    gpu_energy_kwh: float | None
    cpu_power_w: float | None
    ram_power_w: float | None
    gpu_power_w: float | None
    duration_s: float
    started_at: datetime
    ended_at: datetime
    codecarbon_emissions_g: float | None
    codecarbon_intensity_g_per_kwh: float | None
    country_iso_code: str | None
    codecarbon_region: str | None
    tracker: str
    csv_path: str | None
    codecarbon_version: str
    hardware_profile: dict | None
    notes: tuple[str, ...] = ()
    codecarbon_run_id: str | None = None
    codecarbon_settings: dict | None = None

    @property
    def uncertainty(self) -> str | None:
        return modeled_caveat(self.method, "codecarbon")

    def to_dict(self) -> dict:
        """A JSON-ready dict: ISO 8601 datetimes, plain lists and dicts, a ``units`` entry."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["started_at"] = self.started_at.isoformat()
        data["ended_at"] = self.ended_at.isoformat()
        data["notes"] = list(self.notes)
        data["hardware_profile"] = None if self.hardware_profile is None else dict(self.hardware_profile)
        data["codecarbon_settings"] = None if self.codecarbon_settings is None else dict(self.codecarbon_settings)
        data["uncertainty"] = self.uncertainty
        data["units"] = dict(UNITS)
        return data


# --------------------------------------------------------------------------- tracker

_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
               "error": logging.ERROR, "critical": logging.CRITICAL}
_MODES = ("offline", "online")
_COUNTRY = re.compile(r"^[A-Za-z]{3}$")
_CSV_NAME = "emissions.csv"
_NORDIC = {"SWE": ("SE1", "SE2", "SE3", "SE4"), "NOR": ("NO1", "NO2", "NO3", "NO4", "NO5"), "FIN": ("FI",)}
_COUNTER_CPU_MODES = {"intel_rapl": "RAPL counters", "windows_emi": "Windows Energy Meter Interface (RAPL)",
                      "intel_power_gadget": "Intel Power Gadget"}


class _CodeCarbonFailure(Exception):
    """CodeCarbon did not do what was asked; the message is the reason shown to the user."""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _LogCapture(logging.Filter):
    """A filter on CodeCarbon's logger: keeps WARNING+ records, shows only ``show_level`` and up."""

    def __init__(self, show_level: int):
        super().__init__()
        self.show_level = show_level
        self.records: list[logging.LogRecord] = []
        self._logger = logging.getLogger("codecarbon")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.records.append(record)
        return record.levelno >= self.show_level

    @property
    def capture_level(self) -> int:
        return min(self.show_level, logging.WARNING)

    def install(self) -> None:
        self._logger.addFilter(self)
        self._logger.setLevel(self.capture_level)

    def uninstall(self) -> None:
        self._logger.removeFilter(self)
        self._logger.setLevel(self.show_level)
        self.records = []  # they hold tracebacks

    def mark(self) -> int:
        return len(self.records)

    def swallowed_exception(self, since: int) -> str | None:
        """The first exception CodeCarbon's ``suppress`` decorator logged since ``since``."""
        for record in self.records[since:]:
            if record.exc_info and record.exc_info[1] is not None and record.funcName == "suppress":
                return _describe(record.exc_info[1])
        return None

    def messages(self, since: int = 0, min_level: int = logging.WARNING) -> list[str]:
        out = []
        for record in self.records[since:]:
            if record.levelno >= min_level:
                try:
                    out.append(record.getMessage())
                except Exception:  # a malformed log call inside CodeCarbon
                    out.append(str(record.msg))
        return out


def _codecarbon_version() -> str:
    try:
        from importlib.metadata import version

        return version("codecarbon")
    except Exception:
        return "not installed"


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class EnergyTracker:
    """Context manager around CodeCarbon: ``with EnergyTracker(...) as tracker: work()``,
    then ``tracker.result`` (an ``EnergyMeasurement``).

    Args:
        country_iso_code: ISO 3166-1 alpha-3 country for CodeCarbon's offline intensity (see
            ``codecarbon_location`` for the embedded grid zones). Not used by the online
            tracker, which geolocates the machine.
        region: CodeCarbon offline region where its data has one: a US state or a Canadian
            province (lower case, e.g. ``"california"``), a Nordic bidding zone (``"SE3"``),
            or a Chinese province. Not used by the online tracker.
        mode: ``"offline"`` (``OfflineEmissionsTracker``, no network) or ``"online"``
            (``EmissionsTracker``, needs network to locate the machine).
        output_dir: Where CodeCarbon writes ``emissions.csv`` (created if missing). None: a
            new temporary directory, kept after the block so the CSV can be read.
        project_name: CodeCarbon's project name (a CSV column).
        hardware: The machine's :class:`~.profiles.HardwareProfile` (see the module: its TDP
            and RAM replace CodeCarbon's guesses when it models); None leaves CodeCarbon's own.
        measure_power_secs: CodeCarbon's measurement interval, seconds (> 0).
        log_level: CodeCarbon's log level: debug, info, warning, error (default) or critical.

    Raises:
        ValueError: a bad argument (the message names it and its value). Raised here, before
            any work; CodeCarbon failures later never raise.
    """

    def __init__(
        self,
        *,
        country_iso_code: str = "GBR",
        region: str | None = None,
        mode: str = "offline",
        output_dir: str | os.PathLike | None = None,
        project_name: str = "greenkfp",
        hardware: HardwareProfile | None = None,
        measure_power_secs: float = 1.0,
        log_level: str = "error",
    ):
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
        if not isinstance(country_iso_code, str) or not _COUNTRY.match(country_iso_code):
            raise ValueError(
                f"country_iso_code must be a 3-letter ISO 3166-1 alpha-3 code such as 'GBR', got {country_iso_code!r}"
            )
        if region is not None and (not isinstance(region, str) or not region.strip()):
            raise ValueError(f"region must be None or a non-empty string, got {region!r}")
        if output_dir is not None and not isinstance(output_dir, (str, os.PathLike)):
            raise ValueError(f"output_dir must be None or a path, got {output_dir!r}")
        if output_dir is not None and not os.fspath(output_dir):
            raise ValueError(f"output_dir must be None or a non-empty path, got {output_dir!r}")
        if not isinstance(project_name, str) or not project_name.strip():
            raise ValueError(f"project_name must be a non-empty string, got {project_name!r}")
        positive("measure_power_secs", measure_power_secs)
        if not isinstance(log_level, str) or log_level.lower() not in _LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}")
        if hardware is not None and not isinstance(hardware, HardwareProfile):
            raise ValueError(f"hardware must be a HardwareProfile (see resolve_profile) or None, got {hardware!r}")

        self.mode = mode
        self.country_iso_code = country_iso_code.upper()
        self.region = None if region is None else region.strip()
        if mode == "offline":
            self.region = _check_offline_location(self.country_iso_code, self.region)
        self.output_dir = None if output_dir is None else Path(output_dir).expanduser()
        self.project_name = project_name
        self.hardware = hardware
        self.measure_power_secs = float(measure_power_secs)
        self.log_level = log_level.lower()
        self._result: EnergyMeasurement | None = None
        self._active = False

    # ---------------------------------------------------------------- public

    @property
    def result(self) -> EnergyMeasurement:
        """The measurement, once the ``with`` block has ended."""
        if self._result is None:
            raise RuntimeError("EnergyTracker.result is set when the with block ends")
        return self._result

    def __enter__(self) -> EnergyTracker:
        if self._active:
            raise RuntimeError("an EnergyTracker cannot be entered twice at once")
        self._active = True
        self._result = None
        self._cc = None
        self._failure: str | None = None
        self._notes: list[str] = []
        self._settings: dict | None = None
        self._csv_dir: Path | None = None
        self._capture = _LogCapture(_LOG_LEVELS[self.log_level])
        self._capture.install()
        try:
            self._start_codecarbon()
        except Exception as exc:  # CodeCarbon must never break the caller's work
            reason = str(exc) if isinstance(exc, _CodeCarbonFailure) else _describe(exc)
            self._failure = f"CodeCarbon could not start: {reason}"
            self._stop_quietly()
        self._started_at = datetime.now(timezone.utc)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        duration = time.perf_counter() - self._t0
        ended_at = datetime.now(timezone.utc)
        try:
            if exc_type is not None:
                self._stop_quietly()
                raised = f"the tracked block raised {exc_type.__name__}"
                self._failure = (
                    f"{self._failure}; then {raised}" if self._failure
                    else f"{raised}; CodeCarbon was stopped and its figure dropped"
                )
                self._result = self._unavailable(duration, ended_at)
            else:
                try:
                    self._result = self._finish(duration, ended_at)
                except Exception as exc2:  # never let reading CodeCarbon break the caller
                    self._stop_quietly()
                    self._failure = f"could not read CodeCarbon's result: {_describe(exc2)}"
                    self._result = self._unavailable(duration, ended_at)
        finally:
            self._capture.uninstall()
            self._cc = None
            self._active = False
        return False  # the block's own exception propagates unchanged

    # ---------------------------------------------------------------- start

    def _start_codecarbon(self) -> None:
        self._csv_dir = self._prepare_output_dir()
        settings, tracker_cls = self._codecarbon_settings()
        mark = self._capture.mark()
        self._cc = tracker_cls(**settings)
        if getattr(self._cc, "run_id", None) is None:  # CodeCarbon's __init__ swallows its errors
            raise _CodeCarbonFailure(
                self._capture.swallowed_exception(mark) or f"{tracker_cls.__name__}() did not finish initialising"
            )
        mark = self._capture.mark()
        self._cc.start()
        swallowed = self._capture.swallowed_exception(mark)
        if swallowed or getattr(self._cc, "_start_time", None) is None:
            raise _CodeCarbonFailure(swallowed or "start() did not start the tracker")

    def _codecarbon_settings(self) -> tuple[dict[str, Any], type]:
        """The tracker's class and every setting it gets; records them in ``self._settings``."""
        from codecarbon import EmissionsTracker, OfflineEmissionsTracker
        from codecarbon.output_methods.base_output import OutputMethod

        knobs = self._profile_knobs()
        settings: dict[str, Any] = {
            "project_name": self.project_name,
            "experiment_name": self.project_name,
            "measure_power_secs": self.measure_power_secs,
            "output_dir": str(self._csv_dir),
            "output_file": _CSV_NAME,
            "output_methods": [OutputMethod.CSV],
            "output_handlers": [],
            "on_csv_write": "append",
            "api_call_interval": -1,
            "emissions_endpoint": None,
            "logging_logger": None,
            "metadata": None,
            "tracking_mode": "process",
            "log_level": logging.getLevelName(self._capture.capture_level).lower(),
            "allow_multiple_runs": True,
            "pue": 1.0,
            "wue": 0.0,
            "force_carbon_intensity_g_co2e_kwh": None,
            "force_mode_cpu_load": False,
            "rapl_include_dram": False,
            "rapl_prefer_psys": False,
            "force_cpu_power": knobs.get("force_cpu_power"),
            "force_ram_power": knobs.get("force_ram_power"),
        }
        if self.mode == "offline":
            settings.update(
                country_iso_code=self.country_iso_code,
                region=self.region,
                cloud_provider=None,
                cloud_region=None,
                country_2letter_iso_code=None,
                electricitymaps_api_token="",  # "" (not None): None falls back to a configured token
            )
            tracker_cls = OfflineEmissionsTracker
        else:
            self._notes.append(
                "online tracker: CodeCarbon locates the machine by IP (geojs.io, then ipinfo.io) and probes "
                "cloud metadata (169.254.169.254); country_iso_code and region are not used"
            )
            tracker_cls = EmissionsTracker
        self._settings = {
            **{k: v for k, v in settings.items() if k not in ("output_methods", "output_handlers", "log_level")},
            "output_methods": ["csv"],
            "tracker_class": tracker_cls.__name__,
            **{k: v for k, v in knobs.items() if k not in ("force_cpu_power", "force_ram_power")},
        }
        if self.mode == "offline":
            self._settings.pop("electricitymaps_api_token", None)
        return settings, tracker_cls

    def _prepare_output_dir(self) -> Path:
        if self.output_dir is None:
            return Path(tempfile.mkdtemp(prefix="greenkfp-codecarbon-"))
        path = self.output_dir.absolute()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _profile_knobs(self) -> dict[str, Any]:
        """CodeCarbon settings derived from the hardware profile, with what they are based on."""
        profile = self.hardware
        if profile is None:
            return {"force_cpu_power": None, "force_ram_power": None}
        knobs: dict[str, Any] = {
            "force_cpu_power": None,
            "force_ram_power": profile.ram_gb * TEADS_RAM_W_PER_GB,
            "ram_power_basis": f"profile {profile.name!r} ram_gb={profile.ram_gb:g} GB x {TEADS_RAM_W_PER_GB} W/GB",
        }
        counters = _cpu_counter_backend()
        if counters:  # measured wins: force_cpu_power would replace the counters with a model
            self._notes.append(f"hardware profile cpu_tdp_w not applied: CodeCarbon reads the CPU's {counters} "
                               "(measured), and its force_cpu_power would replace them with a model")
            return knobs
        from codecarbon.core.util import count_cpus

        knobs["force_cpu_power"] = profile.cpu_tdp_w
        knobs["cpu_power_basis"] = f"profile {profile.name!r} cpu_tdp_w={profile.cpu_tdp_w:g} W"
        threads = int(count_cpus())
        if threads != profile.vcpus:
            self._notes.append(
                f"the load CodeCarbon models is this machine's ({threads} CPU threads); the TDP is the profile's, "
                f"for {profile.vcpus} vCPUs: the figure is for the profile's machine only if the job runs on one"
            )
        return knobs

    def _stop_quietly(self) -> None:
        tracker, self._cc = self._cc, None
        if tracker is None or getattr(tracker, "_start_time", None) is None:
            return
        try:
            tracker.stop()
        except Exception:  # noqa: S110 - quiet by design: the block's own outcome matters
            pass

    # ---------------------------------------------------------------- finish

    def _finish(self, duration: float, ended_at: datetime) -> EnergyMeasurement:
        if self._failure is not None:
            return self._unavailable(duration, ended_at)
        tracker = self._cc
        mark = self._capture.mark()
        try:
            emissions_kg = tracker.stop()
        except Exception as exc:
            self._failure = f"CodeCarbon's stop() raised {_describe(exc)}"
            return self._unavailable(duration, ended_at)
        data = getattr(tracker, "final_emissions_data", None)
        if emissions_kg is None or data is None:
            swallowed = self._capture.swallowed_exception(mark)
            self._failure = (
                f"CodeCarbon's stop() failed: {swallowed}" if swallowed else "CodeCarbon's stop() returned no result"
            )
            return self._unavailable(duration, ended_at)
        figures = {
            "energy_consumed": data.energy_consumed, "cpu_energy": data.cpu_energy,
            "ram_energy": data.ram_energy, "gpu_energy": data.gpu_energy, "emissions": emissions_kg,
            "cpu_power": data.cpu_power, "ram_power": data.ram_power, "gpu_power": data.gpu_power,
        }
        bad = {k: v for k, v in figures.items() if _finite(v) is None}
        if bad:
            shown = ", ".join(f"{k}={v!r}" for k, v in bad.items())
            self._failure = f"CodeCarbon returned non-finite figures: {shown}"
            return self._unavailable(duration, ended_at)

        method, detail, has_gpu = _describe_hardware(tracker, self._settings or {})
        self._notes.extend(self._notes_from_logs())
        energy_kwh, emissions_g = float(data.energy_consumed), float(emissions_kg) * 1000.0
        if self._csv_path() is None:
            self._notes.append("CodeCarbon wrote no emissions CSV")
        return self._measurement(
            duration, ended_at, available=True, reason=None, method=method, method_detail=detail,
            energy_kwh=energy_kwh, cpu_energy_kwh=float(data.cpu_energy), ram_energy_kwh=float(data.ram_energy),
            gpu_energy_kwh=float(data.gpu_energy) if has_gpu else None, cpu_power_w=float(data.cpu_power),
            ram_power_w=float(data.ram_power), gpu_power_w=float(data.gpu_power) if has_gpu else None,
            codecarbon_emissions_g=emissions_g,
            codecarbon_intensity_g_per_kwh=emissions_g / energy_kwh if energy_kwh > 0 else None,
            country_iso_code=data.country_iso_code or None, codecarbon_region=data.region or None,
            codecarbon_version=str(data.codecarbon_version or _codecarbon_version()),
            codecarbon_run_id=str(data.run_id) if data.run_id else None,
        )

    def _unavailable(self, duration: float, ended_at: datetime) -> EnergyMeasurement:
        offline = self.mode == "offline"
        return self._measurement(
            duration, ended_at, available=False, reason=self._failure, method="unavailable",
            method_detail="no figure: CodeCarbon did not produce one (see reason)",
            energy_kwh=None, cpu_energy_kwh=None, ram_energy_kwh=None, gpu_energy_kwh=None,
            cpu_power_w=None, ram_power_w=None, gpu_power_w=None,
            codecarbon_emissions_g=None, codecarbon_intensity_g_per_kwh=None,
            country_iso_code=self.country_iso_code if offline else None,
            codecarbon_region=self.region if offline else None,
            codecarbon_version=_codecarbon_version(), codecarbon_run_id=None,
        )

    def _measurement(self, duration: float, ended_at: datetime, **figures: Any) -> EnergyMeasurement:
        """An ``EnergyMeasurement`` with the fields every outcome shares filled in."""
        return EnergyMeasurement(
            **figures, duration_s=duration, started_at=self._started_at, ended_at=ended_at, tracker=self.mode,
            csv_path=self._csv_path(), hardware_profile=None if self.hardware is None else self.hardware.to_dict(),
            notes=tuple(self._notes), codecarbon_settings=self._settings,
        )

    def _csv_path(self) -> str | None:
        csv_file = self._csv_dir / _CSV_NAME if self._csv_dir is not None else None
        return str(csv_file) if csv_file is not None and csv_file.is_file() else None

    def _notes_from_logs(self) -> list[str]:
        notes = []
        messages = self._capture.messages()
        if any("Using 'Canada' as the default value" in m for m in messages):
            notes.append(
                "CodeCarbon could not geolocate this machine (geojs.io and ipinfo.io unreachable) and fell back "
                "to its default location, Canada/Quebec: codecarbon_emissions_g uses Quebec's intensity"
            )
        elif any("resort to using the backup API" in m for m in messages):
            notes.append("CodeCarbon located this machine with its backup service (ipinfo.io)")
        if any("Regional emissions retrieval failed" in m for m in messages):
            notes.append(f"CodeCarbon could not use region {self.region!r} and priced the energy at the country average")
        if any(m.startswith("We do not have data for") for m in messages):
            notes.append("CodeCarbon has no data for this country and priced the energy at its world average")
        errors = [m for m in self._capture.messages(min_level=logging.ERROR)]
        for message in errors[:3]:
            notes.append(f"CodeCarbon logged an error: {message[:300]}")
        return notes


# --------------------------------------------------------------------------- CodeCarbon helpers


def _check_offline_location(country: str, region: str | None) -> str | None:
    """Check the country and region against CodeCarbon's offline data; return the region as
    CodeCarbon spells it. Skipped if CodeCarbon's data cannot be read (the tracker then
    reports its own failure)."""
    try:
        from codecarbon.input import DataSource

        source = DataSource()
        countries = source.get_global_energy_mix_data()
    except Exception:
        return region
    if country not in countries:
        raise ValueError(
            f"country_iso_code {country!r} is not in CodeCarbon's offline data "
            "(codecarbon/data/private_infra/global_energy_mix.json); use an ISO 3166-1 alpha-3 code such as 'GBR'"
        )
    if region is None:
        return None
    if country == "USA":
        known = [k for k in source.get_country_emissions_data("usa") if not k.startswith("_")]
        spelled = region.lower()
    elif country == "CAN":
        known = list(source.get_country_energy_mix_data("can"))
        spelled = region.lower()
    elif country in _NORDIC:
        known = list(_NORDIC[country])
        spelled = region.upper()
    elif country == "CHN":
        return region  # provinces, matched by CodeCarbon under several spellings
    else:
        raise ValueError(
            f"region {region!r} cannot be used for country_iso_code {country!r}: CodeCarbon's offline data has "
            "regions only for USA (states), CAN (provinces), CHN (provinces), SWE, NOR and FIN (bidding zones)"
        )
    if spelled not in known:
        raise ValueError(
            f"region {region!r} is not in CodeCarbon's offline data for {country}; known: {', '.join(sorted(known))}"
        )
    return spelled


def _cpu_counter_backend() -> str | None:
    """The CPU energy counters CodeCarbon would read here instead of modeling, if any.

    Mirrors the Linux part of CodeCarbon's ``ResourceTracker._try_platform_cpu_backend`` (RAPL,
    Raspberry Pi PMIC), which ``force_cpu_power`` bypasses. Elsewhere (Windows EMI, macOS
    powermetrics) a profile TDP takes precedence over counters.
    """
    from codecarbon.core import cpu
    from codecarbon.core.util import is_linux_os

    if is_linux_os() and cpu.is_rapl_available():
        return "RAPL counters"
    if cpu.is_raspberry():
        return "Raspberry Pi PMIC"
    return None


def _tdp_source(cpu_hw, settings: Mapping[str, Any]) -> str:
    if settings.get("force_cpu_power") is not None:
        return f"force_cpu_power from the hardware profile: {settings.get('cpu_power_basis', '')}".rstrip(": ")
    if getattr(cpu_hw, "_is_generic_tdp", False):
        return f"CodeCarbon's generic constant: CPU model {cpu_hw._model!r} not matched"
    try:
        from codecarbon.core import cpu
        from codecarbon.core.hardware_cache import get_cached_tdp

        tdp = get_cached_tdp(cpu)
        if tdp._get_cpu_power_from_registry(tdp.model):
            return f"CodeCarbon's CPU registry value for {tdp.model!r}"
        return (
            f"CodeCarbon's default of {cpu.DEFAULT_POWER_PER_CORE} W per CPU thread: "
            f"{tdp.model!r} is not in its CPU registry"
        )
    except Exception:
        return f"CodeCarbon's estimate for {getattr(cpu_hw, '_model', None)!r}"


def _describe_part(hw, settings: Mapping[str, Any], conf: Mapping[str, Any]) -> tuple[str, str]:
    """``(part, text)`` for one of CodeCarbon's hardware objects; the text says measured or modeled."""
    from codecarbon.external.hardware import CPU, GPU, AppleSiliconChip, Raspberry
    from codecarbon.external.ram import RAM

    if isinstance(hw, CPU):
        mode = getattr(hw, "_mode", "?")
        if mode in _COUNTER_CPU_MODES:
            return "cpu", f"CPU: measured, CodeCarbon '{mode}' mode ({_COUNTER_CPU_MODES[mode]})"
        if mode == "cpu_load":
            formula = ("TDP x (the process's and its children's CPU time / wall time / CPU count)"
                       if getattr(hw, "_tracking_mode", "machine") == "process"
                       else "TDP x (0.1 + 0.9 x load^3), load = the machine-wide CPU load (psutil)")
            return "cpu", (f"CPU: modeled, CodeCarbon 'cpu_load' mode (no RAPL): power = {formula}, "
                           f"TDP = {float(hw._tdp):g} W ({_tdp_source(hw, settings)})")
        if mode == "constant":
            return "cpu", (f"CPU: modeled, CodeCarbon 'constant' mode: 50% of TDP = {float(hw._tdp) * 0.5:g} W "
                           f"({_tdp_source(hw, settings)})")
        return "cpu", f"CPU: CodeCarbon '{mode}' mode"
    if isinstance(hw, RAM):
        forced = getattr(hw, "_force_ram_power", None)
        if forced is not None:
            basis = settings.get("ram_power_basis", "user value")
            return "ram", f"RAM: modeled, fixed {float(forced):g} W ({basis}, passed as force_ram_power)"
        size = conf.get("ram_total_size")
        size_text = f"the machine's {float(size):.1f} GB" if size else "the machine's RAM"
        return "ram", f"RAM: modeled, CodeCarbon RAM model (W per estimated DIMM) for {size_text}"
    if isinstance(hw, GPU):
        try:
            from codecarbon.core import gpu

            backend = "NVML" if gpu.is_nvidia_system() else "AMD SMI"
        except Exception:
            backend = "NVML/AMD SMI"
        return "gpu", f"GPU: measured, {backend} energy counters ({conf.get('gpu_model') or 'GPU'})"
    if isinstance(hw, AppleSiliconChip):
        return ("gpu", "GPU: measured, Apple powermetrics") if hw.chip_part == "GPU" \
            else ("cpu", "CPU: measured, Apple powermetrics")
    if isinstance(hw, Raspberry):
        return ("ram" if hw.chip_part == "RAM" else "cpu"), f"{hw.chip_part}: measured, Raspberry Pi PMIC"
    return "other", f"{type(hw).__name__}: tracked by CodeCarbon"


def _describe_hardware(tracker, settings: Mapping[str, Any]) -> tuple[str, str, bool]:
    """Read, from the tracker's hardware objects, how each figure was produced.

    Returns ``(method, method_detail, has_gpu)``: ``"measured"`` when every part was read from
    counters, ``"modeled"`` when none was, ``"mixed"`` otherwise.
    """
    conf = getattr(tracker, "_conf", {}) or {}
    described = [_describe_part(hw, settings, conf) for hw in getattr(tracker, "_hardware", []) or []]
    texts = {part: [text for p, text in described if p == part] for part in ("cpu", "gpu", "ram")}
    parts = ((texts["cpu"] or ["CPU: not tracked"]) + (texts["gpu"] or ["no GPU"])
             + (texts["ram"] or ["RAM: not tracked"]))
    parts.append(
        f"tracking_mode={settings.get('tracking_mode', 'machine')}, measure_power_secs="
        f"{settings.get('measure_power_secs', '?')}, PUE 1.0"
    )
    measured = {": measured" in text for _, text in described}
    method = "mixed" if len(measured) > 1 else "measured" if measured == {True} else "modeled"
    caveat = modeled_caveat(method, "codecarbon")
    if caveat:
        parts.append(caveat)
    return method, "; ".join(parts), bool(texts["gpu"])
