"""The ``agora`` command-line tool: the local stack, and operating a running Agora."""
