//! Temporary migration views (QEMU's `VMSTATE_WITH_TMP`): [`VmStateTmp`], the
//! [`WithTmp`] marker, and the save/load calls the derive's output makes for them.

use std::fmt;
use std::marker::PhantomData;

use bytes::{Buf, BufMut};

use super::{FieldType, VmState, VmStateDescription};
use crate::error::{PathSegment, Result};
use crate::wire::{Reader, Writer};

/// A temporary migration view of a parent type `P` (QEMU's `VMSTATE_WITH_TMP`).
///
/// The view is built from the parent before saving (and before loading, so fields
/// absent from an older stream keep the parent's values), written or loaded inline
/// at its position in the parent's field order, and after loading converted back
/// into the parent.
///
/// ```
/// use vmstate_runtime::{to_bytes, from_bytes, VmState, VmStateTmp, WithTmp, Error};
///
/// /// On the wire the device keeps a 16-bit "ticks" value; in memory it keeps nanoseconds.
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev/tmp")]
/// struct Ticks { ticks: u16 }
///
/// impl VmStateTmp<Dev> for Ticks {
///     fn from_parent(dev: &Dev) -> Result<Self, Error> {
///         Ok(Ticks { ticks: (dev.ns / 1000) as u16 })
///     }
///     fn into_parent(self, dev: &mut Dev) -> Result<(), Error> {
///         dev.ns = u64::from(self.ticks) * 1000;
///         Ok(())
///     }
/// }
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev")]
/// struct Dev {
///     #[vmstate(skip)]
///     ns: u64,
///     #[vmstate(with_tmp)]
///     ticks: WithTmp<Ticks>,
/// }
///
/// let bytes = to_bytes(&Dev { ns: 5000, ..Default::default() }).unwrap();
/// assert_eq!(bytes, [0, 5]);
/// assert_eq!(from_bytes::<Dev>(&bytes, 0).unwrap().ns, 5000);
/// ```
pub trait VmStateTmp<P>: VmState + Sized {
    /// Builds the view from the parent (QEMU: the tmp vmsd's pre_save / pre_load).
    ///
    /// ```
    /// use vmstate_runtime::{Error, VmState, VmStateTmp};
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "clock/tmp")]
    /// struct Khz { khz: u32 }
    ///
    /// struct Clock { hz: u64 }
    ///
    /// impl VmStateTmp<Clock> for Khz {
    ///     fn from_parent(c: &Clock) -> Result<Self, Error> {
    ///         u32::try_from(c.hz / 1000)
    ///             .map(|khz| Khz { khz })
    ///             .map_err(|_| Error::invalid("clock too fast to migrate"))
    ///     }
    ///     fn into_parent(self, c: &mut Clock) -> Result<(), Error> {
    ///         c.hz = u64::from(self.khz) * 1000;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// assert_eq!(Khz::from_parent(&Clock { hz: 33_000 }).unwrap().khz, 33);
    /// assert!(Khz::from_parent(&Clock { hz: u64::MAX }).is_err());
    /// ```
    fn from_parent(parent: &P) -> Result<Self>;
    /// Applies a loaded view to the parent (QEMU: the tmp vmsd's post_load).
    ///
    /// ```
    /// use vmstate_runtime::{Error, VmState, VmStateTmp};
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "clock/tmp")]
    /// struct Khz { khz: u32 }
    ///
    /// struct Clock { hz: u64 }
    ///
    /// impl VmStateTmp<Clock> for Khz {
    ///     fn from_parent(c: &Clock) -> Result<Self, Error> {
    ///         Ok(Khz { khz: (c.hz / 1000) as u32 })
    ///     }
    ///     fn into_parent(self, c: &mut Clock) -> Result<(), Error> {
    ///         c.hz = u64::from(self.khz) * 1000;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut clock = Clock { hz: 0 };
    /// Khz { khz: 7 }.into_parent(&mut clock).unwrap();
    /// assert_eq!(clock.hz, 7000);
    /// ```
    fn into_parent(self, parent: &mut P) -> Result<()>;
}

/// Marks the position of a [`VmStateTmp`] view in a struct's field order. It holds
/// no data (zero-sized); annotate the field with `#[vmstate(with_tmp)]`.
///
/// ```
/// use vmstate_runtime::{VmState, WithTmp};
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev/tmp")]
/// struct View { x: u8 }
///
/// // The marker takes no space in memory ...
/// assert_eq!(std::mem::size_of::<WithTmp<View>>(), 0);
/// // ... and all markers of a type are equal.
/// assert_eq!(WithTmp::<View>::new(), WithTmp::default());
/// ```
pub struct WithTmp<T>(PhantomData<fn() -> T>);

// The marker adds nothing to the struct that holds it.
static_assertions::assert_eq_size!(WithTmp<u64>, ());

impl<T> WithTmp<T> {
    /// The marker.
    ///
    /// ```
    /// use vmstate_runtime::WithTmp;
    ///
    /// struct View;
    /// const MARKER: WithTmp<View> = WithTmp::new();
    /// assert_eq!(MARKER, WithTmp::default());
    /// assert!(format!("{MARKER:?}").starts_with("WithTmp<"));
    /// ```
    pub const fn new() -> Self {
        WithTmp(PhantomData)
    }
}

impl<T> Default for WithTmp<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for WithTmp<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for WithTmp<T> {}

impl<T> PartialEq for WithTmp<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for WithTmp<T> {}

impl<T> fmt::Debug for WithTmp<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WithTmp<{}>", std::any::type_name::<T>())
    }
}

/// Saves a with_tmp view built from the parent.
#[inline]
pub fn save_tmp<T: VmStateTmp<P>, P, B: BufMut>(parent: &P, w: &mut Writer<B>) -> Result<()> {
    let tmp = T::from_parent(parent).map_err(|e| e.within(PathSegment::Field("from_parent")))?;
    tmp.save(w)
}

/// Loads a with_tmp view and applies it to the parent.
#[inline]
pub fn load_tmp<T: VmStateTmp<P>, P, B: Buf>(parent: &mut P, r: &mut Reader<B>) -> Result<()> {
    let mut tmp =
        T::from_parent(parent).map_err(|e| e.within(PathSegment::Field("from_parent")))?;
    tmp.load(r, T::DESCRIPTION.version_id)?;
    tmp.into_parent(parent)
        .map_err(|e| e.within(PathSegment::Field("into_parent")))
}

/// `#[vmstate(with_tmp)]` with a view described by `tmp`: QEMU's `tmp` info, the
/// view's fields inline.
pub const fn tmp_type(tmp: &'static VmStateDescription) -> FieldType {
    FieldType {
        info: "tmp",
        size: tmp.fixed_body_size(),
        array_len: None,
        nested: Some(tmp),
    }
}
