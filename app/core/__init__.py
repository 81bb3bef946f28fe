"""What every desk uses: errors, validators, jobs, the CLI."""
