"""Load runs: many node processes against one HTTP server, one publisher into many repos."""
