//! Generated vs hand-written save/load of a 40-field device struct.
//!
//! The struct mixes scalars of every width, byte and integer arrays, a varray, a
//! nested struct and a subsection. The hand-written baseline writes the same bytes
//! with `bytes::BufMut` and reads them with `bytes::Buf::try_get_*` (bounds-checked,
//! so both sides do the same safety work). Run with
//! `cargo bench -p vmstate-runtime --bench device_codec`; the two numbers per
//! direction are printed next to each other and their ratio is the figure of merit.

use bytes::{Buf, BufMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::VmState;

#[derive(VmState, Default, Clone, Debug, PartialEq)]
#[vmstate(name = "bench/timer", version = 1)]
struct Timer {
    count: u32,
    reload: u32,
    mode: u8,
    armed: bool,
    expire: u64,
}

#[derive(VmState, Default, Clone, Debug, PartialEq)]
#[vmstate(name = "bench/extra", version = 1)]
struct Extra {
    flags: u32,
    shadow: [u8; 8],
}

#[derive(VmState, Default, Clone, Debug, PartialEq)]
#[vmstate(name = "bench", version = 2, minimum_version = 1)]
struct Device {
    f01: u8,
    f02: u8,
    f03: u16,
    f04: u16,
    f05: u32,
    f06: u32,
    f07: u64,
    f08: u64,
    f09: i8,
    f10: i16,
    f11: i32,
    f12: i64,
    f13: bool,
    f14: bool,
    f15: u8,
    f16: u32,
    f17: u32,
    f18: u16,
    f19: u8,
    f20: u64,
    regs: [u8; 32],
    words: [u32; 16],
    f23: u32,
    f24: u16,
    f25: u8,
    f26: i32,
    f27: u64,
    f28: u32,
    f29: u8,
    f30: u8,
    fifo_len: u32,
    #[vmstate(varray(len = fifo_len), max = 256)]
    fifo: Vec<u8>,
    timer: Timer,
    f34: u32,
    f35: u16,
    f36: u8,
    #[vmstate(since = 2)]
    f37: u32,
    f38: i16,
    f39: u64,
    #[vmstate(subsection(needed = Self::extra_needed))]
    extra: Extra,
}

impl Device {
    fn extra_needed(&self) -> bool {
        self.extra.flags != 0
    }

    fn sample() -> Self {
        Device {
            f01: 1,
            f02: 2,
            f03: 0x0303,
            f04: 0x0404,
            f05: 0x0505_0505,
            f06: 6,
            f07: 0x0707_0707_0707_0707,
            f08: 8,
            f09: -9,
            f10: -10,
            f11: -11,
            f12: -12,
            f13: true,
            f14: false,
            f15: 15,
            f16: 16,
            f17: 17,
            f18: 18,
            f19: 19,
            f20: 20,
            regs: std::array::from_fn(|i| i as u8),
            words: std::array::from_fn(|i| (i as u32) << 20),
            f23: 23,
            f24: 24,
            f25: 25,
            f26: 26,
            f27: 27,
            f28: 28,
            f29: 29,
            f30: 30,
            fifo_len: 12,
            fifo: (0..12).collect(),
            timer: Timer {
                count: 100,
                reload: 200,
                mode: 3,
                armed: true,
                expire: 123_456_789,
            },
            f34: 34,
            f35: 35,
            f36: 36,
            f37: 37,
            f38: -38,
            f39: 39,
            extra: Extra {
                flags: 1,
                shadow: [9; 8],
            },
        }
    }
}

/// The baseline: what a careful engineer writes by hand with `bytes`.
mod hand {
    use super::*;

    #[derive(Debug)]
    pub struct Short;

    impl From<bytes::TryGetError> for Short {
        fn from(_: bytes::TryGetError) -> Self {
            Short
        }
    }

    pub fn save(d: &Device, b: &mut Vec<u8>) {
        b.put_u8(d.f01);
        b.put_u8(d.f02);
        b.put_u16(d.f03);
        b.put_u16(d.f04);
        b.put_u32(d.f05);
        b.put_u32(d.f06);
        b.put_u64(d.f07);
        b.put_u64(d.f08);
        b.put_i8(d.f09);
        b.put_i16(d.f10);
        b.put_i32(d.f11);
        b.put_i64(d.f12);
        b.put_u8(d.f13 as u8);
        b.put_u8(d.f14 as u8);
        b.put_u8(d.f15);
        b.put_u32(d.f16);
        b.put_u32(d.f17);
        b.put_u16(d.f18);
        b.put_u8(d.f19);
        b.put_u64(d.f20);
        b.put_slice(&d.regs);
        for w in &d.words {
            b.put_u32(*w);
        }
        b.put_u32(d.f23);
        b.put_u16(d.f24);
        b.put_u8(d.f25);
        b.put_i32(d.f26);
        b.put_u64(d.f27);
        b.put_u32(d.f28);
        b.put_u8(d.f29);
        b.put_u8(d.f30);
        b.put_u32(d.fifo_len);
        b.put_slice(&d.fifo);
        b.put_u32(d.timer.count);
        b.put_u32(d.timer.reload);
        b.put_u8(d.timer.mode);
        b.put_u8(d.timer.armed as u8);
        b.put_u64(d.timer.expire);
        b.put_u32(d.f34);
        b.put_u16(d.f35);
        b.put_u8(d.f36);
        b.put_u32(d.f37);
        b.put_i16(d.f38);
        b.put_u64(d.f39);
        if d.extra.flags != 0 {
            b.put_u8(5);
            b.put_u8(11);
            b.put_slice(b"bench/extra");
            b.put_u32(1);
            b.put_u32(d.extra.flags);
            b.put_slice(&d.extra.shadow);
        }
    }

    fn get_bool(b: &mut &[u8]) -> Result<bool, Short> {
        match b.try_get_u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Short),
        }
    }

    pub fn load(d: &mut Device, mut b: &[u8]) -> Result<(), Short> {
        let b = &mut b;
        d.f01 = b.try_get_u8()?;
        d.f02 = b.try_get_u8()?;
        d.f03 = b.try_get_u16()?;
        d.f04 = b.try_get_u16()?;
        d.f05 = b.try_get_u32()?;
        d.f06 = b.try_get_u32()?;
        d.f07 = b.try_get_u64()?;
        d.f08 = b.try_get_u64()?;
        d.f09 = b.try_get_i8()?;
        d.f10 = b.try_get_i16()?;
        d.f11 = b.try_get_i32()?;
        d.f12 = b.try_get_i64()?;
        d.f13 = get_bool(b)?;
        d.f14 = get_bool(b)?;
        d.f15 = b.try_get_u8()?;
        d.f16 = b.try_get_u32()?;
        d.f17 = b.try_get_u32()?;
        d.f18 = b.try_get_u16()?;
        d.f19 = b.try_get_u8()?;
        d.f20 = b.try_get_u64()?;
        b.try_copy_to_slice(&mut d.regs)?;
        for w in &mut d.words {
            *w = b.try_get_u32()?;
        }
        d.f23 = b.try_get_u32()?;
        d.f24 = b.try_get_u16()?;
        d.f25 = b.try_get_u8()?;
        d.f26 = b.try_get_i32()?;
        d.f27 = b.try_get_u64()?;
        d.f28 = b.try_get_u32()?;
        d.f29 = b.try_get_u8()?;
        d.f30 = b.try_get_u8()?;
        d.fifo_len = b.try_get_u32()?;
        if d.fifo_len > 256 {
            return Err(Short);
        }
        d.fifo.clear();
        d.fifo.resize(d.fifo_len as usize, 0);
        b.try_copy_to_slice(&mut d.fifo)?;
        d.timer.count = b.try_get_u32()?;
        d.timer.reload = b.try_get_u32()?;
        d.timer.mode = b.try_get_u8()?;
        d.timer.armed = get_bool(b)?;
        d.timer.expire = b.try_get_u64()?;
        d.f34 = b.try_get_u32()?;
        d.f35 = b.try_get_u16()?;
        d.f36 = b.try_get_u8()?;
        d.f37 = b.try_get_u32()?;
        d.f38 = b.try_get_i16()?;
        d.f39 = b.try_get_u64()?;
        // One subsection may follow: 0x05, len, "bench/extra", be32 version.
        if b.first() == Some(&5) && b.len() >= 2 + 11 && &b[2..13] == b"bench/extra" {
            b.advance(13);
            if b.try_get_u32()? != 1 {
                return Err(Short);
            }
            d.extra.flags = b.try_get_u32()?;
            b.try_copy_to_slice(&mut d.extra.shadow)?;
        }
        if !b.is_empty() {
            return Err(Short);
        }
        Ok(())
    }
}

