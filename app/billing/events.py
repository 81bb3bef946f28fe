"""The billing desk on a client's timeline and on staff calendars (filled in below)."""
