;; initfail.wat: rejects any configuration with a message.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "missing key: images")
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "husk_init") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 19)))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64) (i64.const 0))
)
