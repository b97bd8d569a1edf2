"""/_emulator/batches: settings, per-custom_id run counts, and what a reset forgets."""

from __future__ import annotations

from tests.emulator.support import batch_executions, batch_settings, call


def messages_batch(emulator, *custom_ids: str) -> str:
    requests = [{"custom_id": cid, "params": {"model": "claude", "max_tokens": 2,
                                              "messages": [{"role": "user", "content": "hi"}]}} for cid in custom_ids]
    reply = call("POST", f"{emulator.url}/anthropic/v1/messages/batches", {"requests": requests})
    assert reply.status == 200, reply.body
    return reply.body["id"]


def test_settings_are_validated_and_listed(emulator) -> None:
    assert batch_settings(emulator.url, duration_s=0, fail_every=2)["fail_every"] == 2
    reply = call("PUT", f"{emulator.url}/_emulator/batches", {"duration_s": -1, "colour": "red"})
    assert reply.status == 400
    assert "duration_s" in reply.body["error"]["message"] and "colour: unknown key" in reply.body["error"]["message"]
    assert call("GET", f"{emulator.url}/_emulator/batches").body["settings"]["fail_every"] == 2


def test_each_run_is_counted_by_custom_id_and_polling_does_not_rerun(emulator) -> None:
    batch_settings(emulator.url, duration_s=0)
    batch_id = messages_batch(emulator, "x", "y")
    for _ in range(3):
        assert call("GET", f"{emulator.url}/anthropic/v1/messages/batches/{batch_id}").status == 200
    call("GET", f"{emulator.url}/anthropic/v1/messages/batches/{batch_id}/results")
    assert batch_executions(emulator.url) == {"x": 1, "y": 1}
    assert call("GET", f"{emulator.url}/_emulator/batches").body["batches"] == {batch_id: "completed"}


def test_reset_forgets_batches_and_with_profiles_restores_the_settings(emulator) -> None:
    batch_settings(emulator.url, duration_s=0, fail_every=5)
    messages_batch(emulator, "z")
    call("GET", f"{emulator.url}/anthropic/v1/messages/batches")
    emulator.reset()
    state = call("GET", f"{emulator.url}/_emulator/batches").body
    assert state["batches"] == {} and state["executions"] == {} and state["settings"]["fail_every"] == 5
    emulator.reset(profiles=True)
    assert call("GET", f"{emulator.url}/_emulator/batches").body["settings"]["fail_every"] is None
    messages_batch(emulator, "w")
    assert call("DELETE", f"{emulator.url}/_emulator/batches").body == {"reset": True}
    assert call("GET", f"{emulator.url}/_emulator/batches").body["batches"] == {}
