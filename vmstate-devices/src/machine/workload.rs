//! The guest: one thread standing for the vCPUs (memory writes, the keyboard
//! driver) and the host input (typing, mouse moves), and what it does.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vmstate_runtime::migration::VmControl;
use vmstate_runtime::Result;

use super::composition::Machine;
use super::vm_control::GuestControl;
use crate::pckbd::ps2::Axis;
use crate::pckbd::KeyCode;

/// xorshift64*: deterministic, dependency-free pseudo-random numbers.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What the guest workload does.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Pages dirtied per second (spread over the first `working_set_percent`
    /// of RAM).
    pub dirty_pages_per_sec: u64,
    /// Part of RAM the writes go to, in percent.
    pub working_set_percent: u32,
    /// Keys typed per second (0: none).
    pub keys_per_sec: u32,
    /// Text typed on the keyboard, in a loop.
    pub text: String,
    /// Seed of the write pattern.
    pub seed: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            dirty_pages_per_sec: 4000,
            working_set_percent: 50,
            keys_per_sec: 25,
            text: "the quick brown fox jumps over the lazy dog. ".into(),
            seed: 0x5eed,
        }
    }
}

/// Counters of the guest workload.
#[derive(Debug, Default)]
pub struct GuestCounters {
    /// Memory writes done.
    pub writes: AtomicU64,
    /// Key presses typed (host side).
    pub keys: AtomicU64,
    /// Bytes the guest's keyboard driver read from port 0x60.
    pub bytes_read: AtomicU64,
    /// Times the VM was paused.
    pub pauses: AtomicU64,
    /// Guest ticks whose virtio part failed (a driver or device error).
    pub virtio_errors: AtomicU64,
}

/// The vCPU throttle of a running guest (QEMU's auto-converge
/// `cpu-throttle-percentage`): at `p` percent the vCPUs sleep `p`% of the
/// time, so the guest does (and dirties) only `100 - p`% of its work.
/// Clones share the setting.
#[derive(Debug, Clone, Default)]
pub struct CpuThrottle(Arc<AtomicU32>);

impl CpuThrottle {
    /// Highest throttle (QEMU's `cpu-throttle` maximum: the vCPUs still run 1%).
    pub const MAX_PERCENT: u32 = 99;

    /// Sets the throttle to `percent` (capped at [`Self::MAX_PERCENT`]; 0: off).
    pub fn set(&self, percent: u32) {
        self.0
            .store(percent.min(Self::MAX_PERCENT), Ordering::SeqCst);
    }

