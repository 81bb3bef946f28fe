"""KYC API: cases are opened and edited like any record; submit, approve and reject are actions
with the same rules as the screens (four eyes included)."""

from __future__ import annotations

from flask_appbuilder.api import expose, protect, safe

from app.core.crud import (
    CrmSQLAInterface,
    ReadOnlyRestApi,
    ServiceModelRestApi,
    json_body,
    readable_columns,
)
from app.kyc import services
from app.kyc.models import KycCase, KycCaseDocument, KycCaseEvent
from app.security.roles import API_METHOD_ACTIONS

READ_COLUMNS = [
    "id",
    "client_id",
    "status",
    "pan_masked",
    "aadhaar_masked",
    "abn",
    "acn",
    "registration_number",
    "bank_account_masked",
    "ifsc",
    "iban",
    "check_results",
    "rejection_reason",
    "prepared_by_id",
    "submitted_by_id",
    "submitted_at",
    "submissions",
    "reviewer_id",
    "reviewed_by_id",
    "reviewed_at",
]
WRITE_COLUMNS = [
    "pan",
    "aadhaar",
    "abn",
    "acn",
    "registration_number",
    "bank_account",
    "ifsc",
    "iban",
]


def _case_json(result) -> dict:
    """A case after a workflow step, with the problems a submission found (if any)."""
    case, problems = result if isinstance(result, tuple) else (result, [])
    return {"id": case.id, "status": case.status, "problems": problems or None}


class KycCaseApi(ServiceModelRestApi):
    resource_name = "kyccase"
    datamodel = CrmSQLAInterface(KycCase)
    class_permission_name = "KycCase"
    method_permission_name = {
        **API_METHOD_ACTIONS,
        "submit": "write",
        "approve": "approve",
        "reject": "approve",
    }
    prepare = staticmethod(services.prepare_case)
    allow_browser_login = True

    list_columns = READ_COLUMNS
    show_columns = READ_COLUMNS
    add_columns = ["client_id", *WRITE_COLUMNS]
    edit_columns = WRITE_COLUMNS
    search_columns = ["client_id", "status", "reviewer_id"]
    order_columns = ["id", "submitted_at", "status"]

    def _act(self, action, *args):
        return self.run_workflow(lambda: action(*args), _case_json)

    @expose("/<int:pk>/submit", methods=["POST"])
    @protect()
    @safe
    def submit(self, pk: int):
        """Send the case for review; the answer lists the problems the reviewer will see.
        ---
        post:
          responses:
            200: {description: submitted}
            404: {$ref: '#/components/responses/404'}
            409: {description: not in a state that can be submitted}
        """
        return self._act(services.submit_case, pk)

    @expose("/<int:pk>/approve", methods=["POST"])
    @protect()
    @safe
    def approve(self, pk: int):
        """Approve (Compliance): refused for the case's preparer, submitter or uploaders, and
        while any document or identifier problem remains.
        ---
        post:
          responses:
            200: {description: verified}
            403: {description: four eyes}
            404: {$ref: '#/components/responses/404'}
            409: {description: the problems that block approval}
        """
        return self._act(services.approve_case, pk)

    @expose("/<int:pk>/reject", methods=["POST"])
    @protect()
    @safe
    def reject(self, pk: int):
        """Reject with a reason (JSON ``{"reason": "..."}``).
        ---
        post:
          responses:
            200: {description: rejected}
            404: {$ref: '#/components/responses/404'}
            422: {description: no reason given}
        """
        reason = json_body().get("reason")
        return self._act(services.reject_case, pk, reason)


KYC_PERMISSIONS = ["can_read", "can_write", "can_delete", "can_approve"]


class KycCaseEventApi(ReadOnlyRestApi):
    """A case's history: who moved it, when, from and to, and why."""

    resource_name = "kyccaseevent"
    datamodel = CrmSQLAInterface(KycCaseEvent)
    class_permission_name = "KycCase"
    base_permissions = KYC_PERMISSIONS
    list_columns = show_columns = readable_columns(KycCaseEvent)
    search_columns = ["case_id", "to_status"]
    base_order = ("id", "asc")


class KycCaseDocumentApi(ReadOnlyRestApi):
    """The documents a case was submitted with (snapshotted at each submission)."""

    resource_name = "kyccasedocument"
    datamodel = CrmSQLAInterface(KycCaseDocument)
    class_permission_name = "KycCase"
    base_permissions = KYC_PERMISSIONS
    list_columns = show_columns = readable_columns(KycCaseDocument)
    search_columns = ["case_id", "document_id", "requirement"]
