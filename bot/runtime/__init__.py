"""The long-running process: serve (the one place that wires things together), the daemon's
background tasks, the scheduler, the leadership loop that lets only one replica run the
schedule, and what operators watch it with: the health and metrics listener (`health`,
`metrics`) and the log lines (`logs`).

May import `bot.slack`, `bot.alerting`, the shared modules and `checks`; never the CLI. What
runs here decides *when* things happen; what happens is decided below (cycle, lifecycle rules).
"""
