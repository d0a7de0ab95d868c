"""Twitch chat as a platform: reading and sending connections under Twitch's limits (issue 12; in
progress: placement so far)."""
