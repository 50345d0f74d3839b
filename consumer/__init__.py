"""Consumers: Kafka consumer-group workers and the engines they run."""
