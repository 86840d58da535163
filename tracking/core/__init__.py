"""Pure values and rules, no I/O: sources, certificates, registration parsing, the schedule,
errors, clock, settings and text checks. Testable with no socket and no database."""
