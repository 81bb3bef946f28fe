"""Every screen and API of FinCRM, registered in one place (menu order = this order)."""

from __future__ import annotations

from flask import current_app
from flask_appbuilder import AppBuilder


def register_views(builder: AppBuilder) -> None:
    import app.billing.events  # noqa: F401  (invoices on timelines, renewals on calendars)
    import app.billing.models  # noqa: F401
    import app.brokerage.events  # noqa: F401  (trades on client timelines)
    import app.campaigns.models  # noqa: F401  (segments, campaigns; leads point at campaigns)
    import app.core.periodic_runs  # noqa: F401  (the scheduler's last runs)
    import app.forex.events  # noqa: F401  (exchanges and points on client timelines)
    import app.forex.models  # noqa: F401
    import app.kyc.report  # noqa: F401  (registers the KYC report for exports and e-mails)
    import app.ledger.models  # noqa: F401  (tables every desk posts to)
    import app.ledger.report  # noqa: F401  (registers the trial balance)
    import app.lending.events  # noqa: F401  (loans on client timelines and calendars)
    import app.lending.models  # noqa: F401
    import app.loyalty.models  # noqa: F401
    import app.market_data.models  # noqa: F401  (prices and rates pushed by a provider)
    import app.payments.models  # noqa: F401  (payment links, provider events, parked credits)
    import app.support.models  # noqa: F401  (support cases and their conversations)
    from app.audit.views import AuditLogApi, AuditLogView
    from app.billing.api import BillingProductApi, ContractApi, InvoiceApi, QuotationApi
    from app.billing.views import (
        BillingProductView,
        ContractView,
        InvoiceView,
        PaymentView,
        QuotationView,
    )
    from app.boards.views import ApplicationBoardView, LeadBoardView
    from app.brokerage.api import InstrumentApi, PortfolioApi, TradeApi
    from app.brokerage.views import InstrumentView, PortfolioView, TradeView
    from app.campaigns.api import CampaignApi, CampaignRecipientApi, CampaignSegmentApi
    from app.campaigns.views import CampaignRecipientView, CampaignSegmentView, CampaignView
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
    from app.dashboards.drilldown import register_drill_down_views
    from app.dashboards.views import DASHBOARD_VIEWS, PlotlyScriptView
    from app.documents.api import DocumentApi
    from app.documents.views import DocumentView
    from app.exports.views import ExportJobView, ReportsView
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
    from app.payments.views import PaymentCreditView, PaymentEventView, PaymentIntentView
    from app.reports.views import ReportScheduleView
    from app.support.api import SupportCaseApi, SupportMessageApi, SupportTranscriptApi
    from app.support.views import SupportCaseView, SupportQueueView
    from app.tasks.api import TaskApi
    from app.tasks.views import (
        CalendarView,
        MyTasksView,
        OverdueTasksView,
        TaskView,
        feed_blueprint,
    )

    # The menu: one per desk, and each entry where the person doing that work looks for it
    # (README "Navigation"). Categories appear in the order they are first used here.
    dashboards = {view.dashboard.menu: view for view in DASHBOARD_VIEWS}

    def dashboard(menu: str, category: str) -> None:
        builder.add_view(dashboards.pop(menu), menu, icon="fa-bar-chart", category=category)

    work = "Work"
    builder.add_link("Home", href="/", icon="fa-home", category=work, category_icon="fa-briefcase")
    builder.add_view(MyTasksView, "My tasks", icon="fa-check-square-o", category=work)
    builder.add_view(OverdueTasksView, "Overdue", icon="fa-exclamation-triangle", category=work)
    builder.add_view(TaskView, "All tasks", icon="fa-list", category=work)
    builder.add_view(CalendarView, "Calendar", icon="fa-calendar", category=work)
    builder.add_separator(work)
    builder.add_view(SupportQueueView, "Support queue", icon="fa-life-ring", category=work)
    builder.add_view(SupportCaseView, "Support cases", icon="fa-inbox", category=work)
    dashboard("Support overview", work)
    builder.add_separator(work)
    builder.add_view(NotificationCenterView, "Notifications", icon="fa-bell", category=work)
    builder.add_view(MyPreferencesView, "My preferences", icon="fa-cog", category=work)
    builder.add_separator(work)
    builder.add_view(ReportsView, "All reports", icon="fa-table", category=work)
    builder.add_view(ExportJobView, "My exports", icon="fa-download", category=work)
    builder.add_view(ReportScheduleView, "Scheduled reports", icon="fa-clock-o", category=work)

    sales = "Sales"
    builder.add_view(
        LeadView, "Leads", icon="fa-user-plus", category=sales, category_icon="fa-handshake-o"
    )
    builder.add_view(LeadBoardView, "Lead board", icon="fa-columns", category=sales)
    builder.add_view(LeadImportView, "Import leads", icon="fa-upload", category=sales)
    builder.add_view(InteractionView, "Interactions", icon="fa-comments", category=sales)
    builder.add_view(ClientView, "Clients", icon="fa-address-book", category=sales)
    builder.add_view(OfferView, "Offers", icon="fa-gift", category=sales)
    builder.add_view(CampaignView, "Campaigns", icon="fa-bullhorn", category=sales)
    builder.add_view(CampaignSegmentView, "Segments", icon="fa-filter", category=sales)
    builder.add_separator(sales)
    dashboard("Pipeline", sales)

    lending = "Lending"
    builder.add_view(
        LoanApplicationView,
        "Loan applications",
        icon="fa-university",
        category=lending,
        category_icon="fa-money",
    )
    builder.add_view(ApplicationBoardView, "Application board", icon="fa-columns", category=lending)
    builder.add_view(NewApplicationView, "New application", icon="fa-plus", category=lending)
    builder.add_view(LoanProductView, "Loan products", icon="fa-cubes", category=lending)
    builder.add_view(BrokerView, "Brokers", icon="fa-briefcase", category=lending)
    builder.add_separator(lending)
    dashboard("Loan book", lending)

    finance = "Finance"
    builder.add_view(
        BillingProductView,
        "Products and services",
        icon="fa-tags",
        category=finance,
        category_icon="fa-file-text-o",
    )
    builder.add_view(QuotationView, "Quotations", icon="fa-file-o", category=finance)
    builder.add_view(InvoiceView, "Invoices", icon="fa-file-text", category=finance)
    builder.add_view(PaymentView, "Payments", icon="fa-money", category=finance)
    builder.add_view(PaymentIntentView, "Payment links", icon="fa-link", category=finance)
    builder.add_view(PaymentCreditView, "Parked credits", icon="fa-pause", category=finance)
    builder.add_view_no_menu(PaymentEventView)
    builder.add_view(ContractView, "Contracts", icon="fa-handshake-o", category=finance)
    builder.add_separator(finance)
    builder.add_view(AccountView, "Chart of accounts", icon="fa-list-ol", category=finance)
    builder.add_view(JournalView, "Journal", icon="fa-book", category=finance)
    builder.add_view(TrialBalanceView, "Trial balance", icon="fa-balance-scale", category=finance)
    builder.add_separator(finance)
    dashboard("Receivables", finance)

    markets = "Markets"
    builder.add_view(
        TradeView, "Trades", icon="fa-exchange", category=markets, category_icon="fa-line-chart"
    )
    builder.add_view(InstrumentView, "Instruments", icon="fa-bar-chart", category=markets)
    builder.add_separator(markets)
    builder.add_view(ExchangeView, "Exchange", icon="fa-exchange", category=markets)
    builder.add_view(FxExchangeView, "Exchanges", icon="fa-list", category=markets)
    builder.add_view(WalletView, "Wallets", icon="fa-credit-card", category=markets)
    builder.add_view(CurrencyView, "Currencies", icon="fa-money", category=markets)
    builder.add_view(FxRateView, "FX rates", icon="fa-line-chart", category=markets)
    builder.add_view(ReserveView, "Reserves", icon="fa-university", category=markets)
    builder.add_view(VoucherView, "Vouchers", icon="fa-ticket", category=markets)
    builder.add_view(LoyaltyTransactionView, "Loyalty", icon="fa-star", category=markets)
    builder.add_separator(markets)
    dashboard("Portfolio value", markets)
    dashboard("FX volume", markets)

    compliance = "Compliance"
    builder.add_view(
        DocumentView,
        "Documents",
        icon="fa-file-text-o",
        category=compliance,
        category_icon="fa-shield",
    )
    builder.add_view(KycCaseView, "KYC cases", icon="fa-id-card", category=compliance)
    builder.add_view(KycQueueView, "KYC queue", icon="fa-check-circle", category=compliance)
    builder.add_view(KycReportView, "KYC report", icon="fa-bar-chart", category=compliance)
    builder.add_view(AuditLogView, "Audit log", icon="fa-history", category=compliance)
    builder.add_separator(compliance)
    dashboard("KYC overview", compliance)

    organisation = "Organisation"
    builder.add_view(
        BranchView,
        "Branches",
        icon="fa-building",
        category=organisation,
        category_icon="fa-sitemap",
    )
    builder.add_view(StaffView, "Staff", icon="fa-id-badge", category=organisation)
    builder.add_separator(organisation)
    builder.add_view(OutboxView, "Outbox", icon="fa-paper-plane", category=organisation)
    builder.add_view(MessageLogView, "Message log", icon="fa-list", category=organisation)
    builder.add_view(PreferenceView, "Preferences", icon="fa-sliders", category=organisation)
    builder.add_view(JobsView, "Jobs", icon="fa-cogs", category=organisation)
    assert not dashboards, f"dashboards without a menu entry: {sorted(dashboards)}"
    _fold_security_menu(builder, organisation)

    from app.search.views import SearchView

    builder.add_view_no_menu(SearchView)  # the navbar's search box

    # Reached from other screens (a client's page, a product's, a portfolio...), not the menu.
    builder.add_view_no_menu(OfferDeliveryView)
    builder.add_view_no_menu(CampaignRecipientView)
    builder.add_view_no_menu(ClientContactView)
    builder.add_view_no_menu(ClientDirectorView)
    builder.add_view_no_menu(LoanProductFeeView)
    builder.add_view_no_menu(PortfolioView)
    builder.add_view_no_menu(RedeemView)
    for api in (BillingProductApi, QuotationApi, InvoiceApi, ContractApi):
        builder.add_api(api)
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
        CampaignSegmentApi,
        CampaignApi,
        CampaignRecipientApi,
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
        SupportCaseApi,
        SupportMessageApi,
        SupportTranscriptApi,
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
    from app.extensions import csrf
    from app.payments.webhooks import payment_webhooks

    # Payment providers' webhooks: signed, not signed in; throttled per address all the same.
    builder.sm.limiter.limit(
        lambda: current_app.config.get("CRM_PAYMENT_WEBHOOK_RATE_LIMIT", "120 per minute"),
        methods=["POST"],
    )(payment_webhooks)
    csrf.exempt(payment_webhooks)
    current_app.register_blueprint(payment_webhooks)
    from app.campaigns.views import campaign_unsubscribe

    # Unsubscribe links: the signed token is the credential (a mail client's one-click POST
    # carries no CSRF token); throttled per address.
    builder.sm.limiter.limit(
        lambda: current_app.config.get("CRM_UNSUBSCRIBE_RATE_LIMIT", "30 per minute")
    )(campaign_unsubscribe)
    csrf.exempt(campaign_unsubscribe)
    current_app.register_blueprint(campaign_unsubscribe)

    from app.market_data.webhooks import market_webhooks

    # Prices and FX rates pushed by a market-data provider: signed, throttled the same way.
    builder.sm.limiter.limit(
        lambda: current_app.config.get("CRM_PRICE_WEBHOOK_RATE_LIMIT", "600 per minute"),
        methods=["POST"],
    )(market_webhooks)
    csrf.exempt(market_webhooks)
    current_app.register_blueprint(market_webhooks)
    from app.core.health import health

    # Liveness and readiness probes: no sign-in, no session, no secrets in the answer.
    current_app.register_blueprint(health)


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
    from app.payments.api import PaymentCreditApi, PaymentEventApi, PaymentIntentApi
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
        PaymentIntentApi,
        PaymentEventApi,
        PaymentCreditApi,
    ):
        builder.add_api(api)
    if current_app.config.get("FAB_API_SWAGGER_UI"):
        builder.add_api(CrmOpenApi)
        builder.add_view_no_menu(CrmSwaggerView)


def _fold_security_menu(builder: AppBuilder, category: str) -> None:
    """FAB's security screens (users, roles, permissions, API keys), which FAB puts in a menu
    of their own, go at the end of ``category`` after a separator: one menu fewer in the
    Admin's navbar. Each entry keeps its own name, so who may see it is unchanged."""
    menu = builder.menu
    security = menu.find("Security")
    target = menu.find(category)
    if security is None or target is None or not security.childs:
        return
    builder.add_separator(category)
    target.childs.extend(security.childs)
    menu.menu.remove(security)
