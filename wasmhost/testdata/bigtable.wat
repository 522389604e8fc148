;; bigtable.wat: declares a table of 2^26 entries (512 MiB of host memory
;; in wazero as soon as it is instantiated).
(module
  (table 0x4000000 funcref)
  (memory (export "memory") 1)
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64) (i64.const 0))
)
