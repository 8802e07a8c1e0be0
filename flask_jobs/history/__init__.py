"""The job history: the events every attempt sends, the SQL table they become (one row per
attempt), hourly roll-ups, queries over both, and the recorder process that writes them."""
