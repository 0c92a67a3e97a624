"""Google Calendar: an account (OAuth), its calendars, push channels (`events.watch`)."""
