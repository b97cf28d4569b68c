//! Everything `tracing` logs in a test binary, at every level, for tests that look for
//! warnings or make sure no secret is logged. The subscriber is global because stores and
//! managers log from blocking threads and spawned tasks, which a per-thread subscriber would
//! miss.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

/// The captured log text so far (installs the capturing subscriber on first use).
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || Sink(sink.clone()))
            .with_ansi(false)
            .init();
        logs
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
