//! The server against a real HTTP client (reqwest).
