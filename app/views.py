"""Every screen and API of FinCRM, registered in one place (menu order = this order)."""

from __future__ import annotations

from flask import current_app
from flask_appbuilder import AppBuilder


def register_views(builder: AppBuilder) -> None:
    import app.billing.events  # noqa: F401  (invoices on timelines, renewals on calendars)
    import app.billing.models  # noqa: F401
    import app.brokerage.events  # noqa: F401  (trades on client timelines)
    import app.core.periodic_runs  # noqa: F401  (the scheduler's last runs)
    import app.forex.events  # noqa: F401  (exchanges and points on client timelines)
    import app.forex.models  # noqa: F401
    import app.ledger.models  # noqa: F401  (tables every desk posts to)
    import app.lending.events  # noqa: F401  (loans on client timelines and calendars)
    import app.lending.models  # noqa: F401
    import app.loyalty.models  # noqa: F401
    from app.audit.views import AuditLogApi, AuditLogView
    from app.brokerage.api import InstrumentApi, PortfolioApi, TradeApi
    from app.brokerage.views import InstrumentView, PortfolioView, TradeView
    from app.clients.api import ClientApi, ClientContactApi, ClientDirectorApi
    from app.clients.views import ClientContactView, ClientDirectorView, ClientView
    from app.comms.views import (
        MessageLogView,
        MyPreferencesView,
        NotificationCenterView,
        OutboxView,
        PreferenceView,
    )
    from app.core.jobs_view import JobsView
    from app.documents.api import DocumentApi
    from app.documents.views import DocumentView
    from app.forex.api import CurrencyApi, FxExchangeApi, FxRateApi, ReserveApi, WalletApi
    from app.forex.views import (
        CurrencyView,
        ExchangeView,
        FxExchangeView,
        FxRateView,
        ReserveView,
        WalletView,
    )
    from app.kyc.api import KycCaseApi
    from app.kyc.views import KycCaseView, KycQueueView, KycReportView
    from app.leads.api import InteractionApi, LeadApi
    from app.leads.import_api import LeadImportApi
    from app.leads.import_views import LeadImportView
    from app.leads.views import InteractionView, LeadView
    from app.ledger.views import AccountView, JournalView, TrialBalanceView
    from app.lending.api import BrokerApi, LoanApplicationApi, LoanProductApi
    from app.lending.views import (
        BrokerView,
        LoanApplicationView,
        LoanProductFeeView,
        LoanProductView,
        NewApplicationView,
    )
    from app.loyalty.api import LoyaltyApi, VoucherApi
    from app.loyalty.views import LoyaltyTransactionView, RedeemView, VoucherView
    from app.offers.api import OfferApi
    from app.offers.views import OfferDeliveryView, OfferView
    from app.org.api import BranchApi, StaffApi
    from app.org.views import BranchView, StaffView
    from app.tasks.api import TaskApi
    from app.tasks.views import (
        CalendarView,
        MyTasksView,
        OverdueTasksView,
        TaskView,
        feed_blueprint,
    )

    builder.add_link(
        "Home", href="/", icon="fa-home", category="Work", category_icon="fa-briefcase"
    )
    builder.add_view(
        LeadView, "Leads", icon="fa-user-plus", category="Sales", category_icon="fa-handshake-o"
    )
    builder.add_view(LeadImportView, "Import leads", icon="fa-upload", category="Sales")
    builder.add_view(InteractionView, "Interactions", icon="fa-comments", category="Sales")
    builder.add_view(
        BranchView,
        "Branches",
        icon="fa-building",
        category="Organisation",
        category_icon="fa-sitemap",
    )
    builder.add_view(StaffView, "Staff", icon="fa-id-badge", category="Organisation")
    builder.add_view(ClientView, "Clients", icon="fa-address-book", category="Sales")
    builder.add_view(OfferView, "Offers", icon="fa-gift", category="Sales")
    builder.add_view_no_menu(OfferDeliveryView)
    # Reached from a client's page (related lists), not from the menu.
    builder.add_view_no_menu(ClientContactView)
    builder.add_view_no_menu(ClientDirectorView)
    builder.add_view(
        MyTasksView,
        "My tasks",
        icon="fa-check-square-o",
        category="Tasks",
        category_icon="fa-tasks",
    )
    builder.add_view(OverdueTasksView, "Overdue", icon="fa-exclamation-triangle", category="Tasks")
    builder.add_view(TaskView, "All tasks", icon="fa-list", category="Tasks")
    builder.add_view(CalendarView, "Calendar", icon="fa-calendar", category="Tasks")
    builder.add_view(
        DocumentView,
        "Documents",
        icon="fa-file-text-o",
        category="Compliance",
        category_icon="fa-shield",
    )
    builder.add_view(KycCaseView, "KYC cases", icon="fa-id-card", category="Compliance")
    builder.add_view(KycQueueView, "KYC queue", icon="fa-check-circle", category="Compliance")
    builder.add_view(KycReportView, "KYC report", icon="fa-bar-chart", category="Compliance")
    builder.add_view(AuditLogView, "Audit log", icon="fa-history", category="Compliance")
    builder.add_view(
        LoanApplicationView,
        "Loan applications",
        icon="fa-university",
        category="Lending",
        category_icon="fa-money",
    )
    builder.add_view(NewApplicationView, "New application", icon="fa-plus", category="Lending")
    builder.add_view(LoanProductView, "Loan products", icon="fa-cubes", category="Lending")
    builder.add_view_no_menu(LoanProductFeeView)
    builder.add_view(BrokerView, "Brokers", icon="fa-briefcase", category="Lending")
    builder.add_view(
        TradeView,
        "Trades",
        icon="fa-exchange",
        category="Brokerage",
        category_icon="fa-line-chart",
    )
    builder.add_view(InstrumentView, "Instruments", icon="fa-bar-chart", category="Brokerage")
    builder.add_view_no_menu(PortfolioView)
    builder.add_view(
        ExchangeView,
        "Exchange",
        icon="fa-exchange",
        category="Forex",
        category_icon="fa-globe",
    )
    builder.add_view(FxExchangeView, "Exchanges", icon="fa-list", category="Forex")
    builder.add_view(WalletView, "Wallets", icon="fa-credit-card", category="Forex")
    builder.add_view(CurrencyView, "Currencies", icon="fa-money", category="Forex")
    builder.add_view(FxRateView, "FX rates", icon="fa-line-chart", category="Forex")
    builder.add_view(ReserveView, "Reserves", icon="fa-university", category="Forex")
    builder.add_view(VoucherView, "Vouchers", icon="fa-ticket", category="Forex")
    builder.add_view(LoyaltyTransactionView, "Loyalty", icon="fa-star", category="Forex")
    builder.add_view_no_menu(RedeemView)
    builder.add_view(
        NotificationCenterView,
        "Notifications",
        icon="fa-bell",
        category="Communication",
        category_icon="fa-envelope",
    )
    builder.add_view(MyPreferencesView, "My preferences", icon="fa-cog", category="Communication")
    builder.add_view(OutboxView, "Outbox", icon="fa-paper-plane", category="Communication")
    builder.add_view(MessageLogView, "Message log", icon="fa-list", category="Communication")
    builder.add_view(PreferenceView, "Preferences", icon="fa-sliders", category="Communication")
    builder.add_view(JobsView, "Jobs", icon="fa-cogs", category="Communication")
    builder.add_view(
        AccountView,
        "Chart of accounts",
        icon="fa-list-ol",
        category="Accounts",
        category_icon="fa-book",
    )
    builder.add_view(JournalView, "Journal", icon="fa-book", category="Accounts")
    builder.add_view(
        TrialBalanceView, "Trial balance", icon="fa-balance-scale", category="Accounts"
    )
    import app.kyc.report  # noqa: F401  (registers the KYC report for exports and e-mails)
    import app.ledger.report  # noqa: F401  (registers the trial balance)
    from app.exports.views import ExportJobView, ReportsView
    from app.reports.views import ReportScheduleView

    builder.add_view(
        ReportsView, "All reports", icon="fa-table", category="Reports", category_icon="fa-download"
    )
    builder.add_view(ExportJobView, "My exports", icon="fa-download", category="Reports")
    builder.add_view(ReportScheduleView, "Scheduled reports", icon="fa-clock-o", category="Reports")
    from app.billing.api import BillingProductApi, ContractApi, InvoiceApi, QuotationApi
    from app.billing.views import (
        BillingProductView,
        ContractView,
        InvoiceView,
        PaymentView,
        QuotationView,
    )

    builder.add_view(
        BillingProductView,
        "Products and services",
        icon="fa-tags",
        category="Billing",
        category_icon="fa-file-text-o",
    )
    builder.add_view(QuotationView, "Quotations", icon="fa-file-o", category="Billing")
    builder.add_view(InvoiceView, "Invoices", icon="fa-file-text", category="Billing")
    builder.add_view(PaymentView, "Payments", icon="fa-money", category="Billing")
    builder.add_view(ContractView, "Contracts", icon="fa-handshake-o", category="Billing")
    for api in (BillingProductApi, QuotationApi, InvoiceApi, ContractApi):
        builder.add_api(api)
    from app.dashboards.drilldown import register_drill_down_views
    from app.dashboards.views import DASHBOARD_VIEWS, PlotlyScriptView

    for number, view in enumerate(DASHBOARD_VIEWS):
        builder.add_view(
            view,
            view.dashboard.menu,
            icon="fa-bar-chart",
            category="Dashboards",
            category_icon="fa-dashboard" if number == 0 else "",
        )
    register_drill_down_views(builder)
    builder.add_view_no_menu(PlotlyScriptView)
    for api in (
        LeadApi,
        LeadImportApi,
        InteractionApi,
        BranchApi,
        StaffApi,
        ClientApi,
        ClientContactApi,
        ClientDirectorApi,
        DocumentApi,
        KycCaseApi,
        AuditLogApi,
        TaskApi,
        LoanApplicationApi,
        LoanProductApi,
        BrokerApi,
        OfferApi,
        InstrumentApi,
        TradeApi,
        PortfolioApi,
        CurrencyApi,
        FxRateApi,
        WalletApi,
        FxExchangeApi,
        ReserveApi,
        VoucherApi,
        LoyaltyApi,
    ):
        builder.add_api(api)
    _register_record_apis(builder)
    # The private ICS feed: no sign-in (the secret link is the credential), so not a FAB view.
    current_app.register_blueprint(feed_blueprint)
    from app.leads.capture import public_leads

    # The public enquiry form: throttled per address (visitors and bots alike).
    builder.sm.limiter.limit(
        lambda: current_app.config.get("CRM_ENQUIRY_RATE_LIMIT", "5 per minute"), methods=["POST"]
    )(public_leads)
    current_app.register_blueprint(public_leads)


