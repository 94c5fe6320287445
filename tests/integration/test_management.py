"""Managing members and accounts over HTTP: a member's role changed by id, and an account an
administrator disables (its sign-ins refused, its tokens dead) and enables again."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.integration.helpers import event_topics


def _member_roles(client: TestClient, project: str, headers: dict[str, str]) -> dict[str, str]:
    listed = client.get(f"/api/v1/projects/{project}/collaborators", headers=headers)
    assert listed.status_code == 200, listed.text
    return {c["username"]: c["role"] for c in listed.json()["collaborators"]}


def test_an_owner_changes_a_members_role_by_id(client: TestClient, make_account, prepared):
    owner, bea, out = make_account("own"), make_account("bea"), make_account("out")
    project = client.post("/api/v1/projects", json={"name": "M"}, headers=owner.headers).json()
    pid = project["id"]
    invited = client.post(f"/api/v1/projects/{pid}/invite",
                          json={"user": "bea", "role": "viewer"}, headers=owner.headers)
    assert invited.status_code == 201, invited.text
    url = f"/api/v1/projects/{pid}/collaborators/{bea.user_id}"

    changed = client.patch(url, json={"role": "Editor"}, headers=owner.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"user_id": bea.user_id, "username": "bea", "role": "editor"}
    assert _member_roles(client, pid, owner.headers) == {"own": "owner", "bea": "editor"}

    before = event_topics(prepared)
    # not a member: 404, and nobody is added (invite would have added them)
    missing = client.patch(f"/api/v1/projects/{pid}/collaborators/{out.user_id}",
                           json={"role": "viewer"}, headers=owner.headers)
    assert missing.status_code == 404, missing.text
    # the last owner keeps the role; a bad role and a missing body are refused
    last = client.patch(f"/api/v1/projects/{pid}/collaborators/{owner.user_id}",
                        json={"role": "viewer"}, headers=owner.headers)
    assert last.status_code == 409, last.text
    assert client.patch(url, json={"role": "boss"}, headers=owner.headers).status_code == 422
    assert client.patch(url, json={}, headers=owner.headers).status_code == 422
    # an editor may not change roles (their own included)
    assert client.patch(url, json={"role": "owner"}, headers=bea.headers).status_code == 403
    assert event_topics(prepared) == before
    assert _member_roles(client, pid, owner.headers) == {"own": "owner", "bea": "editor"}


def test_a_disabled_account_cannot_sign_in_and_its_tokens_stop(client: TestClient,
                                                                make_account):
    admin, cid = make_account("root", admin=True), make_account("cid")
    assert client.get("/api/v1/me", headers=cid.headers).status_code == 200
    url = "/api/v1/admin/users/cid/disabled"
    assert client.put(url, json={"disabled": True}, headers=cid.headers).status_code == 403

    disabled = client.put(url, json={"disabled": True}, headers=admin.headers)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json() == {"id": cid.user_id, "username": "cid", "is_admin": False,
                               "disabled": True}
    assert client.get("/api/v1/me", headers=cid.headers).status_code == 401
    refused = client.post("/api/v1/auth/session",
                          json={"username": "cid", "password": cid.password})
    assert refused.status_code == 403
    assert "disabled" in refused.json()["detail"]
    # a wrong password still says only that
    wrong = client.post("/api/v1/auth/tokens", json={"username": "cid", "password": "x" * 12})
    assert wrong.status_code == 401

    enabled = client.put(url, json={"disabled": False}, headers=admin.headers)
    assert enabled.status_code == 200 and enabled.json()["disabled"] is False
    assert client.get("/api/v1/me", headers=cid.headers).status_code == 200

    own = client.put("/api/v1/admin/users/root/disabled", json={"disabled": True},
                     headers=admin.headers)
    assert own.status_code == 409, own.text
    assert client.get("/api/v1/me", headers=admin.headers).status_code == 200
    assert client.put("/api/v1/admin/users/nobody/disabled", json={"disabled": True},
                      headers=admin.headers).status_code == 404
    assert client.put(url, json={"disabled": "yes"}, headers=admin.headers).status_code == 422
