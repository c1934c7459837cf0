// Expansion of the `varray` case in vmstate-derive/src/expand/output_tests/mod.rs
// (5 fields or variants). Regenerate: VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests

const _: () = {
    use ::vmstate_runtime::__private as __vmstate;
    #[automatically_derived]
    impl __vmstate::VmState for Fifo {
        const DESCRIPTION: &'static __vmstate::VmStateDescription = &__vmstate::VmStateDescription {
            name: "fifo",
            version_id: 1u32,
            minimum_version_id: 1u32,
            priority: __vmstate::MigrationPriority::Default,
            fields: &[
                __vmstate::FieldDescription::of_type(
                    "len",
                    <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::new(
                    "data",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                    __vmstate::FieldLayout::VarArray {
                        count_field: "len",
                        max: 256usize,
                    },
                ),
                __vmstate::FieldDescription::of_type(
                    "used",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::new(
                    "slots",
                    <u16 as __vmstate::VmStateField>::FIELD_TYPE,
                    __vmstate::FieldLayout::VarArray {
                        count_field: "used",
                        max: (8) as __vmstate::usize,
                    },
                ),
                __vmstate::FieldDescription::new(
                    "queue",
                    __vmstate::list_type(<Entry as __vmstate::VmState>::DESCRIPTION),
                    __vmstate::FieldLayout::List {
                        max: 16usize,
                    },
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
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Entry as __vmstate::VmState>::DESCRIPTION;
            #[allow(unused)]
            const __VERSION: __vmstate::u32 = 1u32;
            let __desc = <Self as __vmstate::VmState>::DESCRIPTION;
            __vmstate::begin_vmsd(__sink, __desc);
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                __vmstate::save_value::<
                    u32,
                    __B,
                    __S,
                >(&self.len, __w, __sink, __desc, 0usize)?;
                __vmstate::save_field(
                    __w,
                    __sink,
                    __desc,
                    1usize,
                    __vmstate::Option::Some(self.len as __vmstate::i64),
                    |__w, __sink| __vmstate::save_varray_vec::<
                        u8,
                        __B,
                        __S,
                    >(&self.data, self.len as __vmstate::i64, 256usize, __w, __sink),
                )?;
                __vmstate::save_value::<
                    u8,
                    __B,
                    __S,
                >(&self.used, __w, __sink, __desc, 2usize)?;
                __vmstate::save_field(
                    __w,
                    __sink,
                    __desc,
                    3usize,
                    __vmstate::Option::Some(self.used as __vmstate::i64),
                    |__w, __sink| __vmstate::save_varray_array::<
                        u16,
                        __B,
                        __S,
                    >(
                        &self.slots,
                        self.used as __vmstate::i64,
                        __vmstate::usize::MAX,
                        __w,
                        __sink,
                    ),
                )?;
                __vmstate::save_field(
                    __w,
                    __sink,
                    __desc,
                    4usize,
                    __vmstate::Option::None,
                    |__w, __sink| __vmstate::save_list::<Entry, __B>(&self.queue, __w),
                )?;
                __vmstate::Result::Ok(())
            })();
            __vmstate::end_vmsd(__sink);
            __result.map_err(|__e| __e.in_vmsd("fifo"))
        }
        #[inline]
        fn load<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
            __version: __vmstate::u32,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Entry as __vmstate::VmState>::DESCRIPTION;
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                <Self as __vmstate::VmState>::DESCRIPTION
                    .check_version(__version)
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                __vmstate::load_value::<u32, __B>(&mut self.len, __r, "len")?;
                __vmstate::in_field(
                    __vmstate::load_varray_vec::<
                        u8,
                        __B,
                    >(&mut self.data, self.len as __vmstate::i64, 256usize, __r),
                    "data",
                    __r,
                )?;
                __vmstate::load_value::<u8, __B>(&mut self.used, __r, "used")?;
                __vmstate::in_field(
                    __vmstate::load_varray_array::<
                        u16,
                        __B,
                    >(
                        &mut self.slots,
                        self.used as __vmstate::i64,
                        (8) as __vmstate::usize,
                        __r,
                    ),
                    "slots",
                    __r,
                )?;
                __vmstate::in_field(
                    __vmstate::load_list::<Entry, __B>(&mut self.queue, 16usize, __r),
                    "queue",
                    __r,
                )?;
                __vmstate::no_subsections("fifo", __r)?;
                __vmstate::Result::Ok(())
            })();
            __result.map_err(|__e| __e.in_vmsd("fifo"))
        }
    }
    /// As a field of another struct: QEMU's VMSTATE_STRUCT (body inline, loaded
    /// at this type's own current version).
    #[automatically_derived]
    impl __vmstate::VmStateField for Fifo {
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
    impl Fifo {
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        const fn __vmstate_static_checks() {
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u16 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Entry as __vmstate::VmState>::DESCRIPTION;
        }
    }
};