    /// The throttle in percent (0: the vCPUs run freely).
    pub fn percent(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The running guest: one thread standing for the vCPUs (memory writes, the
/// keyboard driver) and the host input (typing, mouse moves).
pub struct Guest {
    running: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    counters: Arc<GuestCounters>,
    throttle: CpuThrottle,
    machine: Machine,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest")
            .field("running", &self.running.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

/// Tick of the guest thread.
const TICK: Duration = Duration::from_millis(5);

fn key_for(c: char) -> Option<KeyCode> {
    match c {
        ' ' => Some(KeyCode::Spc),
        '.' => Some(KeyCode::Dot),
        ',' => Some(KeyCode::Comma),
        '\n' => Some(KeyCode::Ret),
        c => KeyCode::from_qcode_name(&c.to_ascii_lowercase().to_string()),
    }
}

impl Guest {
    /// Starts the workload on `machine` (running).
    pub fn start(machine: &Machine, workload: Workload) -> Result<Guest> {
        let running = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(GuestCounters::default());
        let throttle = CpuThrottle::default();
        let flags = GuestFlags {
            running: running.clone(),
            stop: stop.clone(),
            throttle: throttle.clone(),
        };
        let (c, m) = (counters.clone(), machine.clone());
        let thread = std::thread::Builder::new()
            .name("guest".into())
            .spawn(move || guest_loop(m, workload, flags, c))?;
        Ok(Guest {
            running,
            stop,
            counters,
            throttle,
            machine: machine.clone(),
            thread: Some(thread),
        })
    }

    /// The pause/resume control the migration driver uses.
    pub fn control(&self) -> Box<dyn VmControl> {
        Box::new(GuestControl::new(
            self.machine.clone(),
            self.running.clone(),
            self.counters.clone(),
        ))
    }

    /// Whether the guest runs.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// The workload counters.
    pub fn counters(&self) -> &GuestCounters {
        &self.counters
    }

    /// The vCPU throttle (auto-converge sets it while migrating).
    pub fn throttle(&self) -> CpuThrottle {
        self.throttle.clone()
    }
}

/// What the guest thread is told from outside.
struct GuestFlags {
    running: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    throttle: CpuThrottle,
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn guest_loop(m: Machine, w: Workload, flags: GuestFlags, c: Arc<GuestCounters>) {
    let GuestFlags {
        running,
        stop,
        throttle,
    } = flags;
    let mut rng = Rng(w.seed | 1);
    let (mut pages_done, mut keys_done, mut tick) = (0u64, 0u64, 0u64);
    let text: Vec<KeyCode> = w.text.chars().filter_map(key_for).collect();
    // Running time only: a paused guest does not catch up after a resume.
    let mut active = Duration::ZERO;
    let mut last = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(TICK);
        tick += 1;
        let now = Instant::now();
        let step = now - last;
        last = now;
        if !running.load(Ordering::SeqCst) {
            continue;
        }
        // Throttled at p%, the vCPUs sleep p% of each period (the extra sleep
        // at the end of this tick), and only the rest counts as guest time.
        let throttled = throttle.percent();
        active += step.mul_f64(f64::from(100 - throttled) / 100.0);
        if throttled > 0 {
            std::thread::sleep(TICK.mul_f64(f64::from(throttled) / f64::from(100 - throttled)));
        }
        let elapsed = active.as_secs_f64();
        // Memory: catch up with the configured rate.
        let due = (elapsed * w.dirty_pages_per_sec as f64) as u64;
        if due > pages_done {
            let Ok(ram) = m.ram.lock() else { return };
            // Re-check under the lock: pause() clears the flag, then takes the lock.
            if running.load(Ordering::SeqCst) {
                // The vCPUs write main RAM (the first block) through the RAM
                // model, so vm-memory's dirty bitmap logs every write.
                let Some(block) = ram.blocks().first() else {
                    return;
                };
                let ps = block.spec().page_size as usize;
                let mut span =
                    (block.pages() as usize * w.working_set_percent.clamp(1, 100) as usize / 100)
                        .max(1);
                // The virtio rings and buffers at the top of RAM are the
                // drivers' memory: the workload writes below them.
                if let Some(v) = &m.virtio {
                    span = span.min((v.reserved().0 as usize / ps).max(1));
                }
                for _ in 0..(due - pages_done).min(50_000) {
                    let page = rng.below(span);
                    let at = page * ps + rng.below(ps / 8) * 8;
                    let v = rng.next();
                    if block.write(at as u64, &v.to_le_bytes()).is_err() {
                        return;
                    }
                    c.writes.fetch_add(1, Ordering::Relaxed);
                }
                pages_done = due;
            }
        }
        // The virtio drivers: block writes, frames, entropy.
        if let Some(v) = &m.virtio {
            if v.guest_tick(&running).is_err() {
                c.virtio_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Keyboard and mouse: the host types, the guest driver reads port 0x60.
        let Ok(mut kbd) = m.i8042.lock() else { return };
        if !running.load(Ordering::SeqCst) {
            continue;
        }
        let keys_due = (elapsed * w.keys_per_sec as f64) as u64;
        if keys_due > keys_done && !text.is_empty() {
            let key = text[(keys_done % text.len() as u64) as usize];
            kbd.key_event(key, true);
            kbd.key_event(key, false);
            keys_done += 1;
            c.keys.fetch_add(1, Ordering::Relaxed);
        }
        if tick % 20 == 0 && w.keys_per_sec > 0 {
            let dx = rng.below(9) as i32 - 4;
            kbd.mouse_move(Axis::X, dx);
            kbd.mouse_move(Axis::Y, 2);
            kbd.mouse_sync();
        }
        // The driver takes one byte per tick (IRQ 1 / IRQ 12 handler), so a few
        // bytes are usually waiting in the queues.
        if tick % 2 == 0 && kbd.read_port(0x64) & 0x01 != 0 {
            kbd.read_port(0x60);
            c.bytes_read.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::test_support::ram_bytes;
    use crate::machine::RAM_BLOCK;

    fn count(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    #[test]
    fn pause_stops_the_workload() {
        let m = Machine::new(64).unwrap();
        m.boot(0, 1).unwrap();
        let guest = Guest::start(
            &m,
            Workload {
                dirty_pages_per_sec: 20_000,
                keys_per_sec: 200,
                ..Workload::default()
            },
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let mut ctl = guest.control();
        ctl.pause().unwrap();
        assert!(!guest.is_running());
        let writes = count(&guest.counters().writes);
        let keys = count(&guest.counters().keys);
        let snapshot = ram_bytes(&m);
        std::thread::sleep(Duration::from_millis(40));
        assert!(writes > 0 && keys > 0);
        assert_eq!(count(&guest.counters().writes), writes);
        assert_eq!(count(&guest.counters().keys), keys);
        assert!(ram_bytes(&m) == snapshot);
        ctl.resume().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(count(&guest.counters().writes) > writes);
    }

    #[test]
    fn a_throttled_guest_does_only_the_unthrottled_share_of_its_work() {
        const RATE: u64 = 100_000;
        let m = Machine::new(256).unwrap();
        m.boot(0, 1).unwrap();
        let guest = Guest::start(
            &m,
            Workload {
                dirty_pages_per_sec: RATE,
                keys_per_sec: 0,
                ..Workload::default()
            },
        )
        .unwrap();
        let throttle = guest.throttle();
        throttle.set(150);
        assert_eq!(throttle.percent(), CpuThrottle::MAX_PERCENT, "capped");
        throttle.set(90);
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        guest.control().pause().unwrap();
        // At 90% only a tenth of the wall time counts as guest time, so at
        // most a tenth of the writes (plus one tick's catch-up) were made.
        let bound = RATE as f64 * t0.elapsed().as_secs_f64() / 10.0 + RATE as f64 * 0.01;
        let writes = count(&guest.counters().writes);
        assert!((writes as f64) <= bound, "{writes} writes, bound {bound}");
        assert!(writes > 0);
    }

    #[test]
    fn guest_writes_reach_the_dirty_log_of_vm_memory() {
        use crate::ram::{DirtyBitmap, DirtyLog, VmMemoryDirtyLog};

        let m = Machine::new(256).unwrap();
        m.boot(0, 1).unwrap();
        let mut log = VmMemoryDirtyLog;
        log.start(m.ram.lock().unwrap().get(RAM_BLOCK).unwrap());
        let guest = Guest::start(
            &m,
            Workload {
                dirty_pages_per_sec: 20_000,
                working_set_percent: 25,
                keys_per_sec: 0,
                ..Workload::default()
            },
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(60));
        guest.control().pause().unwrap();
        let ram = m.ram.lock().unwrap();
        let block = ram.get(RAM_BLOCK).unwrap();
        let mut dirty = DirtyBitmap::new(block.pages());
        log.sync(block, &mut dirty);
        let writes = count(&guest.counters().writes);
        assert!(writes > 0);
        // Every write landed in the working set (the first quarter) and was
        // logged; several writes may hit one page.
        assert!(dirty.count() > 0 && dirty.count() <= writes);
        assert_eq!(dirty.next_set(64), None, "{dirty:?}");
        let bytes = block.to_vec().unwrap();
        for page in 0..64 {
            let data = &bytes[page as usize * 4096..][..4096];
            assert_eq!(
                dirty.get(page),
                data.iter().any(|b| *b != 0),
                "page {page}: logged iff written"
            );
        }
    }
}
