"""The PromQL queries the autoscaling policy reads, in one place.

``greenkfp serve`` exports (``components/serving/metrics.py``) a request counter
``greenkfp_inference_requests_total{model,outcome}``, a latency histogram
``greenkfp_inference_request_duration_seconds{model}`` and an energy counter
``greenkfp_inference_energy_joules_total{model,method}`` (``method`` is ``measured`` or
``modeled``). The queries below turn them into the three signals a replica-count policy needs:

* request rate, requests per second, summed over the pods of a model;
* the 95th percentile latency, seconds, over the pods of a model (from the histogram's buckets,
  so it is an estimate within a bucket's width);
* power per pod, watts: the rate of the energy counter (joules per second), one series per pod
  and method, so a dashboard can put measured and modeled power apart.

Each is a template with ``{selector}`` (label matchers, e.g. ``model="digits"``) and ``{window}``
(a range such as ``30s`` or ``1m``; at least 4 scrape intervals); :func:`query` fills them and
checks both. The integration test (``tests/test_serving_prometheus.py``) runs these very strings
against a real Prometheus scraping a real server.
"""

from __future__ import annotations

import re

__all__ = ["REQUEST_RATE", "P95_LATENCY", "POWER_PER_POD", "ERROR_RATE", "QUERIES", "query"]

#: Requests answered per second (all outcomes), summed over the model's pods.
REQUEST_RATE = 'sum(rate(greenkfp_inference_requests_total{{{selector}}}[{window}]))'
#: Requests answered with an error (4xx or 5xx) per second, summed over the model's pods.
ERROR_RATE = 'sum(rate(greenkfp_inference_requests_total{{{selector}{sep}outcome!="success"}}[{window}]))'
#: The 95th percentile of request latency, seconds, over the model's pods (histogram buckets).
P95_LATENCY = ('histogram_quantile(0.95, sum by (le) '
               '(rate(greenkfp_inference_request_duration_seconds_bucket{{{selector}}}[{window}])))')
#: Power per pod, watts (joules per second), one series per pod (``instance``) and ``method``.
POWER_PER_POD = 'sum by (instance, method) (rate(greenkfp_inference_energy_joules_total{{{selector}}}[{window}]))'

#: The queries by name (the autoscaling policy's signals).
QUERIES = {"request_rate": REQUEST_RATE, "error_rate": ERROR_RATE, "p95_latency_s": P95_LATENCY,
           "power_per_pod_w": POWER_PER_POD}

_WINDOW = re.compile(r"^[1-9][0-9]*(ms|s|m|h)$")
_MATCHER = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*(=|!=|=~|!~)"(?:[^"\\]|\\.)*"$')


def query(template: str, *, window: str = "1m", model: str | None = None, selector: str | None = None) -> str:
    """``template`` with its label matchers and range filled in.

    Args:
        template: One of this module's query constants.
        window: The rate window, a Prometheus duration (``30s``, ``1m``, ``5m``).
        model: Keep only this model's series (``model="NAME"``).
        selector: Further label matchers, comma-separated (``namespace="prod",pod=~"digits-.*"``).

    Raises:
        ValueError: a window that is not a duration, or a matcher that is not ``label<op>"value"``.
    """
    if not isinstance(window, str) or not _WINDOW.match(window):
        raise ValueError(f"window must be a Prometheus duration such as 30s or 1m, got {window!r}")
    matchers = []
    if model is not None:
        matchers.append('model="{}"'.format(str(model).replace("\\", "\\\\").replace('"', '\\"')))
    if selector:
        for part in _split_matchers(selector):
            if not _MATCHER.match(part):
                raise ValueError(f'selector must be label matchers such as namespace="prod", got {part!r}')
            matchers.append(part)
    joined = ",".join(matchers)
    return template.format(selector=joined, window=window, sep="," if joined else "")


def _split_matchers(selector: str) -> list[str]:
    """``a="x,y",b!="z"`` -> ``['a="x,y"', 'b!="z"']`` (commas inside quotes kept)."""
    parts, current, quoted, escaped = [], "", False, False
    for char in selector:
        if char == "," and not quoted:
            parts.append(current.strip())
            current = ""
            continue
        current += char
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
    parts.append(current.strip())
    return parts
