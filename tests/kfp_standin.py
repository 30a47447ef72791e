"""A local stand-in for the KFP v2beta1 REST API (pytest-httpserver), answering the calls
``kfp.Client`` makes with the documented payloads: the gatekeeper's tests (creating runs through
it) and the audit's (listing runs, paged) use it."""

from __future__ import annotations

import json
import re
import uuid

from werkzeug import Response


class KfpStandIn:
    """The KFP v2beta1 calls kfp.Client makes to create runs, answered like KFP's API server
    (pytest-httpserver): experiments, runs, recurring runs and stored pipeline versions, kept in
    memory. ``fail_creates`` makes run creation answer a KFP error (HTTP 500)."""

    def __init__(self, server):
        self.server, self.experiments, self.runs, self.recurring = server, {}, {}, {}
        self.versions = {}
        self.fail_creates = False
        self.authorizations: list[str | None] = []
        api = "/apis/v2beta1"
        server.expect_request(f"{api}/healthz").respond_with_json({"multi_user": False, "pipeline_store": "database"})
        server.expect_request(f"{api}/experiments", method="GET").respond_with_handler(self._list_experiments)
        server.expect_request(f"{api}/experiments", method="POST").respond_with_handler(self._create_experiment)
        server.expect_request(f"{api}/runs", method="POST").respond_with_handler(self._create("run", self.runs))
        server.expect_request(f"{api}/runs", method="GET").respond_with_handler(self._list_runs)
        server.expect_request(f"{api}/recurringruns", method="POST").respond_with_handler(
            self._create("recurring_run", self.recurring))
        server.expect_request(
            re.compile(f"{api}/pipelines/[^/]+/versions/[^/]+"), method="GET").respond_with_handler(
            self._version)
        server.expect_request(re.compile(f"{api}/runs/[^/]+"), method="GET").respond_with_handler(
            lambda r: self._json(self.runs[r.path.rsplit("/", 1)[1]]) if r.path.rsplit("/", 1)[1] in self.runs
            else self._error(404, 5, "run not found"))

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    @staticmethod
    def _json(body, status=200):
        return Response(json.dumps(body), status=status, content_type="application/json")

    def _error(self, status, code, message):
        return self._json({"error": message, "code": code, "message": message, "details": []}, status)

    def _list_experiments(self, request):
        experiments = list(self.experiments.values())
        wanted = request.args.get("filter")
        if wanted:
            name = json.loads(wanted)["predicates"][0]["stringValue"]
            experiments = [e for e in experiments if e["display_name"] == name]
        return self._json({"experiments": experiments, "total_size": len(experiments)})

    def _create_experiment(self, request):
        body = request.get_json()
        experiment = {"experiment_id": str(uuid.uuid4()), "display_name": body["display_name"],
                      "storage_state": "AVAILABLE", "created_at": "2026-01-01T00:00:00Z"}
        self.experiments[experiment["experiment_id"]] = experiment
        return self._json(experiment)

    def _create(self, kind, store):
        def handler(request):
            self.authorizations.append(request.headers.get("Authorization"))
            if self.fail_creates:
                return self._error(500, 13, "Failed to create a new run: InternalServerError: the database is down")
            body = request.get_json()
            created = {**body, f"{kind}_id": str(uuid.uuid4()), "created_at": "2026-01-01T00:00:00Z"}
            if kind == "run":
                created["state"] = "PENDING"
            store[created[f"{kind}_id"]] = created
            return self._json(created)
        return handler

    def _list_runs(self, request):
        """``GET /runs`` as KFP pages it: ``page_size`` runs from ``page_token`` on, and the
        ``next_page_token`` of the rest (absent on the last page); ``page_requests`` counts the calls."""
        self.page_requests = getattr(self, "page_requests", 0) + 1
        runs = list(self.runs.values())
        size = int(request.args.get("page_size") or 0) or len(runs) or 1
        start = int(request.args.get("page_token") or 0)
        body = {"runs": runs[start:start + size], "total_size": len(runs)}
        if start + size < len(runs):
            body["next_page_token"] = str(start + size)
        return self._json(body)

    def add_run(self, run: dict) -> dict:
        """Serve ``run`` (a v2beta1 Run, as KFP's API answers it) from ``GET /runs``."""
        self.runs[run["run_id"]] = run
        return run

    def _version(self, request):
        version_id = request.path.rsplit("/", 1)[1]
        if version_id not in self.versions:
            return self._error(404, 5, "pipeline version not found")
        return self._json(self.versions[version_id])
