"""CalDAV servers, Apple iCloud among them: an account (username and password), its calendar
collections; no push, so calendars are polled."""
