"""molecules package."""
