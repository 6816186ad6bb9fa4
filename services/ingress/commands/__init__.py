"""The SMVue backend's command API: schedule / reschedule / cancel / Sync Now, their
outcomes, and the team rosters they are checked against."""
