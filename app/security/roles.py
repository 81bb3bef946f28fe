"""Every role of FinCRM and what it may do, declared as data.

``flask crm init`` turns this module into FAB permissions (see ``app.security.sync``); the
role x endpoint matrix test reads it to decide what each role must be allowed and refused.

A *resource* is the ``class_permission_name`` shared by a screen and its API. Each resource has
three actions: ``read`` (list, show, API get, info), ``write`` (add, edit, actions, API post/put)
and ``delete``. A role's *scope* says which rows of a scoped resource it sees (see
``app.security.scoping``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

READ, WRITE, DELETE, REVEAL, APPROVE = "read", "write", "delete", "reveal", "approve"
DECIDE, REPAY, INGEST = "decide", "repay", "ingest"
"""Lending: ``decide`` approves, declines, settles and closes applications; ``repay`` records
money received (repayments, fee payments). Support: ``ingest`` files raw e-mail into cases
(the mail gateway's account)."""
R = frozenset({READ})
RW = frozenset({READ, WRITE})
RWD = frozenset({READ, WRITE, DELETE})

# Scope kinds; a scoped model says what each kind means for its rows.
SCOPE_ALL = "all"
SCOPE_BRANCH = "branch"
SCOPE_OWN = "own"
SCOPE_BDM = "bdm"
SCOPE_BROKER = "broker"

# Screen and API method -> action. Both share the resource name, so one grant covers both.
VIEW_METHOD_ACTIONS = {
    "list": READ,
    "show": READ,
    "download": READ,
    "add": WRITE,
    "edit": WRITE,
    "action": WRITE,
    "action_post": WRITE,
    "delete": DELETE,
}
API_METHOD_ACTIONS = {
    "get_list": READ,
    "get": READ,
    "info": READ,
    "post": WRITE,
    "put": WRITE,
    "delete": DELETE,
}

# The business resources registered so far, each with the menu entries that lead to it.
RESOURCES: dict[str, tuple[str, ...]] = {
    "Home": ("Home",),
    "Branch": ("Branches",),
    "Staff": ("Staff",),
    "Lead": ("Leads", "Lead board"),
    "LeadImport": ("Import leads",),
    "Interaction": ("Interactions",),
    "Client": ("Clients",),
    "ClientContact": (),
    "ClientDirector": (),
    "Task": ("My tasks", "Overdue", "All tasks", "Calendar"),
    "SupportCase": ("Support queue", "Support cases"),
    "Document": ("Documents",),
    "KycCase": ("KYC cases",),
    "KycQueue": ("KYC queue",),
    "KycReport": ("KYC report",),
    "AuditLog": ("Audit log",),
    "Notification": ("Notifications", "My preferences"),
    "Outbox": ("Outbox",),
    "MessageLog": ("Message log",),
    "NotificationPreference": ("Preferences",),
    "Jobs": ("Jobs",),
    "LoanApplication": ("Loan applications", "Application board", "New application"),
    "LoanProduct": ("Loan products",),
    "Broker": ("Brokers",),
    "Ledger": ("Chart of accounts", "Journal", "Trial balance"),
    "Offer": ("Offers",),
    "OfferDelivery": (),
    # Marketing campaigns: saved segments, campaigns, who each reached
    "Campaign": ("Campaigns",),
    "CampaignSegment": ("Segments",),
    "CampaignRecipient": (),
    # Billing desk
    "BillingProduct": ("Products and services",),
    "Quotation": ("Quotations",),
    "Invoice": ("Invoices", "Payments"),
    "PaymentLink": ("Payment links",),
    "PaymentCredit": ("Parked credits",),
    "Contract": ("Contracts",),
    "Instrument": ("Instruments",),
    "Trade": ("Trades",),
    "Currency": ("Currencies", "FX rates"),
    "Wallet": ("Wallets",),
    "FxExchange": ("Exchange", "Exchanges"),
    "FxReserve": ("Reserves",),
    "Loyalty": ("Vouchers", "Loyalty"),
    # Exports: every list and report (read access to it is enough), one's own large exports.
    "Export": ("All reports", "My exports"),
    "ReportSchedule": ("Scheduled reports",),
    # Dashboards: one resource per audience
    "SalesDashboard": ("Pipeline",),
    "ComplianceDashboard": ("KYC overview",),
    "LendingDashboard": ("Loan book",),
    "BrokerageDashboard": ("Portfolio value",),
    "BillingDashboard": ("Receivables",),
    "ForexDashboard": ("FX volume",),
    "SupportDashboard": ("Support overview",),
}
# Actions a resource has beyond read/write/delete (each its own permission).
EXTRA_ACTIONS: dict[str, frozenset[str]] = {
    "Client": frozenset({REVEAL}),
    "KycCase": frozenset({APPROVE}),
    "LoanApplication": frozenset({DECIDE, REPAY}),
    "Invoice": frozenset({DECIDE, REPAY}),  # billing: decide issues and voids, repay records
    "Trade": frozenset({DECIDE}),  # settle and cancel trades
    "Wallet": frozenset({REPAY}),  # deposits and withdrawals
    "SupportCase": frozenset({INGEST}),  # inbound e-mail from the mail gateway
}
# Menu categories, one per desk (README "Navigation"): shown when the role can open any entry
# inside. At most 7, so every role's navbar holds one row. The Admin's "Organisation" also ends
# with FAB's security screens (ADMIN_ONLY_MENUS).
MENU_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Work": (
        "Home",
        "My tasks",
        "Overdue",
        "All tasks",
        "Calendar",
        "Support queue",
        "Support cases",
        "Support overview",
        "Notifications",
        "My preferences",
        "All reports",
        "My exports",
        "Scheduled reports",
    ),
    "Sales": (
        "Leads",
        "Lead board",
        "Import leads",
        "Interactions",
        "Clients",
        "Offers",
        "Campaigns",
        "Segments",
        "Pipeline",
    ),
    "Lending": (
        "Loan applications",
        "Application board",
        "New application",
        "Loan products",
        "Brokers",
        "Loan book",
    ),
    "Finance": (
        "Products and services",
        "Quotations",
        "Invoices",
        "Payments",
        "Payment links",
        "Parked credits",
        "Contracts",
        "Chart of accounts",
        "Journal",
        "Trial balance",
        "Receivables",
    ),
    "Markets": (
        "Trades",
        "Instruments",
        "Exchange",
        "Exchanges",
        "Wallets",
        "Currencies",
        "FX rates",
        "Reserves",
        "Vouchers",
        "Loyalty",
        "Portfolio value",
        "FX volume",
    ),
    "Compliance": (
        "Documents",
        "KYC cases",
        "KYC queue",
        "KYC report",
        "Audit log",
        "KYC overview",
    ),
    "Organisation": ("Branches", "Staff", "Outbox", "Message log", "Preferences", "Jobs"),
}
MAX_TOP_MENUS = 7
OPERATIONS_ONLY = frozenset({"Jobs"})
"""Resources of running the system, not records: the Admin's alone (the Auditor reads every
record but not these)."""
# Every signed-in member of staff has these, whatever their role.
EVERYONE: dict[str, frozenset[str]] = {"Home": R, "Notification": R, "Export": R}
# Every role works on its own tasks (row scope decides which); the Auditor only reads them, so
# this is granted role by role rather than through EVERYONE.
OWN_TASKS: dict[str, frozenset[str]] = {"Task": RW}
DASHBOARDS_ALL: dict[str, frozenset[str]] = {
    resource: R for resource in RESOURCES if resource.endswith("Dashboard")
}
"""Read on every audience's dashboard (Manager; Admin and Auditor have every resource)."""

