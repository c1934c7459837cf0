//! Save-side errors

use super::*;

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "dev", version = 1)]
struct SaveCounts {
    a: u8,
    n: u8,
    #[vmstate(varray(len = n), max = 8)]
    v: Vec<u16>,
    ni: i32,
    #[vmstate(varray(len = ni), max = 8)]
    w: Vec<u8>,
    nf: u16,
    #[vmstate(varray(len = nf))]
    f: [u32; 3],
    nbits: u32,
    #[vmstate(bitmap(len = nbits), max = 256)]
    bm: Vec<u64>,
}

#[test]
fn save_count_mismatch() {
    let good = SaveCounts {
        a: 1,
        n: 2,
        v: vec![1, 2],
        ni: 1,
        w: vec![3],
        nf: 3,
        f: [4, 5, 6],
        nbits: 65,
        bm: vec![7, 8],
    };
    let bytes = to_bytes(&good).unwrap();
    assert_eq!(from_bytes::<SaveCounts>(&bytes, 1).unwrap(), good);

    // (the value, its error kind, the field path and byte offset where they
    // are checked, a text the message must contain where one is checked)
    type Case = (
        SaveCounts,
        KindCheck,
        Option<(&'static str, u64)>,
        Option<&'static str>,
    );
    let cases: [Case; 5] = [
        (
            SaveCounts {
                v: vec![1, 2, 3],
                ..good_clone(&good)
            },
            kind! { ErrorKind::CountMismatch { count: 2, actual: 3 } },
            Some(("dev.v", 2)),
            None,
        ),
        (
            SaveCounts {
                n: 3,
                ..good_clone(&good)
            },
            kind! { ErrorKind::CountMismatch { count: 3, actual: 2 } },
            None,
            Some("count field says 3 but the data holds 2"),
        ),
        // A negative count is refused as out of range (what the loader would say).
        (
            SaveCounts {
                ni: -1,
                ..good_clone(&good)
            },
            kind! { ErrorKind::CountOutOfRange { count: -1, max: 8 } },
            Some(("dev.w", 10)),
            None,
        ),
        // A fixed array cannot hold more than its length.
        (
            SaveCounts {
                nf: 4,
                ..good_clone(&good)
            },
            kind! { ErrorKind::CountOutOfRange { count: 4, max: 3 } },
            Some(("dev.f", 13)),
            None,
        ),
        // A bitmap needs ceil(bits / 64) words.
        (
            SaveCounts {
                nbits: 129,
                ..good_clone(&good)
            },
            kind! { ErrorKind::CountMismatch { count: 129, actual: 128 } },
            Some(("dev.bm", 29)),
            None,
        ),
    ];
    for (value, kind, at, text) in &cases {
        let e = expect_save_err(value, *kind);
        if let Some((path, offset)) = at {
            assert_eq!(
                (e.path_string().as_str(), e.offset()),
                (*path, Some(*offset))
            );
        }
        if let Some(text) = text {
            assert!(e.to_string().contains(text), "{e}");
        }
    }
}

fn good_clone(g: &SaveCounts) -> SaveCounts {
    SaveCounts {
        a: g.a,
        n: g.n,
        v: g.v.clone(),
        ni: g.ni,
        w: g.w.clone(),
        nf: g.nf,
        f: g.f,
        nbits: g.nbits,
        bm: g.bm.clone(),
    }
}
