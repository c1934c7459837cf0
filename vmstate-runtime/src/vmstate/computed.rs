//! Values computed on save: a field whose wire value is not kept in the device's
//! live state but worked out just before saving, and consumed after loading.
//!
//! QEMU devices do this with `*_tmp` members: `pre_save` fills them from live
//! state, the vmsd sends them like any integer, and `post_load` rebuilds the live
//! state from them (the i8042's `pending_tmp`, its `migration_flags`, the PS/2
//! keyboard's `cwptr`; virtio's queue state has the same shape). The derive's
//! `pre_save` hook receives `&Self`, so a plain integer cannot be filled there: a
//! [`SaveComputed`] is a slot the hook can set through a shared reference. On the
//! wire and in the description it is exactly the integer it holds.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8};
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

use bytes::{Buf, BufMut};

use super::{FieldType, VmStateField};
use crate::error::Result;
use crate::wire::{Reader, Writer};

/// A value a [`SaveComputed`] can hold: an integer or bool, with the atomic slot
/// that stores it (atomics keep devices `Send + Sync`).
///
/// ```
/// use vmstate_runtime::vmstate::ComputedValue;
///
/// fn roundtrip<T: ComputedValue>(v: T) -> T {
///     let slot = T::Slot::default();
///     T::store(&slot, v);
///     T::load(&slot)
/// }
/// assert_eq!(roundtrip(-5i32), -5);
/// assert!(roundtrip(true));
/// ```
pub trait ComputedValue: VmStateField + Copy + Default + fmt::Debug + PartialEq {
    /// Interior-mutable storage for the value.
    type Slot: Default;
    /// Reads the slot.
    fn load(slot: &Self::Slot) -> Self;
    /// Writes the slot.
    fn store(slot: &Self::Slot, v: Self);
}

macro_rules! computed_value {
    ($($t:ty => $slot:ty),*) => {$(
        impl ComputedValue for $t {
            type Slot = $slot;
            #[inline]
            fn load(slot: &$slot) -> $t {
                slot.load(Ordering::Relaxed)
            }
            #[inline]
            fn store(slot: &$slot, v: $t) {
                slot.store(v, Ordering::Relaxed)
            }
        }
    )*};
}
computed_value!(u8 => AtomicU8, u16 => AtomicU16, u32 => AtomicU32, u64 => AtomicU64,
                i8 => AtomicI8, i16 => AtomicI16, i32 => AtomicI32, i64 => AtomicI64,
                bool => AtomicBool);

/// A wire-only value: `pre_save` [`set`](SaveComputed::set)s it from live state, a
/// load stores the incoming value in it, and `post_load` [`get`](SaveComputed::get)s
/// it to rebuild live state. On the wire it is exactly a `T`.
///
/// ```
/// use vmstate_runtime::vmstate::SaveComputed;
/// use vmstate_runtime::{from_bytes, to_bytes, Error, VmState};
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "kbd", pre_save = Self::pre_save, post_load = Self::post_load)]
/// struct Kbd {
///     /// Sent in place of `queue_len`, which is not migrated.
///     pending: SaveComputed<u8>,
///     #[vmstate(skip)]
///     queue_len: usize,
/// }
///
/// impl Kbd {
///     fn pre_save(&self) -> Result<(), Error> {
///         self.pending.set(u8::from(self.queue_len > 0));
///         Ok(())
///     }
///     fn post_load(&mut self, _version_id: u32) -> Result<(), Error> {
///         self.queue_len = usize::from(self.pending.get());
///         Ok(())
///     }
/// }
///
/// let bytes = to_bytes(&Kbd { queue_len: 3, ..Kbd::default() })?;
/// assert_eq!(bytes, [1]);
/// assert_eq!(from_bytes::<Kbd>(&bytes, 0)?.queue_len, 1);
/// assert_eq!(Kbd::DESCRIPTION.fields[0].ty.info, "uint8");
/// # Ok::<(), Error>(())
/// ```
pub struct SaveComputed<T: ComputedValue>(T::Slot);

impl<T: ComputedValue> SaveComputed<T> {
    /// A slot holding `v`.
    ///
    /// ```
    /// use vmstate_runtime::vmstate::SaveComputed;
    ///
    /// assert_eq!(SaveComputed::new(-1i32).get(), -1);
    /// ```
    pub fn new(v: T) -> Self {
        let slot = T::Slot::default();
        T::store(&slot, v);
        SaveComputed(slot)
    }

    /// The value last set or loaded.
    ///
    /// ```
    /// use vmstate_runtime::vmstate::SaveComputed;
    ///
    /// assert_eq!(SaveComputed::<u32>::default().get(), 0);
    /// ```
    pub fn get(&self) -> T {
        T::load(&self.0)
    }

    /// Stores a value (usable from `pre_save`, which only has `&self`).
    ///
    /// ```
    /// use vmstate_runtime::vmstate::SaveComputed;
    ///
    /// let slot = SaveComputed::new(0u8);
    /// slot.set(7);
    /// assert_eq!(slot.get(), 7);
    /// ```
    pub fn set(&self, v: T) {
        T::store(&self.0, v)
    }
}

impl<T: ComputedValue> VmStateField for SaveComputed<T> {
    const FIELD_TYPE: FieldType = T::FIELD_TYPE;

    #[inline]
    fn save_field<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        self.get().save_field(w)
    }

    #[inline]
    fn load_field<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()> {
        let mut v = T::default();
        v.load_field(r)?;
        self.set(v);
        Ok(())
    }
}

impl<T: ComputedValue> Default for SaveComputed<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: ComputedValue> Clone for SaveComputed<T> {
    fn clone(&self) -> Self {
        Self::new(self.get())
    }
}

impl<T: ComputedValue> PartialEq for SaveComputed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<T: ComputedValue + Eq> Eq for SaveComputed<T> {}

impl<T: ComputedValue> fmt::Debug for SaveComputed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_the_plain_integer() {
        let t = SaveComputed::new(-1i32);
        let mut w = Writer::new(Vec::new());
        t.save_field(&mut w).unwrap();
        assert_eq!(w.into_inner(), [0xff; 4]);
        assert_eq!(<SaveComputed<u8>>::FIELD_TYPE.info, "uint8");
        let mut back = SaveComputed::<u32>::default();
        back.load_field(&mut Reader::new(&[0, 0, 1, 2][..]))
            .unwrap();
        assert_eq!(back.get(), 0x102);
        assert_eq!(back.clone(), back);
        assert_eq!(format!("{back:?}"), "258");
    }
}