# FAB's own screens. Self-service ones every signed-in role gets; the rest are Admin's alone.
SELF_SERVICE_PERMISSIONS = frozenset(
    {
        ("can_userinfo", "UserDBModelView"),
        ("can_this_form_get", "ResetMyPasswordView"),
        ("can_this_form_post", "ResetMyPasswordView"),
        ("can_this_form_get", "UserInfoEditView"),
        ("can_this_form_post", "UserInfoEditView"),
        ("resetmypassword", "UserDBModelView"),
        ("userinfoedit", "UserDBModelView"),
    }
)
ADMIN_ONLY_VIEWS = frozenset(
    {
        "UserDBModelView",
        "RoleModelView",
        "PermissionViewMenuModelView",
        "PermissionModelView",
        "PermissionViewModelView",
        "UserGroupModelView",
        "ViewMenuModelView",
        "UserStatsChartView",
        "RegisterUserModelView",
        "ResetPasswordView",
        "Security",
        "SecurityApi",
        "User",
        "Role",
        "Permission",
        "ViewMenu",
        "PermissionViewMenu",
        "Group",
        "GroupModelView",
        "ApiKey",
        "ApiKeyModelView",
        "ApiKeyApi",
        "MenuApi",
        "OpenApi",
        "SwaggerView",
    }
)
ADMIN_ONLY_MENUS = frozenset(
    {
        "Security",
        "List Users",
        "List Roles",
        "List Groups",
        "User's Statistics",
        "Base Permissions",
        "Views/Menus",
        "Permission on Views/Menus",
        "API Keys",
    }
)


