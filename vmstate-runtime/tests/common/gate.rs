//! Gates: a synthetic handler stops at a gate until the test opens it.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest a gate waits for anything before giving up, so that a failed test
/// cannot hang the process.
pub const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct GateState {
    arrived: u32,
    open: bool,
}

/// A point where a handler stops until the test opens it: makes the status at
/// that point a fact, not a race. Clones share the gate.
#[derive(Clone)]
pub struct Gate(Arc<(Mutex<GateState>, Condvar)>);

impl Gate {
    /// A gate, open or not.
    pub fn new(open: bool) -> Gate {
        Gate(Arc::new((
            Mutex::new(GateState { arrived: 0, open }),
            Condvar::new(),
        )))
    }

    /// A gate that stops every handler until opened.
    pub fn closed() -> Gate {
        Gate::new(false)
    }

    /// A gate that stops nobody.
    pub fn opened() -> Gate {
        Gate::new(true)
    }

    /// Handler side: announce arrival, then wait until the gate opens (gives up
    /// after `PATIENCE` so a failed test cannot hang the process).
    pub fn pass(&self) {
        let (m, cv) = &*self.0;
        let mut g = m.lock().unwrap();
        g.arrived += 1;
        cv.notify_all();
        let deadline = Instant::now() + PATIENCE;
        while !g.open && Instant::now() < deadline {
            g = cv.wait_timeout(g, Duration::from_millis(50)).unwrap().0;
        }
    }

    /// Test side: wait until a handler stands at the gate.
    pub fn wait_arrived(&self, what: &str) {
        let (m, cv) = &*self.0;
        let mut g = m.lock().unwrap();
        let deadline = Instant::now() + PATIENCE;
        while g.arrived == 0 {
            assert!(Instant::now() < deadline, "nothing arrived at gate {what}");
            g = cv.wait_timeout(g, Duration::from_millis(50)).unwrap().0;
        }
    }

    /// Test side: let every handler through, now and later.
    pub fn open(&self) {
        let (m, cv) = &*self.0;
        m.lock().unwrap().open = true;
        cv.notify_all();
    }
}
