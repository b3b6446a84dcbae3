"""The ``recentd`` command line."""
