"""A test plugin 'alpha' with a table named `notes` (the other test plugin has one too)."""
