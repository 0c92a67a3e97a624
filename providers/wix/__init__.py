"""Wix Bookings, the business side: calsync as a Wix app writing and reading staff schedules."""
