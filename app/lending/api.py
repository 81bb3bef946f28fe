"""Lending API: applications (submitted with their parties in one call, all or nothing),
their workflow (stage, repayment, note, fee) and products and brokers. Same row scoping as the
screens: a broker asking for another broker's application gets 404."""

from __future__ import annotations

from flask_appbuilder.api import expose, protect, safe

from app.core.crud import (
    CrmSQLAInterface,
    ReadOnlyRestApi,
    ServiceModelRestApi,
    json_body,
    readable_columns,
)
from app.lending import services
from app.lending.models import (
    EDITABLE_COLUMNS,
    Broker,
    LoanApplication,
    LoanArrearsChange,
    LoanFee,
    LoanInstalment,
    LoanNote,
    LoanParty,
    LoanProduct,
    LoanProductFee,
    LoanRepayment,
    LoanRepaymentAllocation,
    LoanStageEvent,
)
from app.lending.views import APPLICATION_PERMISSIONS
from app.security.roles import API_METHOD_ACTIONS, DECIDE, REPAY

APPLICATION_COLUMNS = [
    "id",
    "reference",
    "stage",
    "stage_changed_at",
    "amount",
    "term_months",
    "interest_rate",
    "repayment_frequency",
    "application_type",
    "purpose",
    "product_id",
    "estimated_settlement_date",
    "branch_id",
    "bdm_id",
    "broker_id",
    "client_id",
    "signed_by",
    "signature_date",
    "valuer_company",
    "valuer_contact",
    "valuer_phone",
    "valuer_email",
    "qs_company",
    "qs_contact",
    "qs_phone",
    "qs_email",
    "settled_on",
    "instalment_amount",
    "days_past_due",
    "arrears_bucket",
    "created_at",
]


