"""The users API as `cerebrum up` runs it with no servers: SQLite and the in-process Redis stand-in."""

from __future__ import annotations

from tests.services.users.conftest import UsersApi


async def test_the_whole_users_api_works_embedded(embedded_users: UsersApi) -> None:
    api = embedded_users
    tokens = await api.signed_in("embedded@example.com")
    assert (await api.register("EMBEDDED@example.com")).status_code == 409
    profile = await api.client.put("/users/profile", headers=api.bearer(tokens), json={"city": "Kota"})
    assert profile.json()["profile"]["city"] == "Kota"
    assert profile.json()["created_at"].endswith("Z") or "+00:00" in profile.json()["created_at"]
    rotated = (await api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
    replay = await api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    assert (await api.client.get("/users/profile", headers=api.bearer(rotated))).status_code == 401
    fresh = (await api.login("embedded@example.com")).json()
    assert (await api.client.post("/auth/logout", headers=api.bearer(fresh))).status_code == 204
    statuses = [(await api.login("embedded@example.com", "Nope-nope-1")).status_code for _ in range(6)]
    assert statuses[-1] == 429
    ready = await api.client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok"}
    final = (await api.client.get("/health")).json()
    assert final["service"] == "users"
