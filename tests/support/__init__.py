"""What the tests share: stand-in servers (Bot API, Sentry, HTTP targets), the independent recomputation, daemon helpers."""
