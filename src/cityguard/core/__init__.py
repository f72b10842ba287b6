"""What every part of cityguard shares and that knows nothing of any area: exit codes, the one
error base class, records of results, secrets and the subprocess runner."""
