;; decision.wat: a complete hook module in WebAssembly text, for tests and
;; as a reference of ABI v1 for authors of modules not written in Go. Its
;; decision is its configuration: husk_init keeps the config JSON and
;; husk_decide returns it, so a test scripts the decision through the config.
;; It logs the point name through husk.log at info level.
(module
  (import "husk" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)

  ;; A bump allocator: $heap is the next free byte. husk_decide frees
  ;; everything allocated after husk_init by moving $heap back to $base.
  (global $heap (mut i32) (i32.const 1024))
  (global $base (mut i32) (i32.const 1024))
  (global $cfg (mut i32) (i32.const 0))
  (global $cfglen (mut i32) (i32.const 0))

  (func (export "husk_hook_abi_v1"))

  (func (export "husk_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local $end i32)
    (local $have i32)
    (local.set $p (global.get $heap))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16)) (i32.const 1)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $p))

  (func (export "husk_init") (param $p i32) (param $n i32) (result i64)
    ;; The config stays where the host wrote it, below $base.
    (global.set $cfg (local.get $p))
    (global.set $cfglen (local.get $n))
    (global.set $base (global.get $heap))
    (i64.const 0))

  (func (export "husk_decide") (param $point i32) (param $pointlen i32) (param $event i32) (param $eventlen i32) (result i64)
    (call $log (i32.const 1) (local.get $point) (local.get $pointlen))
    (global.set $heap (global.get $base))
    (i64.or
      (i64.shl (i64.extend_i32_u (global.get $cfg)) (i64.const 32))
      (i64.extend_i32_u (global.get $cfglen))))
)
