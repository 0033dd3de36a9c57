"""One router per user group."""