class LoanApplicationApi(ServiceModelRestApi):
    resource_name = "loanapplication"
    datamodel = CrmSQLAInterface(LoanApplication)
    class_permission_name = "LoanApplication"
    method_permission_name = {
        **API_METHOD_ACTIONS,
        "stage": "write",
        "note": "write",
        "repayment": REPAY,
        "fee": DECIDE,
        "pay_fee": REPAY,
        "payment_link": REPAY,
    }
    base_permissions = APPLICATION_PERMISSIONS
    prepare = staticmethod(services.prepare_edit)
    allow_browser_login = True
    include_route_methods = {
        "get",
        "get_list",
        "info",
        "put",
        "post",
        "stage",
        "note",
        "repayment",
        "fee",
        "pay_fee",
        "payment_link",
    }

    list_columns = APPLICATION_COLUMNS
    show_columns = APPLICATION_COLUMNS
    edit_columns = EDITABLE_COLUMNS
    search_columns = ["reference", "stage", "bdm_id", "broker_id", "branch_id", "arrears_bucket"]
    order_columns = ["id", "reference", "stage", "amount", "stage_changed_at"]

    @expose("/", methods=["POST"])
    @protect()
    @safe
    def post(self):
        """Submit an application with all its parties; nothing is saved unless all is valid.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    product_id: {type: integer}
                    amount: {type: string}
                    term_months: {type: integer}
                    interest_rate: {type: string}
                    repayment_frequency: {type: string}
                    bdm_id: {type: integer}
                    parties: {type: array, items: {type: object}}
          responses:
            201: {description: the application's id and reference}
            422: {description: every bad field, e.g. parties-2-abn}
        """
        body = json_body()
        parties = body.get("parties")
        if not isinstance(parties, list) or not all(isinstance(p, dict) for p in parties):
            return self.response(422, message={"parties": ["must be a list of objects."]})
        return self.run_workflow(
            lambda: services.submit_application(body, parties),
            lambda s: {
                "id": s.application.id,
                "reference": s.application.reference,
                "stage": s.application.stage,
                "parties": [p.id for p in s.parties],
            },
            201,
        )

    @expose("/<int:pk>/stage", methods=["POST"])
    @protect()
    @safe
    def stage(self, pk: int):
        """Move the application (``{"stage": "approved", "note": "...", "settled_on": "..."}``).
        ---
        post:
          responses:
            200: {description: the new stage}
            403: {description: a decision the caller may not take}
            404: {$ref: '#/components/responses/404'}
            409: {description: a move the state machine does not allow}
        """
        body = json_body()
        return self.run_workflow(
            lambda: services.move_stage(
                pk, body.get("stage", ""), body.get("note"), body.get("settled_on")
            ),
            lambda a: {"id": a.id, "reference": a.reference, "stage": a.stage},
        )

    @expose("/<int:pk>/repayment", methods=["POST"])
    @protect()
    @safe
    def repayment(self, pk: int):
        """Record money received (``{"amount": "2838.95", "received_on": "2026-02-28"}``).
        ---
        post:
          responses:
            201: {description: how it was allocated}
            404: {$ref: '#/components/responses/404'}
            422: {description: a bad amount, or more than the whole balance}
        """
        return self.run_workflow(
            lambda: services.record_repayment(pk, json_body()),
            lambda r: {
                "id": r.id,
                "amount": str(r.amount),
                "interest": str(r.interest_part),
                "principal": str(r.principal_part),
                "journal_entry_id": r.journal_entry_id,
            },
            201,
        )

    @expose("/<int:pk>/payment-link", methods=["POST"])
    @protect()
    @safe
    def payment_link(self, pk: int):
        """A payment link for the loan's next instalment still due (docs/payments.md).
        ---
        post:
          responses:
            201: {description: the link (url, amount, currency, status)}
            404: {$ref: '#/components/responses/404'}
            409: {description: nothing is due}
            503: {description: the payment provider did not answer}
        """
        from app.payments import services as payments

        return self.run_workflow(
            lambda: payments.link_for_instalment(pk), payments.intent_json, 201
        )

    @expose("/<int:pk>/note", methods=["POST"])
    @protect()
    @safe
    def note(self, pk: int):
        """Add a note (``{"body": "...", "remind_on": "2026-12-01"}``).
        ---
        post:
          responses:
            201: {description: the note's id}
            404: {$ref: '#/components/responses/404'}
        """
        body = json_body()
        return self.run_workflow(
            lambda: services.add_note(pk, body.get("body"), body.get("remind_on")),
            lambda n: {"id": n.id},
            201,
        )

    @expose("/<int:pk>/fee", methods=["POST"])
    @protect()
    @safe
    def fee(self, pk: int):
        """Charge a fee (``{"fee_type": "valuation", "amount": "450.00"}``).
        ---
        post:
          responses:
            201: {description: the fee's id}
            404: {$ref: '#/components/responses/404'}
        """
        return self.run_workflow(
            lambda: services.add_fee(pk, json_body()),
            lambda f: {"id": f.id, "status": f.status, "amount": str(f.amount)},
            201,
        )

    @expose("/<int:pk>/fee/<int:fee_id>/pay", methods=["POST"])
    @protect()
    @safe
    def pay_fee(self, pk: int, fee_id: int):
        """Record a fee's payment (``{"paid_on": "2026-02-01"}``).
        ---
        post:
          responses:
            200: {description: paid}
            404: {$ref: '#/components/responses/404'}
            409: {description: already paid}
        """
        return self.run_workflow(
            lambda: services.pay_fee(pk, fee_id, json_body().get("paid_on")),
            lambda f: {"id": f.id, "status": f.status},
        )


class LoanProductApi(ServiceModelRestApi):
    resource_name = "loanproduct"
    datamodel = CrmSQLAInterface(LoanProduct)
    class_permission_name = "LoanProduct"
    prepare = staticmethod(services.prepare_product)
    allow_browser_login = True
    list_columns = show_columns = [
        "id",
        "name",
        "loan_type",
        "min_rate",
        "max_rate",
        "min_term_months",
        "max_term_months",
        "min_amount",
        "max_amount",
        "active",
    ]
    add_columns = edit_columns = list_columns[1:]


