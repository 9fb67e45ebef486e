"""The ``guichet`` command and the demo: the top floor, above the shared core (``guichet``),
the counter (``appliance``) and the fleet server (``fleet_server``). Each side registers its
own subcommands (``appliance.cli``, ``fleet_server.cli``); this package only assembles them
and adds the demo, which runs both sides at once."""
