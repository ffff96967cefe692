"""The API's resources, one module each; importing them registers their routes."""
