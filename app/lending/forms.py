"""The application screen's form: the loan, then any number of parties (borrowers and
guarantors, people or companies). Field names match the service's error keys
(``amount``, ``parties-2-abn``), so every message lands beside its input."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    FieldList,
    Form,
    FormField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional

from app.lending.models import (
    APPLICATION_TYPES,
    EMPLOYMENT_TYPES,
    FREQUENCIES,
    MARITAL_STATUSES,
    PARTY_ROLES,
    PARTY_TYPES,
    RESIDENCIES,
)


def _choices(values: tuple[str, ...], blank: bool = False) -> list[tuple[str, str]]:
    options = [(v, v.replace("_", " ").capitalize()) for v in values]
    return [("", "—"), *options] if blank else options


def _text(label: str, **kwargs) -> StringField:
    return StringField(label, validators=[Optional()], **kwargs)


class PartyForm(Form):
    """One borrower or guarantor. Checked by the service, not here (one set of rules for the
    screen and the API)."""

    role = SelectField("Role", choices=_choices(PARTY_ROLES))
    party_type = SelectField("Type", choices=_choices(PARTY_TYPES))
    guarantees = _text("Guarantees borrower no.")
    title = _text("Title")
    first_name = _text("First name")
    last_name = _text("Last name")
    date_of_birth = _text("Date of birth", render_kw={"type": "date"})
    marital_status = SelectField("Marital status", choices=_choices(MARITAL_STATUSES, True))
    residency = SelectField("Residency", choices=_choices(RESIDENCIES, True))
    dependants = _text("Dependants")
    employer = _text("Employer")
    occupation = _text("Occupation")
    employment_type = SelectField("Employment", choices=_choices(EMPLOYMENT_TYPES, True))
    years_employed = _text("Years employed")
    annual_income = _text("Annual income")
    monthly_expenses = _text("Monthly expenses")
    tax_id = _text("Tax id (TFN or PAN)")
    company_name = _text("Company name")
    abn = _text("ABN")
    acn = _text("ACN")
    directors = TextAreaField("Directors (one per line)", validators=[Optional()])
    email = _text("E-mail")
    phone = _text("Phone")
    address = TextAreaField("Address", validators=[Optional()])
    total_assets = _text("Total assets")
    total_liabilities = _text("Total liabilities")
    bank_name = _text("Bank")
    bank_account = _text("Bank account")

    INDIVIDUAL = (
        "title",
        "first_name",
        "last_name",
        "date_of_birth",
        "marital_status",
        "residency",
        "dependants",
        "employer",
        "occupation",
        "employment_type",
        "years_employed",
        "annual_income",
        "monthly_expenses",
        "tax_id",
    )
    COMPANY = ("company_name", "abn", "acn", "directors")
    SHARED = (
        "email",
        "phone",
        "address",
        "total_assets",
        "total_liabilities",
        "bank_name",
        "bank_account",
    )


class ApplicationForm(FlaskForm):
    product_id = SelectField("Loan product", choices=[])
    amount = _text("Amount")
    term_months = _text("Term (months)")
    interest_rate = _text("Interest rate (% a year)")
    repayment_frequency = SelectField(
        "Repayment frequency", choices=_choices(FREQUENCIES), default="monthly"
    )
    application_type = SelectField("Application type", choices=_choices(APPLICATION_TYPES))
    purpose = TextAreaField("Purpose", validators=[Optional()])
    estimated_settlement_date = _text("Estimated settlement", render_kw={"type": "date"})
    stage = SelectField(
        "Submit as",
        choices=[("application", "Application (ready for assessment)"), ("inquiry", "Inquiry")],
    )
    bdm_id = SelectField("BDM", choices=[])
    broker_id = SelectField("Broker", choices=[])
    client_id = SelectField("Client (optional)", choices=[])
    signed_by = _text("Signed by")
    signature_date = _text("Signature date", render_kw={"type": "date"})
    valuer_company = _text("Valuer company")
    valuer_contact = _text("Valuer contact")
    valuer_phone = _text("Valuer phone")
    valuer_email = _text("Valuer e-mail")
    qs_company = _text("QS company")
    qs_contact = _text("QS contact")
    qs_phone = _text("QS phone")
    qs_email = _text("QS e-mail")
    parties = FieldList(FormField(PartyForm), min_entries=1, max_entries=50)

    LOAN = (
        "product_id",
        "amount",
        "term_months",
        "interest_rate",
        "repayment_frequency",
        "application_type",
        "purpose",
        "estimated_settlement_date",
        "stage",
    )
    PEOPLE = ("bdm_id", "broker_id", "client_id")
    SIGNATURE = ("signed_by", "signature_date")
    VALUER = ("valuer_company", "valuer_contact", "valuer_phone", "valuer_email")
    QS = ("qs_company", "qs_contact", "qs_phone", "qs_email")
