//! Starts one actor per key on demand and hands out its address. An actor stops itself when
//! idle; the next request for its key finds the dead address and starts a fresh one, which
//! rebuilds its state from the store.

use actix::{Actor, Addr, Context};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// A map from key to live actor address.
pub struct Registry<K, A: Actor> {
    actors: Mutex<HashMap<K, Addr<A>>>,
}

impl<K, A> Default for Registry<K, A>
where
    K: Eq + Hash + Copy,
    A: Actor<Context = Context<A>>,
{
    fn default() -> Self {
        Self {
            actors: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, A> Registry<K, A>
where
    K: Eq + Hash + Copy,
    A: Actor<Context = Context<A>>,
{
    /// The live actor for `key`, started with `make` on the current arbiter if there is none.
    pub fn get_or_start(&self, key: K, make: impl FnOnce() -> A) -> Addr<A> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still
        // a valid map, so keep using it.
        let mut actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(addr) = actors.get(&key).filter(|a| a.connected()) {
            return addr.clone();
        }
        actors.retain(|_, addr| addr.connected());
        let addr = make().start();
        actors.insert(key, addr.clone());
        addr
    }

    /// The live actor for `key`, if one is running.
    pub fn get(&self, key: K) -> Option<Addr<A>> {
        let actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        actors.get(&key).filter(|a| a.connected()).cloned()
    }

    /// How many actors are running, for metrics.
    pub fn live_count(&self) -> usize {
        let actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        actors.values().filter(|a| a.connected()).count()
    }
}
