//! Bitmap (VMSTATE_BITMAP): ceil(bits/64) be64 words

use super::*;

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "bitmap", version = 1)]
struct Bitmap {
    nbits: i32,
    #[vmstate(bitmap(len = nbits), max = 256)]
    map: Vec<u64>,
}

#[test]
fn bitmap_word_counts_and_bit_order() {
    for (bits, words) in [
        (0, 0),
        (1, 1),
        (63, 1),
        (64, 1),
        (65, 2),
        (128, 2),
        (129, 3),
    ] {
        let v = Bitmap {
            nbits: bits,
            map: vec![u64::MAX; words],
        };
        let bytes = to_bytes(&v).unwrap();
        assert_eq!(bytes.len(), 4 + 8 * words, "{bits} bits");
        assert_eq!(from_bytes::<Bitmap>(&bytes, 1).unwrap(), v);
    }
    // Bit i of the bitmap is bit (i % 64) of word i / 64; words are be64.
    let mut map = vec![0u64; 2];
    for bit in [0usize, 9, 64, 127] {
        map[bit / 64] |= 1 << (bit % 64);
    }
    let v = Bitmap { nbits: 100, map };
    let wire = cat(&[
        &[0, 0, 0, 100],
        &[0, 0, 0, 0, 0, 0, 0x02, 0x01],
        &[0x80, 0, 0, 0, 0, 0, 0, 0x01],
    ]);
    assert_wire(&v, &wire, 1);
}
