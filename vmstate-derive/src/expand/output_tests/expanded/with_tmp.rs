// Expansion of the `with_tmp` case in vmstate-derive/src/expand/output_tests/mod.rs
// (5 fields or variants). Regenerate: VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests

const _: () = {
    use ::vmstate_runtime::__private as __vmstate;
    #[automatically_derived]
    impl __vmstate::VmState for Clock {
        const DESCRIPTION: &'static __vmstate::VmStateDescription = &__vmstate::VmStateDescription {
            name: "clock",
            version_id: 0u32,
            minimum_version_id: 0u32,
            priority: __vmstate::MigrationPriority::Default,
            fields: &[
                __vmstate::FieldDescription::of_type(
                    "magic",
                    __vmstate::equal_type(<u32 as __vmstate::VmStateField>::FIELD_TYPE),
                ),
                __vmstate::FieldDescription::of_type(
                    "level",
                    __vmstate::POSITIVE_LE_TYPE,
                ),
                __vmstate::FieldDescription::new(
                    "ticks",
                    __vmstate::tmp_type(<Ticks as __vmstate::VmState>::DESCRIPTION),
                    __vmstate::FieldLayout::Tmp,
                ),
                __vmstate::FieldDescription::of_type("deadline", __vmstate::TIMER_TYPE),
                __vmstate::FieldDescription::new(
                    "pad",
                    __vmstate::unused_type(4usize),
                    __vmstate::FieldLayout::Unused {
                        size: 4usize,
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
            let _ = <Ticks as __vmstate::VmStateTmp<Self>>::from_parent;
            #[allow(unused)]
            const __VERSION: __vmstate::u32 = 0u32;
            let __desc = <Self as __vmstate::VmState>::DESCRIPTION;
            __vmstate::begin_vmsd(__sink, __desc);
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                __vmstate::save_field(
                    __w,
                    __sink,
                    __desc,
                    0usize,
                    __vmstate::Option::None,
                    |__w, __sink| <u32 as __vmstate::VmStateField>::save_field(
                        &self.magic,
                        __w,
                    ),
                )?;
                __vmstate::save_field(
                    __w,
                    __sink,
                    __desc,
                    1usize,
                    __vmstate::Option::None,
                    |__w, __sink| <i32 as __vmstate::VmStateField>::save_field(
                        &self.level,
                        __w,
                    ),
                )?;
                __vmstate::save_field(
                    __w,
                    __sink,
                    __desc,
                    2usize,
                    __vmstate::Option::None,
                    |__w, __sink| __vmstate::save_tmp::<Ticks, Self, __B>(self, __w),
                )?;
                __vmstate::save_field(
                    __w,
                    __sink,
                    __desc,
                    3usize,
                    __vmstate::Option::None,
                    |__w, __sink| __vmstate::save_timer(&self.deadline, __w),
                )?;
                __vmstate::save_field(
                    __w,
                    __sink,
                    __desc,
                    4usize,
                    __vmstate::Option::None,
                    |__w, __sink| __w.write_zeros(4usize),
                )?;
                __vmstate::Result::Ok(())
            })();
            __vmstate::end_vmsd(__sink);
            __result.map_err(|__e| __e.in_vmsd("clock"))
        }
        #[inline]
        fn load<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
            __version: __vmstate::u32,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Ticks as __vmstate::VmStateTmp<Self>>::from_parent;
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                <Self as __vmstate::VmState>::DESCRIPTION
                    .check_version(__version)
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                __vmstate::in_field(
                    __vmstate::load_equal(&self.magic, __r),
                    "magic",
                    __r,
                )?;
                __vmstate::in_field(
                    __vmstate::load_positive_le(&mut self.level, __r),
                    "level",
                    __r,
                )?;
                __vmstate::in_field(
                    __vmstate::load_tmp::<Ticks, Self, __B>(self, __r),
                    "ticks",
                    __r,
                )?;
                __vmstate::in_field(
                    __vmstate::load_timer(&mut self.deadline, __r),
                    "deadline",
                    __r,
                )?;
                __vmstate::in_field(__r.skip(4usize), "pad", __r)?;
                __vmstate::no_subsections("clock", __r)?;
                __vmstate::Result::Ok(())
            })();
            __result.map_err(|__e| __e.in_vmsd("clock"))
        }
    }
    /// As a field of another struct: QEMU's VMSTATE_STRUCT (body inline, loaded
    /// at this type's own current version).
    #[automatically_derived]
    impl __vmstate::VmStateField for Clock {
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
    impl Clock {
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        const fn __vmstate_static_checks() {
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <Ticks as __vmstate::VmStateTmp<Self>>::from_parent;
        }
    }
};
