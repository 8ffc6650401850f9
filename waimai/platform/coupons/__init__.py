"""Coupons: issued by compensation and by support (never by hand-editing balances), redeemed at checkout."""
