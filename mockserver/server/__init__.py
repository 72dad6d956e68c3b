"""The aiohttp application: the app factory, the chat endpoint, the sender, the journal, the admin
API, the access log, the typed app state and the JSON error answers."""
