"""Pure rules of writing to Outlook: no I/O, unit-tested without servers."""
