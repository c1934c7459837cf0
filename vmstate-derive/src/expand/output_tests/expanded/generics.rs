// Expansion of the `generics` case in vmstate-derive/src/expand/output_tests/mod.rs
// (2 fields or variants). Regenerate: VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests

const _: () = {
    use ::vmstate_runtime::__private as __vmstate;
    #[automatically_derived]
    impl<T: VmStateField, const N: usize> __vmstate::VmState for Regs<T, N> {
        const DESCRIPTION: &'static __vmstate::VmStateDescription = &__vmstate::VmStateDescription {
            name: "regs",
            version_id: 1u32,
            minimum_version_id: 1u32,
            priority: __vmstate::MigrationPriority::Default,
            fields: &[
                __vmstate::FieldDescription::of_type(
                    "count",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "regs",
                    <[T; N] as __vmstate::VmStateField>::FIELD_TYPE,
                ),
            ],
            subsections: &[],
            hooks: __vmstate::Hooks {
                pre_save: false,
                post_save: false,
                pre_load: false,
                post_load: false,
            },
        };
        #[inline]
        fn save_with<
            __B: __vmstate::BufMut,
            __S: __vmstate::DescribeSink + ?__vmstate::Sized,
        >(
            &self,
            __w: &mut __vmstate::Writer<__B>,
            __sink: &mut __S,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[T; N] as __vmstate::VmStateField>::FIELD_TYPE;
            #[allow(unused)]
            const __VERSION: __vmstate::u32 = 1u32;
            let __desc = <Self as __vmstate::VmState>::DESCRIPTION;
            __vmstate::begin_vmsd(__sink, __desc);
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                __vmstate::save_value::<
                    u8,
                    __B,
                    __S,
                >(&self.count, __w, __sink, __desc, 0usize)?;
                __vmstate::save_value::<
                    [T; N],
                    __B,
                    __S,
                >(&self.regs, __w, __sink, __desc, 1usize)?;
                __vmstate::Result::Ok(())
            })();
            __vmstate::end_vmsd(__sink);
            __result.map_err(|__e| __e.in_vmsd("regs"))
        }
        #[inline]
        fn load<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
            __version: __vmstate::u32,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[T; N] as __vmstate::VmStateField>::FIELD_TYPE;
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                <Self as __vmstate::VmState>::DESCRIPTION
                    .check_version(__version)
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                __vmstate::load_value::<u8, __B>(&mut self.count, __r, "count")?;
                __vmstate::load_value::<[T; N], __B>(&mut self.regs, __r, "regs")?;
                __vmstate::no_subsections("regs", __r)?;
                __vmstate::Result::Ok(())
            })();
            __result.map_err(|__e| __e.in_vmsd("regs"))
        }
    }
    /// As a field of another struct: QEMU's VMSTATE_STRUCT (body inline, loaded
    /// at this type's own current version).
    #[automatically_derived]
    impl<T: VmStateField, const N: usize> __vmstate::VmStateField for Regs<T, N> {
        const FIELD_TYPE: __vmstate::FieldType = __vmstate::struct_type(
            <Self as __vmstate::VmState>::DESCRIPTION,
        );
        #[inline]
        fn save_field<__B: __vmstate::BufMut>(
            &self,
            __w: &mut __vmstate::Writer<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::save_struct(self, __w)
        }
        #[inline]
        fn save_field_with<
            __B: __vmstate::BufMut,
            __S: __vmstate::DescribeSink + ?__vmstate::Sized,
        >(
            &self,
            __w: &mut __vmstate::Writer<__B>,
            __sink: &mut __S,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            <Self as __vmstate::VmState>::save_with(self, __w, __sink)
        }
        #[inline]
        fn load_field<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::load_struct(self, __r)
        }
    }
    #[automatically_derived]
    impl<T: VmStateField, const N: usize> Regs<T, N> {
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        const fn __vmstate_static_checks() {
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[T; N] as __vmstate::VmStateField>::FIELD_TYPE;
        }
    }
};
