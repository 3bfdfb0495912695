//! The TOML config file, parsed and validated as at start-up (environment aside).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::config::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(settings) = toml::from_str::<Settings>(text) {
        let _ = settings.validate();
        for model in &settings.models {
            let _ = model.prices();
        }
        for channel in &settings.channels {
            let _ = channel.keys();
            let _ = channel.limits();
        }
    }
});
