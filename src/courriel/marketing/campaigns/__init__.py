"""Campaigns: audience, sending, message building, tracking references."""
