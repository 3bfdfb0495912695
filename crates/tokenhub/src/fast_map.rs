//! The hash map of the request path's lookups: books, breakers, routes, parsed URLs,
//! metric handles, and the ledger connection's prepared statements.
//!
//! std's default hasher (SipHash) cost 147–327 instructions a lookup there, about 3,300
//! a request over the lookups these maps serve (bench/RESULTS.md, addendum 27).
//!
//! Most keys are ids or names the operator configured, but a client chooses the model
//! name it looks up in the catalogue, and the metric handles are kept under the name a
//! refused request asked for (at most `observe::MAX_MODELS` of them). foldhash is seeded
//! per process like SipHash, so such names cannot be picked in advance to share a
//! bucket; unlike SipHash it makes no promise against collisions learnt by timing many
//! inserts, and that bound keeps any such map small.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
