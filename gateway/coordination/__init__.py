"""Scale-out: the shard plan (pure) and the assignment of shards to workers (Kafka groups)."""
