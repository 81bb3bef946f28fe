"""Forex desk: currencies, rates, client wallets, exchanges and the desk's reserves."""
