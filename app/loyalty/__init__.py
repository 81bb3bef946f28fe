"""Loyalty: points earned on exchanges, vouchers redeemed for points."""
