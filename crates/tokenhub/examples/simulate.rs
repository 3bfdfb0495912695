//! The long ledger simulation (`scripts/simulate.sh`): random or given seeds, as many
//! steps as asked, on SQLite or PostgreSQL. Prints the figures of each run, or the
//! failing seed and step with the line that replays it (exit status 1).
//!
//! Options: --seed N (default: random), --steps N (default 1,000,000), --runs N (seeds
//! after the first are random), --backend sqlite|postgres|both (PostgreSQL needs
//! TOKENHUB_TEST_POSTGRES_URL), --shared memory|redis (default memory: one process with
//! its own books; redis: several processes sharing money in Redis, a redis-server of
//! the run's own, or the one --redis-url names under a private prefix), --instances N
//! (default 3, with Redis).

use std::time::{SystemTime, UNIX_EPOCH};

use tokenhub::ledger::simulation::{self, InMemory, Redis, ScratchDatabase, SimConfig};

struct Options {
    seed: Option<u64>,
    steps: u64,
    runs: u64,
    backends: Vec<String>,
    redis: bool,
    redis_url: Option<String>,
    instances: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        seed: None,
        steps: 1_000_000,
        runs: 1,
        backends: vec!["sqlite".into()],
        redis: false,
        redis_url: None,
        instances: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: String| {
            text.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{text}: {e}"))
        };
        match flag.as_str() {
            "--seed" => options.seed = Some(number(value()?)?),
            "--steps" => options.steps = number(value()?)?,
            "--runs" => options.runs = number(value()?)?,
            "--backend" => {
                options.backends = match value()?.as_str() {
                    "both" => vec!["sqlite".into(), "postgres".into()],
                    one @ ("sqlite" | "postgres") => vec![one.to_string()],
                    other => return Err(format!("unknown backend {other}")),
                }
            }
            "--shared" => {
                options.redis = match value()?.as_str() {
                    "memory" => false,
                    "redis" => true,
                    other => return Err(format!("unknown shared state {other}")),
                }
            }
            "--redis-url" => options.redis_url = Some(value()?),
            "--instances" => options.instances = number(value()?)?.clamp(1, 16) as usize,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (nanos as u64) ^ (u64::from(std::process::id()) << 40)
}

fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("simulate: {error}");
            std::process::exit(2);
        }
    };
    let mut failed = false;
    for run in 0..options.runs {
        let seed = match (run, options.seed) {
            (0, Some(seed)) => seed,
            _ => random_seed(),
        };
        for backend in &options.backends {
            let database = match backend.as_str() {
                "postgres" => match std::env::var("TOKENHUB_TEST_POSTGRES_URL") {
                    Ok(url) => ScratchDatabase::postgres(&url),
                    Err(_) => Err("TOKENHUB_TEST_POSTGRES_URL is not set".to_string()),
                },
                _ => ScratchDatabase::sqlite(),
            };
            let database = match database {
                Ok(database) => database,
                Err(error) => {
                    eprintln!("simulate: {backend}: {error}");
                    std::process::exit(2);
                }
            };
            eprintln!(
                "simulating seed {seed} on {backend}, {} steps",
                options.steps
            );
            let config = SimConfig::new(seed, options.steps, &database);
            let outcome = if options.redis {
                let redis = match &options.redis_url {
                    Some(url) => Redis::connect(url, options.instances),
                    None => Redis::start(options.instances),
                };
                match redis {
                    Ok(redis) => simulation::run(&config, &redis),
                    Err(error) => {
                        eprintln!("simulate: Redis: {error}");
                        std::process::exit(2);
                    }
                }
            } else {
                simulation::run(&config, &InMemory)
            };
            match outcome {
                Ok(report) => println!("{report}\n"),
                Err(failure) => {
                    println!("{failure}");
                    failed = true;
                }
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
