"""``greenkfp serve``'s app: an ONNX model over the Open Inference Protocol v2 REST API.

Build it with :func:`create_app` and serve it with uvicorn (``greenkfp serve`` does). Endpoints:

* ``GET /v2/health/live``: 200 ``{"live": true}`` while the process answers;
* ``GET /v2/health/ready``: 200 ``{"ready": true}`` once the model is loaded; 503
  ``{"ready": false}`` while it loads or when it failed to load (the process stays up and says
  why in ``/v2/models/{name}/ready`` and in the log: a bad model fails readiness, never the pod);
* ``GET /v2``: the server's metadata; ``GET /v2/models/{name}[/versions/{v}]``: the model's
  (inputs and outputs, ``-1`` for a dynamic dimension); ``GET /v2/models/{name}[/versions/{v}]/ready``;
* ``POST /v2/models/{name}[/versions/{v}]/infer``: inference (:mod:`.protocol`), run through the
  micro-batcher (:mod:`.batching`);
* ``GET /metrics``: Prometheus exposition of the app's own registry (:mod:`.metrics`).

Every ``GET`` endpoint answers ``HEAD`` too (same status and headers, no body: load balancers
and probes use it).

Errors are the protocol's ``{"error": "..."}``: 400 for a bad request (malformed JSON, unknown or
missing input, wrong datatype or shape, too many rows, unknown output), 404 for an unknown model,
version or path, 405 for a wrong method, 413 for a body over ``max_body_bytes`` (refused from
its ``Content-Length``, or as soon as its bytes pass the cap), 503 while the model is not ready,
500 when the inference itself fails. Never a traceback.

Why FastAPI on uvicorn: it is the stack the gatekeeper already runs (no second web framework to
learn, pin and patch), and the one KServe's own Python model server and MLServer run, so the
comparison with MLServer measures the serving work, not the HTTP stack. The hot path skips
FastAPI where it costs: ``POST .../infer`` is answered by a bare ASGI callable in front of the
routes (a precompiled regex on the path, the body read raw from ``receive`` under the cap, raw
``send`` events: FastAPI's routing and parameter resolution cost more CPU per request than the
inference of a small model); the body is parsed by orjson, validated by pydantic v2 (compiled),
turned into numpy arrays in one call per input, and answered as orjson bytes serialised straight
from the numpy arrays; a short ``session.run`` runs on the event loop (the hop to a worker thread
costs more); the metrics' labelled series are looked up once; uvicorn runs uvloop and httptools.
``scripts/bench_serving.py`` (issue 14's benchmark) is where the choice is checked.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request  # module level: FastAPI resolves the handlers' annotations here
from fastapi.responses import Response

from .protocol import ProtocolError, dumps, error_body, parse_request, to_response_output

__all__ = ["InferenceServer", "ServeSettings", "create_app"]

logger = logging.getLogger("greenkfp.serving")

#: The largest request body by default: 8 MiB (1,024 rows of 784 FP32 pixels as JSON is about 6 MiB).
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_BODY_LIMIT_BYTES = 256 * 1024 * 1024
_JSON = "application/json"
#: A ``session.run`` shorter than this runs on the event loop, not in a worker thread (measured on
#: the benchmark's int8 MLP: a one-row run takes ~9 us of CPU, the hop to a thread and back ~50 us).
INLINE_RUN_S = 0.001


@dataclass(frozen=True)
class ServeSettings:
    """How the inference server runs.

    Attributes:
        model: An ``.onnx`` file, or a selection record (JSON) whose chosen variant to serve.
        name: The model's name in the URLs.
        version: The model's version (``/versions/{version}``).
        max_batch_size: Most rows run together in one ``session.run`` (1: no batching).
        max_batch_delay_ms: Longest a queued request waits for others, milliseconds (a request
            on an idle server never waits).
        max_request_rows: Most rows in one request (more: 400).
        threads: ONNX Runtime's intra-op threads per ``session.run``.
        hardware_profile: The hardware preset the modeled energy uses.
        region: The grid region whose intensity prices the inferences.
        provider: The carbon provider of that intensity (``embedded``: offline).
        provider_options: That provider's options (:func:`~..carbon.intensity.parse_provider_options`).
        intensity_refresh_s: How often the intensity is fetched again, seconds.
        max_body_bytes: The largest request body, bytes (larger: 413).
    """

    model: str
    name: str
    version: str = "1"
    max_batch_size: int = 32
    max_batch_delay_ms: float = 5.0
    max_request_rows: int = 1024
    threads: int = 1
    hardware_profile: str = "n2-standard-4"
    region: str = "GB"
    provider: str = "embedded"
    provider_options: dict = field(default_factory=dict)
    intensity_refresh_s: float = 300.0
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        import re

        from ..energy.profiles import resolve_profile

        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be the path of an .onnx file or a selection record, got {self.model!r}")
        for key in ("name", "version"):
            value = getattr(self, key)
            if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", value):
                raise ValueError(f"{key} must be 1-128 letters, digits, '_', '.' or '-' (first a letter or digit), "
                                 f"got {value!r}")

        def whole(key: str, lowest: int, highest: int) -> None:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
                raise ValueError(f"{key} must be a whole number from {lowest} to {highest}, got {value!r}")

        whole("max_batch_size", 1, 65536)
        whole("max_request_rows", 1, 1 << 20)
        whole("threads", 1, 256)
        whole("max_body_bytes", 1024, MAX_BODY_LIMIT_BYTES)
        for key, highest in (("max_batch_delay_ms", 10000.0), ("intensity_refresh_s", 86400.0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0 or value > highest or (key == "intensity_refresh_s" and value == 0):
                raise ValueError(f"{key} must be a number from 0 to {highest:g}, got {value!r}")
        resolve_profile(self.hardware_profile)  # UnknownProfileError (a ValueError) names the presets
        if not isinstance(self.region, str) or not self.region.strip():
            raise ValueError(f"region must be a grid region such as GB or DE, got {self.region!r}")


class InferenceServer:
    """The app's state: settings, the model (once loaded), the batcher and the metrics."""

    def __init__(self, settings: ServeSettings):
        from prometheus_client import CollectorRegistry

        from ..carbon.intensity import parse_provider_options
        from .metrics import EnergyAccount, GridIntensity, ServingMetrics

        parse_provider_options(settings.provider_options)  # a bad option fails here, not in the refresh loop
        self.settings = settings
        self.registry = CollectorRegistry()
        self.energy = EnergyAccount(settings.hardware_profile, threads=settings.threads)
        self.grid = GridIntensity(settings.region, provider=settings.provider,
                                  provider_options=settings.provider_options,
                                  refresh_s=settings.intensity_refresh_s)
        self.metrics = ServingMetrics(self.registry, settings.name, self.energy, self.grid)
        self.model = None
        self.state = "loading"  # -> ready | failed
        self.load_error = ""
        self.batcher = None
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------------ lifecycle

    def load(self) -> None:
        """Load the model (blocking; a worker thread calls it). Failure is a state, not an exception."""
        from .batching import MicroBatcher
        from .model import ModelLoadError, ServedModel

        s = self.settings
        try:
            model = ServedModel(s.model, s.name, threads=s.threads)
        except ModelLoadError as exc:
            self.load_error = str(exc)
        except Exception as exc:  # anything else a broken file provokes: still a readiness failure
            self.load_error = f"cannot load {s.model!r}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        else:
            size = s.max_batch_size if model.batchable else 1
            if not model.batchable and s.max_batch_size > 1:
                logger.warning("model %s: batching off, each request runs alone (%s)", s.name,
                               model.batching_off_reason)
            self.batcher = MicroBatcher(self._run, max_batch_size=size, max_batch_delay_s=s.max_batch_delay_ms / 1000,
                                        on_batch=self._on_batch, inline_below_s=INLINE_RUN_S,
                                        on_split=self._on_split)
            self.metrics.batching.labels(s.name).set(1 if size > 1 else 0)
            self.model = model
            self.state = "ready"
            self.metrics.ready.labels(s.name).set(1)
            logger.info("model %s loaded from %s: inputs %s, outputs %s; energy %s", s.name, model.path,
                        [i.to_dict() for i in model.inputs], [o.to_dict() for o in model.outputs], self.energy.method)
            return
        self.state = "failed"
        logger.error("model %s failed to load (not ready): %s", s.name, self.load_error)

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(asyncio.to_thread(self.load)))
        self._tasks.append(asyncio.create_task(self._refresh_intensity()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.batcher is not None:
            self.batcher.close()

    async def _refresh_intensity(self) -> None:
        while True:
            await asyncio.to_thread(self.grid.fetch)
            await asyncio.sleep(self.grid.refresh_s)

    def _run(self, inputs):
        model = self.model
        return self.energy.measure(lambda: model.run(inputs))

    def _on_split(self, requests: int, failure: str) -> None:
        self.metrics.batch_splits.labels(self.settings.name).inc()
        count = self.batcher.split_batches if self.batcher is not None else 0
        if count == 1 or count % 100 == 0:  # a client sending bad requests must not flood the log
            logger.warning("model %s: a batch of %d requests failed (%s); each ran again alone, only a request "
                           "failing alone got the error (%d such batches so far, metric "
                           "greenkfp_inference_batch_splits_total)", self.settings.name, requests, failure, count)

    def _on_batch(self, stats) -> None:
        self.metrics.record_batch(stats.requests, stats.rows, stats.report)

    # ------------------------------------------------------------------ requests

    def check_model(self, name: str, version: str | None) -> None:
        s = self.settings
        if name != s.name:
            raise ProtocolError(404, f"unknown model {name!r}; this server serves {s.name!r}", kind="unknown_model")
        if version is not None and version != s.version:
            raise ProtocolError(404, f"model {name!r} has no version {version!r} (it has {s.version!r})",
                                kind="unknown_model")

    def check_ready(self) -> None:
        if self.state == "loading":
            raise ProtocolError(503, f"model {self.settings.name!r} is loading", kind="not_ready")
        if self.state == "failed":
            raise ProtocolError(503, f"model {self.settings.name!r} is not available: {self.load_error}",
                                kind="not_ready")

    async def infer(self, body: bytes) -> bytes:
        from .batching import BatchError

        request = parse_request(body)
        model = self.model
        arrays, rows = model.check_inputs(request.inputs, self.settings.max_request_rows)
        wanted = model.output_names
        if request.outputs:
            names = [o.name for o in request.outputs]
            unknown = [n for n in names if n not in model.output_names]
            if unknown:
                raise ProtocolError(400, f"unknown output(s) {', '.join(map(repr, unknown))}; model "
                                         f"{model.name!r} has {', '.join(map(repr, model.output_names))}")
            wanted = names
        try:
            outputs = await self.batcher.submit(arrays, rows)
        except BatchError as exc:
            raise ProtocolError(500, str(exc), kind="inference_failed") from None
        by_name = dict(zip(model.output_names, outputs))
        answer: dict[str, Any] = {"model_name": model.name, "model_version": self.settings.version}
        if request.id is not None:
            answer["id"] = request.id
        answer["outputs"] = [to_response_output(n, by_name[n]) for n in wanted]
        return dumps(answer)


_INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
_JSON_HEADER = (b"content-type", b"application/json")


async def _read_body(scope: dict, receive, cap: int) -> bytes | None:
    """The body, refused (413) when its ``Content-Length`` or its bytes pass ``cap``; ``None``
    when the client went away before sending it whole."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            length = value.decode("latin-1")
            if length.isdigit() and int(length) > cap:
                raise ProtocolError(413, f"request body of {int(length)} bytes is larger than the server takes "
                                         f"({cap} bytes)", kind="body_too_large")
            break
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > cap:
                raise ProtocolError(413, f"request body is larger than the server takes ({cap} bytes)",
                                    kind="body_too_large")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [_JSON_HEADER, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _InferEndpoint:
    """``POST /v2/models/{name}[/versions/{v}]/infer`` as a bare ASGI app: the request path that
    carries the load skips the framework's routing, parameter resolution and response classes
    (they cost more CPU than the inference of a small model). :class:`_ServingApp` calls it in
    front of the routes; it is also the routes' endpoint, so other methods get FastAPI's 405."""

    def __init__(self, server: InferenceServer):
        self.server = server

    async def __call__(self, scope, receive, send) -> None:
        match = _INFER_PATH.fullmatch(scope["path"])
        if match is None:  # reached through the router with a path the pattern does not take
            await _send(send, 404, error_body(f"no such endpoint: {scope['method']} {scope['path']}"))
            return
        await self.handle(match, receive, send, scope)

    async def handle(self, match, receive, send, scope) -> None:
        server = self.server
        start = time.perf_counter()
        try:
            server.check_model(match[1], match[2])
            server.check_ready()
            body = await _read_body(scope, receive, server.settings.max_body_bytes)
            if body is None:
                return  # nobody to answer
            answer = await server.infer(body)
        except ProtocolError as exc:
            server.metrics.record_answer(exc.status, exc.kind)
            await _send(send, exc.status, error_body(exc.message))
            return
        except Exception:
            logger.exception("internal error on %s %s", scope["method"], scope["path"])
            await _send(send, 500, error_body("internal server error"))
            return
        server.metrics.record_answer(200, seconds=time.perf_counter() - start)
        await _send(send, 200, answer)


class _ServingApp(FastAPI):
    """The FastAPI app with :class:`_InferEndpoint` in front for ``POST .../infer``."""

    infer_endpoint: _InferEndpoint

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _INFER_PATH.fullmatch(scope["path"])
            if match is not None:
                await self.infer_endpoint.handle(match, receive, send, scope)
                return
        await super().__call__(scope, receive, send)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(dumps(payload), status_code=status, media_type=_JSON)


def _error(exc: ProtocolError) -> Response:
    return Response(error_body(exc.message), status_code=exc.status, media_type=_JSON)


def create_app(settings: ServeSettings) -> FastAPI:
    """The inference server's app for ``settings``; the model loads in the background at start-up
    (``/v2/health/ready`` says when it is ready, or that it failed).

    Raises:
        ValueError: a bad setting or provider option (the message names it).
    """
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.routing import Route

    from .. import _runtime

    server = InferenceServer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = _ServingApp(title="greenkfp serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.serving = server
    app.infer_endpoint = _InferEndpoint(server)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = {404: f"no such endpoint: {request.method} {request.url.path}",
                   405: f"method {request.method} not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
        return Response(error_body(message), status_code=exc.status_code, media_type=_JSON,
                        headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        logger.exception("internal error on %s %s", request.method, request.url.path)
        return Response(error_body("internal server error"), status_code=500, media_type=_JSON)

    @app.api_route("/v2/health/live", methods=["GET", "HEAD"])
    async def live() -> Response:
        return _json({"live": True})

    @app.api_route("/v2/health/ready", methods=["GET", "HEAD"])
    async def ready() -> Response:
        ok = server.state == "ready"
        return _json({"ready": ok}, 200 if ok else 503)

    @app.api_route("/v2", methods=["GET", "HEAD"])
    async def server_metadata() -> Response:
        return _json({"name": "greenkfp", "version": _runtime.__version__, "extensions": []})

    async def model_metadata(name: str, version: str | None = None) -> Response:
        try:
            server.check_model(name, version)
            server.check_ready()
        except ProtocolError as exc:
            return _error(exc)
        return _json(server.model.metadata(settings.version))

    async def model_ready(name: str, version: str | None = None) -> Response:
        try:
            server.check_model(name, version)
        except ProtocolError as exc:
            return _error(exc)
        body: dict[str, Any] = {"name": name, "ready": server.state == "ready"}
        if server.state == "failed":
            body["error"] = server.load_error
        return _json(body, 200 if server.state == "ready" else 503)

    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.add_api_route(prefix, model_metadata, methods=["GET", "HEAD"])
        app.add_api_route(prefix + "/ready", model_ready, methods=["GET", "HEAD"])
        app.router.routes.append(Route(prefix + "/infer", app.infer_endpoint, methods=["POST"]))

    @app.api_route("/metrics", methods=["GET", "HEAD"])
    async def metrics() -> Response:
        return Response(generate_latest(server.registry), media_type=CONTENT_TYPE_LATEST)

    return app
