"""The secretariat's webhooks page: add, list, remove, and every delivery's state."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from signflow.core import webhooks
from signflow.core.models import OutboxMessage, Round, Webhook, WebhookDelivery
from tests.conftest import create_round
from tests.test_secretariat_pages import csrf, staff


def hook_count(runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Webhook))


def add(client, token: str, url: str, events=webhooks.EVENTS):
    return client.post("/account/webhooks", data={"csrf_token": token, "url": url,
                                                  "events": list(events)})


def test_a_stranger_is_sent_to_sign_in_and_an_auditor_may_not_manage_them(
        client, settings, runtime):
    resp = client.get("/account/webhooks")
    assert resp.status_code == 302 and resp.location.startswith("/login?next=/account/webhooks")
    staff(client, settings, runtime, role="auditor")
    assert client.get("/account/webhooks").status_code == 403


def test_a_new_webhook_shows_its_secret_once_and_keeps_it_sealed(client, settings, runtime):
    staff(client, settings, runtime)
    token = csrf(client, "/account/webhooks")
    resp = add(client, token, "https://diarium.example.se/signflow",
               events=["round.completed", "notice.ready"])
    assert resp.status_code == 201
    html = resp.get_data(as_text=True)
    secret = re.search(r"(whsec_[A-Za-z0-9_-]+)", html).group(1)
    assert "https://diarium.example.se/signflow" in html
    with runtime.sessions() as s:
        hook = s.scalar(select(Webhook).where(Webhook.url == "https://diarium.example.se/signflow"))
        assert hook.events == "round.completed notice.ready"
        assert secret not in hook.secret_sealed
        assert runtime.services.sealer.open(hook.secret_sealed,
                                            bound_to=f"webhook:{hook.id}") == secret
    again = client.get("/account/webhooks").get_data(as_text=True)
    assert secret not in again and "diarium.example.se" in again
    assert "Alla har signerat" in again  # the events in words, in Swedish by default


def test_a_bad_address_or_no_event_is_said_next_to_the_field_and_nothing_is_stored(
        client, settings, runtime):
    staff(client, settings, runtime)
    token = csrf(client, "/account/webhooks")
    before = hook_count(runtime)
    for url, events, field in (("ftp://example.se/x", webhooks.EVENTS, "url"),
                               ("https://exa mple.se/", webhooks.EVENTS, "url"),
                               ("https://example.se/x", [], "events")):
        resp = add(client, token, url, events)
        assert resp.status_code == 400, url
        html = resp.get_data(as_text=True)
        assert f'id="hook-{field}-error"' in html  # said at the field
        if field == "url":
            assert 'aria-invalid="true"' in html
        assert f'href="#hook-{field}"' in html  # the summary leads to the field
    assert hook_count(runtime) == before
    refused = client.post("/account/webhooks", data={"url": "https://example.se/x",
                                                     "events": ["round.completed"]})
    assert refused.status_code == 400 and hook_count(runtime) == before  # no CSRF token


def test_removing_one_stops_its_events_and_another_organisation_cannot(
        client, settings, runtime, app):
    staff(client, settings, runtime)
    token = csrf(client, "/account/webhooks")
    assert add(client, token, "https://arkiv.example.se/hook").status_code == 201
    with runtime.sessions() as s:
        hook_id = s.scalar(select(Webhook.id).where(Webhook.url == "https://arkiv.example.se/hook"))
    other = app.test_client()
    staff(other, settings, runtime, org="Annan kommun")
    assert "arkiv.example.se" not in other.get("/account/webhooks").get_data(as_text=True)
    theirs = csrf(other, "/account/webhooks")
    assert other.post(f"/account/webhooks/{hook_id}/remove",
                      data={"csrf_token": theirs}).status_code == 404
    resp = client.post(f"/account/webhooks/{hook_id}/remove", data={"csrf_token": token})
    assert resp.status_code == 302
    page = client.get("/account/webhooks").get_data(as_text=True)
    assert "Borttagen" in page and "arkiv.example.se" in page  # kept on record, removed
    with runtime.sessions() as s:
        assert s.get(Webhook, hook_id).active is False


def test_every_delivery_shows_its_state(client, settings, runtime, protocol_pdf,
                                        dispatcher_paused):
    runtime.dispatcher.hand_off(lambda refs: None)  # nobody delivers: this test sets states
    _, auth = staff(client, settings, runtime)
    token = csrf(client, "/account/webhooks")
    assert add(client, token, "https://tavla.example.se/in").status_code == 201
    round_id = create_round(client, auth, protocol_pdf).get_json()["id"]
    svc = runtime.services
    with runtime.sessions() as s:
        round_ = s.get(Round, round_id)
        made = [webhooks.emit(s, svc, round_, "signer.signed", {"signer": "x"})[0]
                for _ in range(4)]
        s.commit()
        rows = [s.scalar(select(OutboxMessage).where(OutboxMessage.ref == d.outbox_ref))
                for d in made]
        # one delivered, one failing, one still waiting for its first try, and one
        # that ended without an answer (its webhook removed before it went out)
        rows[0].delivered_at = rows[3].delivered_at = svc.clock.now()
        s.get(WebhookDelivery, made[0].id).last_status = 200
        rows[1].attempts, rows[1].last_error = 2, "HTTP 503"
        rows[1].next_attempt_at = svc.clock.now() + timedelta(minutes=4)
        s.get(WebhookDelivery, made[1].id).last_status = 503
        s.commit()
    html = client.get("/account/webhooks").get_data(as_text=True)
    deliveries = html[html.index('id="deliveries"'):]
    assert deliveries.count("En undertecknare har signerat") == 4
    assert "Levererad" in deliveries and "Misslyckas" in deliveries and "Väntar" in deliveries
    assert "Skickades inte: webhooken togs bort" in deliveries
    assert "Senaste svar: HTTP 503." in deliveries
    assert f'href="/rounds/{round_id}"' in deliveries
