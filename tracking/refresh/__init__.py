"""The update pipeline and its writes: claim -> probe -> decode -> diff -> one transaction
(details, RAW file, Activity note, schedule) -> release."""
