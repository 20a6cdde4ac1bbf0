"""Settings, the Temporal client factory and logging: the pieces every process shares."""
