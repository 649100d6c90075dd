"""Qt user interface: thin widgets over app.core."""
