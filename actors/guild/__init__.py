"""The guild monitor's actors: event model (model), persistence (persist), analytics window and
multi-client tracking (analytics), and the per-guild aggregator actor (aggregator)."""
