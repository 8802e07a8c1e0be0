"""Jobs themselves: the ``@jobs.job`` wrapper and its options, RQ's job class with retry
policies and attempts, argument checks, ``@thread_safe`` and progress."""