class BrokerApi(ServiceModelRestApi):
    resource_name = "broker"
    datamodel = CrmSQLAInterface(Broker)
    class_permission_name = "Broker"
    prepare = staticmethod(services.prepare_broker)
    allow_browser_login = True
    list_columns = show_columns = [
        "id",
        "company",
        "contact_name",
        "email",
        "phone",
        "branch_id",
        "user_id",
        "commission_account_masked",
        "active",
    ]
    add_columns = edit_columns = [
        "company",
        "contact_name",
        "email",
        "phone",
        "branch_id",
        "active",
    ]


class LoanProductFeeApi(ServiceModelRestApi):
    """The fee templates a product charges every new application (managed like the product)."""

    resource_name = "loanproductfee"
    datamodel = CrmSQLAInterface(LoanProductFee)
    class_permission_name = "LoanProduct"
    base_permissions = ["can_read", "can_write", "can_delete"]
    prepare = staticmethod(services.prepare_fee_template)
    allow_browser_login = True
    list_columns = show_columns = ["id", "product_id", "fee_type", "amount"]
    add_columns = ["product_id", "fee_type", "amount"]
    edit_columns = ["fee_type", "amount"]
    search_columns = ["product_id", "fee_type"]


class _ApplicationRecordApi(ReadOnlyRestApi):
    """A record of an application written by its workflow (submit, stage, repayment, note,
    fee, the daily jobs): readable where the application is, never edited here."""

    class_permission_name = "LoanApplication"
    base_permissions = APPLICATION_PERMISSIONS
    search_columns = ["application_id"]


class LoanPartyApi(_ApplicationRecordApi):
    resource_name = "loanparty"
    datamodel = CrmSQLAInterface(LoanParty)
    list_columns = show_columns = readable_columns(
        LoanParty, extra=("tax_id_masked", "bank_account_masked")
    )
    search_columns = ["application_id", "role", "party_type"]


class LoanStageEventApi(_ApplicationRecordApi):
    resource_name = "loanstageevent"
    datamodel = CrmSQLAInterface(LoanStageEvent)
    list_columns = show_columns = readable_columns(LoanStageEvent)
    search_columns = ["application_id", "to_stage"]
    base_order = ("id", "asc")


class LoanNoteApi(_ApplicationRecordApi):
    resource_name = "loannote"
    datamodel = CrmSQLAInterface(LoanNote)
    list_columns = show_columns = readable_columns(LoanNote)


class LoanFeeApi(_ApplicationRecordApi):
    resource_name = "loanfee"
    datamodel = CrmSQLAInterface(LoanFee)
    list_columns = show_columns = readable_columns(LoanFee)
    search_columns = ["application_id", "fee_type", "status"]


class LoanInstalmentApi(_ApplicationRecordApi):
    resource_name = "loaninstalment"
    datamodel = CrmSQLAInterface(LoanInstalment)
    list_columns = show_columns = readable_columns(LoanInstalment)
    search_columns = ["application_id", "status", "due_date"]
    order_columns = ["id", "number", "due_date"]
    base_order = ("id", "asc")


class LoanRepaymentApi(_ApplicationRecordApi):
    resource_name = "loanrepayment"
    datamodel = CrmSQLAInterface(LoanRepayment)
    list_columns = show_columns = readable_columns(LoanRepayment)
    search_columns = ["application_id", "received_on"]


class LoanRepaymentAllocationApi(_ApplicationRecordApi):
    resource_name = "loanrepaymentallocation"
    datamodel = CrmSQLAInterface(LoanRepaymentAllocation)
    list_columns = show_columns = readable_columns(LoanRepaymentAllocation)
    search_columns = ["repayment_id", "instalment_id"]


class LoanArrearsChangeApi(_ApplicationRecordApi):
    resource_name = "loanarrearschange"
    datamodel = CrmSQLAInterface(LoanArrearsChange)
    list_columns = show_columns = readable_columns(LoanArrearsChange)
    search_columns = ["application_id", "to_bucket", "changed_on"]
