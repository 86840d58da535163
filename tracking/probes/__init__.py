"""dstrack package."""
