"""The status page: what a person would rather look at than read logs. Server-rendered
(Jinja2 templates, plain HTML and CSS), behind HTTP basic auth like Flower (`access`), read
from calsync's own records (`queries`); its forms retry dead letters and resolve conflicts as
the External Calendars API does (`router`). Other modules add panels to a business's page
through `panels` (the demo world does)."""

from api.status_page.router import status_router

__all__ = ["status_router"]
