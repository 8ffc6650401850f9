"""Web Push to customers' phones: subscriptions per user, the push outbox and its sender, VAPID keys, the
local push-service stand-in (docs/operations.md "Push notifications")."""
