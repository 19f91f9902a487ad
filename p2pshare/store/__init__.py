"""The Redis client, script loading and node leases shared by the index, tracker and RS stores."""
