"""The pipeline boards: moves go through the lead form's and the stage workflow's rules,
scoped and role-checked like the lists, and a board page costs a few statements."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.boards.columns import CARDS_PER_COLUMN
from app.clients.models import Client
from app.extensions import db
from app.leads.models import Lead
from app.lending.models import LoanApplication, LoanStageEvent
from tests.lending_support import make_application, make_broker, make_product
from tests.support import login, make_branch, make_lead, make_staff
from tests.test_statement_budget import counting

JSON = {"Accept": "application/json"}


@pytest.fixture
def world(pg_app):
    branch, other_branch = make_branch(), make_branch()
    people = {
        "agent": make_staff("Agent", branch),
        "colleague": make_staff("Agent", branch),
        "manager": make_staff("Manager", branch),
        "far_manager": make_staff("Manager", other_branch),
        "far_agent": make_staff("Agent", other_branch),
        "admin": make_staff("Admin", branch),
        "auditor": make_staff("Auditor", branch),
        "bdm": make_staff("LoanOfficer", branch),
        "broker_user": make_staff("Broker", branch),
    }
    db.session.commit()
    return people


def signed_in(pg_app, staff):
    client = pg_app.test_client()
    assert login(client, staff.user.username).status_code == 302
    return client


def audit_mark() -> int:
    return db.session.scalar(select(func.coalesce(func.max(AuditLog.seq), 0)))


def audit_rows(since: int, record_type: str, record_id: int, action: str) -> list[AuditLog]:
    return list(
        db.session.scalars(
            select(AuditLog).where(
                AuditLog.seq > since,
                AuditLog.record_type == record_type,
                AuditLog.record_id == str(record_id),
                AuditLog.action == action,
            )
        )
    )


def status_of(lead_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Lead, lead_id).status


def move(client, lead_id, status, **extra):
    return client.post(f"/leadboard/move/{lead_id}", data={"status": status, **extra}, headers=JSON)


# ---- lead moves -------------------------------------------------------------------------------


def test_an_allowed_move_changes_the_status_and_writes_the_forms_audit_row(pg_app, world):
    lead = make_lead(world["agent"])
    db.session.commit()
    since = audit_mark()
    answer = move(signed_in(pg_app, world["agent"]), lead.id, "contacted")
    assert answer.status_code == 200, answer.data
    assert answer.json["status"] == "contacted"
    assert "is now contacted" in answer.json["message"]
    assert status_of(lead.id) == "contacted"
    (row,) = audit_rows(since, "lead", lead.id, "update")
    assert json.loads(row.changes)["status"] == ["new", "contacted"]
    assert row.actor_id == world["agent"].user_id


def test_the_board_writes_what_the_edit_form_writes(pg_app, world):
    """The same change through the lead's edit form and through the board: the same fields in
    the audit row."""
    by_form, by_board = make_lead(world["agent"]), make_lead(world["agent"])
    db.session.commit()
    client = signed_in(pg_app, world["agent"])
    since = audit_mark()
    form = {
        "first_name": by_form.first_name,
        "last_name": by_form.last_name,
        "email": by_form.email,
        "phone": by_form.phone,
        "source": by_form.source,
        "status": "qualified",
    }
    assert client.post(f"/leadview/edit/{by_form.id}", data=form).status_code == 302
    assert move(client, by_board.id, "qualified").status_code == 200
    (form_row,) = audit_rows(since, "lead", by_form.id, "update")
    (board_row,) = audit_rows(since, "lead", by_board.id, "update")
    assert json.loads(board_row.changes)["status"] == ["new", "qualified"]
    assert json.loads(form_row.changes)["status"] == ["new", "qualified"]
    assert set(json.loads(board_row.changes)) == set(json.loads(form_row.changes))


def test_a_refused_move_says_why_and_changes_nothing(pg_app, world):
    lead = make_lead(world["agent"], status="contacted")
    db.session.commit()
    since = audit_mark()
    client = signed_in(pg_app, world["agent"])
    back = move(client, lead.id, "new")
    assert back.status_code == 422
    assert "cannot move a contacted lead to new" in back.json["message"]
    no_reason = move(client, lead.id, "lost")
    assert no_reason.status_code == 422
    assert "a lost lead needs a reason" in no_reason.json["message"]
    unqualified = move(client, lead.id, "converted")
    assert unqualified.status_code == 409
    assert "only a qualified lead can be converted" in unqualified.json["message"]
    assert status_of(lead.id) == "contacted"
    assert audit_rows(since, "lead", lead.id, "update") == []
    assert db.session.scalar(select(func.count()).select_from(Client)) == 0
    rejected = db.session.scalars(
        select(AuditLog.detail).where(AuditLog.seq > since, AuditLog.action == "rejected")
    ).all()
    assert any("cannot move a contacted lead to new" in d for d in rejected)


def test_lost_with_a_reason_and_conversion_follow_their_rules(pg_app, world):
    losing, winning = make_lead(world["agent"]), make_lead(world["agent"], status="qualified")
    db.session.commit()
    client = signed_in(pg_app, world["agent"])
    lost = move(client, losing.id, "lost", reason="Chose another firm")
    assert lost.status_code == 200
    db.session.expire_all()
    assert (losing.status, losing.lost_reason) == ("lost", "Chose another firm")
    converted = move(client, winning.id, "converted")
    assert converted.status_code == 200, converted.data
    db.session.expire_all()
    assert winning.status == "converted"
    client_row = db.session.get(Client, winning.converted_client_id)
    assert client_row.email == winning.email
    assert f"client #{client_row.id}" in converted.json["message"]


def test_another_agents_lead_is_not_found_and_stays_as_it_was(pg_app, world):
    theirs = make_lead(world["colleague"])
    far = make_lead(world["far_agent"])
    db.session.commit()
    client = signed_in(pg_app, world["agent"])
    assert move(client, theirs.id, "contacted").status_code == 404
    far_manager = signed_in(pg_app, world["far_manager"])
    assert move(far_manager, theirs.id, "contacted").status_code == 404
    assert status_of(theirs.id) == "new"
    # The manager of the branch moves it; the far agent's lead stays out of their reach.
    manager = signed_in(pg_app, world["manager"])
    assert move(manager, theirs.id, "contacted").status_code == 200
    assert move(manager, far.id, "contacted").status_code == 404
    assert (status_of(theirs.id), status_of(far.id)) == ("contacted", "new")


def test_bad_input_is_a_400_naming_the_field(pg_app, world):
    lead = make_lead(world["agent"])
    db.session.commit()
    client = signed_in(pg_app, world["agent"])
    unknown = move(client, lead.id, "won")
    assert unknown.status_code == 400
    assert "Status: choose one of new, contacted" in unknown.json["message"]
    assert "'won'" in unknown.json["message"]
    missing = client.post(f"/leadboard/move/{lead.id}", data={}, headers=JSON)
    assert missing.status_code == 400
    assert move(client, "abc", "contacted").status_code == 404
    assert move(client, 99999999999999, "contacted").status_code == 404
    assert status_of(lead.id) == "new"


def test_a_move_without_the_pages_csrf_token_is_refused(pg_app, world, monkeypatch):
    lead = make_lead(world["agent"])
    db.session.commit()
    client = signed_in(pg_app, world["agent"])
    monkeypatch.setitem(pg_app.config, "WTF_CSRF_ENABLED", True)
    forged = move(client, lead.id, "contacted")
    assert forged.status_code == 400
    assert "CSRF" in forged.json["message"]
    assert status_of(lead.id) == "new"
    page = client.get("/leadboard/").get_data(as_text=True)
    token = re.search(r'data-csrf="([^"]+)"', page).group(1)
    with_token = client.post(
        f"/leadboard/move/{lead.id}",
        data={"status": "contacted"},
        headers={**JSON, "X-CSRFToken": token},
    )
    assert with_token.status_code == 200
    assert status_of(lead.id) == "contacted"


def test_a_reader_without_write_sees_the_board_but_cannot_move(pg_app, world):
    lead = make_lead(world["agent"])
    db.session.commit()
    auditor = signed_in(pg_app, world["auditor"])
    page = auditor.get("/leadboard/")
    assert page.status_code == 200
    assert lead.last_name.encode() in page.data
    assert b'class="board-move"' not in page.data
    assert move(auditor, lead.id, "contacted").status_code == 403
    assert status_of(lead.id) == "new"
    bdm = signed_in(pg_app, world["bdm"])  # no access to leads at all
    assert bdm.get("/leadboard/").status_code in (302, 403)
    assert move(bdm, lead.id, "contacted").status_code == 403


def test_a_plain_form_post_moves_and_comes_back_to_the_board(pg_app, world):
    lead = make_lead(world["agent"])
    db.session.commit()
    client = signed_in(pg_app, world["agent"])
    answer = client.post(f"/leadboard/move/{lead.id}", data={"status": "contacted"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/leadboard/")
    assert status_of(lead.id) == "contacted"


# ---- what a board shows ------------------------------------------------------------------------


def cards_in(page: str, column: str) -> list[str]:
    section = page.split(f'data-column="{column}"\n', 1)[1].split("</section>", 1)[0]
    return re.findall(
        r'class="board-card-title" id="card-\d+-title" href="[^"]+">([^<]+)</a>', section
    )


def count_in(page: str, column: str) -> int:
    section = page.split(f'data-column="{column}"\n', 1)[1]
    return int(re.search(r'data-count="(\d+)"', section).group(1))


def test_each_sees_their_own_rows_with_counts_of_their_rows(pg_app, world):
    mine = make_lead(world["agent"], last_name="Mine")
    make_lead(world["agent"], last_name="Mine2", status="contacted")
    make_lead(world["colleague"], last_name="Colleagues")
    make_lead(world["far_agent"], last_name="Faraway")
    db.session.commit()
    agent_page = signed_in(pg_app, world["agent"]).get("/leadboard/").get_data(as_text=True)
    assert cards_in(agent_page, "new") == [f"{mine.first_name} Mine"]
    assert cards_in(agent_page, "contacted") == [f"{mine.first_name} Mine2"]
    assert (count_in(agent_page, "new"), count_in(agent_page, "contacted")) == (1, 1)
    assert "Colleagues" not in agent_page and "Faraway" not in agent_page

    manager_page = signed_in(pg_app, world["manager"]).get("/leadboard/").get_data(as_text=True)
    assert sorted(cards_in(manager_page, "new")) == ["Lead Colleagues", "Lead Mine"]
    assert count_in(manager_page, "new") == 2 and "Faraway" not in manager_page

    admin_page = signed_in(pg_app, world["admin"]).get("/leadboard/").get_data(as_text=True)
    assert count_in(admin_page, "new") == 3 and "Faraway" in admin_page


def test_a_column_shows_the_most_recently_changed_cards_and_links_to_the_rest(pg_app, world):
    leads = [make_lead(world["agent"], last_name=f"Many{i:02d}") for i in range(30)]
    make_lead(world["agent"], last_name="Elsewhere", status="contacted")
    db.session.commit()
    client = signed_in(pg_app, world["agent"])
    # The oldest lead changes last: it comes first.
    assert (
        client.post(
            f"/leadview/edit/{leads[0].id}",
            data={
                "first_name": "Lead",
                "last_name": "Many00",
                "email": leads[0].email,
                "phone": leads[0].phone,
                "source": "manual",
                "status": "new",
                "company": "Touched Ltd",
            },
        ).status_code
        == 302
    )
    page = client.get("/leadboard/").get_data(as_text=True)
    shown = cards_in(page, "new")
    assert len(shown) == CARDS_PER_COLUMN
    assert shown[0] == "Lead Many00"
    assert shown[1:4] == ["Lead Many29", "Lead Many28", "Lead Many27"]
    assert count_in(page, "new") == 30
    more = re.search(r'<a class="board-more" href="([^"]+)">5 more in the list', page)
    assert more, "the column links to the rest"
    listed = client.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "Many29" in listed and "Elsewhere" not in listed  # the list, filtered by status


def test_a_board_page_costs_the_same_few_statements_at_any_size(pg_app, world):
    for _ in range(2):
        make_lead(world["agent"], status="new")
    db.session.commit()
    budgets = {}
    for who in ("agent", "manager", "admin"):
        client = signed_in(pg_app, world[who])
        client.get("/leadboard/")  # the menu is rendered once per set of grants
        with counting() as statements:
            assert client.get("/leadboard/").status_code == 200
        budgets[who] = len(statements)
    for i in range(40):
        make_lead(world["agent"], status=("new", "contacted", "qualified")[i % 3])
    db.session.commit()
    for who, small in budgets.items():
        client = signed_in(pg_app, world[who])
        client.get("/leadboard/")
        with counting() as statements:
            assert client.get("/leadboard/").status_code == 200
        assert len(statements) <= 8, (who, statements)
        assert len(statements) <= small, (who, small, len(statements))
    bdm = signed_in(pg_app, world["bdm"])
    make_application(world["bdm"], stage="assessment")
    db.session.commit()
    bdm.get("/applicationboard/")
    with counting() as statements:
        assert bdm.get("/applicationboard/").status_code == 200
    assert len(statements) <= 8, statements


def test_counts_are_not_an_exact_count_over_the_lead_table(pg_app, world):
    make_lead(world["agent"])
    db.session.commit()
    client = signed_in(pg_app, world["admin"])
    client.get("/leadboard/")
    with counting() as statements:
        client.get("/leadboard/")
    lead_counts = [s for s in statements if re.search(r"count\(\*\)[\s\S]*FROM lead\b", s)]
    assert lead_counts == []


# ---- the application board ----------------------------------------------------------------------


def stage_of(application_id: int) -> str:
    db.session.expire_all()
    return db.session.get(LoanApplication, application_id).stage


def move_application(client, application_id, stage, **extra):
    return client.post(
        f"/applicationboard/move/{application_id}", data={"stage": stage, **extra}, headers=JSON
    )


def test_application_moves_follow_the_stage_workflow(pg_app, world):
    product = make_product()
    broker = make_broker(world["bdm"].branch, world["broker_user"])
    application = make_application(world["bdm"], product, broker, stage="application")
    db.session.commit()
    since = audit_mark()
    bdm = signed_in(pg_app, world["bdm"])
    skip = move_application(bdm, application.id, "settled")
    assert skip.status_code == 409
    assert "cannot move from application to settled" in skip.json["message"]
    ok = move_application(bdm, application.id, "assessment")
    assert ok.status_code == 200 and ok.json["stage"] == "assessment"
    assert stage_of(application.id) == "assessment"
    events = db.session.scalars(
        select(LoanStageEvent).where(LoanStageEvent.application_id == application.id)
    ).all()
    assert [(e.from_stage, e.to_stage) for e in events] == [("application", "assessment")]
    (row,) = audit_rows(since, "loan_application", application.id, "update")
    assert json.loads(row.changes)["stage"] == ["application", "assessment"]

    broker_client = signed_in(pg_app, world["broker_user"])
    decision = move_application(broker_client, application.id, "approved")
    assert decision.status_code == 403 and "BDM's decision" in decision.json["message"]
    why = move_application(broker_client, application.id, "withdrawn")
    assert why.status_code == 422 and "say why" in why.json["message"]
    assert stage_of(application.id) == "assessment"
    assert move_application(bdm, application.id, "closing").status_code == 400
    withdrawn = move_application(
        broker_client, application.id, "withdrawn", reason="Bought elsewhere"
    )
    assert withdrawn.status_code == 200
    assert stage_of(application.id) == "withdrawn"


def test_the_application_board_is_scoped_like_the_list(pg_app, world):
    other_bdm = make_staff("LoanOfficer", world["bdm"].branch)
    mine = make_application(world["bdm"], stage="inquiry")
    theirs = make_application(other_bdm, stage="inquiry")
    db.session.commit()
    bdm = signed_in(pg_app, world["bdm"])
    page = bdm.get("/applicationboard/").get_data(as_text=True)
    assert mine.reference in page and theirs.reference not in page
    assert count_in(page, "inquiry") == 1
    assert move_application(bdm, theirs.id, "application").status_code == 404
    assert stage_of(theirs.id) == "inquiry"
    agent = signed_in(pg_app, world["agent"])
    assert agent.get("/applicationboard/").status_code in (302, 403)
    manager_page = signed_in(pg_app, world["manager"]).get("/applicationboard/")
    assert count_in(manager_page.get_data(as_text=True), "inquiry") == 2


def test_the_boards_share_their_lists_permissions(pg_app):
    """FAB keeps one set of permissions per resource: a board declaring fewer than its list
    would take the list's away at the next ``flask crm init``."""
    views = {v.endpoint: v for v in pg_app.appbuilder.baseviews}
    for board, listing in (
        ("LeadBoardView", "LeadView"),
        ("ApplicationBoardView", "LoanApplicationView"),
    ):
        assert views[board].class_permission_name == views[listing].class_permission_name
        assert set(views[board].base_permissions) == set(views[listing].base_permissions)
