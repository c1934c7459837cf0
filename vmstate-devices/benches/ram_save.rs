//! The "ram" section's speed against `memcpy`, in one run:
//!
//! * `memcpy`: copying the guest RAM out of its mapping into another block
//!   of guest memory, faulted in (vm-memory's `copy_to_volatile_slice`, one
//!   `ptr::copy_nonoverlapping` of the whole size): the baseline.
//! * `save_random`: a whole precopy save of the same random RAM (START with the
//!   MEM_SIZE list, PARTs of 256 KiB until the bulk pass is done, END with a
//!   dirty sync, EOF) through `StreamWriter` into `io::sink()`.
//! * `save_zero`: the same for never-written RAM: ZERO records only, i.e. the
//!   zero-page scan rate.
//! * `save_random_unix_writev` / `save_random_unix_spliced`: the random save
//!   into a unix socket that a reader thread drains, with vectored writes
//!   (guest memory copied once) and with zero-copy send (`vmsplice`): what
//!   the two paths cost a source, the kernel's work included.
//! * `migrate_random_unix` / `unix_socket_floor`: the whole migration of the
//!   random RAM through a unix socket, two threads as two processes would be
//!   (this thread loads into a faulted-in destination block while another
//!   saves, spliced, with the demo's 4 MiB send buffer and the destination's
//!   256 KiB refills), against the same gigabyte written raw from the source
//!   block into the socket and read raw into the destination block, one
//!   large `write` and `read` at a time: no records, no second copy, the
//!   floor that the kernel's two copies set for every migration over a
//!   socket, QEMU's included.
//! * `migrate_random_unix_fresh_prefault` / `unix_socket_floor_fresh` /
//!   `unix_socket_floor_fresh_prefault`: the same two into a destination
//!   never touched before (a new block per iteration, made and unmapped
//!   outside the timing), as every real destination starts: the kernel's
//!   zeroing of each page on first touch is part of the job. Ours with
//!   `RamSectionConfig::prefault` (the demo destination's setting); the floor
//!   with the reads taking the faults, and with the same helper thread
//!   faulting the block in from its end: the fastest any process can fill
//!   fresh memory from a unix socket.
//! * `load_random` / `load_zero`: loading those streams into a destination
//!   block, the stream fed to the reader in 256 KiB reads the way a socket
//!   feeds it (each read is a copy, as the kernel's out of a socket is);
//! * `load_random_buffered`: the same load with the whole stream already in
//!   the reader's buffer (e.g. a `file:` stream read ahead): what the loader
//!   itself costs, the one copy of each page from its input into guest memory.
//! * `load_random_fresh` / `load_random_fresh_prefault`: the socket-fed load
//!   into a destination block never touched before, as a real destination's
//!   is (every page's first-touch fault inside the timing), without and with
//!   `RamSectionConfig::prefault`.
//!
//! Size: `RAM_BENCH_MIB` (default 1024 = 1 GiB). Run with
//! `cargo bench -p vmstate-devices --bench ram_save`; throughput is per line,
//! the ratios to `memcpy` are the figures of merit.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vmstate_devices::ram::{
    RamBlock, RamBlockList, RamBlockSpec, RamSection, RamSectionConfig, VmMemoryDirtyLog,
};
use vmstate_runtime::savevm::{
    Configuration, IterateStatus, LoadOptions, NoCommands, QemuVersion, Registry, StreamLoader,
    StreamWriter,
};
use vmstate_runtime::wire::{Reader, Refill};

const MACHINE: &str = "pc-i440fx-7.2";
const READ_CHUNK: usize = 256 * 1024;
/// The destination driver's refill size.
const DESTINATION_CHUNK: usize = vmstate_runtime::migration::INCOMING_READ_SIZE;

fn ram_bytes() -> u64 {
    std::env::var("RAM_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1024)
        << 20
}

fn one_block(len: u64) -> Arc<Mutex<RamBlockList>> {
    Arc::new(Mutex::new(
        RamBlockList::new(vec![RamBlockSpec::ram("pc.ram", len)]).unwrap(),
    ))
}

/// Fills the block with xorshift output, 1 MiB at a time (no zero page).
fn randomize(ram: &RamBlockList) {
    let b = &ram.blocks()[0];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunk = vec![0u8; 1 << 20];
    for at in (0..b.used_length()).step_by(chunk.len()) {
        for w in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_ne_bytes());
        }
        b.write(at, &chunk).unwrap();
    }
}

fn registry(ram: &Arc<Mutex<RamBlockList>>) -> Registry {
    let mut reg = Registry::new();
    RamSection::new(ram.clone()).register(&mut reg).unwrap();
    reg
}

