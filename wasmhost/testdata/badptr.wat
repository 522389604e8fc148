;; badptr.wat: returns a buffer that lies outside its memory.
(module
  (memory (export "memory") 1)
  
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 0xffff0000) (i64.const 32)) (i64.const 0x20000)))
)
