"""Errors the user can fix."""


class UserError(Exception):
    """A problem the user can fix; printed as one line with what to do next."""
