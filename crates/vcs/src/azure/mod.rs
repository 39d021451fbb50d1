//! Azure DevOps Services (`dev.azure.com`).
//!
//! So far: [`webhook`], authenticating service-hook deliveries (the Web Hooks consumer's Basic
//! authentication, with a random password Picket generates per connection and keeps only the
//! hash of) and parsing pull request and pull request comment events into provider-neutral
//! events. The API client (repositories, service-hook subscriptions, pull request iterations,
//! threads, statuses) comes next.

pub mod webhook;
