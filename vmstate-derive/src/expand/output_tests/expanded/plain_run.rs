// Expansion of the `plain_run` case in vmstate-derive/src/expand/output_tests/mod.rs
// (6 fields or variants). Regenerate: VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests

const _: () = {
    use ::vmstate_runtime::__private as __vmstate;
    #[automatically_derived]
    impl __vmstate::VmState for Timer {
        const DESCRIPTION: &'static __vmstate::VmStateDescription = &__vmstate::VmStateDescription {
            name: "timer",
            version_id: 2u32,
            minimum_version_id: 1u32,
            priority: __vmstate::MigrationPriority::Default,
            fields: &[
                __vmstate::FieldDescription::of_type(
                    "count",
                    <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "reload",
                    <u32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mode",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "armed",
                    <bool as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "regs",
                    <[u16; 4] as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                        "expire",
                        <u64 as __vmstate::VmStateField>::FIELD_TYPE,
                    )
                    .since(2u32),
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
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <bool as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[u16; 4] as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            #[allow(unused)]
            const __VERSION: __vmstate::u32 = 2u32;
            let __desc = <Self as __vmstate::VmState>::DESCRIPTION;
            __vmstate::begin_vmsd(__sink, __desc);
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                if !__vmstate::is_recording(__sink)
                    && __w
                        .has_room(
                            0 + <u32 as __vmstate::PlainField>::WIRE_SIZE
                                + <u32 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <bool as __vmstate::PlainField>::WIRE_SIZE
                                + <[u16; 4] as __vmstate::PlainField>::WIRE_SIZE,
                        )
                {
                    let __buf = __w.get_mut();
                    <u32 as __vmstate::PlainField>::put_plain(&self.count, __buf);
                    <u32 as __vmstate::PlainField>::put_plain(&self.reload, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.mode, __buf);
                    <bool as __vmstate::PlainField>::put_plain(&self.armed, __buf);
                    <[u16; 4] as __vmstate::PlainField>::put_plain(&self.regs, __buf);
                } else {
                    __vmstate::save_value::<
                        u32,
                        __B,
                        __S,
                    >(&self.count, __w, __sink, __desc, 0usize)?;
                    __vmstate::save_value::<
                        u32,
                        __B,
                        __S,
                    >(&self.reload, __w, __sink, __desc, 1usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.mode, __w, __sink, __desc, 2usize)?;
                    __vmstate::save_value::<
                        bool,
                        __B,
                        __S,
                    >(&self.armed, __w, __sink, __desc, 3usize)?;
                    __vmstate::save_value::<
                        [u16; 4],
                        __B,
                        __S,
                    >(&self.regs, __w, __sink, __desc, 4usize)?;
                }
                __vmstate::save_value::<
                    u64,
                    __B,
                    __S,
                >(&self.expire, __w, __sink, __desc, 5usize)?;
                __vmstate::Result::Ok(())
            })();
            __vmstate::end_vmsd(__sink);
            __result.map_err(|__e| __e.in_vmsd("timer"))
        }
        #[inline]
        fn load<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
            __version: __vmstate::u32,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <bool as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[u16; 4] as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                <Self as __vmstate::VmState>::DESCRIPTION
                    .check_version(__version)
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                if !__r
                    .consume_contiguous_if(
                        0 + <u32 as __vmstate::PlainField>::WIRE_SIZE
                            + <u32 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <bool as __vmstate::PlainField>::WIRE_SIZE
                            + <[u16; 4] as __vmstate::PlainField>::WIRE_SIZE,
                        |__b| {
                            let mut __run = __vmstate::PlainRun::new(__b);
                            __run.decode::<u32>(&mut self.count);
                            __run.decode::<u32>(&mut self.reload);
                            __run.decode::<u8>(&mut self.mode);
                            __run.decode::<bool>(&mut self.armed);
                            __run.decode::<[u16; 4]>(&mut self.regs);
                            __run.ok()
                        },
                    )
                {
                    __vmstate::load_value::<u32, __B>(&mut self.count, __r, "count")?;
                    __vmstate::load_value::<u32, __B>(&mut self.reload, __r, "reload")?;
                    __vmstate::load_value::<u8, __B>(&mut self.mode, __r, "mode")?;
                    __vmstate::load_value::<bool, __B>(&mut self.armed, __r, "armed")?;
                    __vmstate::load_value::<[u16; 4], __B>(&mut self.regs, __r, "regs")?;
                }
                if __version >= 2u32 {
                    __vmstate::load_value::<u64, __B>(&mut self.expire, __r, "expire")?;
                }
                __vmstate::no_subsections("timer", __r)?;
                __vmstate::Result::Ok(())
            })();
            __result.map_err(|__e| __e.in_vmsd("timer"))
        }
    }
    /// As a field of another struct: QEMU's VMSTATE_STRUCT (body inline, loaded
    /// at this type's own current version).
    #[automatically_derived]
    impl __vmstate::VmStateField for Timer {
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
    impl Timer {
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        const fn __vmstate_static_checks() {
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <bool as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <[u16; 4] as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u64 as __vmstate::VmStateField>::FIELD_TYPE;
        }
    }
};
