"""Shipped reference tables (ISO 20816-3 limits)."""
