"""The calendar side of the emulator: events, recurrence, calendarView and its delta."""
