"""The console channel: the chat's messages printed as a reader would see them (no bot token set)."""
