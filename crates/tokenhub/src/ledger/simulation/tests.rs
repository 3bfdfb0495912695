//! The short simulation `cargo test` runs: fixed seeds, a few seconds, on SQLite and (when
//! `TOKENHUB_TEST_POSTGRES_URL` is set) PostgreSQL.

use super::*;

fn simulate(seed: u64, steps: u64, database: &ScratchDatabase) {
    let config = SimConfig::new(seed, steps, database);
    match run(&config, &InMemory) {
        Ok(report) => eprintln!("{report}"),
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
fn short_simulation_on_sqlite() {
    for seed in [1, 2, 3] {
        let database = ScratchDatabase::sqlite().expect("a scratch database");
        simulate(seed, 3_000, &database);
    }
}

#[test]
fn short_simulation_on_postgres() {
    let Ok(url) = std::env::var("TOKENHUB_TEST_POSTGRES_URL") else {
        eprintln!("TOKENHUB_TEST_POSTGRES_URL is not set: skipping the PostgreSQL simulation");
        return;
    };
    let database = ScratchDatabase::postgres(&url).expect("a scratch database");
    simulate(1, 3_000, &database);
}
