"""Money in from payment providers: payment links for invoices, loan instalments and wallet
top-ups, and the signed webhooks that record what the provider collected."""
