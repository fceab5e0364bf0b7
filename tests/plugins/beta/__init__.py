"""A test plugin 'beta' with a table named `notes` (the other test plugin has one too)."""