/// A never-touched destination block of `len` bytes and a registry loading
/// into it, with or without `RamSectionConfig::prefault`.
fn fresh_registry(len: u64, prefault: bool) -> (Arc<Mutex<RamBlockList>>, Registry) {
    let fresh = one_block(len);
    let config = RamSectionConfig {
        prefault,
        ..RamSectionConfig::default()
    };
    let mut reg = Registry::new();
    RamSection::with_config(fresh.clone(), config, Box::new(VmMemoryDirtyLog))
        .register(&mut reg)
        .unwrap();
    (fresh, reg)
}

/// One whole precopy save of `reg` into `sink`.
fn save<W: std::io::Write>(reg: &mut Registry, sink: W) -> W {
    save_with(reg, StreamWriter::new(sink, QemuVersion::V7_2))
}

/// One whole precopy save of `reg` through `w`; returns the sink.
fn save_with<W: std::io::Write>(reg: &mut Registry, mut w: StreamWriter<W>) -> W {
    w.write_header().unwrap();
    w.write_configuration(&Configuration::new(MACHINE)).unwrap();
    w.setup(reg).unwrap();
    while w.iterate(reg, false, &mut |_| false).unwrap() != IterateStatus::Done {}
    w.complete_precopy(reg).unwrap();
    StreamWriter::<W>::cleanup(reg);
    w.into_inner().unwrap()
}

/// One whole precopy save of `reg` into a unix socket that a reader thread
/// drains in 256 KiB reads (as a destination's kernel copy out of its socket
/// would), with vectored writes (guest memory copied once) or zero-copy
/// (`vmsplice`); both with the 4 MiB send buffer of a migration socket.
/// Returns the bytes the reader took.
fn save_to_socket(reg: &mut Registry, zero_copy: bool) -> u64 {
    use std::io::Read;
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut n = 0u64;
        loop {
            match b.read(&mut buf).unwrap() {
                0 => break n,
                k => n += k as u64,
            }
        }
    });
    let w = StreamWriter::to_unix_socket(a, QemuVersion::V7_2, zero_copy).unwrap();
    drop(save_with(reg, w));
    reader.join().unwrap()
}

/// One whole migration of `reg` into `dst` through a unix socket: a thread
/// saves (spliced, the 4 MiB send buffer) while this one loads, refilling in
/// the destination driver's reads (`INCOMING_READ_SIZE`).
fn migrate_over_socket(reg: &mut Registry, dst: &mut Registry) {
    use vmstate_runtime::migration::TransportRefill;
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            let w = StreamWriter::to_unix_socket(a, QemuVersion::V7_2, true).unwrap();
            drop(save_with(reg, w));
        });
        let refill = TransportRefill::new(Box::new(b), DESTINATION_CHUNK);
        let mut r = Reader::with_refill(
            BytesMut::with_capacity(DESTINATION_CHUNK),
            0,
            Box::new(refill),
        );
        load_from(dst, &mut r);
    });
}

/// The floor under any migration over a unix socket: `from`'s bytes written
/// raw into the socket (one large `write` at a time, the same 4 MiB send
/// buffer as the migration's) and read raw into `to` (one large `read` at a
/// time, straight into guest memory). The kernel copies each byte twice, as
/// in every socket migration; nothing else happens.
fn socket_floor(from: &RamBlock, to: &RamBlock) {
    use nix::sys::socket::{setsockopt, sockopt::SndBuf};
    use std::os::fd::OwnedFd;
    use vm_memory::{ReadVolatile, WriteVolatile};
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    setsockopt(&a, SndBuf, &(4 << 20)).unwrap();
    let len = from.used_length() as usize;
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut a = std::fs::File::from(OwnedFd::from(a));
            a.write_all_volatile(&from.slice(0, len).unwrap()).unwrap();
        });
        let mut b = std::fs::File::from(OwnedFd::from(b));
        b.read_exact_volatile(&mut to.slice(0, len).unwrap())
            .unwrap();
    });
}

/// [`socket_floor`] into a destination never touched before, as a real
/// destination's is: the kernel zeroes each page on first touch inside the
/// reads, or, with `prefault`, a helper thread faults the block in from its
/// end down while the reads fill it from the front (as
/// `RamSectionConfig::prefault` does), until the copy is done.
fn socket_floor_fresh(from: &RamBlock, to: &RamBlock, prefault: bool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        if prefault {
            s.spawn(|| {
                let mut end = to.used_length();
                while end > 0 && !done.load(Ordering::Relaxed) {
                    let start = end.saturating_sub(2 << 20);
                    to.populate(start, end - start).unwrap();
                    end = start;
                }
            });
        }
        socket_floor(from, to);
        done.store(true, Ordering::Relaxed);
    });
}

