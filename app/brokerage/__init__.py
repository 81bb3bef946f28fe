"""Brokerage desk: instruments, trades, holdings, prices and suitability."""
