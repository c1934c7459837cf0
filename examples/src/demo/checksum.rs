//! Checksums of a machine's state at switchover: XXH64 (seed 0) of each RAM
//! block's used bytes and of each device's migrated state, so the two sides
//! of a migration between two hosts can be compared by eye or by script
//! (the stream itself stays exactly QEMU's: nothing is added to it).

use std::io::Write;

use vmstate_devices::machine::Machine;
use vmstate_runtime::to_bytes;

use super::report::lock;
use super::DemoError;

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

/// XXH64 (seed 0) over data fed in pieces of any size: a fast 64-bit hash
/// whose values any `xxhsum -H1` reproduces.
#[derive(Debug, Clone)]
pub struct Xxh64 {
    acc: [u64; 4],
    /// Bytes of an unfinished 32-byte stripe.
    pending: [u8; 32],
    pending_len: usize,
    total: u64,
}

impl Default for Xxh64 {
    fn default() -> Self {
        Xxh64 {
            acc: [P1.wrapping_add(P2), P2, 0, 0u64.wrapping_sub(P1)],
            pending: [0; 32],
            pending_len: 0,
            total: 0,
        }
    }
}

fn round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn merge(h: u64, acc: u64) -> u64 {
    (h ^ round(0, acc)).wrapping_mul(P1).wrapping_add(P4)
}

fn word(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

impl Xxh64 {
    /// The hash of `data` in one go.
    ///
    /// ```
    /// use vmstate_examples::demo::Xxh64;
    /// assert_eq!(Xxh64::of(b""), 0xef46_db37_51d8_e999);
    /// assert_eq!(Xxh64::of(b"abc"), 0x44bc_2cf5_ad77_0999);
    /// ```
    pub fn of(data: &[u8]) -> u64 {
        let mut h = Xxh64::default();
        h.update(data);
        h.finish()
    }

    fn stripe(&mut self, s: &[u8]) {
        for (i, acc) in self.acc.iter_mut().enumerate() {
            *acc = round(*acc, word(&s[i * 8..]));
        }
    }

    /// Feeds `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.pending_len > 0 {
            let n = (32 - self.pending_len).min(data.len());
            self.pending[self.pending_len..][..n].copy_from_slice(&data[..n]);
            self.pending_len += n;
            data = &data[n..];
            if self.pending_len < 32 {
                return;
            }
            let s = self.pending;
            self.stripe(&s);
            self.pending_len = 0;
        }
        let mut stripes = data.chunks_exact(32);
        for s in &mut stripes {
            self.stripe(s);
        }
        let rest = stripes.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// The hash of everything fed.
    pub fn finish(&self) -> u64 {
        let mut h = if self.total >= 32 {
            let [a, b, c, d] = self.acc;
            let h = a
                .rotate_left(1)
                .wrapping_add(b.rotate_left(7))
                .wrapping_add(c.rotate_left(12))
                .wrapping_add(d.rotate_left(18));
            self.acc.iter().fold(h, |h, acc| merge(h, *acc))
        } else {
            P5
        };
        h = h.wrapping_add(self.total);
        let mut rest = &self.pending[..self.pending_len];
        while rest.len() >= 8 {
            h = (h ^ round(0, word(rest)))
                .rotate_left(27)
                .wrapping_mul(P1)
                .wrapping_add(P4);
            rest = &rest[8..];
        }
        if rest.len() >= 4 {
            let v = u64::from(u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")));
            h = (h ^ v.wrapping_mul(P1))
                .rotate_left(23)
                .wrapping_mul(P2)
                .wrapping_add(P3);
            rest = &rest[4..];
        }
        for b in rest {
            h = (h ^ u64::from(*b).wrapping_mul(P5))
                .rotate_left(11)
                .wrapping_mul(P1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(P2);
        h ^= h >> 29;
        h = h.wrapping_mul(P3);
        h ^ (h >> 32)
    }
}

/// The checksum of one RAM block or device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// `ram` or `device`.
    pub kind: &'static str,
    /// The block's idstr or the device's section name.
    pub name: String,
    /// Bytes hashed.
    pub len: u64,
    /// XXH64 of those bytes.
    pub xxh64: u64,
}

/// Bytes of a RAM block read (and hashed) at once.
const CHUNK: usize = 1 << 20;

/// Checksums of every RAM block (in RAM-list order) and of the keyboard
/// controller's three sections, as the machine is now.
pub fn machine_checksums(m: &Machine) -> Result<Vec<Checksum>, DemoError> {
    let mut out = Vec::new();
    {
        let ram = lock(&m.ram, "RAM")?;
        let mut buf = vec![0u8; CHUNK];
        for block in ram.blocks() {
            let mut h = Xxh64::default();
            let mut at = 0;
            while at < block.used_length() {
                let n = (block.used_length() - at).min(CHUNK as u64) as usize;
                block.read(at, &mut buf[..n]).map_err(|e| {
                    DemoError::Failed(format!("reading RAMBlock {}: {e}", block.idstr()))
                })?;
                h.update(&buf[..n]);
                at += n as u64;
            }
            out.push(Checksum {
                kind: "ram",
                name: block.idstr().to_string(),
                len: block.used_length(),
                xxh64: h.finish(),
            });
        }
    }
    let kbd = lock(&m.i8042, "i8042")?.clone();
    for (name, bytes) in [
        ("ps2kbd", to_bytes(kbd.keyboard())?),
        ("ps2mouse", to_bytes(kbd.mouse())?),
        ("pckbd", to_bytes(&kbd)?),
    ] {
        out.push(Checksum {
            kind: "device",
            name: name.into(),
            len: bytes.len() as u64,
            xxh64: Xxh64::of(&bytes),
        });
    }
    Ok(out)
}

/// Prints the checksums under a title naming the side: one line each,
/// `  ram    NAME  LEN  xxh64 HASH`, sizes and hashes in hex so the lines of
/// two hosts compare with `diff`.
pub(super) fn print_checksums(side: &str, sums: &[Checksum], out: &mut dyn Write) {
    let _ = writeln!(
        out,
        "\nChecksums at switchover, {side} (XXH64 of each RAM block's used bytes and each device's state)"
    );
    for c in sums {
        let _ = writeln!(
            out,
            "  {:<6} {:<28} {:#018x}  xxh64 {:016x}",
            c.kind, c.name, c.len, c.xxh64
        );
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_values() {
        // Reference values of XXH64 with seed 0.
        for (input, want) in [
            (&b""[..], 0xef46_db37_51d8_e999u64),
            (b"a", 0xd24e_c4f1_a98c_6e5b),
            (b"abc", 0x44bc_2cf5_ad77_0999),
        ] {
            assert_eq!(Xxh64::of(input), want, "{input:?}");
        }
    }

    #[test]
    fn pieces_hash_like_the_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole = Xxh64::of(&data);
        for split in [1, 7, 31, 32, 33, 64, 500, 999] {
            let mut h = Xxh64::default();
            for piece in data.chunks(split) {
                h.update(piece);
            }
            assert_eq!(h.finish(), whole, "pieces of {split}");
        }
        assert_ne!(Xxh64::of(&data[..999]), whole);
    }
}