/// A stream held in memory like guest RAM (a `RamBlock`: huge pages), so
/// the reads below cost what a kernel's copy out of its socket buffers does,
/// not the TLB walks of a 4 KiB-paged heap buffer in a VM.
struct Stream {
    block: RamBlock,
    len: usize,
}

impl Stream {
    fn new(bytes: &[u8]) -> Arc<Self> {
        let room = bytes.len().next_multiple_of(4096) as u64;
        let block = RamBlock::new(RamBlockSpec::ram("stream", room)).unwrap();
        block.write(0, bytes).unwrap();
        Arc::new(Stream {
            block,
            len: bytes.len(),
        })
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len];
        self.block.read(0, &mut v).unwrap();
        v
    }
}

/// Feeds a stream in socket-sized reads, the way `TransportRefill` reads a
/// socket (grow the buffer, read into it).
struct Chunks {
    stream: Arc<Stream>,
    at: usize,
}

impl Refill<BytesMut> for Chunks {
    fn refill(&mut self, buf: &mut BytesMut, min: usize) -> std::io::Result<usize> {
        let n = min.max(READ_CHUNK).min(self.stream.len - self.at);
        let start = buf.len();
        buf.resize(start + n, 0);
        self.stream
            .block
            .read(self.at as u64, &mut buf[start..])
            .unwrap();
        self.at += n;
        Ok(n)
    }
}

fn load(reg: &mut Registry, stream: &Arc<Stream>) {
    let refill = Chunks {
        stream: stream.clone(),
        at: 0,
    };
    let mut r = Reader::with_refill(BytesMut::with_capacity(2 * READ_CHUNK), 0, Box::new(refill));
    load_from(reg, &mut r);
}

fn load_from(reg: &mut Registry, r: &mut Reader<BytesMut>) {
    let mut loader =
        StreamLoader::new(LoadOptions::default().with_configuration(Configuration::new(MACHINE)));
    loader.load(r, reg, &mut NoCommands).unwrap();
}

