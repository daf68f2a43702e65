"""Property tests of the HTTP API against its own OpenAPI schema (schemathesis): whatever the
generated request, the server answers per its schema and never with a 5xx."""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from ser.interfaces.api import ServerConfig, create_app  # noqa: E402


def test_api_never_fails_on_generated_requests(random_bundle):
    app = create_app(ServerConfig(model=str(random_bundle), max_upload_mb=1.0))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/predict", "/v1/health", "/v1/model"}
    statuses = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call()
            statuses.append(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])
            assert response.status_code < 500

        check()
    assert statuses and all(code < 500 for code in statuses)
    assert any(400 <= code < 500 for code in statuses)  # bad generated uploads were refused
