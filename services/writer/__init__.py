"""The writer: creates, reschedules and cancels the 1:1s people schedule in SMVue — and
only those — on their Outlook calendar."""