fn bench(c: &mut Criterion) {
    let len = ram_bytes();
    let random = one_block(len);
    randomize(&random.lock().unwrap());
    let zero = one_block(len);

    let mut g = c.benchmark_group(format!("ram_{}MiB", len >> 20));
    g.throughput(Throughput::Bytes(len));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(8));

    // The baseline: the same bytes out of the same mapping into another
    // block of guest memory (faulted in, huge pages like the block a load
    // writes into): one `memcpy` of the whole gigabyte. A heap buffer is not
    // the same target: in a VM its 4 KiB pages cost a two-level TLB walk per
    // page, and the copy runs at a third of the speed (measured here).
    let copy = one_block(len);
    {
        let (from, to) = (random.lock().unwrap(), copy.lock().unwrap());
        let (from, to) = (&from.blocks()[0], &to.blocks()[0]);
        let (src, dst) = (
            from.slice(0, len as usize).unwrap(),
            to.slice(0, len as usize).unwrap(),
        );
        src.copy_to_volatile_slice(dst);
        g.bench_function("memcpy", |b| {
            b.iter(|| {
                let dst = to.slice(0, len as usize).unwrap();
                black_box(&src).copy_to_volatile_slice(black_box(dst));
            })
        });
    }
    drop(copy);

    let mut reg = registry(&random);
    g.bench_function("save_random", |b| {
        b.iter(|| save(&mut reg, std::io::sink()))
    });
    let mut zreg = registry(&zero);
    g.bench_function("save_zero", |b| b.iter(|| save(&mut zreg, std::io::sink())));
    // Into a socket: the same save, copied or spliced (one run, same reader).
    let copied = save_to_socket(&mut reg, false);
    assert_eq!(
        copied,
        save_to_socket(&mut reg, true),
        "the same stream either way"
    );
    assert!(copied > len);
    for (name, zero_copy) in [
        ("save_random_unix_writev", false),
        ("save_random_unix_spliced", true),
    ] {
        g.bench_function(name, |b| b.iter(|| save_to_socket(&mut reg, zero_copy)));
    }

    // Whether a destination's block holds the source's RAM.
    let same = |d: &Arc<Mutex<RamBlockList>>| {
        d.lock().unwrap().blocks()[0].to_vec().unwrap()
            == random.lock().unwrap().blocks()[0].to_vec().unwrap()
    };
    // The whole migration over a socket, against the socket's floor, into
    // the same faulted-in destination (checked equal to the source first).
    {
        let dst = one_block(len);
        let mut dreg = registry(&dst);
        migrate_over_socket(&mut reg, &mut dreg);
        assert!(same(&dst), "the migration carries the RAM");
        g.bench_function("migrate_random_unix", |b| {
            b.iter(|| migrate_over_socket(&mut reg, &mut dreg))
        });
        drop(dreg);
        let floor_dst = one_block(len);
        {
            let (from, to) = (random.lock().unwrap(), floor_dst.lock().unwrap());
            socket_floor(&from.blocks()[0], &to.blocks()[0]);
        }
        assert!(same(&floor_dst), "the floor carries the RAM");
        g.bench_function("unix_socket_floor", |b| {
            b.iter(|| {
                let (from, to) = (random.lock().unwrap(), floor_dst.lock().unwrap());
                socket_floor(&from.blocks()[0], &to.blocks()[0]);
            })
        });
    }

    // The same two into a never-touched destination per iteration (made
    // and unmapped outside the timing), as every real destination starts:
    // the kernel's zeroing of each page is then part of the job. Ours with
    // the demo's `prefault`; the floor without and with the same helper.
    {
        let (fresh, mut freg) = fresh_registry(len, true);
        migrate_over_socket(&mut reg, &mut freg);
        assert!(
            same(&fresh),
            "the migration into fresh memory carries the RAM"
        );
        drop((fresh, freg));
        g.bench_function("migrate_random_unix_fresh_prefault", |b| {
            b.iter_batched(
                || fresh_registry(len, true),
                |(fresh, mut freg)| {
                    migrate_over_socket(&mut reg, &mut freg);
                    (fresh, freg)
                },
                BatchSize::PerIteration,
            )
        });
        for (name, prefault) in [
            ("unix_socket_floor_fresh", false),
            ("unix_socket_floor_fresh_prefault", true),
        ] {
            let fresh = one_block(len);
            socket_floor_fresh(
                &random.lock().unwrap().blocks()[0],
                &fresh.lock().unwrap().blocks()[0],
                prefault,
            );
            assert!(same(&fresh), "the floor into fresh memory carries the RAM");
            drop(fresh);
            g.bench_function(name, |b| {
                b.iter_batched(
                    || one_block(len),
                    |fresh| {
                        let (from, to) = (random.lock().unwrap(), fresh.lock().unwrap());
                        socket_floor_fresh(&from.blocks()[0], &to.blocks()[0], prefault);
                        drop((from, to));
                        fresh
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }

    // The streams to load, written once (and checked to carry the RAM).
    let random_stream = Stream::new(&save(
        &mut reg,
        Vec::with_capacity((len + (len >> 8)) as usize),
    ));
    let zero_stream = Stream::new(&save(&mut zreg, Vec::new()));
    assert!(random_stream.len as u64 > len);
    assert!((zero_stream.len as u64) < len / 256);

    let dst = one_block(len);
    let mut dreg = registry(&dst);
    // Every page arrives: the destination equals the source.
    load(&mut dreg, &random_stream);
    assert!(
        dst.lock().unwrap().blocks()[0].to_vec().unwrap()
            == random.lock().unwrap().blocks()[0].to_vec().unwrap()
    );
    g.bench_function("load_random", |b| {
        b.iter(|| load(&mut dreg, &random_stream))
    });
    // The buffer is filled outside the timing and handed back to be freed
    // outside it too.
    g.bench_function("load_random_buffered", |b| {
        b.iter_batched(
            || Reader::new(BytesMut::from(&random_stream.to_vec()[..])),
            |mut r| {
                load_from(&mut dreg, &mut r);
                r
            },
            BatchSize::PerIteration,
        )
    });
    drop(dreg);
    drop(dst);
    // A new, never-touched destination per iteration (made and unmapped
    // outside the timing).
    for prefault in [false, true] {
        let name = if prefault {
            "load_random_fresh_prefault"
        } else {
            "load_random_fresh"
        };
        g.bench_function(name, |b| {
            b.iter_batched(
                || fresh_registry(len, prefault),
                |(fresh, mut reg)| {
                    load(&mut reg, &random_stream);
                    (fresh, reg)
                },
                BatchSize::PerIteration,
            )
        });
    }
    let zdst = one_block(len);
    let mut zdreg = registry(&zdst);
    g.bench_function("load_zero", |b| b.iter(|| load(&mut zdreg, &zero_stream)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
