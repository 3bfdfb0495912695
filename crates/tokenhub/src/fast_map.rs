//! The hash map of the request path's lookups: books, breakers, routes, parsed URLs,
//! metric handles.
//!
//! std's default hasher (SipHash) cost 147–327 instructions a lookup there, about 3,300
//! a request over the lookups these maps serve (bench/RESULTS.md, addendum 27). foldhash
//! is seeded per process like SipHash, so keys a client chooses (a model name) cannot be
//! aimed at one bucket in advance; it is only not meant to resist an attacker who can
//! watch the timing of many lookups, which none of these maps' keys allow (ids, and
//! names the operator configured).
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