def _register_record_apis(builder: AppBuilder) -> None:
    """The API of every other entity: records written by the desks' workflows (read-only),
    the ledger, communication, and the keys other systems call with."""
    from app.billing.api import InvoiceLineApi, PaymentApi, QuotationLineApi
    from app.brokerage.api import InstrumentPriceApi, PositionApi
    from app.clients.api import RiskAssessmentApi
    from app.comms.api import (
        MessageLogApi,
        NotificationApi,
        NotificationPreferenceApi,
        OutboxApi,
    )
    from app.core.openapi import CrmOpenApi, CrmSwaggerView
    from app.exports.api import ExportJobApi
    from app.forex.api import WalletPostingApi
    from app.kyc.api import KycCaseDocumentApi, KycCaseEventApi
    from app.ledger.api import AccountApi, JournalEntryApi, JournalLineApi
    from app.lending.api import (
        LoanArrearsChangeApi,
        LoanFeeApi,
        LoanInstalmentApi,
        LoanNoteApi,
        LoanPartyApi,
        LoanProductFeeApi,
        LoanRepaymentAllocationApi,
        LoanRepaymentApi,
        LoanStageEventApi,
    )
    from app.loyalty.api import LoyaltyAccountApi, VoucherRedemptionApi
    from app.offers.api import OfferDeliveryApi
    from app.reports.api import ReportScheduleApi
    from app.security.api_keys import ApiKeyAdminApi

    for api in (
        AccountApi,
        JournalEntryApi,
        JournalLineApi,
        QuotationLineApi,
        InvoiceLineApi,
        PaymentApi,
        LoanProductFeeApi,
        LoanPartyApi,
        LoanStageEventApi,
        LoanNoteApi,
        LoanFeeApi,
        LoanInstalmentApi,
        LoanRepaymentApi,
        LoanRepaymentAllocationApi,
        LoanArrearsChangeApi,
        OfferDeliveryApi,
        NotificationApi,
        OutboxApi,
        MessageLogApi,
        NotificationPreferenceApi,
        PositionApi,
        InstrumentPriceApi,
        WalletPostingApi,
        LoyaltyAccountApi,
        VoucherRedemptionApi,
        RiskAssessmentApi,
        KycCaseEventApi,
        KycCaseDocumentApi,
        ApiKeyAdminApi,
        ExportJobApi,
        ReportScheduleApi,
    ):
        builder.add_api(api)
    if current_app.config.get("FAB_API_SWAGGER_UI"):
        builder.add_api(CrmOpenApi)
        builder.add_view_no_menu(CrmSwaggerView)
