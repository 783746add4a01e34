"""One router per area: ops (health, metrics), login, pages (gallery, photo, status), api."""
