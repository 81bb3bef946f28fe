"""Market data pushed by a provider: signed webhooks carrying instrument prices and FX rates,
recorded through the same services as the pulled feeds."""
