"""Wix's older External Calendar Sync API (v1): sync requests (`sync_requests`) and the approval
pages their email links to (`approval`), for the one calendar system v1 knows (`system`)."""

from fastapi import APIRouter

from api.v1 import approval, sync_requests

router = APIRouter()
router.include_router(sync_requests.router)
router.include_router(approval.router)
