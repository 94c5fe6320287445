"""The served OpenAPI document is valid OpenAPI 3.1, lists every HTTP route of the route table
with its method, parameters, access and body model, and the docs page shows it to a reader."""

from __future__ import annotations

import re

import jsonschema_rs
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
from starlette.routing import Route
from starlette.testclient import TestClient

from api.app import routes
from api.auth import Scope, access_of
from api.openapi import contract_of
from api.schemas import ProjectName
from core.contracts.mesh_params import RepairParams

PARAMETER = re.compile(r"{(\w+)}")


def _expected() -> set[tuple[str, str]]:
    """(method, path) of every HTTP operation, a route per operation expanded."""
    expected = set()
    for route in routes():
        if not isinstance(route, Route):
            continue
        declared = contract_of(route.endpoint)
        paths = ([route.path.replace(f"{{{declared.per}}}", value) for value in declared.bodies]
                 if declared.per else [route.path])
        for method in (route.methods or set()) - {"HEAD"}:
            expected |= {(method.lower(), path) for path in paths}
    return expected


def test_the_document_is_openapi_3_1_with_every_route(client: TestClient):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    document = response.json()
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    OPENAPI_31_VALIDATOR.validate(document)
    for schema in document["components"]["schemas"].values():
        jsonschema_rs.meta.validate(schema)  # each a valid JSON Schema 2020-12
    # ranges as JSON Schema states them (pydantic may leak its own "ge"/"le" names instead)
    assert '"ge":' not in response.text and '"le":' not in response.text
    served = {(method, path) for path, methods in document["paths"].items()
              for method in methods}
    assert served == _expected()
    assert len(served) >= 45


def test_each_operation_states_its_access_parameters_and_errors(client: TestClient):
    document = client.get("/api/v1/openapi.json").json()
    for route in routes():
        if not isinstance(route, Route) or contract_of(route.endpoint).per:
            continue
        access = access_of(route.endpoint)
        assert access is not None
        for method in (route.methods or set()) - {"HEAD"}:
            operation = document["paths"][route.path][method.lower()]
            named = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert named == set(PARAMETER.findall(route.path)), route.path
            if access.scope is Scope.PUBLIC:
                assert operation["security"] == []
            else:
                assert operation["security"] == [{"bearer": []}, {"cookie": []}]
                assert {"401", "403"} <= set(operation["responses"])
            for status, answer in operation["responses"].items():
                if status.startswith("4"):
                    assert "application/problem+json" in answer["content"]


def test_bodies_are_the_models_the_endpoints_parse(client: TestClient):
    document = client.get("/api/v1/openapi.json").json()
    schemas = document["components"]["schemas"]
    create = document["paths"]["/api/v1/projects"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProjectName"}
    assert schemas["ProjectName"] == ProjectName.model_json_schema()
    repair = document["paths"]["/api/v1/meshes/{asset_id}/repair"]["post"]
    assert repair["requestBody"]["required"] is False  # an empty body takes the defaults
    assert schemas["RepairParams"]["additionalProperties"] is False
    assert schemas["RepairParams"]["properties"]["debris_fraction"] == \
        RepairParams.model_json_schema()["properties"]["debris_fraction"]
    timeline = document["paths"]["/api/v1/projects/{project_id}/timeline"]["get"]
    assert {p["name"] for p in timeline["parameters"] if p["in"] == "query"} == {"after",
                                                                                "limit"}


def test_the_docs_page_lists_every_operation_without_fetching_anything(client: TestClient):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for method, path in _expected():
        assert f"{method.upper()}</span> {path}" in page.replace("&#x27;", "'")
    assert "<script" not in page and "http://" not in page and "https://" not in page.replace(
        "https://orfeas.studio", "")
    assert "merge_tolerance" in page and "Other fields are refused." in page
