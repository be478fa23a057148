"""Rate limits and quotas: token buckets and quota windows, in memory or in Redis."""
