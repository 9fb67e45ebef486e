"""The dashboard, consoles and WebSocket endpoints: routes by area, templates, static files."""
