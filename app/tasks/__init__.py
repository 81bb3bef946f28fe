"""Tasks and the calendar: to-dos with a due time, reminders, an overdue list, a month and week
view of everything dated for a member of staff, and a private ICS feed of it."""
