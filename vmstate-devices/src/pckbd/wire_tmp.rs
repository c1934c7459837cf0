//! [`WireTmp`]: a field whose wire value is computed by `pre_save` from state that
//! lives elsewhere in the device (QEMU's `pending_tmp`-style members).
//!
//! The derive's `pre_save` hook receives `&Self`, and a subsection type cannot see
//! its parent; both are right for ordinary fields. For the few values QEMU
//! computes just before saving (and consumes in `post_load`), a `WireTmp` is a
//! slot the hook can fill through a shared reference. It is encoded exactly like
//! the plain integer it holds, so the static description is QEMU's.

use std::fmt;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU8, Ordering};

use bytes::{Buf, BufMut};
use vmstate_runtime::wire::{Reader, Writer};
use vmstate_runtime::{FieldType, Result, VmStateField};

/// Integer types a [`WireTmp`] can hold, with the atomic slot that stores them.
pub(crate) trait TmpValue: VmStateField + Copy + Default + fmt::Debug + PartialEq {
    /// Interior-mutable storage (atomics keep devices `Send + Sync`).
    type Slot: Default;
    fn get(slot: &Self::Slot) -> Self;
    fn set(slot: &Self::Slot, v: Self);
}

macro_rules! tmp_value {
    ($($t:ty => $slot:ty),*) => {$(
        impl TmpValue for $t {
            type Slot = $slot;
            fn get(slot: &$slot) -> $t {
                slot.load(Ordering::Relaxed)
            }
            fn set(slot: &$slot, v: $t) {
                slot.store(v, Ordering::Relaxed)
            }
        }
    )*};
}
tmp_value!(u8 => AtomicU8, u32 => AtomicU32, i32 => AtomicI32);

/// A wire-only value: `pre_save` [`set`](WireTmp::set)s it from live state, a load
/// stores the incoming value in it, and `post_load` [`get`](WireTmp::get)s it to
/// rebuild live state. On the wire it is exactly a `T`.
pub(crate) struct WireTmp<T: TmpValue>(T::Slot);

impl<T: TmpValue> WireTmp<T> {
    /// A slot holding `v`.
    pub(crate) fn new(v: T) -> Self {
        let slot = T::Slot::default();
        T::set(&slot, v);
        WireTmp(slot)
    }

    /// The value last set or loaded.
    pub(crate) fn get(&self) -> T {
        T::get(&self.0)
    }

    /// Stores a value (usable from `pre_save`, which only has `&self`).
    pub(crate) fn set(&self, v: T) {
        T::set(&self.0, v)
    }
}

impl<T: TmpValue> VmStateField for WireTmp<T> {
    const FIELD_TYPE: FieldType = T::FIELD_TYPE;

    fn save_field<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        self.get().save_field(w)
    }

    fn load_field<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
        let mut v = T::default();
        v.load_field(r)?;
        self.set(v);
        Ok(())
    }
}

impl<T: TmpValue> Default for WireTmp<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: TmpValue> Clone for WireTmp<T> {
    fn clone(&self) -> Self {
        Self::new(self.get())
    }
}

impl<T: TmpValue> PartialEq for WireTmp<T> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<T: TmpValue + Eq> Eq for WireTmp<T> {}

impl<T: TmpValue> fmt::Debug for WireTmp<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_the_plain_integer() {
        let t = WireTmp::new(-1i32);
        let mut w = Writer::new(Vec::new());
        t.save_field(&mut w).unwrap();
        assert_eq!(w.into_inner(), [0xff; 4]);
        assert_eq!(<WireTmp<u8>>::FIELD_TYPE.info, "uint8");
        let mut back = WireTmp::<u32>::default();
        back.load_field(&mut Reader::new(&[0, 0, 1, 2][..]))
            .unwrap();
        assert_eq!(back.get(), 0x102);
        assert_eq!(back.clone(), back);
    }
}
