"""The long-running process: serve (the one place that wires things together), the daemon's
background tasks, the scheduler, and the leadership loop that lets only one replica run the
schedule.

May import `bot.slack`, `bot.alerting`, the shared modules and `checks`; never the CLI. What
runs here decides *when* things happen; what happens is decided below (cycle, lifecycle rules).
"""
