"""Every option of the training pipeline, checked up front by its own area's validator."""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

_COUNTRY = re.compile(r"[A-Za-z]{3}")


def _option(name: str, check, *args) -> None:
    """Run one area's check; its error, whatever its type, becomes a ValueError naming the option."""
    try:
        check(*args)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        raise ValueError(message if name in message else f"{name}: {message}") from None


def _positive_number(name: str, value: Any, *, whole: bool = False, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value >= 0 if allow_zero else value > 0) and (not whole or float(value).is_integer())
    if not ok:
        kind = "a whole number" if whole else "a finite number"
        raise ValueError(f"{name} must be {kind} {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def check_training_options(
    *,
    test_size: float = 0.25,
    seed: int = 0,
    fit_threads: int = 1,
    tracker: str = "offline",
    country_iso_code: str = "",
    hardware_profile: str = "n2-standard-4",
    hardware_overrides: Mapping[str, Any] | None = None,
    variant_names: Sequence[str] = ("fp32",),
    tolerance_points: float = 1.0,
    functional_unit_size: int = 1000,
    expected_lifetime_inferences: float = 1e8,
    max_seconds_per_variant: float = 3.0,
    intensity_basis: str = "annual_average",
    selection_rule: str = "knee",
    selection_weights: Mapping[str, float] | None = None,
    selection_constraints: Mapping[str, Any] | None = None,
    on_no_candidate: str = "fail",
    deploy_name: str = "greenkfp-model",
    deploy_namespace: str = "default",
    deploy_region: str = "GB",
    deploy_service_account: str = "",
) -> None:
    """Check the training pipeline's options (names as in ``greenkfp.components.parameters``).

    Raises:
        ValueError: the first bad option, named with its value.
    """
    from greenkfp.components.data.datasets import _check_split_params
    from greenkfp.components.energy import resolve_profile
    from greenkfp.components.quantization.quantize import check_variants
    from greenkfp.components.parameters import check_fit_threads, parse_intensity_basis
    from greenkfp.components.selection.select import (
        DEFAULT_OBJECTIVES,
        RULES,
        Constraints,
        normalise_weights,
    )

    _check_split_params(test_size, seed)  # its messages name test_size or seed themselves
    check_fit_threads(fit_threads)
    if tracker not in ("offline", "online"):
        raise ValueError(f"tracker must be offline or online, got {tracker!r}")
    if country_iso_code and not _COUNTRY.fullmatch(country_iso_code):
        raise ValueError(f"country_iso_code must be an ISO 3166-1 alpha-3 code such as GBR, got {country_iso_code!r}")
    _option("hardware_overrides", resolve_profile, hardware_profile, dict(hardware_overrides or {}))
    names = list(variant_names)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"variant_names must be unique; repeated: {', '.join(repeated)}")
    _option("variant_names", check_variants, names)
    _positive_number("tolerance_points", tolerance_points, allow_zero=True)
    _positive_number("functional_unit_size", functional_unit_size, whole=True)
    _positive_number("expected_lifetime_inferences", expected_lifetime_inferences, allow_zero=True)
    _positive_number("max_seconds_per_variant", max_seconds_per_variant)
    parse_intensity_basis(intensity_basis)
    if selection_rule not in RULES:
        raise ValueError(f"selection_rule must be one of {', '.join(RULES)}, got {selection_rule!r}")
    constraints = dict(selection_constraints or {})
    unknown = sorted(set(constraints) - set(Constraints.__dataclass_fields__))
    if unknown:
        raise ValueError(f"selection_constraints has unknown field(s) {', '.join(unknown)}; "
                         f"known: {', '.join(Constraints.__dataclass_fields__)}")
    _option("selection_constraints", lambda: Constraints(**constraints))
    _option("selection_weights", normalise_weights, dict(selection_weights) if selection_weights else None,
            DEFAULT_OBJECTIVES, selection_rule)
    if on_no_candidate not in ("fail", "block"):
        raise ValueError(f"on_no_candidate must be fail or block, got {on_no_candidate!r}")
    from greenkfp.components.serving.manifests import check_pipeline_knobs

    check_pipeline_knobs(hardware_profile=hardware_profile, hardware_overrides=dict(hardware_overrides or {}),
                         deploy_name=deploy_name, deploy_namespace=deploy_namespace, deploy_region=deploy_region,
                         deploy_service_account=deploy_service_account)
