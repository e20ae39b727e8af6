"""SCF function package."""
