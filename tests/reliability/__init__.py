"""The reliability and security suite (issue 7): real processes, real Redis, real databases."""
