//! Load-balancing selection: pure functions over members, health and the
//! worker's random number generator. For now this holds the generator and
//! the shuffle the answer path uses for multi-address owners; the pool
//! policies build on it.

mod rng;

pub use rng::Rng;
