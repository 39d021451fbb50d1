//! GitHub webhook deliveries: signature and payload.
