//! Stage 2 of the pipeline: the sans-IO state machines. Each takes `now` and an
//! [`Outbox`](crate::outbox::Outbox) and never sees a connection.
//!
//! - [`certstore`]: the identity puller and the signed identities it serves (spec 3.11).
//! - [`msgstore`]: Fabric's message store with replacement policies and expiry (spec 3.8).
//! - [`discovery`]: membership, alive messages, bootstrap and anchor connects (spec 3.5, 2.4).
//! - [`channel`]: per-channel StateInfo, blocks and in-order delivery, the block puller,
//!   leadership (spec 3.7).
//! - [`election`]: leader election per channel (spec 3.10).
//! - [`pull`]: Fabric's pull engine, the rounds and nonces of a pull mediator (spec 3.6).
//! - [`state`]: state transfer, anti-entropy requests and serving (spec 3.9).

pub mod certstore;
pub mod channel;
pub mod discovery;
pub mod election;
pub mod msgstore;
pub mod pull;
pub mod state;
