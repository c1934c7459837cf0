//! The smallest VMM that live-migrates a device with vmstate-rs, in two processes.
//!
//! `minimal_vmm --role destination --incoming unix:/tmp/m.sock` waits for the
//! stream; `minimal_vmm --role source --uri unix:/tmp/m.sock` runs a guest (a
//! vCPU thread ticking a device) and migrates it there. Without `--role` it does
//! both: it starts its own destination process and migrates to it.
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::{thread, time::Duration};

use vmstate_runtime::migration::{
    run_incoming, start_migration, Incoming, MigrationConfig, MigrationUri, StatsHandle, VmControl,
};
use vmstate_runtime::savevm::{LoadOptions, Registry};
use vmstate_runtime::{Error, Result, VmState};

/// The guest's one device: declared once, migrated field by field.
#[derive(VmState, Default, Debug)]
#[vmstate(name = "minimal-timer", version = 1)]
struct Timer {
    ticks: u64,
    regs: [u32; 4],
}

/// The VMM's vCPU: a thread that ticks the timer while `running`.
struct Vcpu {
    running: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    timer: Arc<Mutex<Timer>>,
}

impl Vcpu {
    fn start(timer: Arc<Mutex<Timer>>) -> Vcpu {
        let running = Arc::new(AtomicBool::new(true));
        let (r, t) = (running.clone(), timer.clone());
        let thread = Some(thread::spawn(move || {
            while r.load(Ordering::SeqCst) {
                let mut t = t.lock().unwrap();
                t.ticks += 1;
                t.regs[0] = t.regs[0].wrapping_mul(31).wrapping_add(1);
                drop(t);
                thread::sleep(Duration::from_micros(200));
            }
        }));
        Vcpu {
            running,
            thread,
            timer,
        }
    }
}

impl VmControl for Vcpu {
    fn pause(&mut self) -> Result<()> {
        self.running.store(false, Ordering::SeqCst);
        let t = self
            .thread
            .take()
            .ok_or_else(|| Error::invalid("vCPU not running"))?;
        t.join().map_err(|_| Error::invalid("vCPU thread panicked"))
    }
    fn resume(&mut self) -> Result<()> {
        *self = Vcpu::start(self.timer.clone());
        Ok(())
    }
}

fn destination(uri: &MigrationUri) -> Result<()> {
    let timer = Arc::new(Mutex::new(Timer::default()));
    let mut registry = Registry::new();
    registry.vmstate_register(0, timer.clone())?;
    let incoming = Incoming::listen(uri)?;
    println!("destination: listening");
    run_incoming(
        incoming,
        &mut registry,
        LoadOptions::default(),
        &StatsHandle::default(),
    )?;
    println!("destination: loaded {:?}", timer.lock().unwrap());
    Ok(())
}

fn source(uri: MigrationUri) -> Result<String> {
    let timer = Arc::new(Mutex::new(Timer {
        ticks: 0,
        regs: [1, 2, 3, 4],
    }));
    let mut registry = Registry::new();
    registry.vmstate_register(0, timer.clone())?;
    let vcpu = Vcpu::start(timer.clone());
    thread::sleep(Duration::from_millis(50)); // the guest runs a while
    let handle = start_migration(MigrationConfig::new(uri), registry, Box::new(vcpu))?;
    let stats = handle.stats();
    handle.wait().1?;
    let (s, sent) = (stats.snapshot(), format!("{:?}", timer.lock().unwrap()));
    println!(
        "source: {} in {:?}, sent {sent}",
        s.status.as_str(),
        s.total_time
    );
    Ok(sent)
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let uri = |name| {
        arg(name)
            .ok_or(format!("{name} URI missing"))
            .map(|u| u.parse::<MigrationUri>())
    };
    match arg("--role").map(String::as_str) {
        Some("destination") => destination(&uri("--incoming")??)?,
        Some("source") => drop(source(uri("--uri")??)?),
        Some(other) => return Err(format!("unknown role '{other}'").into()),
        None => {
            // Both sides: a destination process, then migrate to it.
            let sock =
                std::env::temp_dir().join(format!("minimal_vmm-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&sock);
            let uri = format!("unix:{}", sock.display());
            let mut child = Command::new(std::env::current_exe()?)
                .args(["--role", "destination", "--incoming", &uri])
                .stdout(Stdio::piped())
                .spawn()?;
            let out = child.stdout.take().ok_or("no child stdout")?;
            let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
            lines
                .next()
                .ok_or("destination exited before listening")??;
            let sent = source(uri.parse()?)?;
            let loaded = lines.next().ok_or("destination printed nothing")??;
            println!("{loaded}");
            let _ = std::fs::remove_file(&sock);
            if !child.wait()?.success() || loaded != format!("destination: loaded {sent}") {
                return Err("the destination did not load what the source sent".into());
            }
        }
    }
    Ok(())
}
