//! Measuring a run: the open-loop injector, the collectors of deliveries and resources, `/proc`
//! readings and the byte figures from the nodes' wire counters.

pub mod collect;
pub mod inject;
pub mod leader;
pub mod membership;
pub mod procfs;
pub mod traffic;
