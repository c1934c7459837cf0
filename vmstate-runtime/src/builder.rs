//! `with_*` setters for the public config and stats structs (which are
//! `#[non_exhaustive]`, so code outside the crate builds them from a
//! constructor or `Default` and these setters, never with a struct literal).

/// Generates one `with_FIELD(self, v) -> Self` per listed field. `into T`
/// takes `impl Into<T>` (strings, `Option`s: `with_x(d)` and `with_x(None)`
/// both work); a plain `T` takes the value as is (numbers, so literals infer).
macro_rules! with_setters {
    (@one $setter:ident, $field:ident, into $t:ty) => {
        #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ") (builder style).")]
        #[must_use]
        pub fn $setter(mut self, v: impl Into<$t>) -> Self {
            self.$field = v.into();
            self
        }
    };
    (@one $setter:ident, $field:ident, $t:ty) => {
        #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ") (builder style).")]
        #[must_use]
        pub fn $setter(mut self, v: $t) -> Self {
            self.$field = v;
            self
        }
    };
    ($ty:ty { $( $setter:ident => $field:ident : $($kw:ident)? [$t:ty] ),* $(,)? }) => {
        impl $ty {
            $( with_setters!(@one $setter, $field, $($kw)? $t); )*
        }
    };
}