fn check_same_bytes() {
    let d = Device::sample();
    let generated = vmstate_runtime::to_bytes(&d).unwrap();
    let mut handwritten = Vec::new();
    hand::save(&d, &mut handwritten);
    assert_eq!(generated, handwritten, "baseline must write the same bytes");
    let mut back = Device::default();
    hand::load(&mut back, &generated).unwrap();
    assert_eq!(back, d);
    assert_eq!(
        vmstate_runtime::from_bytes::<Device>(&generated, 2).unwrap(),
        d
    );
}

fn bench(c: &mut Criterion) {
    check_same_bytes();
    let d = Device::sample();
    let bytes = vmstate_runtime::to_bytes(&d).unwrap();

    let mut g = c.benchmark_group("save_40_fields");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut buf = Vec::with_capacity(1024);
    g.bench_function(BenchmarkId::new("generated", bytes.len()), |b| {
        b.iter(|| {
            buf.clear();
            let mut w = Writer::new(&mut buf);
            black_box(&d).save(&mut w).unwrap();
            black_box(buf.len())
        })
    });
    g.bench_function(BenchmarkId::new("handwritten", bytes.len()), |b| {
        b.iter(|| {
            buf.clear();
            hand::save(black_box(&d), &mut buf);
            black_box(buf.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("load_40_fields");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut target = Device::default();
    g.bench_function(BenchmarkId::new("generated", bytes.len()), |b| {
        b.iter(|| {
            let mut r = Reader::new(black_box(&bytes[..]));
            target.load(&mut r, 2).unwrap();
            black_box(r.remaining())
        })
    });
    g.bench_function(BenchmarkId::new("handwritten", bytes.len()), |b| {
        b.iter(|| {
            hand::load(&mut target, black_box(&bytes[..])).unwrap();
            black_box(target.f01)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
