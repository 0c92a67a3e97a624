"""Webhooks under /webhooks: Wix's signed webhooks (`wix`), and the push notifications of every
calendar system that pushes (`systems`); both record in the inbox and enqueue (`inbox`)."""

from __future__ import annotations

from fastapi import APIRouter

from api.webhooks import systems, wix

router = APIRouter(prefix="/webhooks")
router.include_router(wix.router)  # before `/{system}`, which would take `/wix` too
router.include_router(systems.router)
