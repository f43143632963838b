"""The long fault soak, run by ``nox -s soak`` (not collected by pytest)."""
