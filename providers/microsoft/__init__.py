"""Microsoft 365 / Outlook through Microsoft Graph: a mailbox (OAuth, MSAL), its calendars,
change-notification subscriptions as push channels."""
