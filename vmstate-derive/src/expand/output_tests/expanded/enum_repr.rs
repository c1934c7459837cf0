// Expansion of the `enum_repr` case in vmstate-derive/src/expand/output_tests/mod.rs
// (3 fields or variants). Regenerate: VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests

const _: () = {
    use ::vmstate_runtime::__private as __vmstate;
    #[automatically_derived]
    impl __vmstate::VmStateField for Mode {
        const FIELD_TYPE: __vmstate::FieldType = <__vmstate::u8 as __vmstate::VmStateField>::FIELD_TYPE;
        #[inline]
        fn save_field<__B: __vmstate::BufMut>(
            &self,
            __w: &mut __vmstate::Writer<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let __v: __vmstate::u8 = match self {
                Self::Off => Self::Off as __vmstate::u8,
                Self::On => Self::On as __vmstate::u8,
                Self::Auto => Self::Auto as __vmstate::u8,
            };
            <__vmstate::u8 as __vmstate::VmStateField>::save_field(&__v, __w)
        }
        #[inline]
        #[allow(non_upper_case_globals)]
        fn load_field<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            const __VMSTATE_DISCRIMINANT_Off: __vmstate::u8 = Mode::Off as __vmstate::u8;
            const __VMSTATE_DISCRIMINANT_On: __vmstate::u8 = Mode::On as __vmstate::u8;
            const __VMSTATE_DISCRIMINANT_Auto: __vmstate::u8 = Mode::Auto
                as __vmstate::u8;
            let __at = __r.position();
            let mut __v: __vmstate::u8 = 0;
            <__vmstate::u8 as __vmstate::VmStateField>::load_field(&mut __v, __r)?;
            *self = match __v {
                __VMSTATE_DISCRIMINANT_Off => Self::Off,
                __VMSTATE_DISCRIMINANT_On => Self::On,
                __VMSTATE_DISCRIMINANT_Auto => Self::Auto,
                __other => {
                    return __vmstate::Result::Err(
                        __vmstate::invalid_enum("Mode", __other, __at),
                    );
                }
            };
            __vmstate::Result::Ok(())
        }
    }
};