@dataclass(frozen=True)
class RoleSpec:
    name: str
    scope: str
    grants: dict[str, frozenset[str]] = field(default_factory=dict)
    description: str = ""


def _with_everyone(grants: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    merged = dict(grants)
    for resource, actions in EVERYONE.items():
        merged[resource] = merged.get(resource, frozenset()) | actions
    return merged


ROLES: dict[str, RoleSpec] = {
    spec.name: RoleSpec(spec.name, spec.scope, _with_everyone(spec.grants), spec.description)
    for spec in (
        RoleSpec(
            "Admin",
            SCOPE_ALL,
            {resource: RWD | EXTRA_ACTIONS.get(resource, frozenset()) for resource in RESOURCES},
            "Everything, including users, roles, settings and the audit log.",
        ),
        RoleSpec(
            "Manager",
            SCOPE_BRANCH,
            {
                "Branch": R,
                "Staff": R,
                "Lead": RWD,
                "LeadImport": RW,
                "Interaction": RWD,
                "Client": RWD,
                "ClientContact": RWD,
                "ClientDirector": RWD,
                "Document": RW,
                "KycCase": RW,
                "KycReport": R,
                "Task": RWD,
                "LoanProduct": R,
                "Broker": RW,
                "LoanApplication": RW | {DECIDE, REPAY},
                "Ledger": R,
                "Offer": RW,
                "OfferDelivery": R,
                "Campaign": RW,
                "CampaignSegment": RW,
                "CampaignRecipient": R,
                "BillingProduct": RW,
                "Quotation": RW,
                "Invoice": RW | {DECIDE, REPAY},
                "PaymentLink": R,
                "PaymentCredit": RW,
                "Contract": RW,
                "Instrument": RW,
                "Trade": RW | {DECIDE},
                "Currency": RW,
                "Wallet": RW | {REPAY},
                "FxExchange": RW,
                "Loyalty": RW,
                "SupportCase": RW,
                **DASHBOARDS_ALL,
            },
            "Everything in their branch; reassigns work; dashboards and exports.",
        ),
        RoleSpec(
            "Agent",
            SCOPE_OWN,
            {
                "Branch": R,
                "Lead": RW,
                "LeadImport": RW,
                "Interaction": RW,
                "Client": RW,
                "ClientContact": RWD,
                "ClientDirector": RWD,
                "Document": RW,
                "KycCase": RW,
                "Offer": R,
                "OfferDelivery": R,
                "Campaign": R,
                "CampaignSegment": R,
                "CampaignRecipient": R,
                "BillingProduct": R,
                "Quotation": RW,
                "Invoice": R,
                "PaymentLink": R,
                "Contract": RW,
                "Instrument": R,
                "Trade": RW,
                "Currency": R,
                "Wallet": R,
                "FxExchange": RW,
                "Loyalty": RW,
                "SupportCase": RW,
                **OWN_TASKS,
                "SalesDashboard": R,
                "BrokerageDashboard": R,
                "ForexDashboard": R,
            },
            "Leads, clients, tasks and interactions assigned to them; no approvals.",
        ),
        RoleSpec(
            "Compliance",
            SCOPE_ALL,
            {
                "Branch": R,
                "Client": R | {REVEAL},
                "ClientContact": R,
                "ClientDirector": R,
                "Document": RW,
                "KycCase": R | {APPROVE},
                "KycQueue": RW,
                "KycReport": R,
                "AuditLog": R,
                "MessageLog": R,
                "PaymentLink": R,
                "PaymentCredit": R,
                "Contract": R,
                "Instrument": R,
                "Trade": R,
                "Wallet": R,
                "FxExchange": R,
                **OWN_TASKS,
                "ComplianceDashboard": R,
            },
            "KYC review and approval, documents, compliance dashboard; reads the audit log and the "
            "message log.",
        ),
        RoleSpec(
            "LoanOfficer",
            SCOPE_BDM,
            {
                "Branch": R,
                "LoanProduct": R,
                "Broker": R,
                "LoanApplication": RW | {DECIDE, REPAY},
                "PaymentLink": R,
                **OWN_TASKS,
                "LendingDashboard": R,
            },
            "Loan applications where they are the BDM, their brokers, notes, fees, repayments.",
        ),
        RoleSpec(
            "Broker",
            SCOPE_BROKER,
            {
                "LoanProduct": R,
                "Broker": R,
                "LoanApplication": RW,
                **OWN_TASKS,
                "LendingDashboard": R,
            },
            "Only the loan applications they introduced.",
        ),
        RoleSpec(
            "Support",
            SCOPE_BRANCH,
            {
                "Branch": R,
                "Client": R,
                "ClientContact": R,
                "Interaction": R,
                "SupportCase": RW,
                **OWN_TASKS,
                "SupportDashboard": R,
            },
            "Customer service: the support cases of their branch's clients, the queue, replies.",
        ),
        RoleSpec(
            "Auditor",
            SCOPE_ALL,
            {resource: R for resource in RESOURCES if resource not in OPERATIONS_ONLY},
            "Read-only on every record, including the audit log (not the Admin's jobs page).",
        ),
    )
}

ADMIN_ROLE = "Admin"


def allowed(role: str, resource: str, action: str) -> bool:
    """Whether ``role`` may perform ``action`` on ``resource`` according to this module."""
    return action in ROLES[role].grants.get(resource, frozenset())


def menus_for(role: str) -> set[str]:
    """Menu entries and categories a role sees: those leading to a resource it can read."""
    spec = ROLES[role]
    entries = {
        menu
        for resource, menus in RESOURCES.items()
        if READ in spec.grants.get(resource, frozenset())
        for menu in menus
    }
    categories = {name for name, items in MENU_CATEGORIES.items() if entries.intersection(items)}
    return entries | categories


SCOPE_WORDS = {
    SCOPE_ALL: "all",
    SCOPE_BRANCH: "their branch",
    SCOPE_OWN: "their own: leads and clients assigned to them, and those clients' records",
    SCOPE_BDM: "applications they are the BDM of; brokers who work with them",
    SCOPE_BROKER: "applications they introduced",
}
ROLE_TABLE_START, ROLE_TABLE_END = "<!-- role table: start -->", "<!-- role table: end -->"


def _words(resource: str) -> str:
    out = "".join(
        f" {c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(resource)
    )
    return out.replace("kyc", "KYC").replace("fx", "FX")


def _grants_text(spec: RoleSpec) -> str:
    grants = {r: a for r, a in spec.grants.items() if r not in EVERYONE or a != EVERYONE[r]}
    if spec.name == ADMIN_ROLE:
        return "every resource, every action; users, roles and API keys"
    groups: dict[str, list[str]] = {}
    for resource in RESOURCES:
        actions = grants.get(resource)
        if not actions:
            continue
        label = "/".join(a for a in (READ, WRITE, DELETE) if a in actions)
        extra = sorted(actions - {READ, WRITE, DELETE})
        key = label + (f", {', '.join(extra)}" if extra else "")
        groups.setdefault(key, []).append(resource)
    parts = []
    for key, resources in groups.items():
        missing = [r for r in RESOURCES if r not in resources and r not in EVERYONE]
        if len(resources) > len(RESOURCES) * 0.8:
            names = "every resource except " + ", ".join(_words(r) for r in missing)
        else:
            names = ", ".join(_words(r) for r in resources)
        parts.append(f"{names} ({key})")
    return "; ".join(parts)


def role_table() -> str:
    """The README's role table, made from ``ROLES`` (a test keeps the README equal to it)."""
    lines = ["| role | what they do | grants (resource: actions) | rows |", "|---|---|---|---|"]
    for spec in ROLES.values():
        lines.append(
            f"| {spec.name} | {spec.description} | {_grants_text(spec)} | {SCOPE_WORDS[spec.scope]} |"
        )
    return "\n".join(lines)
